"""95 % intervals of the spotting benchmark: exact Poisson rates against textbook values, and
the clip bootstrap on cases whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectstream.eval.intervals import (
    as_counts,
    bootstrap_f1_difference,
    bootstrap_rates,
    poisson_rate,
    summary,
)
from affectstream.eval.scoring import ClipRun, PredEvent, TruthEvent, score_runs


@pytest.mark.parametrize(("count", "low", "high"), [
    (0, 0.0, 3.6889),  # the "rule of three" bound for nothing seen
    (1, 0.0253, 5.5716),
    (10, 4.7954, 18.3904),
])
def test_poisson_interval_matches_the_exact_garwood_values(count: int, low: float,
                                                           high: float) -> None:
    assert poisson_rate(count, 1.0) == pytest.approx((low, high), abs=1e-4)
    # per minute: the same counts over half a minute are twice the rate
    assert poisson_rate(count, 0.5) == pytest.approx((2 * low, 2 * high), abs=2e-4)


def test_poisson_interval_needs_time() -> None:
    assert poisson_rate(3, 0.0) is None


def test_identical_clips_give_an_interval_of_zero_width() -> None:
    counts = as_counts([(3, 1, 2)] * 8)
    rates = bootstrap_rates(counts)
    assert rates["precision"] == (0.75, 0.75)
    assert rates["recall"] == (0.6, 0.6)
    assert rates["f1"] == pytest.approx((2 / 3, 2 / 3), abs=1e-4)


def test_interval_holds_the_point_estimate_and_narrows_with_more_clips() -> None:
    rng = np.random.default_rng(7)
    few = as_counts([(int(tp), int(3 - tp), int(3 - tp)) for tp in rng.integers(0, 4, 6)])
    many = np.concatenate([few] * 8)
    tp, fp, fn = few.sum(axis=0)
    f1 = 2 * tp / (2 * tp + fp + fn)
    for counts in (few, many):
        low, high = bootstrap_rates(counts)["f1"]  # type: ignore[misc]
        assert low <= f1 <= high
    width = {name: np.subtract(*bootstrap_rates(c)["f1"][::-1])  # type: ignore[index]
             for name, c in (("few", few), ("many", many))}
    assert width["many"] < width["few"]


def test_bootstrap_is_reproducible_and_empty_sets_have_no_interval() -> None:
    counts = as_counts([(1, 0, 2), (2, 1, 0), (0, 2, 1)])
    assert bootstrap_rates(counts) == bootstrap_rates(counts)
    assert bootstrap_rates(as_counts([])) == {"precision": None, "recall": None, "f1": None}
    assert bootstrap_f1_difference(as_counts([]), as_counts([])) is None


def test_paired_difference_sees_a_spotter_that_is_better_on_every_clip() -> None:
    better = as_counts([(3, 0, 0), (2, 0, 1), (3, 1, 0), (2, 0, 0)])
    worse = as_counts([(1, 2, 2), (0, 2, 3), (1, 3, 2), (1, 1, 1)])
    low, high = bootstrap_f1_difference(better, worse)  # type: ignore[misc]
    assert 0 < low <= high
    low, high = bootstrap_f1_difference(worse, better)  # type: ignore[misc]
    assert low <= high < 0
    with pytest.raises(ValueError, match="same clips"):
        bootstrap_f1_difference(better, worse[:2])


def _run(truths: int, hits: int, *, name: str) -> ClipRun:
    truth = tuple(TruthEvent(20 * i, 20 * i + 3, 20 * i + 6, "micro", "smile")
                  for i in range(truths))
    preds = tuple(PredEvent(t.onset, t.apex, t.offset, "micro") for t in truth[:hits])
    return ClipRun(name, 30.0, 300, "still", False, truth, preds)


def test_score_runs_gives_intervals_for_rates_and_false_bursts() -> None:
    control = ClipRun("ctl", 30.0, 30 * 60, "talking", True, (),
                      tuple(PredEvent(i, i, i + 3, "micro") for i in range(0, 100, 10)))
    r = score_runs([_run(4, 4, name="a"), _run(4, 0, name="b"), control])
    ivs = r["intervals"]
    assert ivs["level"] == 0.95
    assert ivs["overall"]["recall"][0] < r["overall"]["recall"] < ivs["overall"]["recall"][1]
    assert ivs["macro"] == {"precision": (0.0, 0.0), "recall": (0.0, 0.0), "f1": (0.0, 0.0)}
    # 10 false bursts in one minute of talking control
    assert ivs["controls_fpm"]["talking"] == pytest.approx((4.7954, 18.3904), abs=1e-4)
    assert ivs["controls_fpm"]["all"] == ivs["controls_fpm"]["talking"]
    json.dumps(r)


def test_summary_names_the_figures_and_their_intervals() -> None:
    control = ClipRun("ctl", 30.0, 30 * 60, "talking", True, (),
                      (PredEvent(0, 1, 3, "micro"),))
    live = score_runs([_run(4, 3, name="a"), _run(4, 2, name="b"), control])
    doc = {"spotters": {"live": live},
           "live_vs_baseline": {"f1_difference": 0.25, "interval": (0.1, 0.4)}}
    line = summary(doc)
    f1 = live["intervals"]["overall"]["f1"]
    assert line.startswith("95 % intervals of the live spotter")
    assert f"overall F1 {f1[0]:.2f}–{f1[1]:.2f}" in line
    assert "F1 above the baseline +0.25 (0.10–0.40)" in line
    assert "false bursts/min talking 0.0–5.6, all 0.0–5.6" in line
