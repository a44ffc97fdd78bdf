"""Export zoo models to ONNX for onnxruntime."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from faceopt.io import atomic_output


def export_onnx(model: torch.nn.Module, path: Path, input_shape: tuple[int, ...] = (1, 3, 112, 112),
                *, opset: int = 17, dynamic_batch: bool = True) -> Path:
    """Write ``model`` (in eval mode) to ``path`` as ONNX and return the path.

    Uses the TorchScript exporter (``dynamo=False``): it is fast for plain CNNs and
    needs no extra packages. The file is written to a temporary name and renamed,
    so a failed export leaves nothing behind.
    """
    path = Path(path)
    model = model.eval()
    x = torch.randn(*input_shape)
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    with atomic_output(path, suffix=".onnx") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["output"],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    return path
