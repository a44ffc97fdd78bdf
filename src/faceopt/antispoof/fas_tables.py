"""Tables of page 08's distillation grid, read from the cell records of :mod:`faceopt.antispoof.fas_runs`.

A record is one (protocol, seed) cell: ``held_out`` (``None`` for the seen protocol), ``seed`` and
``models`` by name (``teacher`` and :data:`~faceopt.antispoof.fas_distill.FAS_METHODS`), each with the test
``acer``, ``apcer`` (worst species), ``bpcer``, ``auc``, ``apcer_per_type``, the validation ``val_acer``
and ``threshold``, ``params`` and ``train_seconds``.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["METHOD_LABELS", "protocol_name", "long_table", "summary_table", "unseen_differences", "apcer_table"]

#: How the page names the models.
METHOD_LABELS: dict[str, str] = {"teacher": "teacher (ResNet)", "student": "student alone", "kd": "logit KD",
                                 "hints": "feature-map hints", "hints_kd": "hints + KD"}


def protocol_name(held_out: str | None) -> str:
    """``"seen"`` for every species in training, else ``"unseen <species>"``."""
    return "seen" if held_out is None else f"unseen {held_out}"


def _records(runs: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return list(runs.values()) if isinstance(runs, Mapping) else list(runs)


def long_table(runs: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (protocol, seed, model): the test metrics, the validation ACER and the training time."""
    rows = []
    for rec in _records(runs):
        for name, m in rec["models"].items():
            rows.append({"protocol": protocol_name(rec["held_out"]), "held_out": rec["held_out"], "seed": int(rec["seed"]),
                         "method": name, "model": METHOD_LABELS.get(name, name), "acer": m["acer"], "apcer": m["apcer"],
                         "bpcer": m["bpcer"], "auc": m["auc"], "val_acer": m["val_acer"], "params": m["params"],
                         "train_seconds": m.get("train_seconds", float("nan"))})
    if not rows:
        raise ValueError("no distillation records: run `faceopt.antispoof.fas_runs` first")
    order = {p: i for i, p in enumerate(["seen", *sorted({r["protocol"] for r in rows} - {"seen"})])}
    df = pd.DataFrame(rows)
    return df.sort_values(["protocol", "method", "seed"], key=lambda s: s.map(order) if s.name == "protocol" else s)


def summary_table(long: pd.DataFrame, value: str = "acer") -> pd.DataFrame:
    """``value`` in percent as "mean ± sd" over seeds: one row per model, one column per protocol, and the
    mean over the unseen protocols."""
    stats = long.groupby(["model", "protocol"], sort=False)[value].agg(["mean", "std"]) * 100
    cells = stats.apply(lambda r: f"{r['mean']:.1f} ± {0.0 if np.isnan(r['std']) else r['std']:.1f}", axis=1).unstack()
    unseen = long[long["held_out"].notna()]
    if not unseen.empty:
        per_seed = unseen.groupby(["model", "seed"])[value].mean() * 100
        agg = per_seed.groupby("model").agg(["mean", "std"])
        cells["unseen mean"] = agg.apply(lambda r: f"{r['mean']:.1f} ± {0.0 if np.isnan(r['std']) else r['std']:.1f}",
                                         axis=1)
    models = [METHOD_LABELS[m] for m in METHOD_LABELS if METHOD_LABELS[m] in cells.index]
    protocols = list(dict.fromkeys(long["protocol"]))
    return cells.reindex(index=models, columns=[*protocols, *(["unseen mean"] if not unseen.empty else [])])


def unseen_differences(long: pd.DataFrame, better: str, worse: str, value: str = "acer") -> pd.Series:
    """Per seed, ``worse``'s minus ``better``'s ``value`` averaged over the unseen protocols (positive:
    ``better`` errs less), the paired differences a claim's noise comes from."""
    unseen = long[long["held_out"].notna()]
    if unseen.empty:
        raise ValueError("no unseen-attack protocol in the records")
    per_seed = unseen.groupby(["method", "seed"])[value].mean()
    return (per_seed[worse] - per_seed[better]).rename(f"{worse} - {better}")


def apcer_table(runs: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]], held_out: str | None = None
                ) -> pd.DataFrame:
    """APCER (percent, mean over seeds) per attack species and model in one protocol, with BPCER beside."""
    rows = []
    for rec in _records(runs):
        if rec["held_out"] != held_out:
            continue
        for name, m in rec["models"].items():
            rows.append({"model": METHOD_LABELS.get(name, name), "seed": rec["seed"], "BPCER": 100 * m["bpcer"],
                         **{f"APCER {k}": 100 * v for k, v in m["apcer_per_type"].items()}})
    if not rows:
        raise ValueError(f"no records of protocol {protocol_name(held_out)!r}")
    df = pd.DataFrame(rows).groupby("model", sort=False).mean(numeric_only=True).drop(columns="seed")
    return df.reindex([METHOD_LABELS[m] for m in METHOD_LABELS if METHOD_LABELS[m] in df.index])
