"""The one error family of the data readers: a bad input file.

Every reader of :mod:`faceopt.data` raises :class:`DataFileError` (a ``ValueError``) for a file that is
corrupt, hostile or in the wrong form, with a message that names the file, says what is wrong and how to
fix it; ``OSError`` is left for the system's own errors (a missing file, no permission).
"""
from __future__ import annotations

__all__ = ["DataFileError", "inside"]

import os
from pathlib import Path


class DataFileError(ValueError):
    """A data file (or a path inside one) that cannot be read as what it claims to be."""


def inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path`` (relative paths taken under ``root``), with every symlink resolved, lies under ``root``."""
    base = Path(root).resolve()
    target = (base / path).resolve()
    return target == base or base in target.parents
