"""Scale presets, seeds, device choice and paths shared by every chapter.

The two scales are :data:`ALLOWED_SCALES`; each experiment module holds its own presets
per scale (e.g. ``faceopt.compress.experiments.PRESETS``), so chapters read their sizes
from the library rather than writing numbers into notebook cells.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from faceopt.resources import resource_path

ALLOWED_SCALES = ("smoke", "full")
ALLOWED_DEVICES = ("auto", "cpu", "cuda")


def _find_root() -> Path:
    """The repository root: $FACEOPT_ROOT, else the checkout this package lives in, else the cwd."""
    env = os.environ.get("FACEOPT_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "_toc.yml").exists() and (parent / "src" / "faceopt").is_dir():
            return parent
    cwd = Path.cwd().resolve()
    for parent in (cwd, *cwd.parents):
        if (parent / "_toc.yml").exists():
            return parent
    return cwd


@dataclass(frozen=True)
class Paths:
    """Where things live inside a checkout."""

    root: Path

    @property
    def book(self) -> Path:
        return self.root / "book"

    @property
    def chapters_src(self) -> Path:
        return self.root / "chapters"

    @property
    def results(self) -> Path:
        """Where chapters record claims: book/results, or $FACEOPT_RESULTS_DIR (smoke runs, tests)."""
        env = os.environ.get("FACEOPT_RESULTS_DIR")
        return Path(env) if env else self.book / "results"

    @property
    def claims(self) -> Path:
        """The thesis's claims: ``claims.yml`` packaged in :mod:`faceopt.resources` (installed or not)."""

        return resource_path("claims.yml", must_exist=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def cache(self) -> Path:
        return Path(os.environ.get("FACEOPT_CACHE", self.data / "cache"))

    @property
    def build(self) -> Path:
        """Scratch output (smoke notebooks, staged books): _build, or $FACEOPT_BUILD_DIR."""
        return Path(os.environ.get("FACEOPT_BUILD_DIR", self.root / "_build"))

    @property
    def golden(self) -> Path:
        return self.root / "tests" / "golden"


def paths() -> Paths:
    """Paths of the current checkout (re-evaluated so tests can set $FACEOPT_ROOT)."""
    return Paths(_find_root())


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if allowed, else raise ValueError listing the allowed values."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
    return value


def check_scale(scale: str) -> str:
    return check_choice("scale", scale, ALLOWED_SCALES)


def quiet() -> bool:
    """True under CI or nbval, where progress bars must stay silent."""
    return bool(os.environ.get("CI") or os.environ.get("FACEOPT_QUIET"))


def seed_everything(seed: int = 0, threads: int | None = 2) -> None:
    """Seed python, numpy and torch, and fix torch's thread count for repeatable runs."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency in practice
        return
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    check_choice("device", device, ALLOWED_DEVICES)
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but torch sees no GPU; use device='cpu' or 'auto'")
    return device
