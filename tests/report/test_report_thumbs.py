"""Apex thumbnails: the apex keyframe shrunk to a thumbnail, and its data URI."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from affectstream.report.thumbs import THUMB_PX, data_uri, thumbnail


def _crop(size: int) -> np.ndarray:
    """A square aligned-crop stand-in: a bright 'face' on a dark background."""
    image = np.zeros((size, size, 3), np.uint8)
    cv2.circle(image, (size // 2, size // 2), size // 3, (200, 180, 160), -1)
    return image


def test_a_keyframe_is_shrunk_to_a_thumbnail_and_owned() -> None:
    big = _crop(224)
    thumb = thumbnail(big)
    assert thumb.shape == (THUMB_PX, THUMB_PX, 3)
    assert thumb[THUMB_PX // 2, THUMB_PX // 2].tolist() == [200, 180, 160]  # the face stays
    same = _crop(THUMB_PX)
    kept = thumbnail(same)
    assert kept.shape == same.shape and kept is not same  # a copy: perception owns the crop
    same[:] = 0
    assert kept.max() == 200


def test_data_uri_decodes_to_the_image() -> None:
    crop = thumbnail(_crop(224))
    uri = data_uri(crop)
    assert uri.startswith("data:image/jpeg;base64,")
    raw = np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8)
    back = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    assert back.shape == crop.shape
    assert np.abs(back.astype(int) - crop.astype(int)).mean() < 5
