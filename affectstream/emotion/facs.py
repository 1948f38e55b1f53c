"""FACS prototype rules: emotion updates without a VLM (``vlm.type: none``, DESIGN §8).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from affectstream.clock import SYSTEM_CLOCK, Clock
from affectstream.emotion.base import Emit, EstimatorSetup
from affectstream.emotion.windows import Window, WindowedEstimator
from affectstream.types import Face

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


def rule_probs(evidence: dict[int, float], labels: Sequence[str],
               names: Mapping[int, str] | None = None) -> tuple[dict[str, float], str]:
    """Probabilities over ``labels`` from AU evidence, and the prototype that decided it (its
    AUs named by ``names``, AU number → FACS name, where known)."""
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
    named = names or {}
    aus = ", ".join(f"AU{au} {named[au] + ' ' if au in named else ''}{evidence.get(au, 0.0):+.2f}"
                    for au in best[winner])
    return probs, f"{winner} prototype ({aus} above rest)"


@dataclass(slots=True)
class _TrackWindow(Window):
    rest: dict[int, float] = field(default_factory=dict)
    """Each AU's resting level; it carries over from window to window."""
    sums: dict[int, float] = field(default_factory=dict)
    last_seen_s: float | None = None

    def add(self, pts_s: float, intensities: dict[int, float]) -> None:
        dt = max(1e-3, pts_s - self.last_seen_s) if self.last_seen_s is not None else 1 / 30
        alpha = 1 - math.exp(-dt / _REST_TAU_S)
        for au, value in intensities.items():
            self.sums[au] = self.sums.get(au, 0.0) + value
            rest = self.rest.setdefault(au, value)
            # Down at once, up slowly: the face's most relaxed state is its resting level, so
            # a face that first appears smiling still has its smile counted once it relaxes.
            self.rest[au] = value if value < rest else rest + alpha * (value - rest)
        self.last_seen_s = pts_s

    def evidence(self) -> dict[int, float]:
        """Mean AU intensity over the window's frames above the resting level (frames ≥ 1)."""
        return {au: max(0.0, total / self.frames - self.rest.get(au, 0.0))
                for au, total in self.sums.items()}


class FacsEmotionEstimator(WindowedEstimator[_TrackWindow]):
    """Emotion updates from the rules over each window's AU evidence (``source: facs``)."""

    source = "facs"
    model = MODEL

    def __init__(self, camera: str, labels: Sequence[str], period_s: float,
                 min_interval_s: float, *, emit: Emit | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(camera, labels, period_s, min_interval_s, emit=emit, clock=clock)
        self._au_names: dict[int, str] = {}
        """FACS names of the AUs seen, as perception named them (for the rationale)."""

    def _window(self, start_s: float, previous: _TrackWindow | None) -> _TrackWindow:
        if previous is None:
            return _TrackWindow(start_s)
        return _TrackWindow(start_s, rest=previous.rest, last_seen_s=previous.last_seen_s)

    def _add(self, win: _TrackWindow, face: Face) -> bool:
        if not face.action_units:
            return False
        win.add(face.pts_s, {u.au: u.intensity for u in face.action_units if u.au != 45})
        self._au_names.update((u.au, u.name) for u in face.action_units)
        return True

    def _estimate(self, win: _TrackWindow) -> tuple[dict[str, float], str]:
        return rule_probs(win.evidence(), self._labels, self._au_names)


def create(setup: EstimatorSetup) -> FacsEmotionEstimator | None:
    """The fallback when neither a VLM nor a specialist gives the updates."""
    cfg = setup.cfg
    if cfg.vlm.type != "none" or setup.specialist is not None:
        return None
    return FacsEmotionEstimator(cfg.camera_id, setup.labels, cfg.vlm.period_s,
                                cfg.vlm.min_interval_s, emit=setup.emit, clock=setup.clock)
