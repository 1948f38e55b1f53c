"""Per-track emotion-update windows on stream time, for the estimators that run without a VLM
(the FACS rules and the specialist).

A track's window opens at the first frame that gives it evidence and closes every ``period_s``
of stream time, or sooner once one of its bursts was published, but at least
``min_interval_s`` after the previous update: the same clock as the VLM scheduler's, so the
three sources update at the same moments. Subclasses say what a face adds to a window and
what probabilities a window gives.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from affectstream.labels import valence_arousal
from affectstream.types import Burst, EmotionUpdate, Face


@dataclass(slots=True)
class Window:
    start_s: float
    frames: int = 0
    bursts: list[str] = field(default_factory=list)
    last_update_s: float | None = None


W = TypeVar("W", bound=Window)


class WindowedEstimator(ABC, Generic[W]):
    source: Literal["facs", "specialist"]
    model: str

    def __init__(self, camera: str, labels: Sequence[str], period_s: float,
                 min_interval_s: float) -> None:
        self._camera = camera
        self._labels = tuple(labels)
        self._period = period_s
        self._min_interval = min_interval_s
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

    def observe(self, pts_s: float, faces: Sequence[Face], bursts: Iterable[Burst],
                ended: Iterable[int] = ()) -> list[EmotionUpdate]:
        """Feed one frame's faces and bursts; the updates that came due at this frame."""
        for face in faces:
            win = self._tracks.get(face.track_id) or self._window(pts_s, None)
            if self._add(win, face):
                win.frames += 1
                self._tracks[face.track_id] = win
        for burst in bursts:
            if burst.track_id in self._tracks:
                self._tracks[burst.track_id].bursts.append(burst.id)
        updates = [self._close(track_id, win, pts_s)
                   for track_id, win in list(self._tracks.items()) if self._due(win, pts_s)]
        for track_id in ended:
            self._tracks.pop(track_id, None)
        return updates

    def _due(self, win: W, pts_s: float) -> bool:
        if win.frames == 0:
            return False
        since = pts_s - (win.last_update_s if win.last_update_s is not None else win.start_s)
        early = bool(win.bursts) and since >= self._min_interval
        return pts_s - win.start_s >= self._period or early

    def _close(self, track_id: int, win: W, pts_s: float) -> EmotionUpdate:
        t0 = time.perf_counter()
        probs, rationale = self._estimate(win)
        label = max(probs, key=lambda k: probs[k])
        valence, arousal = valence_arousal(probs)
        next_win = self._window(pts_s, win)
        next_win.last_update_s = pts_s
        self._tracks[track_id] = next_win
        return EmotionUpdate(
            camera=self._camera, track_id=track_id, ts=time.time(),
            window_start_s=win.start_s, window_end_s=pts_s, label=label, probs=probs,
            valence=valence, arousal=arousal, confidence=probs[label], rationale=rationale,
            source=self.source, model=self.model, calibrated=False, keyframes_s=(),
            bursts=tuple(win.bursts), latency_ms=(time.perf_counter() - t0) * 1000,
            prompt_tokens=0,
        )
