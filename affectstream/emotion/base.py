"""The emotion stage's one interface, its update clock and its registry (DESIGN §3, §8).

Every emotion source (the VLM scheduler, the specialist's window averages, the FACS rules, or
one of your own) is an :class:`EmotionEstimator`: the run starts it, hands it every frame's
:class:`~affectstream.types.FrameResult` on the event loop, merges its ``stats()`` into the
stats message and closes it at the end. It emits :class:`~affectstream.types.EmotionUpdate`\\ s
through the one ``emit`` callable it was built with, now or later (a VLM answer arrives while
perception goes on); the run publishes whatever is emitted, whoever emitted it.

Which estimators a run has is decided by an :class:`EstimatorRegistry`: named factories, each
looking at the config and returning an estimator or None. Adding an estimator is registering
its factory (see :func:`affectstream.emotion.default_registry`); ``app.py`` does not change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from affectstream.clock import SYSTEM_CLOCK, Clock
from affectstream.config import Config
from affectstream.types import EmotionUpdate, FrameResult

Emit = Callable[[EmotionUpdate], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class EstimatorSetup:
    """What a factory gets to build an estimator for one camera's run."""

    cfg: Config
    labels: tuple[str, ...]
    emit: Emit
    """The run's one publish path for emotion updates."""
    specialist: str | None = None
    """The name of the expression classifier perception runs on each face (None: none)."""
    clock: Clock = SYSTEM_CLOCK
    shared: dict[str, Any] = field(default_factory=dict)
    """Resources shared by every camera of the run, by name (e.g. one VLM backend per VLM
    config): the same mapping for all of them."""


class EmotionEstimator(ABC):
    """One source of emotion updates in a run."""

    async def start(self) -> None:  # noqa: B027 - most estimators have nothing to start
        """Load models or check servers; raise an AffectStreamError (one line) when unusable.
        Called before anything is published."""

    @abstractmethod
    async def observe(self, result: FrameResult) -> None:
        """One frame's perception result, on the event loop and in order; must not wait on
        slow work (run it as a task and emit when it is done)."""

    def stats(self) -> dict[str, Any]:
        """Sections merged into the run's stats message (e.g. ``{"vlm": {...}}``)."""
        return {}

    async def close(self) -> None:  # noqa: B027 - most estimators hold nothing
        """The stream ended: let work under way finish (bounded), emit it, release resources.
        Called once the last frame was observed, before the final stats; idempotent."""


class UpdateClock:
    """When each track's next emotion update is due, on stream time: ``period_s`` after its
    previous update (or after the track started), sooner once a burst was seen but at least
    ``min_interval_s`` after the previous update. The VLM scheduler, the FACS rules and the
    specialist all use it, so every source updates at the same moments."""

    def __init__(self, period_s: float, min_interval_s: float) -> None:
        self.period_s = period_s
        self.min_interval_s = min_interval_s
        self._since: dict[int, float] = {}
        self._burst: set[int] = set()

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._since

    def start(self, track_id: int, pts_s: float) -> None:
        """Start a track's clock at ``pts_s`` (no-op for a track already started)."""
        self._since.setdefault(track_id, pts_s)

    def burst(self, track_id: int) -> None:
        """A burst of a started track: its next update may come early."""
        if track_id in self._since:
            self._burst.add(track_id)

    def due(self, track_id: int, pts_s: float) -> bool:
        since = self._since.get(track_id)
        if since is None:
            return False
        elapsed = pts_s - since
        return elapsed >= self.period_s or (track_id in self._burst
                                            and elapsed >= self.min_interval_s)

    def fired(self, track_id: int, pts_s: float) -> None:
        """The track's update was made (or skipped) at ``pts_s``: the next one counts from
        here."""
        self._since[track_id] = pts_s
        self._burst.discard(track_id)

    def forget(self, track_id: int) -> None:
        self._since.pop(track_id, None)
        self._burst.discard(track_id)

    def tracks(self) -> list[int]:
        return list(self._since)


Factory = Callable[[EstimatorSetup], EmotionEstimator | None]


class EstimatorRegistry:
    """Named estimator factories, asked in registration order."""

    def __init__(self) -> None:
        self._factories: dict[str, Factory] = {}

    def register(self, name: str, factory: Factory) -> None:
        if name in self._factories:
            raise ValueError(f"an emotion estimator named {name!r} is already registered")
        self._factories[name] = factory

    def names(self) -> list[str]:
        return list(self._factories)

    def create(self, setup: EstimatorSetup) -> list[EmotionEstimator]:
        """The estimators this run's config asks for."""
        return [est for factory in self._factories.values()
                if (est := factory(setup)) is not None]
