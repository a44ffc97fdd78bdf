"""The one error family of the data readers: a bad input file.

Every reader of :mod:`faceopt.data` raises :class:`DataFileError` (a ``ValueError``) for a file that is
corrupt, hostile or in the wrong form, with a message that names the file, says what is wrong and how to
fix it; ``OSError`` is left for the system's own errors (a missing file, no permission).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DataFileError", "inside", "check_listed_path", "read_text_file", "MAX_NAME_BYTES", "MAX_PATH_BYTES"]

#: Longest file-name component and path a listed path may have (Linux's NAME_MAX and PATH_MAX).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096


class DataFileError(ValueError):
    """A data file (or a path inside one) that cannot be read as what it claims to be."""


def inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path`` (relative paths taken under ``root``), with every symlink resolved, lies under ``root``."""
    base = Path(root).resolve()
    target = (base / path).resolve()
    return target == base or base in target.parents


def check_listed_path(name: str, root: str | os.PathLike, where: str, *, allow_outside: bool = False) -> None:
    """Refuse, naming ``where`` (the list file and line), a path listed in a file that cannot name a file
    (a NUL byte, an unencodable character, a component or path longer than the system allows) or that is
    absolute or leaves ``root`` (symlinks resolved) unless ``allow_outside``."""
    try:
        encoded = os.fsencode(name)
    except UnicodeError:
        raise DataFileError(f"{where}: listed path {name[:60]!r} holds characters no file name can hold") from None
    if b"\0" in encoded:
        raise DataFileError(f"{where}: listed path {name[:60]!r} holds a NUL byte; a file name cannot")
    if len(encoded) > MAX_PATH_BYTES or any(len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")):
        raise DataFileError(f"{where}: listed path of {len(encoded)} bytes (starting {name[:40]!r}) is longer than a "
                            f"path ({MAX_PATH_BYTES}) or a file name ({MAX_NAME_BYTES} bytes) may be")
    if not allow_outside and (Path(name).is_absolute() or not inside(root, name)):
        raise DataFileError(f"{where}: {name[:80]!r} leads outside {root}; listed paths are relative to it "
                            "(pass allow_outside=True only for a list you trust)")


def read_text_file(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of ``path``; a file that is not UTF-8 raises :class:`DataFileError` saying it should be ``what``."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataFileError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); {what}") from None
