"""FACS prototype rules: emotion updates without a VLM (``--vlm-backend none``, DESIGN §8).

Each track's action units (from MediaPipe blendshapes, see :mod:`affectstream.detectors.facs`)
are averaged over the update window and measured against the track's own resting level (a
level that follows drops at once and rises slowly: some faces rest with raised brows). Each
emotion scores the best-matching of its EMFACS-style prototypes (Friesen & Ekman's EMFACS;
Matsumoto & Ekman's prototype tables) as the mean evidence of the prototype's AUs minus the
strongest contradicting AU (``EXCLUDES``); a softmax against a fixed neutral score turns the
scores into probabilities. Labels without a prototype (MAFW's anxiety, helplessness and
disappointment) get no evidence from these rules. The rules are documented, deterministic and
cheap; they are a fallback, not an emotion recogniser.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from affectstream.detectors import facs
from affectstream.labels import valence_arousal
from affectstream.types import Burst, EmotionUpdate, Face

MODEL = "facs-rules/1"

# emotion → alternative AU prototypes; AU23 (lip tightener) has no blendshape, AU24 stands in.
PROTOTYPES: dict[str, tuple[tuple[int, ...], ...]] = {
    "happiness": ((6, 12), (12,)),
    "sadness": ((1, 4, 15), (1, 15), (15, 17)),
    "surprise": ((1, 2, 5, 26), (1, 2, 26), (1, 2, 5)),
    "fear": ((1, 2, 4, 5, 20, 26), (1, 2, 4, 5), (4, 5, 20)),
    "anger": ((4, 5, 7, 24), (4, 7, 24), (4, 5, 7)),
    "disgust": ((9, 15, 16), (9, 10), (10, 15)),
    "contempt": ((12, 14),),
}
# AUs that contradict a prototype (surprise has no lowered brows, sadness no smile…): their
# evidence is subtracted, which separates fear from surprise and sadness from happiness.
EXCLUDES: dict[str, tuple[int, ...]] = {
    "happiness": (15,),
    "sadness": (12,),
    "surprise": (4, 20),
    "anger": (1, 2, 12),
    "contempt": (15,),
}
NEUTRAL_SCORE = 0.12
"""Evidence (mean AU intensity above rest) at which an emotion ties with neutral."""
SHARPNESS = 14.0
_REST_TAU_S = 30.0


def rule_probs(evidence: dict[int, float], labels: Sequence[str]) -> tuple[dict[str, float], str]:
    """Probabilities over ``labels`` from AU evidence, and the prototype that decided it."""
    logits: dict[str, float] = {}
    best: dict[str, tuple[int, ...]] = {}
    for label in labels:
        if label == "neutral":
            logits[label] = SHARPNESS * NEUTRAL_SCORE
            continue
        alternatives = PROTOTYPES.get(label)
        if not alternatives:
            continue
        against = max((evidence.get(au, 0.0) for au in EXCLUDES.get(label, ())), default=0.0)
        scores = [float(np.mean([evidence.get(au, 0.0) for au in alt])) - against
                  for alt in alternatives]
        i = int(np.argmax(scores))
        logits[label], best[label] = SHARPNESS * scores[i], alternatives[i]
    top = max(logits.values())
    weights = {k: math.exp(v - top) for k, v in logits.items()}
    total = sum(weights.values())
    probs = {label: weights.get(label, 0.0) / total for label in labels}
    winner = max(probs, key=lambda k: probs[k])
    if winner == "neutral":
        return probs, "no prototype's action units are clearly above the face's resting level"
    aus = ", ".join(f"AU{au} {facs.AU_NAMES[au]} {evidence.get(au, 0.0):+.2f}"
                    for au in best[winner])
    return probs, f"{winner} prototype ({aus} above rest)"


@dataclass(slots=True)
class _TrackWindow:
    start_s: float
    rest: dict[int, float] = field(default_factory=dict)
    sums: dict[int, float] = field(default_factory=dict)
    frames: int = 0
    bursts: list[str] = field(default_factory=list)
    last_update_s: float | None = None
    last_seen_s: float = 0.0

    def add(self, pts_s: float, intensities: dict[int, float], dt: float) -> None:
        alpha = 1 - math.exp(-dt / _REST_TAU_S)
        for au, value in intensities.items():
            self.sums[au] = self.sums.get(au, 0.0) + value
            rest = self.rest.setdefault(au, value)
            # Down at once, up slowly: the face's most relaxed state is its resting level, so
            # a face that first appears smiling still has its smile counted once it relaxes.
            self.rest[au] = value if value < rest else rest + alpha * (value - rest)
        self.frames += 1
        self.last_seen_s = pts_s

    def evidence(self) -> dict[int, float]:
        return {au: max(0.0, total / self.frames - self.rest.get(au, 0.0))
                for au, total in self.sums.items()}

    def reset(self, start_s: float) -> None:
        self.start_s, self.sums, self.frames, self.bursts = start_s, {}, 0, []


def _intensities(face: Face) -> dict[int, float]:
    return {u.au: u.intensity for u in face.action_units if u.au != 45}


class FacsEmotionEstimator:
    """Per-track update windows in stream time: an update every ``period_s``, or sooner after a
    burst (at least ``min_interval_s`` after the previous one)."""

    def __init__(self, camera: str, labels: Sequence[str], period_s: float,
                 min_interval_s: float) -> None:
        self._camera = camera
        self._labels = tuple(labels)
        self._period = period_s
        self._min_interval = min_interval_s
        self._tracks: dict[int, _TrackWindow] = {}

    def observe(self, pts_s: float, faces: Sequence[Face], bursts: Iterable[Burst],
                ended: Iterable[int] = ()) -> list[EmotionUpdate]:
        for face in faces:
            if not face.action_units:
                continue
            win = self._tracks.setdefault(face.track_id, _TrackWindow(pts_s))
            dt = max(1e-3, pts_s - win.last_seen_s) if win.frames else 1 / 30
            win.add(pts_s, _intensities(face), dt)
        for burst in bursts:
            if burst.track_id in self._tracks:
                self._tracks[burst.track_id].bursts.append(burst.id)
        updates = [u for track_id, win in list(self._tracks.items())
                   if (u := self._maybe_update(track_id, win, pts_s)) is not None]
        for track_id in ended:
            self._tracks.pop(track_id, None)
        return updates

    def _maybe_update(self, track_id: int, win: _TrackWindow,
                      pts_s: float) -> EmotionUpdate | None:
        if win.frames == 0:
            return None
        since = pts_s - (win.last_update_s if win.last_update_s is not None else win.start_s)
        due = pts_s - win.start_s >= self._period
        early = bool(win.bursts) and since >= self._min_interval
        if not (due or early):
            return None
        t0 = time.perf_counter()
        probs, rationale = rule_probs(win.evidence(), self._labels)
        label = max(probs, key=lambda k: probs[k])
        valence, arousal = valence_arousal(probs)
        update = EmotionUpdate(
            camera=self._camera, track_id=track_id, ts=time.time(),
            window_start_s=win.start_s, window_end_s=pts_s, label=label, probs=probs,
            valence=valence, arousal=arousal, confidence=probs[label], rationale=rationale,
            source="facs", model=MODEL, calibrated=False, keyframes_s=(),
            bursts=tuple(win.bursts), latency_ms=(time.perf_counter() - t0) * 1000,
            prompt_tokens=0,
        )
        win.last_update_s = pts_s
        win.reset(pts_s)
        return update
