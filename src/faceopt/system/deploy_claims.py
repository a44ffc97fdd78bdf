"""The claims of page 05 (thesis Chapter 4's system and the mobile recipe), recorded from what the page measured.

* **T9-resolution**: the time of detect + align + embed at 3000x4500 against 480x720 must stay within
  1.5x (the claim's check); the part's effect is ``log 1.5 - log(ratio)`` with the standard error of the
  two medians, so it holds when the ratio is below 1.5 beyond the timing noise. The thesis's own size
  (the same 34 ms at every resolution) is met when the ratio is within 1.2x.
* **MFN-blog**: the mobile recipe (SE, expansion 4, s=32 with the margin warm-up) against the paper's
  MobileFaceNet trained with plain ArcFace, over seeds; the INT8 file against FP32 (the seed says a
  quarter; met within 20%, the tolerance the book uses for sizes of speed-ups); the INT8 accuracy cost
  below one point (the margin the thesis's own INT8 claim, T11, uses); a 96-pixel input faster than 112.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from faceopt.results import Part, decide, record
from faceopt.stats import compare
from faceopt.system.cost import LatencyStats
from faceopt.system.deployment import Deployment
from faceopt.system.tier_tables import seed_values

__all__ = ["T9_LIMIT", "T9_SIZE", "INT8_SIZE", "SIZE_TOLERANCE", "INT8_MARGIN", "t9_part", "record_claims"]

T9_LIMIT = 1.5          # the claim's check: 3000x4500 within 1.5x of 480x720
T9_SIZE = 1.2           # the thesis's size: the same time at every resolution, within 20%
INT8_SIZE = 0.25        # the seed: the INT8 model is a quarter of FP32
SIZE_TOLERANCE = 0.20
INT8_MARGIN = 1.0       # points of accuracy INT8 may cost (T11's check)


def _stats(row: Mapping[str, Any]) -> LatencyStats:
    return LatencyStats(float(row["total_ms"]), float(row["total_p25_ms"]), float(row["total_p75_ms"]),
                        int(row["repeats"]))


def t9_part(rows: Sequence[Mapping[str, Any]]) -> tuple[Part, float]:
    """The T9 part from :func:`faceopt.system.benchmark.resolution_times` rows (smallest frame first) and
    the time ratio of the largest frame to the smallest."""
    small, large = _stats(rows[0]), _stats(rows[-1])
    ratio = large.median_ms / small.median_ms
    stderr = math.hypot(small.log_stderr, large.log_stderr)
    return Part(f"{rows[-1]['frame']} within {T9_LIMIT:g}x of {rows[0]['frame']}", math.log(T9_LIMIT / ratio),
                stderr, ratio <= T9_SIZE), ratio


def _mfn_parts(records: Sequence[Mapping[str, Any]], deployments: Mapping[str, Deployment]) -> tuple[list[Part], dict]:
    recipe = seed_values(records, "recipe-112", "AgeDB-like %")
    paper = seed_values(records, "paper-112", "AgeDB-like %")
    drops = np.subtract(seed_values(records, "recipe-112", "ONNX FP32 AgeDB-like %"),
                        seed_values(records, "recipe-112", "INT8 AgeDB-like %"))
    size_ratio = deployments["recipe-112"].bytes["int8"] / deployments["recipe-112"].bytes["fp32"]
    t112 = deployments["recipe-112"].latency["int8"][1]
    t96 = deployments["recipe-96"].latency["int8"][1]
    drop_stderr = float(np.std(drops, ddof=1) / math.sqrt(len(drops))) if len(drops) > 1 else None
    parts = [
        Part.compared("recipe beats the paper MobileFaceNet (AgeDB-like, 112 px)", compare(recipe, paper)),
        Part("INT8 file smaller than FP32 (recipe, 112 px)", math.log(1 / size_ratio), 0.0,
             abs(size_ratio / INT8_SIZE - 1) <= SIZE_TOLERANCE),
        Part(f"INT8 costs less than {INT8_MARGIN:g} point (recipe, 112 px)", INT8_MARGIN - float(drops.mean()),
             drop_stderr),
        Part("96 px input faster than 112 px (recipe, INT8, 1 thread)", math.log(t112.median_ms / t96.median_ms),
             math.hypot(t112.log_stderr, t96.log_stderr)),
    ]
    measured = {"recipe_agedb": float(np.mean(recipe)), "paper_agedb": float(np.mean(paper)),
                "int8_size_ratio": size_ratio, "int8_drop_points": float(drops.mean()),
                "int8_ms_112": t112.median_ms, "int8_ms_96": t96.median_ms, "seeds": len(recipe)}
    return parts, measured


def record_claims(resolution_rows: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]],
                  deployments: Mapping[str, Deployment], *, chapter: str, scale: str, data: str) -> dict[str, str]:
    """Record T9-resolution and MFN-blog; return each claim's status."""
    part, ratio = t9_part(resolution_rows)
    record("T9-resolution", chapter=chapter, scale=scale, data="real photo (obama.jpg) centred on frames of each size",
           measured={"ms": {r["frame"]: float(r["total_ms"]) for r in resolution_rows}, "ratio": ratio},
           parts=[part], headline=f"{resolution_rows[-1]['frame']} takes {ratio:.2f}x the time of "
                                  f"{resolution_rows[0]['frame']}")
    parts, measured = _mfn_parts(records, deployments)
    record("MFN-blog", chapter=chapter, scale=scale, data=data, measured=measured, parts=parts,
           headline=f"recipe {measured['recipe_agedb']:.1f}% vs paper layout {measured['paper_agedb']:.1f}% AgeDB-like; "
                    f"INT8 {measured['int8_size_ratio']:.2f} of FP32 size, accuracy {-measured['int8_drop_points']:+.2f} points")
    return {"T9-resolution": decide([part]), "MFN-blog": decide(parts)}
