"""Helpers for the detector tests: decoding real frames and building textured grey crops with
known motion for the optical-flow and spotter tests."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from affectstream.detectors.align import region_indices
from affectstream.types import FloatArray, Image

CROP = 128
"""Aligned crop side used by perception (MotionConfig.crop_size default)."""


def read_frames(path: Path, limit: int | None = None) -> list[Image]:
    cap = cv2.VideoCapture(str(path))
    frames: list[Image] = []
    try:
        while limit is None or len(frames) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    assert frames, f"could not decode {path}"
    return frames


def texture(seed: int, size: int = CROP, sigma: float = 2.0) -> Image:
    """Smooth random grey texture spanning 0–255 (optical flow needs texture everywhere)."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), sigma)
    tex = (tex - tex.min()) / (tex.max() - tex.min()) * 255.0
    return tex.astype(np.uint8)


def region_block(template: FloatArray, region: str, margin: int = 8,
                 size: int = CROP) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) rectangle around a region's mask on the aligned crop, plus a margin."""
    ys, xs = np.unravel_index(region_indices(template, size)[region], (size, size))
    return (max(0, int(xs.min()) - margin), max(0, int(ys.min()) - margin),
            min(size, int(xs.max()) + margin + 1), min(size, int(ys.max()) + margin + 1))


def shift_block(base: Image, block: tuple[int, int, int, int], dx: float, dy: float) -> Image:
    """``base`` with the content of ``block`` translated by (dx, dy) pixels (sub-pixel ok)."""
    if dx == 0 and dy == 0:
        return base.copy()
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(base, m, (base.shape[1], base.shape[0]), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    out = base.copy()
    x0, y0, x1, y1 = block
    out[y0:y1, x0:x1] = moved[y0:y1, x0:x1]
    return out


def raised_cosine(i: int, onset: int, apex: int, offset: int) -> float:
    """0 outside (onset, offset), rising to 1 at apex and back (like the demo-clip injector)."""
    if i <= onset or i >= offset:
        return 0.0
    if i <= apex:
        return 0.5 - 0.5 * math.cos(math.pi * (i - onset) / (apex - onset))
    return 0.5 + 0.5 * math.cos(math.pi * (i - apex) / (offset - apex))
