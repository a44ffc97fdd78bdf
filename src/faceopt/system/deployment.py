"""Deploy a trained embedder: ONNX FP32, INT8 and FP16 forms, their agreement on real crops, their latency.

One function, :func:`deploy_embedder`, does what a team shipping a face embedder to a CPU does and
measures every step on the same aligned crops:

* **ONNX export** (:func:`~faceopt.system.onnx_export.export_onnx`) and its parity with PyTorch, both
  fed by the ONE preprocessing :func:`~faceopt.system.embedders.to_input`;
* **INT8**: onnxruntime static quantisation (QDQ, U8S8, per channel, ``reduce_range``: the recipe of
  :mod:`faceopt.compress.int8` that keeps accuracy without VNNI), calibrated on real aligned crops;
* **FP16**: weights and activations in half precision (onnxruntime's ``convert_float_to_float16``,
  inputs and outputs kept float32). The mobile recipe's INT8-weights/FP16-activations form needs FP16
  kernels for every convolution; where the runtime has none (onnxruntime's x86 CPU provider) FP16 is
  slower than FP32, which is the measured reason that form cannot pay off on such a CPU;
* **threads**: each form timed with 1 and 2 intra-op threads, since small models can lose from a second
  thread on a small machine; :func:`best_threads` picks by the measurement.

Cosines are between unit embeddings of the same crops (1 = identical direction).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from torch import nn

from faceopt.compress.int8 import ArrayCalibrationReader, quantize_onnx_static
from faceopt.io import atomic_output
from faceopt.system.cost import LatencyStats, ort_latency
from faceopt.system.embedders import OnnxEmbedder, TorchEmbedder, to_input
from faceopt.system.onnx_export import export_onnx

__all__ = ["FORMS", "Deployment", "deploy_embedder", "convert_fp16", "best_threads", "zoo_parity"]

#: The deployed forms, in the order of the tables.
FORMS = ("fp32", "int8", "fp16")


@dataclass
class Deployment:
    """What :func:`deploy_embedder` measured for one network at one input size."""

    size: int
    files: dict[str, Path]
    bytes: dict[str, int]
    cosine_mean: dict[str, float]        # each form (and "onnx fp32") against PyTorch FP32
    cosine_min: dict[str, float]
    latency: dict[str, dict[int, LatencyStats]] = field(default_factory=dict)   # form -> threads -> stats

    def rows(self) -> list[dict]:
        """One row per form: size on disk, agreement with PyTorch, median latency per thread count."""
        out = []
        for form in FORMS:
            row: dict = {"form": form, "MB": self.bytes[form] / 1e6, "size vs fp32": self.bytes[form] / self.bytes["fp32"],
                         "cosine mean": self.cosine_mean[form], "cosine min": self.cosine_min[form]}
            for threads, stats in sorted(self.latency.get(form, {}).items()):
                row[f"ms {threads} thread{'s' if threads > 1 else ''}"] = stats.median_ms
            out.append(row)
        return out


def convert_fp16(fp32_path: Path, fp16_path: Path) -> Path:
    """The model with float16 weights and activations (inputs and outputs stay float32), written atomically."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    with atomic_output(Path(fp16_path), suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
    return Path(fp16_path)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def deploy_embedder(backbone: nn.Module, size: int, calibration_bgr: np.ndarray, probe_bgr: np.ndarray,
                    workdir: str | Path, *, threads: Sequence[int] = (1, 2), repeats: int = 30,
                    warmup: int = 5) -> Deployment:
    """Export ``backbone`` (input ``size`` x ``size``) to ONNX FP32, INT8 (calibrated on
    ``calibration_bgr`` aligned crops) and FP16 in ``workdir``; compare each with PyTorch on
    ``probe_bgr`` (other aligned crops) and time each at batch 1 for every thread count."""
    if calibration_bgr.shape[1:3] != (size, size) or probe_bgr.shape[1:3] != (size, size):
        raise ValueError(f"crops must be aligned at {size}x{size}, got {calibration_bgr.shape} and {probe_bgr.shape}")
    workdir = Path(workdir)
    files = {"fp32": export_onnx(backbone.eval(), workdir / f"fp32-{size}.onnx", (1, 3, size, size))}
    files["int8"] = quantize_onnx_static(files["fp32"], workdir / f"int8-{size}.onnx",
                                         ArrayCalibrationReader(to_input(calibration_bgr), batch_size=16),
                                         reduce_range=True)
    files["fp16"] = convert_fp16(files["fp32"], workdir / f"fp16-{size}.onnx")
    reference = TorchEmbedder(backbone)(probe_bgr)
    cos_mean, cos_min = {}, {}
    for form, path in files.items():
        c = _cosines(reference, OnnxEmbedder(path)(probe_bgr))
        cos_mean[form], cos_min[form] = float(c.mean()), float(c.min())
    result = Deployment(size, files, {f: p.stat().st_size for f, p in files.items()}, cos_mean, cos_min)
    for form, path in files.items():
        result.latency[form] = {t: ort_latency(path, threads=t, repeats=repeats, warmup=warmup,
                                               input_shape=(1, 3, size, size)) for t in threads}
    return result


def best_threads(latency: dict[int, LatencyStats]) -> int:
    """The thread count with the lowest median latency (the fewer threads on a tie)."""
    if not latency:
        raise ValueError("no latencies measured")
    return min(latency, key=lambda t: (latency[t].median_ms, t))


def zoo_parity(names: Sequence[str], crops_bgr: np.ndarray, workdir: str | Path) -> list[dict]:
    """Every named zoo embedder (random weights, batch norms settled) exported to ONNX and compared with
    PyTorch on the same aligned crops through the one preprocessing: the worst and mean cosine."""
    from faceopt.models import get_model
    from faceopt.models.profile import settle_batchnorm

    rows = []
    for name in names:
        model = get_model(name).eval()
        settle_batchnorm(model)
        path = export_onnx(model, Path(workdir) / f"{name}.onnx", (1, 3, *crops_bgr.shape[1:3]))
        c = _cosines(TorchEmbedder(model)(crops_bgr), OnnxEmbedder(path)(crops_bgr))
        rows.append({"model": name, "cosine mean": float(c.mean()), "cosine min": float(c.min()),
                     "ONNX MB": path.stat().st_size / 1e6})
        path.unlink()
    return rows
