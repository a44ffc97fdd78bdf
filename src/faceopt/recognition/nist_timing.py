"""Time per face of the page 06 models on this CPU (thesis Tables 10, 15 and 18).

The thesis times its networks on the embedded target; we time the same architectures on the CPU at hand,
at the thesis's 112-pixel input, one face at a time, interleaved (:func:`faceopt.system.benchmark.time_per_image`)
so that a drift of the machine hits every model alike and the *ratios* of one run can be compared with the
thesis's. Timing does not depend on the weights, so the networks are built with random weights at the
thesis's full width (the trained page 06 teachers are narrower to fit the training budget; their times are
shown as well). dlib's ResNet embedder, a pretrained model from PyPI, is the outside reference, timed on a
face of a real photo (its chip extraction included, as in any system).
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from faceopt.models import get_model
from faceopt.system.benchmark import time_per_image
from faceopt.system.cost import LatencyStats, torch_threads

__all__ = ["TIMING_REPEATS", "TIMED_MODELS", "model_times", "latency", "log_ratio"]

#: Timed calls per model at each scale.
TIMING_REPEATS = {"smoke": 3, "full": 15}
#: Row label -> (zoo model, options): the thesis's full-width teachers and our student, 112 px.
TIMED_MODELS: dict[str, tuple[str, dict]] = {
    "iResNet-100 (full width)": ("iresnet100", {"input_size": 112}),
    "iResNet-50 (full width)": ("iresnet50", {"input_size": 112}),
    "student MobiFace x3 Swish SE": ("mobiface_x2_swish_se_gdc", {"input_size": (112, 112)}),
}


def _torch_call(model: torch.nn.Module, size: int) -> Callable[[np.ndarray], object]:
    x = torch.randn(1, 3, size, size)
    model = model.eval()

    def run(_: np.ndarray) -> object:
        with torch.inference_mode():
            return model(x)
    return run


def model_times(*, threads: int = 2, repeats: int = 5, warmup: int = 1, extra: Mapping[str, torch.nn.Module] = {},
                extra_size: int = 112, dlib_photo: np.ndarray | None = None) -> pd.DataFrame:
    """Milliseconds per face (median, quartiles, count) of :data:`TIMED_MODELS`, of ``extra`` models (input
    ``extra_size``), and of dlib's ResNet embedder on the largest face of ``dlib_photo`` (BGR) when given."""
    systems: dict[str, Callable[[np.ndarray], object]] = {}
    params: dict[str, float] = {}
    torch.manual_seed(0)
    for label, (name, options) in TIMED_MODELS.items():
        model = get_model(name, **options)
        systems[label], params[label] = _torch_call(model, 112), sum(p.numel() for p in model.parameters()) / 1e6
    for label, model in extra.items():
        systems[label], params[label] = _torch_call(model, extra_size), sum(p.numel() for p in model.parameters()) / 1e6
    if dlib_photo is not None:
        from faceopt.system.dlib_reference import DlibFacePipeline

        pipeline = DlibFacePipeline()
        faces = pipeline.detect(dlib_photo)
        if not faces:
            raise ValueError("dlib found no face in the photo given for timing")
        face = faces[0]
        systems["dlib ResNet (pretrained, 150 px chip)"] = lambda image: pipeline.embed(image, face)
        params["dlib ResNet (pretrained, 150 px chip)"] = float("nan")
    image = dlib_photo if dlib_photo is not None else np.zeros((8, 8, 3), np.uint8)
    with torch_threads(threads):
        rows = time_per_image(systems, [image], repeats=repeats, warmup=warmup)
    table = pd.DataFrame(rows).set_index("system")
    table.insert(0, "params M", [params[s] for s in table.index])
    return table


def latency(table: pd.DataFrame, system: str) -> LatencyStats:
    """One row of :func:`model_times` as :class:`LatencyStats`."""
    row = table.loc[system]
    return LatencyStats(float(row["median_ms"]), float(row["p25_ms"]), float(row["p75_ms"]), int(row["n"]))


def log_ratio(table: pd.DataFrame, slow: str, fast: str) -> tuple[float, float]:
    """``log(time slow / time fast)`` and its standard error from both medians' spreads."""
    a, b = latency(table, slow), latency(table, fast)
    return math.log(a.median_ms / b.median_ms), math.hypot(a.log_stderr, b.log_stderr)
