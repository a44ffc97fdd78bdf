"""The cache of thesis Chapter 3's (page 04) trainings: one JSON per run, keyed by settings and code.

:func:`run_comparison` trains and evaluates what is missing of a
:class:`~faceopt.recognition.experiments.DistillPreset`'s comparison and writes one JSON
per run into ``run_folder(preset, run_dir)`` = ``run_dir/<preset name>-<key>``
(``teacher.json``, ``students/<method>-seed<k>.json``), resuming an interrupted training
from its checkpoint under ``ckpt/``. The key hashes the preset *and* the code that trains
and evaluates (:data:`~faceopt.recognition.experiments.RUN_CODE`), so a change to that code
leads to a new, empty folder: with ``train_missing=False`` (the book's full page) that stops
with :class:`StaleRunError`, which says which runs exist and how to regenerate them. Each
record also names the machine, the torch version, the git revision and the code
fingerprint that made it. :func:`load_runs` reads a folder back.

From a shell, ``faceopt distill`` (or ``python -m faceopt.recognition.runs``). ``--jobs N``
runs N trainings at a time on one GPU: the teacher and the ArcFace students (which need no
teacher) first, then the other students, each process with one CPU thread::

    faceopt distill --preset full --run-dir src/faceopt/resources/runs/margin_distillation --jobs 15
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from faceopt.checkpoint import load_torch_file
from faceopt.config import resolve_device
from faceopt.fingerprint import code_fingerprint
from faceopt.io import atomic_torch_save, atomic_write_text
from faceopt.provenance import git_revision, machine_description
from faceopt.recognition import experiments as ex
from faceopt.results import Part
from faceopt.stats import compare

__all__ = [
    "FORMAT", "StaleRunError", "run_folder", "run_comparison", "run_parallel", "load_runs", "collect",
    "comparison_part", "winner_parts", "parse_runs", "read_record", "read_records", "print_folder_or_error",
    "write_run_config", "missing_runs_message", "main",
]

FORMAT = "faceopt.margin_distillation/2"
_REPO = Path(__file__).resolve().parents[3]


class StaleRunError(RuntimeError):
    """The cached runs the caller relies on do not exist for this code and these settings."""


def run_folder(preset: ex.DistillPreset, run_dir: str | os.PathLike) -> Path:
    """``run_dir/<preset name>-<key>``: results of different settings or code never mix."""
    return Path(run_dir) / f"{preset.name}-{preset.key()}"


def _student_path(folder: Path, method: str, seed: int) -> Path:
    return folder / "students" / f"{method}-seed{seed}.json"


def _write_json(obj: Any, path: Path) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, allow_nan=False) + "\n")


def write_run_config(folder: Path, fmt: str, preset: Any, code: Sequence[str]) -> None:
    """``folder/config.json``: the record format, the preset and the fingerprint of ``code`` that the
    folder's key stands for; written once, with the folder's first run."""
    path = Path(folder) / "config.json"
    if not path.exists():
        _write_json({"format": fmt, "preset": preset.to_dict(), "code": code_fingerprint(code)}, path)


def missing_runs_message(folder: Path, preset: Any, missing: Sequence[str], what: str = "run(s)") -> str:
    """The first sentence of a :class:`StaleRunError` (without its full stop): which cached runs of ``preset``
    this code lacks."""
    return (f"{folder}: {len(missing)} cached {what} missing for preset {preset.name!r} with this code and these "
            f"settings (key {preset.key()}): {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")


def read_record(path: Path, fmt: str) -> dict[str, Any]:
    """A cached run's JSON record, which must declare ``"format": fmt``; ValueError naming the file otherwise
    (the cached runs of pages 04, 05 and 06 are all read through here)."""
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable result file ({exc}); delete it to recompute") from exc
    if not isinstance(d, dict) or d.get("format") != fmt:
        got = d.get("format") if isinstance(d, dict) else type(d).__name__
        raise ValueError(f"{path}: format {got!r}, expected {fmt!r}; delete it to recompute")
    return d


def _read_json(path: Path) -> dict[str, Any]:
    return read_record(path, FORMAT)


def _made_by(device: str) -> dict[str, str]:
    """Who made a record: machine, torch version, git revision and the code's fingerprint."""
    machine = torch.cuda.get_device_name(0) if device == "cuda" else machine_description(with_torch=False)
    return {"machine": machine, "torch": torch.__version__, "git_rev": git_revision(_REPO),
            "code": code_fingerprint(ex.RUN_CODE)}


def _wanted(preset: ex.DistillPreset, methods: Iterable[str] | None, seeds: Iterable[int] | None,
            runs: Iterable[tuple[str, int]] | None) -> list[tuple[str, int]]:
    if runs is not None:
        wanted = [(ex.ALIASES.get(m, m), int(s)) for m, s in runs]
    elif methods is None and seeds is None:
        wanted = preset.runs()
    else:
        ms = [ex.ALIASES.get(m, m) for m in (ex.METHODS if methods is None else methods)]
        wanted = [(m, s) for m in ms for s in (preset.seeds if seeds is None else seeds)]
    for m, _ in wanted:
        if m not in ex.METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(ex.METHODS)}")
    return list(dict.fromkeys(wanted))


def _missing_message(preset: ex.DistillPreset, run_dir: Path, missing: Sequence[str]) -> str:
    folder = run_folder(preset, run_dir)
    msg = missing_runs_message(folder, preset, missing) + "."
    for other in sorted(p for p in run_dir.glob(f"{preset.name}-*") if p.is_dir() and p != folder):
        made = "older code or other settings"
        try:
            t = json.loads((other / "teacher.json").read_text())
            made = f"git {t.get('git_rev', 'unknown')}, code {str(t.get('code', 'unrecorded'))[:10]}, torch {t.get('torch', '?')}"
        except (OSError, ValueError):
            pass
        msg += f" {other.name} holds runs made by {made}; they are not used for this code."
    return (msg + f" Regenerate them with `faceopt distill --preset {preset.name} --run-dir {run_dir} --jobs 15` "
            "(about 6 minutes on one GPU; many hours on a CPU), or run the chapter at smoke scale.")


def run_comparison(preset: ex.DistillPreset, run_dir: str | os.PathLike, *, methods: Iterable[str] | None = None,
                   seeds: Iterable[int] | None = None, runs: Iterable[tuple[str, int]] | None = None,
                   device: str = "auto", teacher_only: bool = False, train_missing: bool = True,
                   log: Any = print) -> Path:
    """Train and evaluate what is missing in ``run_folder(preset, run_dir)``; return that folder.

    Without ``methods``, ``seeds`` and ``runs`` the whole comparison (``preset.runs()``) and
    the teacher; otherwise the teacher only if one of the asked runs learns from it.
    Finished runs (their JSON exists) are skipped. The teacher is
    trained once (seed ``preset.data_seed``) and saved as ``teacher.pt`` (weights only, not
    for the repository). ``train_missing=False`` raises :class:`StaleRunError` instead of
    training anything.
    """
    run_dir = Path(run_dir)
    wanted = _wanted(preset, methods, seeds, runs)
    folder = run_folder(preset, run_dir)
    t_json, t_pt = folder / "teacher.json", folder / "teacher.pt"
    todo = [(m, s) for m, s in wanted if not _student_path(folder, m, s).exists()]
    taught = [r for r in todo if r[0] not in ex.NO_TEACHER_METHODS]
    whole = methods is None and seeds is None and runs is None
    need_teacher = teacher_only or bool(taught) or (whole and not t_json.exists())
    if not todo and (t_json.exists() or not need_teacher) and not (teacher_only and not t_pt.exists()):
        return folder
    if not train_missing:
        missing = ([] if t_json.exists() else ["teacher"]) + [f"{m}-seed{s}" for m, s in todo]
        raise StaleRunError(_missing_message(preset, run_dir, missing))
    dev = resolve_device(device)
    folder.mkdir(parents=True, exist_ok=True)
    write_run_config(folder, FORMAT, preset, ex.RUN_CODE)
    t0 = time.perf_counter()
    images, labels = ex.render_training_set(preset, cache_dir=folder)
    log(f"training images: {len(images)} ({preset.identities} identities), {time.perf_counter() - t0:.1f} s")
    sets: ex.EvalSets | None = None
    head = t_emb = t_flip = None
    if need_teacher:
        head, t_emb, t_flip, sets = _teacher(preset, folder, images, labels, dev, log)
    if teacher_only:
        return folder
    plain = ex.TrainingSet(images, labels, preset.group)
    with_teacher = ex.TrainingSet(images, labels, preset.group, t_emb, t_flip) if taught else None
    for method, seed in todo:
        out = _student_path(folder, method, seed)
        if out.exists():  # another process finished it meanwhile
            continue
        sets = sets or ex.build_eval_sets(preset, cache_dir=folder)
        log(f"training {method} (seed {seed}, {preset.student_steps} steps) on {dev}")
        data = plain if method in ex.NO_TEACHER_METHODS else with_teacher
        assert data is not None  # a method that learns from the teacher is in ``taught``
        student, stats = ex.train_student(method, preset, data, head if method not in ex.NO_TEACHER_METHODS else None,
                                          seed=seed, device=dev, checkpoint_dir=folder / "ckpt" / f"{method}-seed{seed}")
        metrics = ex.evaluate_backbone(student, sets, device=dev)
        _write_json({"format": FORMAT, "method": method, "model": preset.student, "seed": seed,
                     "metrics": metrics, "train": stats, **_made_by(dev)}, out)
        log(f"{method} seed {seed}: {_summary(metrics)}")
    return folder


def _teacher(preset: ex.DistillPreset, folder: Path, images: torch.Tensor, labels: torch.Tensor, dev: str,
             log: Any) -> tuple[Any, torch.Tensor, torch.Tensor, ex.EvalSets | None]:
    """Load or train the teacher; evaluate it and write ``teacher.json`` if missing."""
    t_json, t_pt = folder / "teacher.json", folder / "teacher.pt"
    backbone, head = ex.build_teacher(preset)
    stats = None
    if t_pt.exists():
        try:
            state = load_torch_file(t_pt, fix="delete it to retrain")
            backbone.load_state_dict(state["backbone"]), head.load_state_dict(state["head"])
        except Exception as exc:  # noqa: BLE001 - any unreadable or mismatched file means: retrain
            raise ValueError(f"{t_pt}: not a teacher of this preset ({type(exc).__name__}: {exc}); "
                             "delete it to retrain") from exc
        backbone.eval()
    else:
        log(f"training the teacher ({preset.teacher}, {preset.teacher_steps} steps) on {dev}")
        data = ex.TrainingSet(images, labels, preset.group)
        backbone, head, stats = ex.train_teacher(preset, data, seed=preset.data_seed, device=dev,
                                                 checkpoint_dir=folder / "ckpt" / "teacher")
        atomic_torch_save({"backbone": backbone.state_dict(), "head": head.state_dict(), "train": stats}, t_pt)
        state = {"train": stats}
    t_emb, t_flip = ex.teacher_embeddings(backbone, images, device=dev)  # for the margins and the students
    sets = None
    if not t_json.exists() or stats is not None:
        sets = ex.build_eval_sets(preset, cache_dir=folder)
        metrics = ex.evaluate_backbone(backbone, sets, device=dev)
        hist = ex.margin_histogram(head, t_emb, labels, batch_size=preset.batch_size, m_min=preset.m_min,
                                   m_max=preset.m_max)
        _write_json({"format": FORMAT, "method": "teacher", "model": preset.teacher, "seed": preset.data_seed,
                     "metrics": metrics, "train": state.get("train", {}), "margins": hist,
                     "eval_sizes": sets.sizes, **_made_by(dev)}, t_json)
        log(f"teacher: {_summary(metrics)}")
    return head, t_emb, t_flip, sets


def _summary(m: Mapping[str, float]) -> str:
    return f"LFW-like {m['lfw']:.2f}%, AgeDB-like {m['agedb']:.2f}%, MegaFace-like rank-1 {m['megaface_rank1']:.2f}%"


def load_runs(folder: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The teacher's record and every student record (one per method and seed) of a run folder.

    Every record must carry this code's fingerprint (a record copied from another folder
    is refused with the file's name)."""
    folder = Path(folder)
    if not (folder / "teacher.json").exists():
        raise FileNotFoundError(f"{folder}/teacher.json is missing: run run_comparison first")
    records = [folder / "teacher.json", *sorted((folder / "students").glob("*.json"))]
    code = code_fingerprint(ex.RUN_CODE)
    out = []
    for path in records:
        rec = _read_json(path)
        if rec.get("code") != code:
            raise StaleRunError(f"{path}: made by other code (fingerprint {str(rec.get('code'))[:10]}, this code "
                                f"{code[:10]}); delete it to recompute")
        out.append(rec)
    return out[0], out[1:]


def collect(students: Iterable[Mapping[str, Any]], metric: str) -> dict[str, list[float]]:
    """``method -> [value of metric for each seed]`` (seed order) from student records."""
    out: dict[str, list[tuple[int, float]]] = {}
    for rec in students:
        out.setdefault(rec["method"], []).append((int(rec["seed"]), float(rec["metrics"][metric])))
    return {m: [v for _, v in sorted(vals)] for m, vals in out.items()}


def comparison_part(values: Mapping[str, Sequence[float]], better: str, worse: str, label: str = "") -> Part:
    """The part "``better`` is above ``worse``" of a claim, from their values over seeds."""

    return Part.compared(f"{label}{better} > {worse}", compare(values[better], values[worse]))


def winner_parts(values: Mapping[str, Sequence[float]], target: str = "margin_distillation",
                 rivals: Sequence[str] = ex.TABLE5_METHODS, label: str = "") -> list[Part]:
    """The parts of "``target`` beats every rival": one comparison over seeds per rival present."""
    return [comparison_part(values, target, r, label) for r in rivals if r != target and r in values]


# ----------------------------------------------------------------------------- parallel driver

def _spawn(args: list[str], log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "faceopt.recognition.runs", *args], stdout=f,
                                stderr=subprocess.STDOUT, env=env)


def _chunks(items: Sequence[Any], n: int) -> list[list[Any]]:
    """``items`` dealt round-robin into at most ``n`` non-empty lists."""
    n = max(1, min(n, len(items)))
    return [list(items[i::n]) for i in range(n)] if items else []


def run_parallel(preset: ex.DistillPreset, run_dir: str | os.PathLike, *, jobs: int, device: str = "auto",
                 overrides: Sequence[str] = (), log: Any = print, poll_s: float = 5.0) -> Path:
    """The whole comparison with up to ``jobs`` training processes at a time (one GPU shared).

    The data are rendered once into the run folder; then the teacher trains beside the
    students that need no teacher, then the other students train, dealt round-robin over
    ``jobs`` processes (one CPU thread each; logs under ``logs/``). Progress is printed as
    runs finish; a failed process is reported with its log and raises at the end.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    dev = resolve_device(device)
    folder = run_folder(preset, run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_run_config(folder, FORMAT, preset, ex.RUN_CODE)
    t0 = time.perf_counter()
    ex.render_training_set(preset, cache_dir=folder, workers=os.cpu_count())
    ex.build_eval_sets(preset, cache_dir=folder, workers=os.cpu_count())
    log(f"data rendered in {time.perf_counter() - t0:.0f} s into {folder}")
    todo = [r for r in preset.runs() if not _student_path(folder, *r).exists()]
    early = [r for r in todo if r[0] in ex.NO_TEACHER_METHODS]
    late = [r for r in todo if r[0] not in ex.NO_TEACHER_METHODS]
    base = ["--preset", preset.name, "--run-dir", str(run_dir), "--device", dev, "--set", *overrides]
    total = len(todo) + (0 if (folder / "teacher.json").exists() else 1)
    running: dict[str, subprocess.Popen] = {}
    failed: list[str] = []

    def start(name: str, extra: list[str]) -> None:
        running[name] = _spawn([*base, *extra], folder / "logs" / f"{name}.log")

    def runs_arg(chunk: list[tuple[str, int]]) -> list[str]:
        return ["--runs", *(f"{m}:{s}" for m, s in chunk)]

    if not ((folder / "teacher.json").exists() and (folder / "teacher.pt").exists()):
        start("teacher", ["--teacher-only"])
    for i, chunk in enumerate(_chunks(early, jobs - len(running))):
        start(f"early{i}", runs_arg(chunk))
    late_started, done_before = False, -1
    while running or (late and not late_started):
        time.sleep(poll_s)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                if proc.returncode:
                    failed.append(name)
                    log(f"{name} failed (exit {proc.returncode}); see {folder / 'logs' / (name + '.log')}")
        if late and not late_started and "teacher" not in running:
            if "teacher" in failed:
                break
            for i, chunk in enumerate(_chunks(late, jobs)):
                start(f"late{i}", runs_arg(chunk))
            late_started = True
        done = sum(_student_path(folder, *r).exists() for r in todo)
        done += int(total > len(todo) and (folder / "teacher.json").exists())
        if done != done_before:
            log(f"{done}/{total} runs done after {time.perf_counter() - t0:.0f} s; {len(running)} processes running")
            done_before = done
    if failed:
        raise RuntimeError(f"{len(failed)} training process(es) failed: {', '.join(failed)}; logs in {folder / 'logs'}")
    return folder


def read_records(folder: str | os.PathLike, fmt: str) -> list[dict[str, Any]]:
    """Every record ``folder/runs/*.json`` (by file name), each read by :func:`read_record`."""
    return [read_record(path, fmt) for path in sorted((Path(folder) / "runs").glob("*.json"))]


def print_folder_or_error(make: Callable[[], Path]) -> int:
    """A run driver's ending: print the folder ``make()`` returns (exit 0), or ``error: ...`` on stderr (exit 2)."""
    try:
        folder = make()
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(folder)
    return 0


def parse_runs(items: Sequence[str], form: str) -> list[tuple[str, int]]:
    """``NAME:SEED`` command-line items as ``(name, seed)`` pairs; ``form`` describes them in the error."""
    runs = []
    for item in items:
        name, sep, seed = item.partition(":")
        if not sep or not seed.isdigit():
            raise ValueError(f"bad run {item!r}: use {form}")
        runs.append((name, int(seed)))
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="faceopt distill",
                                description="Train and evaluate the teacher and the students of thesis Tables 5-7.")
    p.add_argument("--preset", choices=sorted(ex.PRESETS), default="smoke")
    p.add_argument("--run-dir", required=True, help="folder for results, checkpoints and the teacher")
    p.add_argument("--methods", nargs="*", default=None, help=f"subset of: {' '.join(ex.METHODS)}")
    p.add_argument("--seeds", nargs="*", type=int, default=None, help="student seeds (default: the preset's)")
    p.add_argument("--runs", nargs="*", default=None, metavar="METHOD:SEED", help="exactly these runs")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--jobs", type=int, default=1, help="trainings at a time (processes sharing the device)")
    p.add_argument("--teacher-only", action="store_true", help="train and evaluate the teacher, then stop")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON",
                   help="override preset fields, e.g. --set identities=1000 difficulty=0.7 'teacher_options={\"width\": 1}'")
    a = p.parse_args(argv)

    def make() -> Path:
        preset = ex.with_overrides(ex.PRESETS[a.preset], a.set)
        if a.jobs > 1:
            if a.methods is not None or a.seeds is not None or a.runs is not None or a.teacher_only:
                raise ValueError("--jobs runs the whole comparison; leave out --methods, --seeds, --runs and --teacher-only")
            return run_parallel(preset, a.run_dir, jobs=a.jobs, device=a.device, overrides=a.set)
        runs = None if a.runs is None else parse_runs(a.runs, "METHOD:SEED, e.g. arcface:0")
        return run_comparison(preset, a.run_dir, methods=a.methods, seeds=a.seeds, runs=runs, device=a.device,
                              teacher_only=a.teacher_only)

    return print_folder_or_error(make)


if __name__ == "__main__":
    sys.exit(main())
