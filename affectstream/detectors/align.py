"""Similarity-aligned face crops and the facial regions measured on them.

Each track fixes a template from its first landmarked frame (eyes levelled and placed at fixed
positions); later frames are aligned to that template by a least-squares similarity over rigid
landmarks (eye corners, nose bridge, forehead, cheeks), so head motion and landmark jitter of a
single point barely move the crop. Regions are fixed masks on the aligned crop.
"""

from __future__ import annotations

import cv2
import numpy as np

from affectstream.types import FloatArray

# MediaPipe face-mesh indices that move little with expressions.
RIGID = np.array([33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 10, 151, 234, 454])
_EYE_R = (33, 133)  # subject's right eye (image left for a non-mirrored camera)
_EYE_L = (362, 263)
_EYE_Y, _EYE_X_R, _EYE_X_L = 0.34, 0.34, 0.66  # forehead to chin fits in the crop

# Facial regions (subject's sides) measured for motion, as landmark indices.
REGIONS: dict[str, tuple[int, ...]] = {
    "inner_brow_R": (107, 66, 55, 65),
    "inner_brow_L": (336, 296, 285, 295),
    "outer_brow_R": (70, 63, 46, 53),
    "outer_brow_L": (300, 293, 276, 283),
    "lower_lid_R": (145, 153, 144, 163),
    "lower_lid_L": (374, 380, 373, 390),
    "nose": (49, 279, 48, 278, 129, 358),
    "mouth_corner_R": (61, 76, 62, 146),
    "mouth_corner_L": (291, 306, 292, 375),
    "upper_lip": (0, 37, 267, 39, 269),
    "chin": (152, 175, 199, 200),
}


def similarity(src: FloatArray, dst: FloatArray) -> FloatArray:
    """Least-squares 2-D similarity (Umeyama) mapping src points onto dst, as a 2×3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, float(np.sign(np.linalg.det(u @ vt)) or 1.0)])
    rot = u @ sign @ vt
    var = float((s**2).sum() / len(src))
    scale = float(np.trace(np.diag(sig) @ sign)) / max(var, 1e-9)
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]]).astype(np.float32)


def _apply(m: FloatArray, pts: FloatArray) -> FloatArray:
    return (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


class FaceAligner:
    """Maps frame pixels of one track's face into a unit-square template frame."""

    def __init__(self, first_landmarks: FloatArray) -> None:
        xy = first_landmarks[:, :2]
        src = np.array([xy[list(_EYE_R)].mean(0), xy[list(_EYE_L)].mean(0)], np.float32)
        dst = np.array([[_EYE_X_R, _EYE_Y], [_EYE_X_L, _EYE_Y]], np.float32)
        to_unit = similarity(src, dst)
        self.template = _apply(to_unit, xy)
        """(478, 2) landmark positions of the first frame in unit template coordinates."""
        self._rigid_template = self.template[RIGID]

    def unit_transform(self, landmarks: FloatArray) -> FloatArray:
        """2×3 matrix from frame pixels to unit template coordinates for this frame."""
        return similarity(landmarks[RIGID, :2], self._rigid_template)


def scaled(m_unit: FloatArray, size: int) -> FloatArray:
    """The unit-template transform scaled to a size×size crop."""
    return (m_unit * np.float32(size)).astype(np.float32)


def region_indices(template: FloatArray, size: int, radius: float = 0.055) -> dict[str, np.ndarray]:
    """Flat pixel indices of each region on a size×size aligned crop."""
    yy, xx = np.mgrid[0:size, 0:size]
    out: dict[str, np.ndarray] = {}
    for name, idx in REGIONS.items():
        mask = np.zeros((size, size), bool)
        for x, y in template[list(idx)] * size:
            mask |= (xx - x) ** 2 + (yy - y) ** 2 <= (radius * size) ** 2
        out[name] = np.flatnonzero(mask)
    return out


def face_indices(template: FloatArray, size: int, step: int = 3) -> np.ndarray:
    """Flat indices of a sparse grid of pixels inside the face outline (landmark hull).

    The median flow over them is the residual head motion: the expression regions cover about
    a third of the face grid, so a moving region barely shifts the median, unlike a small fixed
    reference patch (a nose-root patch moves with AU1/AU4 and leaks brow motion into every
    other region).
    """
    hull = cv2.convexHull((template * size).astype(np.int32))
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    grid = np.zeros((size, size), bool)
    grid[::step, ::step] = True
    return np.flatnonzero(mask.astype(bool) & grid)
