"""Read the constant tensors and the operator list of a ``.tflite`` model.

This module turns a TFLite flatbuffer into plain Python/NumPy objects so that a
PyTorch re-implementation can be built from it at run time (third-party weights
are never committed; they are read from the cached asset).

Two readers are supported:

* the ``tflite`` package (pure-Python flatbuffer schema; preferred): gives every
  tensor, every buffer and the operators' builtin options (padding, strides,
  fused activation, pool size, ...) exactly as stored in the file;
* the reference runtime ``ai_edge_litert`` as a fallback: its ``Interpreter``
  exposes tensors and (privately) the operator list but *not* the builtin
  options, so strides are inferred from the tensor shapes and ``SAME`` padding is
  assumed when the output size is ``ceil(in / stride)`` (true for BlazeFace).

Layouts.  TFLite stores ``CONV_2D`` filters as OHWI and ``DEPTHWISE_CONV_2D``
filters as 1HWO (channel multiplier 1); PyTorch wants OIHW and O1HW
(``groups=O``).  :func:`conv2d_weight_to_torch` and
:func:`depthwise_weight_to_torch` convert them.

Float16 weights.  MediaPipe's models store weights as float16 buffers followed by
``DEQUANTIZE`` ops producing float32 tensors.  :meth:`TFLiteModel.constant`
follows such a producer chain and returns the float32 value, so a consumer never
has to care whether a weight was stored as float32, float16 or int8 (affine
quantisation with per-tensor or per-axis scale/zero-point).

TFLite ``SAME`` padding.  For input size ``n``, kernel ``k`` and stride ``s`` the
output size is ``ceil(n / s)`` and the total padding is
``max((ceil(n/s) - 1) * s + k - n, 0)``, split with the *smaller half before*:
``before = total // 2``, ``after = total - before``.  With stride 2 this is
asymmetric, e.g. kernel 5 on 128 pixels pads (1, 2) and kernel 3 on 64 pixels
pads (0, 1), unlike PyTorch's symmetric ``padding=k//2``.  See
:func:`same_padding` and :func:`pad_same`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TFLiteOp",
    "TFLiteTensor",
    "TFLiteModel",
    "read_tflite",
    "conv2d_weight_to_torch",
    "depthwise_weight_to_torch",
    "same_padding",
    "pad_same",
]

_TENSOR_TYPES: dict[int, Any] = {
    0: np.float32,
    1: np.float16,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    6: np.bool_,
    7: np.int16,
    9: np.int8,
    10: np.float64,
}


@dataclass
class TFLiteTensor:
    """One tensor of the (first) subgraph.

    ``data`` is the stored constant (in its stored dtype, reshaped), or ``None``
    for activations.  ``scale``/``zero_point``/``quantized_dimension`` describe
    affine quantisation when present.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None = None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dimension: int = 0


@dataclass
class TFLiteOp:
    """One operator, in execution order: builtin name, tensor indices, options."""

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TFLiteModel:
    """Tensors, operators (execution order) and graph inputs/outputs of a model."""

    path: Path
    tensors: list[TFLiteTensor]
    ops: list[TFLiteOp]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    reader: str

    def __post_init__(self) -> None:
        self._producer: dict[int, TFLiteOp] = {}
        self._consumers: dict[int, list[TFLiteOp]] = {}
        for op in self.ops:
            for t in op.outputs:
                self._producer[t] = op
            for t in op.inputs:
                if t >= 0:
                    self._consumers.setdefault(t, []).append(op)

    # -- graph navigation ------------------------------------------------- #
    def producer(self, tensor: int) -> TFLiteOp | None:
        """The op writing ``tensor`` (``None`` for graph inputs and stored constants)."""
        return self._producer.get(tensor)

    def consumers(self, tensor: int) -> list[TFLiteOp]:
        """Ops reading ``tensor``, in execution order."""
        return list(self._consumers.get(tensor, ()))

    def compute_ops(self) -> list[TFLiteOp]:
        """Ops in execution order, without the ``DEQUANTIZE`` ops that only unpack constant weights."""
        return [op for op in self.ops if not (op.opcode == "DEQUANTIZE" and self.is_constant(op.outputs[0]))]

    def by_name(self, name: str) -> TFLiteTensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"no tensor named {name!r} in {self.path}")

    # -- constants -------------------------------------------------------- #
    def is_constant(self, tensor: int) -> bool:
        """Stored in the file, or a ``DEQUANTIZE`` of something stored in the file."""
        t = self.tensors[tensor]
        if t.data is not None:
            return True
        op = self.producer(tensor)
        return op is not None and op.opcode == "DEQUANTIZE" and self.is_constant(op.inputs[0])

    def constant(self, tensor: int) -> np.ndarray:
        """Float32 (or integer, for index tensors) value of a constant tensor, dequantised."""
        t = self.tensors[tensor]
        if t.data is None:
            op = self.producer(tensor)
            if op is None or op.opcode != "DEQUANTIZE":
                raise ValueError(f"tensor {tensor} ({t.name!r}) of {self.path} is not a constant")
            return self.constant(op.inputs[0]).astype(np.float32)
        data = t.data
        if t.scale is not None and t.scale.size and data.dtype.kind in "iu":
            shape = [1] * data.ndim
            if t.scale.size > 1:
                shape[t.quantized_dimension] = -1
            scale = t.scale.reshape(shape).astype(np.float32)
            zp = (t.zero_point if t.zero_point is not None else np.zeros(1)).reshape(
                shape if t.scale.size > 1 else [1] * data.ndim)
            return (data.astype(np.float32) - zp.astype(np.float32)) * scale
        if data.dtype == np.float16 or data.dtype == np.float64:
            return data.astype(np.float32)
        return data


# --------------------------------------------------------------------------- #
# Readers
# --------------------------------------------------------------------------- #
def _index_vector(tflite: Any, kind: int, table: Any) -> np.ndarray:
    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}.get(kind)
    if cls is None or table is None:
        raise NotImplementedError(f"sparse index vector of type {kind}")
    v = cls()
    v.Init(table.Bytes, table.Pos)
    return v.ValuesAsNumpy().astype(np.int64) if v.ValuesLength() else np.zeros(0, np.int64)


def _densify(tflite: Any, values: np.ndarray, shape: tuple[int, ...], sparsity: Any) -> np.ndarray:
    """TFLite ``SparsityParameters`` -> dense array.

    Supported: identity traversal order, no block map, all dimensions ``DENSE``
    except ``SPARSE_CSR`` ones whose parent index is the row-major index over the
    dimensions before them (the layout of MediaPipe's pruned 1x1 filters).
    """
    order = sparsity.TraversalOrderAsNumpy().tolist() if sparsity.TraversalOrderLength() else list(range(len(shape)))
    if order != list(range(len(shape))) or sparsity.BlockMapLength():
        raise NotImplementedError("block-sparse or reordered TFLite tensors are not supported")
    # Walk the dimensions keeping, for every stored position so far, its multi-index prefix (flattened).
    positions = np.zeros(1, np.int64)  # flat dense index prefix of each "parent" element
    for d in range(sparsity.DimMetadataLength()):
        dm = sparsity.DimMetadata(d)
        if dm.Format() == 0:  # DENSE
            n = int(dm.DenseSize())
            if n != shape[d]:
                raise ValueError(f"dense size {n} != shape {shape}")
            positions = (positions[:, None] * n + np.arange(n)[None, :]).reshape(-1)
        else:  # SPARSE_CSR
            seg = _index_vector(tflite, dm.ArraySegmentsType(), dm.ArraySegments())
            idx = _index_vector(tflite, dm.ArrayIndicesType(), dm.ArrayIndices())
            if seg.size != positions.size + 1:
                raise ValueError("sparse segments do not match the parent dimensions")
            counts = np.diff(seg)
            positions = np.repeat(positions, counts) * shape[d] + idx
    if positions.size != values.size:
        raise ValueError(f"{values.size} stored values for {positions.size} sparse positions")
    dense = np.zeros(int(np.prod(shape)), values.dtype)
    dense[positions] = values.reshape(-1)
    return dense.reshape(shape)


def _extra_options(tflite: Any, name: str, op: Any) -> dict[str, Any]:
    table = op.BuiltinOptions()
    if table is None:
        return {}
    if name == "RESIZE_BILINEAR":
        o = tflite.ResizeBilinearOptions()
        o.Init(table.Bytes, table.Pos)
        return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}
    if name == "DEPTH_TO_SPACE":
        o = tflite.DepthToSpaceOptions()
        o.Init(table.Bytes, table.Pos)
        return {"block_size": int(o.BlockSize())}
    return {}


def _read_with_tflite_package(path: Path) -> TFLiteModel:
    import tflite  # the flatbuffer schema package

    buf = path.read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError(f"{path}: no subgraph")
    sg = model.Subgraphs(0)
    op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    tensors: list[TFLiteTensor] = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        np_type = _TENSOR_TYPES.get(t.Type())
        dtype = np.dtype(np_type) if np_type is not None else np.dtype("V1")
        data = None
        b = model.Buffers(t.Buffer())
        if b is not None and np_type is not None:
            if b.DataLength() > 0:
                raw = b.DataAsNumpy().tobytes()
            elif b.Offset() > 1:  # large models keep buffers after the flatbuffer
                raw = buf[b.Offset(): b.Offset() + b.Size()]
            else:
                raw = b""
            if raw:
                flat = np.frombuffer(raw, dtype=dtype).copy()
                sparsity = t.Sparsity()
                data = _densify(tflite, flat, shape, sparsity) if sparsity is not None else flat.reshape(shape)
        scale = zero_point = None
        qdim = 0
        q = t.Quantization()
        if q is not None and q.ScaleLength():
            scale = q.ScaleAsNumpy().astype(np.float32)
            zero_point = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else None
            qdim = int(q.QuantizedDimension())
        tensors.append(TFLiteTensor(i, t.Name().decode(), shape, dtype, data, scale, zero_point, qdim))

    ops: list[TFLiteOp] = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = op_names.get(code, f"BUILTIN_{code}")
        ins, outs = tuple(int(x) for x in op.InputsAsNumpy()), tuple(int(x) for x in op.OutputsAsNumpy())
        if name == "DENSIFY":  # a sparse constant made dense at load time: we already densified it
            if tensors[ins[0]].data is None:
                raise ValueError(f"{path}: DENSIFY op {i} reads a non-constant tensor")
            tensors[outs[0]].data = tensors[ins[0]].data
            continue
        ops.append(TFLiteOp(i, name, ins, outs, {**_options(tflite, name, op), **_extra_options(tflite, name, op)}))
    return TFLiteModel(path, tensors, ops, tuple(int(x) for x in sg.InputsAsNumpy()),
                       tuple(int(x) for x in sg.OutputsAsNumpy()), reader="tflite")


_ACTIVATIONS = {0: None, 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def _options(tflite: Any, name: str, op: Any) -> dict[str, Any]:
    table = op.BuiltinOptions()
    if table is None:
        return {}
    padding = {0: "SAME", 1: "VALID"}
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = tflite.Conv2DOptions() if name == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        o.Init(table.Bytes, table.Pos)
        out: dict[str, Any] = {
            "padding": padding[o.Padding()],
            "stride": (int(o.StrideH()), int(o.StrideW())),
            "dilation": (int(o.DilationHFactor()), int(o.DilationWFactor())),
            "activation": _ACTIVATIONS.get(o.FusedActivationFunction()),
        }
        if name == "DEPTHWISE_CONV_2D":
            out["depth_multiplier"] = int(o.DepthMultiplier())
        return out
    if name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        o = tflite.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "padding": padding[o.Padding()],
            "stride": (int(o.StrideH()), int(o.StrideW())),
            "filter": (int(o.FilterHeight()), int(o.FilterWidth())),
            "activation": _ACTIVATIONS.get(o.FusedActivationFunction()),
        }
    if name == "ADD":
        o = tflite.AddOptions()
        o.Init(table.Bytes, table.Pos)
        return {"activation": _ACTIVATIONS.get(o.FusedActivationFunction())}
    if name == "CONCATENATION":
        o = tflite.ConcatenationOptions()
        o.Init(table.Bytes, table.Pos)
        return {"axis": int(o.Axis()), "activation": _ACTIVATIONS.get(o.FusedActivationFunction())}
    if name == "RESHAPE":
        o = tflite.ReshapeOptions()
        o.Init(table.Bytes, table.Pos)
        return {"new_shape": tuple(int(s) for s in o.NewShapeAsNumpy())} if o.NewShapeLength() else {}
    return {}


def _read_with_interpreter(path: Path) -> TFLiteModel:
    """Fallback reader through the reference runtime (no builtin options; they are inferred)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    details = it.get_tensor_details()
    op_details = it._get_ops_details()  # noqa: SLF001 - the only way to get the op list from the runtime
    produced = {int(t) for o in op_details for t in o["outputs"]}
    graph_inputs = tuple(int(d["index"]) for d in it.get_input_details())
    tensors: list[TFLiteTensor] = []
    for d in details:
        i = int(d["index"])
        data = None
        if i not in produced and i not in graph_inputs:
            try:
                data = np.array(it.get_tensor(i))
            except ValueError:
                data = None
        q = d.get("quantization_parameters", {})
        scale = np.asarray(q.get("scales", []), np.float32)
        tensors.append(TFLiteTensor(i, d["name"], tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]), data,
                                    scale if scale.size else None,
                                    np.asarray(q.get("zero_points", []), np.int64) if scale.size else None,
                                    int(q.get("quantized_dimension", 0))))
    ops: list[TFLiteOp] = []
    for o in op_details:
        ins = tuple(int(x) for x in o["inputs"])
        outs = tuple(int(x) for x in o["outputs"])
        ops.append(TFLiteOp(int(o["index"]), o["op_name"], ins, outs, _infer_options(o["op_name"], ins, outs, tensors)))
    return TFLiteModel(path, tensors, ops, graph_inputs,
                       tuple(int(d["index"]) for d in it.get_output_details()), reader="ai_edge_litert")


def _infer_options(name: str, ins: tuple[int, ...], outs: tuple[int, ...], tensors: list[TFLiteTensor]) -> dict[str, Any]:
    if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return {"activation": None} if name in ("ADD", "CONCATENATION") else {}
    xi, yo = tensors[ins[0]].shape, tensors[outs[0]].shape  # NHWC
    stride = (max(xi[1] // yo[1], 1), max(xi[2] // yo[2], 1))
    kernel: tuple[int, ...]
    if name.endswith("POOL_2D"):
        kernel = stride
    else:
        kernel = tensors[ins[1]].shape[1:3]
    same = all(math.ceil(xi[a] / stride[a - 1]) == yo[a] for a in (1, 2))
    # SAME with zero padding is VALID; report it as VALID (as converters do for 1x1 convs).
    if same and all(same_padding(xi[a], kernel[a - 1], stride[a - 1]) == (0, 0) for a in (1, 2)):
        same = False
    out: dict[str, Any] = {"padding": "SAME" if same else "VALID", "stride": stride, "activation": None}
    if name.endswith("POOL_2D"):
        out["filter"] = tuple(kernel)
    else:
        out["dilation"] = (1, 1)
    return out


def read_tflite(path: str | Path, reader: str = "auto") -> TFLiteModel:
    """Parse a ``.tflite`` file.

    Args:
        path: the model file.
        reader: ``"tflite"`` (flatbuffer schema package), ``"interpreter"``
            (``ai_edge_litert``; builtin options inferred from shapes) or
            ``"auto"`` (the first of those that is importable).

    Raises:
        FileNotFoundError: no such file.
        ImportError: neither reader is installed (the message names both packages).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no TFLite model at {path}")
    if reader in ("auto", "tflite"):
        try:
            import tflite  # noqa: F401
        except ImportError:
            if reader == "tflite":
                raise
        else:
            return _read_with_tflite_package(path)
    if reader in ("auto", "interpreter"):
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "reading a .tflite model needs the 'tflite' package (pip install tflite==2.18.0) "
                "or the reference runtime (pip install ai-edge-litert==2.3.0)"
            ) from exc
        return _read_with_interpreter(path)
    raise ValueError(f"reader must be 'auto', 'tflite' or 'interpreter', not {reader!r}")


# --------------------------------------------------------------------------- #
# Layouts and padding
# --------------------------------------------------------------------------- #
def conv2d_weight_to_torch(w: np.ndarray) -> np.ndarray:
    """TFLite ``CONV_2D`` filter OHWI -> PyTorch OIHW."""
    if w.ndim != 4:
        raise ValueError(f"CONV_2D filter must be 4-D OHWI, got shape {w.shape}")
    return np.ascontiguousarray(w.transpose(0, 3, 1, 2))


def depthwise_weight_to_torch(w: np.ndarray) -> np.ndarray:
    """TFLite ``DEPTHWISE_CONV_2D`` filter 1HWO -> PyTorch O1HW (use ``groups=O``)."""
    if w.ndim != 4 or w.shape[0] != 1:
        raise ValueError(f"DEPTHWISE_CONV_2D filter must be 4-D 1HWO, got shape {w.shape}")
    return np.ascontiguousarray(w.transpose(3, 0, 1, 2))


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite/TensorFlow ``SAME`` padding ``(before, after)`` for one spatial axis."""
    if size < 1 or kernel < 1 or stride < 1 or dilation < 1:
        raise ValueError("size, kernel, stride and dilation must be positive")
    eff = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def pad_same(x: Any, kernel: Sequence[int] | int, stride: Sequence[int] | int,
             dilation: Sequence[int] | int = 1, value: float = 0.0) -> Any:
    """Pad an NCHW tensor so that a VALID conv/pool afterwards equals TFLite ``SAME``."""
    import torch.nn.functional as F

    k = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    d = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    top, bottom = same_padding(int(x.shape[-2]), k[0], s[0], d[0])
    left, right = same_padding(int(x.shape[-1]), k[1], s[1], d[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)
