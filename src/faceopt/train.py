"""One training loop for the face-recognition chapters: SGD, step schedule, checkpoints, DDP.

:func:`train` optimises every parameter of ``model`` with ``requires_grad`` (frozen class
centres, a frozen teacher stay as they are) by SGD with momentum 0.9 and weight decay 5e-4,
starting at lr 0.1 and dividing it by 10 at the given iterations (the thesis' settings).
The model is the whole trainable module, e.g. a
:class:`~faceopt.recognition.heads.FaceRecognizer` (backbone + margin head + loss), whose
``forward(images, labels)`` returns the loss; any other objective is a
``loss_fn(model, batch) -> scalar``.

* **Repeatable.** Shuffling uses a seeded sampler (``seed + epoch``), the global RNGs are
  seeded with ``seed + rank``, and the data loader never draws from them. Two CPU runs with
  the same seed end with identical weights.
* **Checkpoints** (``checkpoint_dir/last.pt``) hold model, optimiser, scheduler and scaler
  state, the step, every rank's RNG states (as tensors) and the config, in containers that
  ``torch.load(..., weights_only=True)`` accepts. They are written atomically (temporary file
  + ``os.replace``) by rank 0 only, every ``checkpoint_every`` steps and at the end. A run
  given the same ``checkpoint_dir`` resumes from ``last.pt`` and continues exactly: stopping
  at step k and resuming gives the same weights as never stopping (CPU, ``num_workers=0``;
  random augmentation inside loader workers is not replayed).
* **Distributed.** Under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` set) the loop
  joins the process group (gloo on CPU, NCCL on CUDA, one GPU per process), wraps the model
  in ``DistributedDataParallel``, shards each epoch with a ``DistributedSampler``, logs and
  writes checkpoints on rank 0 only, copies rank 0's buffers (BatchNorm statistics) to all
  ranks at the end so every process holds the saved model, and leaves the group. ``batch_size`` is per
  process: the global batch is ``batch_size * WORLD_SIZE``.

A two-process CPU demo (small conv net, frozen cosine class centres, the digits)::

    torchrun --standalone --nproc_per_node=2 -m faceopt.train --demo --max-steps 4 --out runs/demo

Thesis scale (MS1MV2, global batch 512, lr 0.1 divided by 10 at the thesis' iterations) is a
short script around :func:`train`, e.g. ``train_ms1mv2.py``::

    import os, torch
    from faceopt.data.recordio import RecordIOFaces
    from faceopt.models.mobilefacenet import MobileFaceNet
    from faceopt.recognition.heads import FaceRecognizer, MarginHead
    from faceopt.recognition.losses import CombinedMarginLoss
    from faceopt.train import TrainConfig, train

    world = int(os.environ.get("WORLD_SIZE", 1))
    data = RecordIOFaces("faces_emore/train.rec")          # MS1MV2, 85,742 identities
    model = FaceRecognizer(MobileFaceNet(embedding_size=128), MarginHead(128, 85742),
                           CombinedMarginLoss(s=64, m1=1, m2=0.5, m3=0))      # ArcFace
    cfg = TrainConfig(max_steps=M3, milestones=(M1, M2),   # iterations from the thesis
                      batch_size=512 // world, num_workers=8, amp=True,
                      checkpoint_dir="runs/ms1mv2", checkpoint_every=5000)
    train(model, data, cfg)

launched with one process per GPU; on one machine with 8 GPUs::

    torchrun --standalone --nproc_per_node=8 train_ms1mv2.py

and on two machines with 4 GPUs each (run on both, ``--node_rank=0`` on the machine at
``--master_addr``, ``--node_rank=1`` on the other)::

    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=4 \\
             --master_addr=10.0.0.1 --master_port=29500 train_ms1mv2.py

Every process must see the data and ``checkpoint_dir`` at the same path (shared storage);
rerunning the same command after an interruption resumes from ``runs/ms1mv2/last.pt``.
Resuming with another world size keeps the step count and schedule but not the exact order
of samples.
"""
from __future__ import annotations

import argparse
import bisect
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

# The checkpoint helpers keep the names the training loop calls them by (its code is unchanged from
# before they moved to faceopt.checkpoint; see faceopt.fingerprint.SAME_RESULTS).
from faceopt.checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from faceopt.checkpoint import resume_fields as _resume_fields
from faceopt.checkpoint import rng_state as _rng_state
from faceopt.checkpoint import set_rng_state as _set_rng_state
from faceopt.config import check_choice, resolve_device, seed_everything
from faceopt.data.digits import load_digits_split
from faceopt.progress import progress as progress_bar

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "Callback",
    "CheckpointError",
    "train",
    "lr_at",
    "save_checkpoint",
    "load_checkpoint",
    "state_checksum",
    "main",
]

log = logging.getLogger("faceopt.train")

CHECKPOINT_NAME = "last.pt"


@dataclass
class TrainConfig:
    """Settings of :func:`train`; defaults are the thesis' optimiser values.

    Training stops after ``max_steps`` optimiser steps or ``epochs`` epochs, whichever
    comes first (at least one must be given). ``milestones`` are in steps or, with
    ``milestone_unit="epochs"``, in epochs; the lr is multiplied by ``gamma`` at each.
    ``checkpoint_every=0`` writes only the final checkpoint (when ``checkpoint_dir`` is set).
    ``amp`` applies on CUDA only (``amp_dtype`` bfloat16, or float16 with a GradScaler).
    """

    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple[int, ...] = ()
    milestone_unit: str = "steps"
    gamma: float = 0.1
    warmup_steps: int = 0
    seed: int = 0
    num_workers: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    resume: bool = True
    amp: bool = False
    amp_dtype: str = "bfloat16"
    device: str = "auto"
    log_every: int = 10
    progress: bool = True
    deterministic: bool = False
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        if self.epochs is None and self.max_steps is None:
            raise ValueError("TrainConfig needs epochs or max_steps")
        for name in ("epochs", "max_steps"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.log_every < 1 or self.checkpoint_every < 0 or self.num_workers < 0:
            raise ValueError("log_every must be >= 1, checkpoint_every and num_workers >= 0")
        self.milestones = tuple(int(m) for m in self.milestones)
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing, got {self.milestones}")
        check_choice("milestone_unit", self.milestone_unit, ("steps", "epochs"))
        check_choice("amp_dtype", self.amp_dtype, ("bfloat16", "float16"))
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        if self.checkpoint_dir is not None:
            self.checkpoint_dir = str(self.checkpoint_dir)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (lists, not tuples), safe for ``weights_only`` loading and JSON."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d


@dataclass
class TrainResult:
    """What a run did. ``steps`` counts all optimiser steps so far, including resumed ones.

    ``loss_history`` holds ``(step, mean loss over the log interval, averaged over ranks)``;
    ``images_per_s`` counts images of all ranks over the steps run in this call.
    """

    steps: int
    final_loss: float
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    images_per_s: float = 0.0
    wall_time_s: float = 0.0
    resumed_from: int | None = None
    checkpoint: Path | None = None
    world_size: int = 1
    device: str = "cpu"


# ----------------------------------------------------------------------------- schedule

def lr_at(step: int, config: TrainConfig, steps_per_epoch: int = 1) -> float:
    """Learning rate of optimiser step ``step`` (0-based): ``lr * gamma ** #(milestones <= step)``,
    times ``(step + 1) / warmup_steps`` during a linear warm-up of ``warmup_steps`` steps."""
    scale = steps_per_epoch if config.milestone_unit == "epochs" else 1
    passed = bisect.bisect_right([m * scale for m in config.milestones], step)
    warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    return config.lr * config.gamma ** passed * warm


# ----------------------------------------------------------------------------- distributed

@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def active(self) -> bool:
        return self.world_size > 1


def _setup_distributed(device: str) -> tuple[_Dist, torch.device]:
    """Join the process group torchrun describes (if any); the device this process uses."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if world <= 1:
        return _Dist(), dev
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
        owns = True
    return _Dist(dist.get_rank(), dist.get_world_size(), local, owns), dev


def _mean_over_ranks(values: Sequence[float], d: _Dist, device: torch.device) -> list[float]:
    if not d.active:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / d.world_size).tolist()


def state_checksum(module: nn.Module) -> str:
    """SHA-256 over the bytes of every tensor in ``module.state_dict()`` (names included)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- data

class _ResumableSampler(Sampler[int]):
    """A seeded ``DistributedSampler`` (also for one process) that can skip its first indices."""

    def __init__(self, dataset: Dataset, d: _Dist, seed: int) -> None:
        self.base = DistributedSampler(dataset, num_replicas=d.world_size, rank=d.rank,  # type: ignore[var-annotated]
                                       shuffle=True, seed=seed, drop_last=True)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.base.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.base), self.skip, None)

    def __len__(self) -> int:
        return len(self.base) - self.skip


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(_to_device(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def _batch_len(obj: Any) -> int:
    if isinstance(obj, Tensor):
        return int(obj.shape[0]) if obj.ndim else 1
    if isinstance(obj, Mapping):
        return _batch_len(next(iter(obj.values())))
    if isinstance(obj, (list, tuple)) and obj:
        return _batch_len(obj[0])
    return 1


def _default_loss(model: nn.Module, batch: Any) -> Tensor:
    """``model(*batch)`` (e.g. ``model(images, labels)``), ``model(**batch)`` for dicts."""
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (list, tuple)):
        return model(*batch)
    return model(batch)


# ----------------------------------------------------------------------------- train

def train(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    *,
    loss_fn: Callable[[nn.Module, Any], Tensor] | None = None,
    params: Iterable[Any] | None = None,
    on_step: Callable[[int, float, float], None] | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train ``model`` on ``dataset`` with SGD and a step schedule; see the module docstring.

    ``loss_fn(model, batch)`` returns a scalar loss (default ``model(*batch)``); under DDP it
    receives the wrapped model and must call it (``model(...)``) for gradients to be synced.
    ``params`` (parameters or param-group dicts) defaults to every parameter with
    ``requires_grad``; frozen ones are always left out. ``on_step(step, loss, lr)`` runs
    after every optimiser step (``step`` counts completed steps, ``lr`` is the one used);
    ``callbacks`` (:class:`Callback`) also see each logging interval and checkpoint.
    The model is trained in place (on the chosen device) and left in train mode.

    The loop itself is a few named steps: :func:`_setup` (optimiser, seeded loader, step
    budget), :func:`_resume` (or seed), :func:`_wrap` (DDP), then per step
    :func:`_optimiser_step`, :func:`_log_interval` and :func:`_checkpoint`.
    """
    device_name = resolve_device(config.device)
    d, device = _setup_distributed(device_name)
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        hooks = [*callbacks, *([_OnStep(on_step)] if on_step is not None else [])]
        return _train(model, dataset, config, d, device, loss_fn or _default_loss, params, hooks)
    finally:
        if config.deterministic:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        if d.owns_group and dist.is_initialized():
            dist.destroy_process_group()


class Callback:
    """Hooks into :func:`train` (in the manner of insightface's arcface_torch callbacks).

    Subclass and override what you need; every hook runs on every rank, after the
    step, log or checkpoint it names. ``run`` is the live :class:`TrainState`.
    """

    def on_step(self, run: TrainState, loss: Tensor, lr: float) -> None:
        """After each optimiser step (``run.step`` counts completed steps; ``lr`` was used)."""

    def on_log(self, run: TrainState, mean_loss: float, lr: float) -> None:
        """After each logging interval (``mean_loss`` averaged over the interval and the ranks)."""

    def on_checkpoint(self, run: TrainState, path: Path) -> None:
        """After ``last.pt`` was written (rank 0 writes; every rank calls this)."""


class _OnStep(Callback):
    """The ``on_step(step, loss, lr)`` function argument of :func:`train` as a callback."""

    def __init__(self, fn: Callable[[int, float, float], None]) -> None:
        self.fn = fn

    def on_step(self, run: TrainState, loss: Tensor, lr: float) -> None:
        self.fn(run.step, float(loss.detach().float().item()), lr)


@dataclass
class TrainState:
    """What a training run holds while it runs (built by :func:`train`; read by callbacks)."""

    model: nn.Module
    net: nn.Module                 # the model, wrapped in DistributedDataParallel under torchrun
    config: TrainConfig
    dist: _Dist
    device: torch.device
    optimizer: torch.optim.Optimizer
    scaler: Any
    sampler: _ResumableSampler
    loader: DataLoader
    loader_gen: torch.Generator
    steps_per_epoch: int
    total: int
    checkpoint_path: Path | None
    step: int = 0
    history: list[tuple[int, float]] = field(default_factory=list)
    last_loss: float = float("nan")
    resumed_from: int | None = None
    images: int = 0

    @property
    def is_main(self) -> bool:
        return self.dist.rank == 0


def _param_groups(model: nn.Module, params: Iterable[Any] | None) -> list[Any]:
    """Every trainable parameter, or the given parameters/groups without frozen ones."""
    if params is None:
        groups: list[Any] = [p for p in model.parameters() if p.requires_grad]
    else:
        groups = []
        for g in params:
            if isinstance(g, Mapping):
                groups.append({**g, "params": [p for p in g["params"] if p.requires_grad]})
            elif g.requires_grad:
                groups.append(g)
    if not groups:
        raise ValueError("model has no parameters with requires_grad=True to train")
    return groups


def _setup(model: nn.Module, dataset: Dataset, config: TrainConfig, d: _Dist, device: torch.device,
           params: Iterable[Any] | None) -> TrainState:
    """Optimiser, seeded loader, step budget and gradient scaler of a run."""
    model.to(device)
    optimizer = torch.optim.SGD(_param_groups(model, params), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    sampler = _ResumableSampler(dataset, d, config.seed)
    loader_gen = torch.Generator()  # keeps the loader off the global RNG (exact resume)
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, drop_last=True,
                        num_workers=config.num_workers, pin_memory=device.type == "cuda",
                        generator=loader_gen, persistent_workers=False)
    steps_per_epoch = len(sampler.base) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"dataset of {len(dataset)} samples is too small for batch_size "  # type: ignore[arg-type]
                         f"{config.batch_size} x {d.world_size} process(es)")
    total = min(s for s in (config.max_steps,
                            None if config.epochs is None else config.epochs * steps_per_epoch)
                if s is not None)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp and config.amp_dtype == "float16" else None
    ckpt_path = Path(config.checkpoint_dir) / CHECKPOINT_NAME if config.checkpoint_dir else None
    return TrainState(model, model, config, d, device, optimizer, scaler, sampler, loader, loader_gen,
                      steps_per_epoch, total, ckpt_path)


def _resume(run: TrainState) -> None:
    """Continue from ``last.pt`` if there is one (and ``config.resume``); else seed the RNGs."""
    path, config, d = run.checkpoint_path, run.config, run.dist
    if path is None or not config.resume or not path.exists():
        seed_everything(config.seed + d.rank, threads=None)
        return
    state = load_checkpoint(path)
    try:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        if run.scaler is not None and state.get("scaler"):
            run.scaler.load_state_dict(state["scaler"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit this model/optimiser "
                              f"({type(exc).__name__}: {exc}); delete it to start afresh") from exc
    run.step, run.history, run.last_loss, rngs = _resume_fields(state, path, run.total)
    if len(rngs) != d.world_size:
        warnings.warn(f"{path} was written by {len(rngs)} process(es), this run has "
                      f"{d.world_size}: the sample order after resuming differs", stacklevel=4)
    try:
        _set_rng_state(rngs[d.rank] if d.rank < len(rngs) else rngs[0], run.device)
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path} holds a damaged RNG state ({type(exc).__name__}: {exc}); "
                              "delete it to start afresh") from exc
    run.resumed_from = run.step
    if run.is_main:
        log.info("resumed from %s at step %d", path, run.step)


def _wrap(run: TrainState) -> None:
    """DistributedDataParallel under torchrun; train mode."""
    if run.dist.active:
        run.net = nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None,
            find_unused_parameters=run.config.find_unused_parameters)
    run.net.train()


def _batches(run: TrainState) -> Iterator[Any]:
    """The batches from ``run.step`` on, each epoch shuffled by its own seed (exact resume)."""
    data_iter: Iterator[Any] | None = None
    step, per_epoch, config = run.step, run.steps_per_epoch, run.config
    while True:
        if data_iter is None or step % per_epoch == 0:
            run.sampler.set_epoch(step // per_epoch, skip=(step % per_epoch) * config.batch_size)
            run.loader_gen.manual_seed(config.seed * 1_000_003 + step // per_epoch)
            data_iter = iter(run.loader)
        yield _to_device(next(data_iter), run.device)
        step += 1


def _optimiser_step(run: TrainState, batch: Any, loss_fn: Callable[[nn.Module, Any], Tensor]) -> tuple[Tensor, float]:
    """One SGD step at the scheduled learning rate; returns the loss and the lr used."""
    config = run.config
    lr = lr_at(run.step, config, run.steps_per_epoch)
    for g in run.optimizer.param_groups:
        g["lr"] = lr
    use_amp = config.amp and run.device.type == "cuda"
    amp_dtype = torch.bfloat16 if config.amp_dtype == "bfloat16" else torch.float16
    with torch.autocast("cuda", dtype=amp_dtype) if use_amp else nullcontext():
        loss = loss_fn(run.net, batch)
    if loss.ndim != 0:
        raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
    run.optimizer.zero_grad(set_to_none=True)
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        loss.backward()
        run.optimizer.step()
    run.step += 1
    run.images += _batch_len(batch) * run.dist.world_size
    return loss, lr


def _log_interval(run: TrainState, interval: list[Tensor], lr: float, bar: Any) -> float:
    """Mean loss of the interval over the ranks, into the history; stops on a non-finite loss."""
    mean, last = _mean_over_ranks([torch.stack(interval).float().mean().item(), interval[-1].float().item()],
                                  run.dist, run.device)
    run.history.append((run.step, mean))
    run.last_loss = last
    if not math.isfinite(mean):
        raise FloatingPointError(f"loss became {mean} at step {run.step}")
    if run.is_main:
        log.info("step %d/%d loss %.4f lr %.4g", run.step, run.total, mean, lr)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{mean:.4f}", lr=f"{lr:.3g}")
    return mean


def _checkpoint(run: TrainState) -> None:
    """Write ``last.pt`` (rank 0) with every rank's RNG state."""
    rng = _rng_state(run.device)
    rngs: list[Any] = [rng]
    if run.dist.active:
        rngs = [None] * run.dist.world_size
        dist.all_gather_object(rngs, rng)
    if run.is_main and run.checkpoint_path is not None:
        config = run.config
        save_checkpoint({
            "format": CHECKPOINT_FORMAT,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": {"step": run.step, "base_lr": config.lr, "gamma": config.gamma,
                          "milestones": list(config.milestones), "unit": config.milestone_unit,
                          "steps_per_epoch": run.steps_per_epoch},
            "scaler": run.scaler.state_dict() if run.scaler is not None else {},
            "step": run.step,
            "epoch": run.step // run.steps_per_epoch,
            "last_loss": run.last_loss,
            "loss_history": [[s, v] for s, v in run.history],
            "rng": rngs,
            "config": config.to_dict(),
            "world_size": run.dist.world_size,
        }, run.checkpoint_path)


def _train(model: nn.Module, dataset: Dataset, config: TrainConfig, d: _Dist, device: torch.device,
           loss_fn: Callable[[nn.Module, Any], Tensor], params: Iterable[Any] | None,
           callbacks: Sequence[Callback]) -> TrainResult:
    """The loop: set up, resume, then step, log and checkpoint until the step budget is spent."""
    run = _setup(model, dataset, config, d, device, params)
    _resume(run)
    _wrap(run)
    start = run.step
    bar = progress_bar(range(start, run.total), desc="train", total=run.total - start) \
        if (config.progress and run.is_main) else range(start, run.total)
    interval: list[Tensor] = []
    batches = _batches(run)
    t0 = time.perf_counter()
    for _ in bar:
        loss, lr = _optimiser_step(run, next(batches), loss_fn)
        interval.append(loss.detach())
        if run.step % config.log_every == 0 or run.step == run.total:
            mean = _log_interval(run, interval, lr, bar)
            interval = []
            for cb in callbacks:
                cb.on_log(run, mean, lr)
        if run.checkpoint_path is not None and (run.step == run.total or
                                                (config.checkpoint_every and run.step % config.checkpoint_every == 0)):
            _checkpoint(run)
            for cb in callbacks:
                cb.on_checkpoint(run, run.checkpoint_path)
        for cb in callbacks:
            cb.on_step(run, loss, lr)
    if hasattr(bar, "close"):
        bar.close()
    if d.active:  # DDP syncs buffers (BatchNorm statistics) only before a forward: match rank 0's
        for buf in model.buffers():
            dist.broadcast(buf, src=0)
    wall = time.perf_counter() - t0
    path = run.checkpoint_path
    return TrainResult(steps=run.step, final_loss=run.last_loss, loss_history=run.history,
                       images_per_s=run.images / wall if wall > 0 and run.images else 0.0, wall_time_s=wall,
                       resumed_from=run.resumed_from, checkpoint=path if path and path.exists() else None,
                       world_size=d.world_size, device=str(device))


# ----------------------------------------------------------------------------- demo / CLI

class DemoNet(nn.Module):
    """A small conv net with frozen cosine class centres (as in MarginDistillation).

    ``forward(x, y)`` returns the cross-entropy of ``s * cos(embedding, centre)``.
    """

    def __init__(self, num_classes: int = 10, embedding_size: int = 32, s: float = 16.0) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, embedding_size),
        )
        self.centres = nn.Parameter(torch.randn(num_classes, embedding_size), requires_grad=False)
        self.s = s

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        cos = F.normalize(self.backbone(x), dim=1) @ F.normalize(self.centres, dim=1).T
        return F.cross_entropy(self.s * cos, y)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m faceopt.train",
        description="Train the tiny demo (digits, conv net, frozen class centres); launch with "
                    "torchrun for several processes. Face models are trained from Python with "
                    "faceopt.train.train() (see the module docstring).")
    p.add_argument("--demo", action="store_true", help="train the demo model (required)")
    p.add_argument("--out", required=True, help="output folder: last.pt, result.json, checksums")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32, help="per process")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--milestones", type=int, nargs="*", default=[], help="steps where lr /= 10")
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--amp", action="store_true")
    p.add_argument("--log-every", type=int, default=1)
    p.add_argument("--size", type=int, default=16, help="demo image side")
    args = p.parse_args(argv)
    if not args.demo:
        p.error("only --demo can be trained from the command line; call faceopt.train.train() "
                "for face models (see the module docstring)")
    if args.max_steps is None and args.epochs is None:
        args.max_steps = 20
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faceopt.train --demo ...``; under torchrun every process runs this."""
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    seed_everything(args.seed, threads=None)  # same initial weights on every rank
    split, _ = load_digits_split(size=args.size, channels=1)
    dataset = torch.utils.data.TensorDataset(split.x, split.y)
    model = DemoNet()
    cfg = TrainConfig(max_steps=args.max_steps, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, milestones=tuple(args.milestones), seed=args.seed,
                      checkpoint_dir=str(out), checkpoint_every=args.checkpoint_every,
                      device=args.device, amp=args.amp, log_every=args.log_every)
    result = train(model, dataset, cfg)
    (out / f"weights-rank{rank}.sha256").write_text(state_checksum(model) + "\n")
    if rank == 0:
        summary = dataclasses.asdict(result)
        summary["checkpoint"] = str(result.checkpoint) if result.checkpoint else None
        (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"trained {result.steps} steps on {result.world_size} process(es), "
              f"final loss {result.final_loss:.4f}, {result.images_per_s:.0f} images/s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
