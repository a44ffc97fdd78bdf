"""The cache of the device-tier trainings: one JSON per run, the first seed's weights, keyed by settings and code.

:func:`run_tiers` trains and evaluates what is missing of a :class:`~faceopt.system.tiers.TierPreset`
and writes ``run_dir/<preset>-<key>/runs/<candidate>-seed<k>.json`` (and
``weights/<candidate>.pt``, the first seed's backbone in float16, about 2-4 MB each, so that the
chapter can deploy and time the trained networks without retraining). The rendered images and
the checkpoints live in ``cache_dir`` (not in the run folder). With ``train_missing=False`` (the
book's full page) a missing run stops with :class:`~faceopt.recognition.runs.StaleRunError`,
which says how to regenerate it.

From a shell (``--jobs N`` trains N candidates at a time on one GPU, one CPU thread each)::

    faceopt tiers --preset full --run-dir src/faceopt/resources/runs/device_tiers --device cuda --jobs 15
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from faceopt.checkpoint import load_torch_file
from faceopt.config import resolve_device
from faceopt.fingerprint import code_fingerprint
from faceopt.io import atomic_torch_save, atomic_write_text
from faceopt.provenance import git_revision, machine_description
from faceopt.recognition.runs import (
    StaleRunError,
    missing_runs_message,
    parse_runs,
    print_folder_or_error,
    read_records,
    write_run_config,
)
from faceopt.system import tiers as tr

__all__ = ["FORMAT", "PRESETS", "run_folder", "run_tiers", "run_parallel", "load_tier_runs", "load_backbone", "main"]

FORMAT = "faceopt.device_tiers/1"
_REPO = Path(__file__).resolve().parents[3]
DEFAULT_CACHE = Path("data") / "cache" / "tiers"

#: Named settings (their values, not their names, key the run folder).
PRESETS: dict[str, tr.TierPreset] = {
    # seconds on 2 CPU cores: every step of the pipeline runs, the numbers mean nothing
    "smoke": tr.TierPreset(name="smoke", identities=12, images_per_identity=4, steps=4, batch_groups=4, group=2,
                           seeds=(0,), folds=2, pairs_per_fold=20, calibration_images=8),
    # the book's page: minutes on one GPU (15 trainings at a time), hours on 2 CPU cores
    "full": tr.TierPreset(name="full", identities=1000, images_per_identity=24, steps=1200, batch_groups=32),
}


def run_folder(preset: tr.TierPreset, run_dir: str | os.PathLike) -> Path:
    """``run_dir/<preset name>-<key>``: results of different settings or code never mix."""
    return Path(run_dir) / f"{preset.name}-{preset.key()}"


def _run_path(folder: Path, candidate: tr.Candidate, seed: int) -> Path:
    return folder / "runs" / f"{candidate.name}-seed{seed}.json"


def _weights_path(folder: Path, candidate: tr.Candidate) -> Path:
    return folder / "weights" / f"{candidate.name}.pt"


def _write_json(obj: Any, path: Path) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, allow_nan=False) + "\n")


def _data(preset: tr.TierPreset, cache_dir: Path, size: int, workers: int | None) -> tr.TierData:
    """The rendered data (cached as ``tiers-<key>.pt``) with training images at ``size`` pixels."""
    path = cache_dir / f"tiers-{preset.key()}.pt"
    if path.exists():
        try:
            d = load_torch_file(path, fix="delete it to rebuild", mmap=True)
            data = tr.TierData(d["images"], d["labels"], d["lfw"], d["agedb"])
        except Exception as exc:  # noqa: BLE001 - any unreadable cache is rebuilt by deleting it
            raise ValueError(f"{path}: unreadable data cache ({type(exc).__name__}: {exc}); delete it to rebuild") from exc
    else:
        data = tr.render_tier_data(preset, workers=workers)
        atomic_torch_save(data.to_dict(), path)
    if size != preset.render_size:
        sized = cache_dir / f"tiers-{preset.key()}-train{size}.pt"
        if sized.exists():
            images = load_torch_file(sized, fix="delete it to rebuild", mmap=True)
        else:
            images = tr.resize_images(data.images, size)
            atomic_torch_save(images, sized)
        data = tr.TierData(images, data.labels, data.lfw, data.agedb)
    return data


def _made_by(device: str) -> dict[str, str]:
    machine = torch.cuda.get_device_name(0) if device == "cuda" else machine_description(with_torch=False)
    return {"machine": machine, "torch": torch.__version__, "git_rev": git_revision(_REPO),
            "code": code_fingerprint(tr.TIER_CODE)}


def _missing_message(preset: tr.TierPreset, folder: Path, missing: Sequence[str]) -> str:
    return (f"{missing_runs_message(folder, preset, missing, 'tier run(s)')}. Regenerate them with "
            f"`faceopt tiers --preset {preset.name} --run-dir {folder.parent} --device cuda --jobs 15` "
            "(minutes on one GPU; hours on a CPU), or run the chapter at smoke scale.")


def _wanted(preset: tr.TierPreset, runs: Iterable[tuple[str, int]] | None) -> list[tuple[tr.Candidate, int]]:
    if runs is None:
        return preset.runs()
    by_name = {c.name: c for c in tr.CANDIDATES}
    wanted = []
    for name, seed in runs:
        if name not in by_name:
            raise ValueError(f"unknown candidate {name!r}; choose from {', '.join(by_name)}")
        wanted.append((by_name[name], int(seed)))
    return wanted


def run_tiers(preset: tr.TierPreset, run_dir: str | os.PathLike, *, runs: Iterable[tuple[str, int]] | None = None,
              device: str = "auto", cache_dir: str | os.PathLike = DEFAULT_CACHE, train_missing: bool = True,
              workers: int | None = None, log: Any = print) -> Path:
    """Train, evaluate and cache every missing run (or just ``runs``, ``(candidate name, seed)``);
    return the run folder."""
    dev = resolve_device(device)
    folder, cache = run_folder(preset, run_dir), Path(cache_dir)
    todo = [(c, s) for c, s in _wanted(preset, runs) if not _run_path(folder, c, s).exists()]
    if todo and not train_missing:
        raise StaleRunError(_missing_message(preset, folder, [f"{c.name}-seed{s}" for c, s in todo]))
    if not todo:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    write_run_config(folder, FORMAT, preset, tr.TIER_CODE)
    for candidate, seed in todo:
        t0 = time.perf_counter()
        data = _data(preset, cache, candidate.size, workers)
        backbone, stats = tr.train_candidate(candidate, preset, data.images, data.labels, seed=seed, device=dev,
                                             checkpoint_dir=cache / "ckpt" / f"{preset.key()}-{candidate.name}-seed{seed}")
        metrics = tr.evaluate_candidate(backbone, data, candidate.size, device=dev)
        calibration = data.images[torch.randperm(len(data.images), generator=torch.Generator().manual_seed(seed))
                                  [:preset.calibration_images]]
        int8 = tr.int8_check(backbone, data, candidate.size, calibration)
        if seed == preset.seeds[0]:
            state = {k: (v.half() if v.is_floating_point() else v) for k, v in backbone.state_dict().items()}
            atomic_torch_save(state, _weights_path(folder, candidate))
        record = {"format": FORMAT, "candidate": candidate.name, "variant": candidate.variant, "size": candidate.size,
                  "seed": seed, "params": tr.parameter_count(candidate, preset), "train": stats, "metrics": metrics,
                  "int8": int8, "seconds": time.perf_counter() - t0, **_made_by(dev)}
        _write_json(record, _run_path(folder, candidate, seed))
        log(f"{candidate.name} seed {seed}: AgeDB-like {metrics['agedb']['accuracy']:.2f}% "
            f"(INT8 {int8['int8']['agedb']['accuracy']:.2f}%), {stats['wall_time_s']:.0f} s on {dev} "
            f"at {stats['images_per_s']:.0f} images/s, {time.perf_counter() - t0:.0f} s in all")
    return folder


def run_parallel(preset: tr.TierPreset, run_dir: str | os.PathLike, *, jobs: int, device: str = "auto",
                 cache_dir: str | os.PathLike = DEFAULT_CACHE, log: Any = print, poll_s: float = 5.0) -> Path:
    """Every missing run with up to ``jobs`` processes at a time (one device shared, one CPU thread each);
    the data are rendered once first, with every CPU."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    dev, folder, cache = resolve_device(device), run_folder(preset, run_dir), Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for size in sorted({c.size for c in tr.CANDIDATES}):
        _data(preset, cache, size, os.cpu_count())
    log(f"data rendered in {time.perf_counter() - t0:.0f} s into {cache}")
    todo = [(c, s) for c, s in preset.runs() if not _run_path(folder, c, s).exists()]
    n = max(1, min(jobs, len(todo)))
    chunks = [todo[i::n] for i in range(n)] if todo else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    procs = []
    for i, chunk in enumerate(chunks):
        log_path = folder / "logs" / f"job{i}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        args = ["--preset", preset.name, "--run-dir", str(run_dir), "--device", dev, "--cache-dir", str(cache),
                "--runs", *(f"{c.name}:{s}" for c, s in chunk)]
        with open(log_path, "w") as f:
            procs.append((log_path, subprocess.Popen([sys.executable, "-m", "faceopt.system.tier_runs", *args],
                                                     stdout=f, stderr=subprocess.STDOUT, env=env)))
    done_before = -1
    while any(p.poll() is None for _, p in procs):
        time.sleep(poll_s)
        done = sum(_run_path(folder, c, s).exists() for c, s in todo)
        if done != done_before:
            log(f"{done}/{len(todo)} runs done after {time.perf_counter() - t0:.0f} s")
            done_before = done
    failed = [str(path) for path, p in procs if p.returncode]
    if failed:
        raise RuntimeError(f"{len(failed)} training process(es) failed; see {', '.join(failed)}")
    return folder


def load_tier_runs(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """Every run record of a folder, sorted by candidate order then seed."""
    folder = Path(folder)
    order = {c.name: i for i, c in enumerate(tr.CANDIDATES)}
    return sorted(read_records(folder, FORMAT), key=lambda d: (order.get(d["candidate"], 99), d["seed"]))


def load_backbone(folder: str | os.PathLike, candidate: tr.Candidate, preset: tr.TierPreset) -> torch.nn.Module:
    """The first seed's trained backbone of ``candidate`` (float32, eval mode)."""
    path = _weights_path(Path(folder), candidate)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no weights for {candidate.name}; "
                                f"{_missing_message(preset, Path(folder), [candidate.name])}")
    try:
        state = load_torch_file(path, fix="delete it and regenerate the runs")
        net = tr.build_backbone(candidate, preset)
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (RuntimeError, KeyError, AttributeError, ValueError) as exc:
        raise ValueError(f"{path}: does not hold {candidate.name} weights ({type(exc).__name__}: {exc}); "
                         "delete it and regenerate the runs") from exc
    return net.eval()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="faceopt tiers",
                                description="Train and evaluate the device-tier candidates of the mobile recipe.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    p.add_argument("--run-dir", required=True, help="folder for the run records and weights")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="rendered images and checkpoints")
    p.add_argument("--runs", nargs="*", default=None, metavar="CANDIDATE:SEED", help="exactly these runs")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--jobs", type=int, default=1, help="trainings at a time (processes sharing the device)")
    a = p.parse_args(argv)

    def make() -> Path:
        preset = PRESETS[a.preset]
        if a.jobs > 1:
            if a.runs is not None:
                raise ValueError("--jobs runs every missing run; leave out --runs")
            return run_parallel(preset, a.run_dir, jobs=a.jobs, device=a.device, cache_dir=a.cache_dir)
        runs = None if a.runs is None else parse_runs(a.runs, "CANDIDATE:SEED, e.g. recipe-112:0")
        return run_tiers(preset, a.run_dir, runs=runs, device=a.device, cache_dir=a.cache_dir)

    return print_folder_or_error(make)


if __name__ == "__main__":
    sys.exit(main())
