"""MediaPipe FaceLandmarker per track on real frames of single_face.mp4."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from affectstream.detectors.landmarks import TrackLandmarker, head_pose_from_matrix
from affectstream.errors import ModelError
from affectstream.types import Image

Box = tuple[float, float, float, float]


@pytest.fixture
def landmarker(model_paths: dict[str, Path]) -> Iterator[TrackLandmarker]:
    lm = TrackLandmarker(model_paths["face-landmarker"], 1.6)
    yield lm
    lm.close()


def test_landmarks_blendshapes_pose_on_real_frames(landmarker: TrackLandmarker,
                                                   single_face_frames: list[Image],
                                                   face_box: Box) -> None:
    x1, y1, x2, y2 = face_box
    w, h = x2 - x1, y2 - y1
    for i in (0, 1, 2, 3):
        result = landmarker.detect(single_face_frames[i], face_box, i / 30)
        assert result is not None
        pts = result.landmarks
        assert pts.shape == (478, 3) and pts.dtype == np.float32
        # In frame pixels, inside the face box (10 % slack: the mesh includes the forehead).
        assert pts[:, 0].min() > x1 - 0.1 * w and pts[:, 0].max() < x2 + 0.1 * w
        assert pts[:, 1].min() > y1 - 0.1 * h and pts[:, 1].max() < y2 + 0.1 * h
        # The mesh fills the face: it spans most of the box.
        assert np.ptp(pts[:, 0]) > 0.6 * w and np.ptp(pts[:, 1]) > 0.6 * h
        # Anatomy in frame pixels: eyes above the nose tip above the chin; subject's right eye
        # (landmark 33) on the image left.
        assert pts[33, 0] < pts[263, 0]
        assert pts[33, 1] < pts[1, 1] < pts[152, 1]
        assert len(result.blendshapes) == 52
        assert {"mouthSmileLeft", "mouthSmileRight", "browInnerUp", "jawOpen",
                "eyeBlinkLeft"} <= set(result.blendshapes)
        assert all(0.0 <= v <= 1.0 for v in result.blendshapes.values())
        assert result.head_pose is not None and len(result.head_pose) == 3
        yaw, pitch, roll = result.head_pose
        assert all(math.isfinite(v) for v in result.head_pose)
        assert abs(yaw) < 30 and abs(pitch) < 30 and abs(roll) < 30  # a frontal face


def test_smile_shows_in_blendshapes(landmarker: TrackLandmarker,
                                    single_face_frames: list[Image], face_box: Box) -> None:
    smiles = []
    for i, frame in enumerate(single_face_frames[:50]):
        result = landmarker.detect(frame, face_box, i / 30)
        assert result is not None
        smiles.append(result.blendshapes["mouthSmileLeft"])
    assert max(smiles[:10]) < 0.2  # neutral start
    assert min(smiles[40:50]) > 0.5  # smiling after the onset (≈ frames 12–35)


def test_same_or_earlier_pts_is_accepted(landmarker: TrackLandmarker,
                                         single_face_frames: list[Image], face_box: Box) -> None:
    # VIDEO mode requires strictly increasing timestamps; the wrapper must enforce them itself.
    frames = single_face_frames
    assert landmarker.detect(frames[0], face_box, 1.0) is not None
    assert landmarker.detect(frames[1], face_box, 1.0) is not None
    assert landmarker.detect(frames[2], face_box, 1.0) is not None
    assert landmarker.detect(frames[3], face_box, 0.0) is not None  # a looped file restarting
    assert landmarker.detect(frames[4], face_box, 1.0005) is not None  # same millisecond


def test_empty_crop_returns_none(landmarker: TrackLandmarker,
                                 single_face_frames: list[Image]) -> None:
    blank = np.zeros_like(single_face_frames[0])
    assert landmarker.detect(blank, (100.0, 100.0, 200.0, 220.0), 0.0) is None


def test_close_and_reopen(model_paths: dict[str, Path], single_face_frames: list[Image],
                          face_box: Box) -> None:
    first = TrackLandmarker(model_paths["face-landmarker"], 1.6)
    assert first.detect(single_face_frames[0], face_box, 0.0) is not None
    first.close()
    try:  # a closed landmarker produces no result (mediapipe returns empty or refuses)
        after = first.detect(single_face_frames[1], face_box, 0.1)
    except (ValueError, RuntimeError):
        after = None
    assert after is None
    first.close()  # closing twice is harmless
    second = TrackLandmarker(model_paths["face-landmarker"], 1.6)
    try:
        assert second.detect(single_face_frames[0], face_box, 0.0) is not None
    finally:
        second.close()


def test_bad_model_raises_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="face-landmarker"):
        TrackLandmarker(bad, 1.6)


def test_head_pose_from_matrix() -> None:
    assert head_pose_from_matrix(np.eye(4)) == pytest.approx((0.0, 0.0, 0.0))
    a = math.radians(20)
    roll_only = np.eye(4)
    roll_only[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
    assert head_pose_from_matrix(roll_only) == pytest.approx((0.0, 0.0, 20.0), abs=1e-9)
    yaw_only = np.eye(4)
    yaw_only[[0, 0, 2, 2], [0, 2, 0, 2]] = [math.cos(a), math.sin(a), -math.sin(a), math.cos(a)]
    assert head_pose_from_matrix(yaw_only) == pytest.approx((20.0, 0.0, 0.0), abs=1e-9)
