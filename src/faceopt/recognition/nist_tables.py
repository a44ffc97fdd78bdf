"""Page 06's tables and DET curves from the cached run records of :mod:`faceopt.recognition.nist_runs`.

A run record holds :func:`faceopt.recognition.nist_eval.evaluate`'s metrics. The models are named as
the thesis names them: the two teachers (iResNet-100-like and iResNet-50-like, reduced width), the
student trained with ArcFace alone ("student"), the student trained with MarginDistillation
("distilled") and the distilled student's INT8 onnxruntime form ("distilled INT8"). Students have one
record per seed; their table cells are means over seeds with the standard deviation beside them.
Door-phone TARs are shown in percent, as in the thesis; FNMRs as fractions, as in Table 8.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from faceopt.results import load_claims

__all__ = ["MODELS", "metric_values", "values_table", "table8", "table11", "table13", "table14", "table16_17",
           "det_curves", "thesis_values"]

#: Row label -> (run-name prefix, which evaluation of the record: "metrics" or "int8").
MODELS: dict[str, tuple[str, str]] = {
    "teacher iResNet-100-like": ("teacher-resnet100", "metrics"),
    "teacher iResNet-50-like": ("teacher-resnet50", "metrics"),
    "student (ArcFace)": ("student-arcface-", "metrics"),
    "distilled (MarginDistillation)": ("student-margin_distillation-", "metrics"),
    "distilled INT8": ("student-margin_distillation-", "int8"),
}
#: The thesis's row names (claims.yml) of the same models.
THESIS_ROWS = {"teacher iResNet-100-like": "teacher", "student (ArcFace)": "student",
               "distilled (MarginDistillation)": "distilled", "distilled INT8": "distilled_int8"}
#: Door-phone settings of each thesis column.
DOORPHONE_COLUMNS = {"strong": "day-strong", "weak": "day-weak", "night": "night-weak", "day": "day-weak"}


def _get(d: Mapping[str, Any], path: Sequence[str]) -> Any:
    for key in path:
        d = d[key]
    return d


def metric_values(runs: Mapping[str, Mapping[str, Any]], model: str, path: Sequence[str]) -> list[float]:
    """The metric at ``path`` (e.g. ``("doorphone", "day-strong", "tar")``) of ``model`` (a :data:`MODELS`
    label), one value per run (seed), in run-name order."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    prefix, which = MODELS[model]
    return [float(_get(runs[name][which], path)) for name in sorted(runs) if name.startswith(prefix)]


def thesis_values(claim_id: str) -> dict[str, Any]:
    """The thesis's numbers of a claim (claims.yml)."""
    return dict(load_claims()[claim_id].thesis or {})


def _cell(values: Sequence[float], scale: float) -> tuple[float, float]:
    v = np.asarray(values, dtype=float) * scale
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")


def values_table(runs: Mapping[str, Mapping[str, Any]], columns: Mapping[str, Sequence[str]], *,
                 models: Sequence[str] = tuple(MODELS), scale: float = 1.0) -> pd.DataFrame:
    """Mean (and standard deviation over seeds, ``± sd`` columns) of each metric path of ``columns``
    for each model; runs a model lacks are left out."""
    rows = []
    for model in models:
        row: dict[str, Any] = {"model": model}
        for column, path in columns.items():
            values = metric_values(runs, model, path)
            if not values:
                break
            row[column], row[f"{column} ± sd"] = _cell(values, scale)
            row["runs"] = len(values)
        else:
            rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def _with_thesis(table: pd.DataFrame, thesis: Mapping[str, Any], columns: Mapping[str, str]) -> pd.DataFrame:
    """Add a ``thesis <column>`` column for each of ``columns`` (our column -> key path in the thesis dict
    below the model's thesis row name)."""
    out = table.copy()
    for ours, key in columns.items():
        values = []
        for model in out.index:
            row = THESIS_ROWS.get(model)
            entry = thesis.get(key, {}) if row is not None else {}
            values.append(entry.get(row, np.nan) if isinstance(entry, Mapping) else np.nan)
        out[f"thesis {ours}"] = values
    return out


def table8(runs: Mapping[str, Mapping[str, Any]], model: str = "distilled (MarginDistillation)") -> pd.DataFrame:
    """Table 8: FNMR at the thesis's FMR for each capture condition (the FMR actually used where the
    impostor count cannot resolve the target), with the bootstrap interval of the first seed."""
    thesis = thesis_values("T8-nist")
    prefix, which = MODELS[model]
    first = next(runs[n][which] for n in sorted(runs) if n.startswith(prefix))
    rows = []
    for condition, result in first["nist"].items():
        fnmr = metric_values(runs, model, ("nist", condition, "fnmr"))
        rows.append({"condition": condition, "FMR target": result["fmr_target"], "FMR used": result["fmr"],
                     "FNMR": float(np.mean(fnmr)), "FNMR ± sd": float(np.std(fnmr, ddof=1)) if len(fnmr) > 1 else np.nan,
                     "CI low (seed 0)": result["ci_low"], "CI high (seed 0)": result["ci_high"],
                     "genuine pairs": result["genuine"], "impostor pairs": result["impostor"],
                     "thesis FNMR": thesis.get(condition, {}).get("fnmr", np.nan)})
    return pd.DataFrame(rows).set_index("condition")


def table11(runs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Table 11: MegaFace-like rank-1 identification (%) of every model, beside the thesis's MegaFace."""
    table = values_table(runs, {"rank-1 %": ("megaface_rank1",)})
    thesis = thesis_values("T11-quantised-megaface")
    table["thesis rank-1 %"] = [thesis.get(THESIS_ROWS.get(m, ""), np.nan) for m in table.index]
    return table


def _doorphone_columns(names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    return {f"TAR {n} %": ("doorphone", DOORPHONE_COLUMNS[n], "tar") for n in names}


def table13(runs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Table 13: door-phone TAR at FAR 10% (%) by day under strong and weak H.264 compression."""
    table = values_table(runs, _doorphone_columns(("strong", "weak")), scale=100.0)
    return _with_thesis(table, thesis_values("T13-compression"), {"TAR strong %": "strong", "TAR weak %": "weak"})


def table14(runs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Table 14: door-phone TAR at FAR 10% (%) at night (infrared) and by day, weak compression."""
    table = values_table(runs, _doorphone_columns(("night", "day")), scale=100.0)
    return _with_thesis(table, thesis_values("T14-night"), {"TAR night %": "night", "TAR day %": "day"})


def table16_17(runs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Tables 16-17: the two teachers on every door-phone setting (%), beside the thesis's ResNet100/ResNet50."""
    names = ("strong", "weak", "night", "day")
    table = values_table(runs, _doorphone_columns(names), models=("teacher iResNet-100-like", "teacher iResNet-50-like"),
                         scale=100.0)
    table = table[[f"TAR {n} %" for n in names]]
    thesis = thesis_values("T16-18-teacher-size")
    for n in names:
        table[f"thesis {n} %"] = [thesis["resnet100"][n], thesis["resnet50"][n]]
    return table


def det_curves(runs: Mapping[str, Mapping[str, Any]], condition: str, *, seed_run: int = 0
               ) -> dict[str, dict[str, list[float]]]:
    """The stored DET summaries of ``condition`` for every model (students: the ``seed_run``-th seed)."""
    curves = {}
    for model, (prefix, which) in MODELS.items():
        names = [n for n in sorted(runs) if n.startswith(prefix)]
        if names:
            curves[model] = runs[names[min(seed_run, len(names) - 1)]][which]["nist"][condition]["det"]
    return curves
