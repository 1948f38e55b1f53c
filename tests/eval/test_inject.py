"""Synthetic expressions: the onset–apex–offset profile and the landmark-anchored warp."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from affectstream.errors import ConfigError
from affectstream.eval.democlip import still_landmarks
from affectstream.eval.inject import (
    ACTIONS,
    InjectedExpression,
    classify_kind,
    inter_ocular,
    landmark_displacements,
    profile,
    warp_expression,
)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="module")
def base_landmarks(astronaut: np.ndarray, landmarker_model: Path) -> np.ndarray:
    return still_landmarks(astronaut, landmarker_model)


def _event(onset: int = 10, apex: int = 14, offset: int = 22) -> InjectedExpression:
    return InjectedExpression("smile", onset, apex, offset, 0.05, "micro")


def test_actions_table_is_complete() -> None:
    assert len(ACTIONS) >= 5
    for name, action in ACTIONS.items():
        assert action.name == name and action.au.startswith("AU") and action.description
        assert 0.0 < action.sigma < 0.5
        assert action.primary, f"{name} has no full-amplitude landmark"
        assert all(0 <= m.index < 478 for m in action.moves)


def test_profile_shape() -> None:
    e = _event()
    values = [profile(f, e) for f in range(0, 30)]
    assert all(v == 0.0 for v in values[: e.onset_frame + 1])
    assert all(v == 0.0 for v in values[e.offset_frame :])
    assert values[e.apex_frame] == pytest.approx(1.0)
    rise = values[e.onset_frame : e.apex_frame + 1]
    fall = values[e.apex_frame : e.offset_frame + 1]
    assert all(b > a for a, b in itertools.pairwise(rise))
    assert all(b < a for a, b in itertools.pairwise(fall))
    assert all(0.0 <= v <= 1.0 for v in values)


def test_profile_two_frame_event() -> None:
    e = _event(5, 6, 7)
    assert [profile(f, e) for f in range(4, 9)] == [0.0, 0.0, 1.0, 0.0, 0.0]


def test_kind_boundary_is_half_a_second() -> None:
    assert classify_kind(0, 15, 30.0) == "micro"
    assert classify_kind(0, 16, 30.0) == "macro"
    assert classify_kind(100, 105, 10.0) == "micro"


def test_expression_validation_and_round_trip() -> None:
    e = _event()
    assert InjectedExpression.from_dict(e.to_dict()) == e
    assert e.interval() == (10, 22)
    with pytest.raises(ConfigError, match="out of order"):
        InjectedExpression("smile", 10, 10, 20, 0.05, "micro")
    with pytest.raises(ConfigError, match="unknown action"):
        InjectedExpression("wink", 1, 2, 3, 0.05, "micro")
    with pytest.raises(ConfigError, match="amplitude"):
        InjectedExpression("smile", 1, 2, 3, 0.0, "micro")
    with pytest.raises(ConfigError, match="bad injected-expression"):
        InjectedExpression.from_dict({"action": "smile"})


def test_zero_strength_is_identity(astronaut: np.ndarray, base_landmarks: np.ndarray) -> None:
    assert np.array_equal(warp_expression(astronaut, base_landmarks, {}), astronaut)
    assert np.array_equal(warp_expression(astronaut, base_landmarks, {"smile": 0.0}), astronaut)


def test_bad_inputs_are_one_line_errors(base_landmarks: np.ndarray) -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ConfigError, match="unknown action"):
        warp_expression(img, base_landmarks, {"wink": 0.1})
    with pytest.raises(ConfigError, match=r"\(478, 2\)"):
        warp_expression(img, base_landmarks[:10], {"smile": 0.1})


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_field_moves_primary_landmarks_as_declared(name: str, base_landmarks: np.ndarray) -> None:
    """At each full-amplitude landmark the field points along the declared face-frame move."""
    centers, disps, sigmas = landmark_displacements(base_landmarks, {name: 0.1})
    iod = inter_ocular(base_landmarks)
    ex = (base_landmarks[263] - base_landmarks[33]) / iod
    ey = np.array([-ex[1], ex[0]])
    for m in ACTIONS[name].moves:
        if np.hypot(m.dx, m.dy) < 0.99:
            continue
        want = 0.1 * iod * (m.dx * ex + m.dy * ey)
        got = disps[[np.allclose(c, base_landmarks[m.index]) for c in centers].index(True)]
        assert np.allclose(got, want, atol=1e-3)
    assert np.all(sigmas > 0)


def test_far_pixels_unchanged_and_face_moves(
    astronaut: np.ndarray, base_landmarks: np.ndarray
) -> None:
    warped = warp_expression(astronaut, base_landmarks, {"smile": 0.1})
    changed = np.argwhere(np.any(warped != astronaut, axis=2))
    assert changed.size, "the warp changed nothing"
    centers, _, sigmas = landmark_displacements(base_landmarks, {"smile": 0.1})
    reach = 3 * float(sigmas.max()) + 1
    lo, hi = centers.min(axis=0) - reach, centers.max(axis=0) + reach
    assert np.all(changed[:, ::-1] >= lo) and np.all(changed[:, ::-1] <= hi)
    assert np.array_equal(warped[:60], astronaut[:60])  # e.g. the top of the photo


# (landmark, axis 0=x 1=y, sign) the landmarker must see move, at amplitude 0.1 IOD.
_EXPECTED = {
    "smile": [(61, 1, -1), (291, 1, -1), (61, 0, -1), (291, 0, +1)],  # up and out
    "lip_corner_depress": [(61, 1, +1), (291, 1, +1)],
    "upper_lip_raise": [(0, 1, -1)],
    "brow_raise": [(105, 1, -1), (334, 1, -1), (107, 1, -1), (336, 1, -1)],
    "brow_lower": [(107, 1, +1), (336, 1, +1)],
    "eye_squint": [(145, 1, -1), (374, 1, -1)],
    "cheek_raise": [(205, 1, -1), (425, 1, -1)],
}


@pytest.mark.parametrize("name", sorted(_EXPECTED))
def test_landmarker_sees_the_action(
    name: str, astronaut: np.ndarray, base_landmarks: np.ndarray, landmarker_model: Path
) -> None:
    warped = warp_expression(astronaut, base_landmarks, {name: 0.1})
    moved = still_landmarks(warped, landmarker_model)
    delta = (moved - base_landmarks) / inter_ocular(base_landmarks)
    for index, axis, sign in _EXPECTED[name]:
        assert sign * delta[index, axis] > 0.01, (name, index, axis, delta[index])
