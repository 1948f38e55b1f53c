"""Clip-level classification metrics for calibration fitting and fine-tuning: UAR, WAR,
macro-F1 and per-class precision/recall/F1 — the DFER metrics of :mod:`dfer_metrics`, in the
short form the calibration report and the training log keep."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from affectstream.eval.dfer_metrics import dfer_metrics


def class_metrics(truth: Sequence[str], pred: Sequence[str],
                  labels: Sequence[str]) -> dict[str, Any]:
    """``{"clips", "uar", "war", "macro_f1", "per_class": {label: {"precision", "recall",
    "f1", "support"}}}`` of predictions ``pred`` against ``truth`` over ``labels``."""
    full = dfer_metrics(truth, pred, labels)
    per_class = {label: {k: m[k] for k in ("precision", "recall", "f1", "support")}
                 for label, m in full["per_class"].items()}
    return {"clips": full["n"], "uar": full["uar"], "war": full["war"],
            "macro_f1": full["macro_f1"], "per_class": per_class}
