"""MEGC spotting metrics on hand-computed cases."""

from __future__ import annotations

import pytest

from affectstream.errors import ConfigError
from affectstream.eval.metrics import interval_iou, score_spotting


def test_iou_counts_inclusive_frames() -> None:
    assert interval_iou((0, 9), (0, 9)) == 1.0
    assert interval_iou((0, 9), (0, 4)) == 0.5  # 5 shared frames of 10
    assert interval_iou((0, 9), (5, 14)) == pytest.approx(5 / 15)
    assert interval_iou((3, 3), (3, 3)) == 1.0  # one frame is a real interval
    assert interval_iou((0, 4), (5, 9)) == 0.0  # touching, not overlapping
    assert interval_iou((0, 4), (4, 9)) == pytest.approx(1 / 10)
    assert interval_iou((2, 5), (0, 9)) == interval_iou((0, 9), (2, 5))


def test_iou_rejects_reversed_interval() -> None:
    with pytest.raises(ConfigError, match="ends before it starts"):
        interval_iou((5, 4), (0, 9))


def test_threshold_boundary_is_inclusive() -> None:
    at = score_spotting([(0, 4)], [(0, 9)])  # IoU exactly 0.5
    assert (at.tp, at.fp, at.fn) == (1, 0, 0)
    below = score_spotting([(0, 3)], [(0, 8)])  # 4/9 < 0.5
    assert (below.tp, below.fp, below.fn) == (0, 1, 1)
    assert below.precision == below.recall == below.f1 == 0.0


def test_partial_overlap_just_above_and_below_threshold() -> None:
    assert score_spotting([(0, 50)], [(0, 99)]).tp == 1  # 51/100
    assert score_spotting([(49, 99)], [(0, 99)]).tp == 1  # 51/100, overlapping the end
    near = score_spotting([(0, 48)], [(0, 99)])  # 49/100
    assert (near.tp, near.fp, near.fn) == (0, 1, 1)
    shifted = score_spotting([(30, 69)], [(0, 49)])  # 20 shared of 70: partial, not enough
    assert (shifted.tp, shifted.fp, shifted.fn) == (0, 1, 1)


def test_one_to_one_greedy_by_iou() -> None:
    truth = [(10, 19), (40, 49)]
    pred = [(11, 19), (10, 19), (40, 48), (100, 110)]
    s = score_spotting(pred, truth)
    # Both of the first two match truth 0; the exact one (IoU 1.0) wins, the other is an FP.
    assert s.matches == ((1, 0), (2, 1))
    assert (s.tp, s.fp, s.fn) == (2, 2, 0)
    assert s.precision == 0.5 and s.recall == 1.0
    assert s.f1 == pytest.approx(2 / 3)


def test_one_prediction_cannot_cover_two_truths() -> None:
    s = score_spotting([(0, 19)], [(0, 9), (10, 19)])  # IoU 0.5 with each
    assert (s.tp, s.fp, s.fn) == (1, 0, 1)
    assert s.matches == ((0, 0),)  # tie broken towards the lower truth index


def test_greedy_takes_best_pair_first() -> None:
    # pred 0: truth 0 IoU 7/13, truth 1 IoU 0.9; pred 1: truth 1 IoU 9/11 only. Greedy locks in
    # (0, 1) first, so pred 1 and truth 0 stay unmatched (an optimal assignment would find 2).
    s = score_spotting([(3, 12), (5, 14)], [(0, 9), (4, 13)])
    assert s.matches == ((0, 1),)
    assert (s.tp, s.fp, s.fn) == (1, 1, 1)


def test_empty_inputs() -> None:
    none = score_spotting([], [])
    assert (none.tp, none.fp, none.fn, none.f1, none.matches) == (0, 0, 0, 0.0, ())
    missed = score_spotting([], [(0, 5)])
    assert (missed.fn, missed.recall, missed.precision) == (1, 0.0, 0.0)
    spurious = score_spotting([(0, 5)], [])
    assert (spurious.fp, spurious.precision) == (1, 0.0)


def test_custom_threshold_and_validation() -> None:
    assert score_spotting([(0, 3)], [(0, 8)], iou_threshold=0.4).tp == 1
    with pytest.raises(ConfigError, match="iou_threshold"):
        score_spotting([], [], iou_threshold=0.0)
