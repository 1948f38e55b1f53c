"""Apex thumbnails: the crop from a face's landmarks or box, the per-track ring, the data URI."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from affectstream.report.thumbs import THUMB_PX, CropRing, data_uri, face_crop
from affectstream.types import Face


def _face(landmarks: np.ndarray | None, bbox: tuple[float, float, float, float]) -> Face:
    return Face(track_id=1, frame_index=0, pts_s=0.0, bbox=bbox, score=0.9,
                landmarks=None if landmarks is None else landmarks.astype(np.float32))


def _tilted_face(angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """A 400×400 image with a bright square 'face' and 478 landmarks on it whose eye points lie
    on a line tilted by ``angle_deg``."""
    image = np.zeros((400, 400, 3), np.uint8)
    cv2.rectangle(image, (150, 150), (250, 250), (200, 180, 160), -1)
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(150, 250, 478), rng.uniform(150, 250, 478),
                           np.zeros(478)])
    a = np.radians(angle_deg)
    for idx, dx in ((33, -40), (133, -20), (362, 20), (263, 40)):  # right eye, left eye
        pts[idx, :2] = 200 + dx * np.cos(a), 180 + dx * np.sin(a)
    return image, pts


def test_crop_from_landmarks_is_square_and_centred_on_the_face() -> None:
    image, pts = _tilted_face(0.0)
    crop = face_crop(image, _face(pts, (150, 150, 250, 250)))
    assert crop.shape == (THUMB_PX, THUMB_PX, 3)
    centre = crop[THUMB_PX // 2 - 5:THUMB_PX // 2 + 5, THUMB_PX // 2 - 5:THUMB_PX // 2 + 5]
    assert centre.mean() > 150, "the face is not in the middle of the crop"
    assert crop[:3, :3].mean() < 10, "the crop's corner should be outside the face"


def test_crop_levels_the_eyes() -> None:
    """A face tilted by 30° comes out upright: the bright square's edges are axis-aligned
    again, so its rows are either all face or all background."""
    image, pts = _tilted_face(0.0)
    centre = (200.0, 200.0)
    rot = cv2.getRotationMatrix2D(centre, -30, 1.0)  # tilt image and landmarks together
    tilted = cv2.warpAffine(image, rot, (400, 400))
    moved = pts.copy()
    moved[:, :2] = (np.c_[pts[:, :2], np.ones(478)] @ rot.T)
    crop = face_crop(tilted, _face(moved, (130, 130, 270, 270)))
    mask = crop.mean(axis=2) > 100
    rows = mask[mask.any(axis=1)]
    filled = rows.sum(axis=1)
    assert filled.max() - np.median(filled) <= 6, "the face is still tilted in the crop"


def test_crop_without_landmarks_uses_the_box() -> None:
    image, _ = _tilted_face(0.0)
    crop = face_crop(image, _face(None, (150, 150, 250, 250)))
    assert crop.shape == (THUMB_PX, THUMB_PX, 3)
    assert crop[THUMB_PX // 2, THUMB_PX // 2].mean() > 150


def test_ring_keeps_the_latest_and_finds_the_nearest_frame() -> None:
    ring = CropRing(capacity=3)
    for i in range(5):
        ring.add(i * 2, np.full((2, 2, 3), i, np.uint8))
    found = ring.at(6)
    assert found is not None and found[0, 0, 0] == 3
    near = ring.at(7)
    assert near is not None and near[0, 0, 0] in (3, 4)
    assert ring.at(0) is None, "frame 0 has left the ring"
    assert ring.at(20) is None, "too far from any frame kept"


def test_data_uri_decodes_to_the_image() -> None:
    image, pts = _tilted_face(0.0)
    crop = face_crop(image, _face(pts, (150, 150, 250, 250)))
    uri = data_uri(crop)
    assert uri.startswith("data:image/jpeg;base64,")
    raw = np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8)
    back = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    assert back.shape == crop.shape
    assert np.abs(back.astype(int) - crop.astype(int)).mean() < 5
