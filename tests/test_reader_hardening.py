"""Hostile and corrupt RecordIO and verification .bin files fail fast with errors that name the file."""
from __future__ import annotations

import pickle
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest

from faceopt.data import recordio, verification_bin
from faceopt.data.images import encoded_image_size
from faceopt.data.recordio import IRHeader, RecordIOReader, write_recordio
from faceopt.data.verification_bin import load_verification_bin, write_verification_bin


def _faces(n: int, size: int = 112) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def _png_bomb(w: int, h: int) -> bytes:
    """A valid grey PNG of w x h zeros, compressed row by row (a few hundred KB)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    z = zlib.compressobj(9)
    row = b"\0" * (w + 1)
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) \
        + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_claiming(w: int, h: int) -> bytes:
    """A real JPEG whose frame header (SOF0) is patched to claim w x h."""
    data = bytearray(cv2.imencode(".jpg", _faces(1, 16)[0])[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        fn()
    except ValueError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _never_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("cv2.imdecode called on an image that should be refused from its header")
    monkeypatch.setattr(cv2, "imdecode", refuse)


# ---------------------------------------------------------------- RecordIO

def _rec(tmp_path: Path, items: list) -> tuple[Path, Path]:
    rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
    write_recordio(rec, idx, items)
    return rec, idx


def _header(start: float, end: float) -> tuple[IRHeader, bytes]:
    return IRHeader(2, np.array([start, end], np.float32), 0, 0), b""


@pytest.mark.parametrize("start", [3e7, 3e38])
def test_recordio_header_range_beyond_the_file_fails_before_allocating(tmp_path: Path, start: float) -> None:
    rec, idx = _rec(tmp_path, [_header(start, start)])
    assert rec.stat().st_size == 40  # the fuzzer's 40-byte file
    with pytest.raises(ValueError, match=r"train\.rec: header record 0 says images are keys 1\.\..*train\.idx lists only 1"):
        RecordIOReader(rec, idx)
    assert _peak_bytes(lambda: RecordIOReader(rec, idx)) < 1 << 20


def test_recordio_header_range_checked_against_file_size(tmp_path: Path) -> None:
    rec, idx = _rec(tmp_path, [_header(1500, 1501)])
    idx.write_text("".join(f"{k}\t0\n" for k in range(2000)))  # many keys, one 40-byte record
    with pytest.raises(ValueError, match=r"train\.rec: header record 0 .*40 bytes hold at most 1 "):
        RecordIOReader(rec, idx)


@pytest.mark.parametrize("labels, match", [
    ([3.0], r"has 1 label"),                       # was an IndexError
    ([2.5, 3.0], r"not whole key numbers"),
    ([3.0, 9.0], r"no more identities than images"),
    ([3.0, 2.0], r"1 <= start <= end"),
    ([float("nan"), 3.0], r"NaN or infinity"),     # was a raw "cannot convert float NaN"
    ([float("inf"), 3.0], r"NaN or infinity"),     # was an OverflowError
])
def test_recordio_bad_header_labels(tmp_path: Path, labels: list[float], match: str) -> None:
    png = _png(_faces(1)[0])
    rec, idx = _rec(tmp_path, [(IRHeader(len(labels), np.array(labels, np.float32), 0, 0), b""),
                               (0.0, png), (0.0, png), ([1.0, 3.0], b"")])
    with pytest.raises(ValueError, match=rf"train\.rec.*{match}"):
        RecordIOReader(rec, idx)


@pytest.mark.parametrize("label", [float("nan"), float("inf"), -float("inf"), 2.5])
def test_recordio_non_finite_or_fractional_image_label(tmp_path: Path, label: float) -> None:
    png = _png(_faces(1)[0])
    rec, idx = _rec(tmp_path, [(1.0, png), (label, png)])
    reader = RecordIOReader(rec, idx)
    assert reader.label(0) == 1
    with pytest.raises(ValueError, match=r"train\.rec.*key 1.*(not a finite number|not a whole identity)"):
        reader.label(1)


def test_recordio_empty_and_undecodable_images(tmp_path: Path) -> None:
    rec, idx = _rec(tmp_path, [(0.0, b""), (1.0, b"\x89PNG\r\n\x1a\n"), (2.0, b"junk" * 10)])
    reader = RecordIOReader(rec, idx)
    with pytest.raises(ValueError, match=r"train\.rec: record key 0 at offset 0 is not a decodable encoded image"):
        reader.image(0)  # was cv2.error !buf.empty()
    for key in (1, 2):
        with pytest.raises(ValueError, match=rf"train\.rec: record key {key} .*not a decodable encoded image"):
            reader.image(key)


def test_recordio_non_ascii_idx(tmp_path: Path) -> None:
    rec, idx = _rec(tmp_path, [(0.0, b"x"), (1.0, b"y")])
    idx.write_bytes(idx.read_bytes() + b"2\t\xff\xfe\n")
    with pytest.raises(ValueError, match=r"train\.idx:3: non-ASCII bytes"):  # was a UnicodeDecodeError
        RecordIOReader(rec, idx)


def test_recordio_record_length_past_the_end_is_not_read(tmp_path: Path) -> None:
    rec, idx = _rec(tmp_path, [(0.0, b"x" * 8)])
    raw = bytearray(rec.read_bytes())
    raw[4:8] = struct.pack("<I", (1 << 29) - 1)  # claims a 512 MB payload in a 40-byte file
    rec.write_bytes(bytes(raw))
    reader = RecordIOReader.__new__(RecordIOReader)  # skip __init__'s read of record 0 to test read_raw alone
    reader.__dict__.update(path_rec=rec, path_idx=idx, _size=len(raw), offsets={0: 0}, _fh=None, _pid=-1)
    with pytest.raises(ValueError, match=r"train\.rec: truncated record at offset 0 .*needs 536870911 bytes, 32 remain"):
        reader.read_raw(0)
    assert _peak_bytes(lambda: RecordIOReader(rec, idx)) < 1 << 20


def test_recordio_bad_property_file(tmp_path: Path) -> None:
    rec, idx = _rec(tmp_path, [(0.0, b"x")])
    (tmp_path / "property").write_bytes(b"\xffbanana,112,112")
    with pytest.raises(ValueError, match=r"property: expected 'num_classes,height,width'"):
        _ = RecordIOReader(rec, idx).num_classes


def test_recordio_decompression_bombs_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _png_bomb(5000, 5000)
    assert len(bomb) < 200_000 and encoded_image_size(bomb) == (5000, 5000)
    rec, idx = _rec(tmp_path, [(0.0, bomb), (1.0, _jpeg_claiming(12000, 12000))])
    reader = RecordIOReader(rec, idx)
    _never_decode(monkeypatch)
    with pytest.raises(ValueError, match=r"train\.rec: record key 0 at offset 0 declares a 5000x5000 image .*max_image_pixels"):
        reader.image(0)
    with pytest.raises(ValueError, match=r"train\.rec: record key 1 .* declares a 12000x12000 image"):
        reader.image(1)


def test_recordio_pixel_cap_is_configurable_and_valid_images_still_load(tmp_path: Path) -> None:
    img = _faces(1)[0]
    jpg = cv2.imencode(".jpg", img)[1].tobytes()
    bmp = cv2.imencode(".bmp", img)[1].tobytes()  # neither PNG nor JPEG: sized by Pillow
    rec, idx = _rec(tmp_path, [(0.0, _png(img)), (1.0, jpg), (2.0, bmp)])
    reader = RecordIOReader(rec, idx, max_image_pixels=112 * 112)
    np.testing.assert_array_equal(reader.image(0), img)
    np.testing.assert_array_equal(reader.image(1), cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR))
    np.testing.assert_array_equal(reader.image(2), img)
    tight = recordio.RecordIOFaces(rec, idx, max_image_pixels=112 * 112 - 1)
    with pytest.raises(ValueError, match=r"declares a 112x112 image \(12544 pixels\).*cap is 12543"):
        tight[0]


# ---------------------------------------------------------------- verification .bin

_BAD_PICKLES = {
    "empty": b"",                                                     # EOFError
    "truncated": None,                                                # "pickle data was truncated"
    "dtype without name": b"cnumpy\ndtype\n)R.",                     # TypeError
    "build on bytes": b"\x80\x04C\x01a}b.",                           # AttributeError
    "huge memo index": b"Np99999999999999999999999\n.",               # OverflowError
    "huge bytes8": b"\x80\x04\x8e" + (1 << 60).to_bytes(8, "little") + b"ab.",  # MemoryError
    "setitems on list": b"\x80\x04](K\x01K\x02u.",                    # IndexError
    "garbage": b"\xff\xfe not a pickle",
    "deep tuples as set items": b"\x80\x04\x8f(N" + b"\x85" * 200_000 + b"\x90.",  # crashed in C (tuple hash)
    "deep tuples as dict key": b"\x80\x04}N" + b"\x85" * 200_000 + b"Ns.",
}


@pytest.mark.parametrize("name", sorted(_BAD_PICKLES))
def test_verification_bin_bad_pickles_raise_value_error_naming_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / "lfw.bin"
    data = _BAD_PICKLES[name]
    if data is None:
        write_verification_bin(path, _faces(2), [True])
        data = path.read_bytes()[:-300]
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"lfw\.bin: ") as err:
        load_verification_bin(path)
    assert isinstance(err.value, pickle.UnpicklingError)  # and still what callers caught before


def test_verification_bin_recursion_error_is_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cfp_fp.bin"
    write_verification_bin(path, _faces(2), [True])

    def recurse(self: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")
    monkeypatch.setattr(verification_bin.SafeUnpickler, "load", recurse)
    with pytest.raises(ValueError, match=r"cfp_fp\.bin: cannot unpickle it \(RecursionError"):
        load_verification_bin(path)


def test_verification_bin_repeated_references_fail_before_allocating(tmp_path: Path) -> None:
    png = _png(_faces(1)[0])
    path = tmp_path / "lfw.bin"
    path.write_bytes(pickle.dumps(([png] * 40_000, [True] * 20_000), protocol=4))  # one PNG, 40,000 references
    assert path.stat().st_size < 150_000
    with pytest.raises(ValueError, match=r"lfw\.bin: image 1 is the same pickled object as image 0"):
        load_verification_bin(path)
    assert _peak_bytes(lambda: load_verification_bin(path)) < 64 << 20  # the old reader allocated 1.4 GiB


def test_verification_bin_total_pixel_cap(tmp_path: Path) -> None:
    path = tmp_path / "lfw.bin"
    images = _faces(4)
    write_verification_bin(path, images, [True, False])
    with pytest.raises(ValueError, match=r"lfw\.bin: 4 images of 112x112 .*max_total_pixels"):
        load_verification_bin(path, max_total_pixels=4 * 112 * 112 - 1)
    got, _ = load_verification_bin(path, max_total_pixels=4 * 112 * 112)
    np.testing.assert_array_equal(got, np.stack(images))


def test_verification_bin_decompression_bombs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "agedb_30.bin"
    write_verification_bin(path, [_png_bomb(5000, 5000), _png(_faces(1)[0])], [True])
    _never_decode(monkeypatch)
    with pytest.raises(ValueError, match=r"agedb_30\.bin: image 0 \(pair 0\) declares a 5000x5000 image"):
        load_verification_bin(path)
    write_verification_bin(path, [_jpeg_claiming(12000, 12000), b"\xff\xd8\xff"], [True])
    with pytest.raises(ValueError, match=r"agedb_30\.bin: image 0 \(pair 0\) declares a 12000x12000 image"):
        load_verification_bin(path)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_verification_bin_valid_files_load_as_before(tmp_path: Path, protocol: int) -> None:
    images = _faces(4)
    path = tmp_path / "lfw.bin"
    with open(path, "wb") as f:
        pickle.dump(([_png(i) for i in images], [np.bool_(True), False]), f, protocol=protocol)
    got, same = load_verification_bin(path)
    np.testing.assert_array_equal(got, np.stack(images))
    assert same.tolist() == [True, False]
    path.write_bytes(pickle.dumps(((), {}), protocol=protocol))  # dicts still parse, and fail on structure
    with pytest.raises(ValueError, match=r"lfw\.bin: bins and issame_list must be lists"):
        load_verification_bin(path)
