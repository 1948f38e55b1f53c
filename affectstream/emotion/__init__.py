"""The emotion stage: estimators behind one interface, one update clock, one registry.

Built-in estimators, asked in this order (each decides from the config whether it runs):

- ``vlm``: a vision-language model on keyframes and the motion log (``vlm.type`` openai or
  transformers);
- ``specialist``: window averages of the expression classifier (no VLM, ``specialist.enabled``);
- ``facs``: FACS prototype rules over the action units (no VLM, no specialist).
"""

from __future__ import annotations

from affectstream.emotion import facs, specialist, vlm
from affectstream.emotion.base import (
    Emit,
    EmotionEstimator,
    EstimatorRegistry,
    EstimatorSetup,
    UpdateClock,
)


def default_registry() -> EstimatorRegistry:
    """A registry with the built-in estimators; register your own on it before the run."""
    registry = EstimatorRegistry()
    registry.register("vlm", vlm.create)
    registry.register("specialist", specialist.create)
    registry.register("facs", facs.create)
    return registry


__all__ = [
    "Emit",
    "EmotionEstimator",
    "EstimatorRegistry",
    "EstimatorSetup",
    "UpdateClock",
    "default_registry",
]
