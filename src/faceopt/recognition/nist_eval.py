"""Thesis Chapter 4's evaluation protocols (page 06), rendered once and scored for any embedder.

* **NIST-like 1:1** (Table 8): for each capture condition of :mod:`faceopt.data.conditions` (visa,
  border, wild), every pair of its images is scored; same-identity pairs are genuine, the rest
  impostors. FNMR at the thesis's FMR targets (1e-6 for visa and border, 1e-4 for wild), with a
  bootstrap interval, where the impostor count allows the target (else at ``1 / impostors``
  rounded up to a decade, and the record says which FMR was used).
* **Door phone** (Tables 13, 14, 16, 17): :func:`faceopt.data.doorphone_visits.doorphone_protocol`
  for day with weak and strong H.264 compression and night (infrared) with weak compression; TAR at
  FAR 10% over visits (:func:`faceopt.recognition.nist.doorphone_tar_at_far`, best frame per visit).
* **MegaFace-like** (Table 11): rank-1 identification of probes among their mates and distractors.

An embedder is a function from float32 images ``[N, 3, S, S]`` in [-1, 1] to L2-normalised
embeddings ``[N, D]`` (numpy): a PyTorch backbone (:func:`torch_embedder`) or its INT8 onnxruntime
form (:func:`int8_embedder`).
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from faceopt.data.conditions import CONDITIONS, condition_faces, render_condition
from faceopt.data.doorphone_visits import DoorphoneProtocol, doorphone_protocol
from faceopt.data.pairs import megaface_like
from faceopt.recognition.metrics import rank1_identification
from faceopt.recognition.nist import det_summary, doorphone_tar_at_far, fnmr_at_fmr_with_ci
from faceopt.recognition.nist_experiments import NistPreset, normalise

__all__ = ["FMR_TARGETS", "DOORPHONE_SETTINGS", "EvalData", "build_eval_data", "torch_embedder", "int8_embedder",
           "pair_scores_all", "evaluate"]

Embedder = Callable[[torch.Tensor], np.ndarray]

#: The thesis's FMR of each NIST category (Table 8).
FMR_TARGETS: dict[str, float] = {"visa": 1e-6, "border": 1e-6, "wild": 1e-4}
#: Door-phone settings: (condition, compression). Table 13 compares compressions by day, Table 14 night and day.
DOORPHONE_SETTINGS: tuple[tuple[str, str], ...] = (("day", "weak"), ("day", "strong"), ("night", "weak"))


@dataclass
class EvalData:
    """Rendered protocols: condition images (float32 in [-1, 1]) and labels, door-phone protocols,
    MegaFace-like probe and gallery (labels -1 for distractors)."""

    conditions: dict[str, tuple[torch.Tensor, np.ndarray]]
    doorphone: dict[str, DoorphoneProtocol]
    megaface: tuple[torch.Tensor, np.ndarray, torch.Tensor, np.ndarray]


def build_eval_data(preset: NistPreset, *, workers: int | None = None) -> EvalData:
    """Render every protocol of the preset (identities disjoint from training and from each other)."""
    conditions = {}
    for name in CONDITIONS:
        faces = condition_faces(name, preset.condition_identities, preset.condition_images, seed=preset.data_seed,
                                workers=workers)
        x, labels = render_condition(faces, preset.size)
        conditions[name] = (normalise(x), labels.numpy())
    doorphone = {f"{c}-{z}": doorphone_protocol(preset.residents, preset.visits_per_resident, preset.negative_visitors,
                                                preset.distractors, condition=c, compression=z,  # type: ignore[arg-type]
                                                size=preset.size, seed=preset.data_seed, workers=workers)
                 for c, z in DOORPHONE_SETTINGS}
    probe, gallery = megaface_like(preset.megaface_probe_identities, preset.megaface_probe_images,
                                   preset.megaface_distractors, seed=preset.data_seed, size=preset.size,
                                   difficulty=preset.difficulty, workers=workers)
    px, py = probe.tensors()
    gx, gy = gallery.tensors()
    return EvalData(conditions, doorphone, (px, py.numpy(), gx, gy.numpy()))


def torch_embedder(backbone: nn.Module, *, device: str = "cpu", batch_size: int = 256) -> Embedder:
    """Normalised embeddings of float images by a PyTorch backbone (eval mode, no gradients)."""
    @torch.no_grad()
    def embed(x: torch.Tensor) -> np.ndarray:
        backbone.eval().to(device)
        out = [backbone(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
        return torch.nn.functional.normalize(torch.cat(out), dim=1).numpy()
    return embed


def int8_embedder(backbone: nn.Module, size: int, calibration: torch.Tensor, workdir: str | Path,
                  *, threads: int = 1) -> tuple[Embedder, dict[str, int]]:
    """The backbone exported to ONNX and quantised to INT8 (onnxruntime static QDQ U8S8, per channel,
    ``reduce_range``), calibrated on ``calibration`` (float images); its embedder and both file sizes."""
    import onnxruntime as ort

    from faceopt.compress.int8 import ArrayCalibrationReader, quantize_onnx_static
    from faceopt.system.onnx_export import export_onnx

    fp32 = export_onnx(backbone.eval(), Path(workdir) / "fp32.onnx", (1, 3, size, size))
    int8 = quantize_onnx_static(fp32, Path(workdir) / "int8.onnx", ArrayCalibrationReader(calibration.numpy()),
                                reduce_range=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(int8), opts, providers=["CPUExecutionProvider"])

    def embed(x: torch.Tensor) -> np.ndarray:
        e = np.concatenate([session.run(None, {"input": x[i:i + 64].numpy()})[0] for i in range(0, len(x), 64)])
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return embed, {"fp32_bytes": fp32.stat().st_size, "int8_bytes": int8.stat().st_size}


def pair_scores_all(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor cosines of every unordered pair of the rows."""
    sims = embeddings @ embeddings.T
    upper = np.triu_indices(len(labels), k=1)
    same = labels[upper[0]] == labels[upper[1]]
    scores = sims[upper]
    return scores[same], scores[~same]


def _usable_fmr(target: float, impostors: int) -> float:
    """The target, or the smallest decade the impostor count allows (at least one false match possible)."""
    floor = 10.0 ** math.ceil(math.log10(1.0 / impostors))
    return max(target, floor)


def _nist(embed: Embedder, data: EvalData, preset: NistPreset) -> dict[str, Any]:
    out = {}
    for name, (x, labels) in data.conditions.items():
        genuine, impostor = pair_scores_all(embed(x), labels)
        fmr = _usable_fmr(FMR_TARGETS[name], len(impostor))
        res = fnmr_at_fmr_with_ci(genuine, impostor, fmr, resamples=preset.bootstrap, seed=preset.data_seed)
        out[name] = {"fmr": fmr, "fmr_target": FMR_TARGETS[name], "fnmr": res["fnmr"], "ci_low": res["ci_low"],
                     "ci_high": res["ci_high"], "genuine": len(genuine), "impostor": len(impostor),
                     "det": det_summary(genuine, impostor)}
    return out


def _doorphone(embed: Embedder, protocol: DoorphoneProtocol, preset: NistPreset) -> dict[str, Any]:
    gallery_x, gallery_labels = protocol.gallery()
    frames, visit_index, _ = protocol.probes()
    g, f = embed(gallery_x), embed(frames)
    visit_of = visit_index.numpy()
    positive, negative = [], []
    for k, visit in enumerate(protocol.visits):
        scores = f[visit_of == k] @ g.T  # [frames, gallery]
        if visit.label >= 0:
            positive.append(scores[:, int(np.flatnonzero(gallery_labels.numpy() == visit.label)[0])])
        else:
            negative.append(scores)
    res = doorphone_tar_at_far(positive, negative, far=0.10, ci=True, resamples=preset.bootstrap,
                               seed=preset.data_seed)
    return {key: res[key] for key in ("tar", "threshold", "ci_low", "ci_high")} | {
        "positive_visits": len(positive), "negative_visits": len(negative)}


def evaluate(embed: Embedder, data: EvalData, preset: NistPreset) -> dict[str, Any]:
    """Every protocol for one embedder: NIST-like FNMR, door-phone TAR at FAR 10%, MegaFace-like rank-1 (%)."""
    px, py, gx, gy = data.megaface
    return {"nist": _nist(embed, data, preset),
            "doorphone": {name: _doorphone(embed, p, preset) for name, p in data.doorphone.items()},
            "megaface_rank1": 100 * rank1_identification(embed(px), py, embed(gx), gy)}


def evaluate_int8(backbone: nn.Module, data: EvalData, preset: NistPreset, calibration: torch.Tensor
                  ) -> dict[str, Any]:
    """:func:`evaluate` for the backbone's INT8 form, with the file sizes."""
    with tempfile.TemporaryDirectory() as tmp:
        embed, sizes = int8_embedder(backbone, preset.size, calibration, tmp)
        return evaluate(embed, data, preset) | sizes
