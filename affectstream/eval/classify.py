"""Clip-level classification metrics for calibration fitting and fine-tuning: UAR, WAR,
macro-F1 and per-class precision/recall/F1.

Conventions of the DFER literature (DFEW, MAFW): WAR is plain accuracy, UAR the mean recall
over classes, macro-F1 the mean F1 over classes. Averages run over the classes present in the
truth, so a class nobody labelled neither helps nor hurts; a class only predicted still costs
precision of nothing but counts its false positives against the true classes' recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def class_metrics(truth: Sequence[str], pred: Sequence[str],
                  labels: Sequence[str]) -> dict[str, Any]:
    """``{"clips", "uar", "war", "macro_f1", "per_class": {label: {"precision", "recall",
    "f1", "support"}}}`` of predictions ``pred`` against ``truth`` over ``labels``."""
    if len(truth) != len(pred):
        raise ValueError(f"{len(truth)} true labels but {len(pred)} predictions")
    per_class: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for t, p in zip(truth, pred, strict=True) if t == label and p == label)
        support = sum(1 for t in truth if t == label)
        predicted = sum(1 for p in pred if p == label)
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1,
                            "support": support}
    present = [m for m in per_class.values() if m["support"] > 0]
    correct = sum(1 for t, p in zip(truth, pred, strict=True) if t == p)
    return {
        "clips": len(truth),
        "uar": sum(m["recall"] for m in present) / len(present) if present else 0.0,
        "war": _ratio(correct, len(truth)),
        "macro_f1": sum(m["f1"] for m in present) / len(present) if present else 0.0,
        "per_class": per_class,
    }
