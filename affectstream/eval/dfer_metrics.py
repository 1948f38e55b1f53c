"""DFER classification metrics (issue 12 item 3), from (truth, prediction) label pairs.

Conventions, stated because papers differ:

- **WAR** (weighted average recall) is plain accuracy; **UAR** the mean recall over the
  classes *present in the truth* (a class with no clip has no recall).
- **Macro-F1** averages per-class F1 over the same classes present in the truth; a prediction
  of an absent class is simply wrong (it lowers the true class's recall), it does not add a
  class with F1 0. With every class present (the balanced protocol) this equals scikit-learn's
  ``f1_score(average="macro")``.
- Precision of a class never predicted is 0, and F1 is 0 when precision + recall is 0.
- **Neutral sink**: the share of clips whose truth is not neutral that are predicted neutral
  (None without such clips or without a neutral label).
- **Entropy** (bits) of the predicted label distribution and of the truth's: a model that
  collapses onto a few head classes has a prediction entropy far below the truth's
  (log2 of the class count for a balanced set).
- **Confusion**: rows are the truth, columns the prediction, both in label-set order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

NEUTRAL = "neutral"


def entropy_bits(counts: Sequence[int]) -> float:
    total = sum(counts)
    if total == 0:
        return 0.0
    return -math.fsum(c / total * math.log2(c / total) for c in counts if c > 0) + 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def per_class(truth: Sequence[str], pred: Sequence[str],
              labels: Sequence[str]) -> dict[str, dict[str, float | int]]:
    out: dict[str, dict[str, float | int]] = {}
    for label in labels:
        tp = sum(1 for t, p in zip(truth, pred, strict=True) if t == p == label)
        support = sum(1 for t in truth if t == label)
        predicted = sum(1 for p in pred if p == label)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
                      "support": support, "predicted": predicted}
    return out


def neutral_sink(truth: Sequence[str], pred: Sequence[str],
                 labels: Sequence[str]) -> float | None:
    if NEUTRAL not in labels:
        return None
    others = [p for t, p in zip(truth, pred, strict=True) if t != NEUTRAL]
    return sum(1 for p in others if p == NEUTRAL) / len(others) if others else None


def dfer_metrics(truth: Sequence[str], pred: Sequence[str],
                 labels: Sequence[str]) -> dict[str, Any]:
    """Every metric of one condition (see the module docstring for the conventions)."""
    if len(truth) != len(pred):
        raise ValueError(f"{len(truth)} truths but {len(pred)} predictions")
    unknown = sorted({x for x in (*truth, *pred) if x not in labels})
    if unknown:
        raise ValueError(f"labels outside the label set: {', '.join(unknown)}")
    classes = per_class(truth, pred, labels)
    present = [label for label in labels if classes[label]["support"]]
    n = len(truth)
    correct = sum(1 for t, p in zip(truth, pred, strict=True) if t == p)
    t_counts, p_counts = Counter(truth), Counter(pred)
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, pred, strict=True):
        confusion[index[t]][index[p]] += 1
    return {
        "n": n,
        "labels": list(labels),
        "war": correct / n if n else 0.0,
        "uar": _mean([float(classes[c]["recall"]) for c in present]),
        "macro_f1": _mean([float(classes[c]["f1"]) for c in present]),
        "per_class": classes,
        "neutral_sink": neutral_sink(truth, pred, labels),
        "entropy": {"pred": entropy_bits([p_counts[x] for x in labels]),
                    "truth": entropy_bits([t_counts[x] for x in labels])},
        "distribution": {"pred": {x: p_counts[x] for x in labels},
                         "truth": {x: t_counts[x] for x in labels}},
        "confusion": confusion,
    }


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0
