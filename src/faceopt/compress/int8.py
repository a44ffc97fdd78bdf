"""Real INT8 deployment on a CPU: onnxruntime static/dynamic quantisation and torch.ao (x86).

The thesis (Table 2) compares a network in FP32 with its INT8 form: accuracy, latency and
size. This module does the same two ways and measures everything in one run:

* **onnxruntime static quantisation** (:func:`quantize_onnx_static`): a calibration reader
  feeds a few batches through the FP32 graph, activation ranges are collected
  (MinMax, Entropy or Percentile) and the graph is rewritten either in **QDQ** format
  (``QuantizeLinear``/``DequantizeLinear`` pairs around float ops, which onnxruntime fuses
  into integer kernels when it can) or in **QOperator** format (``QLinearConv`` etc.).
* **onnxruntime dynamic quantisation** (:func:`quantize_onnx_dynamic`): weights are INT8,
  activation ranges are computed at run time. For convolutions this gives ``ConvInteger``
  nodes, whose CPU kernel is a plain im2col + integer GEMM followed by float rescaling;
  it is usually *slower* than the tuned FP32 convolution, so dynamic quantisation is the
  wrong tool for a CNN (it is meant for LSTM/Transformer ``MatMul``).
* **torch.ao FX graph mode** (:func:`quantize_torch_x86`): ``prepare_fx`` / calibrate /
  ``convert_fx`` with the ``x86`` qconfig mapping (fbgemm/oneDNN kernels).

What was measured (AMD EPYC, AVX2+FMA, no VNNI; onnxruntime 1.32, torch 2.14; batch 1):

* ReLU student (``mobilefacenet_relu512``, trained briefly on upscaled digits): QDQ U8S8
  with ``reduce_range`` runs 2.0 ms against 3.0 ms FP32 at 2 threads (1.45-1.5x, 1.5x at
  1 thread and at batch 8), cosine 0.9995 (min 0.998), same accuracy, 4.5 -> 1.4 MiB.
  torch.ao x86 is 2.3x faster than *eager* FP32 PyTorch (cosine 0.999), but eager FP32
  (13 ms) is so much slower than onnxruntime FP32 that the INT8 torch model (5.7 ms)
  still loses to onnxruntime FP32.
* PReLU MobileFaceNet: no INT8 recipe is faster than FP32 (1.0-1.07x), because
  onnxruntime's ``PRelu`` kernel alone takes ~2/3 of the FP32 time and has no INT8 form.

What does not get faster, and why:

* every tensor that crosses from an integer op into an op without an integer kernel pays
  a ``DequantizeLinear`` and a ``QuantizeLinear`` (a full pass over the activation in
  memory). onnxruntime has no quantised ``PRelu`` kernel, so in a PReLU network *every*
  convolution is followed by DQ -> PRelu (FP32) -> Q. Those element-wise passes cost more
  than the INT8 convolutions save: the INT8 PReLU MobileFaceNet is slower than FP32.
  ``Conv + Relu`` on the other hand folds into one ``QLinearConv`` (the ReLU becomes the
  clamp of the requantisation), so a ReLU network keeps its activations in 8 bits from
  one convolution to the next;
* depthwise convolutions do ~9 MACs per output element; they are memory bound, so 8-bit
  arithmetic gains little there (the smaller activations still help);
* without AVX-VNNI (AVX2 only, as on this EPYC) an ``u8 x s8`` dot product is
  ``vpmaddubsw`` + ``vpmaddwd`` – about twice the FP32 FMA throughput, not four times,
  and its 16-bit intermediate saturates: the plain U8S8 recipe is fast but drops the
  trained student's cosine to 0.95 (min 0.80). ``reduce_range`` (7-bit weights) removes
  the saturation at the same speed; U8U8 is accurate but no faster than FP32, and S8S8
  activations are slower than FP32 on x86;
* grouped (not depthwise) convolutions, e.g. the 128-channel 64-group conv of
  ``MobileFaceNet(width=2)``, hit a slow INT8 path: that model gets 0.6x;
* dynamic quantisation (``ConvInteger``) is 2-3x *slower* than FP32.

Random calibration is a stand-in: with random weights and no face data, calibration
batches are Gaussian images, which are in-distribution for a model whose batch norms
were settled on Gaussian images (:func:`faceopt.models.profile.settle_batchnorm`). With a
trained model, calibrate on real aligned faces (:class:`ArrayCalibrationReader`).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from onnxruntime.quantization import CalibrationDataReader
from torch import nn

from faceopt.io import move_into_place
from faceopt.system.cost import LatencyStats, ort_session, torch_threads
from faceopt.system.onnx_export import export_onnx

INPUT_SHAPE = (1, 3, 112, 112)
MIB = 2**20

__all__ = [
    "ArrayCalibrationReader",
    "DEFAULT_CONFIGS",
    "Int8Config",
    "RandomCalibrationReader",
    "PReLUDecomposed",
    "compare_int8",
    "config_dict",
    "decompose_prelu",
    "embedding_cosine",
    "quantize_onnx_dynamic",
    "quantize_onnx_static",
    "quantize_torch_x86",
]


# ----------------------------------------------------------------------------- calibration
class ArrayCalibrationReader(CalibrationDataReader):
    """Feeds ``images`` (N, C, H, W float32) to onnxruntime's calibrator in batches."""

    def __init__(self, images: np.ndarray | torch.Tensor, *, batch_size: int = 8,
                 input_name: str = "input") -> None:
        arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        if arr.ndim != 4 or len(arr) == 0:
            raise ValueError(f"calibration images must be a non-empty (N, C, H, W) array, got {arr.shape}")
        self.images = np.ascontiguousarray(arr, dtype=np.float32)
        self.batch_size = int(batch_size)
        self.input_name = input_name
        self._pos = 0

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos >= len(self.images):
            return None
        batch = self.images[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._pos = 0


class RandomCalibrationReader(ArrayCalibrationReader):
    """Gaussian calibration images: a stand-in for real faces when there is no data.

    Only meaningful for a random-weight model whose batch norms were settled on the same
    kind of input (``settle_batchnorm``); the activation ranges then match those seen in
    :func:`compare_int8`'s (also Gaussian) evaluation inputs.
    """

    def __init__(self, *, batches: int = 4, batch_size: int = 8,
                 input_shape: tuple[int, int, int] = (3, 112, 112), seed: int = 0,
                 input_name: str = "input") -> None:
        rng = np.random.default_rng(seed)
        images = rng.standard_normal((batches * batch_size, *input_shape)).astype(np.float32)
        super().__init__(images, batch_size=batch_size, input_name=input_name)


# ----------------------------------------------------------------------------- onnxruntime
def _atomic_target(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _nodes_of_types(model_path: Path, op_types: Iterable[str]) -> list[str]:
    """Names of nodes whose type is in ``op_types``; ``"DepthwiseConv"`` means Conv with group > 1."""
    import onnx

    wanted = set(op_types)
    if not wanted:
        return []
    graph = onnx.load(str(model_path), load_external_data=False).graph
    names = []
    for node in graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if node.op_type in wanted or ("DepthwiseConv" in wanted and node.op_type == "Conv" and group > 1):
            names.append(node.name)
    return names


def _preprocess(src: Path, dst: Path) -> Path:
    """onnxruntime's recommended pre-processing: symbolic shape inference + graph optimisation."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=False)
    return dst


def quantize_onnx_static(
    fp32_path: Path,
    int8_path: Path,
    calib: CalibrationDataReader,
    *,
    fmt: str = "QDQ",
    per_channel: bool = True,
    activation_type: str = "uint8",
    weight_type: str = "int8",
    calibrate_method: str = "MinMax",
    exclude_op_types: Sequence[str] = (),
    reduce_range: bool = False,
    preprocess: bool = True,
    extra_options: dict[str, Any] | None = None,
) -> Path:
    """Static INT8 quantisation of an ONNX file with onnxruntime; returns ``int8_path``.

    ``fmt`` is ``"QDQ"`` or ``"QOperator"``; ``activation_type``/``weight_type`` are
    ``"uint8"`` or ``"int8"`` (U8S8 is the usual x86 choice); ``calibrate_method`` is
    ``"MinMax"``, ``"Entropy"`` or ``"Percentile"``. ``exclude_op_types`` lists ONNX op
    types left in FP32 (``"DepthwiseConv"`` selects grouped convolutions). The result is
    written to a temporary file and renamed, so a failure leaves no file at ``int8_path``.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    formats = {"QDQ": QuantFormat.QDQ, "QOperator": QuantFormat.QOperator}
    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    methods = {"MinMax": CalibrationMethod.MinMax, "Entropy": CalibrationMethod.Entropy,
               "Percentile": CalibrationMethod.Percentile}
    for value, allowed, what in ((fmt, formats, "fmt"), (activation_type, types, "activation_type"),
                                 (weight_type, types, "weight_type"),
                                 (calibrate_method, methods, "calibrate_method")):
        if value not in allowed:
            raise ValueError(f"{what} must be one of {sorted(allowed)}, got {value!r}")
    with _quantised_output(fp32_path, int8_path, preprocess) as (src, out):
        calib.rewind()
        with _quiet_root_logger():
            quantize_static(
                str(src), str(out), calib,
                quant_format=formats[fmt],
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=types[activation_type],
                weight_type=types[weight_type],
                calibrate_method=methods[calibrate_method],
                nodes_to_exclude=_nodes_of_types(src, exclude_op_types),
                extra_options=dict(extra_options or {}),
            )
    return Path(int8_path)


def quantize_onnx_dynamic(fp32_path: Path, int8_path: Path, *, per_channel: bool = False,
                          weight_type: str = "uint8", preprocess: bool = True,
                          op_types: Sequence[str] | None = None) -> Path:
    """Dynamic quantisation (INT8 weights, activation scale found at run time); returns the path.

    Convolutions become ``ConvInteger`` + float rescale, which is *not* faster than the
    FP32 convolution on the CPU – kept to show exactly that. ``op_types`` defaults to all
    ops onnxruntime can quantise dynamically (Conv, MatMul, Gemm, ...). Atomic like
    :func:`quantize_onnx_static`.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    if weight_type not in types:
        raise ValueError(f"weight_type must be one of {sorted(types)}, got {weight_type!r}")
    with _quantised_output(fp32_path, int8_path, preprocess) as (src, out), _quiet_root_logger():
        quantize_dynamic(str(src), str(out), per_channel=per_channel, weight_type=types[weight_type],
                         op_types_to_quantize=list(op_types) if op_types else None)
    return Path(int8_path)


@contextlib.contextmanager
def _quantised_output(fp32_path: Path, int8_path: Path, preprocess: bool):
    """Yield (source model, temporary output) inside a scratch folder beside ``int8_path``;
    the output replaces ``int8_path`` only if the quantiser finished, so a failure leaves nothing."""
    fp32_path, int8_path = Path(fp32_path), _atomic_target(int8_path)
    if not fp32_path.is_file():
        raise FileNotFoundError(fp32_path)
    with tempfile.TemporaryDirectory(dir=int8_path.parent, prefix=".int8-") as tmp:
        src = _preprocess(fp32_path, Path(tmp) / "pre.onnx") if preprocess else fp32_path
        out = Path(tmp) / "int8.onnx"
        yield src, out
        move_into_place(out, int8_path)


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's quantiser logs benign notes on the root logger (e.g. per-channel axis of a
    BatchNorm1d weight it skips); keep them out of notebook pages."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


# ----------------------------------------------------------------------------- torch.ao
def quantize_torch_x86(model: nn.Module, calib_batches: Iterable[torch.Tensor], *,
                       example_input: torch.Tensor) -> nn.Module:
    """Post-training static INT8 with torch.ao FX graph mode and the ``x86`` backend.

    ``get_default_qconfig_mapping("x86")`` -> ``prepare_fx`` -> run ``calib_batches`` ->
    ``convert_fx``. The input model is not modified. Conv+BN+ReLU are fused into one
    quantised conv. ``nn.PReLU`` is converted to ``torch.ao.nn.quantized.PReLU``, which is
    inaccurate here: a two-layer Conv-PReLU-Conv net keeps a cosine of only ~0.87 to FP32
    (0.9996 with ReLU) and the PReLU MobileFaceNet's embeddings become unrelated to FP32
    (cosine ~0.06) – a failure mode, not a recipe.
    ``torch.ao.quantization`` is deprecated in favour of the separate ``torchao`` package;
    its warnings are silenced here.
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    m = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(m, get_default_qconfig_mapping("x86"), example_inputs=(example_input,))
        with torch.inference_mode():
            for x in calib_batches:
                prepared(x)
        return convert_fx(prepared).eval()


# ----------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class Int8Config:
    """One INT8 variant for :func:`compare_int8`.

    ``backend`` is ``"ort_static"``, ``"ort_dynamic"`` or ``"torch_x86"``; the other fields
    are the arguments of :func:`quantize_onnx_static` (ignored where they do not apply).
    """

    name: str
    backend: str = "ort_static"
    fmt: str = "QDQ"
    per_channel: bool = True
    activation_type: str = "uint8"
    weight_type: str = "int8"
    calibrate_method: str = "MinMax"
    exclude_op_types: tuple[str, ...] = ()
    reduce_range: bool = False
    preprocess: bool = True
    extra_options: tuple[tuple[str, Any], ...] = ()
    note: str = ""


DEFAULT_CONFIGS: tuple[Int8Config, ...] = (
    Int8Config("ort dynamic (ConvInteger)", backend="ort_dynamic", per_channel=False,
               weight_type="uint8", note="weights only; ConvInteger is not a fast kernel: slower"),
    Int8Config("ort static QDQ U8S8 (plain)",
               note="default recipe; on AVX2 without VNNI the u8*s8 pairs saturate (low cosine)"),
    Int8Config("ort static QDQ U8U8", weight_type="uint8",
               note="no saturation, but the U8U8 kernel is no faster than FP32"),
    Int8Config("ort static QDQ U8S8 reduce_range", reduce_range=True,
               note="best onnxruntime recipe: 7-bit weights avoid the saturation, keep the speed"),
    Int8Config("ort static QOperator U8S8 reduce_range", fmt="QOperator", reduce_range=True),
    Int8Config("torch.ao FX x86", backend="torch_x86",
               note="fbgemm kernels; compared with eager FP32 PyTorch"),
)
"""The comparison of the chapter: the plain (fast but inaccurate on AVX2) recipe, the
slow ones (dynamic, U8U8), the best onnxruntime recipe (U8S8 + ``reduce_range``) and torch.ao."""


class PReLUDecomposed(nn.Module):
    """``relu(x) - a * relu(-x)``: PReLU written with ops onnxruntime runs fast.

    onnxruntime's per-channel ``PRelu`` CPU kernel is slow: in the PReLU MobileFaceNet it
    takes about two thirds of the FP32 time, more than all convolutions together. The same
    function written as Relu/Neg/Mul/Sub is exact and roughly halves the FP32 latency.
    It does not rescue INT8: each of these element-wise ops still needs Q/DQ around it.
    Per-channel slopes assume NCHW input; the shape is fixed at construction so that the
    module traces in torch.fx.
    """

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        self.weight = nn.Parameter(prelu.weight.detach().clone())
        self.shape: tuple[int, ...] = (1, -1, 1, 1) if prelu.num_parameters > 1 else (1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) - self.weight.view(self.shape) * torch.relu(-x)


def decompose_prelu(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.PReLU`` replaced by :class:`PReLUDecomposed`."""
    model = copy.deepcopy(model)

    def swap(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, nn.PReLU):
                setattr(module, name, PReLUDecomposed(child))
            else:
                swap(child)

    swap(model)
    return model


def embedding_cosine(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> tuple[float, float]:
    """Row-wise cosine similarity of two embedding batches: (mean, min)."""
    a = np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(cos.mean()), float(cos.min())


def _paired_latency(fa: Callable[[], object], fb: Callable[[], object], *,
                    repeats: int, warmup: int, rounds: int = 2) -> tuple[float, float, float, float, float]:
    """Median and minimum ms of ``fa`` and ``fb``, timed in blocks A, B, B, A, ... (``rounds`` each), and
    the standard error of the log ratio of the medians.

    Blocks rather than call-by-call alternation: an onnxruntime session's worker threads
    spin for a while after each run, and two sessions alternating call by call would fight
    over the cores. Alternating whole blocks still spreads slow drift on a shared machine
    over both sides. The minimum is reported as well: on a machine shared with other
    jobs it is the more repeatable figure (the median then includes other jobs' time).
    """
    ta: list[float] = []
    tb: list[float] = []
    per = max(1, -(-repeats // rounds))
    for r in range(rounds):
        order = ((fa, ta), (fb, tb)) if r % 2 == 0 else ((fb, tb), (fa, ta))
        for fn, out in order:
            for _ in range(warmup):
                fn()
            for _ in range(per):
                t0 = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ta)), float(np.median(tb)), float(min(ta)), float(min(tb)), _log_ratio_stderr(ta, tb)


def _log_ratio_stderr(ta: Sequence[float], tb: Sequence[float]) -> float:
    """Standard error of log(median(ta) / median(tb)) (see :attr:`faceopt.system.cost.LatencyStats.log_stderr`)."""

    def stats(t: Sequence[float]) -> LatencyStats:
        q25, q50, q75 = np.percentile(t, [25, 50, 75])
        return LatencyStats(float(q50), float(q25), float(q75), len(t))

    return float(np.hypot(stats(ta).log_stderr, stats(tb).log_stderr))


def _ort_runner(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    sess = ort_session(path, threads=threads)
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def _torch_runner(model: nn.Module, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        with torch_threads(threads), torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    return run


def _embed(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([run(x[i:i + batch]) for i in range(0, len(x), batch)])


def _accuracy(emb: np.ndarray, labels: np.ndarray | None, head: nn.Module | None) -> float | None:
    if labels is None:
        return None
    logits = emb
    if head is not None:
        with torch.inference_mode():
            logits = head.eval()(torch.from_numpy(emb.astype(np.float32))).numpy()
    return float((logits.argmax(1) == np.asarray(labels)).mean())


def _torch_size_mb(model: nn.Module, path: Path) -> float:
    torch.save(model.state_dict(), path)
    return path.stat().st_size / MIB


def compare_int8(
    model: nn.Module,
    *,
    configs: Sequence[Int8Config] = DEFAULT_CONFIGS,
    calib_inputs: np.ndarray | None = None,
    eval_inputs: np.ndarray,
    threads: int | Sequence[int] = 2,
    repeats: int = 30,
    warmup: int = 5,
    workdir: Path | str,
    batch_sizes: Sequence[int] = (1,),
    labels: np.ndarray | None = None,
    head: nn.Module | None = None,
) -> list[dict[str, Any]]:
    """FP32 against each INT8 config in one run; one row per (config, thread count).

    Each row holds ``fp32_ms``/``int8_ms``/``speedup`` (medians) and
    ``fp32_min_ms``/``int8_min_ms``/``speedup_min`` (minima) at batch 1, and ``*_b{n}`` for
    the other ``batch_sizes`` (FP32 and INT8 are timed in alternating blocks), file sizes
    ``fp32_mb``/``int8_mb`` (MiB on disk: the ONNX file, or the saved state dict for
    torch), cosine similarity of INT8 to FP32 embeddings over ``eval_inputs``
    (``cos_mean``, ``cos_min``), accuracy when ``labels`` are given (``head`` maps
    embeddings to logits; without it the model's output is taken as logits), the
    quantisation time and an ``error`` string when a config failed (the row is kept: a
    failure mode is a result). ONNX configs are compared with the FP32 ONNX model in
    onnxruntime, torch configs with the FP32 model in eager PyTorch. ``calib_inputs=None``
    calibrates on Gaussian images (:class:`RandomCalibrationReader`).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    thread_counts = [threads] if isinstance(threads, int) else list(threads)
    model = model.eval()
    eval_inputs = np.ascontiguousarray(eval_inputs, dtype=np.float32)
    shape = tuple(eval_inputs.shape[1:])
    calib = (np.ascontiguousarray(calib_inputs, dtype=np.float32) if calib_inputs is not None
             else RandomCalibrationReader(input_shape=shape).images)
    rng = np.random.default_rng(1)
    probes = {b: rng.standard_normal((b, *shape)).astype(np.float32) for b in batch_sizes}

    fp32_onnx = export_onnx(model, workdir / "fp32.onnx", (1, *shape))
    fp32_torch = _torch_runner(model, thread_counts[0])
    ref = {"onnx": _embed(_ort_runner(fp32_onnx, thread_counts[0]), eval_inputs),
           "torch": _embed(fp32_torch, eval_inputs)}
    sizes = {"onnx": fp32_onnx.stat().st_size / MIB, "torch": _torch_size_mb(model, workdir / "fp32.pt")}

    rows: list[dict[str, Any]] = []
    for cfg in configs:
        base = {"config": cfg.name, "backend": cfg.backend}
        kind = "torch" if cfg.backend == "torch_x86" else "onnx"
        t0 = time.perf_counter()
        try:
            slug = "".join(c if c.isalnum() else "_" for c in cfg.name)
            if cfg.backend == "torch_x86":
                qmodel = quantize_torch_x86(model, [torch.from_numpy(calib[i:i + 8]) for i in range(0, len(calib), 8)],
                                            example_input=torch.from_numpy(calib[:1]))
                int8_mb = _torch_size_mb(qmodel, workdir / f"{slug}.pt")
                make = lambda n: _torch_runner(qmodel, n)  # noqa: E731
                make_ref = lambda n: _torch_runner(model, n)  # noqa: E731
            else:
                out = workdir / f"{slug}.onnx"
                if cfg.backend == "ort_dynamic":
                    quantize_onnx_dynamic(fp32_onnx, out, per_channel=cfg.per_channel,
                                          weight_type=cfg.weight_type, preprocess=cfg.preprocess)
                elif cfg.backend == "ort_static":
                    quantize_onnx_static(
                        fp32_onnx, out, ArrayCalibrationReader(calib), fmt=cfg.fmt,
                        per_channel=cfg.per_channel, activation_type=cfg.activation_type,
                        weight_type=cfg.weight_type, calibrate_method=cfg.calibrate_method,
                        exclude_op_types=cfg.exclude_op_types, reduce_range=cfg.reduce_range,
                        preprocess=cfg.preprocess, extra_options=dict(cfg.extra_options))
                else:
                    raise ValueError(f"unknown backend {cfg.backend!r}")
                int8_mb = out.stat().st_size / MIB
                make = partial(_ort_runner, out)
                make_ref = lambda n: _ort_runner(fp32_onnx, n)  # noqa: E731
            quant_s = time.perf_counter() - t0
            emb = _embed(make(thread_counts[0]), eval_inputs)
        except Exception as exc:  # a failure mode is a documented result
            rows.append({**base, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        cos_mean, cos_min = embedding_cosine(ref[kind], emb)
        common = {"fp32_mb": sizes[kind], "int8_mb": int8_mb, "cos_mean": cos_mean, "cos_min": cos_min,
                  "acc_fp32": _accuracy(ref[kind], labels, head), "acc_int8": _accuracy(emb, labels, head),
                  "quant_s": quant_s, "error": None}
        for n in thread_counts:
            fa, fb = make_ref(n), make(n)
            row = {**base, "threads": n}
            for b, x in probes.items():
                suffix = "" if b == 1 else f"_b{b}"
                a_ms, b_ms, a_min, b_min, log_se = _paired_latency(lambda: fa(x), lambda: fb(x),
                                                                   repeats=repeats, warmup=warmup)
                row.update({f"fp32_ms{suffix}": a_ms, f"int8_ms{suffix}": b_ms, f"speedup{suffix}": a_ms / b_ms,
                            f"speedup_log_se{suffix}": log_se,
                            f"fp32_min_ms{suffix}": a_min, f"int8_min_ms{suffix}": b_min,
                            f"speedup_min{suffix}": a_min / b_min})
            rows.append({**row, **common})
    return rows


def config_dict(cfg: Int8Config) -> dict[str, Any]:
    """A JSON-friendly view of a config (for results files)."""
    d = asdict(cfg)
    d["extra_options"] = dict(cfg.extra_options)
    return d
