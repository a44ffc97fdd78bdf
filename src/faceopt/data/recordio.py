"""insightface training sets in MXNet RecordIO (``train.rec`` + ``train.idx``), read without mxnet.

The thesis trained on MS1MV2 as distributed by insightface. The layout, following dmlc-core's
``recordio.h`` and ``mxnet.recordio``:

* ``.rec``: a sequence of records. Each starts with two little-endian uint32: the magic
  ``0xced7230a`` and ``lrecord`` (upper 3 bits ``cflag``, lower 29 bits the payload length),
  then the payload, zero-padded to a multiple of 4 bytes. ``cflag`` 0 is a whole record; a
  payload that contains the magic at a 4-aligned position is split at it into parts with cflag
  1 (first), 2 (middle), 3 (last), and the reader joins the parts with the magic in between.
* payload: an ``IRHeader`` packed as ``<IfQQ`` (flag uint32, label float32, id uint64,
  id2 uint64, 24 bytes). If ``flag > 0`` the scalar label is unused and ``flag`` float32 labels
  follow. The rest is the encoded image (JPEG or PNG).
* ``.idx``: text, one ``key<TAB>offset`` line per record (the byte offset of its magic).
* insightface's convention: if record 0 has ``flag > 0``, its labels ``(start, end)`` say that
  records ``1 .. start-1`` are images and ``start .. end-1`` are per-identity headers (each
  with labels ``(first_image, end_image)``). Otherwise every key in the ``.idx`` is an image.
  An image's label is its scalar label, or its first label when ``flag > 0``.
* ``property`` (optional, next to ``train.rec``): ``num_classes,height,width``.

Every failure on a bad file is a ``ValueError`` naming it (``OSError`` for the system's own):
key ranges in record 0 are checked against the ``.idx`` and the file size before anything is
allocated, labels must be finite, and an image's header size is checked against
``max_image_pixels`` before it is decoded.
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from faceopt.data.images import DEFAULT_MAX_IMAGE_PIXELS, decode_image

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_IR_FORMAT = "<IfQQ"
_IR_SIZE = struct.calcsize(_IR_FORMAT)  # 24
_LEN_MASK = (1 << 29) - 1
_MIN_RECORD_SIZE = 8 + _IR_SIZE  # record header + IRHeader: no record in a valid .rec is shorter


@dataclass(frozen=True)
class IRHeader:
    """The header MXNet's ``recordio.pack`` puts before each image."""

    flag: int
    label: float | np.ndarray
    id: int
    id2: int


def pack_header(header: IRHeader) -> bytes:
    """Bytes of ``header`` as ``mxnet.recordio.pack`` writes them (array labels set ``flag``)."""
    if isinstance(header.label, (int, float, np.floating, np.integer)):
        return struct.pack(_IR_FORMAT, 0, float(header.label), header.id, header.id2)
    labels = np.asarray(header.label, dtype="<f4").ravel()
    return struct.pack(_IR_FORMAT, labels.size, 0.0, header.id, header.id2) + labels.tobytes()


def unpack_payload(payload: bytes, where: str = "record") -> tuple[IRHeader, bytes]:
    """Split a record payload into its ``IRHeader`` and the image bytes."""
    if len(payload) < _IR_SIZE:
        raise ValueError(f"{where}: payload of {len(payload)} bytes is shorter than the "
                         f"{_IR_SIZE}-byte IRHeader; is this an insightface/MXNet image .rec?")
    flag, label, id_, id2 = struct.unpack(_IR_FORMAT, payload[:_IR_SIZE])
    rest = payload[_IR_SIZE:]
    if flag > 0:
        if len(rest) < 4 * flag:
            raise ValueError(f"{where}: IRHeader says {flag} float labels follow but only "
                             f"{len(rest)} bytes remain; the record is corrupt")
        labels = np.frombuffer(rest, dtype="<f4", count=flag).copy()
        if not np.isfinite(labels).all():
            raise ValueError(f"{where}: IRHeader labels {labels[:8].tolist()} include NaN or infinity; "
                             f"the record is corrupt")
        return IRHeader(flag, labels, id_, id2), rest[4 * flag:]
    if not math.isfinite(label):
        raise ValueError(f"{where}: IRHeader label is {label}, not a finite number; the record is corrupt")
    return IRHeader(flag, float(label), id_, id2), rest


def _idx_lines(path_idx: Path) -> Iterable[tuple[int, str]]:
    """(line number, text) of an ``.idx``, refusing non-ASCII bytes with the line that holds them."""
    with open(path_idx, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield lineno, raw.decode("ascii")
            except UnicodeDecodeError:
                raise ValueError(f"{path_idx}:{lineno}: non-ASCII bytes {raw[:40]!r}; an .idx is ASCII text, "
                                 f"one 'key<TAB>offset' per line; is this the .idx of an MXNet .rec?") from None


def _read_idx(path_idx: Path) -> dict[int, int]:
    keys: dict[int, int] = {}
    for lineno, line in _idx_lines(path_idx):
        if not line.strip():
            continue
        parts = line.split()
        try:
            key, offset = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            raise ValueError(f"{path_idx}:{lineno}: expected 'key<TAB>offset', got "
                             f"{line.rstrip()!r}; is this the .idx of an MXNet .rec?") from None
        if offset < 0:
            raise ValueError(f"{path_idx}:{lineno}: negative offset {offset}")
        keys[key] = offset
    return keys


class RecordIOReader:
    """Random access to an indexed RecordIO file; safe to use from DataLoader workers.

    ``read``, ``image`` and ``label`` take record keys (those of the ``.idx``);
    ``image_keys`` lists the keys that hold images and ``len()`` counts them.
    """

    def __init__(self, path_rec: str | os.PathLike, path_idx: str | os.PathLike | None = None, *,
                 max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        self.path_rec = Path(path_rec)
        self.max_image_pixels = max_image_pixels
        self.path_idx = Path(path_idx) if path_idx is not None else self.path_rec.with_suffix(".idx")
        for p in (self.path_rec, self.path_idx):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found (RecordIO needs both the .rec and its .idx)")
        self._size = self.path_rec.stat().st_size
        self.offsets = _read_idx(self.path_idx)
        if not self.offsets:
            raise ValueError(f"{self.path_idx} lists no records")
        for key, off in self.offsets.items():
            if off + 8 > self._size:
                raise ValueError(f"{self.path_idx}: key {key} points at offset {off}, past the end of "
                                 f"{self.path_rec} ({self._size} bytes); the .idx does not belong to "
                                 f"this .rec or the .rec is truncated")
        self._fh = None
        self._pid = -1
        self.header0: tuple[int, int] | None = None
        self.image_keys: list[int] = self._find_image_keys()

    def _header_range(self, head: IRHeader) -> tuple[int, int]:
        """(start, end) of header record 0, checked against the .idx and the file size before any use."""
        where = f"{self.path_rec}: header record 0"
        label = np.asarray(head.label)
        if label.size < 2:
            raise ValueError(f"{where} has {label.size} label(s); insightface's header holds two, (start, end) of the "
                             f"identity headers; the record is corrupt")
        lo, hi = float(label[0]), float(label[1])  # finite: unpack_payload refuses NaN and infinity
        if lo != int(lo) or hi != int(hi):
            raise ValueError(f"{where} says (start, end) = ({lo}, {hi}), not whole key numbers; the record is corrupt")
        start, end = int(lo), int(hi)
        if start > len(self.offsets) or start - 1 > self._size // _MIN_RECORD_SIZE:
            raise ValueError(f"{where} says images are keys 1..{start - 1}, but {self.path_idx} lists only "
                             f"{len(self.offsets)} records and {self._size} bytes hold at most "
                             f"{self._size // _MIN_RECORD_SIZE} ({_MIN_RECORD_SIZE} bytes each); the header is corrupt "
                             f"or the .rec was cut short: download it again")
        if start < 1 or end < start or end - start > start - 1:
            raise ValueError(f"{where} says (start, end) = ({start}, {end}): {start - 1} images and "
                             f"{end - start} identities, which needs 1 <= start <= end and no more identities than "
                             f"images; the header is corrupt")
        return start, end

    def _find_image_keys(self) -> list[int]:
        if 0 in self.offsets:
            head, _ = self.read(0)
            if head.flag > 0:
                start, end = self._header_range(head)
                missing = [k for k in range(1, start) if k not in self.offsets]
                if missing:
                    raise ValueError(f"{self.path_rec}: header record 0 says images are keys 1..{start - 1} "
                                     f"and identity headers {start}..{end - 1}, but the .idx "
                                     f"lacks keys {missing[:5]}; "
                                     f"check that the .idx belongs to this .rec")
                self.header0 = (start, end)
                return list(range(1, start))
        return sorted(self.offsets)

    @property
    def num_classes(self) -> int | None:
        """Identities from record 0, else from the ``property`` file, else None."""
        if self.header0 is not None:
            return self.header0[1] - self.header0[0]
        prop = self.path_rec.parent / "property"
        if prop.is_file():
            text = prop.read_bytes()[:200].decode("ascii", errors="replace")
            try:
                return int(text.strip().split(",")[0])
            except ValueError:
                raise ValueError(f"{prop}: expected 'num_classes,height,width', got {text[:60]!r}; fix or delete "
                                 f"the file") from None
        return None

    def __len__(self) -> int:
        return len(self.image_keys)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_fh"], state["_pid"] = None, -1
        return state

    def _file(self):
        if self._fh is None or self._pid != os.getpid():  # a forked worker gets its own handle
            self._fh = open(self.path_rec, "rb")
            self._pid = os.getpid()
        return self._fh

    def close(self) -> None:
        """Close the file handle (reopened on the next read)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def read_raw(self, key: int) -> bytes:
        """The payload of record ``key``, multi-part records joined."""
        if key not in self.offsets:
            raise KeyError(f"{self.path_idx} has no key {key}")
        offset = self.offsets[key]
        f = self._file()
        f.seek(offset)
        parts: list[bytes] = []
        pos = offset
        while True:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError(f"{self.path_rec}: truncated record header at offset {pos} (key {key}); "
                                 f"the file ends at {self._size} bytes, was the download cut short?")
            magic, lrec = struct.unpack("<II", head)
            if magic != MAGIC:
                raise ValueError(f"{self.path_rec}: wrong magic 0x{magic:08x} at offset {pos} (key {key}), "
                                 f"expected 0x{MAGIC:08x}; check that {self.path_idx.name} belongs to "
                                 f"this .rec and that the file is an MXNet RecordIO")
            cflag, length = lrec >> 29, lrec & _LEN_MASK
            expect_first = not parts
            if (cflag in (0, 1)) != expect_first:
                raise ValueError(f"{self.path_rec}: record part with cflag {cflag} at offset {pos} "
                                 f"(key {key}) is out of sequence; the .idx offset may point into "
                                 f"the middle of a multi-part record")
            remain = max(self._size - pos - 8, 0)
            if length > remain:  # checked before reading: a corrupt length must not allocate it
                raise ValueError(f"{self.path_rec}: truncated record at offset {pos} (key {key}): "
                                 f"needs {length} bytes, {remain} remain; was the download cut short?")
            parts.append(f.read(length))
            padded = (length + 3) & ~3
            f.seek(padded - length, os.SEEK_CUR)
            pos += 8 + padded
            if cflag in (0, 3):
                return _MAGIC_BYTES.join(parts)

    def read(self, key: int) -> tuple[IRHeader, bytes]:
        """(IRHeader, encoded image bytes) of record ``key``."""
        return unpack_payload(self.read_raw(key), f"{self.path_rec} key {key} "
                                                  f"(offset {self.offsets.get(key)})")

    def label(self, key: int) -> int:
        """Integer identity of image record ``key``."""
        head, _ = self.read(key)
        lab = float(head.label[0] if isinstance(head.label, np.ndarray) else head.label)
        if lab != int(lab):  # finite: unpack_payload refuses NaN and infinity
            raise ValueError(f"{self.path_rec}: record key {key} has label {lab}, not a whole identity number; "
                             f"the record is corrupt")
        return int(lab)

    def image(self, key: int) -> np.ndarray:
        """Decoded BGR uint8 image [H, W, 3] of record ``key``."""
        _, img_bytes = self.read(key)
        return decode_image(img_bytes, f"{self.path_rec}: record key {key} at offset {self.offsets[key]}",
                            self.max_image_pixels)


def image_to_tensor(img_bgr: np.ndarray, size: int = 112) -> torch.Tensor:
    """BGR uint8 [H, W, 3] -> RGB float tensor [3, size, size] in [-1, 1] (arcface_torch's input)."""
    import cv2

    if img_bgr.shape[:2] != (size, size):
        img_bgr = cv2.resize(img_bgr, (size, size), interpolation=cv2.INTER_LINEAR)
    rgb = np.ascontiguousarray(img_bgr[:, :, ::-1])
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


class RecordIOFaces(Dataset):
    """Images of an insightface ``.rec`` as (RGB tensor [3, size, size] in [-1, 1], label)."""

    def __init__(self, path_rec: str | os.PathLike, path_idx: str | os.PathLike | None = None,
                 size: int = 112, *, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> None:
        self.reader = RecordIOReader(path_rec, path_idx, max_image_pixels=max_image_pixels)
        self.size = size

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        key = self.reader.image_keys[i]
        return image_to_tensor(self.reader.image(key), self.size), self.reader.label(key)


def _record_bytes(payload: bytes) -> bytes:
    """Encode one payload as dmlc's writer does, splitting at 4-aligned occurrences of the magic."""
    out = bytearray()
    start, first = 0, True
    for i in range(0, len(payload) - len(payload) % 4, 4):
        if payload[i:i + 4] == _MAGIC_BYTES:
            chunk = payload[start:i]
            out += struct.pack("<II", MAGIC, ((1 if first else 2) << 29) | len(chunk))
            out += chunk + b"\0" * (-len(chunk) % 4)
            start, first = i + 4, False
    chunk = payload[start:]
    out += struct.pack("<II", MAGIC, ((0 if first else 3) << 29) | len(chunk))
    out += chunk + b"\0" * (-len(chunk) % 4)
    return bytes(out)


def write_recordio(path_rec: str | os.PathLike, path_idx: str | os.PathLike,
                   items: Iterable[tuple[IRHeader | float | Sequence[float], bytes]],
                   *, start_key: int = 0) -> list[int]:
    """Write ``(header_or_label, image_bytes)`` items as an indexed RecordIO; returns the offsets.

    A test and utility helper (e.g. to pack a small image folder). For insightface's layout,
    pass record 0 as ``(IRHeader(2, np.array([start, end]), 0, 0), b"")``, then the images,
    then the identity headers.
    """
    offsets: list[int] = []
    with open(path_rec, "wb") as frec, open(path_idx, "w", encoding="ascii") as fidx:
        for key, (head, img) in enumerate(items, start_key):
            if not isinstance(head, IRHeader):
                if np.isscalar(head):
                    # numpy's stub narrows ``head`` to ``generic | complex | str | bytes | memoryview``
                    head = IRHeader(0, head, 0, 0)  # type: ignore[arg-type]
                else:
                    label = np.asarray(head)
                    head = IRHeader(len(label), label, 0, 0)
            offsets.append(frec.tell())
            fidx.write(f"{key}\t{offsets[-1]}\n")
            frec.write(_record_bytes(pack_header(head) + bytes(img)))
    return offsets
