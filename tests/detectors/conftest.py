"""Shared fixtures for the detector tests: decoded real frames, a real face box and landmarks."""

from __future__ import annotations

from pathlib import Path

import pytest
from detector_helpers import read_frames  # tests/detectors is on sys.path

from affectstream.config import CenterFaceConfig
from affectstream.detectors.align import FaceAligner
from affectstream.detectors.face import CenterFaceDetector
from affectstream.detectors.landmarks import LandmarkResult, TrackLandmarker
from affectstream.types import FloatArray, Image


@pytest.fixture(scope="session")
def single_face_frames(media_dir: Path) -> list[Image]:
    return read_frames(media_dir / "single_face.mp4")


@pytest.fixture(scope="session")
def detector(model_paths: dict[str, Path]) -> CenterFaceDetector:
    return CenterFaceDetector(CenterFaceConfig(), model_paths["face-centerface"])


@pytest.fixture(scope="session")
def face_box(detector: CenterFaceDetector,
             single_face_frames: list[Image]) -> tuple[float, float, float, float]:
    dets = detector.detect(single_face_frames[0])
    assert len(dets) == 1
    x1, y1, x2, y2 = (float(v) for v in dets.xyxy[0])
    return (x1, y1, x2, y2)


@pytest.fixture(scope="session")
def first_landmarks(model_paths: dict[str, Path], single_face_frames: list[Image],
                    face_box: tuple[float, float, float, float]) -> LandmarkResult:
    """Real MediaPipe landmarks of single_face.mp4 frame 0."""
    lm = TrackLandmarker(model_paths["face-landmarker"], 1.6)
    try:
        result = lm.detect(single_face_frames[0], face_box, 0.0)
    finally:
        lm.close()
    assert result is not None
    return result


@pytest.fixture(scope="session")
def template(first_landmarks: LandmarkResult) -> FloatArray:
    """Unit template of a real face (what RegionMotion gets in perception)."""
    return FaceAligner(first_landmarks.landmarks).template
