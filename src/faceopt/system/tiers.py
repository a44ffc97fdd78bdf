"""Device tiers of the mobile MobileFaceNet recipe: which model variant, at which input size.

The seed article on MobileFaceNet deployment gives a recipe and a deployment rule:

* **recipe**: inverted residuals with expansion 4 (not MobileNetV2's 6, not the paper's 2),
  a Squeeze-and-Excitation gate after each block, ArcFace with ``s = 32`` and a margin that
  warms up from 0.1 to 0.5 (:class:`~faceopt.recognition.margin_warmup.MarginWarmupLoss`);
  INT8 weights with FP16 activations, the global pooling kept in floating point;
* **tiers**: devices are ranked S, A or B; an S device loads the full model (1.2 MB), a B
  device a pruned one (0.4 MB), and the input drops from 112x112 to 96x96 when the frame
  rate sags.

:data:`CANDIDATES` are the models a tier can load: the recipe's network and a light one
(half the blocks, expansion 2, with SE; 0.42x the recipe's parameters, the seed's B model is
0.33x its S model) at 112 and 96 pixels, plus the paper's MobileFaceNet layout trained with
plain ArcFace (``s = 64``, ``m = 0.5``) as the baseline the recipe must beat. All use ReLU
(the seed's code does; onnxruntime has no INT8 PReLU kernel) and 128-d embeddings.

Each candidate trains on the same synthetic identities with the same batches and seeds. The
images are rendered once at 112 pixels; a 96-pixel candidate sees them resized with
``cv2.INTER_AREA``, which is what aligning to the ArcFace template scaled by 96/112 gives up
to interpolation. The primary accuracy is the AgeDB-like 10-fold verification accuracy,
chosen before any run because the LFW-like protocol saturates first at 112 pixels; the
LFW-like accuracy and TAR at FAR 1% are reported beside it.

Each run also measures its INT8 form (onnxruntime static QDQ U8S8 with ``reduce_range``,
:func:`faceopt.compress.int8.quantize_onnx_static`, calibrated on training images, which are
not scored): accuracy, the cosine to FP32 and the file sizes. Latencies are not part of a run
(they belong to the machine that reads the runs): :func:`faceopt.system.tier_choice.choose_tier` picks from
latencies measured where the model will run.

:mod:`faceopt.system.tier_runs` caches runs as JSON (and the first seed's weights), keyed by
:meth:`TierPreset.key`, which hashes the preset and the code of :data:`TIER_CODE`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from faceopt.config import seed_everything
from faceopt.data.pairs import PairSet, agedb_like_pairs, lfw_like_pairs
from faceopt.data.synthetic_faces import SyntheticFaces
from faceopt.fingerprint import code_fingerprint
from faceopt.models.mobilefacenet import MobileFaceNet
from faceopt.recognition.evaluate import pair_scores
from faceopt.recognition.heads import FaceRecognizer, MarginHead
from faceopt.recognition.margin_warmup import MarginWarmupLoss
from faceopt.recognition.metrics import tar_at_far, verification_accuracy
from faceopt.train import TrainConfig, train

__all__ = [
    "TIER_CODE", "Candidate", "CANDIDATES", "TIERS", "TierPreset", "TierData", "render_tier_data",
    "resize_images", "build_backbone", "build_loss", "train_candidate", "evaluate_candidate", "int8_check",
    "parameter_count",
]

#: Modules whose code decides a run's numbers (their fingerprint is part of :meth:`TierPreset.key`).
TIER_CODE = (
    "faceopt.system.tiers", "faceopt.recognition.margin_warmup", "faceopt.recognition.losses",
    "faceopt.recognition.heads", "faceopt.recognition.evaluate", "faceopt.recognition.metrics", "faceopt.train",
    "faceopt.config", "faceopt.models.mobilefacenet", "faceopt.data.synthetic_faces", "faceopt.data.pairs",
    "faceopt.compress.int8", "faceopt.system.onnx_export",
)

#: Model layouts (MobileFaceNet keyword arguments) and their losses.
VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {"model": {"expansion": 2, "se": False}, "loss": "arcface"},
    "recipe": {"model": {"expansion": 4, "se": True}, "loss": "warmup"},
    "light": {"model": {"expansion": 2, "se": True, "blocks": (1, 2, 3, 1)}, "loss": "warmup"},
}


@dataclass(frozen=True)
class Candidate:
    """A model a device tier can load: a :data:`VARIANTS` layout at an input side in pixels."""

    variant: str
    size: int

    @property
    def name(self) -> str:
        return f"{self.variant}-{self.size}"


#: Every trained candidate; the paper layout is the baseline, not a tier.
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("paper", 112), Candidate("recipe", 112), Candidate("recipe", 96),
    Candidate("light", 112), Candidate("light", 96),
)
#: The seed's tiers: S the full model at 112, A the full model at 96, B the light model at 96.
TIERS: dict[str, Candidate] = {"S": Candidate("recipe", 112), "A": Candidate("recipe", 96),
                               "B": Candidate("light", 96)}


@dataclass(frozen=True)
class TierPreset:
    """Everything that decides the numbers of the tier comparison (its hash names the run folder)."""

    name: str
    identities: int
    images_per_identity: int
    steps: int
    batch_groups: int              # groups of ``group`` images of one identity per batch
    group: int = 4
    difficulty: float = 0.5
    spread: float = 1.0
    lr: float = 0.1
    lr_warmup: float = 0.05        # fraction of the steps with a linear lr warm-up
    milestones: tuple[float, ...] = (0.6, 0.85)
    margin_warmup: float = 0.3     # fraction of the steps over which the recipe's margin grows
    s_recipe: float = 32.0
    m_start: float = 0.1
    m_end: float = 0.5
    s_paper: float = 64.0
    embedding_size: int = 128
    seeds: tuple[int, ...] = (0, 1, 2)
    folds: int = 10
    pairs_per_fold: int = 600
    eval_difficulty: float = 0.5
    calibration_images: int = 256
    amp: bool = True               # bf16 autocast on a GPU (ignored on a CPU)
    data_seed: int = 0
    render_size: int = 112

    @property
    def batch_size(self) -> int:
        return self.batch_groups * self.group

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["milestones"], d["seeds"] = list(self.milestones), list(self.seeds)
        return d

    def key(self) -> str:
        """Short hash of every field except the name and the seeds, and of :data:`TIER_CODE`."""
        d = self.to_dict()
        for k in ("name", "seeds"):
            d.pop(k)
        d["code"] = code_fingerprint(TIER_CODE)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def runs(self) -> list[tuple[Candidate, int]]:
        """Every ``(candidate, seed)``, seed-major so that the first seed of every candidate comes first."""
        return [(c, s) for s in self.seeds for c in CANDIDATES]


# ----------------------------------------------------------------------------- data

@dataclass
class TierData:
    """Training images ``[N, 3, S, S]`` uint8 RGB at ``render_size`` with sorted labels, and the two
    pair protocols (images uint8 as well, pairs ``[P, 2]``, ``issame``, ``fold``)."""

    images: torch.Tensor
    labels: torch.Tensor
    lfw: dict[str, torch.Tensor]
    agedb: dict[str, torch.Tensor]

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "labels": self.labels, "lfw": self.lfw, "agedb": self.agedb}


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return x.mul(127.5).add_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def _protocol(ps: PairSet) -> dict[str, torch.Tensor]:
    x, _ = ps.faces.batch(np.arange(len(ps.faces)))
    return {"images": _uint8(x), "pairs": torch.as_tensor(np.asarray(ps.pairs, dtype=np.int64).reshape(-1, 2)),
            "issame": torch.as_tensor(np.asarray(ps.issame, dtype=bool)),
            "fold": torch.as_tensor(np.asarray(ps.fold, dtype=np.int64))}


def render_tier_data(preset: TierPreset, *, workers: int | None = None) -> TierData:
    """Render the training identities and the LFW-like and AgeDB-like protocols (disjoint identities)."""
    faces = SyntheticFaces(preset.identities, preset.images_per_identity, size=preset.render_size,
                           seed=preset.data_seed, difficulty=preset.difficulty, spread=preset.spread, workers=workers)
    chunks, labels = [], []
    for start in range(0, len(faces), 2048):
        x, y = faces.batch(np.arange(start, min(start + 2048, len(faces))))
        chunks.append(_uint8(x))
        labels.append(y)
    common = {"size": preset.render_size, "seed": preset.data_seed, "workers": workers}
    lfw = lfw_like_pairs({**common, "difficulty": preset.eval_difficulty}, folds=preset.folds,
                         pairs_per_fold=preset.pairs_per_fold, seed=preset.data_seed)
    agedb = agedb_like_pairs(common, folds=preset.folds, pairs_per_fold=preset.pairs_per_fold, seed=preset.data_seed)
    return TierData(torch.cat(chunks), torch.cat(labels).long(), _protocol(lfw), _protocol(agedb))


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[N, 3, H, W]`` images resized to ``size`` x ``size`` with ``cv2.INTER_AREA`` (unchanged if equal)."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 images [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
    if images.shape[-2:] == (size, size):
        return images
    hwc = images.permute(0, 2, 3, 1).numpy()
    out = np.stack([cv2.resize(np.ascontiguousarray(im), (size, size), interpolation=cv2.INTER_AREA) for im in hwc])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return x.float().sub_(127.5).div_(127.5)


# ----------------------------------------------------------------------------- models

def build_backbone(candidate: Candidate, preset: TierPreset) -> MobileFaceNet:
    """The candidate's MobileFaceNet (ReLU, ``preset.embedding_size``-d) for its input side."""
    options = VARIANTS[candidate.variant]["model"]
    return MobileFaceNet(preset.embedding_size, act="relu", input_size=(candidate.size, candidate.size), **options)


def build_loss(candidate: Candidate, preset: TierPreset) -> nn.Module:
    """ArcFace ``s=64, m=0.5`` for the paper layout; the recipe's ``s=32`` margin warm-up otherwise."""
    if VARIANTS[candidate.variant]["loss"] == "arcface":  # no warm-up: the margin is m_end from the first step
        return MarginWarmupLoss(preset.s_paper, preset.m_end, preset.m_end, warmup_steps=0)
    return MarginWarmupLoss(preset.s_recipe, preset.m_start, preset.m_end,
                            warmup_steps=int(round(preset.margin_warmup * preset.steps)))


def parameter_count(candidate: Candidate, preset: TierPreset) -> int:
    """Parameters of the candidate's backbone (the deployed network, without the class centres)."""
    return sum(p.numel() for p in build_backbone(candidate, preset).parameters())


def _loss_fn(net: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """Random mirror per image, ``(x - 127.5) / 127.5``, channels-last; the recognizer's loss."""
    x, y = (t.reshape(-1, *t.shape[2:]) for t in batch[:2])
    flip = torch.rand(len(x), device=x.device) < 0.5
    x = _normalise(torch.where(flip[:, None, None, None], x.flip(3), x)).contiguous(memory_format=torch.channels_last)
    return net(x, y)


def train_candidate(candidate: Candidate, preset: TierPreset, images: torch.Tensor, labels: torch.Tensor, *,
                    seed: int = 0, device: str = "cpu", checkpoint_dir: str | Path | None = None
                    ) -> tuple[MobileFaceNet, dict[str, Any]]:
    """Train one candidate on ``images`` (uint8 at the candidate's size) and return its backbone
    (eval mode, on the CPU) and the training statistics."""
    from faceopt.recognition.experiments import TrainingSet  # the identity-group dataset of chapter 04

    if images.shape[-1] != candidate.size:
        raise ValueError(f"{candidate.name} trains on {candidate.size}px images, got {images.shape[-1]}px")
    seed_everything(seed, threads=None)
    backbone = build_backbone(candidate, preset)
    head = MarginHead(preset.embedding_size, int(labels.max()) + 1)
    model = FaceRecognizer(backbone, head, build_loss(candidate, preset)).to(memory_format=torch.channels_last)
    steps = preset.steps
    config = TrainConfig(max_steps=steps, batch_size=preset.batch_groups, lr=preset.lr,
                         milestones=tuple(int(round(f * steps)) for f in preset.milestones), seed=seed,
                         device=device, warmup_steps=int(round(preset.lr_warmup * steps)),
                         checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
                         checkpoint_every=max(50, steps // 5), log_every=max(1, steps // 50), progress=False,
                         amp=preset.amp)
    res = train(model, TrainingSet(images, labels, preset.group), config, loss_fn=_loss_fn)
    model.cpu().eval()
    backbone.to(memory_format=torch.contiguous_format)
    return backbone, {"steps": res.steps, "final_loss": res.final_loss, "images_per_s": res.images_per_s,
                      "wall_time_s": res.wall_time_s, "device": res.device,
                      "loss_history": [[int(s), float(v)] for s, v in res.loss_history]}


# ----------------------------------------------------------------------------- evaluation

def _verification(scores: np.ndarray, protocol: Mapping[str, torch.Tensor]) -> dict[str, float]:
    issame = protocol["issame"].numpy()
    mean, std = verification_accuracy(scores, issame, folds=int(protocol["fold"].max()) + 1)
    return {"accuracy": 100 * mean, "std": 100 * std,
            "tar@far=1e-2": 100 * tar_at_far(scores[issame], scores[~issame], 1e-2)}


@torch.no_grad()
def _embed_torch(backbone: nn.Module, images: torch.Tensor, device: str) -> np.ndarray:
    backbone.eval().to(device)
    out = []
    for start in range(0, len(images), 256):
        out.append(backbone(_normalise(images[start:start + 256].to(device))).float().cpu())
    backbone.cpu()
    e = torch.cat(out)
    return torch.nn.functional.normalize(e, dim=1).numpy()


def evaluate_candidate(backbone: nn.Module, data: TierData, size: int, *, device: str = "cpu"
                       ) -> dict[str, dict[str, float]]:
    """LFW-like and AgeDB-like verification (accuracy %, std, TAR at FAR 1e-2 %) at input ``size``."""
    out = {}
    for name in ("lfw", "agedb"):
        protocol = getattr(data, name)
        e = _embed_torch(backbone, resize_images(protocol["images"], size), device)
        pairs: Any = protocol["pairs"].numpy()
        out[name] = _verification(pair_scores(e, pairs), protocol)
    return out


def int8_check(backbone: nn.Module, data: TierData, size: int, calibration: torch.Tensor,
               workdir: str | Path | None = None) -> dict[str, Any]:
    """The candidate in INT8 (onnxruntime static QDQ U8S8, ``reduce_range``, per channel), calibrated on
    ``calibration`` (uint8 training images at ``size``), against its FP32 ONNX form on the AgeDB-like
    protocol: both accuracies, the cosine between their embeddings, the file sizes."""
    import onnxruntime as ort

    from faceopt.compress.int8 import ArrayCalibrationReader, quantize_onnx_static
    from faceopt.system.onnx_export import export_onnx

    def embed(path: Path, x: torch.Tensor) -> np.ndarray:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        e = np.concatenate([sess.run(None, {"input": _normalise(x[i:i + 64]).numpy()})[0] for i in range(0, len(x), 64)])
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    protocol = data.agedb
    x = resize_images(protocol["images"], size)
    pairs: Any = protocol["pairs"].numpy()  # [P, 2] indices, which pair_scores accepts
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        fp32 = export_onnx(backbone.eval(), Path(tmp) / "fp32.onnx", (1, 3, size, size))
        reader = ArrayCalibrationReader(_normalise(calibration).numpy(), batch_size=16)
        int8 = quantize_onnx_static(fp32, Path(tmp) / "int8.onnx", reader, reduce_range=True)
        e32, e8 = embed(fp32, x), embed(int8, x)
        cos = np.sum(e32 * e8, axis=1)
        return {"fp32": {"agedb": _verification(pair_scores(e32, pairs), protocol)},
                "int8": {"agedb": _verification(pair_scores(e8, pairs), protocol)},
                "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                "fp32_bytes": fp32.stat().st_size, "int8_bytes": int8.stat().st_size}
