"""Apex thumbnails for the report: each burst's apex crop, shrunk.

Perception makes an aligned face crop at every burst's apex for the VLM (the apex keyframe,
``FrameResult.keyframes`` with the burst's id), so the report takes that one: the face as the
pipeline saw it, at no extra cost per frame. It is shrunk to ``THUMB_PX`` when the burst comes
(a keyframe is larger, and hundreds are kept) and encoded once, when the report is written.
"""

from __future__ import annotations

import base64

import cv2

from affectstream.types import Image

THUMB_PX = 112


def thumbnail(image: Image, size: int = THUMB_PX) -> Image:
    """``image`` (a square face crop) as a ``size``×``size`` thumbnail."""
    if image.shape[0] == size and image.shape[1] == size:
        return image.copy()  # a keyframe's array belongs to perception's store
    small: Image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return small


def data_uri(image: Image, quality: int = 85) -> str:
    """``image`` (BGR) as a ``data:image/jpeg;base64,…`` URI for an ``<img src>``."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding of a thumbnail failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")
