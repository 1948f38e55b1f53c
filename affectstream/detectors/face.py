"""CenterFace face detector on onnxruntime (DESIGN §6, §7).

The frame is resized to ``input_width`` (keeping its aspect) and padded to a multiple of 32, so
one session serves any source size; CenterFace's fixed dims are made symbolic at load time by
:func:`load_centerface_onnx`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from affectstream.config import CenterFaceConfig, DetectorConfig
from affectstream.errors import ModelError
from affectstream.onnx import open_session
from affectstream.types import Detections, FloatArray, Image

_STRIDE = 4


class CenterFaceDetector:
    """Detects faces (boxes, scores, 5 keypoints) in BGR frames."""

    def __init__(self, cfg: CenterFaceConfig, model_path: Path) -> None:

        self._cfg = cfg
        self._width = int(math.ceil(cfg.input_width / 32) * 32)
        self._session = open_session(
            load_centerface_onnx(model_path), threads=cfg.threads, providers=cfg.providers,
            what=f"face detector {model_path}", quiet=True,
            fix="re-fetch it with `affectstream models fetch face-centerface`")
        self._input_name = self._session.get_inputs()[0].name
        self.providers: list[str] = list(self._session.get_providers())

    def _prepare(self, image: Image) -> tuple[FloatArray, float]:
        h, w = image.shape[:2]
        scale = self._width / w
        new_h = max(32, round(h * scale))
        resized = cv2.resize(image, (self._width, new_h), interpolation=cv2.INTER_AREA)
        pad_h = int(math.ceil(new_h / 32) * 32)
        if pad_h != new_h:
            resized = cv2.copyMakeBorder(resized, 0, pad_h - new_h, 0, 0, cv2.BORDER_CONSTANT)
        blob = cv2.dnn.blobFromImage(resized, 1.0, (self._width, pad_h), (0, 0, 0), swapRB=True)
        return np.asarray(blob, np.float32), scale

    def detect(self, image: Image) -> Detections:
        blob, scale = self._prepare(image)
        heat, scl, off, lms = self._session.run(None, {self._input_name: blob})
        dets = _decode(heat[0, 0], scl[0], off[0], lms[0], self._cfg.score_threshold)
        if len(dets) == 0:
            return dets
        keep = _nms(dets, self._cfg.nms_iou)
        dets = Detections(dets.xyxy[keep], dets.scores[keep], dets.keypoints[keep])
        dets = dets.scaled(1.0 / scale, 1.0 / scale)
        h, w = image.shape[:2]
        xyxy = np.clip(dets.xyxy, 0, [w, h, w, h]).astype(np.float32)
        big = (xyxy[:, 3] - xyxy[:, 1]) >= self._cfg.min_face_px
        return Detections(xyxy[big], dets.scores[big], dets.keypoints[big])


def _decode(heat: FloatArray, scale: FloatArray, offset: FloatArray, lms: FloatArray,
            threshold: float) -> Detections:
    ys, xs = np.nonzero(heat > threshold)
    if len(ys) == 0:
        return Detections.empty()
    sh = np.exp(scale[0, ys, xs]) * _STRIDE
    sw = np.exp(scale[1, ys, xs]) * _STRIDE
    cy = (ys + offset[0, ys, xs] + 0.5) * _STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * _STRIDE
    x1 = np.maximum(cx - sw / 2, 0)
    y1 = np.maximum(cy - sh / 2, 0)
    xyxy = np.stack([x1, y1, x1 + sw, y1 + sh], axis=1).astype(np.float32)
    # Keypoint channels alternate (y, x) per point, relative to the box corner in box units.
    kp_y = lms[0::2, ys, xs].T * sh[:, None] + y1[:, None]
    kp_x = lms[1::2, ys, xs].T * sw[:, None] + x1[:, None]
    keypoints = np.stack([kp_x, kp_y], axis=2).astype(np.float32)
    return Detections(xyxy, heat[ys, xs].astype(np.float32), keypoints)


def _nms(dets: Detections, iou: float) -> list[int]:
    boxes = dets.xyxy.copy()
    boxes[:, 2:] -= boxes[:, :2]
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), dets.scores.tolist(), 0.0, iou)
    return [int(i) for i in np.asarray(keep).reshape(-1)]


def load_centerface_onnx(path: Path) -> bytes:
    """CenterFace as serialized ONNX bytes with dynamic batch/height/width.

    The published graph lists its initializers as graph inputs (onnxruntime then warns and skips
    constant folding) and fixes the input at 10×3×32×32; both are rewritten here in memory so the
    cached file keeps its published checksum.
    """
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises protobuf DecodeError, OSError, ValueError…
        raise ModelError(
            f"cannot load ONNX model {path} ({type(exc).__name__}); re-fetch it with "
            f"`affectstream models fetch face-centerface`"
        ) from exc
    graph = model.graph
    init_names = {init.name for init in graph.initializer}
    inputs = [vi for vi in graph.input if vi.name not in init_names]
    del graph.input[:]
    graph.input.extend(inputs)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    # Outputs are a quarter of the input size, so they get their own symbols.
    _make_dims_symbolic(graph.input, ("N", "H", "W"))
    _make_dims_symbolic(graph.output, ("N", "H/4", "W/4"))
    del graph.value_info[:]  # stale intermediate shapes would contradict the new dims
    return bytes(model.SerializeToString())


def _make_dims_symbolic(values: Iterable[Any], symbols: tuple[str, str, str]) -> None:
    for vi in values:
        dims = vi.type.tensor_type.shape.dim
        if len(dims) != 4:
            raise ModelError(f"{vi.name} has {len(dims)} dims, not 4; use the registry CenterFace")
        for index, symbol in zip((0, 2, 3), symbols, strict=True):
            dims[index].dim_param = symbol  # setting dim_param clears the fixed dim_value


class FaceDetector(Protocol):
    """What perception needs of a face detector."""

    providers: list[str]
    """The onnxruntime execution providers in use (reported by ``bench``)."""

    def detect(self, image: Image) -> Detections: ...


DETECTORS: dict[str, Callable[[DetectorConfig, Path], FaceDetector]] = {
    "centerface": CenterFaceDetector}
"""Face detectors by ``detector.type``: one per member of
:data:`affectstream.config.DetectorConfig`."""


def make_detector(cfg: DetectorConfig, model_path: Path) -> FaceDetector:
    """The face detector that ``cfg.type`` names, on the model file ``model_path``."""
    return DETECTORS[cfg.type](cfg, model_path)
