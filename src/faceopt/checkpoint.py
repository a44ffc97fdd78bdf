"""Checkpoints of :func:`faceopt.train.train`: written atomically, read back with every field checked.

A checkpoint (``last.pt``) is a ``torch.save`` zip archive of plain containers and tensors:
model, optimiser and scaler state, the step, the loss history, every rank's RNG states and the
config. :func:`load_checkpoint` reads one the way a hostile file must be read:

1. the archive is opened with :mod:`zipfile` first; its pickle (``data.pkl``) must be at most
   :data:`MAX_PICKLE_BYTES` and may not nest tuples deeper than :data:`MAX_NESTING`
   (:mod:`faceopt.pickle_nesting`: hashing a deeper one crashes the interpreter inside
   ``torch.load``);
2. ``torch.load(weights_only=True)`` unpickles it (no code named by the file runs);
3. every field :func:`faceopt.train.train` reads on resuming is checked for its type and
   range (:func:`check_fields`) before any of it is used.

Whatever is wrong, the error is one :class:`CheckpointError` that names the file and says how
to start afresh. The RNG states are those of :func:`rng_state`; :func:`set_rng_state` restores
them, so a resumed run continues exactly where it stopped (``tests/test_train.py`` pins that
bit for bit).
"""
from __future__ import annotations

import math
import os
import random
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceopt.io import atomic_torch_save
from faceopt.pickle_nesting import first_deep_nesting

__all__ = ["CHECKPOINT_FORMAT", "MAX_PICKLE_BYTES", "MAX_NESTING", "CheckpointError", "check_torch_archive",
           "check_fields", "check_rng_state", "load_checkpoint", "load_torch_file", "save_checkpoint", "resume_fields",
           "rng_state", "set_rng_state"]

CHECKPOINT_FORMAT = "faceopt.train/1"
MAX_PICKLE_BYTES = 64 << 20
"""Largest ``data.pkl`` read: it holds the containers and each tensor's metadata (about 200 bytes per
tensor), never the tensors' data, so an iResNet-100 with its optimiser state needs well under 1 MB."""
MAX_NESTING = 100
"""Deepest tuple nesting admitted; a checkpoint nests a few levels."""
MAX_RANKS = 4096
"""Most RNG states (one per process) a checkpoint may hold."""

_AFRESH = "delete it (or point checkpoint_dir elsewhere) to start afresh"
_MT_WORDS = 624          # Mersenne Twister state words (Python's random and numpy's legacy RandomState)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the run; the message names the file."""


# ----------------------------------------------------------------------------- RNG state

def rng_state(device: torch.device) -> dict[str, Any]:
    """This process' RNG states (torch, Python, numpy, CUDA on a GPU) as tensors and plain values."""
    version, keys, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python_version": int(version),
        "python": torch.tensor(keys, dtype=torch.int64),
        "python_gauss": gauss,
        "numpy_name": str(np_name),
        "numpy": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }
    return state


def _words(t: Any, n: int, what: str, path: Path) -> None:
    """``t`` is an int64 tensor of ``n`` values in ``[0, 2**32)``."""
    if not isinstance(t, torch.Tensor) or t.dtype != torch.int64 or tuple(t.shape) != (n,):
        raise CheckpointError(f"checkpoint {path}: RNG state {what!r} is not {n} int64 values; {_AFRESH}")
    if n and (int(t.min()) < 0 or int(t.max()) >= 1 << 32):
        raise CheckpointError(f"checkpoint {path}: RNG state {what!r} holds values outside 0..2**32-1; {_AFRESH}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_float(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_rng_state(state: Any, path: str | os.PathLike) -> None:
    """Refuse an RNG state that :func:`set_rng_state` could not restore exactly (:class:`CheckpointError`)."""
    path = Path(path)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint {path}: an RNG state is a {type(state).__name__}, not a dict; {_AFRESH}")
    missing = {"torch", "python_version", "python", "python_gauss", "numpy_name", "numpy", "numpy_pos",
               "numpy_has_gauss", "numpy_gauss"} - set(state)
    if missing:
        raise CheckpointError(f"checkpoint {path}: an RNG state lacks {sorted(missing)}; {_AFRESH}")
    t = state["torch"]
    if not isinstance(t, torch.Tensor) or t.dtype != torch.uint8 or t.shape != torch.get_rng_state().shape:
        raise CheckpointError(f"checkpoint {path}: the torch RNG state is not {torch.get_rng_state().numel()} bytes; "
                              f"{_AFRESH}")
    if not _is_int(state["python_version"]) or state["python_version"] != random.getstate()[0]:
        raise CheckpointError(f"checkpoint {path}: Python RNG state version {state['python_version']!r}, expected "
                              f"{random.getstate()[0]}; {_AFRESH}")
    _words(state["python"], _MT_WORDS + 1, "python", path)
    if int(state["python"][-1]) > _MT_WORDS:
        raise CheckpointError(f"checkpoint {path}: the Python RNG position is past {_MT_WORDS}; {_AFRESH}")
    if state["python_gauss"] is not None and not _is_float(state["python_gauss"]):
        raise CheckpointError(f"checkpoint {path}: python_gauss is neither None nor a number; {_AFRESH}")
    if not isinstance(state["numpy_name"], str) or state["numpy_name"] != "MT19937":
        raise CheckpointError(f"checkpoint {path}: numpy RNG {state['numpy_name']!r}, expected 'MT19937'; {_AFRESH}")
    _words(state["numpy"], _MT_WORDS, "numpy", path)
    if not _is_int(state["numpy_pos"]) or not 0 <= state["numpy_pos"] <= _MT_WORDS:
        raise CheckpointError(f"checkpoint {path}: numpy_pos {state['numpy_pos']!r} is not in 0..{_MT_WORDS}; {_AFRESH}")
    if not _is_int(state["numpy_has_gauss"]) or state["numpy_has_gauss"] not in (0, 1):
        raise CheckpointError(f"checkpoint {path}: numpy_has_gauss is not 0 or 1; {_AFRESH}")
    if not _is_float(state["numpy_gauss"]):
        raise CheckpointError(f"checkpoint {path}: numpy_gauss is not a number; {_AFRESH}")
    cuda = state.get("cuda")
    if cuda is not None and (not isinstance(cuda, torch.Tensor) or cuda.dtype != torch.uint8 or cuda.dim() != 1):
        raise CheckpointError(f"checkpoint {path}: the CUDA RNG state is not a byte tensor; {_AFRESH}")


def set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    """Restore what :func:`rng_state` returned (the CUDA state only on a GPU)."""
    torch.set_rng_state(state["torch"].cpu())
    random.setstate((state["python_version"], tuple(int(k) for k in state["python"].tolist()),
                     state["python_gauss"]))
    np.random.set_state((state["numpy_name"], state["numpy"].numpy().astype(np.uint32),
                         state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"]))
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


# ----------------------------------------------------------------------------- reading and writing

def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file beside it, then ``os.replace``."""
    return atomic_torch_save(dict(state), path)


def check_torch_archive(path: str | os.PathLike, max_pickle_bytes: int = MAX_PICKLE_BYTES, *,
                        fix: str = _AFRESH) -> None:
    """Refuse, before ``torch.load``, a file that is not a ``torch.save`` zip or whose pickle is too big or too deep.

    Raises :class:`CheckpointError` naming ``path`` (``FileNotFoundError`` and other ``OSError`` s included)
    and ending with ``fix``, what to do about it.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            pickles = [i for i in z.infolist() if i.filename == "data.pkl" or i.filename.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError(f"{path} is not a torch.save archive (it has {len(pickles)} data.pkl "
                                      f"members, not one); {fix}")
            info = pickles[0]
            if info.file_size > max_pickle_bytes:
                raise CheckpointError(f"{path}: its pickle declares {info.file_size:,} bytes, over the "
                                      f"{max_pickle_bytes:,} a checkpoint needs; {fix}")
            data = z.read(info)
    except CheckpointError:
        raise
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError,
            RuntimeError) as exc:   # RuntimeError: an encrypted member
        raise CheckpointError(f"cannot read {path}: {type(exc).__name__}: {exc}; {fix}") from exc
    try:
        found = first_deep_nesting(data, MAX_NESTING)
    except Exception as exc:  # noqa: BLE001 - pickletools on a damaged stream: any failure means a bad file
        raise CheckpointError(f"{path}: its pickle is damaged ({type(exc).__name__}: {exc}); {fix}") from exc
    if found is not None:
        raise CheckpointError(f"{path}: its pickle nests tuples {found[0]} deep at byte {found[1]} (the cap is "
                              f"{MAX_NESTING}); no checkpoint does, so the file is damaged or hostile; {fix}")


def load_torch_file(path: str | os.PathLike, *, fix: str = _AFRESH, mmap: bool = False) -> Any:
    """``torch.load(weights_only=True)`` onto the CPU of a ``torch.save`` archive, checked first by
    :func:`check_torch_archive`: faceopt's one way of reading a torch file (weights, cached tensors).

    Every failure is a :class:`CheckpointError` naming ``path`` and ending with ``fix``.
    """
    check_torch_archive(path, fix=fix)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise CheckpointError(f"cannot load {path}: {type(exc).__name__}: {exc}; {fix}") from exc


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint of :func:`faceopt.train.train`, checked (see the module docstring).

    Raises :class:`CheckpointError` naming ``path`` for any file that is missing, unreadable,
    hostile, of another format, or holds a field :func:`faceopt.train.train` could not use.
    """
    path = Path(path)
    state = load_torch_file(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a faceopt.train checkpoint (format {CHECKPOINT_FORMAT})")
    check_fields(state, path)
    return state


def _check_state_dict(value: Any, what: str, path: Path) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise CheckpointError(f"checkpoint {path}: {what} is not a dict with string keys; {_AFRESH}")


def check_fields(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Check the type and range of every field that resuming reads (:class:`CheckpointError` naming ``path``)."""
    path = Path(path)
    for key in ("model", "optimizer", "step", "rng"):
        if key not in state:
            raise CheckpointError(f"checkpoint {path} lacks {key!r}; {_AFRESH}")
    _check_state_dict(state["model"], "the model state", path)
    if not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
        raise CheckpointError(f"checkpoint {path}: the model state holds values that are not tensors; {_AFRESH}")
    _check_state_dict(state["optimizer"], "the optimiser state", path)
    if state.get("scaler") is not None:
        _check_state_dict(state["scaler"], "the scaler state", path)
    step = state["step"]
    if not _is_int(step) or step < 0:
        raise CheckpointError(f"checkpoint {path}: step {step!r} is not a non-negative integer; {_AFRESH}")
    history = state.get("loss_history", [])
    if not isinstance(history, (list, tuple)) or len(history) > step + 1:
        raise CheckpointError(f"checkpoint {path}: the loss history is not a list of at most step + 1 entries; "
                              f"{_AFRESH}")
    for entry in history:
        if (not isinstance(entry, (list, tuple)) or len(entry) != 2 or not _is_int(entry[0])
                or not 0 <= entry[0] <= step or not _is_float(entry[1])):
            raise CheckpointError(f"checkpoint {path}: loss-history entry {entry!r} is not [step, loss] with "
                                  f"0 <= step <= {step}; {_AFRESH}")
    if not _is_float(state.get("last_loss", math.nan)):
        raise CheckpointError(f"checkpoint {path}: last_loss is not a number; {_AFRESH}")
    rngs = state["rng"]
    if not isinstance(rngs, (list, tuple)) or not 1 <= len(rngs) <= MAX_RANKS:
        raise CheckpointError(f"checkpoint {path} holds no list of 1..{MAX_RANKS} RNG states; {_AFRESH}")
    for rng in rngs:
        check_rng_state(rng, path)


def resume_fields(state: Mapping[str, Any], path: Path, total: int) -> tuple[int, list[tuple[int, float]], float, list]:
    """Step, loss history, last loss and RNG states of a checkpoint, checked against a run of ``total`` steps."""
    check_fields(state, path)
    step = int(state["step"])
    if not 0 <= step <= total:
        raise CheckpointError(f"checkpoint {path} is at step {step}, outside this run's 0..{total}; {_AFRESH}")
    history = [(int(s), float(v)) for s, v in state.get("loss_history", [])]
    return step, history, float(state.get("last_loss", math.nan)), list(state["rng"])
