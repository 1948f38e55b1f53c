"""MediaPipe FaceLandmarker per tracked face (478 landmarks, 52 blendshapes, head pose).

Each track gets its own landmarker in VIDEO mode, because VIDEO mode carries tracking state
between calls and needs strictly increasing timestamps per instance. The landmarker sees a fixed
square crop around the track's box (cheap and consistent), and its results are mapped back to
frame pixels. Landmarkers must be closed explicitly: their destructor fails at interpreter exit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from affectstream.errors import ModelError
from affectstream.types import FloatArray, Image

_CROP = 256


@dataclass(frozen=True, slots=True)
class LandmarkResult:
    landmarks: FloatArray
    """(478, 3) in frame pixels; z scaled like x."""
    blendshapes: dict[str, float]
    head_pose: tuple[float, float, float] | None


def _crop_transform(bbox: tuple[float, float, float, float], scale: float) -> FloatArray:
    """2×3 affine mapping frame pixels into a _CROP×_CROP square around the box."""
    x1, y1, x2, y2 = bbox
    side = max(x2 - x1, y2 - y1) * scale
    s = _CROP / max(side, 1.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([[s, 0, _CROP / 2 - s * cx], [0, s, _CROP / 2 - s * cy]], np.float32)


def head_pose_from_matrix(matrix: Any) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from MediaPipe's 4×4 facial transformation matrix."""
    r = np.asarray(matrix, np.float64)[:3, :3]
    sy = math.hypot(r[0, 0], r[1, 0])
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    yaw = math.degrees(math.atan2(-r[2, 0], sy))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return (yaw, pitch, roll)


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """MediaPipe's C++ side prints absl warnings straight to fd 2 while it builds its graph and
    runs the first frame; hide them (set AFFECTSTREAM_NATIVE_LOGS=1 to see them)."""
    if os.environ.get("AFFECTSTREAM_NATIVE_LOGS"):
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class TrackLandmarker:
    """One MediaPipe FaceLandmarker (VIDEO mode) bound to one track."""

    def __init__(self, model_path: Path, crop_scale: float) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        self._crop_scale = crop_scale
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        try:
            with native_stderr_silenced():
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except Exception as exc:  # mediapipe raises RuntimeError/ValueError with long texts
            raise ModelError(
                f"cannot load face landmarker {model_path} ({type(exc).__name__}); re-fetch it "
                "with `affectstream models fetch face-landmarker`"
            ) from exc
        self._last_ms = -1
        self._warm = False

    def detect(self, bgr: Image, bbox: tuple[float, float, float, float],
               pts_s: float) -> LandmarkResult | None:
        m = _crop_transform(bbox, self._crop_scale)
        crop = cv2.warpAffine(bgr, m, (_CROP, _CROP), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)  # on the small crop: cheaper than the frame
        # VIDEO mode rejects non-increasing timestamps, e.g. when a looped file restarts.
        ts_ms = max(int(pts_s * 1000), self._last_ms + 1)
        self._last_ms = ts_ms
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=crop)
        if self._warm:
            result = self._landmarker.detect_for_video(image, ts_ms)
        else:
            with native_stderr_silenced():  # the first call logs its graph setup
                result = self._landmarker.detect_for_video(image, ts_ms)
            self._warm = True
        if not result.face_landmarks:
            return None
        pts = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[0]], np.float32) * _CROP
        inv = cv2.invertAffineTransform(m)
        xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        z = pts[:, 2:3] * float(inv[0, 0])
        blend = {c.category_name: float(c.score) for c in result.face_blendshapes[0]}
        pose = None
        if result.facial_transformation_matrixes:
            pose = head_pose_from_matrix(result.facial_transformation_matrixes[0])
        return LandmarkResult(np.hstack([xy, z]).astype(np.float32), blend, pose)

    def close(self) -> None:
        self._landmarker.close()
