"""95 % intervals for the spotting benchmark's figures (``affectstream eval spotting``).

The benchmark is small: tens of injected events in a few clips, and control footage of a few
minutes (the talking controls hold 11.5 s outside natural expressions, so one false burst
moves their rate by about 5/min). A figure without its uncertainty invites reading noise as
progress, so the report gives each headline figure an interval:

* precision, recall and F1 (overall and per kind): a percentile bootstrap over the injected
  clips, resampled with replacement, their TP/FP/FN summed as the scorer does. Clips cut from
  the same footage are not independent, so these intervals are if anything too narrow.
* the difference between two spotters' F1 on the same clips: a paired bootstrap (both scored on
  each resampled set of clips).
* false bursts per minute: the exact (Garwood) Poisson interval of the count over the minutes.

Resampling is seeded, so a report is reproducible to the digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import chi2

from affectstream.eval.metrics import from_counts

LEVEL = 0.95
REPS = 2000
SEED = 0
_DIGITS = 4

Interval = tuple[float, float]
Counts = npt.NDArray[np.int64]
"""(clips, 3): TP, FP, FN of each injected clip."""


def poisson_rate(count: int, minutes: float, level: float = LEVEL) -> Interval | None:
    """Exact interval of an event rate per minute from ``count`` events in ``minutes``;
    None when there was no time to count in."""
    if minutes <= 0:
        return None
    alpha = 1.0 - level
    low = float(chi2.ppf(alpha / 2, 2 * count)) / 2 if count > 0 else 0.0
    high = float(chi2.ppf(1 - alpha / 2, 2 * count + 2)) / 2
    return round(low / minutes, _DIGITS), round(high / minutes, _DIGITS)


def _rates(sums: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.float64]]:
    """Precision, recall and F1 of each row of summed (n, 3) counts, as the scorer computes
    them (:func:`~affectstream.eval.metrics.from_counts`)."""
    scores = [from_counts(int(tp), int(fp), int(fn)) for tp, fp, fn in sums]
    return {name: np.array([getattr(sc, name) for sc in scores])
            for name in ("precision", "recall", "f1")}


def _resamples(clips: int, reps: int, seed: int) -> npt.NDArray[np.int64]:
    """(reps, clips) clip indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, clips, size=(reps, clips))


def _percentiles(values: npt.NDArray[np.float64], level: float) -> Interval:
    alpha = 1.0 - level
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return round(float(low), _DIGITS), round(float(high), _DIGITS)


def bootstrap_rates(counts: Counts, level: float = LEVEL, reps: int = REPS,
                    seed: int = SEED) -> dict[str, Interval | None]:
    """Intervals of precision, recall and F1 from per-clip counts; None without clips."""
    if len(counts) == 0:
        return {"precision": None, "recall": None, "f1": None}
    sums = counts[_resamples(len(counts), reps, seed)].sum(axis=1)
    return {name: _percentiles(values, level) for name, values in _rates(sums).items()}


def bootstrap_f1_difference(first: Counts, second: Counts, level: float = LEVEL,
                            reps: int = REPS, seed: int = SEED) -> Interval | None:
    """Interval of F1(first) − F1(second), both spotters scored on the same resampled clips
    (row i of both arrays is the same clip)."""
    if len(first) != len(second):
        raise ValueError(f"paired counts need the same clips ({len(first)} vs {len(second)})")
    if len(first) == 0:
        return None
    picks = _resamples(len(first), reps, seed)
    diff = _rates(first[picks].sum(axis=1))["f1"] - _rates(second[picks].sum(axis=1))["f1"]
    return _percentiles(diff, level)


def as_counts(rows: Sequence[tuple[int, int, int]]) -> Counts:
    """Per-clip (TP, FP, FN) tuples as the array the bootstrap takes."""
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), 3)


def _span(interval: Sequence[float] | None, digits: int = 2) -> str:
    return "—" if interval is None else f"{interval[0]:.{digits}f}–{interval[1]:.{digits}f}"


def summary(doc: dict[str, Any]) -> str:
    """One line of the live spotter's 95 % intervals in an ``eval spotting`` report."""
    live = doc["spotters"]["live"]
    ivs = live.get("intervals")
    if ivs is None:
        return ""
    fpm = ivs["controls_fpm"]
    parts = [f"overall F1 {_span(ivs['overall']['f1'])}",
             f"micro recall {_span(ivs['micro']['recall'])}"]
    diff = doc.get("live_vs_baseline")
    if diff is not None:
        parts.append(f"F1 above the baseline {diff['f1_difference']:+.2f} "
                     f"({_span(diff['interval'])})")
    rates = [f"{name} {_span(fpm[name], 1)}" for name in ("talking", "all") if name in fpm]
    if rates:
        parts.append("false bursts/min " + ", ".join(rates))
    return (f"{round(100 * ivs['level'])} % intervals of the live spotter (bootstrap over "
            "clips; exact Poisson for false bursts): " + "; ".join(parts))
