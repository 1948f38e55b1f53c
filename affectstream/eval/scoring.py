"""Scorer of the spotting benchmark (``affectstream eval spotting``, DESIGN §4 and §9).

One :class:`ClipRun` holds a clip's ground truth and one spotter's predictions. :func:`score_runs`
turns a list of them into the report ``R`` of the design::

    {"overall" | "micro" | "macro": {"precision", "recall", "f1", "tp", "fp", "fn"},
     "controls_fpm": {"all": …, <category>: …},
     "attribution": {"matched", "region_accuracy", "region_any", "au_accuracy"},
     "latency_ms": {"p50", "p95"},
     "intervals": {"level", "overall" | "micro" | "macro": {"precision", "recall", "f1"},
                   "controls_fpm": {"all": …, <category>: …}}}

Each interval is ``[low, high]`` at 95 % (:mod:`affectstream.eval.intervals`), or None where the
figure has no data.

Scoring follows MEGC: per clip, micro predictions are matched against micro truths and macro
predictions against macro truths (IoU ≥ threshold, one-to-one, :func:`score_spotting`), the counts
are summed over clips and the rates come from the sums. Control clips carry no truth; their
predictions are false bursts, reported per minute and kept out of precision so that the length of
the control footage cannot move the headline F1.

Real footage has expressions of its own (a laugh, a surprised face) that no injection put there.
Where a clip annotates them (``ClipRun.natural``), a burst that matches no truth and lies mostly
inside one is counted apart (``on_natural``), neither a hit nor a false burst, and control
minutes exclude them; ``controls_fpm_raw`` counts every burst over the whole control footage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from affectstream.detectors.spotter import LOWER_FACE
from affectstream.errors import ConfigError
from affectstream.eval.inject import ACTIONS
from affectstream.eval.intervals import LEVEL, as_counts, bootstrap_rates, poisson_rate
from affectstream.eval.metrics import SpottingScore, from_counts, score_spotting
from affectstream.percentiles import percentiles
from affectstream.types import Burst

Kind = Literal["micro", "macro"]
KINDS: tuple[Kind, ...] = ("micro", "macro")
_DIGITS = 4


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """One injected expression: 0-based inclusive frames and the synthetic action's name."""

    onset: int
    apex: int
    offset: int
    kind: Kind
    action: str

    def __post_init__(self) -> None:
        if not 0 <= self.onset <= self.apex <= self.offset:
            raise ConfigError(
                f"truth frames {self.onset}/{self.apex}/{self.offset} out of order; "
                "need 0 <= onset <= apex <= offset"
            )
        if self.kind not in KINDS:
            raise ConfigError(f"truth kind {self.kind!r} is invalid; use 'micro' or 'macro'")
        if self.action not in ACTIONS:
            raise ConfigError(
                f"unknown truth action {self.action!r}; use one of {', '.join(sorted(ACTIONS))}"
            )


@dataclass(frozen=True, slots=True)
class PredEvent:
    """One spotted burst: frames, kind, regions strongest first, AUs, frame it was emitted on."""

    onset: int
    apex: int
    offset: int
    kind: Kind
    regions: tuple[str, ...] = ()
    aus: tuple[int, ...] = ()
    emitted_frame: int | None = None
    speaking: bool = False
    """The face was speaking at the apex (the burst message's ``speaking``)."""

    def __post_init__(self) -> None:
        if not 0 <= self.onset <= self.offset:
            raise ConfigError(
                f"predicted interval ({self.onset}, {self.offset}) invalid; "
                "need 0 <= onset <= offset"
            )
        if self.kind not in KINDS:
            raise ConfigError(f"predicted kind {self.kind!r} is invalid; use 'micro' or 'macro'")

    @classmethod
    def of_burst(cls, burst: Burst, emitted_frame: int) -> PredEvent:
        """A live burst as the scorer sees it, emitted with frame ``emitted_frame``."""
        return cls(burst.onset_frame, burst.apex_frame, burst.offset_frame, burst.kind,
                   burst.regions, tuple(u.au for u in burst.action_units), emitted_frame,
                   burst.speaking)


@dataclass(frozen=True, slots=True)
class ClipRun:
    """One clip scored for one spotter. Control clips (``control=True``) have no truth."""

    name: str
    fps: float
    frames: int
    category: str
    control: bool
    truth: tuple[TruthEvent, ...]
    preds: tuple[PredEvent, ...]
    natural: tuple[tuple[int, int], ...] = ()
    """Hand-annotated natural expressions of the footage (inclusive frames): a burst that is
    mostly inside one is neither a hit nor a false burst, it is counted apart."""

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ConfigError(f"clip {self.name!r}: fps {self.fps} must be > 0")
        if self.frames < 0:
            raise ConfigError(f"clip {self.name!r}: frames {self.frames} must be >= 0")
        if self.control and self.truth:
            raise ConfigError(
                f"clip {self.name!r} is a control but has {len(self.truth)} truth events; "
                "controls carry no truth"
            )

    @property
    def minutes(self) -> float:
        """Length outside the natural expressions (the time a false burst can happen in)."""
        inside = np.zeros(max(self.frames, 0), bool)
        for a, b in self.natural:
            inside[max(0, a):b + 1] = True
        return float((~inside).sum()) / self.fps / 60.0

    def on_natural(self, pred: PredEvent) -> bool:
        """At least half of the burst lies inside one natural expression."""
        span = pred.offset - pred.onset + 1
        return any(min(b, pred.offset) - max(a, pred.onset) + 1 >= 0.5 * span
                   for a, b in self.natural)


def speech_filtered(run: ClipRun) -> ClipRun:
    """``run`` as a subscriber sees it who drops the bursts of the lower face alone (nose,
    mouth, chin) that came while the face was speaking: they may be speech."""
    kept = tuple(p for p in run.preds if not (p.speaking and p.regions and all(
        r.startswith(LOWER_FACE) for r in p.regions)))
    return dataclasses.replace(run, preds=kept)


EXPECTED_REGIONS: Mapping[str, frozenset[str]] = {
    "smile": frozenset({"mouth_corner"}),
    "lip_corner_depress": frozenset({"mouth_corner"}),
    "upper_lip_raise": frozenset({"upper_lip"}),
    "brow_raise": frozenset({"inner_brow", "outer_brow"}),
    "brow_lower": frozenset({"inner_brow"}),
    "eye_squint": frozenset({"lower_lid"}),
    # No cheek region: the raised cheek pushes the lower lids up, which is what the flow sees.
    "cheek_raise": frozenset({"lower_lid"}),
}
"""Region stems (``align.REGIONS`` names without ``_L``/``_R``) that each action moves."""

EXPECTED_AUS: Mapping[str, frozenset[int]] = {
    name: frozenset(int(part.strip().removeprefix("AU")) for part in action.au.split("+"))
    for name, action in ACTIONS.items()
}
"""FACS action units of each synthetic action, from ``ACTIONS[name].au`` (``'AU1+AU2'`` → 1, 2)."""


def region_stem(region: str) -> str:
    """``'mouth_corner_L'`` → ``'mouth_corner'``: attribution does not care about the side."""
    for side in ("_L", "_R"):
        if region.endswith(side):
            return region[: -len(side)]
    return region


def _spot(
    run: ClipRun, kind: Kind, iou_threshold: float
) -> tuple[list[PredEvent], list[TruthEvent], SpottingScore]:
    """Match one kind's predictions against the same kind's truths (MEGC scores kinds apart)."""
    preds = [p for p in run.preds if p.kind == kind]
    truths = [t for t in run.truth if t.kind == kind]
    score = score_spotting(
        [(p.onset, p.offset) for p in preds],
        [(t.onset, t.offset) for t in truths],
        iou_threshold,
    )
    matched = {i for i, _ in score.matches}
    natural = sum(1 for i, p in enumerate(preds) if i not in matched and run.on_natural(p))
    if natural:  # unmatched bursts on a natural expression are not false ones
        score = from_counts(score.tp, score.fp - natural, score.fn, score.matches)
    return preds, truths, score


def match_pairs(run: ClipRun, iou_threshold: float = 0.5) -> list[tuple[PredEvent, TruthEvent]]:
    """The matched (prediction, truth) pairs of one clip, micro then macro, by truth onset."""
    pairs: list[tuple[PredEvent, TruthEvent]] = []
    for kind in KINDS:
        preds, truths, score = _spot(run, kind, iou_threshold)
        pairs.extend((preds[i], truths[j]) for i, j in score.matches)
    pairs.sort(key=lambda pt: (KINDS.index(pt[1].kind), pt[1].onset, pt[1].offset))
    return pairs


def _r(x: float) -> float:
    return round(float(x), _DIGITS)


def _counts(tp: int, fp: int, fn: int) -> dict[str, Any]:
    s = from_counts(tp, fp, fn)
    return {"precision": _r(s.precision), "recall": _r(s.recall), "f1": _r(s.f1),
            "tp": tp, "fp": fp, "fn": fn}  # fmt: skip


def _false_bursts(runs: Iterable[ClipRun]) -> tuple[int, float]:
    """False bursts on the given control clips, and the minutes they could happen in."""
    runs = list(runs)
    return (sum(1 for r in runs for p in r.preds if not r.on_natural(p)),
            sum(r.minutes for r in runs))


def _fpm(runs: Iterable[ClipRun]) -> float | None:
    """False bursts per minute over the given control clips; None when they last no time."""
    return _rate(*_false_bursts(runs))


def _rate(false: int, minutes: float) -> float | None:
    return _r(false / minutes) if minutes > 0 else None


def _raw_fpm(runs: Sequence[ClipRun]) -> float | None:
    """Every burst on the control clips per minute of them, natural expressions included."""
    minutes = sum(r.frames / r.fps / 60.0 for r in runs)
    return _r(sum(len(r.preds) for r in runs) / minutes) if minutes > 0 else None


def _on_natural(runs: Sequence[ClipRun], iou_threshold: float) -> int:
    """Bursts that matched no truth and lie on a natural expression (all clips)."""
    count = 0
    for run in runs:
        matched = {id(p) for p, _ in match_pairs(run, iou_threshold)}
        count += sum(1 for p in run.preds if id(p) not in matched and run.on_natural(p))
    return count


def _attribution(pairs: Sequence[tuple[PredEvent, TruthEvent]]) -> dict[str, Any]:
    n = len(pairs)
    if n == 0 or not any(p.regions or p.aus for p, _ in pairs):  # nothing to attribute
        return {"matched": n, "region_accuracy": None, "region_any": None, "au_accuracy": None}
    first = any_ = au = 0
    for pred, truth in pairs:
        expected = EXPECTED_REGIONS[truth.action]
        stems = [region_stem(r) for r in pred.regions]
        first += bool(stems) and stems[0] in expected
        any_ += any(s in expected for s in stems)
        au += bool(EXPECTED_AUS[truth.action].intersection(pred.aus))
    return {"matched": n, "region_accuracy": _r(first / n), "region_any": _r(any_ / n),
            "au_accuracy": _r(au / n)}  # fmt: skip


def _latency(runs: Sequence[ClipRun]) -> dict[str, float | None]:
    """Stream-time delay from a burst's offset frame to the frame it was emitted on, in ms."""
    delays = [
        (p.emitted_frame - p.offset) / r.fps * 1000.0
        for r in runs
        for p in r.preds
        if p.emitted_frame is not None
    ]
    # an offline spotter emits nothing while the video plays: None, None
    return percentiles(delays, digits=_DIGITS)


def score_runs(runs: Sequence[ClipRun], iou_threshold: float = 0.5) -> dict[str, Any]:
    """The report R of one spotter over a benchmark set (see the module docstring)."""
    per_clip: dict[Kind, list[tuple[int, int, int]]] = {kind: [] for kind in KINDS}
    pairs: list[tuple[PredEvent, TruthEvent]] = []
    for run in runs:
        if run.control:
            continue
        for kind in KINDS:
            _, _, s = _spot(run, kind, iou_threshold)
            per_clip[kind].append((s.tp, s.fp, s.fn))
        pairs.extend(match_pairs(run, iou_threshold))
    counts = {kind: as_counts(rows) for kind, rows in per_clip.items()}
    both = counts["micro"] + counts["macro"]
    sums = {kind: [int(v) for v in c.sum(axis=0)] for kind, c in counts.items()}
    total = [int(v) for v in both.sum(axis=0)]
    controls = [r for r in runs if r.control]
    groups = {"all": controls} | {c: [r for r in controls if r.category == c]
                                  for c in sorted({r.category for r in controls})}
    false = {name: _false_bursts(group) for name, group in groups.items()}
    fpm = {name: _rate(*counted) for name, counted in false.items()}
    return {
        "overall": _counts(*total),
        "micro": _counts(*sums["micro"]),
        "macro": _counts(*sums["macro"]),
        "controls_fpm": fpm,
        "controls_fpm_raw": _raw_fpm(controls),
        "on_natural": _on_natural(runs, iou_threshold),
        "attribution": _attribution(pairs),
        "latency_ms": _latency(runs),
        "intervals": {
            "level": LEVEL,
            "overall": bootstrap_rates(both),
            **{kind: bootstrap_rates(c) for kind, c in counts.items()},
            "controls_fpm": {name: poisson_rate(*counted) for name, counted in false.items()},
        },
    }


def clip_counts(run: ClipRun, iou_threshold: float = 0.5) -> tuple[int, int, int]:
    """TP, FP, FN of one injected clip, micro and macro summed (all zero for a control)."""
    if run.control:
        return 0, 0, 0
    counts = [_spot(run, kind, iou_threshold)[2] for kind in KINDS]
    return (sum(s.tp for s in counts), sum(s.fp for s in counts), sum(s.fn for s in counts))


def per_clip_rows(runs: Sequence[ClipRun], iou_threshold: float = 0.5) -> list[dict[str, Any]]:
    """One row per clip for tables: counts for injected clips, bursts/min for controls.

    Every row has the same keys; the ones that do not apply to the clip are None.
    """
    rows: list[dict[str, Any]] = []
    for run in runs:
        tp, fp, fn = clip_counts(run, iou_threshold)
        rows.append({
            "name": run.name, "category": run.category, "control": run.control,
            "fps": _r(run.fps), "frames": run.frames,
            "truth": len(run.truth), "preds": len(run.preds),
            "tp": None if run.control else tp,
            "fp": None if run.control else fp,
            "fn": None if run.control else fn,
            "bursts_per_min": _fpm([run]) if run.control else None,
        })  # fmt: skip
    return rows
