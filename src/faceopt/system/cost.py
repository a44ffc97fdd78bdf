"""What a network costs on this machine: parameters, MACs, bytes, latency, share of peak.

Latency is always the median of repeated batch-1 runs after a warm-up, measured
in PyTorch eager mode and in onnxruntime at a fixed number of threads. The peak
FLOP rate of the CPU is worked out from its vector width, FMA units, clock and
cores, and checked against a large single-precision matrix product.
"""
from __future__ import annotations

import math
import os
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from faceopt.models import get_model
from faceopt.models.profile import count_macs, count_parameters, settle_batchnorm, size_on_disk_mb
from faceopt.progress import progress as progress_bar
from faceopt.system.onnx_export import export_onnx

INPUT_SHAPE = (1, 3, 112, 112)


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per call: median and interquartile range of ``n`` timed calls."""

    median_ms: float
    p25_ms: float
    p75_ms: float
    n: int

    @property
    def log_stderr(self) -> float:
        """Standard error of log(median): sigma read off the interquartile range (IQR / 1.349, as for a
        normal), the median's standard error 1.2533 sigma / sqrt(n), relative to the median."""
        sigma = (self.p75_ms - self.p25_ms) / 1.349
        return 1.2533 * sigma / math.sqrt(self.n) / self.median_ms


def time_callable(fn: Callable[[], object], *, repeats: int, warmup: int) -> LatencyStats:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed with perf_counter."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    q = np.percentile(samples, [25, 50, 75])
    return LatencyStats(float(q[1]), float(q[0]), float(q[2]), repeats)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Temporarily run torch's intra-op pool with ``n`` threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def torch_latency(model: torch.nn.Module, *, threads: int, repeats: int, warmup: int,
                  input_shape: tuple[int, ...] = INPUT_SHAPE) -> LatencyStats:
    """Eager-mode latency of ``model`` in inference mode on the CPU."""
    model = model.eval()
    x = torch.randn(*input_shape)
    with torch_threads(threads), torch.inference_mode():
        return time_callable(lambda: model(x), repeats=repeats, warmup=warmup)


def ort_session(onnx_path: Path, *, threads: int):
    """An onnxruntime CPU session with ``threads`` intra-op threads and all graph optimisations."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])


def ort_latency(onnx_path: Path, *, threads: int, repeats: int, warmup: int,
                input_shape: tuple[int, ...] = INPUT_SHAPE) -> LatencyStats:
    """onnxruntime latency of an exported model."""
    sess = ort_session(onnx_path, threads=threads)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
    return time_callable(lambda: sess.run(None, {name: x}), repeats=repeats, warmup=warmup)


# ----------------------------------------------------------------------------- peak FLOP rate
@dataclass(frozen=True)
class CpuPeak:
    """Theoretical single-precision peak: cores x clock x SIMD lanes x 2 (FMA) x FMA units."""

    model: str
    cores: int
    ghz: float
    simd: str
    fp32_lanes: int
    fma_units: int

    @property
    def flops_per_cycle_per_core(self) -> int:
        return self.fp32_lanes * 2 * self.fma_units

    def gflops(self, threads: int | None = None) -> float:
        cores = min(threads or self.cores, self.cores)
        return cores * self.ghz * self.flops_per_cycle_per_core


def cpu_peak(fma_units: int = 2, cpuinfo: str | None = None) -> CpuPeak:
    """Read the CPU model, clock and vector extensions from /proc/cpuinfo.

    ``fma_units`` (FMA pipes per core) cannot be read from the OS; 2 holds for AMD Zen
    and Intel client/server cores since Haswell (some AVX-512 parts have 1 on 512-bit).
    The clock is the base clock in the model name when given, else the current MHz.
    """
    text = cpuinfo if cpuinfo is not None else _read_cpuinfo()
    model = _field(text, "model name") or "unknown CPU"
    flags = set((_field(text, "flags") or "").split())
    m = re.search(r"@\s*([\d.]+)\s*GHz", model)
    ghz = float(m.group(1)) if m else float(_field(text, "cpu MHz") or 0.0) / 1e3
    if "avx512f" in flags:
        simd, lanes = "AVX-512", 16
    elif "avx2" in flags or "avx" in flags:
        simd, lanes = ("AVX2" if "avx2" in flags else "AVX"), 8
    elif "sse" in flags or "sse2" in flags:
        simd, lanes = "SSE", 4
    else:
        simd, lanes = "scalar", 1
    if "fma" not in flags and lanes > 1:
        fma_units = 1  # no fused multiply-add: a mul and an add pipe give the same 2 FLOPs per lane
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return CpuPeak(model, cores, ghz, simd, lanes, fma_units)


def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _field(text: str, key: str) -> str | None:
    for line in text.splitlines():
        if line.split(":", 1)[0].strip() == key:
            return line.split(":", 1)[1].strip()
    return None


def attainable_peak_gflops(peak: CpuPeak, threads: int, gemm_gflops: float) -> float:
    """The peak to divide by: the theoretical peak at the reported clock, or the matrix-product rate if higher.

    Virtual machines report the base clock; under load the cores boost above it, and a
    matrix product that beats the base-clock peak proves it. Since a product cannot
    exceed the true peak, the larger of the two numbers is the tighter lower bound.
    """
    return max(peak.gflops(threads), gemm_gflops)


def matmul_gflops(*, threads: int, n: int = 2048, repeats: int = 10) -> float:
    """Best achieved GFLOP/s of an n x n float32 matrix product (2 n^3 FLOPs) in torch.

    The fastest of ``repeats`` runs, not the median: this number stands for what the
    hardware can do at best, so interruptions by other processes should not lower it.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch_threads(threads):
        for _ in range(2):
            a @ b
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def runtime_label(key: str) -> str:
    """'ort_2t' -> 'onnxruntime, 2 threads'."""
    runtime, threads = key.rsplit("_", 1)
    n = int(threads.rstrip("t"))
    name = {"torch": "PyTorch eager", "ort": "onnxruntime"}.get(runtime, runtime)
    return f"{name}, {n} thread{'s' if n > 1 else ''}"


def key_threads(key: str) -> int:
    """'ort_2t' -> 2."""
    return int(key.rsplit("_", 1)[1].rstrip("t"))


# ----------------------------------------------------------------------------- the cost table
@dataclass(frozen=True)
class CostPreset:
    """What the cost chapter measures at one scale."""

    models: tuple[str, ...]
    timed: tuple[str, ...]
    repeats: int
    warmup: int
    threads: tuple[int, ...] = (1, 2)
    matmul_n: int = 2048


ZOO_ORDER = ("iresnet100", "iresnet50", "iresnet18", "mobiface_x3_swish_se", "mobiface",
             "mobilefacenet_relu512", "mobilefacenet", "mobilenetv2")

PRESETS: dict[str, CostPreset] = {
    "smoke": CostPreset(models=ZOO_ORDER, timed=ZOO_ORDER, repeats=3, warmup=1),
    "full": CostPreset(models=ZOO_ORDER, timed=ZOO_ORDER, repeats=30, warmup=5),
}


@dataclass
class ModelCost:
    """One row of the cost table; latencies are medians in ms at batch 1 (empty if not timed)."""

    name: str
    params: int
    macs: int
    size_mb: float
    onnx_mb: float = float("nan")
    latency: dict[str, LatencyStats] = field(default_factory=dict)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def as_row(self) -> dict:
        row = {"model": self.name, "params_M": self.params / 1e6, "GMACs": self.gmacs,
               "size_MB": self.size_mb, "onnx_MB": self.onnx_mb}
        row.update({f"{k}_ms": v.median_ms for k, v in self.latency.items()})
        return row


def static_cost(name: str, **options) -> tuple[ModelCost, torch.nn.Module]:
    """Parameters, MACs at 112x112 and state-dict size (MiB) of a zoo model (no timing)."""

    torch.manual_seed(0)
    model = get_model(name, **options).eval()
    return ModelCost(name, count_parameters(model), count_macs(model, INPUT_SHAPE), size_on_disk_mb(model)), model


def measure_model(name: str, *, threads: Iterable[int] = (1, 2), repeats: int = 20, warmup: int = 3,
                  timed: bool = True, onnx: bool = True, workdir: Path | None = None, **options) -> ModelCost:
    """Build ``name`` from the zoo and measure everything the cost table shows."""

    cost, model = static_cost(name, **options)
    if not timed:
        return cost
    settle_batchnorm(model)
    for t in threads:
        cost.latency[f"torch_{t}t"] = torch_latency(model, threads=t, repeats=repeats, warmup=warmup)
    if onnx:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            path = export_onnx(model, Path(tmp) / f"{name}.onnx", INPUT_SHAPE)
            cost.onnx_mb = path.stat().st_size / 2**20
            for t in threads:
                cost.latency[f"ort_{t}t"] = ort_latency(path, threads=t, repeats=repeats, warmup=warmup)
    return cost


def measure_preset(preset: CostPreset, *, progress: bool = True) -> list[ModelCost]:
    """Every model of the preset: static costs for all, latencies for the timed ones; tqdm unless quiet."""
    rows = []
    for name in progress_bar(preset.models, desc="models") if progress else preset.models:
        rows.append(measure_model(name, threads=preset.threads, repeats=preset.repeats, warmup=preset.warmup,
                                  timed=name in preset.timed))
    return rows


def latency_ratio(rows: Iterable[ModelCost], slow: str, fast: str, key: str) -> float:
    """Median latency of ``slow`` over that of ``fast`` for one runtime/thread key, from one run."""
    by_name = {r.name: r for r in rows}
    return by_name[slow].latency[key].median_ms / by_name[fast].latency[key].median_ms


def latency_log_ratio(rows: Iterable[ModelCost], slow: str, fast: str, key: str) -> tuple[float, float]:
    """log(median latency of ``slow`` / that of ``fast``) for one runtime/thread key, and its standard error."""
    by_name = {r.name: r for r in rows}
    a, b = by_name[slow].latency[key], by_name[fast].latency[key]
    return math.log(a.median_ms / b.median_ms), math.hypot(a.log_stderr, b.log_stderr)


def fraction_of_peak(cost: ModelCost, key: str, peak_gflops: float) -> float:
    """Achieved FLOP rate (2 x MACs per latency) over the peak rate."""
    ms = cost.latency[key].median_ms
    return 2 * cost.macs / (ms * 1e-3) / 1e9 / peak_gflops
