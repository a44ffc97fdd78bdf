"""The cache of page 06's trainings and evaluations: one JSON per run, keyed by settings and code.

:func:`run_nist` trains what is missing of a :class:`~faceopt.recognition.nist_experiments.NistPreset`
and writes ``run_dir/<preset>-<key>/runs/<run>.json``: ``teacher-resnet100``, ``teacher-resnet50``,
``student-arcface-seed<k>`` and ``student-margin_distillation-seed<k>`` (the latter with its INT8
form's evaluation too). Each record holds the training statistics, the machine, the git revision, the
code fingerprint and :func:`faceopt.recognition.nist_eval.evaluate`'s metrics. The rendered training
images, the teacher's weights (which the distilled students need) and checkpoints stay in
``cache_dir``. With ``train_missing=False`` (the book's full page) a missing run stops with
:class:`~faceopt.recognition.runs.StaleRunError` naming the command that makes it.

From a shell (``--jobs N``: N processes share the device; the teachers and the ArcFace students first,
then the distilled students once the iResNet-100-like teacher is there)::

    faceopt nist --preset full --run-dir src/faceopt/resources/runs/nist --device cuda --jobs 6
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from faceopt.checkpoint import CheckpointError, load_torch_file
from faceopt.config import resolve_device
from faceopt.fingerprint import code_fingerprint
from faceopt.io import atomic_torch_save, atomic_write_text
from faceopt.provenance import git_revision, machine_description
from faceopt.recognition import nist_eval as ev
from faceopt.recognition import nist_experiments as nx
from faceopt.recognition.runs import StaleRunError, missing_runs_message, print_folder_or_error, read_records, write_run_config

__all__ = ["FORMAT", "PRESETS", "run_names", "run_folder", "render_training_set", "run_nist", "run_parallel",
           "load_nist_runs", "main"]

FORMAT = "faceopt.nist/1"
_REPO = Path(__file__).resolve().parents[3]
DEFAULT_CACHE = Path("data") / "cache" / "nist"

PRESETS: dict[str, nx.NistPreset] = {
    # about a minute on 2 CPU cores: every step runs, the numbers mean nothing
    "smoke": nx.NistPreset(name="smoke", size=32, identities=16, images_per_identity=4, teacher_width=0.125,
                           teacher_steps=3, student_steps=3, batch_groups=4, group=2, seeds=(0,),
                           condition_identities=6, condition_images=2, residents=3, visits_per_resident=1,
                           negative_visitors=10, distractors=8, megaface_probe_identities=4, megaface_probe_images=2,
                           megaface_distractors=20, bootstrap=20, calibration_images=8, amp=False),
    # the book's page: minutes on one GPU (sized by .ci/gpu_probe_nist.py), many hours on 2 CPU cores
    "full": nx.NistPreset(name="full", size=64, identities=1000, images_per_identity=24, teacher_width=0.5,
                          teacher_steps=2000, student_steps=1000, batch_groups=64),
}


def run_names(preset: nx.NistPreset) -> list[str]:
    """Every run of the preset: the two teachers, then each student method and seed."""
    return ([f"teacher-{t}" for t in nx.TEACHERS]
            + [f"student-{m}-seed{s}" for s in preset.seeds for m in nx.STUDENT_METHODS])


def run_folder(preset: nx.NistPreset, run_dir: str | os.PathLike) -> Path:
    """``run_dir/<preset name>-<key>``: results of different settings or code never mix."""
    return Path(run_dir) / f"{preset.name}-{preset.key()}"


def _run_path(folder: Path, name: str) -> Path:
    return folder / "runs" / f"{name}.json"


def _render_chunk(args: tuple[dict[str, Any], int, int]) -> np.ndarray:
    from faceopt.data.synthetic_faces import SyntheticFaces

    kwargs, start, stop = args
    x, _ = SyntheticFaces(**kwargs, workers=1).batch(np.arange(start, stop))
    return x.mul(127.5).add_(127.5).round_().clamp_(0, 255).to(torch.uint8).numpy()


def render_training_set(preset: nx.NistPreset, *, processes: int | None = None, chunk: int = 512
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The training identities as uint8 RGB ``[N, 3, S, S]`` with labels, rendered in ``processes`` processes
    (the generator holds the GIL: threads do not scale; measured 231 images/s on 16 threads of a GPU machine)."""
    kwargs = {"identities": preset.identities, "images_per_identity": preset.images_per_identity, "size": preset.size,
              "seed": preset.data_seed, "difficulty": preset.difficulty, "spread": preset.spread}
    n = preset.identities * preset.images_per_identity
    jobs = [(kwargs, start, min(start + chunk, n)) for start in range(0, n, chunk)]
    workers = max(1, min(processes or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        parts = [_render_chunk(j) for j in jobs]
    else:
        # spawn, not fork: a forked child of a process whose torch/OpenMP threads are running can deadlock
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_render_chunk, jobs))
    labels = torch.arange(preset.identities).repeat_interleave(preset.images_per_identity)
    return torch.from_numpy(np.concatenate(parts)), labels


def _training_set(preset: nx.NistPreset, cache: Path) -> tuple[torch.Tensor, torch.Tensor]:
    path = cache / f"train-{preset.key()}.pt"
    if path.exists():
        d = load_torch_file(path, fix="delete it to render the images again", mmap=True)
        try:
            return d["images"], d["labels"]
        except (KeyError, TypeError, IndexError) as exc:
            raise CheckpointError(f"{path}: not a training-image cache ({type(exc).__name__}: {exc}); "
                                  "delete it to render the images again") from exc
    images, labels = render_training_set(preset)
    atomic_torch_save({"images": images, "labels": labels}, path)
    return images, labels


def _made_by(device: str) -> dict[str, str]:
    machine = torch.cuda.get_device_name(0) if device == "cuda" else machine_description(with_torch=False)
    return {"machine": machine, "torch": torch.__version__, "git_rev": git_revision(_REPO),
            "code": code_fingerprint(nx.NIST_CODE)}


def _missing_message(preset: nx.NistPreset, folder: Path, missing: Sequence[str]) -> str:
    return (f"{missing_runs_message(folder, preset, missing)}. Make them with "
            f"`faceopt nist --preset {preset.name} --run-dir {folder.parent} --device cuda --jobs 6` "
            "(minutes on one GPU; many hours on a CPU), or run the chapter at smoke scale.")


def _teacher(preset: nx.NistPreset, cache: Path, name: str, images: torch.Tensor, labels: torch.Tensor, dev: str
             ) -> tuple[Any, Any, dict[str, Any]]:
    """Train a teacher, keeping its weights and head in the cache (the distilled students read them)."""
    backbone, head, stats = nx.train_teacher(name, preset, images, labels, device=dev,
                                             checkpoint_dir=cache / "ckpt" / f"{preset.key()}-teacher-{name}")
    atomic_torch_save({"backbone": backbone.state_dict(), "head": head.state_dict()},
                      cache / f"teacher-{name}-{preset.key()}.pt")
    return backbone, head, stats


def _load_teacher(preset: nx.NistPreset, cache: Path, name: str) -> tuple[Any, Any]:
    path = cache / f"teacher-{name}-{preset.key()}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the distilled students need teacher {name}'s weights; train it first "
                                f"(`faceopt nist ... --runs teacher-{name}`)")
    fix = f"delete it and train the teacher again (`faceopt nist ... --runs teacher-{name}`)"
    d = load_torch_file(path, fix=fix)
    try:
        backbone = nx.build_backbone(name, preset)
        backbone.load_state_dict(d["backbone"])
        head = nx.MarginHead(512, d["head"]["weight"].shape[0])
        head.load_state_dict(d["head"])
    except (RuntimeError, KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise CheckpointError(f"{path}: not teacher {name}'s weights ({type(exc).__name__}: {first}); {fix}") from exc
    return backbone.eval(), head


def _one_run(preset: nx.NistPreset, name: str, folder: Path, cache: Path, dev: str,
             images: torch.Tensor, labels: torch.Tensor, data: ev.EvalData) -> dict[str, Any]:
    t0 = time.perf_counter()
    record: dict[str, Any] = {"format": FORMAT, "run": name}
    if name.startswith("teacher-"):
        teacher = name.removeprefix("teacher-")
        backbone, _, stats = _teacher(preset, cache, teacher, images, labels, dev)
        record["params"] = sum(p.numel() for p in backbone.parameters())
    else:
        method, seed = name.removeprefix("student-").rsplit("-seed", 1)
        kw: dict[str, Any] = {}
        if method == "margin_distillation":
            t_backbone, t_head = _load_teacher(preset, cache, "resnet100")
            kw = {"teacher_head": t_head, "teacher": nx.teacher_embeddings(t_backbone, images, device=dev)}
        backbone, stats = nx.train_student(method, preset, images, labels, seed=int(seed), device=dev,
                                           checkpoint_dir=cache / "ckpt" / f"{preset.key()}-{name}", **kw)
        record.update(method=method, seed=int(seed), params=sum(p.numel() for p in backbone.parameters()))
    record["train"] = stats
    record["metrics"] = ev.evaluate(ev.torch_embedder(backbone, device=dev), data, preset)
    if name.startswith("student-margin_distillation"):
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:preset.calibration_images]
        # ONNX export and onnxruntime run on the CPU: the trained backbone may sit on the GPU
        record["int8"] = ev.evaluate_int8(backbone.cpu(), data, preset, nx.normalise(images[pick]))
    record["seconds"] = time.perf_counter() - t0
    return record | _made_by(dev)


def run_nist(preset: nx.NistPreset, run_dir: str | os.PathLike, *, runs: Sequence[str] | None = None,
             device: str = "auto", cache_dir: str | os.PathLike = DEFAULT_CACHE, train_missing: bool = True,
             log: Any = print) -> Path:
    """Train and evaluate every missing run (or only ``runs``, by name) in this process; return the folder."""
    dev, folder, cache = resolve_device(device), run_folder(preset, run_dir), Path(cache_dir)
    wanted = run_names(preset) if runs is None else list(runs)
    unknown = sorted(set(wanted) - set(run_names(preset)))
    if unknown:
        raise ValueError(f"unknown run(s) {', '.join(unknown)}; this preset has {', '.join(run_names(preset))}")
    todo = [n for n in wanted if not _run_path(folder, n).exists()]
    if todo and not train_missing:
        raise StaleRunError(_missing_message(preset, folder, todo))
    if not todo:
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    write_run_config(folder, FORMAT, preset, nx.NIST_CODE)
    images, labels = _training_set(preset, cache)
    data = ev.build_eval_data(preset)
    order = sorted(todo, key=lambda n: "margin_distillation" in n)  # teachers before the distilled students
    for name in order:
        record = _one_run(preset, name, folder, cache, dev, images, labels, data)
        atomic_write_text(_run_path(folder, name), json.dumps(record, indent=1, allow_nan=False) + "\n")
        log(f"{name}: {record['seconds']:.0f} s on {dev}")
    return folder


def run_parallel(preset: nx.NistPreset, run_dir: str | os.PathLike, *, jobs: int, device: str = "auto",
                 cache_dir: str | os.PathLike = DEFAULT_CACHE, log: Any = print, poll_s: float = 5.0) -> Path:
    """Every missing run in up to ``jobs`` processes: first the teachers and the ArcFace students, then the
    distilled students (they need the iResNet-100-like teacher). The training set is rendered once first."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    dev, folder, cache = resolve_device(device), run_folder(preset, run_dir), Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _training_set(preset, cache)
    log(f"training set rendered in {time.perf_counter() - t0:.0f} s")
    todo = [n for n in run_names(preset) if not _run_path(folder, n).exists()]
    stages = [[n for n in todo if "margin_distillation" not in n], [n for n in todo if "margin_distillation" in n]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    failed: list[str] = []
    for stage in stages:
        k = max(1, min(jobs, len(stage)))
        procs = []
        for i, chunk in enumerate(stage[j::k] for j in range(k)):
            if not chunk:
                continue
            log_path = folder / "logs" / f"{chunk[0]}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            args = ["--preset", preset.name, "--run-dir", str(run_dir), "--device", dev, "--cache-dir", str(cache),
                    "--runs", *chunk]
            with open(log_path, "w") as f:
                procs.append((log_path, subprocess.Popen([sys.executable, "-m", "faceopt.recognition.nist_runs", *args],
                                                         stdout=f, stderr=subprocess.STDOUT, env=env)))
        while any(p.poll() is None for _, p in procs):
            time.sleep(poll_s)
        failed += [str(path) for path, p in procs if p.returncode]
        done = sum(_run_path(folder, n).exists() for n in todo)
        log(f"{done}/{len(todo)} runs done after {time.perf_counter() - t0:.0f} s")
    if failed:
        raise RuntimeError(f"{len(failed)} process(es) failed; see {', '.join(failed)}")
    return folder


def load_nist_runs(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Every run record of a folder, by run name."""
    return {d["run"]: d for d in read_records(folder, FORMAT)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="faceopt nist",
                                description="Train and evaluate the teachers and students of thesis Chapter 4's evaluation.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    p.add_argument("--run-dir", required=True, help="folder for the run records")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="training images, teacher weights, checkpoints")
    p.add_argument("--runs", nargs="*", default=None, metavar="RUN", help="exactly these runs, e.g. teacher-resnet100")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--jobs", type=int, default=1, help="trainings at a time (processes sharing the device)")
    a = p.parse_args(argv)

    def make() -> Path:
        preset = PRESETS[a.preset]
        if a.jobs > 1:
            if a.runs is not None:
                raise ValueError("--jobs runs every missing run; leave out --runs")
            return run_parallel(preset, a.run_dir, jobs=a.jobs, device=a.device, cache_dir=a.cache_dir)
        return run_nist(preset, a.run_dir, runs=a.runs, device=a.device, cache_dir=a.cache_dir)

    return print_folder_or_error(make)


if __name__ == "__main__":
    sys.exit(main())
