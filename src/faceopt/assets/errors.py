"""Errors raised by :mod:`faceopt.assets` (catalogue lookup, cache, extraction and fetching)."""
from __future__ import annotations

from collections.abc import Iterable


class AssetError(Exception):
    """Base class of every error raised by :mod:`faceopt.assets`."""


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
