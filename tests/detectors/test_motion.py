"""Region motion: DIS flow on two aligned grey crops, averaged per facial region, minus the
median flow over the whole face (the residual head motion). Inputs are textured grey crops (the
real input type) in which the content around one region is translated by a known amount; the
region masks come from a real face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from detector_helpers import CROP, region_block, shift_block, texture

from affectstream.detectors.align import REGIONS, region_indices
from affectstream.detectors.motion import RegionMotion
from affectstream.types import FloatArray

# Regions tested one at a time for isolation from the other regions.
ISOLATED = ("outer_brow_R", "outer_brow_L", "mouth_corner_R", "mouth_corner_L", "upper_lip")
SHIFTS = [(2.0, 0.0), (0.0, -2.0), (1.5, 1.5), (0.0, 3.0), (-2.5, 0.0), (1.0, -1.0)]
MARGIN = 6


def _gap(template: FloatArray, block: tuple[int, int, int, int], region: str) -> int:
    """Chebyshev distance in pixels from a block to the nearest pixel of a region's mask."""
    ys, xs = np.unravel_index(region_indices(template, CROP)[region], (CROP, CROP))
    x0, y0, x1, y1 = block
    d = np.maximum(np.maximum(x0 - xs, xs - (x1 - 1)), np.maximum(y0 - ys, ys - (y1 - 1)))
    return int(d.clip(0).min())


@pytest.fixture(scope="module")
def motion(template: FloatArray) -> RegionMotion:
    return RegionMotion(template, CROP)


def test_names_and_shape(motion: RegionMotion) -> None:
    assert motion.names == tuple(REGIONS)
    base = texture(0)
    v = motion.vectors(base, base)
    assert v.shape == (len(REGIONS), 2) and v.dtype == np.float32
    assert np.abs(v).max() < 1e-3  # identical crops: no motion anywhere


@pytest.mark.parametrize("region", ISOLATED)
def test_shifted_region_moves_alone(motion: RegionMotion, template: FloatArray,
                                    region: str) -> None:
    block = region_block(template, region, MARGIN)
    i = motion.names.index(region)
    far = [j for j, name in enumerate(motion.names)
           if j != i and _gap(template, block, name) >= 6]
    assert len(far) >= 6
    for seed in (0, 1):
        base = texture(seed)
        for dx, dy in SHIFTS:
            v = motion.vectors(base, shift_block(base, block, dx, dy))
            shift = np.array([dx, dy], np.float32)
            got = v[i]
            size = float(np.linalg.norm(got))
            cos = float(got @ shift) / (size * float(np.linalg.norm(shift)))
            assert cos > 0.9, (region, (dx, dy), got)  # the right direction
            assert 0.7 * np.linalg.norm(shift) < size < 1.3 * np.linalg.norm(shift)
            others = np.linalg.norm(v[far], axis=1)
            assert others.max() < 0.15 * np.linalg.norm(shift), (region, (dx, dy), others)
            assert others.max() < 0.4 * size


def test_region_vector_matches_the_shift(motion: RegionMotion, template: FloatArray) -> None:
    for region in ISOLATED:
        block = region_block(template, region, MARGIN)
        i = motion.names.index(region)
        for seed in (0, 1):
            base = texture(seed)
            for dx, dy in SHIFTS:
                got = motion.vectors(base, shift_block(base, block, dx, dy))[i]
                err = np.linalg.norm(got - np.array([dx, dy])) / np.hypot(dx, dy)
                assert err < 0.25, (region, (dx, dy), got)


def test_global_translation_cancels(motion: RegionMotion) -> None:
    """Residual head motion (the whole crop sliding) is removed by the face median."""
    base = texture(3)
    for dx, dy in [(2.0, -1.5), (-1.0, 2.5)]:
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(base, m, (CROP, CROP), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        v = motion.vectors(base, moved)
        assert np.linalg.norm(v, axis=1).max() < 0.1 * np.hypot(dx, dy) + 0.05


def test_opposite_direction_flips_sign(motion: RegionMotion, template: FloatArray) -> None:
    block = region_block(template, "mouth_corner_L", MARGIN)
    i = motion.names.index("mouth_corner_L")
    base = texture(4)
    up = motion.vectors(base, shift_block(base, block, 0.0, -2.0))[i]
    down = motion.vectors(base, shift_block(base, block, 0.0, 2.0))[i]
    assert up[1] < -0.4 and down[1] > 0.4
    assert abs(up[0]) < 0.3 * abs(up[1]) and abs(down[0]) < 0.3 * abs(down[1])


@pytest.mark.parametrize("region", ["inner_brow_R", "inner_brow_L"])
def test_inner_brow_motion_does_not_leak(motion: RegionMotion, template: FloatArray,
                                         region: str) -> None:
    base = texture(0)
    v = motion.vectors(base, shift_block(base, region_block(template, region, 2), 0.0, 2.0))
    for name in ("mouth_corner_R", "mouth_corner_L", "chin"):
        assert np.linalg.norm(v[motion.names.index(name)]) < 0.1, (name, v)
