"""Emotion updates from the specialist's per-frame probabilities (``source: specialist``).

Used instead of the FACS rules when ``vlm.type`` is ``none`` and a specialist is enabled: per
track, the probabilities of the frames classified in the update window are averaged, on the
same update clock as the FACS rules (:mod:`affectstream.emotion.windows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from affectstream.clock import SYSTEM_CLOCK, Clock
from affectstream.emotion.base import Emit, EstimatorSetup
from affectstream.emotion.windows import Window, WindowedEstimator
from affectstream.labels import top_labels
from affectstream.types import Face


@dataclass(slots=True)
class _Window(Window):
    sums: dict[str, float] = field(default_factory=dict)


def describe(probs: dict[str, float], frames: int, model: str) -> str:
    """A one-sentence rationale: the top classes and how many crops they come from."""
    crops = f"{frames} face crop{'' if frames == 1 else 's'}"
    return f"{model} over {crops}: {top_labels(probs)}"


class SpecialistEmotionEstimator(WindowedEstimator[_Window]):
    source = "specialist"

    def __init__(self, camera: str, labels: Sequence[str], model: str, period_s: float,
                 min_interval_s: float, *, emit: Emit | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(camera, labels, period_s, min_interval_s, emit=emit, clock=clock)
        self.model = model

    def _window(self, start_s: float, previous: _Window | None) -> _Window:
        return _Window(start_s)

    def _add(self, win: _Window, face: Face) -> bool:
        if not face.expression:
            return False
        for label, p in face.expression.items():
            win.sums[label] = win.sums.get(label, 0.0) + p
        return True

    def _estimate(self, win: _Window) -> tuple[dict[str, float], str]:
        total = sum(win.sums.values())
        probs = {label: win.sums.get(label, 0.0) / total for label in self._labels}
        return probs, describe(probs, win.frames, self.model)


def create(setup: EstimatorSetup) -> SpecialistEmotionEstimator | None:
    """Without a VLM, the specialist's window averages replace the FACS rules."""
    cfg = setup.cfg
    if cfg.vlm.type != "none" or setup.specialist is None:
        return None
    return SpecialistEmotionEstimator(cfg.camera_id, setup.labels, setup.specialist,
                                      cfg.vlm.period_s, cfg.vlm.min_interval_s,
                                      emit=setup.emit, clock=setup.clock)
