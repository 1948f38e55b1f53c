"""One emotion question to a backend, the way the live stage asks it: label log-likelihoods
in scoring mode, else the JSON answer parsed and validated, with one stricter retry after an
unparseable answer. The live scheduler and the DFER evaluation both ask through here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from affectstream.errors import AffectStreamError
from affectstream.vlm.backend import VlmBackend
from affectstream.vlm.context import VlmContext
from affectstream.vlm.logprobs import softmax
from affectstream.vlm.parsing import parse_emotion

Decode = Literal["generate", "score"]
Bound = Callable[[Awaitable[Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Answer:
    probs: dict[str, float]
    """Uncalibrated, over the context's labels, summing to 1."""
    rationale: str
    valence: float | None = None
    arousal: float | None = None


async def _as_is(call: Awaitable[Any]) -> Any:
    return await call


async def ask_emotion(backend: VlmBackend, ctx: VlmContext, labels: Sequence[str],
                      decode: Decode, bound: Bound = _as_is) -> Answer:
    """The backend's answer to ``ctx``; ``bound`` wraps each backend call (a timeout).
    Raises an AffectStreamError (BackendError, or the parse error after the retry)."""
    if decode == "score":
        scores: dict[str, float] = await bound(backend.score(ctx))
        return Answer(softmax(scores), "label log-likelihoods (scoring mode)")
    text: str = await bound(backend.generate(ctx))
    try:
        parsed = parse_emotion(text, labels)
    except AffectStreamError:  # one stricter retry, then the caller's failure
        text = await bound(backend.generate(ctx, strict=True))
        parsed = parse_emotion(text, labels)
    return Answer(dict(parsed.probs), parsed.rationale, parsed.valence, parsed.arousal)
