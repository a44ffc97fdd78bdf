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
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np


class _BoolDtype:
    """Stand-in for ``numpy.dtype('b1')``; accepts (and ignores) the pickled dtype state."""

    def __setstate__(self, state: Any) -> None:
        pass


def _make_safe_globals(path: str) -> dict[tuple[str, str], Any]:
    def refuse(what: str) -> pickle.UnpicklingError:
        return pickle.UnpicklingError(f"{path}: refusing {what}; a verification .bin holds only "
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
            raise pickle.UnpicklingError(
                f"{self._name}: refusing to load global {module}.{name}; a verification .bin holds "
                f"only bytes, lists and bools, so this file is not one (or was tampered with)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"{self._name}: refusing persistent id {pid!r}")


def safe_load(path: str | os.PathLike) -> Any:
    """Unpickle ``path`` with :class:`SafeUnpickler`."""
    with open(path, "rb") as f:
        return SafeUnpickler(f, str(path)).load()


def load_verification_bin(path: str | os.PathLike, image_size: int | tuple[int, int] = 112,
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(BGR uint8 images [2N, H, W, 3], issame bool [N]) from an insightface ``.bin``.

    Images not of ``image_size`` (an int or ``(H, W)``) are resized bilinearly.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    obj = safe_load(path)
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
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    images = np.empty((len(bins), h, w, 3), dtype=np.uint8)
    for i, b in enumerate(bins):
        img = None
        if isinstance(b, (bytes, bytearray)):
            img = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{path}: image {i} (pair {i // 2}) is not a decodable encoded image "
                             f"({type(b).__name__}, {len(b) if hasattr(b, '__len__') else '?'} bytes)")
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
