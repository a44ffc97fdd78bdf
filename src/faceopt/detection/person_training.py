"""Training an SSDlite-MobileNetV2 person detector on one fixed-camera video (thesis Chapter 2, page 03).

The detector is :func:`~faceopt.detection.ssd_mobilenetv2.build_ssd_mobilenetv2` with
anchors for small people. How torchvision (0.29) places anchors, read from its source:

* ``SSD(size=(w, h))`` builds ``GeneralizedRCNNTransform(fixed_size=(w, h))``, which
  stretches every image to ``h`` rows and ``w`` columns (``interpolate(size=[h, w])``)
  and maps the predicted boxes back to the image's own pixels;
* ``DefaultBoxGenerator`` places, on map ``k``, boxes of ``s_k*sqrt(a)*w`` by
  ``s_k/sqrt(a)*h`` input pixels (``a`` in {1, 2, 1/2, 3, 1/3}) plus a square one of scale
  ``sqrt(s_k*s_{k+1})``; relative sizes are clipped to at most 1.

:data:`PERSON_ANCHOR_SCALES` are fractions of a 768x576 frame: with the 1:3 box
(``s/sqrt(3)`` wide, ``s*sqrt(3)`` tall) the stride-16 map covers people about 13x35 to
19x50 px and the stride-32 map 26x70 to 37x100 px, the range of the vtest.avi people.

Training runs on fixed-size crops at the frame's own resolution (no resizing, so a
person keeps its size in pixels): the training detector has ``input_size`` = the crop
size and anchor scales multiplied by frame/crop, so that its anchors have the same
sizes in pixels; :func:`with_input_size` makes the full-frame detector from it (same
modules, so the same weights). Crops are 4x cheaper than frames at half the width and
height, which buys more optimiser steps in a fixed CPU budget.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD

from faceopt.assets import asset_path
from faceopt.checkpoint import CheckpointError, load_torch_file
from faceopt.data.cdnet import read_video
from faceopt.data.person_boxes import default_annotation_path, load_annotations
from faceopt.detection.metrics import mean_average_precision
from faceopt.detection.ssd_mobilenetv2 import build_ssd_mobilenetv2
from faceopt.io import atomic_torch_save, atomic_write_text
from faceopt.progress import progress
from faceopt.provenance import machine_description

FRAME_SIZE = (768, 576)
"""(width, height) of vtest.avi, the frame size :data:`PERSON_ANCHOR_SCALES` refer to."""

PERSON_ANCHOR_SCALES = (0.035, 0.07, 0.14, 0.28, 0.5, 0.75, 1.0)
"""``DefaultBoxGenerator`` scales (fractions of the frame) for 30-180 px tall people in a 768x576 frame."""

Target = dict[str, torch.Tensor]


def bgr_to_tensor(frame_bgr: np.ndarray) -> torch.Tensor:
    """BGR uint8 [H, W, 3] -> RGB float [3, H, W] in 0..1, the torchvision detection input."""
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 [H, W, 3] frame, got {frame_bgr.dtype} {frame_bgr.shape}")
    return torch.from_numpy(np.ascontiguousarray(frame_bgr[..., ::-1])).permute(2, 0, 1).float().div_(255.0)


def crop_boxes(boxes: np.ndarray, x0: int, y0: int, width: int, height: int, *, flip: bool = False,
               min_visible: float = 0.5) -> np.ndarray:
    """Boxes [N, 4] (x1, y1, x2, y2 frame pixels) -> boxes in the crop ``[x0, x0+width) x [y0, y0+height)``.

    Boxes are shifted and clipped to the crop; a box keeps only if at least
    ``min_visible`` of its area lies inside (boxes of zero area need their centre inside).
    ``flip`` mirrors the crop left-right afterwards: ``x -> width - x``.
    """
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    shifted = b - np.array([x0, y0, x0, y0], np.float32)
    clipped = shifted.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
    area = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    cx, cy = (shifted[:, 0] + shifted[:, 2]) / 2, (shifted[:, 1] + shifted[:, 3]) / 2
    centre_in = (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
    keep = np.where(area > 0, inside >= min_visible * np.maximum(area, 1e-9), centre_in)
    keep &= (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    out = clipped[keep]
    if flip:
        out = np.stack([width - out[:, 2], out[:, 1], width - out[:, 0], out[:, 3]], axis=1).astype(np.float32)
    return out.reshape(-1, 4)


class VideoPersonDataset(Dataset):
    """Frames ``indices`` of a video with their person boxes, as ``(image [3, h, w], target)``.

    ``frames``: all frames of the video (BGR uint8, indexed by frame number); ``boxes``:
    frame -> float [N, 4] x1, y1, x2, y2 in frame pixels (missing frames have no person).
    ``target`` is ``{"boxes": float32 [N, 4], "labels": int64 [N] (all 1)}``.

    Without ``crop_size`` an item is the whole frame, mirrored when ``flip`` is set and the
    coin says so. With ``crop_size=(w, h)`` it is a ``w x h`` window at a uniformly random
    position, at the frame's resolution (see :func:`crop_boxes` for the boxes). The random
    draws depend only on ``(seed, epoch, item)``: call :meth:`set_epoch` for new ones.
    """

    def __init__(self, frames: Sequence[np.ndarray], boxes: Mapping[int, np.ndarray], indices: Sequence[int], *,
                 crop_size: tuple[int, int] | None = None, flip: bool = False, min_visible: float = 0.5,
                 seed: int = 0) -> None:
        self.frames = frames
        self.boxes = boxes
        self.indices = [int(i) for i in indices]
        if not self.indices:
            raise ValueError("indices is empty")
        if min(self.indices) < 0 or max(self.indices) >= len(frames):
            raise ValueError(f"indices must lie in 0..{len(frames) - 1}")
        h, w = frames[self.indices[0]].shape[:2]
        if crop_size is not None:
            cw, ch = int(crop_size[0]), int(crop_size[1])
            if not (0 < cw <= w and 0 < ch <= h):
                raise ValueError(f"crop_size {crop_size!r} must fit in the {w}x{h} frame")
            crop_size = (cw, ch)
        self.crop_size = crop_size
        self.flip = bool(flip)
        self.min_visible = float(min_visible)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops and flips (deterministic given ``seed`` and ``epoch``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, Target]:
        index = self.indices[item]
        frame = self.frames[index]
        h, w = frame.shape[:2]
        rng = np.random.default_rng([self.seed, self.epoch, item])
        if self.crop_size is None:
            x0, y0, cw, ch = 0, 0, w, h
        else:
            cw, ch = self.crop_size
            x0 = int(rng.integers(0, w - cw + 1))
            y0 = int(rng.integers(0, h - ch + 1))
        flip = self.flip and bool(rng.random() < 0.5)
        window = frame[y0:y0 + ch, x0:x0 + cw]
        if flip:
            window = window[:, ::-1]
        boxes = crop_boxes(self.boxes.get(index, np.zeros((0, 4), np.float32)), x0, y0, cw, ch, flip=flip,
                           min_visible=self.min_visible)
        target = {"boxes": torch.from_numpy(boxes), "labels": torch.ones(len(boxes), dtype=torch.int64)}
        return bgr_to_tensor(window), target


def _scaled(scales: Sequence[float], factor: float) -> list[float]:
    return [float(s) * factor for s in scales]


def build_person_detector(input_size: tuple[int, int] = FRAME_SIZE, *, frame_size: tuple[int, int] = FRAME_SIZE,
                          anchor_scales: Sequence[float] = PERSON_ANCHOR_SCALES, width_mult: float = 0.5,
                          seed: int | None = 0) -> SSD:
    """SSDlite-MobileNetV2, one class (person), input ``(width, height)``, random weights.

    ``anchor_scales`` are fractions of a ``frame_size`` frame; for an input (a crop) of
    another size they are rescaled (times ``frame_width / input_width``) so that each
    anchor keeps its size in pixels. ``input_size`` must have the frame's aspect ratio.
    """
    factor = _scale_factor(frame_size, input_size)
    if seed is not None:
        torch.manual_seed(seed)
    return build_ssd_mobilenetv2(num_classes=2, width_mult=width_mult, input_size=tuple(input_size),
                                 anchor_scales=_scaled(anchor_scales, factor))


def _scale_factor(frame_size: Sequence[int], input_size: Sequence[int]) -> float:
    fw, fh = frame_size
    iw, ih = input_size
    if abs(fw / iw - fh / ih) > 1e-6 * fw / iw:
        raise ValueError(f"input {input_size} and frame {frame_size} must have the same aspect ratio")
    return fw / iw


def with_input_size(model: SSD, input_size: tuple[int, int]) -> SSD:
    """The same detector (shared backbone and head modules) for inputs of ``input_size`` (width, height).

    Anchor scales are multiplied by ``old_width / new_width`` so that anchors keep their
    size in pixels (the input must keep the aspect ratio). Relative scales above 1 are
    clipped to 1 by torchvision, so only the largest anchors can differ.
    """
    t = model.transform
    old = t.fixed_size
    if old is None:
        raise ValueError("model.transform has no fixed_size")
    factor = _scale_factor(tuple(old), tuple(input_size))
    gen = model.anchor_generator
    anchors = DefaultBoxGenerator(gen.aspect_ratios, scales=_scaled(gen.scales, factor), steps=gen.steps,
                                  clip=gen.clip)
    num_classes = int(model.head.classification_head.num_columns)
    out = SSD(model.backbone, anchors, (int(input_size[0]), int(input_size[1])), num_classes,
              image_mean=list(t.image_mean), image_std=list(t.image_std), head=model.head,
              score_thresh=model.score_thresh, nms_thresh=model.nms_thresh,
              detections_per_img=model.detections_per_img, topk_candidates=model.topk_candidates)
    out.neg_to_pos_ratio = model.neg_to_pos_ratio
    out.proposal_matcher = model.proposal_matcher
    out.train(model.training)
    return out


def collate(batch: Sequence[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """List of items -> (images, targets), the torchvision detection call format."""
    return [b[0] for b in batch], [b[1] for b in batch]


@dataclass
class PersonTrainingResult:
    """What :func:`train_person_detector` did: steps run, seconds, and the loss per step."""

    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    images: int = 0

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")


def train_person_detector(model: SSD, dataset: VideoPersonDataset, *, steps: int, batch_size: int = 8,
                          optimizer: str = "adamw", lr: float = 2e-3, weight_decay: float = 1e-4,
                          momentum: float = 0.9, warmup_steps: int = 50, seed: int = 0,
                          checkpoint: str | Path | None = None, checkpoint_every: int = 0,
                          time_budget_s: float | None = None,
                          log: Callable[[str], None] | None = None, log_every: int = 25) -> PersonTrainingResult:
    """Train ``model`` in place for ``steps`` batches; linear warm-up then cosine decay to 0.

    A loop of its own rather than :func:`faceopt.train.train`: AdamW with a warm-up and
    cosine schedule (``faceopt.train`` is SGD with step milestones, the thesis's recipe for
    recognition), a time budget, and the committed detector weights of page 03 were made
    by exactly this loop.

    Batches are drawn without replacement from a permutation of ``dataset`` seeded by
    ``seed`` (a new permutation and, via ``dataset.set_epoch``, new crops each epoch).
    ``optimizer``: ``"adamw"`` or ``"sgd"`` (with ``momentum``; weight decay on all
    parameters). Stops early, after a whole step, once ``time_budget_s`` is spent. Writes
    ``{"model": state_dict, "step", "input_size", "anchor_scales"}`` to ``checkpoint`` (via
    a temporary file and ``os.replace``) every ``checkpoint_every`` steps and at the end.
    """
    if steps < 1 or batch_size < 2:
        raise ValueError("steps must be >= 1 and batch_size >= 2 (batch norm on the 1x1 extra maps)")
    if optimizer == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, steps - warmup_steps)))

    schedule = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    result = PersonTrainingResult(steps=0, seconds=0.0)
    order: list[int] = []
    epoch = -1
    start = time.perf_counter()
    for step in progress(range(steps), desc="train person detector", total=steps):
        batch_idx: list[int] = []
        while len(batch_idx) < batch_size:
            if not order:
                epoch += 1
                dataset.set_epoch(epoch)
                order = torch.randperm(len(dataset), generator=gen).tolist()
            batch_idx.append(order.pop())
        images, targets = collate([dataset[i] for i in batch_idx])
        losses = model(images, targets)
        loss = losses["bbox_regression"] + losses["classification"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        result.losses.append(float(loss.detach()))
        result.steps = step + 1
        result.images += len(images)
        result.seconds = time.perf_counter() - start
        if log is not None and (step % log_every == 0 or step == steps - 1):
            recent = result.losses[-log_every:]
            log(f"step {step + 1}/{steps} epoch {epoch} loss {np.mean(recent):.4f} "
                f"(reg {losses['bbox_regression'].item():.3f} cls {losses['classification'].item():.3f}) "
                f"lr {schedule.get_last_lr()[0]:.2e} {result.images_per_second:.2f} img/s")
        if checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
            _save_checkpoint(model, result.steps, Path(checkpoint))
        if time_budget_s is not None and result.seconds >= time_budget_s:
            if log is not None:
                log(f"time budget {time_budget_s:.0f} s spent after {result.steps} steps")
            break
    if checkpoint is not None:
        _save_checkpoint(model, result.steps, Path(checkpoint))
    model.eval()
    return result


def _save_checkpoint(model: SSD, step: int, path: Path) -> None:
    atomic_torch_save({"model": model.state_dict(), "step": step, "input_size": tuple(model.transform.fixed_size),
                  "anchor_scales": list(model.anchor_generator.scales)}, path)


@torch.inference_mode()
def predict_persons(model: SSD, frames: Sequence[np.ndarray], *, batch_size: int = 4
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per BGR frame: (boxes float32 [N, 4] in frame pixels, scores float32 [N]), class-1 detections."""
    was_training = model.training
    model.eval()
    out: list[tuple[np.ndarray, np.ndarray]] = []
    try:
        for i in progress(range(0, len(frames), batch_size), desc="detect persons",
                          total=math.ceil(len(frames) / batch_size)):
            dets = model([bgr_to_tensor(f) for f in frames[i:i + batch_size]])
            for d in dets:
                keep = d["labels"] == 1
                out.append((d["boxes"][keep].numpy().astype(np.float32),
                            d["scores"][keep].numpy().astype(np.float32)))
    finally:
        model.train(was_training)
    return out


def evaluate_person_detector(model: SSD, frames: Sequence[np.ndarray], gt: Sequence[np.ndarray], *,
                             iou: float = 0.5, batch_size: int = 4) -> float:
    """mAP@``iou`` (:func:`~faceopt.detection.metrics.mean_average_precision`) of ``model`` on BGR ``frames``."""
    if len(frames) != len(gt):
        raise ValueError(f"{len(frames)} frames but {len(gt)} ground-truth lists")
    return mean_average_precision(predict_persons(model, frames, batch_size=batch_size), list(gt), iou=iou)


#: The committed detector: trained by ``python -m faceopt.detection.person_training`` (see :func:`main`).
TRAIN_FRAMES = range(0, 398)
TEST_FRAMES = range(398, 795)


def load_person_detector(path: str | Path) -> SSD:
    """The full-frame (768x576) person detector from a checkpoint of :func:`train_person_detector`.

    Raises ``FileNotFoundError`` (with the command that makes the file) or ``ValueError``
    naming the file when it is not such a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; train it with `faceopt person-detector --preset vtest "
                                f"--out {path}` (about 16 minutes on one CPU core)")
    fix = f"make it again with `faceopt person-detector --preset vtest --out {path}`"
    try:
        state = load_torch_file(path, fix=fix)
        model = build_person_detector(tuple(state["input_size"]), width_mult=float(state.get("width_mult", 0.5)),
                                      seed=None)
        model.load_state_dict(state["model"])
    except CheckpointError as exc:   # its message names the file and ends with the fix
        raise ValueError(f"{path}: not a person-detector checkpoint ({exc})") from exc
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:   # not its contents
        raise ValueError(f"{path}: not a person-detector checkpoint ({type(exc).__name__}: {exc}); {fix}") from exc
    return with_input_size(model, FRAME_SIZE).eval()


@dataclass(frozen=True)
class PersonDetectorRecipe:
    """How the committed person detector was made: the data, the model and the optimiser (a preset)."""

    steps: int = 1250
    crop: tuple[int, int] = (384, 288)
    """(width, height) of the random training crops, at the frame's own resolution."""
    flip: bool = True
    width_mult: float = 0.5
    batch_size: int = 8
    optimizer: str = "adamw"
    lr: float = 2e-3
    warmup_steps: int = 50
    seed: int = 0
    checkpoint_every: int = 200
    train_frames: tuple[int, int] = (TRAIN_FRAMES.start, TRAIN_FRAMES.stop)
    """[start, stop) of the training frames; the test frames follow, to the end of the video."""


#: The named presets of ``faceopt person-detector --preset``; ``vtest`` made the committed weights.
PRESETS = {"vtest": PersonDetectorRecipe()}

#: Where the committed detector lives, relative to :mod:`faceopt.resources`.
COMMITTED = ("runs", "person_detector", "ssdlite_mobilenetv2_vtest.pt")


def make_person_detector(recipe: PersonDetectorRecipe, out: str | Path, *, video: str | Path | None = None,
                         annotations: str | Path | None = None, steps: int | None = None,
                         log: Callable[[str], None] | None = print) -> dict:
    """Train the vtest person detector by ``recipe`` (frames 0-397 for vtest), evaluate it on the frames after
    them, write the checkpoint ``out`` and its card ``out.with_suffix(".json")``; return the card.

    ``video`` defaults to the cached ``vtest.avi`` asset and ``annotations`` to the packaged
    pseudo-labels; ``steps`` overrides the recipe's (a shorter trial run).
    """
    out = Path(out)
    if video is None:
        video = asset_path("vtest.avi")
        video = video / "vtest.avi" if video.is_dir() else video
    frames = list(read_video(video))
    boxes, _ = load_annotations(annotations or default_annotation_path())
    steps = recipe.steps if steps is None else steps
    frame_size = (frames[0].shape[1], frames[0].shape[0])
    train, test = range(*recipe.train_frames), range(recipe.train_frames[1], len(frames))
    data = VideoPersonDataset(frames, boxes, list(train), crop_size=recipe.crop, flip=recipe.flip, seed=recipe.seed)
    model = build_person_detector(recipe.crop, frame_size=frame_size, width_mult=recipe.width_mult, seed=recipe.seed)
    res = train_person_detector(model, data, steps=steps, batch_size=recipe.batch_size, optimizer=recipe.optimizer,
                                lr=recipe.lr, warmup_steps=recipe.warmup_steps, seed=recipe.seed, checkpoint=out,
                                checkpoint_every=recipe.checkpoint_every, log=log)
    full = with_input_size(model, frame_size).eval()
    m = evaluate_person_detector(full, [frames[i] for i in test],
                                 [boxes.get(i, np.zeros((0, 4), np.float32)) for i in test])
    card = {"what": f"SSDlite + MobileNetV2 (width {recipe.width_mult}) person detector, our own weights, "
                    "trained from random initialisation",
            "recipe": {**asdict(recipe), "steps": steps}, "steps": res.steps, "seconds": round(res.seconds),
            "crops_per_s": res.images_per_second, f"map50_frames_{test.start}_{test.stop - 1}": m,
            "train_frames": [train.start, train.stop - 1],
            "annotations": str(annotations or "faceopt/resources/annotations/vtest_persons.json (pseudo-labels)"),
            "machine": f"{machine_description()}, {torch.get_num_threads()} torch thread(s)",
            "made": datetime.date.today().isoformat()}
    text = json.dumps(card, indent=1) + "\n"
    atomic_write_text(out.with_suffix(".json"), text)
    if log is not None:
        log(f"mAP@0.5 on frames {test.start}-{test.stop - 1}: {m:.3f}")
    return json.loads(text)


def main(argv: Sequence[str] | None = None) -> int:
    """``faceopt person-detector``: train the vtest person detector from a named preset and evaluate it."""
    p = argparse.ArgumentParser(prog="faceopt person-detector", description=main.__doc__)
    p.add_argument("--preset", choices=sorted(PRESETS), default="vtest", help="the recipe (default: vtest)")
    p.add_argument("--out", type=Path, required=True,
                   help=f"checkpoint to write, a .json card beside it (the committed one: src/faceopt/resources/"
                        f"{'/'.join(COMMITTED)})")
    p.add_argument("--steps", type=int, default=None, help="override the preset's steps (a trial run)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the committed weights: 1)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    make_person_detector(PRESETS[a.preset], a.out, steps=a.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
