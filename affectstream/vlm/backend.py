"""The VLM backend interface (DESIGN §8). Backends are chosen by ``vlm.type`` and imported
lazily, so a missing optional dependency (torch, transformers) is a clear error only when that
backend is asked for.

A backend turns a :class:`~affectstream.vlm.context.VlmContext` (system prompt, interleaved
images and motion text, the question) into either a text answer (``generate``; parsed and
validated by :mod:`affectstream.vlm.parsing`) or per-label log-likelihoods (``score``); with
``vlm.context.motion_text`` vlm or both it also captions in-between frames (``caption``: free
text, see :mod:`affectstream.vlm.captions`). All are coroutines: blocking work (a local model)
runs in a worker thread inside the backend.
"""

from __future__ import annotations

from typing import Protocol

from affectstream.errors import AffectStreamError
from affectstream.vlm.context import VlmContext


class BackendError(AffectStreamError):
    """A request failed (timeout, HTTP error, model error); counted, never fatal to a run."""


class ScoringUnsupported(BackendError):  # noqa: N818 (reads as a condition, like NotImplemented)
    """The backend (or the server behind it) cannot score labels; use ``decode: generate``."""


class VlmBackend(Protocol):
    name: str
    """Backend type, e.g. ``openai`` or ``transformers``."""
    model: str
    """Model id, directory or served model name, as reported in emotion messages."""

    async def start(self) -> None:
        """Load the model or check the server; raise ConfigError/ModelError (one line) when
        that is impossible (missing dependency, model not found offline, server unreachable)."""

    async def generate(self, context: VlmContext, *, strict: bool = False) -> str:
        """The model's text answer. ``strict`` adds the stricter instruction used for the one
        retry after an unparseable answer. Raises BackendError."""

    async def score(self, context: VlmContext) -> dict[str, float]:
        """Log-likelihood of each label of ``context.labels`` as the answer. Raises
        ScoringUnsupported when the backend cannot, BackendError on failure."""

    async def caption(self, context: VlmContext, *, max_tokens: int) -> str:
        """Free text of at most ``max_tokens`` tokens for a caption context (its system prompt
        asks for one sentence of motion; no labels, no JSON format). Raises BackendError."""

    async def close(self) -> None:
        """Release the model or HTTP connections (idempotent)."""
