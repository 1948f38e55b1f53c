"""The spotting benchmark scorer on hand-computed cases (MEGC per kind, sums over clips)."""

from __future__ import annotations

import json

import pytest

from affectstream.errors import ConfigError
from affectstream.eval.inject import ACTIONS
from affectstream.eval.scoring import (
    EXPECTED_AUS,
    EXPECTED_REGIONS,
    ClipRun,
    PredEvent,
    TruthEvent,
    match_pairs,
    per_clip_rows,
    region_stem,
    score_runs,
    speech_filtered,
)


def truth(onset: int, offset: int, kind: str = "micro", action: str = "smile") -> TruthEvent:
    return TruthEvent(onset, (onset + offset) // 2, offset, kind, action)  # type: ignore[arg-type]


def pred(onset: int, offset: int, kind: str = "micro", **kw: object) -> PredEvent:
    return PredEvent(onset, (onset + offset) // 2, offset, kind, **kw)  # type: ignore[arg-type]


def clip(truths: list[TruthEvent], preds: list[PredEvent], *, name: str = "c", fps: float = 30.0,
         frames: int = 300, category: str = "still", control: bool = False,
         natural: tuple[tuple[int, int], ...] = ()) -> ClipRun:  # fmt: skip
    return ClipRun(name, fps, frames, category, control, tuple(truths), tuple(preds), natural)


def counts(report: dict[str, object], key: str = "overall") -> tuple[int, int, int]:
    part = report[key]
    assert isinstance(part, dict)
    return part["tp"], part["fp"], part["fn"]


def test_report_has_exactly_the_design_shape() -> None:
    r = score_runs([clip([truth(0, 9)], [pred(0, 9)])])
    assert list(r) == ["overall", "micro", "macro", "controls_fpm", "controls_fpm_raw",
                       "on_natural", "attribution", "latency_ms", "intervals"]
    assert list(r["intervals"]) == ["level", "overall", "micro", "macro", "controls_fpm"]
    for key in ("overall", "micro", "macro"):
        assert list(r[key]) == ["precision", "recall", "f1", "tp", "fp", "fn"]
    assert list(r["attribution"]) == ["matched", "region_accuracy", "region_any", "au_accuracy"]
    assert list(r["latency_ms"]) == ["p50", "p95"]
    json.dumps(r)  # plain JSON types only


@pytest.mark.parametrize(
    ("pred_iv", "expected"),
    [
        ((0, 50), (1, 0, 0)),  # 51/100 shared frames: just above 0.5
        ((0, 49), (1, 0, 0)),  # exactly 0.5 counts
        ((0, 48), (0, 1, 1)),  # 49/100: just below
        ((49, 99), (1, 0, 0)),  # 51/100 from the other side
        ((50, 149), (0, 1, 1)),  # 50/150 partial overlap, well below
    ],
)
def test_partial_overlap_around_threshold(
    pred_iv: tuple[int, int], expected: tuple[int, int, int]
) -> None:
    r = score_runs([clip([truth(0, 99)], [pred(*pred_iv)])])
    assert counts(r) == expected


def test_threshold_is_passed_through() -> None:
    run = clip([truth(0, 99)], [pred(0, 44)])  # IoU 0.45
    assert counts(score_runs([run])) == (0, 1, 1)
    assert counts(score_runs([run], iou_threshold=0.4)) == (1, 0, 0)


def test_one_prediction_covering_two_events_is_one_tp_one_fn() -> None:
    r = score_runs([clip([truth(0, 9), truth(10, 19)], [pred(0, 19)])])
    assert counts(r) == (1, 0, 1)
    assert r["overall"]["precision"] == 1.0 and r["overall"]["recall"] == 0.5
    assert r["overall"]["f1"] == 0.6667


def test_duplicate_predictions_are_one_tp_one_fp() -> None:
    r = score_runs([clip([truth(20, 29)], [pred(20, 29), pred(21, 29)])])
    assert counts(r) == (1, 1, 0)
    assert r["overall"]["precision"] == 0.5


def test_empty_sets() -> None:
    nothing = score_runs([])
    assert counts(nothing) == (0, 0, 0)
    assert nothing["overall"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                  "tp": 0, "fp": 0, "fn": 0}  # fmt: skip
    assert nothing["controls_fpm"] == {"all": None}
    assert nothing["attribution"] == {"matched": 0, "region_accuracy": None, "region_any": None,
                                      "au_accuracy": None}  # fmt: skip
    assert nothing["latency_ms"] == {"p50": None, "p95": None}  # nothing was emitted live
    assert counts(score_runs([clip([], [])])) == (0, 0, 0)
    missed = score_runs([clip([truth(0, 9), truth(50, 80, "macro")], [])])
    assert counts(missed) == (0, 0, 2) and counts(missed, "macro") == (0, 0, 1)
    spurious = score_runs([clip([], [pred(0, 9)])])  # an injected clip: unmatched is an FP
    assert counts(spurious) == (0, 1, 0) and spurious["overall"]["precision"] == 0.0


def test_kinds_are_matched_apart() -> None:
    # Identical intervals, but a micro prediction cannot claim a macro truth (MEGC).
    r = score_runs([clip([truth(0, 20, "macro")], [pred(0, 20, "micro")])])
    assert counts(r, "micro") == (0, 1, 0)
    assert counts(r, "macro") == (0, 0, 1)
    assert counts(r) == (0, 1, 1)
    assert match_pairs(clip([truth(0, 20, "macro")], [pred(0, 20, "micro")])) == []


def test_counts_are_summed_over_clips_before_rates() -> None:
    a = clip([truth(0, 9), truth(40, 49)], [pred(0, 9)], name="a")  # micro 1 TP, 1 FN
    b_preds = [pred(100, 140, "macro"), pred(200, 240, "macro"), pred(10, 14)]
    b = clip([truth(100, 140, "macro")], b_preds, name="b")  # macro 1 TP 1 FP, micro 1 FP
    c = clip([truth(5, 30, "macro")], [pred(60, 90, "macro")], name="c")  # macro FP + FN
    r = score_runs([a, b, c])
    assert counts(r, "micro") == (1, 1, 1)
    assert counts(r, "macro") == (1, 2, 1)
    assert counts(r) == (2, 3, 2)
    # From the sums (2/5, 2/4), not the mean of per-clip rates (which would be (1+1/3+0)/3).
    assert r["overall"]["precision"] == 0.4
    assert r["overall"]["recall"] == 0.5
    assert r["overall"]["f1"] == round(2 * 0.4 * 0.5 / 0.9, 4)
    assert r["micro"]["precision"] == 0.5 and r["macro"]["recall"] == 0.5


def test_controls_report_bursts_per_minute_and_stay_out_of_precision() -> None:
    injected = clip([truth(0, 9)], [pred(0, 9)])
    still = [clip([], [pred(0, 5)], frames=1800, control=True, name="s1"),  # 1 min at 30 fps
             clip([], [pred(0, 5), pred(9, 12), pred(30, 40, "macro")], frames=1800,
                  control=True, name="s2")]  # fmt: skip
    talking = clip([], [pred(i * 10, i * 10 + 3) for i in range(5)], fps=25.0, frames=750,
                   category="talking", control=True, name="t")  # fmt: skip
    r = score_runs([injected, *still, talking])
    assert r["controls_fpm"] == {"all": 3.6, "still": 2.0, "talking": 10.0}  # 9 / 2.5 min
    assert counts(r) == (1, 0, 0)
    assert r["overall"]["precision"] == 1.0


def test_speech_filter_drops_only_lower_face_bursts_made_while_speaking() -> None:
    run = clip([truth(0, 9)], [
        pred(0, 9, regions=("mouth_corner_L",), speaking=True),         # dropped: mouth alone
        pred(20, 29, regions=("chin", "nose"), speaking=True),          # dropped: lower face
        pred(40, 49, regions=("mouth_corner_L", "lower_lid_L"), speaking=True),  # eyes too
        pred(60, 69, regions=("inner_brow_R",), speaking=True),         # brows while talking
        pred(80, 89, regions=("upper_lip",), speaking=False),           # not speaking
    ])
    kept = speech_filtered(run)
    assert [p.onset for p in kept.preds] == [40, 60, 80]
    assert (kept.name, kept.truth, kept.frames) == (run.name, run.truth, run.frames)
    assert counts(score_runs([kept])) == (0, 3, 1)


def test_bursts_on_natural_expressions_are_counted_apart() -> None:
    """A burst mostly inside an annotated natural expression is neither a hit nor a false
    burst; the control's minutes exclude the natural expressions; raw rates keep everything."""
    natural = ((100, 159),)  # 60 of 1800 frames
    control = clip([], [pred(100, 109), pred(150, 169), pred(155, 175), pred(500, 505)],
                   frames=1800, control=True, natural=natural)
    r = score_runs([control])
    # (150, 169): 10 of 20 frames inside → natural; (155, 175): 5 of 21 → a false burst.
    assert r["on_natural"] == 2
    assert r["controls_fpm"]["all"] == pytest.approx(2 / (1740 / 30 / 60), abs=1e-3)
    assert r["controls_fpm_raw"] == 4.0
    injected = clip([truth(10, 19)], [pred(10, 19), pred(100, 110), pred(200, 210)],
                    natural=natural)
    r = score_runs([injected])
    assert counts(r) == (1, 1, 0)  # the burst on the natural expression is not an FP
    assert r["on_natural"] == 1
    # a burst that matches the truth stays a hit even inside a natural expression
    inside = clip([truth(100, 109)], [pred(100, 109)], natural=natural)
    assert counts(score_runs([inside])) == (1, 0, 0)


def test_control_with_truth_is_rejected() -> None:
    with pytest.raises(ConfigError, match="control"):
        clip([truth(0, 9)], [], control=True)


def test_invalid_events_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown truth action"):
        truth(0, 9, action="wink")
    with pytest.raises(ConfigError, match="kind"):
        pred(0, 9, kind="nano")
    with pytest.raises(ConfigError, match="out of order"):
        TruthEvent(5, 2, 9, "micro", "smile")
    with pytest.raises(ConfigError, match="fps"):
        clip([], [], fps=0.0)


def test_expected_tables_cover_every_action() -> None:
    assert set(EXPECTED_REGIONS) == set(ACTIONS) == set(EXPECTED_AUS)
    assert EXPECTED_AUS["brow_raise"] == {1, 2}
    assert EXPECTED_AUS["smile"] == {12} and EXPECTED_AUS["cheek_raise"] == {6}
    assert EXPECTED_REGIONS["cheek_raise"] == {"lower_lid"}
    assert region_stem("mouth_corner_L") == "mouth_corner" and region_stem("nose") == "nose"


def test_attribution_over_matched_pairs() -> None:
    run = clip(
        [truth(0, 9, action="smile"), truth(20, 29, action="brow_raise"),
         truth(40, 49, action="cheek_raise"), truth(60, 90, "macro", action="upper_lip_raise")],
        [pred(0, 9, regions=("mouth_corner_L", "nose"), aus=(12,)),  # all right
         pred(20, 29, regions=("nose", "outer_brow_R"), aus=(4,)),  # region 2nd, AU wrong
         pred(40, 49, regions=("lower_lid_R",), aus=(7, 6)),  # all right
         pred(60, 90, "macro"),  # matched, nothing attributed
         pred(200, 210, regions=("mouth_corner_R",), aus=(12,))],  # unmatched: ignored
    )  # fmt: skip
    r = score_runs([run])
    assert r["attribution"] == {"matched": 4, "region_accuracy": 0.5, "region_any": 0.75,
                                "au_accuracy": 0.5}  # fmt: skip
    pairs = match_pairs(run)
    assert [t.action for _, t in pairs] == ["smile", "brow_raise", "cheek_raise",
                                             "upper_lip_raise"]  # fmt: skip
    assert pairs[1][0].regions == ("nose", "outer_brow_R")


def test_latency_percentiles_in_stream_time() -> None:
    # Delays of 1..5 frames at 25 fps = 40..200 ms; None is skipped; controls count too.
    a = clip([truth(0, 9)], [pred(0, 9, emitted_frame=10), pred(30, 39, emitted_frame=41),
                             pred(50, 59)], fps=25.0)  # fmt: skip
    b = clip([], [pred(0, 4, emitted_frame=7), pred(10, 14, emitted_frame=18),
                  pred(20, 24, emitted_frame=29)], fps=25.0, control=True)  # fmt: skip
    r = score_runs([a, b])
    assert r["latency_ms"] == {"p50": 120.0, "p95": 192.0}  # numpy linear: 160 + 0.8 * 40


def test_floats_are_rounded_to_four_places() -> None:
    r = score_runs([clip([truth(0, 9), truth(20, 29), truth(40, 49)], [pred(0, 9)])])
    assert r["overall"]["recall"] == 0.3333
    fps = score_runs([clip([], [pred(0, 3)], fps=30.0, frames=7 * 30 * 60 // 3, control=True)])
    assert fps["controls_fpm"]["all"] == round(3 / 7, 4)


def test_per_clip_rows() -> None:
    runs = [clip([truth(0, 9), truth(20, 29)], [pred(0, 9), pred(50, 59)], name="inj"),
            clip([], [pred(0, 5), pred(10, 15)], frames=900, control=True, category="talking",
                 name="ctl")]  # fmt: skip
    rows = per_clip_rows(runs)
    assert rows[0] == {"name": "inj", "category": "still", "control": False, "fps": 30.0,
                       "frames": 300, "truth": 2, "preds": 2, "tp": 1, "fp": 1, "fn": 1,
                       "bursts_per_min": None}  # fmt: skip
    assert rows[1]["bursts_per_min"] == 4.0  # 2 bursts in 0.5 min
    assert rows[1]["tp"] is None and rows[1]["truth"] == 0
    assert list(rows[0]) == list(rows[1])
