"""Page 05's tables of the device tiers: accuracy over seeds from the cached runs, latency measured here."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from faceopt.system.deployment import Deployment
from faceopt.system.tier_choice import choose_tier
from faceopt.system.tiers import CANDIDATES, TIERS

__all__ = ["seed_values", "accuracy_table", "tier_table", "choices_for_budgets"]

#: Column label -> path into a run record.
METRICS: dict[str, tuple[str, ...]] = {
    "AgeDB-like %": ("metrics", "agedb", "accuracy"),
    "LFW-like %": ("metrics", "lfw", "accuracy"),
    "AgeDB-like TAR@FAR=1% %": ("metrics", "agedb", "tar@far=1e-2"),
    "INT8 AgeDB-like %": ("int8", "int8", "agedb", "accuracy"),
    "ONNX FP32 AgeDB-like %": ("int8", "fp32", "agedb", "accuracy"),
}


def _get(record: Mapping[str, Any], path: Sequence[str]) -> float:
    value: Any = record
    for key in path:
        value = value[key]
    return float(value)


def seed_values(records: Sequence[Mapping[str, Any]], candidate: str, metric: str) -> list[float]:
    """``metric`` (a :data:`METRICS` label) of every seed of ``candidate``, in seed order."""
    return [_get(r, METRICS[metric]) for r in sorted(records, key=lambda r: r["seed"]) if r["candidate"] == candidate]


def accuracy_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per candidate: parameters, seeds, and the mean and standard deviation over seeds of each metric."""
    rows = []
    for c in CANDIDATES:
        mine = [r for r in records if r["candidate"] == c.name]
        if not mine:
            continue
        row: dict[str, Any] = {"candidate": c.name, "params (M)": mine[0]["params"] / 1e6, "seeds": len(mine)}
        for label in METRICS:
            v = seed_values(records, c.name, label)
            row[label] = float(np.mean(v))
            row[f"{label} std"] = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
        drops = np.subtract(seed_values(records, c.name, "ONNX FP32 AgeDB-like %"),
                            seed_values(records, c.name, "INT8 AgeDB-like %"))
        row["INT8 drop (points)"] = float(drops.mean())
        rows.append(row)
    return pd.DataFrame(rows).set_index("candidate")


def tier_table(accuracy: pd.DataFrame, deployments: Mapping[str, Deployment], threads: int = 1) -> pd.DataFrame:
    """Accuracy from the runs beside this machine's INT8 and FP32 latency (``threads`` threads) per candidate,
    with the tier (S, A, B) each candidate serves."""
    tier_of = {c.name: t for t, c in TIERS.items()}
    rows = []
    for name, dep in deployments.items():
        rows.append({"candidate": name, "tier": tier_of.get(name, "baseline" if name.startswith("paper") else ""),
                     "params (M)": accuracy.loc[name, "params (M)"],
                     "AgeDB-like %": accuracy.loc[name, "AgeDB-like %"],
                     "INT8 AgeDB-like %": accuracy.loc[name, "INT8 AgeDB-like %"],
                     "INT8 MB": dep.bytes["int8"] / 1e6,
                     "FP32 ms": dep.latency["fp32"][threads].median_ms,
                     "INT8 ms": dep.latency["int8"][threads].median_ms})
    return pd.DataFrame(rows).set_index("candidate")


def choices_for_budgets(table: pd.DataFrame, fractions: Sequence[float], reference: str = "S") -> pd.DataFrame:
    """The candidate :func:`choose_tier` loads (INT8, tiers only, not the baseline) for latency budgets given
    as ``fractions`` of the ``reference`` tier's INT8 latency (so that the choices mean the same on any machine)."""
    base = float(table.loc[table["tier"] == reference, "INT8 ms"].iloc[0])
    budgets_ms = [f * base for f in fractions]
    rows = [{"candidate": name, "accuracy": row["INT8 AgeDB-like %"], "ms": row["INT8 ms"]}
            for name, row in table.iterrows() if row["tier"] in TIERS]
    out = []
    for budget in budgets_ms:
        pick = choose_tier(rows, budget)
        out.append({f"budget (x tier {reference})": budget / base, "budget ms": budget,
                    "loads": "nothing fits" if pick is None else pick["candidate"],
                    "INT8 ms": None if pick is None else pick["ms"],
                    "AgeDB-like %": None if pick is None else pick["accuracy"]})
    return pd.DataFrame(out)
