"""Spotting metrics in the MEGC protocol: interval IoU ≥ 0.5, one-to-one matching.

Intervals are 0-based *inclusive* frame ranges ``(onset, offset)``, so ``(3, 3)`` is one frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from affectstream.detectors.samples import frame_iou
from affectstream.errors import ConfigError

_EPS = 1e-9
"""IoU tolerance so a ratio that is exactly the threshold (e.g. 5/10) counts as a match."""


def _check(interval: tuple[int, int], what: str) -> tuple[int, int]:
    onset, offset = int(interval[0]), int(interval[1])
    if offset < onset:
        raise ConfigError(f"{what} interval {interval} ends before it starts; use (onset, offset)")
    return onset, offset


def interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Intersection over union of two inclusive frame intervals (frame counts, not spans)."""
    return frame_iou(_check(a, "first"), _check(b, "second"))


@dataclass(frozen=True)
class SpottingScore:
    """Counts and rates of one spotting run; ``matches`` pairs (prediction, truth) indices."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    matches: tuple[tuple[int, int], ...]


def _ratio(num: int, den: int) -> float:
    # An empty denominator scores 0 (sklearn's zero_division=0): no predictions earn no precision.
    return num / den if den else 0.0


def score_spotting(
    pred: Sequence[tuple[int, int]],
    truth: Sequence[tuple[int, int]],
    iou_threshold: float = 0.5,
) -> SpottingScore:
    """Match predictions to truth one-to-one, greedily by IoU descending (ties: lower indices).

    A pair counts when IoU ≥ ``iou_threshold``; each prediction and truth interval is used once.
    Unmatched predictions are false positives, unmatched truths false negatives.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ConfigError(f"iou_threshold {iou_threshold} out of range; use a value in (0, 1]")
    preds = [_check(p, "predicted") for p in pred]
    truths = [_check(t, "truth") for t in truth]
    candidates = [
        (iou, i, j)
        for i, p in enumerate(preds)
        for j, t in enumerate(truths)
        if (iou := interval_iou(p, t)) >= iou_threshold - _EPS
    ]
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_pred: set[int] = set()
    used_truth: set[int] = set()
    matches: list[tuple[int, int]] = []
    for _, i, j in candidates:
        if i in used_pred or j in used_truth:
            continue
        used_pred.add(i)
        used_truth.add(j)
        matches.append((i, j))
    tp = len(matches)
    return from_counts(tp, len(preds) - tp, len(truths) - tp, tuple(sorted(matches)))


def from_counts(tp: int, fp: int, fn: int,
                matches: tuple[tuple[int, int], ...] = ()) -> SpottingScore:
    """Precision, recall and F1 of the given counts (0 where a denominator is empty)."""
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SpottingScore(tp, fp, fn, precision, recall, f1, matches)
