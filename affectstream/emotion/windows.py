"""Per-track update windows for the estimators that need no VLM (the FACS rules and the
specialist): a track's window opens at the first frame that gives it evidence and closes when
the shared :class:`~affectstream.emotion.base.UpdateClock` says its update is due. Subclasses
say what a face adds to a window and what probabilities a window gives.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from affectstream.clock import SYSTEM_CLOCK, Clock
from affectstream.emotion.base import Emit, EmotionEstimator, UpdateClock
from affectstream.labels import valence_arousal
from affectstream.types import Burst, EmotionUpdate, Face, FrameResult


@dataclass(slots=True)
class Window:
    start_s: float
    frames: int = 0
    bursts: list[str] = field(default_factory=list)


W = TypeVar("W", bound=Window)


class WindowedEstimator(EmotionEstimator, Generic[W]):
    source: str
    model: str

    def __init__(self, camera: str, labels: Sequence[str], period_s: float,
                 min_interval_s: float, *, emit: Emit | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._camera = camera
        self._labels = tuple(labels)
        self._due = UpdateClock(period_s, min_interval_s)
        self._emit = emit
        self._clock = clock
        self._tracks: dict[int, W] = {}

    @abstractmethod
    def _window(self, start_s: float, previous: W | None) -> W:
        """A new window from ``start_s`` (``previous``: the track's window just closed)."""

    @abstractmethod
    def _add(self, win: W, face: Face) -> bool:
        """Add the face's evidence; False when it has none (the frame does not count)."""

    @abstractmethod
    def _estimate(self, win: W) -> tuple[dict[str, float], str]:
        """Probabilities over the labels and a one-sentence rationale."""

    async def observe(self, result: FrameResult) -> None:
        if self._emit is None:
            raise RuntimeError(f"{type(self).__name__} was built without emit")
        ended = [e.track_id for e in result.track_events if e.type == "end"]
        for update in self.updates(result.pts_s, result.faces, result.bursts, ended):
            await self._emit(update)

    def updates(self, pts_s: float, faces: Sequence[Face], bursts: Iterable[Burst],
                ended: Iterable[int] = ()) -> list[EmotionUpdate]:
        """Feed one frame's faces and bursts; the updates that came due at this frame."""
        for face in faces:
            win = self._tracks.get(face.track_id) or self._window(pts_s, None)
            if self._add(win, face):
                win.frames += 1
                self._tracks[face.track_id] = win
                self._due.start(face.track_id, pts_s)
        for burst in bursts:
            if burst.track_id in self._tracks:
                self._tracks[burst.track_id].bursts.append(burst.id)
                self._due.burst(burst.track_id)
        updates = [self._close(track_id, win, pts_s) for track_id, win in
                   list(self._tracks.items())
                   if win.frames and self._due.due(track_id, pts_s)]
        for track_id in ended:
            self._tracks.pop(track_id, None)
            self._due.forget(track_id)
        return updates

    def _close(self, track_id: int, win: W, pts_s: float) -> EmotionUpdate:
        t0 = self._clock.monotonic()
        probs, rationale = self._estimate(win)
        label = max(probs, key=lambda k: probs[k])
        valence, arousal = valence_arousal(probs)
        self._tracks[track_id] = self._window(pts_s, win)
        self._due.fired(track_id, pts_s)
        return EmotionUpdate(
            camera=self._camera, track_id=track_id, ts=self._clock.time(),
            window_start_s=win.start_s, window_end_s=pts_s, label=label, probs=probs,
            valence=valence, arousal=arousal, confidence=probs[label], rationale=rationale,
            source=self.source, model=self.model, calibrated=False, keyframes_s=(),
            bursts=tuple(win.bursts), latency_ms=(self._clock.monotonic() - t0) * 1000,
            prompt_tokens=0,
        )
