"""Shared test helpers (importable because pytest puts tests/ on sys.path)."""
from __future__ import annotations

from pathlib import Path

import pytest


def require_asset(name: str) -> Path:
    """The cached registry asset, or skip the test with the command that fetches it."""
    from faceopt.assets import AssetError, asset_path

    try:
        return asset_path(name)
    except AssetError as exc:
        pytest.skip(f"asset {name!r} not available ({exc}); run: faceopt assets fetch {name}")
