"""The seed's tier rule: load the strongest model the device can run within its latency budget."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["choose_tier"]


def choose_tier(rows: Sequence[Mapping[str, Any]], budget_ms: float, *, accuracy: str = "accuracy",
                latency: str = "ms") -> Mapping[str, Any] | None:
    """The most accurate row whose latency fits ``budget_ms`` (ties: the faster one); None if none fits.

    ``rows`` are candidates measured on the device that will run them (``latency`` in ms) with
    their accuracy (``accuracy``), e.g. :func:`faceopt.system.tiers` candidates timed in onnxruntime.
    """
    if not budget_ms > 0:
        raise ValueError(f"budget_ms must be > 0, got {budget_ms}")
    fitting = [r for r in rows if float(r[latency]) <= budget_ms]
    if not fitting:
        return None
    return max(fitting, key=lambda r: (float(r[accuracy]), -float(r[latency])))
