"""How visible each injected event is to region motion, and what each spotter finds of the
visible and of the buried ones (``affectstream eval spotting``, docs/spotting.md).

An injected clip and the un-injected control of the same footage have the same natural motion,
so the movement an injection adds is known exactly: the injected clip's region positions minus
the control's, over the event's frames (from two frames before its onset to two after its
offset, against the first of them). The region that moved most is the event's region. The
event *stands out* when that movement is at least the natural movement of the same region
over the same frames (the control's), and is *buried* otherwise: a 1 px lip-corner pulse
while the jaw travels 10 px in a laugh. Clips without such a control (the photo moved like a
head, whose motion is drawn per seed; clips given on the command line) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from affectstream.eval.scoring import ClipRun, TruthEvent, match_pairs

if TYPE_CHECKING:  # spotbench builds the report with this module
    from affectstream.eval.spotbench import ClipResult, Positions

_MARGIN = 2
"""Frames before the onset (the reference) and after the offset that the event spans."""


def stands_out(event: TruthEvent, injected: Positions, control: Positions) -> bool | None:
    """Whether the event's own movement reaches the natural movement of its region; None
    when the frames are missing (no face there on one of the two clips)."""
    ref = event.onset - _MARGIN
    frames = [f for f in range(ref, event.offset + _MARGIN + 1)
              if f in injected and f in control]
    if ref not in injected or ref not in control or len(frames) < 2:
        return None
    own = np.array([np.linalg.norm((injected[f] - injected[ref]) - (control[f] - control[ref]),
                                   axis=1) for f in frames]).max(axis=0)
    region = int(own.argmax())
    natural = max(float(np.linalg.norm(control[f][region] - control[ref][region]))
                  for f in frames)
    return bool(own[region] >= natural)


def _controls(results: Sequence[tuple[ClipResult, str | None]]) -> dict[tuple[str, int], Positions]:
    return {(footage, r.live.frames): r.positions for r, footage in results
            if r.live.control and footage is not None and r.positions is not None}


def _found(run: ClipRun) -> set[TruthEvent]:
    return {truth for _, truth in match_pairs(run)}


def visibility(results: Sequence[tuple[ClipResult, str | None]]) -> dict[str, Any] | None:
    """Per spotter, recall among the events that stand out and among the buried ones (all
    and micro); None when no injected clip has a control of its footage. ``results`` pairs
    each clip's result with its footage (:attr:`BenchClip.footage`)."""
    controls = _controls(results)
    rows: list[tuple[bool, str, dict[str, bool]]] = []  # stands out, kind, found per spotter
    for result, footage in results:
        control = controls.get((footage or "", result.live.frames))
        if result.live.control or control is None or result.positions is None:
            continue
        live, base = _found(result.live), _found(result.baseline)
        for event in result.live.truth:
            visible = stands_out(event, result.positions, control)
            if visible is not None:
                rows.append((visible, event.kind,
                             {"live": event in live, "baseline": event in base}))
    if not rows:
        return None

    def recall(visible: bool, spotter: str, micro: bool) -> dict[str, Any]:
        hits = [found[spotter] for out, kind, found in rows
                if out == visible and (not micro or kind == "micro")]
        return {"events": len(hits),
                "recall": round(sum(hits) / len(hits), 4) if hits else None}

    return {
        "events": len(rows),
        **{group: {spotter: {"all": recall(visible, spotter, False),
                             "micro": recall(visible, spotter, True)}
                   for spotter in ("live", "baseline")}
           for group, visible in (("stand_out", True), ("buried", False))},
    }


def describe(report: dict[str, Any] | None) -> str:
    """One line of the visibility report for the terminal and the HTML report."""
    if report is None:
        return ""
    parts = []
    for group, label in (("stand_out", "stand out from the footage's own motion"),
                         ("buried", "are buried under it")):
        live, base = report[group]["live"]["all"], report[group]["baseline"]["all"]
        if live["events"]:
            parts.append(f"{live['events']} {label}: live recall {live['recall']:.2f}, "
                         f"baseline {base['recall']:.2f}")
    return f"Of {report['events']} injected events on real footage, " + "; ".join(parts)
