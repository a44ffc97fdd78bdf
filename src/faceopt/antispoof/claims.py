"""The claims of page 08 (the companion works), recorded by the library's one rule (:func:`faceopt.results.decide`).

Noise comes from the seeds: each part pairs the two sides seed by seed (same data, same initial
weights where the experiment shares them) and takes the standard error of the mean paired difference.

* **FAS-fmd** (feature-map distillation keeps the teacher's accuracy and generalises better to unseen
  attacks): (1) the hint-distilled student's ACER on the unseen-attack protocols (mean over the held-out
  species) is below the student trained alone; (2) on the seen protocol its ACER is within
  :data:`KEEP_MARGIN` (2 ACER points, fixed before any full run) of the teacher's.
* **PTA-better** (better than MobileNetV2): for every separately trained MobileNetV2 width, the PTA
  configuration that the validation split picks within that width's latency (plus 5%) has a lower test
  ACER than it.
* **PTA-runtime** (several configurations from one set of weights, chosen at run time): at least three
  configurations with non-overlapping latency quartiles, and the fastest one beyond the noise faster
  than the slowest (log latency ratio over seeds).
* **PTA-train-time** (sampling configurations in training costs less wall time than one training per
  configuration): the log of the baselines' summed wall time over the PTA training's (with its BN
  recalibrations) is positive beyond the noise.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from faceopt.antispoof import fas_tables
from faceopt.antispoof.pta_experiments import claim_checks, model_table
from faceopt.results import Part, decide, record

__all__ = ["KEEP_MARGIN", "fas_parts", "pta_parts", "record_claims"]

#: How far (in ACER, a rate) the distilled student may sit above its teacher on seen attacks and still "keep"
#: the teacher's accuracy. Fixed before the full runs; the note gives no number.
KEEP_MARGIN = 0.02


def _paired(diffs: Sequence[float]) -> tuple[float, float | None]:
    d = np.asarray(diffs, dtype=float)
    return float(d.mean()), (float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else None)


def fas_parts(long: pd.DataFrame) -> list[Part]:
    """The two parts of FAS-fmd from :func:`fas_tables.long_table`."""
    unseen = fas_tables.unseen_differences(long, better="hints", worse="student")
    seen = long[long["held_out"].isna()].pivot_table(index="seed", columns="method", values="acer")
    keep = KEEP_MARGIN - (seen["hints"] - seen["teacher"])
    return [Part("hints below the student alone, unseen attacks (ACER)", *_paired(list(unseen))),
            Part(f"hints within {100 * KEEP_MARGIN:g} ACER points of the teacher, seen attacks", *_paired(list(keep)))]


def _per_seed(records: Sequence[Mapping[str, Any]], model: str, key: str = "acer") -> dict[int, float]:
    return {int(r["seed"]): float(r["models"][model]["test"][key]) for r in records if model in r["models"]}


def pta_parts(records: Sequence[Mapping[str, Any]], *, checks: Mapping[str, Any] | None = None,
              table: pd.DataFrame | None = None) -> dict[str, list[Part]]:
    """The parts of PTA-better, PTA-runtime and PTA-train-time from the seed records of :mod:`pta_runs`.

    ``checks`` (:func:`claim_checks`) and ``table`` (:func:`model_table`) are made from ``records``
    unless the caller has them already.
    """
    checks = claim_checks(records) if checks is None else checks
    better = []
    for pair in checks["better"]["pairs"]:
        base, pta = _per_seed(records, pair["baseline"]), _per_seed(records, pair["pta_model"]) if pair["pta_model"] else {}
        name = f"PTA below {pair['baseline']} at its latency (test ACER)"
        if not pta:
            better.append(Part.observed(f"{name}: no PTA configuration fits", False))
            continue
        better.append(Part(f"{name}: {pair['pta_model']}", *_paired([base[s] - pta[s] for s in sorted(base) if s in pta])))
    table = model_table(records) if table is None else table
    pta_rows = table[table["kind"] == "pta"].sort_values("latency_ms")
    fast, slow = str(pta_rows.iloc[0]["model"]), str(pta_rows.iloc[-1]["model"])
    log_ratio = [math.log(r["models"][slow]["latency_ms"]["median_ms"] / r["models"][fast]["latency_ms"]["median_ms"])
                 for r in records]
    train = [math.log(r["wall_time"]["baselines_total_s"] / r["wall_time"]["pta_total_s"]) for r in records]
    distinct = checks["runtime"]["distinct"]
    return {
        "PTA-better": better,
        "PTA-runtime": [Part.observed(f"{len(distinct)} configurations with distinct latency from one set of weights (>= 3)",
                                      len(distinct) >= 3),
                        Part(f"{fast} faster than {slow} (log latency ratio)", *_paired(log_ratio))],
        "PTA-train-time": [Part("one PTA training below the separate trainings (log wall-time ratio)", *_paired(train))],
    }


def record_claims(fas_runs: Mapping[str, Mapping[str, Any]],
                  pta_runs: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
                  *, chapter: str, scale: str, data: str) -> dict[str, str]:
    """Record FAS-fmd, PTA-better, PTA-runtime and PTA-train-time; return each claim's status."""
    long = fas_tables.long_table(fas_runs)
    records = list(pta_runs.values()) if isinstance(pta_runs, Mapping) else list(pta_runs)
    checks, table = claim_checks(records), model_table(records)
    parts = {"FAS-fmd": fas_parts(long), **pta_parts(records, checks=checks, table=table)}
    unseen = long[long["held_out"].notna()].groupby("method")["acer"].mean() * 100
    seen = long[long["held_out"].isna()].groupby("method")["acer"].mean() * 100
    walls = pd.DataFrame([r["wall_time"] for r in records])
    pta_rows = table[table["kind"] == "pta"]
    headlines = {
        "FAS-fmd": (f"unseen-attack ACER {unseen['student']:.1f}% alone -> {unseen['hints']:.1f}% with hints; seen "
                    f"{seen['hints']:.1f}% vs teacher {seen['teacher']:.1f}%"),
        "PTA-better": "; ".join(f"{p.name.split(': ')[-1]} vs {p.name.split(' at ')[0].removeprefix('PTA below ')}: "
                                f"{100 * p.effect:+.1f} ACER points" for p in parts["PTA-better"]),
        "PTA-runtime": (f"{len(pta_rows)} configurations from one model: "
                        + ", ".join(f"{r.model.removeprefix('pta:')} {r.latency_ms:.2f} ms" for r in pta_rows.itertuples())),
        "PTA-train-time": (f"PTA {walls['pta_total_s'].mean():.0f} s against {walls['baselines_total_s'].mean():.0f} s for "
                           f"the separate widths (ratio {walls['ratio'].mean():.2f})"),
    }
    measured = {
        "FAS-fmd": {"unseen_acer_pct": unseen.round(3).to_dict(), "seen_acer_pct": seen.round(3).to_dict()},
        "PTA-better": {"pairs": checks["better"]["pairs"]},
        "PTA-runtime": {row.model: {"latency_ms": row.latency_ms, "test_acer": row.test_acer, "mflops": row.mflops}
                        for row in pta_rows.itertuples()},
        "PTA-train-time": {"pta_total_s": walls["pta_total_s"].tolist(),
                           "baselines_total_s": walls["baselines_total_s"].tolist()},
    }
    for claim, claim_parts in parts.items():
        record(claim, chapter=chapter, scale=scale, data=data, measured=measured[claim], parts=claim_parts,
               headline=headlines[claim])
    return {claim: decide(p) for claim, p in parts.items()}
