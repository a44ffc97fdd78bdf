"""The tables, comparisons and claim parts of thesis Chapter 3 (page 04), read from the run records.

The run records (:func:`faceopt.recognition.runs.load_runs`) hold one teacher and the
students of every method and seed. This module turns them into what the page shows:
Tables 5 to 7 of the thesis with our numbers beside the thesis's (:func:`verification_table`,
:func:`identification_table`, :func:`ablation_table`), MarginDistillation against each
method with the noise (:func:`comparison_table`), and the parts each claim is decided on
(:func:`claim_parts`), which :func:`record_claims` records and :mod:`faceopt.results` turns
into statuses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from faceopt.recognition import experiments as ex
from faceopt.recognition.runs import comparison_part, winner_parts
from faceopt.results import Part, decide, parts_table, record
from faceopt.stats import compare

#: The three protocols, by the key of a run record's ``metrics``.
METRICS = {"lfw": "LFW-like", "agedb": "AgeDB-like", "megaface_rank1": "MegaFace-like rank-1"}

#: How each method is named on the page.
LABEL = {"teacher": "teacher (ArcFace)", "arcface": "student: ArcFace", "triplet_l2": "triplet distillation, L2",
         "triplet_cos": "triplet distillation, cos", "margin_kd_t4": "margin-based KD, T=4",
         "angular": "angular distillation", "margin_distillation": "MarginDistillation",
         "copy_mi_freeze": "copy + m_i + freeze", "copy_mi": "copy + m_i", "copy": "copy",
         "mi": "m_i", "copy_freeze": "copy + freeze"}

#: The thesis's key of a method where it differs from ours.
_THESIS_KEY = {"teacher": "teacher", "arcface": "student_arcface"}

Values = Mapping[str, Mapping[str, Sequence[float]]]
"""metric -> method -> one value per seed (``runs.collect`` for each metric)."""


def mean_sd(values: Sequence[float]) -> str:
    """``"mean ± sd"`` over seeds (sample standard deviation), or the one value."""
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def _seeds(teacher: Mapping[str, Any], values: Values, metric: str, method: str) -> Sequence[float]:
    return [teacher["metrics"][metric]] if method == "teacher" else values[metric][method]


def verification_table(teacher: Mapping[str, Any], values: Values, thesis: Mapping[str, Any]) -> pd.DataFrame:
    """Table 5: LFW-like and AgeDB-like accuracy per method, beside the thesis's LFW and AgeDB-30."""
    rows = []
    for m in ("teacher", *ex.TABLE5_METHODS):
        row = {"method": LABEL[m]}
        for k, thesis_key in (("lfw", "lfw"), ("agedb", "agedb30")):
            row[f"{METRICS[k]} %"] = mean_sd(_seeds(teacher, values, k, m))
            row[f"thesis {thesis_key} %"] = thesis[thesis_key][_THESIS_KEY.get(m, m)]
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def identification_table(teacher: Mapping[str, Any], values: Values, thesis: Mapping[str, Any]) -> pd.DataFrame:
    """Table 6: MegaFace-like rank-1 identification per method, beside the thesis's MegaFace."""
    rows = [{"method": LABEL[m], "MegaFace-like rank-1 %": mean_sd(_seeds(teacher, values, "megaface_rank1", m)),
             "thesis MegaFace %": thesis[_THESIS_KEY.get(m, m)]} for m in ("teacher", *ex.TABLE5_METHODS)]
    return pd.DataFrame(rows).set_index("method")


def ablation_values(values: Values) -> dict[str, dict[str, Sequence[float]]]:
    """The Table 7 rows of every metric (its first row, copy + m_i + freeze, *is* MarginDistillation)."""
    return {k: {m: values[k][ex.ALIASES.get(m, m)] for m in ex.TABLE7_METHODS} for k in values}


def ablation_table(values: Values, thesis: Mapping[str, Any]) -> pd.DataFrame:
    """Table 7: every metric for each combination of the three parts, beside the thesis's LFW."""
    ablation = ablation_values(values)
    rows = [{"parts": LABEL[m], **{f"{METRICS[k]} %": mean_sd(ablation[k][m]) for k in METRICS},
             "thesis LFW %": thesis[m]} for m in ex.TABLE7_METHODS]
    return pd.DataFrame(rows).set_index("parts")


def comparison_table(values: Values) -> pd.DataFrame:
    """MarginDistillation minus each other method, per metric: the difference of means, its standard
    error over seeds and whether it is beyond the noise (two standard errors), one row per comparison."""
    rows = []
    for k, name in METRICS.items():
        for m in ex.METHODS:
            if m == "margin_distillation":
                continue
            c = compare(values[k]["margin_distillation"], values[k][m])
            rows.append({"metric": name, "MarginDistillation minus": LABEL[m], "difference": c.diff,
                         "standard error": c.stderr, "seeds": f"{c.n_a}/{c.n_b}",
                         "beyond the noise": c.significant})
    return pd.DataFrame(rows).set_index(["metric", "MarginDistillation minus"])


@dataclass
class ClaimParts:
    """The parts each of the chapter's claims is decided on (:func:`faceopt.results.decide`)."""

    verification: list[Part]  # T5: MarginDistillation above each method on LFW-like and AgeDB-like
    identification: list[Part]  # T6: ... above each method on rank-1; both triplet rows below the ArcFace student
    ablation: dict[str, list[Part]]  # T7, per metric: the thesis's order of the ablation rows

    def table(self) -> pd.DataFrame:
        """Every part with its effect, standard error and status, indexed by claim and part."""
        groups = (("T5", self.verification), ("T6", self.identification),
                  ("T7", [p for parts in self.ablation.values() for p in parts]))
        return pd.DataFrame([{"claim": claim, **row} for claim, parts in groups
                             for row in parts_table(parts)]).set_index(["claim", "part"])


def claim_parts(values: Values) -> ClaimParts:
    """Split Tables 5-7 into comparisons of two methods each, over the seeds."""
    verification = [p for k in ("lfw", "agedb") for p in winner_parts(values[k], label=f"{METRICS[k]}: ")]
    identification = (winner_parts(values["megaface_rank1"], label="rank-1: ")
                      + [comparison_part(values["megaface_rank1"], "arcface", t, "rank-1: ")
                         for t in ("triplet_l2", "triplet_cos")])
    ablation = {}
    for k, table in ablation_values(values).items():
        label = f"{METRICS[k]}: "
        ablation[k] = (winner_parts(table, target="copy_mi_freeze", rivals=ex.TABLE7_METHODS, label=label)
                       + [comparison_part(table, "copy_freeze", "copy", label)]
                       + [comparison_part(table, m, "copy_mi", label)
                          for m in ex.TABLE7_METHODS if m not in ("copy_mi", "copy_mi_freeze")])
    return ClaimParts(verification, identification, ablation)


def record_claims(teacher: Mapping[str, Any], values: Values, *, chapter: str, scale: str, data: str,
                  seeds: Mapping[str, int]) -> pd.DataFrame:
    """Record T5, T6 and T7 (:func:`faceopt.results.record`) from the runs; return their statuses.

    ``seeds``: how many seeds the headline pair (``"headline"``) and the other methods (``"others"``)
    have. The parts are :func:`claim_parts`; T7 is decided on LFW-like accuracy, the thesis's metric.
    """
    claim = claim_parts(values)
    mean = {k: {m: float(np.mean(v)) for m, v in values[k].items()} for k in METRICS}
    ablation = ablation_values(values)
    common = dict(chapter=chapter, scale=scale, data=data)
    n = dict(seeds)
    record("T5-verification", **common, parts=claim.verification,
           headline=f"MarginDistillation / ArcFace student: LFW-like {mean['lfw']['margin_distillation']:.2f} / "
                    f"{mean['lfw']['arcface']:.2f}, AgeDB-like {mean['agedb']['margin_distillation']:.2f} / "
                    f"{mean['agedb']['arcface']:.2f}",
           measured={"lfw_like": {"teacher": teacher["metrics"]["lfw"], **mean["lfw"]},
                     "agedb_like": {"teacher": teacher["metrics"]["agedb"], **mean["agedb"]}, "seeds": n},
           note=f"means over {n['headline']} seeds (ArcFace student, MarginDistillation) and {n['others']} (the "
                "others); parts: MarginDistillation above each method on LFW-like and AgeDB-like")
    rank1 = mean["megaface_rank1"]
    record("T6-identification", **common, parts=claim.identification,
           headline=f"rank-1 {rank1['margin_distillation']:.2f} (MarginDistillation), {rank1['arcface']:.2f} "
                    f"(ArcFace student); triplet rows {rank1['triplet_l2']:.2f}, {rank1['triplet_cos']:.2f}",
           measured={"megaface_like_rank1": {"teacher": teacher["metrics"]["megaface_rank1"], **rank1},
                     "distractors": teacher["eval_sizes"]["distractors"], "seeds": n},
           note="parts: MarginDistillation above each method, both triplet rows below the ArcFace student "
                "(our triplet rows add ArcFace and train from scratch)")
    record("T7-ablation", **common, parts=claim.ablation["lfw"],
           headline="LFW-like " + ", ".join(f"{np.mean(ablation['lfw'][m]):.2f} ({LABEL[m]})" for m in ex.TABLE7_METHODS),
           measured={f"{key}_like" if key != "megaface_rank1" else "megaface_like_rank1":
                     {m: float(np.mean(v)) for m, v in ablation[key].items()} for key in METRICS} | {"seeds": n},
           note="parts on LFW-like accuracy, the thesis's metric; the AgeDB-like and MegaFace-like parts are in the "
                "chapter's table")
    statuses = {c: decide(parts) for c, parts in (("T5-verification", claim.verification),
                                                   ("T6-identification", claim.identification),
                                                   ("T7-ablation", claim.ablation["lfw"]))}
    return pd.DataFrame({"status": statuses}).rename_axis("claim")


def seed_frame(students: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per student run and metric: method (its label), metric (its name), value, seed."""
    return pd.DataFrame([{"method": LABEL[s["method"]], "metric": METRICS[k], "value": s["metrics"][k],
                          "seed": s["seed"]} for s in students for k in METRICS])
