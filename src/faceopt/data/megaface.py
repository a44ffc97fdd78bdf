"""Image lists of MegaFace (distractors) and FaceScrub (probes), as used by the devkit.

The devkit's file names vary between releases (``megaface_features_list.json_1000000_1``,
``facescrub_features_list.json``, ...), so the form is told from the content, not the name:

* JSON: an object with a ``"path"`` list of relative image paths and, optionally, an ``"id"``
  list of the same length (FaceScrub identities, names or integers);
* text: one relative path per line, optionally followed by whitespace and an integer label
  (all lines or none). Blank lines and lines starting with ``#`` are skipped.

Paths are resolved under a root folder; missing images are reported with the first few names. An
absolute path, or one that leaves the root (``../``, or a symbolic link pointing elsewhere), is refused
unless the caller passes ``allow_outside=True``: a list from elsewhere must not make the reader open
``/etc/passwd``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceopt.data.errors import DataFileError, check_listed_path, read_text_file


@dataclass(frozen=True)
class FaceList:
    """Relative image paths and, when the list has them, identities."""

    paths: list[str]
    ids: list[str | int] | None
    source: Path

    def __len__(self) -> int:
        return len(self.paths)

    def labels(self) -> np.ndarray:
        """Integer labels int64 [N]: each id's position among the sorted distinct ids."""
        if self.ids is None:
            raise DataFileError(f"{self.source} has no identities (no 'id' key / label column)")
        distinct = sorted(set(self.ids), key=lambda v: (isinstance(v, str), v))
        index = {v: i for i, v in enumerate(distinct)}
        return np.array([index[v] for v in self.ids], dtype=np.int64)

    def resolve(self, root: str | os.PathLike, *, check: bool = True, allow_outside: bool = False) -> list[Path]:
        """Paths under ``root``; with ``check``, FileNotFoundError lists missing ones. A listed path that is
        absolute or leaves ``root`` (symlinks resolved) raises :class:`DataFileError` unless ``allow_outside``."""
        root = Path(root)
        for number, p in enumerate(self.paths, 1):
            check_listed_path(p, root, f"{self.source} (entry {number})", allow_outside=allow_outside)
        full = [root / p for p in self.paths]
        if check:
            missing = [p for p, f in zip(self.paths, full) if not f.is_file()]
            if missing:
                raise FileNotFoundError(f"{len(missing)} of {len(full)} images listed in {self.source} "
                                        f"are missing under {root}, e.g. {missing[:5]}; check the root "
                                        f"folder (the devkit's lists are relative to the image set)")
        return full


def _read_json(path: Path, text: str) -> FaceList:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFileError(f"{path}: invalid JSON ({e})") from None
    except RecursionError:
        raise DataFileError(f"{path}: JSON nested too deeply to read; an image list is an object with a flat "
                            "'path' list") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise DataFileError(f"{path}: unreadable JSON ({e})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("path"), list):
        raise DataFileError(f"{path}: expected a JSON object with a 'path' list, got keys "
                         f"{sorted(obj) if isinstance(obj, dict) else type(obj).__name__}")
    paths = obj["path"]
    if not all(isinstance(p, str) for p in paths):
        raise DataFileError(f"{path}: every entry of 'path' must be a string")
    ids = obj.get("id")
    if ids is not None:
        if not isinstance(ids, list) or len(ids) != len(paths):
            raise DataFileError(f"{path}: 'id' must be a list as long as 'path' ({len(paths)}), got "
                             f"{len(ids) if isinstance(ids, list) else type(ids).__name__}")
        if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in ids):
            raise DataFileError(f"{path}: every entry of 'id' must be a string or an integer")
    return FaceList(list(paths), ids, path)


def _read_text(path: Path, text: str) -> FaceList:
    paths: list[str] = []
    ids: list[int | None] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        label = None
        if len(parts) == 2:
            try:
                label = int(parts[1])
            except ValueError:
                raise DataFileError(f"{path}:{lineno}: expected 'relative/path [integer label]', "
                                 f"got {line!r}") from None
        paths.append(parts[0])
        ids.append(label)
    has = [v is not None for v in ids]
    if any(has) and not all(has):
        first = has.index(not has[0])
        raise DataFileError(f"{path}: some lines have a label column and some do not "
                         f"(entry {first + 1} differs from the first); use one form throughout")
    return FaceList(paths, ids if all(has) and ids else None, path)  # type: ignore[arg-type]


def read_face_list(path: str | os.PathLike, root: str | os.PathLike | None = None, *,
                   allow_outside: bool = False) -> FaceList:
    """Read a JSON or text image list; with ``root``, also check that every image exists and lies under it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    text = read_text_file(path, "an image list is a JSON or text file of relative paths")
    faces = _read_json(path, text) if text.lstrip().startswith("{") else _read_text(path, text)
    if not faces.paths:
        raise DataFileError(f"{path} lists no images")
    if root is not None:
        faces.resolve(root, allow_outside=allow_outside)
    return faces
