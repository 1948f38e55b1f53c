"""The default spotting benchmark, built and scored once with the code `run` uses.

This is the hard case (talking, natural expressions, head turns, small faces): the tests check
what the set is, that every burst the live spotter emits on it is well formed, and that the live
spotter keeps its lead over the classic baseline. The full table is in docs/spotting.md
(`affectstream eval spotting`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from affectstream.config import load_config
from affectstream.eval import benchset
from affectstream.eval.spotbench import ClipResult, clip_from_manifest, evaluate
from affectstream.models import models_dir

pytestmark = pytest.mark.e2e  # the spotter scored over the whole benchmark set

Scored = tuple[benchset.BenchSet, dict[str, Any], list[ClipResult]]


@pytest.fixture(scope="module")
def scored(model_paths: dict[str, Path]) -> Scored:
    bench = benchset.build(models_dir().parent, model_paths["face-centerface"],
                           model_paths["face-landmarker"])
    clips = [clip_from_manifest(bench.folder, e) for e in bench.clips]
    doc, results = evaluate(load_config(None, {}), model_paths, clips)
    return bench, doc, results


def test_the_set_is_the_hard_case(scored: Scored) -> None:
    bench, doc, _ = scored
    assert bench.missing == ()
    assert doc["events"] >= 60 and doc["micro_events"] > doc["events"] / 2
    assert doc["control_minutes"] >= 2.0
    clips = bench.clips
    assert len({c["source"] for c in clips if c["source"]}) >= 4  # real clips
    assert any(c["inter_ocular_px"] < 40 for c in clips if not c["control"])  # faces < 80 px
    assert any(c["category"] == "talking" for c in clips if c["control"])
    assert any(c["category"] == "still" for c in clips if not c["control"])


def test_every_burst_is_well_formed(scored: Scored) -> None:
    """onset ≤ apex ≤ offset, and micro exactly when it lasts at most 0.5 s."""
    _, _, results = scored
    bursts = [(r.live, p) for r in results for p in r.live.preds]
    assert len(bursts) >= 40
    for run, p in bursts:
        assert 0 <= p.onset <= p.apex <= p.offset < run.frames, (run.name, p)
        duration = (p.offset - p.onset) / run.fps
        if abs(duration - 0.5) > 0.002:  # container timestamps may round the exact boundary
            assert p.kind == ("micro" if duration <= 0.5 else "macro"), (run.name, p)
        assert p.emitted_frame is not None and p.emitted_frame >= p.offset


def test_live_spotter_leads_the_baseline(scored: Scored) -> None:
    _, doc, _ = scored
    live, baseline = doc["spotters"]["live"], doc["spotters"]["baseline"]
    assert live["overall"]["f1"] >= baseline["overall"]["f1"] + 0.2, doc["spotters"]
    assert live["micro"]["recall"] > baseline["micro"]["recall"]
    assert live["attribution"]["region_accuracy"] >= 0.7


def test_still_and_moving_head_controls_stay_quiet(scored: Scored) -> None:
    _, doc, _ = scored
    fpm = doc["spotters"]["live"]["controls_fpm"]
    assert fpm["still"] <= 2.0 and fpm["moving-head"] <= 2.0, fpm


def test_the_events_region_motion_can_see_are_the_ones_found(scored: Scored) -> None:
    """Every injected real-footage clip has a control of the same footage, so each of its
    events is judged visible or buried; the live spotter's recall is where the motion is."""
    bench, doc, _ = scored
    vis = doc["visibility"]
    real = sum(len(c["truth"]) for c in bench.clips
               if not c["control"] and c["category"] != "still")  # the photo: no twin
    assert vis["events"] == real
    stand_out, buried = vis["stand_out"]["live"]["all"], vis["buried"]["live"]["all"]
    assert stand_out["events"] + buried["events"] == real and min(stand_out["events"],
                                                                  buried["events"]) >= 10
    assert stand_out["recall"] >= 0.6 and stand_out["recall"] > buried["recall"] + 0.3, vis
