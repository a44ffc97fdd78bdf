"""Where a page's numbers came from: data, machines, revision.

A page's box ("How this page was produced") is written by :mod:`faceopt.runner`
after the chapter ran. Two things only the chapter knows go into it through a
small side channel: a description of the data it really used, and the machine
that made any cached heavy step it read (a training done once on a GPU, say).
The chapter calls :func:`declare_data` and :func:`declare_cached_step`; they
append to the JSON file named by ``$FACEOPT_PROVENANCE``, which the runner
sets for the run and reads back with :func:`read_declarations`. Run outside the
runner (Colab, Jupyter), the calls do nothing.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Iterable

from faceopt.io import atomic_write_text

__all__ = [
    "PROVENANCE_ENV",
    "declare_cached_step",
    "declare_data",
    "git_revision",
    "machine_description",
    "read_declarations",
]

#: Environment variable naming the file that collects a run's declarations.
PROVENANCE_ENV = "FACEOPT_PROVENANCE"


def _declare(key: str, value: object) -> None:
    target = os.environ.get(PROVENANCE_ENV)
    if not target:
        return
    path = Path(target)
    doc = read_declarations(path)
    if key == "data":
        doc["data"] = value
    else:
        doc.setdefault(key, [])
        if value not in doc[key]:
            doc[key].append(value)
    atomic_write_text(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def declare_data(description: str) -> None:
    """Name the data this chapter run really used (shown in the page's provenance box)."""
    if not isinstance(description, str) or not description.strip():
        raise ValueError("declare_data needs a non-empty description of the data, e.g. 'scikit-learn digits'")
    _declare("data", " ".join(description.split()))


def declare_cached_step(what: str, machine: str, made: str | None = None) -> None:
    """Say that the page reads a cached heavy step (``what``), made on ``machine`` (on date ``made``)."""
    if not what or not machine:
        raise ValueError("declare_cached_step needs what the cached step is and the machine that made it")
    _declare("cached_steps", {"what": str(what), "machine": str(machine), "made": None if made is None else str(made)})


def read_declarations(path: str | os.PathLike) -> dict:
    """The declarations collected in ``path`` (an empty dict if the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"provenance file {path} is not valid JSON ({exc}); delete it and run the chapter again") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"provenance file {path} must hold a JSON object; delete it and run the chapter again")
    return doc


def git_revision(root: Path, *, ignore: Iterable[str] = ()) -> str:
    """Short git revision of ``root``, with '+dirty' for uncommitted changes to tracked files, or 'unknown'.

    ``$FACEOPT_GIT_REV`` overrides it (a checkout without git). Paths in ``ignore`` (relative
    to ``root``) do not make the tree dirty: a book run rewrites its own pages as it goes.
    """
    env = os.environ.get("FACEOPT_GIT_REV")
    if env:
        return env
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        excludes = [f":(exclude){p}" for p in ignore]
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes],
                               cwd=root, capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev or "unknown") + ("+dirty" if dirty else "")


def machine_description(*, with_torch: bool = True) -> str:
    """CPU model, core count, OS, the SIMD level of PyTorch's CPU kernels (two CPUs of one model name
    may differ there, and so may their floating-point results), GPU if any and (``with_torch``) torch version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} logical cores, {platform.system()}"
    try:
        import torch

        desc += f", PyTorch CPU kernels {torch.backends.cpu.get_cpu_capability()}"
        if torch.cuda.is_available():
            desc += f", GPU {torch.cuda.get_device_name(0)}"
        if with_torch:
            desc += f", torch {torch.__version__.split('+')[0]}"
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return desc
