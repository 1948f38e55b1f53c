"""The ONNX specialist on small ONNX models built here with known weights, so every
preprocessing choice (channel order, layout, normalisation, crop, output kind, label mapping)
has a computable expected answer through the real onnxruntime path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from pydantic import ValidationError

from affectstream.config import SpecialistConfig
from affectstream.errors import ConfigError, ModelError
from affectstream.labels import LABEL_SETS
from affectstream.specialist.classifier import ExpressionClassifier, label_map

DFEW = LABEL_SETS["dfew7"]
FERPLUS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]


def mean_channel_model(path: Path, weights: np.ndarray, *, layout: str = "nchw",
                       side: int | str = 32, softmax: bool = False) -> Path:
    """scores = mean over the image of each input channel @ weights (C × K), optionally
    softmaxed: a linear probe whose answer follows from the preprocessed pixels alone."""
    channels, classes = weights.shape
    dims: list[int | str] = (["N", channels, side, side] if layout == "nchw"
                             else ["N", side, side, channels])
    axes = [2, 3] if layout == "nchw" else [1, 2]
    nodes = [
        helper.make_node("ReduceMean", ["input", "axes"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
    ]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
        out = "probs"
    graph = helper.make_graph(
        nodes, "probe",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", classes])],
        initializer=[numpy_helper.from_array(np.asarray(axes, np.int64), "axes"),
                     numpy_helper.from_array(weights.astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def solid(bgr: tuple[int, int, int], side: int = 224) -> np.ndarray:
    return np.full((side, side, 3), bgr, np.uint8)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def test_channel_order_decides_which_class_a_red_face_gets(tmp_path: Path) -> None:
    # class k answers to channel k: a pure red crop lights up channel 0 in RGB, 2 in BGR.
    labels = ["happiness", "sadness", "anger"]
    path = mean_channel_model(tmp_path / "m.onnx", np.eye(3) * 10)
    red = solid((0, 0, 255))
    rgb = ExpressionClassifier(SpecialistConfig(model_path=path, labels=labels), path, DFEW)
    bgr = ExpressionClassifier(SpecialistConfig(model_path=path, labels=labels, color="bgr"),
                               path, DFEW)
    assert max(rgb.classify([red])[0].items(), key=lambda kv: kv[1])[0] == "happiness"
    assert max(bgr.classify([red])[0].items(), key=lambda kv: kv[1])[0] == "anger"
    assert rgb.pre.side == 32 and rgb.pre.layout == "nchw" and rgb.pre.color == "rgb"


def test_normalisation_and_softmax_match_the_arithmetic(tmp_path: Path) -> None:
    # gray model: logits = (v, −v) with v the normalised mean pixel.
    path = mean_channel_model(tmp_path / "g.onnx", np.array([[1.0, -1.0]]), layout="nhwc",
                              side=48)
    cfg = SpecialistConfig(model_path=path, labels=["happy", "sad"], mean=[0.5], std=[0.25])
    clf = ExpressionClassifier(cfg, path, DFEW)
    assert (clf.pre.layout, clf.pre.color, clf.pre.side) == ("nhwc", "gray", 48)
    gray = 200
    v = (gray / 255 - 0.5) / 0.25
    expected = softmax(np.array([v, -v]))
    probs = clf.classify([solid((gray, gray, gray))])[0]
    assert probs["happiness"] == pytest.approx(expected[0], abs=1e-5)
    assert probs["sadness"] == pytest.approx(expected[1], abs=1e-5)
    assert sum(probs.values()) == pytest.approx(1.0)
    assert {k for k, p in probs.items() if p > 0} == {"happiness", "sadness"}


def test_a_model_that_outputs_probabilities_is_not_softmaxed_twice(tmp_path: Path) -> None:
    path = mean_channel_model(tmp_path / "p.onnx", np.array([[3.0, 0.0]]), softmax=True,
                              layout="nhwc")
    clf = ExpressionClassifier(SpecialistConfig(model_path=path, labels=["fear", "neutral"]),
                               path, DFEW)
    probs = clf.classify([solid((255, 255, 255))])[0]
    assert probs["fear"] == pytest.approx(softmax(np.array([3.0, 0.0]))[0], abs=1e-5)


def test_crop_scale_feeds_only_the_centre(tmp_path: Path) -> None:
    path = mean_channel_model(tmp_path / "c.onnx", np.array([[4.0, -4.0]]), layout="nhwc")
    crop = solid((0, 0, 0))
    crop[56:168, 56:168] = 255  # bright centre half, dark border
    whole = ExpressionClassifier(
        SpecialistConfig(model_path=path, labels=["happy", "sad"]), path, DFEW)
    centre = ExpressionClassifier(
        SpecialistConfig(model_path=path, labels=["happy", "sad"], crop_scale=0.5), path, DFEW)
    assert whole.classify([crop])[0]["happiness"] < 0.9
    assert centre.classify([crop])[0]["happiness"] == pytest.approx(
        1 / (1 + math.exp(-8.0)), abs=1e-3)


def test_ferplus_classes_map_onto_dfew_and_mafw() -> None:
    dfew = label_map(FERPLUS, DFEW)
    assert dfew[FERPLUS.index("contempt")] == "disgust"  # DFEW has no contempt
    mafw = label_map(FERPLUS, LABEL_SETS["mafw11"])
    assert mafw[FERPLUS.index("contempt")] == "contempt"
    assert label_map(["angry", "happy", "yawning"], DFEW) == ["anger", "happiness", None]
    with pytest.raises(ConfigError, match="names a label"):
        label_map(["yawning", "sneezing"], DFEW)


def test_batch_of_crops_sums_to_one_over_exactly_the_label_set(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = mean_channel_model(tmp_path / "f.onnx", rng.normal(size=(3, 8)))
    clf = ExpressionClassifier(SpecialistConfig(model_path=path, labels=FERPLUS), path, DFEW)
    crops = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(3)]
    for probs in clf.classify(crops):
        assert tuple(probs) == DFEW
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    assert clf.classify([]) == []


def test_bad_models_and_settings_fail_with_one_line(tmp_path: Path) -> None:
    path = mean_channel_model(tmp_path / "m.onnx", np.eye(3), side="S")
    with pytest.raises(ConfigError, match="input_size"):  # dynamic size, none given
        ExpressionClassifier(SpecialistConfig(model_path=path, labels=["a", "happy", "sad"]),
                             path, DFEW)
    with pytest.raises(ConfigError, match="outputs 3 scores"):
        ExpressionClassifier(SpecialistConfig(model_path=path, labels=["happy"],
                                              input_size=32), path, DFEW)
    with pytest.raises(ValidationError, match=r"needs specialist\.labels"):  # at load
        SpecialistConfig(model_path=path, input_size=32)
    unknown = SpecialistConfig(model="face-centerface", input_size=32)  # no preset: no classes
    with pytest.raises(ConfigError, match=r"does not say its classes.*specialist\.labels"):
        ExpressionClassifier(unknown, path, DFEW)
    with pytest.raises(ConfigError, match="channel"):
        ExpressionClassifier(SpecialistConfig(model_path=path, labels=["fear", "happy", "sad"],
                                              input_size=32, color="gray"), path, DFEW)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load the specialist model") as err:
        ExpressionClassifier(SpecialistConfig(model_path=junk, labels=["happy"]), junk, DFEW)
    assert "\n" not in str(err.value)


def test_a_model_that_rejects_the_input_size_fails_at_load(tmp_path: Path) -> None:
    # dynamic H×W, but the weights only fit 3×32×32 inputs: only running it tells
    w = np.zeros((3 * 32 * 32, 2), np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["logits"])], "fixed",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = tmp_path / "fixed.onnx"
    onnx.save(model, str(path))
    ExpressionClassifier(SpecialistConfig(model_path=path, labels=["happy", "sad"],
                                          input_size=32), path, DFEW)
    with pytest.raises(ModelError, match="input_size") as err:
        ExpressionClassifier(SpecialistConfig(model_path=path, labels=["happy", "sad"],
                                              input_size=48), path, DFEW)
    assert "\n" not in str(err.value)
