"""Emotion updates from the specialist's per-frame probabilities (``source: specialist``).

Used instead of the FACS rules when ``vlm.type`` is ``none`` and a specialist is enabled. Per
track, the probabilities of the frames classified in the update window are averaged; the window
closes every ``period_s`` of stream time, or sooner after a burst (at least ``min_interval_s``
after the previous update), on the same clock as the FACS and VLM updates.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from affectstream.labels import valence_arousal
from affectstream.types import Burst, EmotionUpdate, Face


@dataclass(slots=True)
class _Window:
    start_s: float
    sums: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    bursts: list[str] = field(default_factory=list)
    last_update_s: float | None = None

    def add(self, probs: dict[str, float]) -> None:
        for label, p in probs.items():
            self.sums[label] = self.sums.get(label, 0.0) + p
        self.frames += 1


def describe(probs: dict[str, float], frames: int, model: str) -> str:
    """A one-sentence rationale: the top classes and how many crops they come from."""
    top = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
    parts = ", ".join(f"{label} {p:.2f}" for label, p in top if p >= 0.01)
    crops = f"{frames} face crop{'' if frames == 1 else 's'}"
    return f"{model} over {crops}: {parts}"


class SpecialistEmotionEstimator:
    def __init__(self, camera: str, labels: Sequence[str], model: str, period_s: float,
                 min_interval_s: float) -> None:
        self._camera = camera
        self._labels = tuple(labels)
        self._model = model
        self._period = period_s
        self._min_interval = min_interval_s
        self._tracks: dict[int, _Window] = {}

    def observe(self, pts_s: float, faces: Sequence[Face], bursts: Iterable[Burst],
                ended: Iterable[int] = ()) -> list[EmotionUpdate]:
        for face in faces:
            win = self._tracks.setdefault(face.track_id, _Window(pts_s))
            if face.expression:
                win.add(face.expression)
        for burst in bursts:
            if burst.track_id in self._tracks:
                self._tracks[burst.track_id].bursts.append(burst.id)
        updates = [u for track_id, win in list(self._tracks.items())
                   if (u := self._maybe_update(track_id, win, pts_s)) is not None]
        for track_id in ended:
            self._tracks.pop(track_id, None)
        return updates

    def _maybe_update(self, track_id: int, win: _Window, pts_s: float) -> EmotionUpdate | None:
        if win.frames == 0:
            return None
        since = pts_s - (win.last_update_s if win.last_update_s is not None else win.start_s)
        due = pts_s - win.start_s >= self._period
        early = bool(win.bursts) and since >= self._min_interval
        if not (due or early):
            return None
        t0 = time.perf_counter()
        total = sum(win.sums.values())
        probs = {label: win.sums.get(label, 0.0) / total for label in self._labels}
        label = max(probs, key=lambda k: probs[k])
        valence, arousal = valence_arousal(probs)
        update = EmotionUpdate(
            camera=self._camera, track_id=track_id, ts=time.time(),
            window_start_s=win.start_s, window_end_s=pts_s, label=label, probs=probs,
            valence=valence, arousal=arousal, confidence=probs[label],
            rationale=describe(probs, win.frames, self._model), source="specialist",
            model=self._model, calibrated=False, keyframes_s=(), bursts=tuple(win.bursts),
            latency_ms=(time.perf_counter() - t0) * 1000, prompt_tokens=0,
        )
        self._tracks[track_id] = _Window(pts_s, last_update_s=pts_s)
        return update
