"""CenterFace detector on real media: one face, no face, a group photo, odd input sizes, and
onnxruntime provider selection."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from detector_helpers import read_frames

from affectstream.config import DETECTOR_TYPES, CenterFaceConfig, Config, load_config
from affectstream.detectors.face import DETECTORS, CenterFaceDetector, make_detector
from affectstream.detectors.tracker import iou_matrix
from affectstream.errors import ModelError
from affectstream.onnx import pick_providers
from affectstream.types import Detections, Image

# Face centres in multi_face.jpg (1000×667), read off the image by eye: the man in sunglasses
# (back left), the long-haired woman in front of him, the curly-haired boy (back middle), the
# woman in the dark top and the red-haired woman on the right.
MULTI_FACE_CENTRES = [(262, 120), (365, 295), (478, 265), (582, 370), (735, 355)]


def _assert_plausible(dets: Detections, image: Image) -> None:
    h, w = image.shape[:2]
    assert dets.xyxy.dtype == np.float32 and dets.keypoints.shape == (len(dets), 5, 2)
    for box, kps, score in zip(dets.xyxy, dets.keypoints, dets.scores, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert 0.5 < score <= 1.0
        # Keypoints inside the box (a few pixels of slack for rounding at the box edge).
        assert np.all(kps[:, 0] >= x1 - 2) and np.all(kps[:, 0] <= x2 + 2)
        assert np.all(kps[:, 1] >= y1 - 2) and np.all(kps[:, 1] <= y2 + 2)
        eye_l, eye_r, nose, mouth_l, mouth_r = kps
        assert eye_l[0] < eye_r[0] and mouth_l[0] < mouth_r[0]  # viewer's left first
        assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])


def test_single_face_frame0_one_plausible_face(detector: CenterFaceDetector,
                                               single_face_frames: list[Image]) -> None:
    frame = single_face_frames[0]
    dets = detector.detect(frame)
    assert len(dets) == 1
    _assert_plausible(dets, frame)
    x1, y1, x2, y2 = dets.xyxy[0]
    h, w = frame.shape[:2]
    # Face-sized for this close-up: a sizeable part of the frame height, taller than wide.
    assert 0.3 * h < y2 - y1 < 0.95 * h
    assert 0.1 * w < x2 - x1 < 0.5 * w
    assert 0.9 < (y2 - y1) / (x2 - x1) < 2.0


def test_single_face_every_tenth_frame(detector: CenterFaceDetector,
                                       single_face_frames: list[Image]) -> None:
    boxes = []
    for frame in single_face_frames[::10]:
        dets = detector.detect(frame)
        assert len(dets) == 1
        _assert_plausible(dets, frame)
        boxes.append(dets.xyxy[0])
    # The subject barely moves: every box overlaps the first one strongly.
    ious = iou_matrix(np.asarray(boxes[:1]), np.asarray(boxes))
    assert ious.min() > 0.7


def test_no_face_frames_have_no_detections(detector: CenterFaceDetector,
                                           media_dir: Path) -> None:
    frames = read_frames(media_dir / "no_face.mp4")
    picked = frames[:: max(1, len(frames) // 8)]
    assert len(picked) >= 8
    assert [len(detector.detect(f)) for f in picked] == [0] * len(picked)


def test_multi_face_photo_finds_all_five(detector: CenterFaceDetector, media_dir: Path) -> None:
    image = cv2.imread(str(media_dir / "multi_face.jpg"))
    assert image is not None
    dets = detector.detect(image)
    assert len(dets) == len(MULTI_FACE_CENTRES) == 5
    _assert_plausible(dets, image)
    # Each hand-located face centre lies in exactly one box, and each box holds one centre.
    inside = np.array([[x1 <= cx <= x2 and y1 <= cy <= y2 for (x1, y1, x2, y2) in dets.xyxy]
                       for cx, cy in MULTI_FACE_CENTRES])
    assert inside.sum(axis=1).tolist() == [1] * 5
    assert inside.sum(axis=0).tolist() == [1] * 5
    ious = iou_matrix(dets.xyxy, dets.xyxy)
    assert (ious - np.eye(5)).max() < 0.1  # NMS left no duplicates


@pytest.mark.parametrize("input_width", [333, 200])
def test_input_width_not_multiple_of_32(model_paths: dict[str, Path],
                                        single_face_frames: list[Image], input_width: int,
                                        face_box: tuple[float, float, float, float]) -> None:
    det = CenterFaceDetector(CenterFaceConfig(input_width=input_width),
                             model_paths["face-centerface"])
    dets = det.detect(single_face_frames[0])
    assert len(dets) == 1
    _assert_plausible(dets, single_face_frames[0])
    ref = np.asarray([face_box], np.float32)
    assert iou_matrix(ref, dets.xyxy)[0, 0] > 0.8


@pytest.mark.parametrize("size", [(361, 641), (257, 333), (100, 173)])
def test_frame_size_not_multiple_of_32(detector: CenterFaceDetector,
                                       single_face_frames: list[Image], size: tuple[int, int],
                                       face_box: tuple[float, float, float, float]) -> None:
    h, w = size
    frame = single_face_frames[0]
    resized = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    dets = detector.detect(resized)
    assert len(dets) == 1
    _assert_plausible(dets, resized)
    # The box is reported in the resized frame's pixels: scaled back it matches frame 0's box.
    sx, sy = frame.shape[1] / w, frame.shape[0] / h
    back = dets.scaled(sx, sy).xyxy
    assert iou_matrix(np.asarray([face_box], np.float32), back)[0, 0] > 0.75


def test_min_face_px_filters_small_faces(model_paths: dict[str, Path],
                                         single_face_frames: list[Image]) -> None:
    det = CenterFaceDetector(CenterFaceConfig(min_face_px=400), model_paths["face-centerface"])
    assert len(det.detect(single_face_frames[0])) == 0


def test_pick_providers_default_order() -> None:
    available = ort.get_available_providers()
    picked = pick_providers(None)
    assert picked == [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                      if p in available]
    assert picked[-1] == "CPUExecutionProvider"
    assert pick_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_detector_reports_providers(detector: CenterFaceDetector) -> None:
    assert "CPUExecutionProvider" in detector.providers
    assert detector.providers[0] == pick_providers(None)[0]


def test_unavailable_provider_raises_model_error(model_paths: dict[str, Path]) -> None:
    with pytest.raises(ModelError, match="NoSuchExecutionProvider"):
        pick_providers(["NoSuchExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(ModelError, match="NoSuchExecutionProvider"):
        CenterFaceDetector(CenterFaceConfig(providers=["NoSuchExecutionProvider"]),
                           model_paths["face-centerface"])


def test_detector_type_picks_the_detector(model_paths: dict[str, Path]) -> None:
    # One detector per member of the config's detector union, built by detector.type.
    assert set(DETECTORS) == set(DETECTOR_TYPES) == {"centerface"}
    cfg = load_config(None, {"detector": {"type": "centerface", "input_width": 256}})
    det = make_detector(cfg.detector, model_paths["face-centerface"])
    assert isinstance(det, CenterFaceDetector) and det._width == 256
    assert Config().detector.type == "centerface"  # a file without detector.type
