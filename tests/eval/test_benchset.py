"""The spotting benchmark's set: its schedule, its sources and its manifest (no video built)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from affectstream.errors import SourceError
from affectstream.eval import benchset
from affectstream.eval.benchclips import DEFAULT_SPECS, HELDOUT_SPECS, SOURCES, STILL
from affectstream.eval.benchset import (
    GAP_S,
    LEAD_IN_S,
    TAIL_S,
    find_source,
    load_manifest,
    schedule,
)


@pytest.mark.parametrize(("frames", "fps", "seed"), [(225, 25.0, 11), (282, 30.0, 52),
                                                    (720, 30.0, 81), (120, 29.97, 71)])
def test_schedule_keeps_lead_in_tail_and_calm_gaps(frames: int, fps: float, seed: int) -> None:
    events = schedule(frames, fps, seed)
    assert events, "a clip of several seconds gets events"
    assert events[0].onset_frame >= LEAD_IN_S * fps
    assert events[-1].offset_frame <= frames - 1 - TAIL_S * fps
    for a, b in itertools.pairwise(events):
        assert b.onset_frame - a.offset_frame >= round(GAP_S[0] * fps)
    for e in events:
        assert e.onset_frame < e.apex_frame < e.offset_frame
        assert e.kind == ("micro" if (e.offset_frame - e.onset_frame) / fps <= 0.5 else "macro")
    assert schedule(frames, fps, seed) == events  # seeded


def test_schedule_avoids_frames_without_a_face() -> None:
    usable = np.ones(300, bool)
    usable[40:200] = False
    events = schedule(300, 30.0, 3, usable)
    assert events
    assert all(not (e.offset_frame >= 40 and e.onset_frame < 200) for e in events)


def test_default_set_has_what_the_issue_asks() -> None:
    injected = [s for s in DEFAULT_SPECS if not s.control]
    controls = [s for s in DEFAULT_SPECS if s.control]
    real = {s.source for s in injected if s.source in SOURCES}
    assert len(real) >= 4
    categories = {s.category for s in injected}
    assert {"talking", "expressive", "moving-head", "small", "still"} <= categories
    assert any(s.source == STILL for s in injected)  # a still photo moved like a head
    assert any(s.category == "talking" for s in controls)
    # every source's licence is recorded
    assert all(s.licence and s.origin for s in SOURCES.values())


def test_heldout_set_injects_other_events_into_the_same_footage() -> None:
    injected = [s for s in DEFAULT_SPECS if not s.control]
    assert [(s.source, s.category, s.scale) for s in HELDOUT_SPECS] == \
        [(s.source, s.category, s.scale) for s in injected]
    assert not any(s.control for s in HELDOUT_SPECS)
    assert not {s.name for s in HELDOUT_SPECS} & {s.name for s in DEFAULT_SPECS}
    for held, tuned in zip(HELDOUT_SPECS, injected, strict=True):
        frames = 300
        assert schedule(frames, 30.0, held.seed) != schedule(frames, 30.0, tuned.seed)


def test_find_source_checks_the_sha256(tmp_path: Path) -> None:
    source = SOURCES["d12"]
    (tmp_path / source.file).write_bytes(b"not the clip")
    assert find_source(source, [tmp_path], tmp_path / "cache") is None


def test_manifest_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no benchmark manifest"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{", encoding="utf-8")
    with pytest.raises(SourceError, match="delete the folder to rebuild"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({
        "schema": benchset.SCHEMA, "clips": [{"video": "gone.mp4"}]}), encoding="utf-8")
    with pytest.raises(SourceError, match=r"gone\.mp4 is missing"):
        load_manifest(tmp_path)
