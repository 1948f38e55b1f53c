"""Which injected events stand out from the footage's own motion: hand-made region positions
of an injected clip and its control, and the recall split per spotter."""

from __future__ import annotations

import numpy as np

from affectstream.eval.scoring import ClipRun, PredEvent, TruthEvent
from affectstream.eval.spotbench import ClipResult, Positions
from affectstream.eval.visibility import describe, stands_out, visibility

REGIONS = 3
FRAMES = 60


def positions(moves: dict[int, list[tuple[int, float]]] | None = None) -> Positions:
    """Still regions, plus per region a list of (frame, vertical offset) from that frame on."""
    out = {f: np.zeros((REGIONS, 2), np.float32) for f in range(FRAMES)}
    for region, steps in (moves or {}).items():
        for frame, offset in steps:
            for f in range(frame, FRAMES):
                out[f][region, 1] = offset
    return out


def pulse(region: int, onset: int, offset: int, amp: float) -> dict[int, list[tuple[int, float]]]:
    return {region: [(onset + 1, amp), (offset, 0.0)]}


def combine(*parts: Positions) -> Positions:
    return {f: sum((p[f] for p in parts), np.zeros((REGIONS, 2), np.float32)) for f in
            range(FRAMES)}


EVENT = TruthEvent(20, 24, 28, "micro", "smile")


def test_an_event_on_a_still_region_stands_out() -> None:
    control = positions()
    injected = positions(pulse(1, 20, 28, 1.5))
    assert stands_out(EVENT, injected, control) is True


def test_an_event_under_larger_natural_motion_of_its_region_is_buried() -> None:
    natural = positions(pulse(1, 18, 30, 6.0))  # the same region moves 6 px on its own
    injected = combine(natural, positions(pulse(1, 20, 28, 1.5)))
    assert stands_out(EVENT, injected, natural) is False
    # natural motion of another region does not bury it
    elsewhere = positions(pulse(2, 18, 30, 6.0))
    injected = combine(elsewhere, positions(pulse(1, 20, 28, 1.5)))
    assert stands_out(EVENT, injected, elsewhere) is True


def test_missing_frames_say_nothing() -> None:
    control = {f: p for f, p in positions().items() if f != 18}  # the reference frame
    assert stands_out(EVENT, positions(pulse(1, 20, 28, 1.5)), control) is None


def _result(name: str, truth: tuple[TruthEvent, ...], preds: tuple[PredEvent, ...],
            pos: Positions, control: bool = False) -> ClipResult:
    run = ClipRun(name, 30.0, FRAMES, "talking", control, truth, preds)
    empty = np.zeros(FRAMES)
    return ClipResult(run, ClipRun(name, 30.0, FRAMES, "talking", control, truth, ()),
                      empty, empty, pos)


def test_recall_is_split_by_visibility_and_clips_without_a_control_are_left_out() -> None:
    buried_event = TruthEvent(40, 44, 48, "micro", "smile")
    natural = positions(pulse(1, 38, 50, 6.0))
    injected = combine(natural, positions(pulse(1, 20, 28, 1.5)),
                       positions(pulse(1, 40, 48, 1.5)))
    found = PredEvent(20, 24, 28, "micro")
    results = [
        (_result("a", (EVENT, buried_event), (found,), injected), "footage"),
        (_result("a-control", (), (), natural, control=True), "footage"),
        # another footage without a control: not counted
        (_result("b", (EVENT,), (found,), positions(pulse(1, 20, 28, 1.5))), "other"),
    ]
    report = visibility(results)
    assert report is not None and report["events"] == 2
    assert report["stand_out"]["live"]["all"] == {"events": 1, "recall": 1.0}
    assert report["buried"]["live"]["all"] == {"events": 1, "recall": 0.0}
    assert report["buried"]["baseline"]["micro"] == {"events": 1, "recall": 0.0}
    line = describe(report)
    assert line.startswith("Of 2 injected events on real footage, 1 stand out")
    assert "are buried under it: live recall 0.00" in line


def test_no_controls_no_report() -> None:
    results = [(_result("a", (EVENT,), (), positions()), None)]
    assert visibility(results) is None
    assert describe(None) == ""
