"""The cache of the PTA MobileNetV2 experiment: one JSON per seed, keyed by settings and code.

:func:`run_pta` trains and evaluates the missing seeds of a
:class:`~faceopt.antispoof.pta_experiments.PtaPreset` (:func:`~faceopt.antispoof.pta_experiments.run_seed`:
the PTA model, its reported configurations and the separately trained MobileNetV2 baselines) and writes
``run_dir/<preset>-<key>/runs/seed<k>.json``. The key hashes the preset and the code of
:data:`~faceopt.antispoof.pta_experiments.PTA_CODE`, so a change to either leads to a new, empty folder;
with ``train_missing=False`` (the book's page) a missing seed stops with
:class:`~faceopt.recognition.runs.StaleRunError` naming the command that makes it. Each record also names
the machine, the torch version, the git revision and the code fingerprint that made it.

From a shell (the full preset: 5-6.5 minutes per seed, 16-19 for its three, on 2 shared CPU cores)::

    python -m faceopt.antispoof.pta_runs --preset full --run-dir src/faceopt/resources/runs/pta
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from faceopt.antispoof import pta_experiments as px
from faceopt.antispoof.pad_data import make_pad_splits
from faceopt.fingerprint import code_fingerprint
from faceopt.io import atomic_write_text
from faceopt.provenance import git_revision, machine_description
from faceopt.recognition.runs import StaleRunError, missing_runs_message, print_folder_or_error, read_records, write_run_config

__all__ = ["FORMAT", "run_names", "run_folder", "run_pta", "load_pta_runs", "main"]

FORMAT = "faceopt.pta/1"
_REPO = Path(__file__).resolve().parents[3]


def run_names(preset: px.PtaPreset) -> list[str]:
    """The preset's runs, one per seed: ``seed<k>``."""
    return [f"seed{s}" for s in preset.seeds]


def run_folder(preset: px.PtaPreset, run_dir: str | os.PathLike) -> Path:
    """``run_dir/<preset name>-<key>``: results of different settings or code never mix."""
    return Path(run_dir) / f"{preset.name}-{preset.key()}"


def _run_path(folder: Path, name: str) -> Path:
    return folder / "runs" / f"{name}.json"


def _command(preset: px.PtaPreset, run_dir: Path) -> str:
    return f"python -m faceopt.antispoof.pta_runs --preset {preset.name} --run-dir {run_dir}"


def _made_by() -> dict[str, str]:
    return {"machine": machine_description(with_torch=False), "torch": torch.__version__, "git_rev": git_revision(_REPO),
            "code": code_fingerprint(px.PTA_CODE)}


def run_pta(preset: px.PtaPreset, run_dir: str | os.PathLike, *, train_missing: bool = True,
            log: Callable[[str], object] = print) -> Path:
    """Run every missing seed of ``preset`` in this process, one record per seed; return the folder.

    Seeds already on disk are not recomputed. ``train_missing=False``: raise :class:`StaleRunError`
    (naming the command that makes them) instead of training.
    """
    folder = run_folder(preset, run_dir)
    todo = [n for n in run_names(preset) if not _run_path(folder, n).exists()]
    if todo and not train_missing:
        raise StaleRunError(f"{missing_runs_message(folder, preset, todo)}. Make them with "
                            f"`{_command(preset, Path(run_dir))}`, or run the chapter at smoke scale.")
    if not todo:
        return folder
    write_run_config(folder, FORMAT, preset, px.PTA_CODE)
    t0 = time.perf_counter()
    splits = make_pad_splits(preset.data)
    log(f"{preset.name}: PAD splits rendered in {time.perf_counter() - t0:.1f} s "
        f"({len(splits.train)} train, {len(splits.val)} val, {len(splits.test)} test images); {len(todo)} seed(s) to run")
    for k, name in enumerate(todo):
        seed = int(name.removeprefix("seed"))
        record: dict[str, Any] = {"format": FORMAT, "run": name, "preset": preset.to_dict()}
        record.update(px.run_seed(preset, splits, seed, log=log))
        record.update(_made_by())
        atomic_write_text(_run_path(folder, name), json.dumps(record, indent=1, allow_nan=False) + "\n")
        w = record["wall_time"]
        log(f"{name} ({k + 1}/{len(todo)}): {record['seconds']:.0f} s; PTA {w['pta_total_s']:.0f} s vs "
            f"baselines {w['baselines_total_s']:.0f} s")
    return folder


def load_pta_runs(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Every seed record of a run folder, by run name (``seed<k>``), in seed order."""
    return {d["run"]: d for d in sorted(read_records(folder, FORMAT), key=lambda d: int(d["seed"]))}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faceopt.antispoof.pta_runs --preset full --run-dir DIR``: run the missing seeds."""
    p = argparse.ArgumentParser(prog="python -m faceopt.antispoof.pta_runs",
                                description="Train and evaluate the PTA MobileNetV2 and its MobileNetV2 baselines.")
    p.add_argument("--preset", choices=sorted(px.PTA_PRESETS), default="smoke")
    p.add_argument("--run-dir", required=True, help="folder for the run records")
    a = p.parse_args(argv)
    return print_folder_or_error(lambda: run_pta(px.PTA_PRESETS[a.preset], a.run_dir, log=lambda m: print(m, flush=True)))


if __name__ == "__main__":
    sys.exit(main())
