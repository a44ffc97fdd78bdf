"""A reproducible fuzz campaign over every file reader of the package (issue 15, hardening item 6).

For each reader (an insightface ``.rec``/``.idx``, a verification ``.bin``, a folder of identities, a
MegaFace/FaceScrub list, a pair list, an asset archive, a training checkpoint) the campaign writes a
*valid* small input first and then malformed variants of it: targeted mutations (header fields, lengths,
keys, labels, image bytes, hostile pickle opcodes, archive headers, checkpoint keys and types) and generic
byte mutations (truncation, bit flips, interesting 32-bit words, inserted or deleted runs). Case ``i`` of a
reader is generated from ``numpy.random.default_rng([seed, crc32(reader), i])`` only, so the files of a
case depend on the seed, the reader and ``i``, not on the other cases or the folder they are written to.

Each case runs in a worker process (``multiprocessing`` spawn context) under ``RLIMIT_AS`` (the address
space it had after importing the readers plus ``memory_limit_mb``) and a per-case ``SIGALRM``; the parent
also waits at most a little longer and kills a worker that does not answer. A case's outcome is

* ``ok``: the reader returned normally;
* ``clean``: it raised one of the package's errors (:class:`~faceopt.data.errors.DataFileError`, and so
  ``VerificationBinError``; :class:`~faceopt.assets.errors.AssetError`; :class:`~faceopt.checkpoint.CheckpointError`),
  an ``OSError`` or a plain ``ValueError``, *and* the message names one of the case's input files;
* ``finding``, in one category: ``exception`` (any other exception type), ``unnamed`` (a clean type whose
  message does not name the input), ``timeout``, ``memory`` (a ``MemoryError``, raised or wrapped: the reader
  tried to grow past the limit), ``crash`` (the worker died), ``executed`` (a hostile pickle's marker file
  appeared: code named by the input ran) or ``leak`` (the reader left a process running).

Command line: ``python -m faceopt.fuzz --seed 0 --cases 50 --out results.json [--readers recordio bin]``;
exit 0 without findings, 1 with findings, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import bz2
import contextlib
import datetime
import gzip
import hashlib
import io
import json
import lzma
import multiprocessing
import os
import pickle
import re
import shutil
import signal
import struct
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

__all__ = [
    "Case",
    "Inputs",
    "Outcome",
    "Reader",
    "READERS",
    "MARKER",
    "register_reader",
    "unregister_reader",
    "classify",
    "generate_cases",
    "make_case",
    "case_digest",
    "run_cases",
    "summarize",
    "run_campaign",
    "format_table",
    "main",
]

Rng = np.random.Generator

MARKER = "FUZZ_MARKER"
"""File name a hostile input's payload would create in the case folder (the worker's working directory)."""

_MAX_ITEMS = 64  # items read per dataset: cases are small, this only bounds a mutated count
_MESSAGE_CHARS = 400


# ----------------------------------------------------------------------------- data model

@dataclass(frozen=True)
class Inputs:
    """What a mutation wrote: the path handed to the reader and the names a clean error message must cite."""

    path: Path
    names: tuple[str, ...]


Mutation = Callable[[Rng, Path], Inputs]
"""Writes one input into an empty case folder, drawing its parameters from the generator."""


@dataclass(frozen=True)
class Reader:
    """A reader under test: ``run(path)`` reads an input as the package does; ``mutations`` write inputs.

    The first mutation must write a valid input (the seed the others distort). ``run`` must be a
    module-level function (the worker receives it pickled by reference). ``preload`` lists modules the
    worker imports before its memory limit is set.
    """

    name: str
    run: Callable[[Path], object]
    mutations: dict[str, Mutation]
    preload: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Case:
    """One generated input of one reader."""

    reader: str
    name: str
    mutation: str
    index: int
    folder: Path
    path: Path
    names: tuple[str, ...]


@dataclass
class Outcome:
    """What one case did. ``kind`` is ok, clean or finding; ``category`` says which finding."""

    reader: str
    case: str
    mutation: str
    kind: str
    category: str = ""
    error_type: str = ""
    message: str = ""
    seconds: float = 0.0
    peak_mb: float = 0.0
    """Resident memory (MiB) the case added at its peak, above the worker's before it (Linux ``VmHWM``)."""


class _CaseTimeout(BaseException):
    """Raised by the worker's alarm; a BaseException so that a reader's ``except Exception`` cannot hide it."""


# ----------------------------------------------------------------------------- classification

_CLEAN = (("faceopt.data.errors", "DataFileError"), ("faceopt.assets.errors", "AssetError"),
          ("faceopt.checkpoint", "CheckpointError"))


def _clean_types() -> tuple[type[BaseException], ...]:
    """The package's error classes that are loaded (an exception of a class can only exist once its module is)."""
    types: list[type[BaseException]] = [OSError]
    for module, name in _CLEAN:
        loaded = sys.modules.get(module)
        if loaded is not None and hasattr(loaded, name):
            types.append(getattr(loaded, name))
    return tuple(types)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def first_line(text: str) -> str:
    """The first non-empty line of ``text``, shortened, with unprintable characters escaped."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = line.encode("utf-8", "backslashreplace").decode("utf-8")
    return line if len(line) <= _MESSAGE_CHARS else line[:_MESSAGE_CHARS] + "..."


def classify(exc: BaseException | None, names: Sequence[str]) -> tuple[str, str]:
    """(kind, category) of a case that raised ``exc`` (None: returned normally); see the module docstring."""
    if exc is None:
        return "ok", ""
    if isinstance(exc, _CaseTimeout):
        return "finding", "timeout"
    if any(isinstance(e, MemoryError) for e in _chain(exc)):
        return "finding", "memory"
    if isinstance(exc, _clean_types()) or type(exc) is ValueError:
        message = str(exc)
        return ("clean", "") if any(n and n in message for n in names) else ("finding", "unnamed")
    return "finding", "exception"


# ----------------------------------------------------------------------------- byte helpers

def _u32(x: int) -> bytes:
    return struct.pack("<I", x & 0xFFFFFFFF)


_INTERESTING_U32 = (0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, (1 << 29) - 1, 1 << 29, 24, 0xCED7230A)


def _generic(rng: Rng, data: bytes) -> tuple[str, bytes]:
    """One random byte-level distortion of ``data`` and its name."""
    buf = bytearray(data)
    n = len(buf)
    kind = str(rng.choice(["truncate", "bitflip", "u32", "overwrite", "insert", "delete", "duplicate", "zero"]))
    if n == 0:
        return "insert", bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
    if kind == "truncate":
        return kind, bytes(buf[: int(rng.integers(0, n))])
    if kind == "bitflip":
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(0, n))
            buf[i] ^= 1 << int(rng.integers(0, 8))
        return kind, bytes(buf)
    if kind == "u32":
        i = int(rng.integers(0, max(n - 3, 1)))
        value = int(rng.choice(np.array(_INTERESTING_U32 + (n,), dtype=np.uint64)))
        buf[i:i + 4] = _u32(value)
        return kind, bytes(buf)
    if kind == "overwrite":
        i = int(rng.integers(0, n))
        run = int(rng.integers(1, 33))
        buf[i:i + run] = bytes([int(rng.choice([0x00, 0xFF, 0x7F, 0x80]))]) * run
        return kind, bytes(buf[: max(n, i + run)])
    if kind == "insert":
        i = int(rng.integers(0, n + 1))
        junk = bytes(rng.integers(0, 256, int(rng.integers(1, 257)), dtype=np.uint8))
        return kind, bytes(buf[:i] + junk + buf[i:])
    if kind == "delete":
        i = int(rng.integers(0, n))
        return kind, bytes(buf[:i] + buf[i + int(rng.integers(1, 65)):])
    if kind == "duplicate":
        i = int(rng.integers(0, n))
        chunk = buf[i:i + int(rng.integers(1, 257))]
        return kind, bytes(buf[:i] + chunk * int(rng.integers(2, 9)) + buf[i:])
    i = int(rng.integers(0, n))
    buf[i:] = bytes(n - i)
    return kind, bytes(buf)


# ----------------------------------------------------------------------------- images

def _random_image(rng: Rng, size: int = 16, channels: int = 3) -> np.ndarray:
    shape = (size, size, channels) if channels > 1 else (size, size)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def _encode(img: np.ndarray, ext: str) -> bytes:
    import cv2

    ok, buf = cv2.imencode(ext, img)
    if not ok:  # pragma: no cover - OpenCV encodes these formats
        raise RuntimeError(f"OpenCV cannot encode {ext}")
    return bytes(buf.tobytes())


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _png_bomb(w: int, h: int) -> bytes:
    """A valid grey PNG of ``w x h`` zeros, compressed row by row (tens of KB)."""
    z = zlib.compressobj(9)
    row = b"\0" * (w + 1)
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    return _PNG_SIG + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + _png_chunk(b"IDAT", idat) \
        + _png_chunk(b"IEND", b"")


def _png_claiming(rng: Rng, w: int, h: int, fix_crc: bool = True) -> bytes:
    data = bytearray(_encode(_random_image(rng), ".png"))
    data[16:24] = struct.pack(">II", w, h)
    if fix_crc:
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _jpeg_claiming(rng: Rng, w: int, h: int) -> bytes:
    data = bytearray(_encode(_random_image(rng), ".jpg"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _bmp_claiming(w: int, h: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 64, 0, 0, 14 + len(info)) + info + bytes(64)


def _tiff_claiming(w: int, h: int) -> bytes:
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8),
               (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + _u32(0)
    return b"II*\x00" + _u32(8) + ifd + bytes(16)


def _img_truncated(rng: Rng, ext: str) -> bytes:
    data = _encode(_random_image(rng), ext)
    return data[: int(rng.integers(1, len(data)))]


def _img_bitflip(rng: Rng, ext: str) -> bytes:
    data = bytearray(_encode(_random_image(rng), ext))
    for _ in range(int(rng.integers(1, 17))):
        i = int(rng.integers(2, len(data)))
        data[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(data)


IMAGE_VARIANTS: dict[str, Callable[[Rng], bytes]] = {
    "empty": lambda r: b"",
    "one-byte": lambda r: b"\x89",
    "junk": lambda r: bytes(r.integers(0, 256, int(r.integers(2, 300)), dtype=np.uint8)),
    "png-signature-only": lambda r: _PNG_SIG,
    "png-truncated": lambda r: _img_truncated(r, ".png"),
    "jpeg-truncated": lambda r: _img_truncated(r, ".jpg"),
    "png-bitflip": lambda r: _img_bitflip(r, ".png"),
    "jpeg-bitflip": lambda r: _img_bitflip(r, ".jpg"),
    "png-claims-12000x12000": lambda r: _png_claiming(r, 12000, 12000),
    "png-claims-12000x12000-bad-crc": lambda r: _png_claiming(r, 12000, 12000, fix_crc=False),
    "png-claims-0x0": lambda r: _png_claiming(r, 0, 0),
    "png-claims-2^31": lambda r: _png_claiming(r, 1 << 31, 1),
    "jpeg-claims-12000x12000": lambda r: _jpeg_claiming(r, 12000, 12000),
    "jpeg-claims-0x16": lambda r: _jpeg_claiming(r, 0, 16),
    "png-bomb-4500x4500": lambda r: _png_bomb(4500, 4500),
    "png-bomb-at-cap-4096x4096": lambda r: _png_bomb(4096, 4096),
    "bmp-claims-huge": lambda r: _bmp_claiming(100_000, 100_000),
    "bmp-claims-negative": lambda r: _bmp_claiming(-16, -16),
    "tiff-claims-huge": lambda r: _tiff_claiming(100_000, 100_000),
    "ppm-claims-huge": lambda r: b"P6\n100000 100000\n255\n" + bytes(16),
    "gif-claims-huge": lambda r: b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0) + b";",
    "png-16bit": lambda r: _encode(r.integers(0, 65536, (16, 16, 3), dtype=np.uint16), ".png"),
    "png-gray": lambda r: _encode(_random_image(r, channels=1), ".png"),
    "png-rgba": lambda r: _encode(_random_image(r, channels=4), ".png"),
    "png-1x1": lambda r: _encode(_random_image(r, size=1), ".png"),
    "bmp": lambda r: _encode(_random_image(r), ".bmp"),
}


def _valid_image(rng: Rng) -> bytes:
    return _encode(_random_image(rng), ".png" if rng.random() < 0.5 else ".jpg")


def _add_image_variants(mutations: dict[str, Mutation], build: Callable[[Rng, Path, bytes], Inputs]) -> None:
    for key, variant in IMAGE_VARIANTS.items():
        mutations[f"image-{key}"] = (lambda v: lambda rng, d: build(rng, d, v(rng)))(variant)


# ----------------------------------------------------------------------------- RecordIO

_REC_MAGIC = 0xCED7230A


def _irh(flag: int, label: float, labels: Sequence[float] = (), id_: int = 0, id2: int = 0) -> bytes:
    return struct.pack("<IfQQ", flag, label, id_, id2) + np.asarray(labels, dtype="<f4").tobytes()


def _rec_record(payload: bytes, cflag: int = 0, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    return _u32(_REC_MAGIC) + _u32((cflag << 29) | (n & ((1 << 29) - 1))) + payload + b"\0" * (-len(payload) % 4)


def _rec_seed_payloads(rng: Rng) -> list[bytes]:
    """insightface's layout: header record 0 (start, end), 4 images of 2 identities, 2 identity headers."""
    images = [_valid_image(rng) for _ in range(4)]
    return ([_irh(2, 0.0, (5, 7))] + [_irh(0, float(lab)) + img for lab, img in zip((0, 0, 1, 1), images)]
            + [_irh(2, 0.0, (1, 3)), _irh(2, 0.0, (3, 5))])


def _rec_encode(records: Sequence[bytes]) -> tuple[bytes, list[int]]:
    out = bytearray()
    offsets = []
    for rec in records:
        offsets.append(len(out))
        out += rec
    return bytes(out), offsets


def _idx_text(offsets: Sequence[int], keys: Sequence[int] | None = None) -> str:
    keys = list(range(len(offsets))) if keys is None else keys
    return "".join(f"{k}\t{o}\n" for k, o in zip(keys, offsets))


def _rec_write(d: Path, rec: bytes, idx: str | bytes | None, prop: bytes | None = b"2,16,16\n") -> Inputs:
    (d / "train.rec").write_bytes(rec)
    if idx is not None:
        (d / "train.idx").write_bytes(idx.encode("ascii") if isinstance(idx, str) else idx)
    if prop is not None:
        (d / "property").write_bytes(prop)
    return Inputs(d / "train.rec", ("train.rec", "train.idx", "property"))


def _rec_payloads(payloads: Sequence[bytes], d: Path) -> Inputs:
    rec, offsets = _rec_encode([_rec_record(p) for p in payloads])
    return _rec_write(d, rec, _idx_text(offsets))


def _rec_with(rng: Rng, d: Path, key: int, payload: bytes) -> Inputs:
    payloads = _rec_seed_payloads(rng)
    payloads[key] = payload
    return _rec_payloads(payloads, d)


def _rec_header(labels: Sequence[float], flag: int | None = None) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        return _rec_with(rng, d, 0, _irh(len(labels) if flag is None else flag, 0.0, labels))
    return mutate


def _rec_label(label: float) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        return _rec_with(rng, d, 1 + int(rng.integers(0, 4)), _irh(0, label) + _valid_image(rng))
    return mutate


def _rec_record_patch(what: str) -> Mutation:
    """Distort the 8-byte record header of a random record: length, cflag or magic."""
    def mutate(rng: Rng, d: Path) -> Inputs:
        payloads = _rec_seed_payloads(rng)
        key = int(rng.integers(0, len(payloads)))
        records = [_rec_record(p) for p in payloads]
        n = len(payloads[key])
        if what == "len-huge":
            records[key] = _rec_record(payloads[key], length=(1 << 29) - 1)
        elif what == "len-zero":
            records[key] = _rec_record(payloads[key], length=0)
        elif what == "len-short":
            records[key] = _rec_record(payloads[key], length=int(rng.integers(0, max(n, 1))))
        elif what == "len-long":
            records[key] = _rec_record(payloads[key], length=n + int(rng.integers(1, 64)))
        elif what == "cflag-middle-first":
            records[key] = _rec_record(payloads[key], cflag=2)
        elif what == "cflag-last-first":
            records[key] = _rec_record(payloads[key], cflag=3)
        elif what == "cflag-first-unfinished":
            records[key] = _rec_record(payloads[key], cflag=1)
        elif what == "cflag-7":
            records[key] = _rec_record(payloads[key], cflag=7)
        elif what == "magic-wrong":
            records[key] = _u32(0xDEADBEEF) + records[key][4:]
        rec, offsets = _rec_encode(records)
        return _rec_write(d, rec, _idx_text(offsets))
    return mutate


def _rec_multipart(rng: Rng, d: Path) -> Inputs:
    """A valid multi-part record: an image payload that holds the magic at a 4-aligned position."""
    payloads = _rec_seed_payloads(rng)
    body = payloads[1]
    body = body + b"\0" * (-len(body) % 4) + _u32(_REC_MAGIC) + b"tail"
    cut = len(body) - 8
    records = [_rec_record(p) for p in payloads]
    records[1] = _rec_record(body[:cut], cflag=1) + _rec_record(body[cut + 4:], cflag=3)
    rec, offsets = _rec_encode(records)
    return _rec_write(d, rec, _idx_text(offsets))


def _rec_short_payload(rng: Rng, d: Path) -> Inputs:
    return _rec_with(rng, d, 1 + int(rng.integers(0, 4)), bytes(int(rng.integers(0, 24))))


def _rec_labels_nan(rng: Rng, d: Path) -> Inputs:
    return _rec_with(rng, d, 1, _irh(2, 0.0, (float("nan"), 1.0)) + _valid_image(rng))


def _rec_flag_huge(rng: Rng, d: Path) -> Inputs:
    return _rec_with(rng, d, int(rng.integers(0, 5)), _irh(int(rng.choice([1 << 31, 0xFFFFFFFF, 1 << 20])), 0.0))


def _rec_flat(rng: Rng, d: Path) -> Inputs:
    """Valid without insightface's header record: every key is an image."""
    return _rec_payloads([_irh(0, float(k % 2)) + _valid_image(rng) for k in range(4)], d)


def _rec_ids(rng: Rng, d: Path) -> Inputs:
    payloads = _rec_seed_payloads(rng)
    i = 1 + int(rng.integers(0, 4))
    payloads[i] = struct.pack("<IfQQ", 0, 0.0, (1 << 64) - 1, (1 << 63)) + payloads[i][24:]
    return _rec_payloads(payloads, d)


def _rec_idx(edit: Callable[[Rng, list[str], list[int], int], str | bytes]) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        records = [_rec_record(p) for p in _rec_seed_payloads(rng)]
        rec, offsets = _rec_encode(records)
        lines = _idx_text(offsets).splitlines(keepends=True)
        return _rec_write(d, rec, edit(rng, lines, offsets, len(rec)))
    return mutate


def _drop_line(lines: list[str], k: int) -> str:
    return "".join(lines[:k] + lines[k + 1:])


def _pick(rng: Rng, n: int) -> int:
    return int(rng.integers(0, n))


def _idx_replace(value: Callable[[Rng, list[int], int], str]) -> Callable[[Rng, list[str], list[int], int], str]:
    def edit(rng: Rng, lines: list[str], offsets: list[int], size: int) -> str:
        lines[_pick(rng, len(lines))] = value(rng, offsets, size)
        return "".join(lines)
    return edit


def _rec_bytes(target: str) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        inputs = _rec_payloads(_rec_seed_payloads(rng), d)
        path = d / target
        path.write_bytes(_generic(rng, path.read_bytes())[1])
        return inputs
    return mutate


def _rec_files(edit: Callable[[Path], object]) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        inputs = _rec_payloads(_rec_seed_payloads(rng), d)
        edit(d)
        return inputs
    return mutate


def _mkdir_property(d: Path) -> None:
    (d / "property").unlink()
    (d / "property").mkdir()


def _recordio_mutations() -> dict[str, Mutation]:
    m: dict[str, Mutation] = {"valid": lambda rng, d: _rec_payloads(_rec_seed_payloads(rng), d)}
    m["valid-flat"] = _rec_flat
    m["valid-multipart"] = _rec_multipart
    for name, labels in {"header-nan": (float("nan"), 7.0), "header-inf": (float("inf"), 7.0),
                         "header-huge": (3e38, 3e38), "header-fraction": (2.5, 3.0), "header-start-past-idx": (9.0, 9.0),
                         "header-end-before-start": (5.0, 2.0), "header-one-label": (5.0,), "header-negative": (-1.0, 5.0),
                         "header-zero": (0.0, 0.0), "header-more-ids-than-images": (3.0, 7.0),
                         "header-three-labels": (5.0, 7.0, 1e30)}.items():
        m[name] = _rec_header(labels)
    m["header-flag-zero"] = _rec_header((), flag=0)
    m["header-flag-huge"] = _rec_flag_huge
    for name, value in {"label-nan": float("nan"), "label-inf": float("inf"), "label-huge": 1e30,
                        "label-fraction": 0.5, "label-negative": -3.0}.items():
        m[name] = _rec_label(value)
    m["labels-array-nan"] = _rec_labels_nan
    m["ids-huge"] = _rec_ids
    m["payload-short"] = _rec_short_payload
    for what in ("len-huge", "len-zero", "len-short", "len-long", "cflag-middle-first", "cflag-last-first",
                 "cflag-first-unfinished", "cflag-7", "magic-wrong"):
        m[f"record-{what}"] = _rec_record_patch(what)
    m["idx-non-ascii"] = _rec_idx(lambda r, lines, o, s: "".join(lines).encode() + b"9\t\xff\xfe\n")
    m["idx-negative-offset"] = _rec_idx(_idx_replace(lambda r, o, s: f"{_pick(r, len(o))}\t-{int(r.integers(1, 100))}\n"))
    m["idx-offset-past-end"] = _rec_idx(_idx_replace(lambda r, o, s: f"{_pick(r, len(o))}\t{s + int(r.integers(-7, 100))}\n"))
    m["idx-offset-misaligned"] = _rec_idx(_idx_replace(lambda r, o, s: f"{_pick(r, len(o))}\t{_pick(r, s)}\n"))
    m["idx-huge-offset"] = _rec_idx(_idx_replace(lambda r, o, s: f"{_pick(r, len(o))}\t{10 ** 30}\n"))
    m["idx-huge-key"] = _rec_idx(lambda r, lines, o, s: "".join(lines) + f"{10 ** 30}\t0\n")
    m["idx-negative-key"] = _rec_idx(lambda r, lines, o, s: "".join(lines) + "-1\t0\n")
    m["idx-float-key"] = _rec_idx(_idx_replace(lambda r, o, s: "1.5\t0\n"))
    m["idx-one-column"] = _rec_idx(_idx_replace(lambda r, o, s: f"{_pick(r, len(o))}\n"))
    m["idx-extra-columns"] = _rec_idx(lambda r, lines, o, s: "".join(ln.rstrip("\n") + "\t7\tx\n" for ln in lines))
    m["idx-crlf"] = _rec_idx(lambda r, lines, o, s: "".join(ln.rstrip("\n") + "\r\n" for ln in lines))
    m["idx-underscores"] = _rec_idx(lambda r, lines, o, s: "".join(lines).replace("\t", "\t0_0"))
    m["idx-missing-key"] = _rec_idx(lambda r, lines, o, s: _drop_line(lines, 1 + _pick(r, 4)))
    m["idx-duplicate-key"] = _rec_idx(lambda r, lines, o, s: "".join(lines) + f"1\t{o[0]}\n")
    m["idx-only-header"] = _rec_idx(lambda r, lines, o, s: lines[0])
    m["idx-empty"] = _rec_idx(lambda r, lines, o, s: "")
    m["idx-blank-lines"] = _rec_idx(lambda r, lines, o, s: "\n\n".join(lines) + "   \n\t\n")
    m["idx-nul"] = _rec_idx(lambda r, lines, o, s: "".join(lines).encode() + b"\x00\x00\t0\n")
    m["idx-long-line"] = _rec_idx(lambda r, lines, o, s: "".join(lines) + "1" * 200_000 + "\t0\n")
    m["idx-same-offset"] = _rec_idx(lambda r, lines, o, s: "".join(f"{k}\t{o[1]}\n" for k in range(len(o))))
    m["idx-missing-file"] = lambda rng, d: _rec_write(d, _rec_encode([_rec_record(p) for p in _rec_seed_payloads(rng)])[0], None)
    m["rec-empty"] = _rec_files(lambda d: (d / "train.rec").write_bytes(b""))
    m["property-non-ascii"] = _rec_files(lambda d: (d / "property").write_bytes(b"\xff\xfe1,2,3"))
    m["property-empty"] = _rec_files(lambda d: (d / "property").write_bytes(b""))
    m["property-huge"] = _rec_files(lambda d: (d / "property").write_bytes(b"9" * 5000 + b",112,112"))
    m["property-directory"] = _rec_files(_mkdir_property)
    _add_image_variants(m, lambda rng, d, img: _rec_with(rng, d, 1 + int(rng.integers(0, 4)), _irh(0, 0.0) + img))
    m["flat-image-empty"] = lambda rng, d: _rec_payloads([_irh(0, 0.0)], d)
    m["bytes-rec"] = _rec_bytes("train.rec")
    m["bytes-rec-2"] = _rec_bytes("train.rec")
    m["bytes-idx"] = _rec_bytes("train.idx")
    return m


def run_recordio(path: Path) -> object:
    """Open an insightface ``.rec`` as :class:`~faceopt.data.recordio.RecordIOFaces` and read every record and item."""
    from faceopt.data.recordio import RecordIOFaces

    ds = RecordIOFaces(path, path.with_suffix(".idx"), size=16)
    try:
        _ = ds.reader.num_classes
        for key in sorted(ds.reader.offsets)[:_MAX_ITEMS]:
            ds.reader.read(key)
        for i in range(min(len(ds), _MAX_ITEMS)):
            ds[i]
    finally:
        ds.reader.close()
    return None


# ----------------------------------------------------------------------------- verification .bin

def _bin_images(rng: Rng, n: int = 4) -> list[bytes]:
    return [_valid_image(rng) for _ in range(n)]


def _bin_write(d: Path, data: bytes) -> Inputs:
    (d / "lfw.bin").write_bytes(data)
    return Inputs(d / "lfw.bin", ("lfw.bin",))


def _bin_obj(make: Callable[[Rng], object], protocol: int = 4) -> Mutation:
    return lambda rng, d: _bin_write(d, pickle.dumps(make(rng), protocol=protocol))


def _bin_valid(rng: Rng, d: Path) -> Inputs:
    return _bin_write(d, pickle.dumps((_bin_images(rng), [True, False]), protocol=4))


def _bin_protocol(rng: Rng, d: Path) -> Inputs:
    return _bin_write(d, pickle.dumps((_bin_images(rng), [True, False]), protocol=int(rng.integers(0, 6))))


def _bin_numpy_bools(rng: Rng, d: Path) -> Inputs:
    return _bin_write(d, pickle.dumps((_bin_images(rng), [np.bool_(True), np.bool_(False)]), protocol=int(rng.integers(2, 6))))


def _p4_bytes(b: bytes) -> bytes:
    return b"C" + bytes([len(b)]) + b if len(b) < 256 else b"B" + _u32(len(b)) + b


def _p4_str(s: str) -> bytes:
    raw = s.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _deep(opening: bytes, closing: bytes, depth: int, core: bytes = b"N") -> bytes:
    return opening * depth + core + closing * depth


def _pair(bins: bytes, issame: bytes = b"]") -> bytes:
    """Protocol-4 pickle of the tuple ``(bins, issame)`` from the opcodes of each part."""
    return b"\x80\x04" + bins + issame + b"\x86."


_HOSTILE: dict[str, bytes] = {
    # GLOBAL os.system, protocol 0: what a tampered .bin would hold
    "os-system": b"cos\nsystem\n(V" + f"touch {MARKER}".encode() + b"\ntR.",
    "posix-system-stack-global": b"\x80\x04" + _p4_str("posix") + _p4_str("system") + b"\x93" + _p4_str(f"touch {MARKER}")
    + b"\x85R.",
    "builtins-open": b"cbuiltins\nopen\n(V" + MARKER.encode() + b"\nVw\ntR.",
    "builtins-exec": b"cbuiltins\nexec\n(V" + f"open('{MARKER}','w').close()".encode() + b"\ntR.",
    "builtins-eval": b"c__builtin__\neval\n(V" + f"open('{MARKER}','w')".encode() + b"\ntR.",
    "inst-opcode": b"(V" + f"touch {MARKER}".encode() + b"\nios\nsystem\n.",
    "obj-opcode": b"(cos\nsystem\nV" + f"touch {MARKER}".encode() + b"\no.",
    "subprocess-call": b"csubprocess\ncall\n((Vtouch\nV" + MARKER.encode() + b"\nltR.",
    "nested-in-issame": b"\x80\x04]" + b"(" + _p4_bytes(b"ab") + _p4_bytes(b"cd") + b"e]" + _p4_str("os") + _p4_str("system")
    + b"\x93" + _p4_str(f"touch {MARKER}") + b"\x85Ra\x86.",
    "ext1-code": b"\x80\x02\x82\x01.",
    "ext4-code": b"\x80\x02\x84\xff\xff\xff\x7f.",
    "persistent-id": b"\x80\x04" + _p4_str(f"touch {MARKER}") + b"Q.",
    "persid-proto0": b"P" + f"touch {MARKER}".encode() + b"\n.",
    "codecs-encode-bad-args": b"c_codecs\nencode\n(Vx\nVutf-8\ntR.",
    "codecs-encode-deep-encoding": b"c_codecs\nencode\n(Vx\n" + _deep(b"]", b"a", 100_000, b"]") + b"tR.",
    "bytes-with-args": b"c__builtin__\nbytes\n(I1000000000\ntR.",
    "numpy-dtype-object": b"cnumpy\ndtype\n(VO8\ntR.",
    "numpy-scalar-huge": b"cnumpy.core.multiarray\nscalar\n(cnumpy\ndtype\n(Vb1\ntR" + b"C\x08" + bytes(8) + b"tR.",
    "newobj-on-standin": b"\x80\x02cnumpy\ndtype\n)\x81.",
    "build-on-bytes": b"\x80\x04C\x01a}b.",
    "reduce-on-int": b"\x80\x04K\x01)R.",
    "copyreg-reconstructor": b"ccopyreg\n_reconstructor\n(cos\n_wrap_close\ncbuiltins\nobject\nNtR.",
}


def _bin_hostile(key: str) -> Mutation:
    return lambda rng, d: _bin_write(d, _HOSTILE[key])


class _Evil:
    """Pickles as ``posix.system('touch FUZZ_MARKER')`` (never instantiated in the worker)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {MARKER}",)


def _bin_image_variant(rng: Rng, d: Path, img: bytes) -> Inputs:
    images = _bin_images(rng)
    images[int(rng.integers(0, 4))] = img
    return _bin_write(d, pickle.dumps((images, [True, False]), protocol=4))


def _bin_many_refs(how: str) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        png = _p4_bytes(_valid_image(rng))
        n = 20_000
        if how == "memo":
            bins = b"](" + png + b"\x94" + b"h\x00" * (n - 1) + b"e"
        elif how == "dup":
            bins = b"(" + png + b"2" * (n - 1) + b"l"
        else:  # one-byte images: shared singletons, not caught by identity
            bins = b"(" + b"C\x01\x89" * n + b"l"
        return _bin_write(d, _pair(bins, b"(" + b"\x88" * (n // 2) + b"l"))
    return mutate


def _bin_huge(kind: str) -> Mutation:
    payloads = {
        "bytes8": b"\x80\x04\x8e" + (1 << 60).to_bytes(8, "little") + b"ab.",
        "bytes8-2^33": b"\x80\x04\x8e" + (1 << 33).to_bytes(8, "little") + b"ab.",
        "binbytes-2^31": b"\x80\x04B" + _u32(0x7FFFFFFF) + b"ab.",
        "binunicode8": b"\x80\x04\x8d" + (1 << 40).to_bytes(8, "little") + b"ab.",
        "bytearray8": b"\x80\x05\x96" + (1 << 40).to_bytes(8, "little") + b"ab.",
        "long4": b"\x80\x02\x8b" + _u32(0x7FFFFFFF) + b"\x01.",
        "long4-negative": b"\x80\x02\x8b" + _u32(0xFFFFFFFF) + b"\x01.",
        "long-decimal": b"L" + b"9" * 10_000 + b"L\n.",
        "int-decimal": b"I" + b"9" * 10_000 + b"\n.",
        "float-junk": b"F1e99999\n.",
        "memo-index": b"Np99999999999999999999999\n.",
        "memo-get-missing": b"\x80\x04]h\x07.",
        "long-binget-huge": b"\x80\x04]j\xff\xff\xff\xff.",
        "frame-huge": b"\x80\x04\x95" + (1 << 62).to_bytes(8, "little") + b"N.",
        "next-buffer": b"\x80\x05\x97.",
        "readonly-buffer": b"\x80\x05\x97\x98.",
        "mark-without-pop": b"(" * 100_000 + b".",
        "pop-empty": b"0.",
        "stop-only": b".",
        "proto-99": b"\x80\x63N.",
        "unknown-opcode": b"\x80\x04\xff.",
    }
    return lambda rng, d: _bin_write(d, payloads[kind])


def _bin_truncated(rng: Rng, d: Path) -> Inputs:
    data = pickle.dumps((_bin_images(rng), [True, False]), protocol=int(rng.integers(0, 6)))
    return _bin_write(d, data[: int(rng.integers(0, len(data)))])


def _bin_generic(rng: Rng, d: Path) -> Inputs:
    data = pickle.dumps((_bin_images(rng), [True, False]), protocol=int(rng.integers(0, 6)))
    return _bin_write(d, _generic(rng, data)[1])


def _bin_mutations() -> dict[str, Mutation]:
    m: dict[str, Mutation] = {"valid": _bin_valid, "valid-protocol": _bin_protocol, "valid-numpy-bools": _bin_numpy_bools}
    m["empty"] = lambda rng, d: _bin_write(d, b"")
    m["truncated"] = _bin_truncated
    m["type-dict"] = _bin_obj(lambda r: {"bins": _bin_images(r), "issame": [True, False]})
    m["type-triple"] = _bin_obj(lambda r: (_bin_images(r), [True, False], None))
    m["type-none"] = _bin_obj(lambda r: None)
    m["type-int"] = _bin_obj(lambda r: 10 ** 100)
    m["bins-str"] = _bin_obj(lambda r: ("abcd", [True, False]))
    m["bins-bytes"] = _bin_obj(lambda r: (b"abcd", [True, False]))
    m["bins-dict"] = _bin_obj(lambda r: ({0: b"a", 1: b"b"}, [True]))
    m["issame-twos"] = _bin_obj(lambda r: (_bin_images(r), [2, 0]))
    m["issame-floats"] = _bin_obj(lambda r: (_bin_images(r), [1.0, float("nan")]))
    m["issame-strings"] = _bin_obj(lambda r: (_bin_images(r), ["1", "0"]))
    m["issame-none"] = _bin_obj(lambda r: (_bin_images(r), None))
    m["issame-huge-ints"] = _bin_obj(lambda r: (_bin_images(r), [10 ** 50, -1]))
    m["count-mismatch"] = _bin_obj(lambda r: (_bin_images(r, 3), [True, False]))
    m["no-pairs"] = _bin_obj(lambda r: ([], []))
    m["image-none"] = _bin_obj(lambda r: ([None, None], [True]))
    m["image-int"] = _bin_obj(lambda r: ([7, 10 ** 40], [True]))
    m["image-str"] = _bin_obj(lambda r: (["abc", "\u00ff\u00fe"], [True]))
    m["image-list"] = _bin_obj(lambda r: ([[1, 2], [3]], [True]))
    m["image-bytearray"] = _bin_obj(lambda r: ([bytearray(x) for x in _bin_images(r, 2)], [True]), protocol=5)
    m["image-numpy-array"] = _bin_obj(lambda r: ([_random_image(r), _random_image(r)], [True]), protocol=4)
    m["image-nested-pair"] = _bin_obj(lambda r: ([(_valid_image(r),), (_valid_image(r),)], [True]))
    m["deep-list"] = lambda rng, d: _bin_write(d, _pair(_deep(b"]", b"a", 200_000, b"]")))
    m["deep-list-issame"] = lambda rng, d: _bin_write(d, _pair(b"]", _deep(b"]", b"a", 200_000, b"]")))
    m["deep-tuple"] = lambda rng, d: _bin_write(d, _pair(b"]", _deep(b"(", b"t", 200_000)))
    m["deep-tuple1"] = lambda rng, d: _bin_write(d, b"\x80\x04N" + b"\x85" * 200_000 + b".")
    m["deep-tuple-at-cap"] = lambda rng, d: _bin_write(d, b"\x80\x04N" + b"\x85" * 100 + b".")
    m["deep-dict"] = lambda rng, d: _bin_write(d, _pair(b"]", _deep(b"}K\x01", b"s", 200_000, b"}")))
    m["deep-frozenset"] = lambda rng, d: _bin_write(d, b"\x80\x04" + _deep(b"(", b"\x91", 100_000, b"") + b".")
    m["set-of-deep-tuples"] = lambda rng, d: _bin_write(d, b"\x80\x04\x8f(N" + b"\x85" * 200_000 + b"\x90.")
    m["dict-key-deep-tuple"] = lambda rng, d: _bin_write(d, b"\x80\x04}N" + b"\x85" * 200_000 + b"Ns.")
    m["deep-tuple-via-memo"] = lambda rng, d: _bin_write(
        d, b"\x80\x04N" + b"\x85\x94" * 60 + b"0" + b"h\x3b" + b"\x85\x94" * 60 + b"\x8f(h\x77\x90.")
    m["self-referencing-list"] = lambda rng, d: _bin_write(d, _pair(b"]\x94h\x00a", b"]"))
    for how in ("memo", "dup", "one-byte"):
        m[f"many-refs-{how}"] = _bin_many_refs(how)
    for key in _HOSTILE:
        m[f"hostile-{key}"] = _bin_hostile(key)
    m["hostile-reduce-class"] = _bin_obj(lambda r: (_bin_images(r, 2), [_Evil()]))
    for kind in ("bytes8", "bytes8-2^33", "binbytes-2^31", "binunicode8", "bytearray8", "long4", "long4-negative",
                 "long-decimal", "int-decimal", "float-junk", "memo-index", "memo-get-missing", "long-binget-huge",
                 "frame-huge", "next-buffer", "readonly-buffer", "mark-without-pop", "pop-empty", "stop-only",
                 "proto-99", "unknown-opcode"):
        m[f"huge-{kind}" if kind in ("bytes8", "bytes8-2^33", "binbytes-2^31", "binunicode8", "bytearray8", "long4")
          else f"opcode-{kind}"] = _bin_huge(kind)
    _add_image_variants(m, _bin_image_variant)
    m["bytes"] = _bin_generic
    m["bytes-2"] = _bin_generic
    return m


def run_verification_bin(path: Path) -> object:
    """Read an insightface ``.bin`` with :func:`~faceopt.data.verification_bin.load_verification_bin`."""
    from faceopt.data.verification_bin import load_verification_bin

    return load_verification_bin(path)[1].shape


# ----------------------------------------------------------------------------- image folder

def _folder_seed(rng: Rng, d: Path) -> Path:
    root = d / "faces"
    for who, files in (("alice", ("0.png", "1.jpg")), ("bob", ("0.png", "1.bmp"))):
        (root / who).mkdir(parents=True)
        for f in files:
            (root / who / f).write_bytes(_encode(_random_image(rng), Path(f).suffix))
    return root


def _folder(edit: Callable[[Rng, Path, Path], None]) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        root = _folder_seed(rng, d)
        edit(rng, root, d)
        return Inputs(root, (str(root),))
    return mutate


def _folder_image(rng: Rng, d: Path, img: bytes) -> Inputs:
    root = _folder_seed(rng, d)
    target = [root / "alice" / "0.png", root / "alice" / "1.jpg", root / "bob" / "0.png"][_pick(rng, 3)]
    target.write_bytes(img)
    return Inputs(root, (str(root),))


def _outside_file(d: Path) -> None:
    (d / "outside").mkdir(exist_ok=True)
    (d / "outside" / "secret.png").write_bytes(_PNG_SIG)


def _link_file_outside(rng: Rng, root: Path, d: Path) -> None:
    _outside_file(d)
    (root / "alice" / "2.png").symlink_to(Path("..") / ".." / "outside" / "secret.png")


def _link_dir_outside(rng: Rng, root: Path, d: Path) -> None:
    _outside_file(d)
    (root / "mallory").symlink_to(Path("..") / "outside", target_is_directory=True)


def _link_absolute(rng: Rng, root: Path, d: Path) -> None:
    (root / "alice" / "2.png").symlink_to("/etc/hostname")


def _link_inside(rng: Rng, root: Path, d: Path) -> None:
    (root / "alice" / "2.png").symlink_to("0.png")
    (root / "carol").symlink_to("bob", target_is_directory=True)


def _link_loop(rng: Rng, root: Path, d: Path) -> None:
    (root / "alice" / "2.png").symlink_to("2.png")
    (root / "loop").symlink_to("loop")


def _link_dangling(rng: Rng, root: Path, d: Path) -> None:
    (root / "alice" / "2.png").symlink_to("missing.png")


def _link_outside_via_inside(rng: Rng, root: Path, d: Path) -> None:
    _outside_file(d)
    (root / "hop").symlink_to(Path("..") / "outside", target_is_directory=True)
    (root / "alice" / "2.png").symlink_to(Path("..") / "hop" / "secret.png")


def _fifo_image(rng: Rng, root: Path, d: Path) -> None:
    os.mkfifo(root / "alice" / "2.png")


def _dir_image(rng: Rng, root: Path, d: Path) -> None:
    (root / "alice" / "2.png").mkdir()


def _empty_identity(rng: Rng, root: Path, d: Path) -> None:
    (root / "dave").mkdir()
    (root / "dave" / "notes.txt").write_text("no images")


def _no_identities(rng: Rng, root: Path, d: Path) -> None:
    shutil.rmtree(root)
    root.mkdir()
    (root / "loose.png").write_bytes(_encode(_random_image(rng), ".png"))
    (root / ".hidden").mkdir()


def _root_is_file(rng: Rng, root: Path, d: Path) -> None:
    shutil.rmtree(root)
    root.write_bytes(b"not a folder")


def _non_utf8_name(rng: Rng, root: Path, d: Path) -> None:
    name = os.fsencode(root / "alice") + b"/\xff\xfe.png"
    with open(name, "wb") as f:
        f.write(_encode(_random_image(rng), ".png"))
    os.mkdir(os.fsencode(root) + b"/\xe9ve")
    with open(os.fsencode(root) + b"/\xe9ve/0.png", "wb") as f:
        f.write(_encode(_random_image(rng), ".png"))


def _long_name(rng: Rng, root: Path, d: Path) -> None:
    (root / "alice" / ("x" * 251 + ".png")).write_bytes(_encode(_random_image(rng), ".png"))


def _upper_ext(rng: Rng, root: Path, d: Path) -> None:
    (root / "alice" / "0.png").rename(root / "alice" / "0.PNG")


def _unreadable(rng: Rng, root: Path, d: Path) -> None:
    (root / "alice" / "0.png").chmod(0)


def _many_identities(rng: Rng, root: Path, d: Path) -> None:
    png = _encode(_random_image(rng), ".png")
    for k in range(int(rng.integers(50, 200))):
        (root / f"id{k:04d}").mkdir()
        (root / f"id{k:04d}" / "0.png").write_bytes(png)


def _wrong_ext_content(rng: Rng, root: Path, d: Path) -> None:
    (root / "alice" / "0.png").write_bytes(_encode(_random_image(rng), ".jpg"))


def _folder_generic(rng: Rng, root: Path, d: Path) -> None:
    target = [root / "alice" / "0.png", root / "alice" / "1.jpg", root / "bob" / "0.png", root / "bob" / "1.bmp"][_pick(rng, 4)]
    target.write_bytes(_generic(rng, target.read_bytes())[1])


def _image_folder_mutations() -> dict[str, Mutation]:
    m: dict[str, Mutation] = {"valid": _folder(lambda r, root, d: None)}
    for name, edit in {"link-file-outside": _link_file_outside, "link-dir-outside": _link_dir_outside,
                       "link-absolute": _link_absolute, "link-inside": _link_inside, "link-loop": _link_loop,
                       "link-dangling": _link_dangling, "link-outside-via-inside": _link_outside_via_inside,
                       "fifo-image": _fifo_image, "dir-image": _dir_image, "empty-identity": _empty_identity,
                       "no-identities": _no_identities, "root-is-file": _root_is_file, "non-utf8-names": _non_utf8_name,
                       "long-name": _long_name, "upper-ext": _upper_ext, "unreadable": _unreadable,
                       "many-identities": _many_identities, "wrong-ext-content": _wrong_ext_content,
                       "bytes": _folder_generic, "bytes-2": _folder_generic}.items():
        m[name] = _folder(edit)
    _add_image_variants(m, _folder_image)
    return m


def run_image_folder(path: Path) -> object:
    """Open a folder of identities as :class:`~faceopt.data.image_folder.ImageFolderFaces` and read every item."""
    from faceopt.data.image_folder import ImageFolderFaces

    ds = ImageFolderFaces(path, size=16)
    _ = ds.labels
    for i in range(min(len(ds), _MAX_ITEMS)):
        ds[i]
    return len(ds)


# ----------------------------------------------------------------------------- MegaFace / FaceScrub lists

_LIST_PATHS = ["Aaron_Eckhart/a_1.png", "Aaron_Eckhart/a_2.png", "Adam_Brody/b_1.png"]
_LIST_IDS: list[str | int] = ["Aaron_Eckhart", "Aaron_Eckhart", "Adam_Brody"]


def _list_root(d: Path) -> None:
    for p in _LIST_PATHS:
        (d / "images" / p).parent.mkdir(parents=True, exist_ok=True)
        (d / "images" / p).write_bytes(b"x")
    (d / "outside.png").write_bytes(b"x")


def _list_write(d: Path, data: bytes, name: str = "facescrub_features_list.json") -> Inputs:
    _list_root(d)
    (d / name).write_bytes(data)
    return Inputs(d / name, (name,))


def _list_json(make: Callable[[Rng], object]) -> Mutation:
    return lambda rng, d: _list_write(d, json.dumps(make(rng)).encode())


def _list_json_raw(text: bytes) -> Mutation:
    return lambda rng, d: _list_write(d, text)


def _list_text(make: Callable[[Rng], str | bytes]) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        text = make(rng)
        return _list_write(d, text.encode() if isinstance(text, str) else text, "list.txt")
    return mutate


def _list_with_path(bad: str) -> Mutation:
    return _list_json(lambda r: {"path": _LIST_PATHS[:2] + [bad], "id": _LIST_IDS})


def _text_with_path(bad: str) -> Mutation:
    return _list_text(lambda r: "".join(f"{p}\t{i}\n" for i, p in enumerate(_LIST_PATHS[:2] + [bad])))


def _list_symlink_out(rng: Rng, d: Path) -> Inputs:
    inputs = _list_write(d, json.dumps({"path": _LIST_PATHS + ["link.png"]}).encode())
    (d / "images" / "link.png").symlink_to(Path("..") / "outside.png")
    return inputs


def _list_generic(rng: Rng, d: Path) -> Inputs:
    if rng.random() < 0.5:
        return _list_write(d, _generic(rng, json.dumps({"path": _LIST_PATHS, "id": _LIST_IDS}).encode())[1])
    text = "".join(f"{p}\t{i}\n" for i, p in enumerate(_LIST_PATHS)).encode()
    return _list_write(d, _generic(rng, text)[1], "list.txt")


_LONG_NAME = "n" * 300 + ".png"


def _list_not_a_file(directory: bool) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        _list_root(d)
        if directory:
            (d / "list.txt").mkdir()
        return Inputs(d / "list.txt", ("list.txt",))
    return mutate


def _face_list_mutations() -> dict[str, Mutation]:
    m: dict[str, Mutation] = {"valid": _list_json(lambda r: {"path": _LIST_PATHS, "id": _LIST_IDS})}
    m["valid-no-ids"] = _list_json(lambda r: {"path": _LIST_PATHS})
    m["valid-text"] = _list_text(lambda r: "# comment\n" + "".join(f"{p}\t{i // 2}\n" for i, p in enumerate(_LIST_PATHS)))
    m["valid-text-no-labels"] = _list_text(lambda r: "\n".join(_LIST_PATHS) + "\n")
    m["json-truncated"] = lambda rng, d: _list_write(d, json.dumps({"path": _LIST_PATHS}).encode()[: int(rng.integers(1, 40))])
    m["json-invalid"] = _list_json_raw(b'{"path": [a.png]}')
    m["json-deep-nesting"] = _list_json_raw(b'{"path": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    m["json-deep-object"] = _list_json_raw(b'{"path": [], "x": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}")
    m["json-top-array"] = _list_json_raw(b'[{"path": ["a.png"]}]')
    m["json-top-number"] = _list_json_raw(b" {} ")
    m["json-path-not-list"] = _list_json(lambda r: {"path": "Aaron_Eckhart/a_1.png"})
    m["json-path-non-strings"] = _list_json(lambda r: {"path": [1, None, ["a"]]})
    m["json-path-empty"] = _list_json(lambda r: {"path": []})
    m["json-ids-bool"] = _list_json(lambda r: {"path": _LIST_PATHS, "id": [True, False, True]})
    m["json-ids-float"] = _list_json(lambda r: {"path": _LIST_PATHS, "id": [1.5, 2.0, 3.0]})
    m["json-ids-null"] = _list_json(lambda r: {"path": _LIST_PATHS, "id": None})
    m["json-ids-nested"] = _list_json(lambda r: {"path": _LIST_PATHS, "id": [[1], {"a": 1}, None]})
    m["json-ids-short"] = _list_json(lambda r: {"path": _LIST_PATHS, "id": ["a"]})
    m["json-ids-mixed"] = _list_json(lambda r: {"path": _LIST_PATHS, "id": ["a", 1, "1"]})
    m["json-ids-not-list"] = _list_json(lambda r: {"path": _LIST_PATHS, "id": "abc"})
    m["json-ids-huge-int"] = _list_json_raw(b'{"path": ["Aaron_Eckhart/a_1.png"], "id": [' + b"9" * 5000 + b"]}")
    m["json-ids-overflow-float"] = _list_json_raw(b'{"path": ["Aaron_Eckhart/a_1.png"], "id": [1e400]}')
    m["json-ids-nan"] = _list_json_raw(b'{"path": ["Aaron_Eckhart/a_1.png"], "id": [NaN]}')
    m["json-duplicate-keys"] = _list_json_raw(b'{"path": ["Aaron_Eckhart/a_1.png"], "path": 3}')
    m["json-bom"] = _list_json_raw(b"\xef\xbb\xbf" + json.dumps({"path": _LIST_PATHS}).encode())
    m["json-utf16"] = _list_json_raw(json.dumps({"path": _LIST_PATHS}).encode("utf-16"))
    m["json-non-utf8"] = _list_json_raw(b'{"path": ["\xff\xfe.png"]}')
    m["json-lone-surrogate"] = _list_json_raw(b'{"path": ["Aaron_Eckhart/\\ud800.png"]}')
    m["json-nul-in-path"] = _list_json_raw(b'{"path": ["Aaron_Eckhart/a\\u0000.png"]}')
    m["json-path-dotdot"] = _list_with_path("../outside.png")
    m["json-path-deep-dotdot"] = _list_with_path("a/../../../../../../../../etc/passwd")
    m["json-path-absolute"] = _list_with_path("/etc/passwd")
    m["json-path-long-name"] = _list_with_path(_LONG_NAME)
    m["json-path-very-long"] = _list_with_path("a/" * 3000 + "x.png")
    m["json-path-directory"] = _list_with_path("Aaron_Eckhart")
    m["json-path-empty-string"] = _list_with_path("")
    m["json-path-dot"] = _list_with_path(".")
    m["json-path-symlink-out"] = _list_symlink_out
    m["text-label-mix"] = _list_text(lambda r: f"{_LIST_PATHS[0]} 0\n{_LIST_PATHS[1]}\n{_LIST_PATHS[2]} 1\n")
    m["text-label-mix-first-unlabelled"] = _list_text(lambda r: f"{_LIST_PATHS[0]}\n{_LIST_PATHS[1]} 0\n")
    m["text-label-not-int"] = _list_text(lambda r: f"{_LIST_PATHS[0]} 0\n{_LIST_PATHS[1]} x1\n")
    m["text-label-huge"] = _list_text(lambda r: f"{_LIST_PATHS[0]} {'9' * 5000}\n")
    m["text-label-underscores"] = _list_text(lambda r: f"{_LIST_PATHS[0]} 1_000\n{_LIST_PATHS[1]} +2\n")
    m["text-label-unicode-digits"] = _list_text(lambda r: f"{_LIST_PATHS[0]} \u0663\n{_LIST_PATHS[1]} \uff11\n")
    m["text-path-with-spaces"] = _list_text(lambda r: "Aaron Eckhart/a 1.png 3\n")
    m["text-crlf"] = _list_text(lambda r: "".join(f"{p}\t{i}\r\n" for i, p in enumerate(_LIST_PATHS)))
    m["text-line-separators"] = _list_text(lambda r: f"{_LIST_PATHS[0]}\x0c{_LIST_PATHS[1]}\x85{_LIST_PATHS[2]}\u2028")
    m["text-only-comments"] = _list_text(lambda r: "# nothing\n\n   \n")
    m["text-empty"] = _list_text(lambda r: "")
    m["text-non-utf8"] = _list_text(lambda r: b"\xff\xfe a.png\n")
    m["text-utf16"] = _list_text(lambda r: "\n".join(_LIST_PATHS).encode("utf-16"))
    m["text-nul"] = _text_with_path("a\x00b.png")
    m["text-dotdot"] = _text_with_path("../outside.png")
    m["text-absolute"] = _text_with_path("/etc/passwd")
    m["text-long-name"] = _text_with_path(_LONG_NAME)
    m["text-missing-image"] = _text_with_path("Adam_Brody/missing.png")
    m["text-very-long-line"] = _list_text(lambda r: "a" * 1_000_000 + " 1\n")
    m["list-is-directory"] = _list_not_a_file(directory=True)
    m["list-missing"] = _list_not_a_file(directory=False)
    m["bytes"] = _list_generic
    m["bytes-2"] = _list_generic
    m["bytes-3"] = _list_generic
    return m


def run_face_list(path: Path) -> object:
    """Read a MegaFace/FaceScrub list with :func:`~faceopt.data.megaface.read_face_list` under ``images/``; its labels."""
    from faceopt.data.megaface import read_face_list

    faces = read_face_list(path, path.parent / "images")
    if faces.ids is not None:
        faces.labels()
    return len(faces)


# ----------------------------------------------------------------------------- pair lists

_PAIR_IMAGES = ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]


def _pairs_write(d: Path, data: bytes) -> Inputs:
    for p in _PAIR_IMAGES:
        (d / p).parent.mkdir(parents=True, exist_ok=True)
        (d / p).write_bytes(b"x")
    (d / "pairs.txt").write_bytes(data)
    return Inputs(d / "pairs.txt", ("pairs.txt",))


_PAIRS_VALID = "# a pair list\na/0.png a/1.png 1\nb/0.png b/1.png 1\na/0.png b/0.png 0\n\na/1.png b/1.png 0  # comment\n"


def _pairs(make: Callable[[Rng], str | bytes]) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        text = make(rng)
        return _pairs_write(d, text.encode() if isinstance(text, str) else text)
    return mutate


def _pairs_with(bad: str) -> Mutation:
    return _pairs(lambda r: _PAIRS_VALID + bad + "\n")


def _pairs_symlink_inside(rng: Rng, d: Path) -> Inputs:
    inputs = _pairs_write(d, (_PAIRS_VALID + "a/0.png link.png 0\n").encode())
    (d / "link.png").symlink_to(Path("b") / "1.png")
    return inputs


def _pairs_escape_link(rng: Rng, d: Path) -> Inputs:
    inputs = _pairs_write(d, (_PAIRS_VALID + "a/0.png escape.png 0\n").encode())
    (d / "escape.png").symlink_to("/etc/hostname")
    return inputs


def _pairs_not_a_file(directory: bool) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        inputs = _pairs_write(d, b"")
        inputs.path.unlink()
        if directory:
            inputs.path.mkdir()
        return inputs
    return mutate


def _pair_list_mutations() -> dict[str, Mutation]:
    m: dict[str, Mutation] = {"valid": _pairs(lambda r: _PAIRS_VALID)}
    m["non-utf8"] = _pairs(lambda r: _PAIRS_VALID.encode() + b"a/\xff.png b/0.png 0\n")
    m["latin1"] = _pairs(lambda r: "a/0.png a/\u00e9.png 1\n".encode("latin-1") + _PAIRS_VALID.encode())
    m["utf16"] = _pairs(lambda r: _PAIRS_VALID.encode("utf-16"))
    m["bom"] = _pairs(lambda r: b"\xef\xbb\xbf" + _PAIRS_VALID.encode())
    m["nul"] = _pairs_with("a/0.png a/\x001.png 0")
    m["dotdot"] = _pairs_with("a/0.png ../outside.png 0")
    m["absolute"] = _pairs_with("/etc/passwd a/0.png 0")
    m["long-name"] = _pairs_with(f"a/0.png {_LONG_NAME} 0")
    m["very-long-path"] = _pairs_with("a/0.png " + "a/" * 3000 + "x.png 0")
    m["same-2"] = _pairs_with("a/0.png b/0.png 2")
    m["same-yes"] = _pairs_with("a/0.png b/0.png yes")
    m["same-float"] = _pairs_with("a/0.png b/0.png 1.0")
    m["same-negative-zero"] = _pairs_with("a/0.png b/0.png -0")
    m["same-unicode-digit"] = _pairs_with("a/0.png b/0.png \u0661")
    m["two-columns"] = _pairs_with("a/0.png b/0.png")
    m["four-columns"] = _pairs_with("a/0.png b/0.png 0 extra")
    m["all-genuine"] = _pairs(lambda r: "a/0.png a/1.png 1\n")
    m["all-impostor"] = _pairs(lambda r: "a/0.png b/1.png 0\n")
    m["only-comments"] = _pairs(lambda r: "# nothing\n\n")
    m["empty"] = _pairs(lambda r: b"")
    m["missing-image"] = _pairs_with("a/0.png b/9.png 0")
    m["pair-is-directory"] = _pairs_with("a b 0")
    m["crlf"] = _pairs(lambda r: _PAIRS_VALID.replace("\n", "\r\n"))
    m["line-separators"] = _pairs(lambda r: _PAIRS_VALID.replace("\n", "\x0c", 2).replace("\n", "\u2028", 1))
    m["unicode-spaces"] = _pairs(lambda r: _PAIRS_VALID + "a/0.png\u3000b/0.png\u00a00\n")
    m["hash-in-path"] = _pairs_with("a/#0.png b/0.png 0")
    m["symlink-inside"] = _pairs_symlink_inside
    m["symlink-escape"] = _pairs_escape_link
    m["many-lines"] = _pairs(lambda r: _PAIRS_VALID * 5000)
    m["list-is-directory"] = _pairs_not_a_file(directory=True)
    m["list-missing"] = _pairs_not_a_file(directory=False)
    m["bytes"] = _pairs(lambda r: _generic(r, _PAIRS_VALID.encode())[1])
    m["bytes-2"] = _pairs(lambda r: _generic(r, _PAIRS_VALID.encode())[1])
    return m


def run_pair_list(path: Path) -> object:
    """Read a pair list with :func:`~faceopt.recognition.real_protocols.read_pair_list`."""
    from faceopt.recognition.real_protocols import read_pair_list

    return len(read_pair_list(path)[0])


# ----------------------------------------------------------------------------- CelebA-Spoof

_CS_LABEL = "train_label.json"


def _cs_vector(label: int, spoof_type: int) -> list[int]:
    """A 44-value CelebA-Spoof label vector: 40 attributes, spoof type, illumination, environment, live/spoof."""
    return [0] * 40 + [spoof_type, int(label > 0), int(label > 0), label]


_CS_ENTRIES: dict[str, list[int]] = {
    "Data/train/101/live/000001.png": _cs_vector(0, 0),
    "Data/train/101/spoof/000002.png": _cs_vector(1, 1),
    "Data/train/202/spoof/000003.jpg": _cs_vector(1, 9),
}
_CS_BOX = "2 3 18 17 0.99\n"


def _cs_write(rng: Rng, d: Path, *, labels: bytes | None = None, txt: bytes | None = None,
              image: bytes | None = None, box: bytes | None = None) -> Path:
    """A format-true CelebA_Spoof tree under ``d`` (24x24 images, one box each); ``labels`` replaces the label
    JSON, ``txt`` writes a txt label list instead, ``image``/``box`` replace the first image/box file."""
    root = d / "CelebA_Spoof"
    metas = root / "metas" / "intra_test"
    metas.mkdir(parents=True)
    for k, name in enumerate(_CS_ENTRIES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image if (k == 0 and image is not None) else _encode(_random_image(rng, 24), path.suffix))
        path.with_name(path.stem + "_BB.txt").write_bytes(box if (k == 0 and box is not None) else _CS_BOX.encode())
    if txt is not None:
        (metas / "train_label.txt").write_bytes(txt)
    else:
        (metas / _CS_LABEL).write_bytes(json.dumps(_CS_ENTRIES).encode() if labels is None else labels)
    return root


_CS_FIRST = next(iter(_CS_ENTRIES))
_CS_FIRST_BOX = Path(_CS_FIRST).stem + "_BB.txt"


def _cs_labels(make: Callable[[Rng], object]) -> Mutation:
    return lambda rng, d: Inputs(_cs_write(rng, d, labels=json.dumps(make(rng)).encode()), (_CS_LABEL,))


def _cs_labels_raw(text: bytes) -> Mutation:
    return lambda rng, d: Inputs(_cs_write(rng, d, labels=text), (_CS_LABEL,))


def _cs_with(name: str, vector: object) -> Mutation:
    return _cs_labels(lambda r: {**_CS_ENTRIES, name: vector})


def _cs_box(text: bytes) -> Mutation:
    return lambda rng, d: Inputs(_cs_write(rng, d, box=text), (_CS_FIRST_BOX,))


def _cs_image(rng: Rng, d: Path, data: bytes) -> Inputs:
    return Inputs(_cs_write(rng, d, image=data), (Path(_CS_FIRST).name,))


def _cs_box_missing(rng: Rng, d: Path) -> Inputs:
    root = _cs_write(rng, d)
    (root / _CS_FIRST).with_name(_CS_FIRST_BOX).unlink()
    return Inputs(root, (_CS_FIRST_BOX,))


def _cs_box_directory(rng: Rng, d: Path) -> Inputs:
    root = _cs_write(rng, d)
    box = (root / _CS_FIRST).with_name(_CS_FIRST_BOX)
    box.unlink()
    box.mkdir()
    return Inputs(root, (_CS_FIRST_BOX,))


def _cs_image_symlink_out(rng: Rng, d: Path) -> Inputs:
    root = _cs_write(rng, d)
    (d / "outside.png").write_bytes(_encode(_random_image(rng, 24), ".png"))
    first = root / _CS_FIRST
    first.unlink()
    first.symlink_to(d / "outside.png")
    return Inputs(root, (Path(_CS_FIRST).name, _CS_LABEL))


def _cs_labels_missing(rng: Rng, d: Path) -> Inputs:
    root = _cs_write(rng, d)
    (root / "metas" / "intra_test" / _CS_LABEL).unlink()
    return Inputs(root, (_CS_LABEL, "train_label.txt", "intra_test"))


def _cs_txt(text: bytes) -> Mutation:
    return lambda rng, d: Inputs(_cs_write(rng, d, txt=text), ("train_label.txt",))


def _celeba_spoof_mutations() -> dict[str, Mutation]:
    valid_json = json.dumps(_CS_ENTRIES).encode()
    valid_txt = "".join(f"{k} {v[43]}\n" for k, v in _CS_ENTRIES.items()).encode()
    m: dict[str, Mutation] = {"valid": lambda rng, d: Inputs(_cs_write(rng, d), (_CS_LABEL,))}
    m["valid-txt"] = _cs_txt(valid_txt)
    m["labels-truncated"] = lambda rng, d: Inputs(_cs_write(rng, d, labels=valid_json[: int(rng.integers(1, 60))]), (_CS_LABEL,))
    m["labels-invalid"] = _cs_labels_raw(b'{"Data/train/101/live/000001.png": [0, 0,]}')
    m["labels-deep-nesting"] = _cs_labels_raw(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    m["labels-top-array"] = _cs_labels_raw(b"[1, 2, 3]")
    m["labels-empty-object"] = _cs_labels_raw(b"{}")
    m["labels-duplicate-keys"] = _cs_labels_raw(('{"%s": %s, "%s": %s}' % (_CS_FIRST, _CS_ENTRIES[_CS_FIRST], _CS_FIRST,
                                                                        _CS_ENTRIES[_CS_FIRST])).encode())
    m["labels-non-utf8"] = _cs_labels_raw(b'{"Data/train/101/live/\xff.png": [0]}')
    m["labels-bom"] = _cs_labels_raw(b"\xef\xbb\xbf" + valid_json)
    m["labels-utf16"] = _cs_labels_raw(json.dumps(_CS_ENTRIES).encode("utf-16"))
    m["vector-43-values"] = _cs_with(_CS_FIRST, _cs_vector(0, 0)[:43])
    m["vector-45-values"] = _cs_with(_CS_FIRST, _cs_vector(0, 0) + [0])
    m["vector-not-list"] = _cs_with(_CS_FIRST, "live")
    m["vector-null"] = _cs_with(_CS_FIRST, None)
    m["vector-floats"] = _cs_with(_CS_FIRST, [0.5] * 44)
    m["vector-bools"] = _cs_with(_CS_FIRST, [False] * 44)
    m["vector-nested"] = _cs_with(_CS_FIRST, [[0]] * 44)
    m["vector-huge-int"] = _cs_labels_raw(('{"%s": [%s]}' % (_CS_FIRST, ", ".join(["9" * 5000] * 44))).encode())
    m["vector-overflow-float"] = _cs_labels_raw(('{"%s": [%s]}' % (_CS_FIRST, ", ".join(["1e400"] * 44))).encode())
    m["vector-nan"] = _cs_labels_raw(('{"%s": [%s]}' % (_CS_FIRST, ", ".join(["NaN"] * 44))).encode())
    m["label-2"] = _cs_with(_CS_FIRST, _cs_vector(2, 1))
    m["label-negative"] = _cs_with(_CS_FIRST, _cs_vector(-1, 0))
    m["spoof-type-11"] = _cs_with("Data/train/101/spoof/000002.png", _cs_vector(1, 11))
    m["spoof-type-negative"] = _cs_with("Data/train/101/spoof/000002.png", _cs_vector(1, -3))
    m["live-with-spoof-type"] = _cs_with(_CS_FIRST, _cs_vector(0, 3))
    m["live-folder-spoof-label"] = _cs_with(_CS_FIRST, _cs_vector(1, 2))
    m["path-dotdot"] = _cs_with("../outside.png", _cs_vector(0, 0))
    m["path-deep-dotdot"] = _cs_with("Data/../../../../../../etc/passwd", _cs_vector(0, 0))
    m["path-absolute"] = _cs_with("/etc/passwd", _cs_vector(0, 0))
    m["path-missing-image"] = _cs_with("Data/train/101/live/000099.png", _cs_vector(0, 0))
    m["path-directory"] = _cs_with("Data/train/101/live", _cs_vector(0, 0))
    m["path-empty"] = _cs_with("", _cs_vector(0, 0))
    m["path-nul"] = _cs_with("Data/train/101/live/a\u0000.png", _cs_vector(0, 0))
    m["path-long-name"] = _cs_with("Data/train/101/live/" + _LONG_NAME, _cs_vector(0, 0))
    m["path-no-extension"] = _cs_with("Data/train/101/live/000001", _cs_vector(0, 0))
    m["labels-missing"] = _cs_labels_missing
    m["txt-label-2"] = _cs_txt(valid_txt + b"Data/train/101/live/000001.png 2\n")
    m["txt-one-column"] = _cs_txt(b"Data/train/101/live/000001.png\n")
    m["txt-non-utf8"] = _cs_txt(b"Data/train/101/live/\xff.png 0\n")
    m["txt-dotdot"] = _cs_txt(b"../outside.png 0\n")
    m["txt-empty"] = _cs_txt(b"")
    m["box-empty"] = _cs_box(b"")
    m["box-four-numbers"] = _cs_box(b"2 3 18 17\n")
    m["box-words"] = _cs_box(b"x y w h s\n")
    m["box-nan"] = _cs_box(b"nan 3 18 17 0.9\n")
    m["box-inf"] = _cs_box(b"2 3 inf 17 0.9\n")
    m["box-negative-width"] = _cs_box(b"2 3 -18 17 0.9\n")
    m["box-zero-height"] = _cs_box(b"2 3 18 0 0.9\n")
    m["box-outside-image"] = _cs_box(b"5000 5000 10 10 0.9\n")
    m["box-huge"] = _cs_box(b"0 0 1e308 1e308 0.9\n")
    m["box-huge-int"] = _cs_box(b"0 0 " + b"9" * 5000 + b" 10 0.9\n")
    m["box-non-utf8"] = _cs_box(b"\xff\xfe 3 18 17 0.9\n")
    m["box-long-line"] = _cs_box(b"1 " * 500_000 + b"\n")
    m["box-missing"] = _cs_box_missing
    m["box-is-directory"] = _cs_box_directory
    m["image-symlink-out"] = _cs_image_symlink_out
    _add_image_variants(m, _cs_image)
    m["bytes-labels"] = lambda rng, d: Inputs(_cs_write(rng, d, labels=_generic(rng, valid_json)[1]), (_CS_LABEL,))
    m["bytes-labels-2"] = m["bytes-labels"]
    m["bytes-box"] = lambda rng, d: Inputs(_cs_write(rng, d, box=_generic(rng, _CS_BOX.encode())[1]), (_CS_FIRST_BOX,))
    m["bytes-image"] = lambda rng, d: _cs_image(rng, d, _generic(rng, _encode(_random_image(rng, 24), ".png"))[1])
    return m


def run_celeba_spoof(path: Path) -> object:
    """Open a CelebA_Spoof tree as :class:`~faceopt.data.celeba_spoof.CelebASpoof` (train split) and read every item."""
    from faceopt.data.celeba_spoof import CelebASpoof

    ds = CelebASpoof(path, "train", size=16)
    for i in range(min(len(ds), _MAX_ITEMS)):
        ds[i]
    return len(ds)


# ----------------------------------------------------------------------------- asset archives

ASSET_MEMBER = "pkg/model.bin"
_ASSET_PAYLOAD = b"faceopt fuzz payload\n" * 37 + b"odd"


_Entries = list[tuple[bytearray, bytes]]
_EntriesEdit = Callable[[Rng, str, _Entries], _Entries]


def _tar_header(name: str, size: int, kind: bytes = b"0", linkname: str = "", mode: int = 0o644) -> bytearray:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mode = size, kind, linkname, mode
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return bytearray(info.tobuf(format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"))


def _tar_checksum(header: bytearray) -> None:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header[:512])


def _tar_entries(prefix: str) -> _Entries:
    """(header, data) of the seed tar: a folder, a readme, the member and a symlink to it."""
    return [(_tar_header(f"{prefix}pkg/", 0, tarfile.DIRTYPE, mode=0o755), b""),
            (_tar_header(f"{prefix}pkg/readme.txt", 2), b"hi"),
            (_tar_header(f"{prefix}{ASSET_MEMBER}", len(_ASSET_PAYLOAD)), _ASSET_PAYLOAD),
            (_tar_header(f"{prefix}pkg/link.bin", 0, tarfile.SYMTYPE, "model.bin"), b"")]


def _tar_join(entries: Sequence[tuple[bytes | bytearray, bytes]], end: bool = True) -> bytes:
    out = bytearray()
    for header, data in entries:
        out += header + data + b"\0" * (-len(data) % 512)
    if end:
        out += b"\0" * 1024
    return bytes(out)


def _zstd_frame(data: bytes) -> bytes:
    """A zstd frame of raw blocks (no compression, deterministic, readable by any zstd decoder)."""
    out = bytearray(_u32(0xFD2FB528) + bytes([0x00, 0x58]))  # no checksum or content size; 2 MiB window
    block = 1 << 17
    parts = [data[i:i + block] for i in range(0, len(data), block)] or [b""]
    for k, part in enumerate(parts):
        out += ((len(part) << 3) | int(k == len(parts) - 1)).to_bytes(3, "little") + part
    return bytes(out)


def _compress(data: bytes, comp: str) -> bytes:
    if comp in (".gz", ".tgz"):
        return gzip.compress(data, mtime=0)
    if comp == ".xz":
        return lzma.compress(data)
    if comp == ".bz2":
        return bz2.compress(data)
    if comp == ".zst":
        return _zstd_frame(data)
    return data


def _ar(members: Sequence[tuple[bytes, bytes]]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += _ar_header(name, str(len(data)).encode()) + data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def _ar_header(name: bytes, size: bytes) -> bytes:
    return name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"100644".ljust(8) + size.ljust(10) + b"`\n"


def _deb(comp: str, data_tar: bytes, data_name: str | None = None) -> bytes:
    control = gzip.compress(_tar_join([(_tar_header("./control", 30), b"Package: fake\nVersion: 1.0-1\n")]), mtime=0)
    name = (data_name or f"data.tar{comp}") + "/"
    return _ar([(b"debian-binary/", b"2.0\n"), (b"control.tar.gz/", control), (name.encode(), _compress(data_tar, comp))])


_ARCHIVE_NAMES = {"deb.gz": "fake_1.0-1_all.deb", "deb.xz": "fake_1.0-1_all.deb", "deb.bz2": "fake_1.0-1_all.deb",
                  "deb.zst": "fake_1.0-1_all.deb", "deb": "fake_1.0-1_all.deb", "whl": "fakepkg-1.0-py3-none-any.whl",
                  "zip": "fakepkg-1.0.zip", "tgz": "fakepkg-1.0.0.tgz", "tar.gz": "fakepkg-1.0.tar.gz",
                  "tar.xz": "fakepkg-1.0.tar.xz", "tar.bz2": "fakepkg-1.0.tar.bz2", "tar": "fakepkg-1.0.tar"}
_TAR_FORMATS = ("deb.gz", "deb.xz", "deb.bz2", "deb.zst", "deb", "tgz", "tar.gz", "tar.xz", "tar.bz2", "tar")


def _archive_write(d: Path, fmt: str, data: bytes) -> Inputs:
    name = _ARCHIVE_NAMES[fmt]
    (d / name).write_bytes(data)
    return Inputs(d / name, (name,))


def _tar_archive(fmt: str, tar: bytes) -> bytes:
    """Wrap an uncompressed tar as ``fmt``: a .deb's data member or a (compressed) tarball."""
    if fmt.startswith("deb"):
        return _deb(fmt[3:], tar)
    return _compress(tar, "." + fmt.split(".")[-1] if "." in fmt else ("" if fmt == "tar" else ".gz"))


def _zip_archive(entries: Sequence[tuple[zipfile.ZipInfo, bytes]] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        if entries is None:
            member = zipfile.ZipInfo(ASSET_MEMBER, date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            link = zipfile.ZipInfo("pkg/link.bin", date_time=(1980, 1, 1, 0, 0, 0))
            link.external_attr = 0o120777 << 16
            entries = [(member, _ASSET_PAYLOAD), (zipfile.ZipInfo("pkg/__init__.py", date_time=(1980, 1, 1, 0, 0, 0)), b""),
                       (link, b"model.bin")]
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def _prefix(fmt: str) -> str:
    return "./" if fmt.startswith("deb") else ""


def _archive_valid(fmt: str) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        if fmt in ("whl", "zip"):
            return _archive_write(d, fmt, _zip_archive())
        return _archive_write(d, fmt, _tar_archive(fmt, _tar_join(_tar_entries(_prefix(fmt)))))
    return mutate


def _pick_fmt(rng: Rng, formats: Sequence[str]) -> str:
    return str(formats[_pick(rng, len(formats))])


def _tar_member_patch(edit: Callable[[Rng, bytearray], bool | None]) -> Mutation:
    """Distort the header of the wanted member in a random tar-based format (checksum redone unless ``edit`` says not)."""
    def mutate(rng: Rng, d: Path) -> Inputs:
        fmt = _pick_fmt(rng, _TAR_FORMATS)
        entries = _tar_entries(_prefix(fmt))
        header = entries[2][0]
        if edit(rng, header) is not False:
            _tar_checksum(header)
        return _archive_write(d, fmt, _tar_archive(fmt, _tar_join(entries)))
    return mutate


def _tar_field(offset: int, width: int, value: Callable[[Rng], bytes]) -> Callable[[Rng, bytearray], None]:
    def edit(rng: Rng, header: bytearray) -> None:
        header[offset:offset + width] = value(rng).ljust(width, b"\0")[:width]
    return edit


def _tar_entries_edit(edit: _EntriesEdit,
                      end: bool = True) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        fmt = _pick_fmt(rng, _TAR_FORMATS)
        entries = edit(rng, _prefix(fmt), _tar_entries(_prefix(fmt)))
        return _archive_write(d, fmt, _tar_archive(fmt, _tar_join(entries, end)))
    return mutate


def _special(kind: bytes, linkname: str = "") -> _EntriesEdit:
    def edit(rng: Rng, prefix: str, entries: _Entries) -> _Entries:
        entries[2] = (_tar_header(f"{prefix}{ASSET_MEMBER}", 0, kind, linkname), b"")
        return entries
    return edit


def _gnu_long(kind: bytes, size: int, data: bytes) -> _EntriesEdit:
    def edit(rng: Rng, prefix: str, entries: _Entries) -> _Entries:
        header = _tar_header("././@LongLink", 0, kind)
        header[124:136] = b"%011o\0" % size if size < 8 ** 11 else b"\x80" + size.to_bytes(11, "big")
        _tar_checksum(header)
        return entries[:2] + [(header, data)] + entries[2:]
    return edit


def _pax(records: bytes, kind: bytes = b"x") -> _EntriesEdit:
    def edit(rng: Rng, prefix: str, entries: _Entries) -> _Entries:
        return entries[:2] + [(_tar_header("././@PaxHeader", len(records), kind), records)] + entries[2:]
    return edit


def _duplicate_member(rng: Rng, prefix: str, entries: _Entries) -> _Entries:
    return entries[:2] + [(_tar_header(f"{prefix}{ASSET_MEMBER}", 5), b"first")] + entries[2:]


def _sparse_member(rng: Rng, prefix: str, entries: _Entries) -> _Entries:
    header = _tar_header(f"{prefix}{ASSET_MEMBER}", len(_ASSET_PAYLOAD), tarfile.GNUTYPE_SPARSE)
    header[386:386 + 24] = b"%011o\0" % 0 + b"%011o\0" % 0o7777777777  # one sparse block of 1 GiB
    header[482] = 0
    header[483:495] = b"%011o\0" % 0o7777777777  # real size
    _tar_checksum(header)
    entries[2] = (header, _ASSET_PAYLOAD)
    return entries


def _tar_truncated_data(rng: Rng, d: Path) -> Inputs:
    fmt = _pick_fmt(rng, _TAR_FORMATS)
    tar = _tar_join(_tar_entries(_prefix(fmt)))
    cut = 1536 + int(rng.integers(0, len(_ASSET_PAYLOAD)))
    return _archive_write(d, fmt, _tar_archive(fmt, tar[:cut]))


def _comp_corrupt(rng: Rng, d: Path) -> Inputs:
    """Bit flips inside the compressed stream (not the ar/tar structure around it)."""
    fmt = _pick_fmt(rng, ("tgz", "tar.gz", "tar.xz", "tar.bz2", "deb.gz", "deb.xz", "deb.bz2", "deb.zst"))
    tar = _tar_join(_tar_entries(_prefix(fmt)))
    comp = "." + fmt.split(".")[-1] if "." in fmt else ".gz"
    data = bytearray(_compress(tar, comp))
    for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(6, len(data)))
        data[i] ^= 1 << int(rng.integers(0, 8))
    if fmt.startswith("deb"):
        control = gzip.compress(_tar_join([(_tar_header("./control", 0), b"")]), mtime=0)
        return _archive_write(d, fmt, _ar([(b"debian-binary/", b"2.0\n"), (b"control.tar.gz/", control),
                                            (f"data.tar{comp}/".encode(), bytes(data))]))
    return _archive_write(d, fmt, bytes(data))


def _comp_truncated(rng: Rng, d: Path) -> Inputs:
    fmt = _pick_fmt(rng, ("tgz", "tar.xz", "tar.bz2"))
    data = _tar_archive(fmt, _tar_join(_tar_entries("")))
    return _archive_write(d, fmt, data[: int(rng.integers(1, len(data)))])


def _comp_mismatch(rng: Rng, d: Path) -> Inputs:
    """A data member whose name says one compression and whose bytes are another."""
    tar = _tar_join(_tar_entries("./"))
    comps = [".gz", ".xz", ".bz2", ".zst", ""]
    said, real = comps[_pick(rng, 5)], comps[_pick(rng, 5)]
    return _archive_write(d, "deb", _ar([(b"debian-binary/", b"2.0\n"), (f"data.tar{said}/".encode(), _compress(tar, real))]))


def _zst_variant(kind: str) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        tar = _tar_join(_tar_entries("./"))
        frame = bytearray(_zstd_frame(tar))
        if kind == "rle-bomb":  # RLE blocks of zeros: 128 KiB each from 4 bytes
            frame = bytearray(_u32(0xFD2FB528) + bytes([0x00, 0x58]))
            for k in range(20_000):
                frame += (((1 << 17) << 3) | (1 << 1) | int(k == 19_999)).to_bytes(3, "little") + b"\0"
        elif kind == "bad-window":
            frame[5] = 0xFF
        elif kind == "block-size-huge":
            frame[6:9] = (((1 << 21) - 1) << 3).to_bytes(3, "little")
        elif kind == "reserved-block":
            frame[6] |= 0b110
        elif kind == "no-last-block":
            frame[6] &= 0xFE
        control = gzip.compress(_tar_join([(_tar_header("./control", 0), b"")]), mtime=0)
        return _archive_write(d, "deb.zst", _ar([(b"debian-binary/", b"2.0\n"), (b"control.tar.gz/", control),
                                                 (b"data.tar.zst/", bytes(frame))]))
    return mutate


def _ar_patch(edit: Callable[[Rng, list[tuple[bytes, bytes]]], bytes]) -> Mutation:
    """A .deb whose ar structure ``edit`` writes from the seed's members."""
    def mutate(rng: Rng, d: Path) -> Inputs:
        comp = [".gz", ".xz", ".bz2", ".zst", ""][_pick(rng, 5)]
        control = gzip.compress(_tar_join([(_tar_header("./control", 0), b"")]), mtime=0)
        members = [(b"debian-binary/", b"2.0\n"), (b"control.tar.gz/", control),
                   (f"data.tar{comp}/".encode(), _compress(_tar_join(_tar_entries("./")), comp))]
        return _archive_write(d, "deb", edit(rng, members))
    return mutate


def _ar_size_field(value: bytes, member: int = 2) -> Callable[[Rng, list[tuple[bytes, bytes]]], bytes]:
    def edit(rng: Rng, members: list[tuple[bytes, bytes]]) -> bytes:
        out = bytearray(b"!<arch>\n")
        for k, (name, data) in enumerate(members):
            out += _ar_header(name, value if k == member else str(len(data)).encode()) + data + (b"\n" if len(data) % 2 else b"")
        return bytes(out)
    return edit


def _ar_bsd(name_len: bytes | None = None, pad: bytes = b"\0", size_delta: int = 0,
            name: bytes | None = None) -> Callable[[Rng, list[tuple[bytes, bytes]]], bytes]:
    """The data member under a BSD name (``#1/<length>``, the name before the data)."""
    def edit(rng: Rng, members: list[tuple[bytes, bytes]]) -> bytes:
        full = (members[2][0].rstrip(b"/") if name is None else name) + pad
        body = full + members[2][1]
        name_len_field = str(len(full)).encode() if name_len is None else name_len
        out = bytearray(_ar(members[:2]))
        out += _ar_header(b"#1/" + name_len_field, str(len(body) + size_delta).encode())
        out += body + (b"\n" if len(body) % 2 else b"")
        return bytes(out)
    return edit


def _ar_no_padding(rng: Rng, members: list[tuple[bytes, bytes]]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in [(b"debian-binary/", b"2.0\n"), (b"odd/", b"abc")] + members[1:]:
        out += _ar_header(name, str(len(data)).encode()) + data  # no 2-byte alignment
    return bytes(out)


def _zip_patch(edit: Callable[[Rng, bytearray, int, int], None]) -> Mutation:
    """Edit the member's local header (at ``local``) and central directory entry (at ``central``) of the seed zip."""
    def mutate(rng: Rng, d: Path) -> Inputs:
        fmt = _pick_fmt(rng, ("whl", "zip"))
        data = bytearray(_zip_archive())
        central = data.index(b"PK\x01\x02")
        edit(rng, data, 0, central)
        return _archive_write(d, fmt, bytes(data))
    return mutate


def _zip_u16(local_off: int | None, central_off: int | None, value: int) -> Callable[[Rng, bytearray, int, int], None]:
    def edit(rng: Rng, data: bytearray, local: int, central: int) -> None:
        if local_off is not None:
            data[local + local_off:local + local_off + 2] = struct.pack("<H", value)
        if central_off is not None:
            data[central + central_off:central + central_off + 2] = struct.pack("<H", value)
    return edit


def _zip_u32(local_off: int | None, central_off: int | None, value: int) -> Callable[[Rng, bytearray, int, int], None]:
    def edit(rng: Rng, data: bytearray, local: int, central: int) -> None:
        if local_off is not None:
            data[local + local_off:local + local_off + 4] = _u32(value)
        if central_off is not None:
            data[central + central_off:central + central_off + 4] = _u32(value)
    return edit


def _zip_deflate_corrupt(rng: Rng, data: bytearray, local: int, central: int) -> None:
    start = 30 + len(ASSET_MEMBER)
    size = struct.unpack("<I", data[18:22])[0]
    for _ in range(int(rng.integers(1, 9))):
        i = start + int(rng.integers(0, size))
        data[i] ^= 1 << int(rng.integers(0, 8))


def _zip_bad_utf8_name(rng: Rng, data: bytearray, local: int, central: int) -> None:
    for base in (local, central):
        off = 6 if base == local else 8
        flags = struct.unpack("<H", data[base + off:base + off + 2])[0] | 0x800
        data[base + off:base + off + 2] = struct.pack("<H", flags)
        name_at = base + (30 if base == local else 46)
        data[name_at:name_at + 3] = b"\xff\xfe\xfd"


def _zip_local_name_mismatch(rng: Rng, data: bytearray, local: int, central: int) -> None:
    data[30:33] = b"xyz"


def _zip_extra_junk(rng: Rng, data: bytearray, local: int, central: int) -> None:
    data[central + 30:central + 32] = struct.pack("<H", 0xFFFF)


def _zip_eocd(field_off: int, value: int, width: int = 4) -> Callable[[Rng, bytearray, int, int], None]:
    def edit(rng: Rng, data: bytearray, local: int, central: int) -> None:
        eocd = data.rindex(b"PK\x05\x06")
        data[eocd + field_off:eocd + field_off + width] = value.to_bytes(width, "little")
    return edit


def _zip_special(mode: int) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        info = zipfile.ZipInfo(ASSET_MEMBER, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = mode << 16
        return _archive_write(d, "whl", _zip_archive([(info, b"model.bin")]))
    return mutate


def _zip_zip64_junk(rng: Rng, d: Path) -> Inputs:
    info = zipfile.ZipInfo(ASSET_MEMBER, date_time=(1980, 1, 1, 0, 0, 0))
    info.extra = struct.pack("<HH", 1, 8) + (1 << 62).to_bytes(8, "little")
    data = bytearray(_zip_archive([(info, _ASSET_PAYLOAD)]))
    central = data.index(b"PK\x01\x02")
    data[central + 20:central + 28] = b"\xff" * 8  # sizes say: read them from the zip64 extra
    return _archive_write(d, "zip", bytes(data))


def _archive_generic(rng: Rng, d: Path) -> Inputs:
    fmt = _pick_fmt(rng, tuple(_ARCHIVE_NAMES))
    if fmt in ("whl", "zip"):
        data = _zip_archive()
    else:
        data = _tar_archive(fmt, _tar_join(_tar_entries(_prefix(fmt))))
    return _archive_write(d, fmt, _generic(rng, data)[1])


def _archive_truncated(rng: Rng, d: Path) -> Inputs:
    fmt = _pick_fmt(rng, tuple(_ARCHIVE_NAMES))
    data = _zip_archive() if fmt in ("whl", "zip") else _tar_archive(fmt, _tar_join(_tar_entries(_prefix(fmt))))
    return _archive_write(d, fmt, data[: int(rng.integers(0, len(data)))])


def _asset_mutations() -> dict[str, Mutation]:
    m: dict[str, Mutation] = {"valid": _archive_valid("deb.xz")}
    for fmt in _ARCHIVE_NAMES:
        if fmt != "deb.xz":
            m[f"valid-{fmt}"] = _archive_valid(fmt)
    m["truncated"] = _archive_truncated
    m["truncated-2"] = _archive_truncated
    # ar (.deb)
    m["ar-bad-magic"] = _ar_patch(lambda r, members: b"!<arcx>\n" + _ar(members)[8:])
    m["ar-only-magic"] = _ar_patch(lambda r, members: b"!<arch>\n")
    m["ar-empty-file"] = _ar_patch(lambda r, members: b"")
    for name, value in {"negative": b"-60", "absurd": b"9999999999", "junk": b"abc", "plus": b"+4", "spaces": b"1 2",
                        "unicode-digits": "\u0663\u0663".encode(), "empty": b"", "hex": b"0x10", "zero": b"0"}.items():
        m[f"ar-size-{name}"] = _ar_patch(_ar_size_field(value))
    m["ar-size-negative-first"] = _ar_patch(_ar_size_field(b"-60", member=0))
    m["ar-bsd-name"] = _ar_patch(_ar_bsd())
    m["ar-bsd-name-longer-than-member"] = _ar_patch(_ar_bsd(b"99999"))
    m["ar-bsd-name-junk"] = _ar_patch(_ar_bsd(b"x1"))
    m["ar-bsd-name-negative"] = _ar_patch(_ar_bsd(b"-5"))
    m["ar-bsd-name-huge"] = _ar_patch(_ar_bsd(b"9" * 13))
    m["ar-bsd-name-non-utf8"] = _ar_patch(_ar_bsd(name=b"data.tar\xff\xfe"))
    m["ar-bsd-size-short"] = _ar_patch(_ar_bsd(size_delta=-5))
    m["ar-bsd-size-negative"] = _ar_patch(_ar_bsd(size_delta=-10_000_000))
    m["ar-header-truncated"] = _ar_patch(lambda r, members: _ar(members[:2]) + _ar_header(b"data.tar.xz/", b"10")[:30])
    m["ar-header-bad-terminator"] = _ar_patch(lambda r, members: _ar(members)[:8 + 58] + b"XX" + _ar(members)[8 + 60:])
    m["ar-no-padding"] = _ar_patch(_ar_no_padding)
    m["ar-no-data-member"] = _ar_patch(lambda r, members: _ar(members[:2]))
    m["ar-data-unsupported"] = _ar_patch(lambda r, members: _ar(members[:2] + [(b"data.tar.lz4/", b"\x04\x22\x4d\x18")]))
    m["ar-data-empty"] = _ar_patch(lambda r, members: _ar(members[:2] + [(members[2][0], b"")]))
    m["ar-two-data-members"] = _ar_patch(lambda r, members: _ar(members[:2] + [(members[2][0], b"junk" * 40), members[2]]))
    m["ar-name-non-ascii"] = _ar_patch(lambda r, members: _ar([(b"\xff\xfe\xfd/", b"x")] + members))
    m["ar-gnu-symbol-table"] = _ar_patch(lambda r, members: _ar([(b"/", b"\0\0\0\0"), (b"//", b"data.tar.gz/\n")] + members))
    # tar headers
    m["tar-size-huge"] = _tar_member_patch(_tar_field(124, 12, lambda r: b"77777777777\0"))
    m["tar-size-base256"] = _tar_member_patch(_tar_field(124, 12, lambda r: b"\x80" + (1 << 60).to_bytes(11, "big")))
    m["tar-size-base256-negative"] = _tar_member_patch(_tar_field(124, 12, lambda r: b"\xff" * 12))
    m["tar-size-junk"] = _tar_member_patch(_tar_field(124, 12, lambda r: b"12x4\0"))
    m["tar-size-empty"] = _tar_member_patch(_tar_field(124, 12, lambda r: b"\0"))
    m["tar-mtime-junk"] = _tar_member_patch(_tar_field(136, 12, lambda r: b"\xff\xfe junk"))
    m["tar-uid-junk"] = _tar_member_patch(_tar_field(108, 8, lambda r: b"zz"))
    m["tar-mode-junk"] = _tar_member_patch(_tar_field(100, 8, lambda r: b"9999999"))
    m["tar-checksum-bad"] = _tar_member_patch(lambda r, h: (_tar_field(148, 8, lambda r2: b"000000\0 ")(r, h), False)[1])
    m["tar-name-nul"] = _tar_member_patch(_tar_field(0, 100, lambda r: b"pkg/model.bin\0junk"))
    m["tar-name-non-utf8"] = _tar_member_patch(_tar_field(0, 100, lambda r: b"pkg/\xff\xfe.bin"))
    m["tar-typeflag-junk"] = _tar_member_patch(_tar_field(156, 1, lambda r: bytes([int(r.integers(0x80, 0x100))])))
    m["tar-magic-junk"] = _tar_member_patch(_tar_field(257, 8, lambda r: b"\xffjunk\xff\xff"))
    m["tar-member-hardlink"] = _tar_entries_edit(_special(tarfile.LNKTYPE, "pkg/readme.txt"))
    m["tar-member-symlink"] = _tar_entries_edit(_special(tarfile.SYMTYPE, "/etc/passwd"))
    m["tar-member-dir"] = _tar_entries_edit(_special(tarfile.DIRTYPE))
    m["tar-member-fifo"] = _tar_entries_edit(_special(tarfile.FIFOTYPE))
    m["tar-member-chardev"] = _tar_entries_edit(_special(tarfile.CHRTYPE))
    m["tar-gnu-longname-huge"] = _tar_entries_edit(_gnu_long(tarfile.GNUTYPE_LONGNAME, 1 << 40, b"x" * 512))
    m["tar-gnu-longname-zero"] = _tar_entries_edit(_gnu_long(tarfile.GNUTYPE_LONGNAME, 0, b""))
    m["tar-gnu-longlink-huge"] = _tar_entries_edit(_gnu_long(tarfile.GNUTYPE_LONGLINK, 1 << 33, b"y" * 512))
    m["tar-pax-junk"] = _tar_entries_edit(_pax(b"junk without length\n"))
    m["tar-pax-length-huge"] = _tar_entries_edit(_pax(b"99999999999 path=x\n"))
    m["tar-pax-length-zero"] = _tar_entries_edit(_pax(b"0 path=x\n"))
    m["tar-pax-size-negative"] = _tar_entries_edit(_pax(b"13 size=-100\n"))
    m["tar-pax-size-huge"] = _tar_entries_edit(_pax(b"27 size=99999999999999999\n"))
    m["tar-pax-size-float"] = _tar_entries_edit(_pax(b"14 size=1e400\n"))
    m["tar-pax-path-non-utf8"] = _tar_entries_edit(_pax(b"13 path=\xff\xfe\n"))
    m["tar-pax-hdrcharset"] = _tar_entries_edit(_pax(b"30 hdrcharset=BINARY\n13 path=\xff\xfe\n"))
    m["tar-pax-global"] = _tar_entries_edit(_pax(b"14 size=junk\n", kind=tarfile.XGLTYPE))
    m["tar-pax-sparse"] = _tar_entries_edit(_pax(b"22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n"
                                                 b"30 GNU.sparse.name=pkg/model.bin\n27 GNU.sparse.realsize=10\n"))
    m["tar-gnu-sparse"] = _tar_entries_edit(_sparse_member)
    m["tar-duplicate-member"] = _tar_entries_edit(_duplicate_member)
    m["tar-no-end-blocks"] = _tar_entries_edit(lambda r, p, e: e, end=False)
    m["tar-only-end-blocks"] = _tar_entries_edit(lambda r, p, e: [])
    m["tar-truncated-data"] = _tar_truncated_data
    # compression
    m["comp-corrupt"] = _comp_corrupt
    m["comp-corrupt-2"] = _comp_corrupt
    m["comp-truncated"] = _comp_truncated
    m["comp-mismatch"] = _comp_mismatch
    for kind in ("rle-bomb", "bad-window", "block-size-huge", "reserved-block", "no-last-block"):
        m[f"zst-{kind}"] = _zst_variant(kind)
    # zip
    for name, method in {"method-99": 99, "method-bzip2-on-deflate": 12, "method-lzma-on-deflate": 14,
                         "method-stored-on-deflate": 0, "method-deflate64": 9}.items():
        m[f"zip-{name}"] = _zip_patch(_zip_u16(8, 10, method))
    m["zip-encrypted-flag"] = _zip_patch(_zip_u16(6, 8, 1))
    m["zip-strong-encryption-flag"] = _zip_patch(_zip_u16(6, 8, 0x41))
    m["zip-patched-data-flag"] = _zip_patch(_zip_u16(6, 8, 0x20))
    m["zip-deflate-corrupt"] = _zip_patch(_zip_deflate_corrupt)
    m["zip-deflate-corrupt-2"] = _zip_patch(_zip_deflate_corrupt)
    m["zip-crc-wrong"] = _zip_patch(_zip_u32(14, 16, 0x12345678))
    m["zip-size-huge"] = _zip_patch(_zip_u32(22, 24, 0x7FFFFFFF))
    m["zip-compress-size-huge"] = _zip_patch(_zip_u32(18, 20, 0x7FFFFFFF))
    m["zip-compress-size-zero"] = _zip_patch(_zip_u32(18, 20, 0))
    m["zip-header-offset-wrong"] = _zip_patch(_zip_u32(None, 42, 0x7FFFFFF0))
    m["zip-bad-utf8-name"] = _zip_patch(_zip_bad_utf8_name)
    m["zip-local-name-mismatch"] = _zip_patch(_zip_local_name_mismatch)
    m["zip-extra-junk"] = _zip_patch(_zip_extra_junk)
    m["zip-eocd-count-huge"] = _zip_patch(_zip_eocd(10, 0xFFFF, 2))
    m["zip-eocd-cd-offset-wrong"] = _zip_patch(_zip_eocd(16, 0x7FFFFFFF))
    m["zip-eocd-cd-size-huge"] = _zip_patch(_zip_eocd(12, 0x7FFFFFFF))
    m["zip-eocd-comment-length"] = _zip_patch(_zip_eocd(20, 0xFFFF, 2))
    m["zip-zip64-extra"] = _zip_zip64_junk
    m["zip-member-symlink"] = _zip_special(0o120777)
    m["zip-member-dir-mode"] = _zip_special(0o40755)
    m["zip-member-device-mode"] = _zip_special(0o20644)
    m["bytes"] = _archive_generic
    m["bytes-2"] = _archive_generic
    m["bytes-3"] = _archive_generic
    return m


def run_asset_archive(path: Path) -> object:
    """Extract :data:`ASSET_MEMBER` with :func:`faceopt.assets.extract.extract_member` (output discarded)."""
    from faceopt.assets.extract import extract_member

    with open(os.devnull, "wb") as out:
        return extract_member(path, ASSET_MEMBER, out)


# ----------------------------------------------------------------------------- training checkpoints

def _ckpt_seed() -> dict[str, Any]:
    """A checkpoint as :func:`faceopt.train` writes it for :func:`_ckpt_model` at step 3 (no global RNG touched)."""
    import random

    import torch

    from faceopt import checkpoint as C

    model = _ckpt_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    rng_state = C.rng_state(torch.device("cpu"))  # the layout train.py writes, from seeded generators
    random.setstate(saved[0])
    np.random.set_state(saved[1])
    torch.set_rng_state(saved[2])
    return {
        "format": C.CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": {"step": 3, "base_lr": 0.1, "gamma": 0.1, "milestones": [], "unit": "steps", "steps_per_epoch": 4},
        "scaler": {},
        "step": 3,
        "epoch": 0,
        "last_loss": 1.5,
        "loss_history": [[1, 2.0], [2, 1.75], [3, 1.5]],
        "rng": [rng_state],
        "config": _ckpt_config(None).to_dict(),
        "world_size": 1,
    }


def _ckpt_model() -> Any:
    import torch

    model = torch.nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.linspace(-1.0, 1.0, 12).reshape(3, 4))
        model.bias.zero_()
    return model


def _ckpt_config(folder: Path | None) -> Any:
    from faceopt.train import TrainConfig

    return TrainConfig(max_steps=100, batch_size=2, device="cpu", progress=False,
                       checkpoint_dir=None if folder is None else str(folder))


def _torch_bytes(obj: object) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _ckpt_write(d: Path, data: bytes) -> Inputs:
    (d / "last.pt").write_bytes(data)
    return Inputs(d / "last.pt", ("last.pt",))


def _ckpt(edit: Callable[[Rng, dict[str, Any]], object]) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        state = _ckpt_seed()
        result = edit(rng, state)
        return _ckpt_write(d, _torch_bytes(state if result is None else result))
    return mutate


def _ckpt_set(key: str, value: Callable[[], object]) -> Mutation:
    def edit(rng: Rng, state: dict[str, Any]) -> None:
        state[key] = value()
    return _ckpt(edit)


def _ckpt_rng(key: str, value: Callable[[], object]) -> Mutation:
    def edit(rng: Rng, state: dict[str, Any]) -> None:
        state["rng"][0][key] = value()
    return _ckpt(edit)


def _ckpt_drop(rng: Rng, state: dict[str, Any]) -> None:
    keys = sorted(state)
    del state[keys[_pick(rng, len(keys))]]


def _ckpt_retype(rng: Rng, state: dict[str, Any]) -> None:
    import torch

    keys = sorted(state)
    junk: list[object] = [None, "x", 1.5, [], {}, torch.zeros(2), -1, [None], {"a": 1}, (1, 2), True, 10 ** 30]
    state[keys[_pick(rng, len(keys))]] = junk[_pick(rng, len(junk))]


def _ckpt_rng_retype(rng: Rng, state: dict[str, Any]) -> None:
    import torch

    keys = sorted(state["rng"][0])
    junk: list[object] = [None, "x", 1.5, [], {}, torch.zeros(2), -1, torch.zeros(10 ** 6, dtype=torch.uint8), 10 ** 30,
                          torch.full((624,), -1, dtype=torch.int64), float("nan")]
    state["rng"][0][keys[_pick(rng, len(keys))]] = junk[_pick(rng, len(junk))]


def _ckpt_model_edit(kind: str) -> Mutation:
    def edit(rng: Rng, state: dict[str, Any]) -> None:
        import torch

        model = state["model"]
        if kind == "wrong-shape":
            model["weight"] = torch.zeros(5, 7)
        elif kind == "wrong-dtype":
            model["weight"] = torch.zeros(3, 4, dtype=torch.int64)
        elif kind == "extra-key":
            model["extra"] = torch.zeros(1)
        elif kind == "missing-key":
            del model["bias"]
        elif kind == "not-tensor":
            model["weight"] = [[1.0] * 4] * 3
        elif kind == "nan":
            model["weight"] = torch.full((3, 4), float("nan"))
        elif kind == "not-dict":
            state["model"] = [model["weight"], model["bias"]]
        elif kind == "key-int":
            state["model"] = {0: model["weight"], 1: model["bias"]}
    return _ckpt(edit)


def _ckpt_optimizer_edit(kind: str) -> Mutation:
    def edit(rng: Rng, state: dict[str, Any]) -> None:
        import torch

        opt = state["optimizer"]
        group = opt["param_groups"][0]
        if kind == "params-out-of-range":
            group["params"] = [0, 99]
        elif kind == "params-too-many":
            group["params"] = [0, 1, 2]
        elif kind == "lr-string":
            group["lr"] = "fast"
        elif kind == "groups-empty":
            opt["param_groups"] = []
        elif kind == "groups-none":
            opt["param_groups"] = None
        elif kind == "state-wrong-shape":
            opt["state"] = {0: {"momentum_buffer": torch.zeros(7, 7)}}
        elif kind == "state-bad-key":
            opt["state"] = {"x": {"momentum_buffer": torch.zeros(3, 4)}}
        elif kind == "state-not-dict":
            opt["state"] = [1, 2]
        elif kind == "momentum-negative":
            group["momentum"] = -5.0
        elif kind == "missing-groups":
            del opt["param_groups"]
        elif kind == "not-dict":
            state["optimizer"] = [1, 2, 3]
    return _ckpt(edit)


def _zip_rewrite(data: bytes, edit: Callable[[str, bytes], bytes | None]) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in src.namelist():
            new = edit(name, src.read(name))
            if new is not None:
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), new)
    return out.getvalue()


def _ckpt_archive(edit: Callable[[Rng, str, bytes], bytes | None]) -> Mutation:
    def mutate(rng: Rng, d: Path) -> Inputs:
        data = _torch_bytes(_ckpt_seed())
        return _ckpt_write(d, _zip_rewrite(data, lambda name, body: edit(rng, name, body)))
    return mutate


def _pkl_replace(payload: bytes) -> Callable[[Rng, str, bytes], bytes | None]:
    return lambda rng, name, body: payload if name.endswith("/data.pkl") else body


def _storage_truncate(rng: Rng, name: str, body: bytes) -> bytes | None:
    return body[: int(rng.integers(0, max(len(body), 1)))] if "/data/" in name else body


def _drop_record(suffix: str) -> Callable[[Rng, str, bytes], bytes | None]:
    return lambda rng, name, body: None if name.endswith(suffix) else body


def _pkl_generic(rng: Rng, name: str, body: bytes) -> bytes | None:
    return _generic(rng, body)[1] if name.endswith("/data.pkl") else body


def _ckpt_generic(rng: Rng, d: Path) -> Inputs:
    return _ckpt_write(d, _generic(rng, _torch_bytes(_ckpt_seed()))[1])


def _ckpt_legacy(rng: Rng, d: Path) -> Inputs:
    return _ckpt_write(d, pickle.dumps({"format": "faceopt.train/1", "step": 3}, protocol=2))


class _Lazy:
    """A module imported on first attribute access (the registry is built without importing torch)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._name), attr)


def _checkpoint_mutations() -> dict[str, Mutation]:
    torch: Any = _Lazy("torch")
    m: dict[str, Mutation] = {"valid": _ckpt(lambda rng, state: None)}
    for name, value in {"huge": lambda: 10 ** 12, "negative": lambda: -1, "inf": lambda: float("inf"),
                        "nan": lambda: float("nan"), "fraction": lambda: 2.5, "string": lambda: "7", "junk-string": lambda: "x",
                        "bool": lambda: True, "none": lambda: None, "list": lambda: [1, 2], "tensor": lambda: torch.tensor(5),
                        "tensor-vector": lambda: torch.tensor([1, 2]), "tensor-nan": lambda: torch.tensor(float("nan")),
                        "2^64": lambda: 2 ** 64, "complex": lambda: 1 + 2j}.items():
        m[f"step-{name}"] = _ckpt_set("step", value)
    m["format-wrong"] = _ckpt_set("format", lambda: "faceopt.train/0")
    m["format-bytes"] = _ckpt_set("format", lambda: b"faceopt.train/1")
    m["loss-history-ragged"] = _ckpt_set("loss_history", lambda: [[1]])
    m["loss-history-int"] = _ckpt_set("loss_history", lambda: 5)
    m["loss-history-strings"] = _ckpt_set("loss_history", lambda: [["a", "b"]])
    m["loss-history-dict"] = _ckpt_set("loss_history", lambda: {"1": 2.0})
    m["loss-history-tensor"] = _ckpt_set("loss_history", lambda: torch.zeros(3, 2))
    m["loss-history-vector-values"] = _ckpt_set("loss_history", lambda: [[1, torch.zeros(3)]])
    m["loss-history-huge-step"] = _ckpt_set("loss_history", lambda: [[float("inf"), 1.0]])
    m["loss-history-none-entries"] = _ckpt_set("loss_history", lambda: [None])
    m["last-loss-string"] = _ckpt_set("last_loss", lambda: "abc")
    m["last-loss-list"] = _ckpt_set("last_loss", lambda: [1.0, 2.0])
    m["last-loss-tensor-vector"] = _ckpt_set("last_loss", lambda: torch.zeros(2))
    m["last-loss-complex"] = _ckpt_set("last_loss", lambda: 1j)
    m["rng-empty"] = _ckpt_set("rng", lambda: [])
    m["rng-none"] = _ckpt_set("rng", lambda: None)
    m["rng-int"] = _ckpt_set("rng", lambda: 3)
    m["rng-tensor"] = _ckpt_set("rng", lambda: torch.zeros(2))
    m["rng-dict"] = _ckpt_set("rng", lambda: {"torch": 1})
    m["rng-empty-dict"] = _ckpt_set("rng", lambda: [{}])
    m["rng-none-entry"] = _ckpt_set("rng", lambda: [None])
    m["rng-string-entry"] = _ckpt_set("rng", lambda: ["abc"])
    m["rng-torch-short"] = _ckpt_rng("torch", lambda: torch.zeros(10, dtype=torch.uint8))
    m["rng-torch-float"] = _ckpt_rng("torch", lambda: torch.zeros(5056))
    m["rng-python-short"] = _ckpt_rng("python", lambda: torch.zeros(3, dtype=torch.int64))
    m["rng-python-huge-values"] = _ckpt_rng("python", lambda: torch.full((625,), 2 ** 62, dtype=torch.int64))
    m["rng-python-version"] = _ckpt_rng("python_version", lambda: 99)
    m["rng-python-gauss-string"] = _ckpt_rng("python_gauss", lambda: "x")
    m["rng-numpy-short"] = _ckpt_rng("numpy", lambda: torch.zeros(3, dtype=torch.int64))
    m["rng-numpy-negative"] = _ckpt_rng("numpy", lambda: torch.full((624,), -1, dtype=torch.int64))
    m["rng-numpy-float"] = _ckpt_rng("numpy", lambda: torch.zeros(624))
    m["rng-numpy-name"] = _ckpt_rng("numpy_name", lambda: "PCG64")
    m["rng-numpy-pos-huge"] = _ckpt_rng("numpy_pos", lambda: 10 ** 12)
    m["rng-numpy-pos-negative"] = _ckpt_rng("numpy_pos", lambda: -5)
    m["rng-numpy-gauss-string"] = _ckpt_rng("numpy_gauss", lambda: "x")
    m["rng-cuda-junk"] = _ckpt_rng("cuda", lambda: torch.zeros(3))
    m["rng-retype"] = _ckpt(_ckpt_rng_retype)
    m["rng-retype-2"] = _ckpt(_ckpt_rng_retype)
    m["rng-retype-3"] = _ckpt(_ckpt_rng_retype)
    m["drop-key"] = _ckpt(_ckpt_drop)
    m["drop-key-2"] = _ckpt(_ckpt_drop)
    m["retype-key"] = _ckpt(_ckpt_retype)
    m["retype-key-2"] = _ckpt(_ckpt_retype)
    m["retype-key-3"] = _ckpt(_ckpt_retype)
    for kind in ("wrong-shape", "wrong-dtype", "extra-key", "missing-key", "not-tensor", "nan", "not-dict", "key-int"):
        m[f"model-{kind}"] = _ckpt_model_edit(kind)
    for kind in ("params-out-of-range", "params-too-many", "lr-string", "groups-empty", "groups-none", "state-wrong-shape",
                 "state-bad-key", "state-not-dict", "momentum-negative", "missing-groups", "not-dict"):
        m[f"optimizer-{kind}"] = _ckpt_optimizer_edit(kind)
    m["top-list"] = _ckpt(lambda rng, state: [state])
    m["top-tensor"] = _ckpt(lambda rng, state: torch.zeros(3))
    m["format-none"] = _ckpt_set("format", lambda: None)
    m["scaler-junk"] = _ckpt_set("scaler", lambda: {"scale": "x"})
    m["empty-file"] = lambda rng, d: _ckpt_write(d, b"")
    m["legacy-pickle"] = _ckpt_legacy
    m["hostile-data-pkl"] = _ckpt_archive(_pkl_replace(_HOSTILE["os-system"]))
    m["hostile-data-pkl-open"] = _ckpt_archive(_pkl_replace(_HOSTILE["builtins-open"]))
    evil = pickle.dumps({"format": "faceopt.train/1", "x": _Evil()}, protocol=2)
    m["hostile-data-pkl-reduce"] = _ckpt_archive(_pkl_replace(evil))
    m["deep-data-pkl"] = _ckpt_archive(_pkl_replace(b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b"."))
    m["deep-tuple-data-pkl"] = _ckpt_archive(_pkl_replace(b"\x80\x04}N" + b"\x85" * 200_000 + b"Ns."))
    m["storage-truncated"] = _ckpt_archive(_storage_truncate)
    m["no-data-pkl"] = _ckpt_archive(_drop_record("/data.pkl"))
    m["no-storage"] = _ckpt_archive(_drop_record("/data/0"))
    m["no-version"] = _ckpt_archive(_drop_record("/version"))
    m["version-junk"] = _ckpt_archive(lambda rng, name, body: b"junk\n" if name.endswith("/version") else body)
    m["byteorder-big"] = _ckpt_archive(lambda rng, name, body: b"big" if name.endswith("/byteorder") else body)
    m["data-pkl-bytes"] = _ckpt_archive(_pkl_generic)
    m["data-pkl-bytes-2"] = _ckpt_archive(_pkl_generic)
    m["bytes"] = _ckpt_generic
    m["bytes-2"] = _ckpt_generic
    return m


def run_checkpoint(path: Path) -> object:
    """Resume a tiny run from ``path`` (``last.pt``) with :func:`faceopt.train._resume`: load and validate, no training."""
    import warnings

    import torch
    from torch.utils.data import TensorDataset

    from faceopt import train as T

    data = TensorDataset(torch.zeros(8, 4), torch.zeros(8, dtype=torch.long))
    run = T._setup(_ckpt_model(), data, _ckpt_config(path.parent), T._Dist(), torch.device("cpu"), None)
    if run.checkpoint_path != path:
        raise RuntimeError(f"fuzz harness: the checkpoint must be named {T.CHECKPOINT_NAME}, got {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        T._resume(run)
    return run.step


# ----------------------------------------------------------------------------- videos

_VIDEO_FRAMES, _VIDEO_W, _VIDEO_H = 6, 32, 24


def _video_seed(fourcc: str, ext: str) -> bytes:
    """A small real video written by OpenCV (moving squares), as bytes."""
    import tempfile

    import cv2

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"seed{ext}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 10.0, (_VIDEO_W, _VIDEO_H))
        if not writer.isOpened():  # pragma: no cover - opencv-python ships these encoders
            raise RuntimeError(f"OpenCV cannot write {fourcc} {ext}")
        for i in range(_VIDEO_FRAMES):
            frame = np.full((_VIDEO_H, _VIDEO_W, 3), 40, np.uint8)
            frame[4:12, 2 + 3 * i:10 + 3 * i] = (0, 200, 255)
            writer.write(frame)
        writer.release()
        return path.read_bytes()


_VIDEO_SEEDS: dict[str, bytes] = {}


def _video_bytes(kind: str) -> bytes:
    if kind not in _VIDEO_SEEDS:
        _VIDEO_SEEDS[kind] = _video_seed("MJPG", ".avi") if kind == "avi" else _video_seed("mp4v", ".mp4")
    return _VIDEO_SEEDS[kind]


def _video_write(d: Path, data: bytes, name: str = "clip.avi") -> Inputs:
    (d / name).write_bytes(data)
    return Inputs(d / name, (name,))


def _video(kind: str, edit: Callable[[Rng, bytes], bytes] | None = None) -> Mutation:
    ext = ".avi" if kind == "avi" else ".mp4"
    return lambda rng, d: _video_write(d, (edit or (lambda r, b: b))(rng, _video_bytes(kind)), f"clip{ext}")


def _put_u32_after(tag: bytes, offset: int, value: int, fmt: str = "<I") -> Callable[[Rng, bytes], bytes]:
    """Overwrite the u32 ``offset`` bytes after the first ``tag``: little-endian (``<I``, AVI) or big (``>I``, MP4)."""
    def edit(rng: Rng, data: bytes) -> bytes:
        at = data.find(tag)
        if at < 0:
            return data
        i = at + offset
        return data[:i] + struct.pack(fmt, value & 0xFFFFFFFF) + data[i + 4:]
    return edit


def _jpeg_frames_sized(width: int, height: int, every: bool) -> Callable[[Rng, bytes], bytes]:
    """Rewrite the size in the SOF0 header of the first (or every) MJPEG frame: a decompression bomb."""
    def edit(rng: Rng, data: bytes) -> bytes:
        buf, at = bytearray(data), 0
        while True:
            at = buf.find(b"\xff\xc0", at)
            if at < 0:
                return bytes(buf)
            buf[at + 5:at + 9] = struct.pack(">HH", height, width)
            at += 2
            if not every:
                return bytes(buf)
    return edit


def _video_generic(kind: str) -> Mutation:
    return _video(kind, lambda rng, data: _generic(rng, data)[1])


def _video_truncated(kind: str) -> Mutation:
    return _video(kind, lambda rng, data: data[: int(rng.integers(0, len(data)))])


def _video_not_a_file(device: bool) -> Mutation:
    """``clip.avi`` that is a directory, or a symlink to ``/dev/zero`` (endless bytes)."""
    def write(rng: Rng, d: Path) -> Inputs:
        if device:
            (d / "clip.avi").symlink_to("/dev/zero")
        else:
            (d / "clip.avi").mkdir()
        return Inputs(d / "clip.avi", ("clip.avi",))
    return write


def _video_mutations() -> dict[str, Mutation]:
    m: dict[str, Mutation] = {"valid": _video("avi"), "valid-mp4": _video("mp4")}
    for k in range(8):
        m[f"avi-bytes-{k}"] = _video_generic("avi")
        m[f"mp4-bytes-{k}"] = _video_generic("mp4")
    m["avi-truncated"] = _video_truncated("avi")
    m["mp4-truncated"] = _video_truncated("mp4")
    m["empty-avi"] = lambda rng, d: _video_write(d, b"")
    m["empty-mp4"] = lambda rng, d: _video_write(d, b"", "clip.mp4")
    m["text-as-video"] = lambda rng, d: _video_write(d, b"this is not a video\n" * 20)
    m["png-as-video"] = lambda rng, d: _video_write(d, _encode(_random_image(rng), ".png"))
    m["riff-only"] = lambda rng, d: _video_write(d, b"RIFF\xff\xff\xff\x7fAVI LIST")
    # avih: size(4) then MicroSecPerFrame, MaxBytesPerSec, Padding, Flags, TotalFrames, InitialFrames, Streams,
    # SuggestedBufferSize, Width, Height (u32 each); strf (BITMAPINFOHEADER): size(4), biSize, biWidth, biHeight
    for name, off in (("total-frames", 24), ("streams", 32), ("buffer-size", 36), ("width", 40), ("height", 44)):
        for value, label in ((0xFFFFFFFF, "max"), (0x7FFFFFFF, "int-max"), (0, "zero"), (100_000, "100000")):
            m[f"avih-{name}-{label}"] = _video("avi", _put_u32_after(b"avih", off, value))
    for name, off in (("width", 12), ("height", 16), ("size-image", 28)):
        for value, label in ((0x7FFFFFFF, "int-max"), (0xFFFFFFFF, "minus-one"), (0, "zero"), (60_000, "60000")):
            m[f"strf-{name}-{label}"] = _video("avi", _put_u32_after(b"strf", off, value))
    m["strh-rate-zero"] = _video("avi", _put_u32_after(b"strh", 28, 0))
    m["strh-scale-zero"] = _video("avi", _put_u32_after(b"strh", 24, 0))
    m["strh-length-max"] = _video("avi", _put_u32_after(b"strh", 40, 0xFFFFFFFF))
    m["riff-size-max"] = _video("avi", _put_u32_after(b"RIFF", 4, 0xFFFFFFFF))
    m["movi-size-max"] = _video("avi", _put_u32_after(b"movi", -4, 0xFFFFFFFF))
    m["chunk-size-max"] = _video("avi", _put_u32_after(b"00dc", 4, 0xFFFFFFFF))
    m["chunk-size-int-max"] = _video("avi", _put_u32_after(b"00dc", 4, 0x7FFFFFFF))
    m["idx1-offsets-max"] = _video("avi", _put_u32_after(b"idx1", 16, 0xFFFFFFFF))
    m["idx1-size-max"] = _video("avi", _put_u32_after(b"idx1", 4, 0xFFFFFFFF))
    m["jpeg-frame-16000x16000"] = _video("avi", _jpeg_frames_sized(16000, 16000, every=False))
    m["jpeg-frames-16000x16000"] = _video("avi", _jpeg_frames_sized(16000, 16000, every=True))
    m["jpeg-frame-65535x65535"] = _video("avi", _jpeg_frames_sized(65535, 65535, every=False))
    m["jpeg-frame-8192x8192"] = _video("avi", _jpeg_frames_sized(8192, 8192, every=True))
    m["jpeg-frame-0x0"] = _video("avi", _jpeg_frames_sized(0, 0, every=True))
    m["mp4-moov-size-max"] = _video("mp4", _put_u32_after(b"moov", -4, 0xFFFFFFFF, ">I"))
    m["mp4-mdat-size-max"] = _video("mp4", _put_u32_after(b"mdat", -4, 0xFFFFFFFF, ">I"))
    m["mp4-stsz-count-max"] = _video("mp4", _put_u32_after(b"stsz", 12, 0x7FFFFFFF, ">I"))
    m["mp4-stco-count-max"] = _video("mp4", _put_u32_after(b"stco", 8, 0x7FFFFFFF, ">I"))
    m["mp4-stts-count-max"] = _video("mp4", _put_u32_after(b"stts", 8, 0x7FFFFFFF, ">I"))
    m["mp4-tkhd-width-max"] = _video("mp4", _put_u32_after(b"tkhd", 80, 0xFFFF0000, ">I"))
    m["mp4-avc-width-max"] = _video("mp4", _put_u32_after(b"mp4v", 28, 0xFFFFFFFF, ">I"))
    m["directory-as-video"] = _video_not_a_file(device=False)
    m["dev-zero-as-video"] = _video_not_a_file(device=True)
    m["percent-d-name"] = lambda rng, d: _video_write(d, _video_bytes("avi"), "frame%03d.avi")
    return m


def run_video(path: Path) -> object:
    """Read a video as the package does: :func:`~faceopt.data.cdnet.read_video` and
    :func:`~faceopt.system.video.read_frames` (``faceopt identify`` on a video), at most 64 frames each."""
    from faceopt.data.cdnet import read_video
    from faceopt.system.video import read_frames

    n = sum(1 for _ in read_video(path, max_frames=_MAX_ITEMS))
    _, _, frames = read_frames(path)
    for i, _ in enumerate(frames):
        if i + 1 >= _MAX_ITEMS:
            break
    return n


# ----------------------------------------------------------------------------- registry

_CORE_PRELOAD = ("numpy", "cv2", "PIL.Image", "torch")

READERS: dict[str, Reader] = {}


def register_reader(reader: Reader) -> None:
    """Add (or replace) a reader under ``reader.name``."""
    if not reader.mutations or next(iter(reader.mutations)) != "valid":
        raise ValueError(f"reader {reader.name!r}: the first mutation must be 'valid'")
    READERS[reader.name] = reader


def unregister_reader(name: str) -> None:
    """Remove a reader added by :func:`register_reader` (a no-op for an unknown name)."""
    READERS.pop(name, None)


for _reader in (
    Reader("recordio", run_recordio, _recordio_mutations(), _CORE_PRELOAD + ("faceopt.data.recordio",),
           "insightface train.rec + train.idx (RecordIOFaces)"),
    Reader("bin", run_verification_bin, _bin_mutations(), _CORE_PRELOAD + ("faceopt.data.verification_bin",),
           "insightface verification .bin (load_verification_bin)"),
    Reader("image_folder", run_image_folder, _image_folder_mutations(), _CORE_PRELOAD + ("faceopt.data.image_folder",),
           "root/<identity>/<image> (ImageFolderFaces)"),
    Reader("face_list", run_face_list, _face_list_mutations(), ("faceopt.data.megaface",),
           "MegaFace/FaceScrub image list (read_face_list)"),
    Reader("pair_list", run_pair_list, _pair_list_mutations(), _CORE_PRELOAD + ("faceopt.recognition.real_protocols",),
           "pair list .txt (read_pair_list)"),
    Reader("assets", run_asset_archive, _asset_mutations(), ("faceopt.assets.extract", "tarfile", "zipfile", "lzma", "bz2"),
           "asset archive .deb/.whl/.zip/.tgz/.tar.* (extract_member)"),
    Reader("celeba_spoof", run_celeba_spoof, _celeba_spoof_mutations(),
           _CORE_PRELOAD + ("faceopt.data.celeba_spoof",), "CelebA_Spoof tree: images, _BB.txt boxes, label JSON/txt"),
    Reader("checkpoint", run_checkpoint, _checkpoint_mutations(), _CORE_PRELOAD + ("faceopt.train",),
           "training checkpoint last.pt (faceopt.train._resume)"),
    Reader("video", run_video, _video_mutations(), _CORE_PRELOAD + ("faceopt.data.cdnet", "faceopt.system.video"),
           "video file .avi/.mp4 (read_video, faceopt identify's read_frames)"),
):
    register_reader(_reader)


# ----------------------------------------------------------------------------- generation

def _case_rng(seed: int, reader: str, index: int) -> Rng:
    return np.random.default_rng([seed, zlib.crc32(reader.encode()), index])


def _mutation_for(reader: Reader, index: int, rng: Rng) -> str:
    keys = list(reader.mutations)
    if index < len(keys):
        return keys[index]
    return keys[1 + int(rng.integers(0, len(keys) - 1))] if len(keys) > 1 else keys[0]


def make_case(reader: str, index: int, seed: int, workdir: Path, mutation: str | None = None) -> Case:
    """Write case ``index`` of ``reader`` (or, with ``mutation``, that mutation drawn with the case's generator)."""
    spec = READERS[reader]
    rng = _case_rng(seed, reader, index)
    key = _mutation_for(spec, index, rng) if mutation is None else mutation
    name = f"{reader}-{index:04d}-{key}"
    folder = Path(workdir) / reader / f"{index:04d}-{key}"
    if folder.exists() or folder.is_symlink():
        _rmtree(folder)
    folder.mkdir(parents=True)
    inputs = spec.mutations[key](rng, folder)
    return Case(reader, name, key, index, folder, inputs.path, inputs.names)


def _rmtree(folder: Path) -> None:
    def fix(func: Callable[..., Any], path: str, exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o755)
            os.chmod(path, 0o755)
        func(path)
    shutil.rmtree(folder, onerror=fix)


def _selected(readers: Sequence[str] | None) -> list[str]:
    names = list(READERS) if readers is None else list(dict.fromkeys(readers))
    unknown = [n for n in names if n not in READERS]
    if unknown:
        raise ValueError(f"unknown reader(s) {unknown}; known: {', '.join(READERS)}")
    return names


def generate_cases(seed: int, cases_per_reader: int, workdir: Path, readers: Sequence[str] | None = None) -> list[Case]:
    """Write ``cases_per_reader`` cases of each reader under ``workdir/<reader>/``; case 0 is the valid seed."""
    if cases_per_reader < 1:
        raise ValueError(f"cases_per_reader must be >= 1, got {cases_per_reader}")
    return [make_case(r, i, seed, Path(workdir)) for r in _selected(readers) for i in range(cases_per_reader)]


def case_digest(case: Case) -> str:
    """SHA-256 over the relative names, bytes and link targets of every file the case wrote."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(case.folder):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            h.update(os.fsencode(os.path.relpath(p, case.folder)) + b"\0")
            if os.path.islink(p):
                h.update(b"link:" + os.fsencode(os.readlink(p)))
            elif os.path.isfile(p):
                try:
                    with open(p, "rb") as f:
                        h.update(hashlib.sha256(f.read()).digest())
                except OSError as e:
                    h.update(f"unreadable:{e.errno}".encode())
            h.update(b"\n")
    h.update(f"{case.name}\0{os.path.relpath(case.path, case.folder)}".encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- the worker

def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover - Linux has /proc


def _status_kb(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (0 where there is none)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0  # pragma: no cover - Linux has /proc


def _reset_peak() -> None:
    """Start a new resident-memory peak (``VmHWM``); without the right to, the lifetime peak stays (an overstatement)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _on_alarm(signum: int, frame: Any) -> None:
    raise _CaseTimeout()


def _worker(conn: Any, memory_limit_mb: int, log_path: str, preload: Sequence[str]) -> None:
    """Run the cases the parent sends, one at a time, and answer each with its :class:`Outcome`."""
    import importlib
    import resource
    import warnings

    os.setpgrp()  # its own process group: what a reader starts (dpkg-deb) can be found and killed with it
    with contextlib.suppress(Exception):  # and orphans of those come back to it, to be reaped (Linux prctl)
        import ctypes

        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    warnings.simplefilter("ignore")
    for module in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(1)
        (torch.zeros(4) + 1).sum()
    if "cv2" in sys.modules:
        import cv2

        cv2.setNumThreads(1)
        cv2.imdecode(np.frombuffer(_png_bomb(4, 4), np.uint8), cv2.IMREAD_COLOR)
    baseline = _vm_bytes()
    if memory_limit_mb > 0 and baseline:
        limit = baseline + (memory_limit_mb << 20)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.signal(signal.SIGALRM, _on_alarm)
    conn.send(("ready", baseline))
    home = os.getcwd()
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        except Exception as e:  # a runner that cannot be imported here
            conn.send(("error", f"{type(e).__name__}: {e}"))
            continue
        if msg is None:
            return
        case, run, time_limit_s = msg
        _reset_peak()
        before_kb = _status_kb("VmRSS")
        outcome = _run_one(case, run, time_limit_s)
        outcome.peak_mb = round(max(0, _status_kb("VmHWM") - before_kb) / 1024, 1)
        os.chdir(home)
        strays = _kill_strays()
        if strays:
            note = f"left {len(strays)} process(es) running after it finished: {strays[0][:120]}"
            if outcome.kind != "finding":
                outcome.kind, outcome.category, outcome.error_type, outcome.message = "finding", "leak", "StrayProcess", note
            else:
                outcome.message = f"{outcome.message} [and {note}]"
        conn.send(("outcome", outcome))


def _kill_strays() -> list[str]:
    """Kill (SIGKILL) every other live process of this worker's process group; their command lines."""
    me, group = os.getpid(), os.getpgrp()
    found = []
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) != group or fields[0] in ("Z", "X"):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            os.kill(int(entry), signal.SIGKILL)
            found.append(cmd)
        except (OSError, ValueError, IndexError):
            continue
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    return found


def _run_one(case: Case, run: Callable[[Path], object], time_limit_s: float) -> Outcome:
    import gc

    exc: BaseException | None = None
    start = time.perf_counter()
    try:
        os.chdir(case.folder)  # a hostile payload's relative marker lands in the case folder
        signal.setitimer(signal.ITIMER_REAL, time_limit_s)
        try:
            run(case.path)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as e:  # noqa: BLE001 - every exception is classified
        exc = e
    seconds = time.perf_counter() - start
    try:
        kind, category = classify(exc, case.names)
        error_type = "" if exc is None else f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
        message = "" if exc is None else first_line(str(exc) or repr(exc))
        if isinstance(exc, _CaseTimeout):
            error_type, message = "Timeout", f"no result within {time_limit_s:g} s (worker alarm)"
        if (case.folder / MARKER).exists():
            kind, category = "finding", "executed"
            message = f"the input's payload created {MARKER}: code it names was executed; {message}"
    except MemoryError:
        kind, category, error_type, message = "finding", "memory", "MemoryError", "(while classifying)"
    del exc
    if category == "memory":
        gc.collect()  # a full collection costs ~0.2 s with torch loaded: only after a blow-up
    return Outcome(case.reader, case.name, case.mutation, kind, category, error_type, message, round(seconds, 4))


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Pool:
    """One worker process at a time; replaced after a kill or a crash."""

    def __init__(self, memory_limit_mb: int, log_path: Path, preload: Sequence[str], start_timeout_s: float = 300.0) -> None:
        self.memory_limit_mb = memory_limit_mb
        self.log_path = log_path
        self.preload = tuple(preload)
        self.start_timeout_s = start_timeout_s
        self.proc: Any = None
        self.conn: Any = None
        self.starts = 0

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, self.memory_limit_mb, str(self.log_path), self.preload),
                           daemon=True, name="faceopt-fuzz-worker")
        threads = "1"
        with _environ(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
                      MALLOC_ARENA_MAX="2", CUDA_VISIBLE_DEVICES="", PYTHONFAULTHANDLER="1"):
            proc.start()
        child.close()
        self.starts += 1
        if not parent.poll(self.start_timeout_s):
            proc.kill()
            raise RuntimeError(f"fuzz worker did not start within {self.start_timeout_s:g} s; see {self.log_path}")
        try:
            parent.recv()
        except EOFError:
            proc.join()
            raise RuntimeError(f"fuzz worker died while starting (exit {proc.exitcode}); see {self.log_path}") from None
        self.proc, self.conn = proc, parent

    def _kill(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.is_alive():
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the worker leads its group: its children go too
            self.proc.kill()
        self.proc.join(10)
        code = self.proc.exitcode
        self.conn.close()
        self.proc = self.conn = None
        return code

    def run(self, case: Case, run: Callable[[Path], object], time_limit_s: float) -> Outcome:
        if self.proc is None or not self.proc.is_alive():
            self._kill()
            self._start()
        start = time.perf_counter()
        try:
            self.conn.send((case, run, time_limit_s))
        except (BrokenPipeError, OSError):
            code = self._kill()
            return Outcome(case.reader, case.name, case.mutation, "finding", "crash", "WorkerDied",
                           f"the worker was gone before the case started (exit {code})")
        grace = max(2.0, 0.5 * time_limit_s)
        if not self.conn.poll(time_limit_s + grace):
            self._kill()
            return Outcome(case.reader, case.name, case.mutation, "finding", "timeout", "Timeout",
                           f"no result within {time_limit_s + grace:g} s: the worker was killed (stuck outside Python?)",
                           round(time.perf_counter() - start, 4))
        try:
            tag, payload = self.conn.recv()
        except (EOFError, OSError):
            code = self._kill()
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            return Outcome(case.reader, case.name, case.mutation, "finding", "crash", "WorkerDied",
                           f"the worker process died running this case ({how})", round(time.perf_counter() - start, 4))
        if tag == "error":
            raise RuntimeError(f"fuzz worker cannot run reader {case.reader!r}: {payload}")
        outcome: Outcome = payload
        return outcome

    def close(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.proc.join(5)
        self._kill()


def run_cases(cases: Sequence[Case], workdir: Path, *, time_limit_s: float = 5.0, memory_limit_mb: int = 1024,
              progress: bool = False) -> list[Outcome]:
    """Run ``cases`` in a worker process (see the module docstring) and return their outcomes in order."""
    preload = tuple(dict.fromkeys(m for c in cases for m in READERS[c.reader].preload))
    pool = _Pool(memory_limit_mb, Path(workdir) / "worker.log", preload)
    outcomes: list[Outcome] = []
    try:
        for k, case in enumerate(cases):
            outcome = pool.run(case, READERS[case.reader].run, time_limit_s)
            if outcome.category != "executed" and (case.folder / MARKER).exists():
                outcome.kind, outcome.category = "finding", "executed"
            outcomes.append(outcome)
            if progress and (k + 1 == len(cases) or cases[k + 1].reader != case.reader):
                done = [o for o in outcomes if o.reader == case.reader]
                print(f"fuzz: {case.reader}: {len(done)} cases, {sum(o.kind == 'finding' for o in done)} findings",
                      file=sys.stderr, flush=True)
    finally:
        pool.close()
    return outcomes


# ----------------------------------------------------------------------------- summary

def _normalise(message: str, folder: str) -> str:
    """A message with what varies between cases of one defect (case folder, numbers, byte strings) masked."""
    text = message.replace(folder, "<case>")
    text = re.sub(r"b'(?:[^'\\]|\\.)*'|b\"(?:[^\"\\]|\\.)*\"", "b'_'", text)
    text = re.sub(r"0x[0-9a-fA-F]+", "0x_", text)
    text = re.sub(r"\d+", "N", text)
    return text[:160]


@dataclass
class _Group:
    reader: str
    category: str
    error_type: str
    message: str
    cases: list[str] = field(default_factory=list)
    mutations: list[str] = field(default_factory=list)


def summarize(outcomes: Sequence[Outcome], *, seed: int, cases_per_reader: int, time_limit_s: float, memory_limit_mb: int,
              wall_s: float, workdir: Path | None = None) -> dict[str, Any]:
    """The JSON-able summary of a campaign: per-reader counts, every finding and the distinct ones."""
    readers: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        r = readers.setdefault(o.reader, {"cases": 0, "ok": 0, "clean": 0, "findings": 0, "slow": 0, "memory": 0, "crash": 0,
                                          "unnamed": 0, "executed": 0, "leak": 0, "seed_ok": None, "seconds": 0.0,
                                          "max_seconds": 0.0, "peak_mb": 0.0})
        r["cases"] += 1
        r["ok" if o.kind == "ok" else "clean" if o.kind == "clean" else "findings"] += 1
        if o.category == "timeout":
            r["slow"] += 1
        elif o.category in ("memory", "crash", "unnamed", "executed", "leak"):
            r[o.category] += 1
        r["seconds"] = round(r["seconds"] + o.seconds, 3)
        r["max_seconds"] = max(r["max_seconds"], o.seconds)
        r["peak_mb"] = max(r["peak_mb"], o.peak_mb)
        if o.case.startswith(f"{o.reader}-0000-"):
            r["seed_ok"] = o.kind == "ok"
    findings = [asdict(o) for o in outcomes if o.kind == "finding"]
    groups: dict[tuple[str, str, str, str], _Group] = {}
    for o in outcomes:
        if o.kind != "finding":
            continue
        folder = str(Path(workdir) / o.reader / o.case[len(o.reader) + 1:]) if workdir is not None else "\0"
        key = (o.reader, o.category, o.error_type, _normalise(o.message, folder))
        g = groups.setdefault(key, _Group(o.reader, o.category, o.error_type, o.message))
        g.cases.append(o.case)
        if o.mutation not in g.mutations:
            g.mutations.append(o.mutation)
    distinct = [{"reader": g.reader, "category": g.category, "error_type": g.error_type, "message": g.message,
                 "count": len(g.cases), "mutations": g.mutations, "example_cases": g.cases[:5]} for g in groups.values()]
    return {
        "seed": seed,
        "cases_per_reader": cases_per_reader,
        "time_limit_s": time_limit_s,
        "memory_limit_mb": memory_limit_mb,
        "readers": readers,
        "total_cases": len(outcomes),
        "total_findings": len(findings),
        "peak_mb": max((r["peak_mb"] for r in readers.values()), default=0.0),
        "findings": findings,
        "distinct_findings": distinct,
        "wall_s": round(wall_s, 2),
    }


def run_campaign(seed: int, cases_per_reader: int, workdir: Path, *, time_limit_s: float = 5.0, memory_limit_mb: int = 1024,
                 readers: Sequence[str] | None = None, progress: bool = False) -> dict[str, Any]:
    """Generate ``cases_per_reader`` cases per reader under ``workdir``, run them, and return :func:`summarize`'s dict."""
    if time_limit_s <= 0 or memory_limit_mb <= 0:
        raise ValueError(f"time_limit_s and memory_limit_mb must be positive, got {time_limit_s} and {memory_limit_mb}")
    start = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cases = generate_cases(seed, cases_per_reader, workdir, readers)
    if progress:
        print(f"fuzz: {len(cases)} cases written under {workdir}", file=sys.stderr, flush=True)
    outcomes = run_cases(cases, workdir, time_limit_s=time_limit_s, memory_limit_mb=memory_limit_mb, progress=progress)
    return summarize(outcomes, seed=seed, cases_per_reader=cases_per_reader, time_limit_s=time_limit_s,
                     memory_limit_mb=memory_limit_mb, wall_s=time.perf_counter() - start, workdir=workdir)


def format_table(summary: dict[str, Any]) -> str:
    """A short text table of a summary: one row per reader, then the distinct findings."""
    cols = ("cases", "ok", "clean", "findings", "slow", "memory", "crash")
    lines = [f"{'reader':<14}" + "".join(f"{c:>9}" for c in cols) + f"{'seed ok':>9}{'max s':>8}{'peak MB':>9}"]
    for name, r in summary["readers"].items():
        lines.append(f"{name:<14}" + "".join(f"{r[c]:>9}" for c in cols) + f"{str(r['seed_ok']):>9}{r['max_seconds']:>8.2f}"
                     f"{r.get('peak_mb', 0.0):>9.1f}")
    lines.append(f"seed {summary['seed']}: {summary['total_cases']} cases, {summary['total_findings']} findings "
                 f"({len(summary['distinct_findings'])} distinct), {summary['wall_s']:.1f} s")
    for g in summary["distinct_findings"]:
        lines.append(f"  {g['reader']:<12} {g['category']:<9} {g['error_type']}: {g['message'][:110]} "
                     f"(x{g['count']}, e.g. {g['example_cases'][0]})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="faceopt fuzz",
                                description="Fuzz every file reader of faceopt with malformed inputs (reproducible per seed).")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    p.add_argument("--cases", type=int, default=50, help="cases per reader (default 50)")
    p.add_argument("--out", type=Path, default=None, help="write the JSON summary here (atomically)")
    p.add_argument("--readers", nargs="+", default=None, metavar="READER",
                   help=f"readers to fuzz (default all): {', '.join(READERS)}")
    p.add_argument("--workdir", type=Path, default=None,
                   help="folder for the generated cases (default: a temporary one, removed afterwards)")
    p.add_argument("--time-limit", type=float, default=5.0, help="seconds per case (default 5)")
    p.add_argument("--memory-limit", type=int, default=1024,
                   help="MiB a case may add to the worker's address space (default 1024)")
    p.add_argument("--progress", action="store_true", help="one line per reader on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faceopt.fuzz``: exit 0 without findings, 1 with findings, 2 on bad arguments."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code in (0, None) else 2
    problems = []
    if args.cases < 1:
        problems.append(f"--cases must be >= 1, got {args.cases}")
    if args.time_limit <= 0:
        problems.append(f"--time-limit must be > 0, got {args.time_limit}")
    if args.memory_limit <= 0:
        problems.append(f"--memory-limit must be > 0, got {args.memory_limit}")
    unknown = [r for r in args.readers or () if r not in READERS]
    if unknown:
        problems.append(f"unknown reader(s) {', '.join(unknown)}; known: {', '.join(READERS)}")
    if problems:
        for msg in problems:
            print(f"{parser.prog}: error: {msg}", file=sys.stderr)
        return 2
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="faceopt-fuzz-")) if temporary else args.workdir
    try:
        summary = run_campaign(args.seed, args.cases, workdir, time_limit_s=args.time_limit,
                               memory_limit_mb=args.memory_limit, readers=args.readers, progress=args.progress)
    finally:
        if temporary:
            _rmtree(workdir)
    if args.out is not None:
        from faceopt.io import atomic_write_text
        from faceopt.provenance import git_revision, machine_description

        summary["made_by"] = {"git_rev": git_revision(Path(__file__).resolve().parents[2]),
                              "machine": machine_description(with_torch=True),
                              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(args.out, json.dumps(summary, indent=2) + "\n")
    print(format_table(summary))
    return 1 if summary["total_findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
