"""The face gallery: anonymised embedding vectors under a name, searched 1:N (thesis Chapter 4).

The recognition system keeps no face images. Enrolment stores only the network's embedding of a
face, L2-normalised, under a name (a label: a person id, a pseudonym). Several embeddings per name
are allowed; enrolling a name again appends one. Two questions are asked of it:

* **identify** (1:N): which names are closest to a probe embedding? A name scores the *best*
  (largest) cosine over its embeddings; the ``k`` best distinct names come back, best first.
* **verify** (1:1): is this probe the claimed name? The name's score against the threshold
  stored with the gallery (accepted when ``cosine >= threshold``, the convention of
  :mod:`faceopt.recognition.metrics`), a threshold chosen for a target false-match rate.

Search is exact (recall 1.0): all embeddings sit in one float32 matrix ``E`` (rows unit
length), and identification is one matrix-vector product ``E @ q`` of the unit probe ``q``,
which gives every stored cosine at once, followed by a per-name maximum and a sort. That is
``rows * dim`` multiply-adds per probe: a million 512-d embeddings are half a GFLOP, well
within a CPU's budget for one query, so no approximate index (FAISS and the like) is needed.

File format (version 1), one file, little-endian::

    16 bytes   magic  b"FACEOPT-GALLERY\\n"
     8 bytes   uint64 H, the length of the header
     H bytes   header, UTF-8 JSON: {"schema": "faceopt.gallery", "version": 1, "dim": d,
               "rows": n, "dtype": "<f4", "names": [name of row 0, ...],
               "threshold": null | {"value", "fmr", "method", "set_at"}}
   4*n*d bytes the embeddings, float32 row-major, row i belongs to names[i]
    32 bytes   SHA-256 of every byte before it

No pickle is involved anywhere. Loading checks, in order, the magic, the schema, the version
(a newer one is refused with "upgrade faceopt"), the length (truncated or with trailing bytes),
the checksum, then the content (finite unit rows, names, threshold); each failure is a
:class:`GalleryError` (a :class:`ValueError`) that names the file and the fix.

Guarantees:

* **Atomic**: every write goes through :func:`faceopt.io.atomic_write_bytes` (a temporary file in
  the same folder, fsynced, moved over the gallery), and the folder is fsynced after it. A reader,
  or a process killed with ``kill -9`` mid-write, leaves the old file or the new one, never a
  mixture (tests/test_gallery.py kills an enrolling process 100 times to check).
* **Durable**: :meth:`Gallery.enroll`, :meth:`~Gallery.remove` and :meth:`~Gallery.set_threshold`
  write the file before they return.
* **Concurrent writers**: each mutation takes an exclusive :func:`fcntl.flock` on the sibling
  ``<path>.lock`` (created once, never removed), re-reads the file under it, applies the change
  and writes, so two processes enrolling at once both keep their entries. Readers need no lock
  (the file is replaced atomically); a :class:`Gallery` answers from the latest committed file
  (it compares the file's trailing checksum with the one it loaded before each query and
  reloads when they differ). Temporary files left by a killed writer are removed by the next
  writer under the lock.

Each write rewrites the whole file (``4 * rows * dim`` bytes plus the names): fine for the
galleries of an embedded system (thousands to a few hundred thousand embeddings); use
:meth:`Gallery.enroll_many` to add many at once.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import glob
import hashlib
import json
import math
import operator
import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from faceopt.io import atomic_write_bytes
from faceopt.recognition.metrics import threshold_at_fmr

__all__ = ["FORMAT_VERSION", "SCHEMA", "Gallery", "GalleryError", "Threshold", "create_gallery"]

SCHEMA = "faceopt.gallery"
FORMAT_VERSION = 1
MAGIC = b"FACEOPT-GALLERY\n"
_LENGTH = struct.Struct("<Q")
_PREFIX = len(MAGIC) + _LENGTH.size
_DIGEST = hashlib.sha256().digest_size
_UNIT_TOLERANCE = 1e-3


class GalleryError(ValueError):
    """A gallery file that cannot be read as one: another schema, a newer version, a bad
    checksum, a truncated or garbage file. The message names the file and the fix."""


@dataclass(frozen=True)
class Threshold:
    """The verification threshold stored with a gallery: accept when ``cosine >= value``.

    ``fmr`` is the target false-match rate it was chosen for, ``method`` says how it was chosen
    (for instance "threshold_at_fmr over 10000 impostor scores of LFW"), ``set_at`` is when
    (ISO 8601, UTC)."""

    value: float
    fmr: float
    method: str
    set_at: str


class _Snapshot:
    """One committed state of the gallery file (immutable once built)."""

    def __init__(self, dim: int, row_names: list[str], matrix: NDArray[np.float32],
                 threshold: Threshold | None, digest: bytes = b"") -> None:
        self.dim = dim
        self.row_names = row_names
        self.matrix = matrix
        self.matrix.setflags(write=False)
        self.threshold = threshold
        self.digest = digest
        uniq, owner = np.unique(np.asarray(row_names, dtype=str), return_inverse=True)
        self.names: list[str] = [str(n) for n in uniq]  # sorted, distinct
        self.owner: NDArray[np.intp] = owner.reshape(-1).astype(np.intp)
        self.index = {n: i for i, n in enumerate(self.names)}

    @classmethod
    def empty(cls, dim: int) -> _Snapshot:
        return cls(dim, [], np.zeros((0, dim), dtype=np.float32), None)


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` for the block (released on close, or by the
    kernel when the process dies)."""
    lock = _lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename of the new file durable (a power cut after it keeps the new file)."""
    with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporary files of :func:`atomic_write_bytes` for ``path`` left by a killed writer.
    Called with the lock held: every writer of ``path`` holds it, so none is in use."""
    for tmp in glob.glob(os.path.join(glob.escape(str(path.parent)), f".{glob.escape(path.name)}.*.tmp")):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _encode(header: dict[str, Any], matrix: NDArray[np.float32]) -> bytes:
    """The bytes of a gallery file: magic, header length, JSON header, float32 rows, SHA-256."""
    head = json.dumps(header, sort_keys=True, ensure_ascii=False, allow_nan=False).encode("utf-8")
    body = MAGIC + _LENGTH.pack(len(head)) + head + np.ascontiguousarray(matrix, dtype="<f4").tobytes()
    return body + hashlib.sha256(body).digest()


def _header(snap: _Snapshot) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "version": FORMAT_VERSION,
        "dim": snap.dim,
        "rows": len(snap.row_names),
        "dtype": "<f4",
        "names": snap.row_names,
        "threshold": None if snap.threshold is None else asdict(snap.threshold),
    }


_RESTORE = "restore it from a backup, or create a new gallery with Gallery.create(path, dim) and enrol again"


def _decode(path: Path, data: bytes) -> _Snapshot:
    """Parse and check the bytes of a gallery file (see the module docstring for the order)."""
    def fail(what: str, fix: str = _RESTORE) -> GalleryError:
        return GalleryError(f"gallery file {path}: {what}; {fix}")

    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise fail(f"truncated ({len(data)} bytes, not even the magic bytes)")
        raise fail(f"not a faceopt gallery file (it starts with {data[:16]!r}, not {MAGIC!r}): "
                           "garbage or another format", "point Gallery at a gallery file, or " + _RESTORE)
    if len(data) < _PREFIX:
        raise fail(f"truncated ({len(data)} bytes, the header length is cut off)")
    (head_len,) = _LENGTH.unpack_from(data, len(MAGIC))
    if _PREFIX + head_len + _DIGEST > len(data):
        raise fail(f"truncated ({len(data)} bytes, the {head_len}-byte header and checksum do not fit)")
    try:
        header = json.loads(data[_PREFIX:_PREFIX + head_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise fail(f"the header is not valid JSON ({e}): the file is damaged")
    if not isinstance(header, dict):
        raise fail("the header is not a JSON object: the file is damaged")
    schema = header.get("schema")
    if schema != SCHEMA:
        raise fail(f"schema {schema!r}, not {SCHEMA!r}: another kind of file",
                           "point Gallery at a gallery file, or create one with Gallery.create(path, dim)")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise fail(f"format version {version!r} is not a version of {SCHEMA}: the file is damaged")
    if version > FORMAT_VERSION:
        raise fail(f"format version {version} was written by a newer faceopt (this one reads up to "
                           f"version {FORMAT_VERSION})", "upgrade faceopt to read it")
    dim, rows = header.get("dim"), header.get("rows")
    if not (isinstance(dim, int) and isinstance(rows, int)) or isinstance(dim, bool) or isinstance(rows, bool) \
            or dim < 1 or rows < 0:
        raise fail(f"dim {dim!r} and rows {rows!r} are not a positive and a non-negative integer")
    if header.get("dtype") != "<f4":
        raise fail(f"dtype {header.get('dtype')!r}, not '<f4': the file is damaged")
    expected = _PREFIX + head_len + 4 * rows * dim + _DIGEST
    if len(data) < expected:
        raise fail(f"truncated ({len(data)} bytes, its header says {expected})")
    if len(data) > expected:
        raise fail(f"{len(data) - expected} bytes after the end its header gives ({expected} bytes): "
                           "the file is damaged")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise fail("the SHA-256 checksum does not match the content: the file was changed or damaged "
                           "after it was written")
    names = header.get("names")
    if not isinstance(names, list) or len(names) != rows or not all(isinstance(n, str) and n for n in names):
        raise fail(f"'names' is not a list of {rows} non-empty strings")
    matrix = np.frombuffer(data, dtype="<f4", count=rows * dim, offset=_PREFIX + head_len)
    matrix = matrix.reshape(rows, dim).astype(np.float32)  # a native-order copy
    if not np.isfinite(matrix).all():
        raise fail("the embeddings contain NaN or infinity")
    if rows and np.abs(np.linalg.norm(matrix, axis=1) - 1.0).max() > _UNIT_TOLERANCE:
        raise fail("the embeddings are not unit vectors")
    return _Snapshot(dim, names, matrix, _decode_threshold(header.get("threshold"), fail), digest)


def _decode_threshold(raw: object, fail: Callable[[str], GalleryError]) -> Threshold | None:
    if raw is None:
        return None
    keys = {"value", "fmr", "method", "set_at"}
    if not isinstance(raw, dict) or set(raw) != keys:
        raise fail(f"'threshold' is neither null nor an object with the keys {sorted(keys)}")
    try:
        return _checked_threshold(raw["value"], raw["fmr"], raw["method"], raw["set_at"])
    except (TypeError, ValueError) as e:
        raise fail(f"'threshold' is invalid ({e})") from None


def _checked_threshold(value: object, fmr: object, method: object, set_at: object) -> Threshold:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"the threshold must be a number, got {value!r}")
    if isinstance(fmr, bool) or not isinstance(fmr, (int, float, np.floating, np.integer)):
        raise TypeError(f"fmr must be a number, got {fmr!r}")
    v, r = float(value), float(fmr)
    if not math.isfinite(v):
        raise ValueError(f"the threshold must be finite, got {value!r}")
    if not (0.0 < r <= 1.0):
        raise ValueError(f"fmr must lie in (0, 1], got {fmr!r}")
    if not isinstance(method, str) or not method.strip():
        raise ValueError("method must say how the threshold was chosen (a non-empty string)")
    if not isinstance(set_at, str):
        raise TypeError(f"set_at must be an ISO 8601 string, got {set_at!r}")
    return Threshold(v, r, method, set_at)


def _read(path: Path) -> _Snapshot:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no gallery file at {path}; create one with Gallery.create({str(path)!r}, dim)") from None
    return _decode(path, data)


def _write(path: Path, snap: _Snapshot) -> _Snapshot:
    """Write ``snap`` atomically and durably (the caller holds the lock); return it with its digest."""
    data = _encode(_header(snap), snap.matrix)
    _remove_stale_temporaries(path)
    atomic_write_bytes(path, data)
    _fsync_dir(path.parent)
    return _Snapshot(snap.dim, snap.row_names, snap.matrix, snap.threshold, data[-_DIGEST:])


class Gallery:
    """A persistent gallery of L2-normalised face embeddings under names (see the module docstring).

    ``Gallery(path)`` opens an existing gallery file; :meth:`create` (or :func:`create_gallery`)
    makes an empty one of a given embedding dimension."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open the gallery file at ``path``; raises :class:`FileNotFoundError` (with the command
        that creates it) if there is none, :class:`GalleryError` if it is not a valid gallery."""
        self.path = Path(path)
        self._mutex = threading.RLock()
        self._snap = _read(self.path)

    @classmethod
    def create(cls, path: str | os.PathLike[str], dim: int, *, exist_ok: bool = False) -> Gallery:
        """Create an empty gallery of ``dim``-dimensional embeddings at ``path`` and open it.

        An existing file raises :class:`FileExistsError`, unless ``exist_ok`` and it is a gallery
        of the same dimension, which is then opened as it is."""
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"the embedding dimension must be a positive integer, got {dim!r}")
        p = Path(path)
        with _file_lock(p):
            if p.exists():
                if not exist_ok:
                    raise FileExistsError(f"{p} already exists; open it with Gallery({str(p)!r}), or pass "
                                          "exist_ok=True, or remove it first")
                existing = _read(p)
                if existing.dim != dim:
                    raise GalleryError(f"gallery file {p} holds {existing.dim}-d embeddings, not {int(dim)}-d; "
                                       "use another path for the new gallery")
            else:
                _write(p, _Snapshot.empty(int(dim)))
        return cls(p)

    # --- reading -----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        return self._snap.dim

    def names(self) -> list[str]:
        """The enrolled names, sorted, each once."""
        return list(self._current().names)

    def __len__(self) -> int:
        """The number of enrolled names (not embeddings: see :attr:`num_embeddings`)."""
        return len(self._current().names)

    def __contains__(self, name: object) -> bool:
        return name in self._current().index

    @property
    def num_embeddings(self) -> int:
        """The number of stored embeddings (rows), over all names."""
        return len(self._current().row_names)

    def embeddings(self, name: str) -> NDArray[np.float32]:
        """A copy of the unit embeddings stored under ``name``, in enrolment order, shape ``(m, dim)``."""
        snap = self._current()
        return snap.matrix[snap.owner == self._name_index(snap, name)].copy()

    @property
    def threshold(self) -> float | None:
        """The verification threshold (accept when ``cosine >= threshold``), None until set."""
        t = self._current().threshold
        return None if t is None else t.value

    @property
    def threshold_info(self) -> Threshold | None:
        """The threshold with its target FMR, how and when it was chosen; None until set."""
        return self._current().threshold

    def identify(self, embedding: ArrayLike, k: int = 1) -> list[tuple[str, float]]:
        """The ``k`` names most similar to the probe ``embedding``, best first, as ``(name, cosine)``.

        Exact search: one matrix-vector product of the float32 gallery matrix with the unit
        probe gives every stored cosine; a name scores its best embedding (the maximum cosine).
        Fewer than ``k`` names are returned when fewer are enrolled; ties go to the name that
        sorts first."""
        try:
            top = -1 if isinstance(k, bool) else operator.index(k)
        except TypeError:
            top = -1
        if top < 1:
            raise ValueError(f"gallery {self.path}: k must be a positive integer, got {k!r}")
        snap = self._current()
        q = self._unit(embedding, snap.dim, "probe")
        if not snap.names:
            return []
        scores = snap.matrix @ q  # (rows,): all cosines in one matmul
        best = np.full(len(snap.names), -np.inf, dtype=np.float32)
        np.maximum.at(best, snap.owner, scores)  # a name's score: its best embedding
        order = np.argsort(-best, kind="stable")[:top]  # names are sorted, so ties go to the first name
        return [(snap.names[i], float(best[i])) for i in order]

    def verify(self, name: str, embedding: ArrayLike) -> tuple[float, bool]:
        """``(cosine, accepted)``: the probe's best cosine over ``name``'s embeddings, and whether it
        reaches the stored threshold (``cosine >= threshold``). Raises :class:`KeyError` for a name
        not enrolled and :class:`ValueError` when no threshold is set."""
        snap = self._current()
        i = self._name_index(snap, name)
        q = self._unit(embedding, snap.dim, "probe")
        if snap.threshold is None:
            raise ValueError(f"gallery {self.path} has no verification threshold; set one with "
                             "set_threshold(value, fmr=...) or set_threshold_for_fmr(impostor_scores, fmr)")
        score = float((snap.matrix[snap.owner == i] @ q).max())
        return score, score >= snap.threshold.value

    # --- writing -----------------------------------------------------------------------------

    def enroll(self, name: str, embedding: ArrayLike) -> int:
        """Add ``embedding`` (L2-normalised here) under ``name``, written to disk before returning.
        Returns how many embeddings ``name`` now has."""
        return self.enroll_many([(name, embedding)])[name]

    def enroll_many(self, items: Iterable[tuple[str, ArrayLike]]) -> dict[str, int]:
        """Add several ``(name, embedding)`` pairs in one write (all or none are committed).
        Returns, for each name given, how many embeddings it now has."""
        items = list(items)
        for name, _ in items:
            self._check_name(name)

        def change(snap: _Snapshot) -> _Snapshot:
            rows = [self._unit(e, snap.dim, f"embedding for {n!r}") for n, e in items]
            if not rows:
                return snap
            matrix = np.concatenate([snap.matrix, np.stack(rows)], axis=0)
            return _Snapshot(snap.dim, snap.row_names + [n for n, _ in items], matrix, snap.threshold)

        snap = self._mutate(change)
        counts = {n: int(np.count_nonzero(snap.owner == snap.index[n])) for n, _ in items}
        return counts

    def remove(self, name: str) -> int:
        """Remove every embedding of ``name`` (written to disk before returning); returns how many.
        Raises :class:`KeyError` for a name not enrolled."""
        removed = 0

        def change(snap: _Snapshot) -> _Snapshot:
            nonlocal removed
            keep = snap.owner != self._name_index(snap, name)
            removed = int(np.count_nonzero(~keep))
            return _Snapshot(snap.dim, [n for n, kept in zip(snap.row_names, keep) if kept],
                             snap.matrix[keep], snap.threshold)

        self._mutate(change)
        return removed

    def set_threshold(self, value: float, *, fmr: float, method: str = "set by hand") -> Threshold:
        """Store the verification threshold ``value`` chosen for the target false-match rate ``fmr``
        with the gallery, with ``method`` saying how it was chosen; written before returning."""
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        t = _checked_threshold(value, fmr, method, now)

        def change(snap: _Snapshot) -> _Snapshot:
            return _Snapshot(snap.dim, snap.row_names, snap.matrix, t)

        self._mutate(change)
        return t

    def set_threshold_for_fmr(self, impostor_scores: ArrayLike, fmr: float, *, source: str = "") -> Threshold:
        """Choose the threshold with :func:`faceopt.recognition.metrics.threshold_at_fmr` (the smallest
        with ``FMR <= fmr`` on these impostor cosines) and store it; ``source`` names the data."""
        scores = np.asarray(impostor_scores, dtype=np.float64).ravel()
        value = threshold_at_fmr(scores, fmr)
        if not math.isfinite(value):
            raise ValueError(f"fmr={fmr!r} accepts every one of the {scores.size} impostor scores: no threshold "
                             "to store; ask for a smaller fmr or give more impostor scores")
        method = f"threshold_at_fmr over {scores.size} impostor scores" + (f" of {source}" if source else "")
        return self.set_threshold(value, fmr=fmr, method=method)

    def reload(self) -> None:
        """Read the file again (queries already do when it changed)."""
        with self._mutex:
            self._snap = _read(self.path)

    def __repr__(self) -> str:
        snap = self._snap
        return (f"Gallery({str(self.path)!r}: {len(snap.names)} names, {len(snap.row_names)} embeddings, "
                f"dim {snap.dim}, threshold {None if snap.threshold is None else snap.threshold.value})")

    # --- helpers -----------------------------------------------------------------------------

    def _current(self) -> _Snapshot:
        """The latest committed state: the loaded one if the file's trailing checksum still matches."""
        with self._mutex:
            try:
                with open(self.path, "rb") as f:
                    f.seek(-_DIGEST, os.SEEK_END)
                    tail = f.read(_DIGEST)
            except OSError:
                tail = b""  # missing or shorter than a checksum: the full read says why
            if tail != self._snap.digest:
                self._snap = _read(self.path)
            return self._snap

    def _mutate(self, change: Callable[[_Snapshot], _Snapshot]) -> _Snapshot:
        """Read-modify-write under the file lock: re-read the file, apply ``change``, write it."""
        with self._mutex, _file_lock(self.path):
            snap = change(_read(self.path))
            self._snap = _write(self.path, snap)
            return self._snap

    def _name_index(self, snap: _Snapshot, name: str) -> int:
        try:
            return snap.index[name]
        except (KeyError, TypeError):
            raise KeyError(f"{name!r} is not enrolled in gallery {self.path}") from None

    def _check_name(self, name: object) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"gallery {self.path}: a name must be a non-empty string, got {name!r}")

    def _unit(self, embedding: ArrayLike, dim: int, what: str) -> NDArray[np.float32]:
        """``embedding`` as a float32 unit vector of length ``dim``, or a ValueError naming the file."""
        try:
            v = np.asarray(embedding, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"gallery {self.path}: the {what} is not a numeric vector ({e})") from None
        if v.shape != (dim,):
            raise ValueError(f"gallery {self.path}: the {what} has shape {v.shape}; this gallery holds "
                             f"{dim}-d vectors, shape ({dim},)")
        if not np.isfinite(v).all():
            raise ValueError(f"gallery {self.path}: the {what} contains NaN or infinity")
        norm = float(np.linalg.norm(v))
        if norm == 0.0 or not math.isfinite(norm):
            raise ValueError(f"gallery {self.path}: the {what} is a zero vector (or too large to normalise)")
        u = (v / norm).astype(np.float32)
        return u


def create_gallery(path: str | os.PathLike[str], dim: int, *, exist_ok: bool = False) -> Gallery:
    """Create an empty gallery of ``dim``-dimensional embeddings at ``path`` (see :meth:`Gallery.create`)."""
    return Gallery.create(path, dim, exist_ok=exist_ok)
