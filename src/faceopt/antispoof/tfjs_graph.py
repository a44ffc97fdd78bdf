"""A small reader of TensorFlow.js *graph models* (``model.json`` + weight shards) into a PyTorch module.

A TFJS graph model is a frozen TensorFlow graph: ``modelTopology.node`` lists the nodes (``name``, ``op``,
``input``, ``attr``) and ``weightsManifest`` lists groups of weight shards (``paths``) with, for every
constant, its ``name``, ``shape``, ``dtype`` and optional ``quantization``. :func:`load_tfjs_graph` reads
both and returns a :class:`TfjsGraphModule` that *interprets* the graph in topological order with the
operations of :data:`SUPPORTED_OPS` (enough for the small classifier CNNs of the Human library):

- ``Placeholder`` (the input), ``Const`` (weights), ``Identity``;
- ``Conv2D``, ``DepthwiseConv2dNative``, ``_FusedConv2D`` and ``_FusedDepthwiseConv2dNative`` (fused
  ``BiasAdd`` then an activation among ``Relu``, ``Relu6``, ``Elu``, ``LeakyRelu``, ``Sigmoid``, ``Tanh``,
  ``Prelu``), with strides, dilations and padding ``VALID``, ``SAME`` or ``EXPLICIT``;
- ``MaxPool``, ``AvgPool``; ``MatMul`` and ``_FusedMatMul`` (``transpose_a``/``transpose_b``, fused bias and
  activation); ``BiasAdd``; ``Reshape``, ``Squeeze``, ``ConcatV2``, ``Mean``;
- element-wise ``Mul``, ``Add``, ``AddV2``, ``Sub``, ``RealDiv``, ``Maximum``, ``Minimum``, ``Relu``,
  ``Relu6``, ``Elu``, ``LeakyRelu``, ``Sigmoid``, ``Tanh``, ``Softmax`` (last axis).

Layout: activations flow through the graph in TensorFlow's NHWC layout, so that ``Reshape`` (a Keras
``Flatten``), broadcasting ``Mul``/``Add`` and ``Softmax`` mean exactly what they mean in TensorFlow; each
convolution and pooling permutes to NCHW around its PyTorch call. Convolution kernels are stored once, at
load time, in PyTorch's ``OIHW`` layout (TF's ``HWIO``; a depthwise ``HWCM`` kernel becomes ``(C*M, 1, H, W)``).
The module takes an **NHWC** float tensor like TF does, or NCHW with ``input_layout="NCHW"`` (4-D outputs are
then returned NCHW as well).

TF's ``SAME`` padding is reproduced exactly: for input size ``n``, stride ``s`` and effective kernel
``k' = (k - 1) * d + 1`` the output has ``ceil(n / s)`` positions and ``total = max((ceil(n/s) - 1) * s + k' - n, 0)``
pixels are padded, ``total // 2`` before and the rest (one more when ``total`` is odd) after; max pooling pads
with ``-inf`` and average pooling divides by the count of real pixels, as TF does.

Weights are dequantised as TFJS does: ``float16`` values are widened to float32; ``uint8``/``uint16``
values ``q`` become ``q * scale + min`` (``quantization.scale``/``quantization.min``).

Errors: a file that is not a readable TFJS graph model (bad JSON, a missing or short weight shard, a weight
the manifest does not hold) raises :class:`~faceopt.data.errors.DataFileError` naming the file and the fix;
an op outside :data:`SUPPORTED_OPS` raises ``ValueError`` naming the op, the node and the file.
"""
from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from faceopt.data.errors import DataFileError

__all__ = [
    "SUPPORTED_OPS",
    "TfjsGraphModule",
    "TfjsNode",
    "check_ops",
    "load_tfjs_graph",
    "read_graph_json",
    "read_weights",
    "same_padding",
]

_ACTIVATIONS = ("Relu", "Relu6", "Elu", "LeakyRelu", "Sigmoid", "Tanh")
_CONV_OPS = ("Conv2D", "DepthwiseConv2dNative", "_FusedConv2D", "_FusedDepthwiseConv2dNative")
_BINARY_OPS = ("Mul", "Add", "AddV2", "Sub", "RealDiv", "Maximum", "Minimum")

#: Every op :class:`TfjsGraphModule` can run.
SUPPORTED_OPS: frozenset[str] = frozenset(
    ("Placeholder", "Const", "Identity", "MaxPool", "AvgPool", "MatMul", "_FusedMatMul", "BiasAdd", "Reshape",
     "Squeeze", "ConcatV2", "Mean", "Softmax", *_ACTIVATIONS, *_CONV_OPS, *_BINARY_OPS)
)

# bytes per stored element, by the manifest's dtype (or the quantization dtype when there is one)
_ITEMSIZE = {"float32": 4, "int32": 4, "bool": 1, "float16": 2, "uint8": 1, "uint16": 2}
_FUSED_OK = {"BiasAdd", "Prelu", *_ACTIVATIONS}


@dataclass(frozen=True)
class TfjsNode:
    """One node of ``modelTopology.node``: ``inputs`` are node names (``name:0`` suffixes and ``^control``
    inputs removed), ``attr`` the raw attribute dictionary of the JSON."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attr: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- #
# Reading the files
# --------------------------------------------------------------------------- #
def _fix(path: Path) -> str:
    return f"re-fetch the model files (for a catalogued asset: delete {path} and run `faceopt assets fetch NAME`)"


def read_graph_json(path: str | Path) -> dict[str, Any]:
    """The parsed ``model.json`` of a TFJS graph model, checked to hold ``modelTopology.node`` and
    ``weightsManifest``.

    Raises:
        DataFileError: not JSON, not a graph model (e.g. a TFJS *layers* model), or a required key missing.
    """
    path = Path(path)
    try:
        model = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(f"{path}: not a TFJS model.json ({exc}); {_fix(path)}") from None
    if not isinstance(model, dict):
        raise DataFileError(f"{path}: not a TFJS model.json (top level is not an object); {_fix(path)}")
    fmt = model.get("format")
    if fmt is not None and fmt != "graph-model":
        raise DataFileError(f"{path}: a TFJS {fmt!r} model; only graph models ('graph-model') can be read; "
                            "convert it with tensorflowjs_converter --output_format=tfjs_graph_model")
    topology = model.get("modelTopology")
    if not isinstance(topology, dict) or not isinstance(topology.get("node"), list):
        raise DataFileError(f"{path}: no modelTopology.node list; not a TFJS graph model.json; {_fix(path)}")
    manifest = model.get("weightsManifest")
    if not isinstance(manifest, list) or not all(isinstance(g, dict) and isinstance(g.get("paths"), list)
                                                 and isinstance(g.get("weights"), list) for g in manifest):
        raise DataFileError(f"{path}: weightsManifest is missing or malformed (a list of {{paths, weights}}); {_fix(path)}")
    return model


def _shard_path(json_path: Path, rel: str, shard_paths: Mapping[str, str | Path] | None) -> Path:
    if shard_paths is not None and rel in shard_paths:
        return Path(shard_paths[rel])
    return json_path.parent / rel


def read_weights(
    json_path: str | Path,
    shard_paths: Mapping[str, str | Path] | None = None,
    *,
    model: Mapping[str, Any] | None = None,
) -> dict[str, NDArray[Any]]:
    """The dequantised weights of a TFJS model: ``{name: float32 / int32 / bool array in the manifest's shape}``.

    Args:
        json_path: the ``model.json``; shard paths in its manifest are relative to its folder.
        shard_paths: optional ``{path as written in the manifest: actual file}``, for shards that do not
            lie beside the JSON (catalogued assets each live in their own cache folder).
        model: the already parsed JSON (:func:`read_graph_json`), to avoid reading it twice.

    Raises:
        DataFileError: a shard missing or unreadable, the shards of a group shorter or longer than the
            manifest says, or a dtype/quantisation this reader does not know.
    """
    json_path = Path(json_path)
    if model is None:
        model = read_graph_json(json_path)
    out: dict[str, NDArray[Any]] = {}
    for gi, group in enumerate(model["weightsManifest"]):
        files = [_shard_path(json_path, str(p), shard_paths) for p in group["paths"]]
        chunks = []
        for f in files:
            try:
                chunks.append(f.read_bytes())
            except FileNotFoundError:
                raise DataFileError(f"{f}: weight shard of {json_path} (group {gi}) not found; it must lie beside the "
                                    f"JSON or be given in shard_paths; {_fix(f)}") from None
            except OSError as exc:
                raise DataFileError(f"{f}: weight shard of {json_path} cannot be read ({exc}); {_fix(f)}") from None
        data = b"".join(chunks)
        names = ", ".join(str(f) for f in files)
        offset = 0
        for spec in group["weights"]:
            try:
                name, shape, dtype = str(spec["name"]), [int(d) for d in spec["shape"]], str(spec["dtype"])
            except (KeyError, TypeError, ValueError):
                raise DataFileError(f"{json_path}: malformed weight entry {str(spec)[:120]} in group {gi}; "
                                    f"{_fix(json_path)}") from None
            quant = spec.get("quantization") or {}
            stored = str(quant.get("dtype", dtype))
            if stored not in _ITEMSIZE or dtype not in ("float32", "int32", "bool"):
                raise DataFileError(f"{json_path}: weight {name!r} has dtype {dtype!r} stored as {stored!r}, which this "
                                    f"reader does not decode (known: {', '.join(_ITEMSIZE)})")
            count = math.prod(shape)
            nbytes = count * _ITEMSIZE[stored]
            if offset + nbytes > len(data):
                raise DataFileError(f"{names}: weight shard(s) of {json_path} hold {len(data)} bytes, but the manifest needs "
                                    f"at least {offset + nbytes} (weight {name!r}); the file is truncated: {_fix(files[-1])}")
            raw = data[offset: offset + nbytes]
            offset += nbytes
            out[name] = _decode(raw, dtype, stored, quant).reshape(shape)
        if offset != len(data):
            raise DataFileError(f"{names}: weight shard(s) of {json_path} hold {len(data)} bytes, but the manifest describes "
                                f"{offset}; the shard does not belong to this model.json: {_fix(files[-1])}")
    return out


def _decode(raw: bytes, dtype: str, stored: str, quant: Mapping[str, Any]) -> NDArray[Any]:
    if stored == "float16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float32)
    if stored in ("uint8", "uint16"):
        q = np.frombuffer(raw, dtype="<u1" if stored == "uint8" else "<u2").astype(np.float64)
        values = q * float(quant.get("scale", 1.0)) + float(quant.get("min", 0.0))
        return values.astype(np.int32 if dtype == "int32" else np.float32)
    if stored == "float32":
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if stored == "int32":
        return np.frombuffer(raw, dtype="<i4").astype(np.int32)
    return np.frombuffer(raw, dtype=np.uint8).astype(bool)


# --------------------------------------------------------------------------- #
# Attributes
# --------------------------------------------------------------------------- #
def _attr_str(attr: Mapping[str, Any], key: str, default: str = "") -> str:
    value = attr.get(key, {}).get("s")
    return base64.b64decode(value).decode("utf-8") if value is not None else default


def _attr_ints(attr: Mapping[str, Any], key: str, default: Sequence[int] = ()) -> list[int]:
    values = attr.get(key, {}).get("list", {}).get("i")
    return [int(v) for v in values] if values else list(default)


def _attr_strs(attr: Mapping[str, Any], key: str) -> list[str]:
    return [base64.b64decode(v).decode("utf-8") for v in attr.get(key, {}).get("list", {}).get("s", [])]


def _attr_bool(attr: Mapping[str, Any], key: str, default: bool = False) -> bool:
    return bool(attr.get(key, {}).get("b", default))


def _attr_float(attr: Mapping[str, Any], key: str, default: float) -> float:
    return float(attr.get(key, {}).get("f", default))


def _attr_int(attr: Mapping[str, Any], key: str, default: int) -> int:
    return int(attr.get(key, {}).get("i", default))


def _placeholder_shape(attr: Mapping[str, Any]) -> tuple[int, ...]:
    dims = attr.get("shape", {}).get("shape", {}).get("dim", [])
    return tuple(int(d.get("size", -1)) for d in dims)


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's ``SAME`` padding ``(before, after)`` of one spatial axis (``after`` gets the odd pixel)."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


# --------------------------------------------------------------------------- #
# The module
# --------------------------------------------------------------------------- #
def _activation(x: torch.Tensor, op: str, alpha: float = 0.2, prelu: torch.Tensor | None = None) -> torch.Tensor:
    if op == "Relu":
        return F.relu(x)
    if op == "Relu6":
        return torch.clamp(x, 0.0, 6.0)
    if op == "Elu":
        return F.elu(x)
    if op == "LeakyRelu":
        return F.leaky_relu(x, alpha)
    if op == "Sigmoid":
        return torch.sigmoid(x)
    if op == "Tanh":
        return torch.tanh(x)
    if op == "Prelu" and prelu is not None:
        return torch.where(x >= 0, x, x * prelu)
    raise ValueError(f"activation {op!r} is not supported")


def _spatial_padding(attr: Mapping[str, Any], h: int, w: int, kh: int, kw: int, strides: Sequence[int],
                     dilations: Sequence[int]) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding of an NHWC op, in the order F.pad wants it for NCHW."""
    padding = _attr_str(attr, "padding", "VALID")
    if padding == "VALID":
        return 0, 0, 0, 0
    if padding == "SAME":
        top, bottom = same_padding(h, kh, strides[1], dilations[1])
        left, right = same_padding(w, kw, strides[2], dilations[2])
        return left, right, top, bottom
    if padding == "EXPLICIT":
        p = _attr_ints(attr, "explicit_paddings", [0] * 8)  # NHWC pairs
        return p[4], p[5], p[2], p[3]
    raise ValueError(f"padding {padding!r} is not supported")


class TfjsGraphModule(nn.Module):
    """A TFJS graph model run by PyTorch (build it with :func:`load_tfjs_graph`).

    ``forward(x)`` takes the model's single input (NHWC float, or NCHW when ``input_layout == "NCHW"``) and
    returns its single output (or a tuple when the graph has several). Weights are buffers, so
    ``module.to(device)`` moves them; the module is put in ``eval()`` mode and needs no gradients.

    Attributes:
        source: the ``model.json`` path (named in error messages).
        input_name: name of the ``Placeholder`` node.
        input_shape: its shape as the graph declares it (NHWC; ``-1`` for the free batch size).
        output_names: the output nodes, from the JSON's ``signature`` when it has one, else the sinks.
        input_layout: ``"NHWC"`` (TF's) or ``"NCHW"``.
        nodes: the nodes in the topological order they run in.
    """

    def __init__(self, nodes: Sequence[TfjsNode], weights: Mapping[str, NDArray[Any]], *, source: str = "<graph>",
                 output_names: Sequence[str] | None = None, input_layout: Literal["NHWC", "NCHW"] = "NHWC") -> None:
        super().__init__()
        if input_layout not in ("NHWC", "NCHW"):
            raise ValueError(f"input_layout must be 'NHWC' or 'NCHW', not {input_layout!r}")
        self.source = source
        self.input_layout = input_layout
        by_name = {n.name: n for n in nodes}
        check_ops(nodes, source)
        for node in nodes:
            for inp in node.inputs:
                if inp not in by_name:
                    raise DataFileError(f"{source}: node {node.name!r} reads {inp!r}, which is not a node of the graph; "
                                        f"the model.json is damaged: {_fix(Path(source))}")
            if node.op in _CONV_OPS and (len(node.inputs) < 2 or by_name[node.inputs[1]].op != "Const"):
                raise ValueError(f"{source}: node {node.name!r} ({node.op}) needs a constant filter as its second input")
        placeholders = [n for n in nodes if n.op == "Placeholder"]
        if len(placeholders) != 1:
            raise ValueError(f"{source}: the graph has {len(placeholders)} Placeholder inputs; TfjsGraphModule runs graphs "
                             "with exactly one")
        self.input_name = placeholders[0].name
        self.input_shape = _placeholder_shape(placeholders[0].attr)
        self.nodes: tuple[TfjsNode, ...] = tuple(_topological(nodes, source))
        consumed = {i for n in nodes for i in n.inputs}
        outs = list(output_names) if output_names else [n.name for n in self.nodes if n.name not in consumed and n.op != "Const"]
        for name in outs:
            if name not in by_name:
                raise DataFileError(f"{source}: output {name!r} is not a node of the graph: {_fix(Path(source))}")
        self.output_names: tuple[str, ...] = tuple(outs)

        # constants: conv kernels once in OIHW; every other use in TF layout
        conv_filter = {n.inputs[1] for n in nodes if n.op in _CONV_OPS}
        other_use = {i for n in nodes for k, i in enumerate(n.inputs) if not (n.op in _CONV_OPS and k == 1)}
        self._buffer: dict[str, str] = {}
        self._kernel: dict[str, str] = {}
        for k, node in enumerate(n for n in self.nodes if n.op == "Const"):
            if node.name not in weights:
                raise DataFileError(f"{source}: constant {node.name!r} is not in the weights manifest; "
                                    f"the model.json and its shards do not match: {_fix(Path(source))}")
            value = torch.from_numpy(np.array(weights[node.name]))
            if value.dtype == torch.int32:
                value = value.to(torch.int64)
            if node.name in other_use or node.name not in conv_filter:
                self._buffer[node.name] = f"const_{k}"
                self.register_buffer(f"const_{k}", value, persistent=True)
            if node.name in conv_filter:
                users = {n.op for n in nodes if n.op in _CONV_OPS and n.inputs[1] == node.name}
                depthwise = any("Depthwise" in op for op in users)
                if value.ndim != 4:
                    raise DataFileError(f"{source}: convolution kernel {node.name!r} has shape {tuple(value.shape)}, not 4-D")
                if depthwise:  # HWCM -> (C*M, 1, H, W)
                    h, w, c, m = value.shape
                    kernel = value.permute(2, 3, 0, 1).reshape(c * m, 1, h, w)
                else:  # HWIO -> OIHW
                    kernel = value.permute(3, 2, 0, 1)
                self._kernel[node.name] = f"kernel_{k}"
                self.register_buffer(f"kernel_{k}", kernel.contiguous().float(), persistent=True)
        self.eval()

    # -- helpers ------------------------------------------------------------ #
    def _const(self, name: str) -> torch.Tensor:
        buf: torch.Tensor = getattr(self, self._buffer[name])
        return buf

    def _conv(self, node: TfjsNode, x: torch.Tensor, env: Mapping[str, torch.Tensor]) -> torch.Tensor:
        attr = node.attr
        if _attr_str(attr, "data_format", "NHWC") != "NHWC":
            raise ValueError(f"{self.source}: node {node.name!r}: only NHWC data_format is supported")
        kernel: torch.Tensor = getattr(self, self._kernel[node.inputs[1]])
        strides = _attr_ints(attr, "strides", [1, 1, 1, 1])
        dilations = _attr_ints(attr, "dilations", [1, 1, 1, 1])
        kh, kw = kernel.shape[2], kernel.shape[3]
        pad = _spatial_padding(attr, x.shape[1], x.shape[2], kh, kw, strides, dilations)
        y = x.permute(0, 3, 1, 2)
        if any(pad):
            y = F.pad(y, pad)
        groups = y.shape[1] if "Depthwise" in node.op else 1
        y = F.conv2d(y, kernel, None, (strides[1], strides[2]), 0, (dilations[1], dilations[2]), groups)
        y = y.permute(0, 2, 3, 1)
        if node.op.startswith("_Fused"):
            y = self._fused(node, y, env)
        return y

    def _fused(self, node: TfjsNode, y: torch.Tensor, env: Mapping[str, torch.Tensor]) -> torch.Tensor:
        fused = _attr_strs(node.attr, "fused_ops")
        extra = [env[i] for i in node.inputs[2:]]
        for op in fused:
            if op == "BiasAdd":
                y = y + extra[0]
            elif op == "Prelu":
                y = _activation(y, op, prelu=extra[1] if len(extra) > 1 else extra[0])
            else:
                y = _activation(y, op, alpha=_attr_float(node.attr, "leakyrelu_alpha", 0.2))
        return y

    def _pool(self, node: TfjsNode, x: torch.Tensor) -> torch.Tensor:
        attr = node.attr
        ksize = _attr_ints(attr, "ksize", [1, 1, 1, 1])
        strides = _attr_ints(attr, "strides", [1, 1, 1, 1])
        pad = _spatial_padding(attr, x.shape[1], x.shape[2], ksize[1], ksize[2], strides, [1, 1, 1, 1])
        y = x.permute(0, 3, 1, 2)
        kernel, stride = (ksize[1], ksize[2]), (strides[1], strides[2])
        if node.op == "MaxPool":
            if any(pad):
                y = F.pad(y, pad, value=float("-inf"))
            out = F.max_pool2d(y, kernel, stride)
        else:
            if any(pad):
                ones = F.pad(torch.ones_like(y[:1, :1]), pad)
                y = F.pad(y, pad)
                out = F.avg_pool2d(y, kernel, stride) / F.avg_pool2d(ones, kernel, stride)
            else:
                out = F.avg_pool2d(y, kernel, stride)
        return out.permute(0, 2, 3, 1)

    def _matmul(self, node: TfjsNode, a: torch.Tensor, b: torch.Tensor, env: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if _attr_bool(node.attr, "transpose_a"):
            a = a.transpose(-1, -2)
        if _attr_bool(node.attr, "transpose_b"):
            b = b.transpose(-1, -2)
        y = a @ b
        return self._fused(node, y, env) if node.op == "_FusedMatMul" else y

    # -- running ------------------------------------------------------------ #
    def _run(self, node: TfjsNode, env: Mapping[str, torch.Tensor]) -> torch.Tensor:
        op, args = node.op, [env[i] for i in node.inputs if i in env]
        if op == "Identity":
            return args[0]
        if op in _CONV_OPS:
            return self._conv(node, args[0], env)
        if op in ("MaxPool", "AvgPool"):
            return self._pool(node, args[0])
        if op in ("MatMul", "_FusedMatMul"):
            return self._matmul(node, args[0], args[1], env)
        if op == "BiasAdd":
            return args[0] + args[1]
        if op in _ACTIVATIONS:
            return _activation(args[0], op, alpha=_attr_float(node.attr, "alpha", 0.2))
        if op == "Softmax":
            return torch.softmax(args[0], dim=-1)
        if op == "Reshape":
            return args[0].reshape([int(v) for v in args[1].reshape(-1).tolist()])
        if op == "Squeeze":
            dims = _attr_ints(node.attr, "squeeze_dims")
            return args[0].squeeze(tuple(dims)) if dims else args[0].squeeze()
        if op == "ConcatV2":
            axis = int(args[-1].reshape(-1)[0])
            return torch.cat(args[:-1], dim=axis)
        if op == "Mean":
            axes = [int(v) for v in args[1].reshape(-1).tolist()]
            return args[0].mean(dim=axes, keepdim=_attr_bool(node.attr, "keep_dims"))
        a, b = args[0], args[1]
        if op == "Mul":
            return a * b
        if op in ("Add", "AddV2"):
            return a + b
        if op == "Sub":
            return a - b
        if op == "RealDiv":
            return a / b
        if op == "Maximum":
            return torch.maximum(a, b)
        if op == "Minimum":
            return torch.minimum(a, b)
        raise ValueError(f"{self.source}: node {node.name!r} uses op {op!r}, which is not supported")  # pragma: no cover

    def run(self, x: torch.Tensor, outputs: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Run the graph on ``x`` and return ``{node name: value}`` for ``outputs`` (default: the model's
        outputs); naming an inner node (e.g. the logits before a ``Sigmoid``) returns its value, as tfjs's
        ``model.execute(x, names)`` does. Values of 4-D nodes are NHWC unless ``input_layout == "NCHW"``."""
        wanted = tuple(outputs) if outputs is not None else self.output_names
        known = {n.name for n in self.nodes}
        for name in wanted:
            if name not in known:
                raise KeyError(f"{self.source}: no node named {name!r}")
        x = x.float()
        if self.input_layout == "NCHW" and x.ndim == 4:
            x = x.permute(0, 2, 3, 1)
        env: dict[str, torch.Tensor] = {}
        for node in self.nodes:
            if node.op == "Placeholder":
                env[node.name] = x
            elif node.op == "Const":
                if node.name in self._buffer:
                    env[node.name] = self._const(node.name)
            else:
                env[node.name] = self._run(node, env)
        out = {name: env[name] for name in wanted}
        if self.input_layout == "NCHW":
            out = {k: (v.permute(0, 3, 1, 2) if v.ndim == 4 else v) for k, v in out.items()}
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Run the graph on ``x`` (NHWC float, or NCHW with ``input_layout="NCHW"``); the output, or a tuple of them."""
        out = self.run(x)
        values = [out[name] for name in self.output_names]
        return values[0] if len(values) == 1 else tuple(values)


def check_ops(nodes: Sequence[TfjsNode], source: str) -> None:
    """Raise ``ValueError`` (naming op, node and ``source``) for the first op or fused op that
    :class:`TfjsGraphModule` cannot run."""
    for node in nodes:
        if node.op not in SUPPORTED_OPS:
            raise ValueError(f"{source}: node {node.name!r} uses op {node.op!r}, which faceopt.antispoof.tfjs_graph "
                             f"does not support (supported: {', '.join(sorted(SUPPORTED_OPS))})")
        if node.op.startswith("_Fused"):
            bad = [f for f in _attr_strs(node.attr, "fused_ops") if f not in _FUSED_OK]
            if bad:
                raise ValueError(f"{source}: node {node.name!r} ({node.op}) fuses {bad}, which faceopt.antispoof.tfjs_graph "
                                 f"does not support (supported fused ops: {', '.join(sorted(_FUSED_OK))})")


def _topological(nodes: Sequence[TfjsNode], source: str) -> list[TfjsNode]:
    """Kahn's order, stable with respect to the file's order."""
    index = {n.name: k for k, n in enumerate(nodes)}
    if len(index) != len(nodes):
        raise DataFileError(f"{source}: two nodes share a name; the model.json is damaged: {_fix(Path(source))}")
    pending = {n.name: len(set(n.inputs)) for n in nodes}
    users: dict[str, list[str]] = {n.name: [] for n in nodes}
    for n in nodes:
        for i in set(n.inputs):
            users[i].append(n.name)
    ready = sorted((index[name] for name, count in pending.items() if count == 0))
    order: list[TfjsNode] = []
    while ready:
        k = ready.pop(0)
        order.append(nodes[k])
        for user in users[nodes[k].name]:
            pending[user] -= 1
            if pending[user] == 0:
                ready.append(index[user])
                ready.sort()
    if len(order) != len(nodes):
        raise DataFileError(f"{source}: the graph has a cycle; the model.json is damaged: {_fix(Path(source))}")
    return order


def _parse_nodes(model: Mapping[str, Any], source: Path) -> list[TfjsNode]:
    nodes = []
    for raw in model["modelTopology"]["node"]:
        if not isinstance(raw, dict) or "name" not in raw or "op" not in raw:
            raise DataFileError(f"{source}: a node without name/op ({str(raw)[:80]}); the model.json is damaged: {_fix(source)}")
        inputs = tuple(str(i).split(":")[0] for i in raw.get("input", []) if not str(i).startswith("^"))
        nodes.append(TfjsNode(str(raw["name"]), str(raw["op"]), inputs, raw.get("attr", {})))
    return nodes


def _signature_outputs(model: Mapping[str, Any]) -> list[str]:
    outputs = (model.get("signature") or {}).get("outputs") or {}
    return [str(v["name"]).split(":")[0] for v in outputs.values() if isinstance(v, dict) and "name" in v]


def load_tfjs_graph(
    json_path: str | Path,
    shard_paths: Mapping[str, str | Path] | None = None,
    *,
    input_layout: Literal["NHWC", "NCHW"] = "NHWC",
) -> TfjsGraphModule:
    """Read a TFJS graph model (``model.json`` and its weight shards) into a :class:`TfjsGraphModule`.

    Args:
        json_path: the ``model.json``.
        shard_paths: ``{shard path as the manifest writes it: file}`` for shards that do not lie beside the
            JSON (see :func:`read_weights`).
        input_layout: ``"NHWC"`` (TF's, the default) or ``"NCHW"``.

    Raises:
        DataFileError: the JSON or a shard is unreadable, truncated or does not match the manifest.
        ValueError: the graph uses an op outside :data:`SUPPORTED_OPS` (the message names op, node and file).
    """
    json_path = Path(json_path)
    model = read_graph_json(json_path)
    nodes = _parse_nodes(model, json_path)
    check_ops(nodes, str(json_path))
    weights = read_weights(json_path, shard_paths, model=model)
    return TfjsGraphModule(nodes, weights, source=str(json_path), output_names=_signature_outputs(model) or None,
                           input_layout=input_layout)
