"""The one atomic file write: a reader never sees a half-written file.

Every file the package writes for others to read (results, scorecard, pages,
provenance notes) goes through :func:`atomic_write_text`: the text is written to a
temporary file in the target's folder, flushed to disk and moved over the target
with :func:`os.replace`. On any error the temporary file is removed and the old
target, if any, is left as it was.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_torch_save"]


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
