"""Similarity alignment: exact recovery of known transforms, canonical eye positions on real
landmarks, invariance to head motion, and region masks on the aligned crop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from detector_helpers import CROP

from affectstream.detectors.align import (
    REGIONS,
    RIGID,
    FaceAligner,
    face_indices,
    region_indices,
    scaled,
    similarity,
)
from affectstream.detectors.landmarks import LandmarkResult
from affectstream.types import FloatArray

EYE_R, EYE_L = (33, 133), (362, 263)
CANON_R, CANON_L = (0.34, 0.34), (0.66, 0.34)


def _similarity_matrix(scale: float, deg: float, tx: float, ty: float) -> FloatArray:
    a = math.radians(deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]], np.float64)


def _apply(m: FloatArray, pts: FloatArray) -> FloatArray:
    return (pts @ np.asarray(m)[:, :2].T + np.asarray(m)[:, 2]).astype(np.float32)


def _eye_centres(m: FloatArray, landmarks: FloatArray) -> tuple[FloatArray, FloatArray]:
    xy = _apply(m, landmarks[:, :2])
    return xy[list(EYE_R)].mean(0), xy[list(EYE_L)].mean(0)


@pytest.mark.parametrize(("scale", "deg", "tx", "ty"),
                         [(1.0, 0.0, 0.0, 0.0), (1.7, 25.0, 3.0, -5.0), (0.01, -170.0, 0.5, 0.2),
                          (3.2, 90.0, -120.0, 40.0)])
def test_similarity_recovers_known_transform(scale: float, deg: float, tx: float,
                                             ty: float) -> None:
    rng = np.random.default_rng(int(scale * 100))
    src = rng.uniform(-100, 300, (20, 2)).astype(np.float32)
    truth = _similarity_matrix(scale, deg, tx, ty)
    dst = _apply(truth, src)
    got = similarity(src, dst)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got[:, :2], truth[:, :2], rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(got[:, 2], truth[:, 2], atol=1e-3 * max(1.0, scale))
    np.testing.assert_allclose(_apply(got, src), dst, atol=2e-3 * max(1.0, scale))


def test_similarity_is_least_squares_and_never_reflects() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (30, 2)).astype(np.float32)
    truth = _similarity_matrix(1.3, 10.0, 5.0, 7.0)
    noisy = _apply(truth, src) + rng.normal(0, 0.5, (30, 2)).astype(np.float32)
    got = similarity(src, noisy)
    np.testing.assert_allclose(got, truth, atol=0.05 * np.abs(truth).max())
    mirrored = src * np.array([-1.0, 1.0], np.float32)  # a reflection is not a similarity
    assert np.linalg.det(similarity(src, mirrored)[:, :2]) > 0


def test_template_puts_eyes_at_canonical_positions(first_landmarks: LandmarkResult) -> None:
    aligner = FaceAligner(first_landmarks.landmarks)
    assert aligner.template.shape == (478, 2)
    t = aligner.template
    np.testing.assert_allclose(t[list(EYE_R)].mean(0), CANON_R, atol=1e-4)
    np.testing.assert_allclose(t[list(EYE_L)].mean(0), CANON_L, atol=1e-4)
    # Upright face in the template: nose tip below the eyes, chin further down.
    assert t[1, 1] > 0.4 and t[152, 1] > t[1, 1]
    assert 0.4 < t[1, 0] < 0.6  # nose tip near the middle


def test_unit_transform_on_real_landmarks(first_landmarks: LandmarkResult) -> None:
    lms = first_landmarks.landmarks
    aligner = FaceAligner(lms)
    eye_r, eye_l = _eye_centres(aligner.unit_transform(lms), lms)
    np.testing.assert_allclose(eye_r, CANON_R, atol=2e-3)
    np.testing.assert_allclose(eye_l, CANON_L, atol=2e-3)


@pytest.mark.parametrize(("scale", "deg", "tx", "ty"),
                         [(1.25, 12.0, 30.0, -20.0), (0.6, -8.0, -50.0, 35.0)])
def test_unit_transform_cancels_head_motion(first_landmarks: LandmarkResult, scale: float,
                                            deg: float, tx: float, ty: float) -> None:
    lms = first_landmarks.landmarks
    aligner = FaceAligner(lms)
    moved = lms.copy()
    moved[:, :2] = _apply(_similarity_matrix(scale, deg, tx, ty), lms[:, :2])
    m = aligner.unit_transform(moved)
    eye_r, eye_l = _eye_centres(m, moved)
    np.testing.assert_allclose(eye_r, CANON_R, atol=2e-3)
    np.testing.assert_allclose(eye_l, CANON_L, atol=2e-3)
    np.testing.assert_allclose(_apply(m, moved[:, :2]), aligner.template, atol=2e-3)


def test_unit_transform_ignores_expression_landmarks(first_landmarks: LandmarkResult) -> None:
    """Moving non-rigid points (a smile) must not move the crop: only RIGID points are fitted."""
    lms = first_landmarks.landmarks
    aligner = FaceAligner(lms)
    smiling = lms.copy()
    mouth = [i for i in REGIONS["mouth_corner_L"] + REGIONS["mouth_corner_R"] if i not in RIGID]
    smiling[mouth, 1] -= 15.0
    np.testing.assert_allclose(aligner.unit_transform(smiling), aligner.unit_transform(lms),
                               atol=1e-6)


def test_scaled_and_region_indices(template: FloatArray) -> None:
    m = np.array([[0.01, 0.0, 0.1], [0.0, 0.01, 0.2]], np.float32)
    np.testing.assert_allclose(scaled(m, CROP), m * CROP)
    idx = region_indices(template, CROP)
    assert set(idx) == set(REGIONS)
    for name, pix in idx.items():
        assert len(pix) > 50, name
        assert pix.min() >= 0 and pix.max() < CROP * CROP
    # Mirror regions sit on their own side of the crop (subject's right = image left).
    def cx(name: str) -> float:
        return float((idx[name] % CROP).mean())
    for stem in ("inner_brow", "outer_brow", "lower_lid", "mouth_corner"):
        assert cx(f"{stem}_R") < CROP / 2 < cx(f"{stem}_L")
    # Brows above lids above mouth corners above chin.
    def cy(name: str) -> float:
        return float((idx[name] // CROP).mean())
    assert cy("inner_brow_L") < cy("lower_lid_L") < cy("mouth_corner_L") < cy("chin")


def test_face_grid_covers_every_region_and_the_whole_face(template: FloatArray) -> None:
    face = set(face_indices(template, CROP).tolist())
    idx = region_indices(template, CROP)
    for name in REGIONS:
        assert face & set(idx[name].tolist()), name  # every region lies inside the face
    regions = set().union(*(set(v.tolist()) for v in idx.values()))
    # Expression regions are a minority of the face grid, so its median is the head motion.
    assert len(face & regions) < 0.45 * len(face)


def test_whole_face_fits_in_the_crop(template: FloatArray) -> None:
    # Forehead (10) to chin (152) inside the crop, so chin motion is measured on real pixels.
    assert template[10, 1] > 0.0 and template[152, 1] < 0.98

