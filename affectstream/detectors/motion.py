"""Per-region optical flow on the aligned face crop, minus head motion (DESIGN §7).

DIS optical flow (ultrafast preset) between two aligned grey crops. Head motion that the
similarity alignment left over — translation, in-plane rotation, scale, and the first-order
(affine) part of a turn or nod — is fitted by least squares on face pixels away from every
expression region, refitted once without the worst 30 % of them (glasses frames, hair, a hand),
and subtracted. Region means are one matrix product with a precomputed averaging matrix; the
fitted affine motion at each region is its value at the region's centroid (an affine field's
mean over a region is its value at the centroid).
"""

from __future__ import annotations

import cv2
import numpy as np

from affectstream.detectors.align import REGIONS, face_indices, region_indices
from affectstream.types import FloatArray, Image

_EXCLUDE_RADIUS = 0.09
"""Radius (template units) around each region's landmarks kept out of the head-motion fit."""
_KEEP = 70
"""Percentile of fit residuals kept for the refit."""


class RegionMotion:
    """Measures region displacement vectors between two aligned crops of one track."""

    def __init__(self, template: FloatArray, size: int) -> None:
        self.names: tuple[str, ...] = tuple(REGIONS)
        self.size = size
        idx = region_indices(template, size)
        weights = np.zeros((len(self.names), size * size), np.float32)
        for r, name in enumerate(self.names):
            pix = idx[name]
            if len(pix):
                weights[r, pix] = 1.0 / len(pix)
        # Region means as sums over concatenated pixel lists (the masks are small and sparse).
        self._pixels = np.concatenate([idx[n] for n in self.names])
        self._starts = np.cumsum([0] + [len(idx[n]) for n in self.names[:-1]])
        self._counts = np.maximum([len(idx[n]) for n in self.names], 1).astype(np.float32)
        near = region_indices(template, size, _EXCLUDE_RADIUS)
        busy = np.concatenate([near[n] for n in self.names])
        face = face_indices(template, size)
        rigid = np.setdiff1d(face, busy)
        self._rigid = rigid if len(rigid) >= 12 else face
        ys, xs = np.divmod(self._rigid, size)
        self._design = np.stack([xs, ys, np.ones_like(xs)], axis=1).astype(np.float32)
        self._pinv = np.linalg.pinv(self._design).astype(np.float32)
        all_y, all_x = np.divmod(np.arange(size * size, dtype=np.float32), size)
        self._centroids = np.stack([weights @ all_x, weights @ all_y,
                                    np.ones(len(self.names), np.float32)], axis=1)
        self._flow = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        # The preset stops at 1/4 resolution, which under-reads a small region's motion by
        # about half; half resolution reads it within ~20 % for ~0.3 ms more per call.
        self._flow.setFinestScale(1)

    def head_affine(self, flow: FloatArray) -> FloatArray:
        """(3, 2) affine head motion fitted on the rigid face pixels of a flattened flow."""
        rigid = flow[self._rigid]
        params: FloatArray = self._pinv @ rigid
        residual = ((rigid - self._design @ params) ** 2).sum(axis=1)
        kth = int(len(residual) * _KEEP / 100)
        keep = residual <= np.partition(residual, kth)[kth]
        design = self._design[keep]
        if len(design) >= 12:  # least squares through the 3×3 normal equations
            params = np.linalg.solve(design.T @ design, design.T @ rigid[keep])
        return params.astype(np.float32)

    def vectors(self, before: Image, after: Image) -> FloatArray:
        """(R, 2) mean displacement of each region from ``before`` to ``after`` (crop pixels)."""
        flow = self._flow.calc(before, after, None).reshape(-1, 2)
        head = self._centroids @ self.head_affine(flow)
        sums = np.add.reduceat(flow[self._pixels], self._starts, axis=0)
        vectors: FloatArray = (sums / self._counts[:, None] - head).astype(np.float32)
        return vectors
