"""The DFER evaluation's conditions (issue 12, DESIGN §9): what one clip's request holds.

Every condition builds its request with the live stage's context builder
(:func:`affectstream.vlm.context.build_context`) from the same perception output
(:class:`~affectstream.eval.dfer_clips.ClipView`), over the whole clip as the window:

==================== ===============================================================
``uniform-K``        K aligned crops, spread evenly (the builder's keyframe choice with no
                     bursts), no motion text: the paper's sparse baseline
``dense-F``          every crop at F frames per second (F in 1, 5, 10), no motion text:
                     the paper's dense sampling ("attentional dilution")
``enriched-detectors`` the same K crops as ``uniform-K`` interleaved with affectstream's burst
                     and slow-change lines: stage 2 with the detectors as stage 1
``enriched-vlm``     the same K crops interleaved with VLM captions of the crops between
                     them (:mod:`affectstream.vlm.captions`): the paper's stage 1 and 2
``events``           burst apexes first, then evenly spread crops, with the detector lines:
                     exactly what the live stage sends
==================== ===============================================================

K defaults to ``vlm.keyframes`` (4). A ``+cal`` suffix adds the calibrated twin of a
condition: the same answers, calibrated afterwards (no extra request).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from affectstream.errors import ConfigError
from affectstream.eval.dfer_clips import ClipView
from affectstream.types import Keyframe
from affectstream.vlm.captions import caption_requests
from affectstream.vlm.context import Caption, MotionText, VlmContext, build_context

Kind = Literal["uniform", "dense", "enriched-detectors", "enriched-vlm", "events"]
DENSE_FPS = (1, 5, 10)
CAL = "+cal"
_NAME = re.compile(r"^(uniform)-(\d+)$|^(dense)-(\d+)$|^(enriched-detectors|enriched-vlm|events)"
                   r"(?:-(\d+))?$")


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    """Without ``+cal``: the requests of a calibrated twin are its base condition's."""
    kind: Kind
    k: int = 4
    fps: int = 0

    @property
    def captions(self) -> bool:
        return self.kind == "enriched-vlm"


def parse_condition(spec: str, default_k: int) -> tuple[Condition, bool]:
    """A condition name and whether it carries ``+cal``."""
    base, cal = (spec[: -len(CAL)], True) if spec.endswith(CAL) else (spec, False)
    m = _NAME.match(base.strip().lower())
    if m is None:
        raise ConfigError(f"unknown condition {spec!r}; use uniform-K, dense-F (F in 1, 5, 10), "
                          "enriched-detectors, enriched-vlm or events, each optionally +cal")
    if m.group(1):
        k = int(m.group(2))
        if not 1 <= k <= 64:
            raise ConfigError(f"{spec}: K must be 1 to 64")
        return Condition(f"uniform-{k}", "uniform", k=k), cal
    if m.group(3):
        fps = int(m.group(4))
        if fps not in DENSE_FPS:
            raise ConfigError(f"{spec}: dense conditions are dense-1, dense-5 and dense-10")
        return Condition(f"dense-{fps}", "dense", fps=fps), cal
    kinds: dict[str, Kind] = {"enriched-detectors": "enriched-detectors",
                              "enriched-vlm": "enriched-vlm", "events": "events"}
    kind = kinds[m.group(5)]
    k = int(m.group(6)) if m.group(6) else default_k
    name = kind if k == default_k else f"{kind}-{k}"
    return Condition(name, kind, k=k), cal


def parse_conditions(specs: Sequence[str], default_k: int
                     ) -> tuple[list[Condition], list[str]]:
    """The base conditions to ask (in order, once each) and the names of the results wanted
    (``events``, ``events+cal``…), in the order given. Specs may also be comma-separated."""
    bases: dict[str, Condition] = {}
    wanted: dict[str, bool] = {}
    for spec in specs:
        for part in spec.split(","):
            if not part.strip():
                continue
            cond, cal = parse_condition(part.strip(), default_k)
            bases.setdefault(cond.name, cond)
            wanted[cond.name + (CAL if cal else "")] = True
    if not bases:
        raise ConfigError("--conditions is empty; name at least one condition")
    return list(bases.values()), list(wanted)


def pool_fps(conditions: Sequence[Condition], caption_fps: float) -> float:
    """The crop rate perception must keep for these conditions (at least 2/s)."""
    rates = [2.0] + [float(c.fps) for c in conditions if c.kind == "dense"]
    rates += [caption_fps for c in conditions if c.captions]
    return max(rates)


def _thinned(pool: Sequence[Keyframe], fps: float) -> list[Keyframe]:
    min_dt = 0.95 / fps
    out: list[Keyframe] = []
    for kf in pool:
        if not out or kf.pts_s - out[-1].pts_s >= min_dt:
            out.append(kf)
    return out


def build(cond: Condition, view: ClipView, labels: Sequence[str], *, max_side: int,
          captions: Sequence[Caption | None] | None = None) -> VlmContext:
    """The request of ``cond`` for one clip (``captions`` from :func:`caption_contexts`)."""
    periodic, apexes, lines = list(view.periodic), list(view.apexes), list(view.lines)
    motion: MotionText = "detectors"
    k = cond.k
    if cond.kind == "uniform":
        apexes, lines, motion = [], [], "none"
    elif cond.kind == "dense":
        periodic = _thinned(periodic, cond.fps)
        apexes, lines, motion, k = [], [], "none", len(periodic)
    elif cond.kind == "enriched-detectors":
        apexes = []
    elif cond.kind == "enriched-vlm":
        apexes, lines, motion = [], [], "vlm"
    return build_context(view.track_id, periodic, apexes, lines, view.window, labels, k=k,
                         max_side=max_side, motion_text=motion, captions=captions)


def caption_contexts(cond: Condition, view: ClipView, *, max_frames: int, max_fps: float,
                     max_side: int) -> list[VlmContext | None]:
    """The caption requests of ``enriched-vlm`` (one per gap; None: nothing between)."""
    return caption_requests(view.track_id, view.periodic, [], view.window, k=cond.k,
                            max_frames=max_frames, max_fps=max_fps, max_side=max_side)
