"""insightface verification sets (``lfw.bin``, ``agedb_30.bin``, ``cfp_fp.bin``), read safely.

Each file is a pickle of ``(bins, issame_list)``: ``bins`` holds ``2 N`` encoded images (pair
``i`` is ``bins[2i], bins[2i+1]``) and ``issame_list`` ``N`` booleans. A pickle can run any
code it names, so these files are read with :class:`SafeUnpickler`, which imports nothing.
``find_class`` refuses every global except four, and for those returns a harmless stand-in,
never the real object:

* ``_codecs.encode(s, "latin1")``: how Python 3 writes ``bytes`` at protocol 2 (latin-1 only);
* ``builtins.bytes()`` / ``__builtin__.bytes()``: the empty ``bytes`` at protocol 2;
* ``numpy.dtype`` + ``numpy.core.multiarray.scalar`` (or ``numpy._core.multiarray.scalar``):
  a numpy ``bool_`` in ``issame_list`` of older files; admitted for the bool dtype only and
  converted to a Python ``bool``. Any other dtype is refused.

Python 2 files (``str`` images) are read with ``encoding="bytes"`` as insightface does.

Hostile files fail with a :class:`ValueError` that names the file, before anything large is
allocated: the pickle may not nest tuples more than 100 deep (hashing them would overflow the C
stack), may not reference one image from several places, may
not decode to more than ``max_total_pixels``, and no image may declare (in its PNG/JPEG header)
more than ``max_image_pixels`` before it is decoded.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from faceopt.data.errors import DataFileError
from faceopt.data.images import DEFAULT_MAX_IMAGE_PIXELS, decode_image
from faceopt.pickle_nesting import first_deep_nesting

DEFAULT_MAX_TOTAL_PIXELS = 1 << 30
"""Largest ``2N x H x W`` a ``.bin`` may decode to (3 GiB as BGR uint8); LFW at 112 x 112 is 0.15 G."""
# Hashing a deeply nested tuple (a set element, a dict key) recurses in C without a depth check and
# crashes the interpreter, so tuples (and frozensets) nested deeper than this are refused before
# unpickling. A .bin nests 3 deep at most (a numpy bool's dtype state inside its reduce arguments).
_MAX_NESTING = 100


class VerificationBinError(DataFileError, pickle.UnpicklingError):
    """A ``.bin`` that is corrupt, hostile or not a verification set (a ValueError and an UnpicklingError)."""


class _BoolDtype:
    """Stand-in for ``numpy.dtype('b1')``; accepts (and ignores) the pickled dtype state."""

    def __setstate__(self, state: Any) -> None:
        pass


def _make_safe_globals(path: str) -> dict[tuple[str, str], Any]:
    def refuse(what: str) -> VerificationBinError:
        return VerificationBinError(f"{path}: refusing {what}; a verification .bin holds only "
                                      f"bytes, lists and bools")

    def codecs_encode(s: Any, encoding: Any = "utf-8", *rest: Any) -> bytes:
        enc = encoding.decode() if isinstance(encoding, bytes) else encoding
        if not isinstance(s, str) or enc != "latin1" or rest:
            raise refuse(f"_codecs.encode with arguments other than (str, 'latin1'): {enc!r}")
        return s.encode("latin1")

    def empty_bytes(*args: Any) -> bytes:
        if args:
            raise refuse("builtins.bytes with arguments")
        return b""

    def dtype(name: Any, *args: Any) -> _BoolDtype:
        n = name.decode() if isinstance(name, bytes) else name
        if n not in ("b1", "?", "bool"):
            raise refuse(f"numpy.dtype({n!r}) (only the bool dtype is admitted)")
        return _BoolDtype()

    def scalar(dt: Any, data: Any = b"", *rest: Any) -> bool:
        if isinstance(data, str):  # Python 2 str decoded as text
            data = data.encode("latin1")
        if not isinstance(dt, _BoolDtype) or not isinstance(data, bytes) or len(data) != 1 or rest:
            raise refuse("numpy.core.multiarray.scalar other than a single numpy bool")
        return data != b"\x00"

    return {("_codecs", "encode"): codecs_encode,
            ("builtins", "bytes"): empty_bytes, ("__builtin__", "bytes"): empty_bytes,
            ("numpy", "dtype"): dtype,
            ("numpy.core.multiarray", "scalar"): scalar,
            ("numpy._core.multiarray", "scalar"): scalar}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that imports nothing; see the module docstring for the four stand-ins."""

    def __init__(self, file: io.BufferedIOBase, name: str = "<pickle>") -> None:
        super().__init__(file, encoding="bytes")
        self._name = name
        self._safe = _make_safe_globals(name)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._safe[(module, name)]
        except KeyError:
            raise VerificationBinError(
                f"{self._name}: refusing to load global {module}.{name}; a verification .bin holds "
                f"only bytes, lists and bools, so this file is not one (or was tampered with)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise VerificationBinError(f"{self._name}: refusing persistent id {pid!r}")


def _refuse_deep_nesting(data: bytes, name: str) -> None:
    """Refuse tuples nested deeper than ``_MAX_NESTING`` (see :mod:`faceopt.pickle_nesting`); malformed streams pass."""
    found = first_deep_nesting(data, _MAX_NESTING)
    if found is not None:
        depth, pos = found
        raise VerificationBinError(f"{name}: tuples nested {depth} deep at byte {pos} (the cap is {_MAX_NESTING}); "
                                   f"a verification .bin nests 3 deep at most, so this file is not one")


def safe_load(path: str | os.PathLike) -> Any:
    """Unpickle ``path`` with :class:`SafeUnpickler`; every failure is a :class:`VerificationBinError` naming it."""
    data = Path(path).read_bytes()  # from memory, a length field cannot ask the file object for more than it holds
    try:
        _refuse_deep_nesting(data, str(path))
        return SafeUnpickler(io.BytesIO(data), str(path)).load()
    except VerificationBinError:
        raise
    except Exception as e:  # EOFError, TypeError, MemoryError, RecursionError, ...: all mean a bad file
        raise VerificationBinError(f"{path}: cannot unpickle it ({type(e).__name__}: {e}); the file is truncated, "
                                   f"corrupt or not an insightface verification .bin; download it again") from e


def _check_structure(path: Path, obj: Any) -> tuple[Sequence[Any], Sequence[Any]]:
    """(bins, issame) of an unpickled ``.bin``, refusing any other shape."""
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise ValueError(f"{path}: expected a pickled (bins, issame_list) pair, got {type(obj).__name__}")
    bins, issame = obj
    if not isinstance(bins, (list, tuple)) or not isinstance(issame, (list, tuple)):
        raise ValueError(f"{path}: bins and issame_list must be lists, got "
                         f"{type(bins).__name__} and {type(issame).__name__}")
    if len(bins) != 2 * len(issame):
        raise ValueError(f"{path}: {len(bins)} images for {len(issame)} pairs (need 2 per pair); "
                         f"the file is mislabelled or truncated")
    if not all(isinstance(s, bool) or (isinstance(s, int) and s in (0, 1)) for s in issame):
        raise ValueError(f"{path}: issame_list holds values other than booleans")
    return bins, issame


def _check_image_count(path: Path, bins: Sequence[Any], h: int, w: int, max_total_pixels: int) -> None:
    """Refuse, before allocating the output, a file whose image list outgrows what it stores."""
    first: dict[int, int] = {}
    for i, b in enumerate(bins):
        if isinstance(b, (bytes, bytearray)) and len(b) > 1:  # bytes of length 0 and 1 are shared singletons
            j = first.setdefault(id(b), i)
            if j != i:
                raise ValueError(f"{path}: image {i} is the same pickled object as image {j}; an insightface .bin "
                                 f"stores every image once, and repeated references make a small file "
                                 f"({path.stat().st_size} bytes) decode to a huge array; the file was tampered with")
    total = len(bins) * h * w
    if total > max_total_pixels:
        raise ValueError(f"{path}: {len(bins)} images of {h}x{w} would decode to {total} pixels "
                         f"({3 * total / 2**30:.1f} GiB), above the cap of {max_total_pixels} (max_total_pixels); "
                         f"pass a larger max_total_pixels or a smaller image_size if the file is genuine")


def load_verification_bin(path: str | os.PathLike, image_size: int | tuple[int, int] = 112, *,
                          max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
                          max_total_pixels: int = DEFAULT_MAX_TOTAL_PIXELS) -> tuple[np.ndarray, np.ndarray]:
    """(BGR uint8 images [2N, H, W, 3], issame bool [N]) from an insightface ``.bin``.

    Images not of ``image_size`` (an int or ``(H, W)``) are resized bilinearly. Every failure on a
    bad file is a ``ValueError`` naming it; ``max_image_pixels`` caps each encoded image (read from
    its header before decoding) and ``max_total_pixels`` the decoded array (``2N * H * W``).
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    bins, issame = _check_structure(path, safe_load(path))
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    _check_image_count(path, bins, h, w, max_total_pixels)
    images = np.empty((len(bins), h, w, 3), dtype=np.uint8)
    for i, b in enumerate(bins):
        img = decode_image(b, f"{path}: image {i} (pair {i // 2})", max_image_pixels)
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        images[i] = img
    return images, np.asarray(issame, dtype=bool)


def write_verification_bin(path: str | os.PathLike, images: Sequence[np.ndarray | bytes],
                           issame: Sequence[bool], *, ext: str = ".png", protocol: int = 4) -> None:
    """Write an insightface-style ``.bin`` (a test and utility helper).

    ``images`` are BGR uint8 arrays (encoded with ``ext``) or already-encoded bytes, two per pair.
    """
    import cv2

    bins: list[bytes] = []
    for i, img in enumerate(images):
        if isinstance(img, (bytes, bytearray)):
            bins.append(bytes(img))
            continue
        ok, buf = cv2.imencode(ext, np.asarray(img))
        if not ok:
            raise ValueError(f"cannot encode image {i} as {ext}")
        bins.append(buf.tobytes())
    with open(path, "wb") as f:
        pickle.dump((bins, [bool(s) for s in issame]), f, protocol=protocol)
