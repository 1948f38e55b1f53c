"""FACS action units from blendshape scores and from region motion (DESIGN §7 table)."""

from __future__ import annotations

import pytest

from affectstream.detectors import facs
from affectstream.types import ActionUnit

# The DESIGN §7 blendshape → AU table, verbatim.
DESIGN_TABLE = {
    "browInnerUp": 1, "browOuterUp": 2, "browDown": 4, "eyeWide": 5, "cheekSquint": 6,
    "eyeSquint": 7, "noseSneer": 9, "mouthUpperUp": 10, "mouthSmile": 12, "mouthDimple": 14,
    "mouthFrown": 15, "mouthLowerDown": 16, "mouthShrugLower": 17, "mouthStretch": 20,
    "mouthPress": 24, "jawOpen": 26, "eyeBlink": 45,
}


def _one(scores: dict[str, float], threshold: float = 0.2) -> ActionUnit:
    units = facs.action_units(scores, threshold)
    assert len(units) == 1, units
    return units[0]


def test_table_matches_design() -> None:
    assert {stem: au for stem, (au, _) in facs.BLENDSHAPE_AU.items()} == DESIGN_TABLE
    assert facs.AU_NAMES[12] == "lip corner puller" and facs.AU_NAMES[4] == "brow lowerer"


def test_side_both_left_right() -> None:
    both = _one({"mouthSmileLeft": 0.5, "mouthSmileRight": 0.45})
    assert (both.au, both.side, both.intensity) == (12, "both", 0.5)
    assert both.name == "lip corner puller"
    left = _one({"mouthSmileLeft": 0.5, "mouthSmileRight": 0.1})
    assert (left.au, left.side) == (12, "L")
    right = _one({"mouthSmileLeft": 0.05, "mouthSmileRight": 0.6})
    assert (right.au, right.side, right.intensity) == (12, "R", 0.6)
    # Within a factor of two counts as both even when the weaker side is below threshold.
    assert _one({"mouthFrownLeft": 0.3, "mouthFrownRight": 0.16}, 0.2).side == "both"
    # One side only present in the dict.
    assert _one({"browDownLeft": 0.4}).side == "L"


def test_unsided_blendshapes_are_both() -> None:
    jaw = _one({"jawOpen": 0.4})
    assert (jaw.au, jaw.side) == (26, "both")
    inner = _one({"browInnerUp": 0.3})
    assert (inner.au, inner.side) == (1, "both")


def test_threshold_inclusive_and_ordering() -> None:
    assert facs.action_units({"jawOpen": 0.2}, 0.2)[0].au == 26  # reaching it is enough
    assert facs.action_units({"jawOpen": 0.199}, 0.2) == []
    scores = {"jawOpen": 0.3, "mouthSmileLeft": 0.9, "mouthSmileRight": 0.8,
              "browInnerUp": 0.5, "eyeBlinkLeft": 0.05, "_neutral": 0.9}
    units = facs.action_units(scores, 0.25)
    assert [u.au for u in units] == [12, 1, 26]  # strongest first; blink below threshold
    assert facs.action_units({}, 0.1) == []
    assert facs.action_units({"unknownShape": 1.0}, 0.1) == []


def test_intensity_is_capped_and_worded() -> None:
    assert _one({"jawOpen": 1.4}).intensity == 1.0
    assert [facs.intensity_word(v) for v in (0.0, 0.29, 0.3, 0.59, 0.6, 1.0)] == \
        ["weak", "weak", "moderate", "moderate", "strong", "strong"]


def test_blendshape_delta_clips_decreases() -> None:
    delta = facs.blendshape_delta({"a": 0.5, "b": 0.1, "c": 0.3}, {"a": 0.2, "b": 0.4})
    assert delta == pytest.approx({"a": 0.3, "b": 0.0, "c": 0.3})
    assert facs.blendshape_delta({}, {"a": 1.0}) == {}


@pytest.mark.parametrize(("region", "dx", "dy", "au"), [
    ("mouth_corner_L", 0.5, -2.0, 12),   # corner up → lip corner puller
    ("mouth_corner_R", -0.5, -2.0, 12),
    ("mouth_corner_L", 0.0, 2.0, 15),    # corner down → lip corner depressor
    ("mouth_corner_R", 0.3, 1.0, 15),
    ("mouth_corner_L", 2.0, 0.2, 20),    # sideways → lip stretcher
    ("inner_brow_L", 0.0, -1.0, 1),      # inner brow up → AU1
    ("inner_brow_R", 0.2, 1.0, 4),       # inner brow down → AU4
    ("outer_brow_R", 0.0, -1.0, 2),
    ("outer_brow_L", 0.0, 1.0, 4),
    ("lower_lid_L", 0.0, -1.0, 7),
    ("nose", 0.0, -1.0, 9),
    ("upper_lip", 0.0, -1.0, 10),
    ("chin", 0.0, -1.0, 17),
    ("chin", 0.0, 1.0, 26),
])
def test_au_from_motion_directions(region: str, dx: float, dy: float, au: int) -> None:
    found = facs.au_from_motion(region, dx, dy)
    assert found is not None and found == (au, facs.AU_NAMES[au])


@pytest.mark.parametrize(("region", "dx", "dy"), [
    ("inner_brow_L", 2.0, 0.5),  # mostly sideways: no brow AU
    ("lower_lid_R", 0.0, 1.0),   # lid down has no AU
    ("nose", 0.0, 1.0),
    ("upper_lip", 0.0, 1.0),
    ("forehead", 0.0, -1.0),     # unknown region
])
def test_au_from_motion_no_au(region: str, dx: float, dy: float) -> None:
    assert facs.au_from_motion(region, dx, dy) is None


def test_au_from_motion_vertical_dominance_boundary() -> None:
    # |dy| ≥ 0.5·|dx| counts as vertical.
    assert facs.au_from_motion("mouth_corner_L", 2.0, -1.0) == (12, facs.AU_NAMES[12])
    assert facs.au_from_motion("mouth_corner_L", 2.0, -0.99) == (20, facs.AU_NAMES[20])
