"""Apex thumbnails for the report: a small face crop per frame, kept briefly per track.

The report may not depend on the detectors, so the crop is done here from what every
:class:`~affectstream.types.Face` carries: rotated so the eyes are level (from the landmarks)
and scaled to the face's extent, or a square around the box when there are no landmarks. It
writes straight into a ``size``×``size`` image (``cv2.warpAffine`` only computes the output
pixels), so a frame tap can afford it on perception's path.

A track's ring holds its last ``ring`` crops: a burst is reported after its apex (the
spotter looks ahead up to about half a second, a held expression longer), so the apex crop is
picked from the ring when the burst appears, and everything older is dropped.
"""

from __future__ import annotations

import base64
import math
from collections import deque

import cv2
import numpy as np

from affectstream.types import Face, Image

THUMB_PX = 112
RING_FRAMES = 150
"""Crops kept per track (5 s at 30 fps; 112² colour crops: about 5.6 MB per track)."""
_EYE_R = (33, 133)  # MediaPipe face mesh: the subject's right eye corners
_EYE_L = (362, 263)
_MARGIN = 1.15
"""The crop spans the landmarks' extent times this (forehead and chin included)."""


def face_crop(image: Image, face: Face, size: int = THUMB_PX) -> Image:
    """An upright ``size``×``size`` crop of ``face`` (eyes level when landmarks are known)."""
    if face.landmarks is not None and len(face.landmarks) > max(*_EYE_L, *_EYE_R):
        pts = face.landmarks[:, :2].astype(np.float64)
        right, left = pts[list(_EYE_R)].mean(axis=0), pts[list(_EYE_L)].mean(axis=0)
        angle = math.degrees(math.atan2(left[1] - right[1], left[0] - right[0]))
        centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
        extent = float((pts.max(axis=0) - pts.min(axis=0)).max()) * _MARGIN
    else:
        x0, y0, x1, y1 = face.bbox
        angle, centre = 0.0, np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        extent = max(x1 - x0, y1 - y0) * 1.2
    scale = size / max(extent, 1.0)
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    m[:, 2] += np.array([size / 2, size / 2]) - centre  # the face's centre to the crop's
    crop: Image = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return crop


class CropRing:
    """The last ``capacity`` crops of one track, by frame index."""

    def __init__(self, capacity: int = RING_FRAMES) -> None:
        self._crops: deque[tuple[int, Image]] = deque(maxlen=capacity)

    def add(self, frame_index: int, crop: Image) -> None:
        self._crops.append((frame_index, crop))

    def at(self, frame_index: int) -> Image | None:
        """The crop of ``frame_index``, else the nearest one kept within 3 frames (the apex
        frame may have had no landmarks); None when it is gone."""
        best: tuple[int, Image] | None = None
        for index, crop in self._crops:
            gap = abs(index - frame_index)
            if gap <= 3 and (best is None or gap < best[0]):
                best = (gap, crop)
        return None if best is None else best[1]


def data_uri(image: Image, quality: int = 85) -> str:
    """``image`` (BGR) as a ``data:image/jpeg;base64,…`` URI for an ``<img src>``."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding of a thumbnail failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")
