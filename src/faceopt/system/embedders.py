"""Embedders of aligned faces, in PyTorch and in onnxruntime, with ONE preprocessing for both.

A common way to lose accuracy in deployment is a preprocessing mismatch between the training
framework and the runtime (users of ONNX face models report LFW falling from 99% to 90% that
way). Here both paths call :func:`to_input`: BGR aligned crops -> RGB, ``(x - 127.5) / 127.5``,
float32 ``[N, 3, H, W]``, the insightface convention the zoo's models were written for. The
embeddings come back L2-normalised, so a dot product is a cosine.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort
import torch

from faceopt.recognition.heads import FaceRecognizer


def to_input(aligned_bgr: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Aligned BGR uint8 crops (``[H, W, 3]`` or ``[N, H, W, 3]``) -> float32 ``[N, 3, H, W]`` in [-1, 1], RGB."""
    batch = np.asarray(aligned_bgr)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
        raise ValueError(f"expected aligned BGR uint8 crops [N, H, W, 3], got {batch.dtype} {batch.shape}")
    rgb = batch[..., ::-1].astype(np.float32)
    return np.ascontiguousarray(((rgb - 127.5) / 127.5).transpose(0, 3, 1, 2))


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class TorchEmbedder:
    """A zoo embedder (any module mapping ``[N, 3, H, W]`` to ``[N, D]``, or a :class:`FaceRecognizer`)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()

    @torch.inference_mode()
    def __call__(self, aligned_bgr: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(to_input(aligned_bgr))
        out = self.model.embed(x) if isinstance(self.model, FaceRecognizer) else self.model(x)
        return _normalise(out.float().numpy())


class OnnxEmbedder:
    """An embedder exported to ONNX (:func:`faceopt.system.onnx_export.export_onnx`), run by onnxruntime."""

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no ONNX model; export one with faceopt.system.onnx_export.export_onnx")
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, aligned_bgr: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        return _normalise(self.session.run(None, {self.input_name: to_input(aligned_bgr)})[0].astype(np.float32))
