"""Safe extraction of one member from a zip/wheel, tar, or Debian (ar + data.tar.*, zstd included) archive.

Absolute paths, ``..``, links, devices and directories are refused; the member is
streamed into an open file and its SHA-256 returned.  Knows nothing of the catalogue.
"""
from __future__ import annotations

import hashlib
import io
import lzma
import os
import re
import shutil
import signal
import subprocess
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from faceopt.assets.errors import AssetFetchError

_CHUNK = 1 << 20
#: Errors the standard library's readers raise on a corrupt or unsupported archive besides their own
#: (a bad deflate stream, an unsupported method or encryption, a bad name encoding, a negative seek).
_CORRUPT = (EOFError, NotImplementedError, RuntimeError, ValueError, OSError, zlib.error, lzma.LZMAError)
#: Longest wait for ``dpkg-deb --fsys-tarfile`` (seconds); a crafted package can make it spin forever.
DPKG_TIMEOUT_S = 300.0


def check_member_path(member: str) -> str:
    """Reject absolute paths, ``..``, backslashes and empty segments; return the path."""
    if not member or member.startswith("/") or "\\" in member or re.match(r"^[A-Za-z]:", member):
        raise AssetFetchError(f"unsafe member path {member!r}: must be a relative POSIX path")
    parts = member.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise AssetFetchError(f"unsafe member path {member!r}: no '..', '.' or empty segments allowed")
    return member


def _norm_entry(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


class _OutputError(Exception):
    """An OSError writing the extracted member (a full disk): the system's error, not the archive's."""


def _copy_hashing(src: IO[bytes], dst: BinaryIO) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        h.update(chunk)
        try:
            dst.write(chunk)
        except OSError as exc:
            raise _OutputError() from exc
    return h.hexdigest()


def _extract_zip(archive: Path, member: str, out: BinaryIO) -> str:
    try:
        return _extract_zip_member(archive, member, out)
    except AssetFetchError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, *_CORRUPT) as exc:
        raise AssetFetchError(f"{archive.name}: not a readable zip archive ({type(exc).__name__}: {exc})") from exc


def _extract_zip_member(archive: Path, member: str, out: BinaryIO) -> str:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if _norm_entry(info.filename) != member:
                continue
            mode = (info.external_attr >> 16) & 0o170000
            if info.is_dir() or mode == 0o120000:
                raise AssetFetchError(f"{archive.name}: member {member!r} is not a regular file (directory or symlink)")
            with zf.open(info) as src:
                return _copy_hashing(src, out)
    raise AssetFetchError(f"{archive.name}: member {member!r} not found")


def _extract_tar_stream(tf: tarfile.TarFile, member: str, out: BinaryIO, label: str) -> str:
    for info in tf:
        if _norm_entry(info.name) != member:
            continue
        if not info.isreg():
            raise AssetFetchError(f"{label}: member {member!r} is not a regular file (link, device or directory)")
        src = tf.extractfile(info)
        if src is None:  # pragma: no cover - isreg() guarantees a file object
            raise AssetFetchError(f"{label}: member {member!r} cannot be read")
        return _copy_hashing(src, out)
    raise AssetFetchError(f"{label}: member {member!r} not found")


def _extract_tar(archive: Path, member: str, out: BinaryIO) -> str:
    try:
        with tarfile.open(archive, mode="r|*") as tf:
            return _extract_tar_stream(tf, member, out, archive.name)
    except AssetFetchError:
        raise
    except (tarfile.TarError, *_CORRUPT) as exc:
        raise AssetFetchError(f"{archive.name}: not a readable tar archive ({type(exc).__name__}: {exc})") from exc


class _Slice(io.RawIOBase):
    """A read-only window ``[start, start+size)`` of an open binary file."""

    def __init__(self, fh: BinaryIO, start: int, size: int) -> None:
        self._fh, self._start, self._size, self._pos = fh, start, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self._size - self._pos)
        if n <= 0:
            return 0
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(n)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _ar_members(fh: BinaryIO, label: str = "archive") -> Iterator[tuple[str, int, int]]:
    """Yield ``(name, offset, size)`` of each member of an ``ar`` archive (GNU and BSD names); errors name ``label``."""
    try:
        yield from _ar_walk(fh)
    except AssetFetchError as exc:
        raise AssetFetchError(f"{label}: {exc}") from None


def _ar_walk(fh: BinaryIO) -> Iterator[tuple[str, int, int]]:
    if fh.read(8) != b"!<arch>\n":
        raise AssetFetchError("not an ar archive (bad magic)")
    end = fh.seek(0, io.SEEK_END)
    pos = 8
    while True:
        fh.seek(pos)
        header = fh.read(60)
        if not header:
            return
        if len(header) < 60 or header[58:60] != b"`\n":
            raise AssetFetchError("truncated or malformed ar header")
        name = header[0:16].decode("ascii", "replace").rstrip()
        size = _ar_number(header[48:58], "member size")
        data_at = pos + 60
        if name.startswith("#1/"):  # BSD: the name follows the header
            name_len = _ar_number(name[3:].encode("ascii", "replace"), "BSD name length")
            if name_len > size:
                raise AssetFetchError(f"malformed ar member: BSD name of {name_len} bytes in a member of {size}")
            name = fh.read(name_len).decode("utf-8", "replace").rstrip("\0")
            data_at += name_len
            size -= name_len
        elif name.endswith("/") and name not in ("/", "//"):
            name = name[:-1]  # GNU terminator
        if data_at + size > end:
            raise AssetFetchError(f"truncated ar archive: member {name!r} of {size} bytes runs past the end")
        yield name, data_at, size
        pos = data_at + size + ((data_at + size) % 2)  # members are 2-byte aligned (always moves forward)


def _ar_number(field: bytes, what: str) -> int:
    """A non-negative decimal field of an ar header; AssetFetchError otherwise (negative sizes would loop)."""
    text = field.decode("ascii", "replace").strip()
    if not text.isdigit():
        raise AssetFetchError(f"malformed ar {what}: {text!r}")
    return int(text)


def _extract_deb(archive: Path, member: str, out: BinaryIO) -> str:
    with open(archive, "rb") as fh:
        for name, offset, size in _ar_members(fh, archive.name):
            if not name.startswith("data.tar"):
                continue
            comp = name[len("data.tar"):]
            label = f"{archive.name}:{name}"
            if size == 0:
                raise AssetFetchError(f"{label}: the member is empty; the package is truncated or corrupt")
            window = io.BufferedReader(_Slice(fh, offset, size), buffer_size=_CHUNK)
            if comp in ("", ".gz", ".xz", ".bz2", ".lzma"):
                try:
                    with tarfile.open(fileobj=window, mode="r|*") as tf:
                        return _extract_tar_stream(tf, member, out, label)
                except AssetFetchError:
                    raise
                except (tarfile.TarError, *_CORRUPT) as exc:
                    raise AssetFetchError(f"{label}: unreadable ({type(exc).__name__}: {exc})") from exc
            if comp == ".zst":
                return _extract_deb_zst(archive, window, member, out, label)
            raise AssetFetchError(f"{label}: unsupported compression {comp!r}")
    raise AssetFetchError(f"{archive.name}: no data.tar.* member (not a Debian binary package?)")


def _extract_deb_zst(archive: Path, window: BinaryIO, member: str, out: BinaryIO, label: str) -> str:
    """data.tar.zst: the ``zstandard`` module if installed, else ``dpkg-deb --fsys-tarfile``."""
    try:
        import zstandard
    except ImportError:
        zstandard = None
    if zstandard is not None:
        reader = zstandard.ZstdDecompressor().stream_reader(window)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tf:
                return _extract_tar_stream(tf, member, out, label)
        except AssetFetchError:
            raise
        except (tarfile.TarError, zstandard.ZstdError, *_CORRUPT) as exc:
            raise AssetFetchError(f"{label}: unreadable ({type(exc).__name__}: {exc})") from exc
    if shutil.which("dpkg-deb") is None:
        raise AssetFetchError(f"{label}: zstd-compressed; install the 'zstandard' module or dpkg-deb")
    # its own process group, so that the helpers dpkg-deb forks die with it; a watchdog ends a run that hangs
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    timed_out = threading.Event()

    def kill_group() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def watchdog() -> None:
        timed_out.set()
        kill_group()

    timer = threading.Timer(DPKG_TIMEOUT_S, watchdog)
    timer.start()
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            return _extract_tar_stream(tf, member, out, label)
    except AssetFetchError:
        if timed_out.is_set():
            raise AssetFetchError(f"{label}: dpkg-deb gave no complete archive within {DPKG_TIMEOUT_S:g} s") from None
        raise
    except (tarfile.TarError, *_CORRUPT) as exc:
        why = f"dpkg-deb gave no complete archive within {DPKG_TIMEOUT_S:g} s" if timed_out.is_set() else \
            f"{type(exc).__name__}: {exc}"
        raise AssetFetchError(f"{label}: unreadable ({why})") from exc
    finally:
        timer.cancel()
        proc.stdout.close()
        kill_group()
        proc.wait()


def extract_member(archive: Path, member: str, out: BinaryIO) -> str:
    """Stream ``member`` of ``archive`` into ``out``; return the SHA-256 of what was written.

    A corrupt, truncated or unsupported archive raises :class:`AssetFetchError` naming it; an OSError
    writing ``out`` (a full disk) is raised as itself."""
    try:
        return _extract_member(archive, member, out)
    except _OutputError as exc:
        raise exc.__cause__ from None  # type: ignore[misc]


def _extract_member(archive: Path, member: str, out: BinaryIO) -> str:
    check_member_path(member)
    name = archive.name
    if name.endswith((".whl", ".zip")):
        return _extract_zip(archive, member, out)
    if name.endswith(".deb"):
        return _extract_deb(archive, member, out)
    if name.endswith((".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar")):
        return _extract_tar(archive, member, out)
    raise AssetFetchError(f"{name}: unsupported archive type")
