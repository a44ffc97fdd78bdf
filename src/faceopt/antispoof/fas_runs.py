"""The cache of the face anti-spoofing distillation grid (claim FAS-fmd): one JSON per cell, keyed by settings and code.

:func:`run_fas` runs every missing cell of a :class:`~faceopt.antispoof.fas_distill.FasPreset` (each protocol of
``preset.protocols`` times each seed of ``preset.seeds``, see :func:`~faceopt.antispoof.fas_distill.run_cell`)
and writes ``run_dir/<preset>-<key>/runs/<protocol>-seed<k>.json`` (protocol ``seen`` for ``None``, else the
held-out attack type) with the cell's record and who made it: git revision, machine, torch version, code
fingerprint and the record format. The key hashes the settings and the code of
:data:`~faceopt.antispoof.fas_distill.FAS_CODE`, so changed code starts a new, empty folder; with
``train_missing=False`` a missing cell stops with :class:`~faceopt.recognition.runs.StaleRunError` naming the
command that makes it. The PAD splits are rendered once per seed (data seed ``preset.data.seed + seed``) and
cut into every protocol. :func:`load_fas_runs` reads a folder back.

From a shell (about 27 minutes for the full grid on one thread of a 2-core CPU)::

    python -m faceopt.antispoof.fas_runs --preset full --run-dir src/faceopt/resources/runs/fas_distill
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from faceopt.antispoof import fas_distill as fd
from faceopt.antispoof.pad_data import make_pad_splits
from faceopt.fingerprint import code_fingerprint
from faceopt.io import atomic_write_text
from faceopt.provenance import git_revision, machine_description
from faceopt.recognition.runs import StaleRunError, missing_runs_message, print_folder_or_error, read_records, write_run_config

__all__ = ["FORMAT", "cell_name", "cell_names", "run_folder", "run_fas", "load_fas_runs", "main"]

FORMAT = "faceopt.fas_distill/1"
_REPO = Path(__file__).resolve().parents[3]


def cell_name(held_out: str | None, seed: int) -> str:
    """``<protocol>-seed<k>``: ``seen-seed0`` for every species seen, ``print-seed0`` for print held out."""
    return f"{'seen' if held_out is None else held_out}-seed{seed}"


def cell_names(preset: fd.FasPreset) -> list[str]:
    """Every cell of the preset, seed by seed (a seed's data is rendered once for all its protocols)."""
    return [cell_name(p, s) for s in preset.seeds for p in preset.protocols]


def run_folder(preset: fd.FasPreset, run_dir: str | os.PathLike) -> Path:
    """``run_dir/<preset name>-<key>``: results of different settings or code never mix."""
    return Path(run_dir) / f"{preset.name}-{preset.key()}"


def _run_path(folder: Path, name: str) -> Path:
    return folder / "runs" / f"{name}.json"


def _made_by() -> dict[str, str]:
    return {"git_rev": git_revision(_REPO), "machine": machine_description(with_torch=False), "torch": torch.__version__,
            "code": code_fingerprint(fd.FAS_CODE)}


def _command(preset: fd.FasPreset, run_dir: Path) -> str:
    return f"python -m faceopt.antispoof.fas_runs --preset {preset.name} --run-dir {run_dir}"


def run_fas(preset: fd.FasPreset, run_dir: str | os.PathLike, *, train_missing: bool = True,
            log: Callable[[str], Any] = print, threads: int | None = 1) -> Path:
    """Run every missing cell of ``preset`` into :func:`run_folder` and return the folder.

    Existing cells are not rerun. With ``train_missing=False`` a missing cell raises
    :class:`~faceopt.recognition.runs.StaleRunError` with the command that makes it. ``threads``: torch's CPU
    threads while training (``None`` leaves them).
    """
    folder = run_folder(preset, run_dir)
    todo = [n for n in cell_names(preset) if not _run_path(folder, n).exists()]
    if todo and not train_missing:
        raise StaleRunError(f"{missing_runs_message(folder, preset, todo, 'cell(s)')}. Make them with "
                            f"`{_command(preset, Path(run_dir))}`.")
    if not todo:
        return folder
    write_run_config(folder, FORMAT, preset, fd.FAS_CODE)
    t_start, done = time.perf_counter(), 0
    for seed in preset.seeds:
        wanted = [p for p in preset.protocols if cell_name(p, seed) in todo]
        if not wanted:
            continue
        data = dataclasses.replace(preset.data, seed=preset.data.seed + seed)
        splits = make_pad_splits(data)
        for held_out in wanted:
            name = cell_name(held_out, seed)
            t0 = time.perf_counter()
            cell = fd.run_cell(preset, splits, held_out, seed, threads=threads)
            record = {"format": FORMAT, "cell": name, "protocol": "seen" if held_out is None else held_out,
                      "preset": preset.to_dict(), "key": preset.key(), "data_seed": data.seed, **cell,
                      "seconds": time.perf_counter() - t0, **_made_by()}
            atomic_write_text(_run_path(folder, name), json.dumps(record, indent=1, allow_nan=False) + "\n")
            done += 1
            acer = "  ".join(f"{m} {r['acer']:.3f}" for m, r in cell["models"].items())
            log(f"[{done}/{len(todo)}] {name}: {record['seconds']:.0f} s (total {time.perf_counter() - t_start:.0f} s); "
                f"test ACER {acer}")
    return folder


def load_fas_runs(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Every cell record of a folder, by cell name (``<protocol>-seed<k>``)."""
    return {d["cell"]: d for d in read_records(folder, FORMAT)}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faceopt.antispoof.fas_runs --preset full --run-dir DIR [--threads N]``."""
    p = argparse.ArgumentParser(prog="python -m faceopt.antispoof.fas_runs",
                                description="Train and evaluate the FAS feature-map distillation grid (claim FAS-fmd).")
    p.add_argument("--preset", choices=sorted(fd.FAS_PRESETS), default="smoke")
    p.add_argument("--run-dir", required=True, help="folder for the run records")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads while training (default 1)")
    a = p.parse_args(argv)
    return print_folder_or_error(lambda: run_fas(fd.FAS_PRESETS[a.preset], a.run_dir, threads=a.threads))


if __name__ == "__main__":
    sys.exit(main())
