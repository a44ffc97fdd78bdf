"""The one atomic file write: a reader never sees a half-written file.

Every file the package writes for others to read (results, scorecard, pages, run
records, checkpoints, ONNX models, annotations, assets) goes through this module: the
content is written to a temporary file in the target's folder, flushed to disk and
moved over the target with :func:`os.replace`. On any error the temporary file is
removed and the old target, if any, is left as it was.

* :func:`atomic_write_text`, :func:`atomic_write_bytes`, :func:`atomic_torch_save` for
  content in memory;
* :func:`atomic_output` for writers that need a path (an ONNX exporter, a quantiser,
  a notebook writer): write to the path it yields, and it takes the target's place only
  if the block finishes;
* :func:`move_into_place` for a finished file staged elsewhere on the same file system.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_torch_save", "atomic_output", "move_into_place"]


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically; keep an existing file's mode."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (tensors and plain containers)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; keep an existing file's mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (ending in ``suffix``, for writers that look at
    the extension); when the block finishes, the file written there replaces ``path``. On an
    error, or if nothing was written, the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    os.unlink(tmp)  # the writer creates it
    try:
        yield Path(tmp)
        if not os.path.exists(tmp):
            raise FileNotFoundError(f"nothing was written to the temporary file for {path}")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def move_into_place(staged: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Move a finished file ``staged`` (same file system) over ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, path)
    return path
