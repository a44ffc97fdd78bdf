"""The claims of page 07 (thesis sections 1.3 and 1.5), recorded from its two experiments.

The parts come from the experiments' own ``claim_parts`` (:func:`faceopt.compress.kd_experiments.claim_parts`,
:func:`faceopt.compress.nas_experiments.claim_parts`); the status from the one rule, never from the page.
"""
from __future__ import annotations

from faceopt.compress import kd_experiments as kd
from faceopt.compress import nas_experiments as nas
from faceopt.results import decide, record

__all__ = ["record_claims"]


def record_claims(kd_result: kd.KDResult, nas_result: nas.NASResult, *, chapter: str, scale: str, data: str
                  ) -> dict[str, str]:
    """Record S1-kd-temperature, T1-fitnet and S1-darts; return each claim's status."""
    kd_parts = kd.claim_parts(kd_result)
    nas_parts = nas.claim_parts(nas_result)
    chosen = kd_result.chosen
    methods = kd.tables(kd_result)["fitnet"].set_index("method")
    retrained = nas.tables(nas_result)["retrained"]
    statuses = {}

    p = kd_parts["S1-kd-temperature"]
    hard = kd.mean_test(kd_result, "temperature", "hard labels")
    best = kd.mean_test(kd_result, "temperature", "KD", T=chosen["T"], alpha=chosen["alpha"])
    record("S1-kd-temperature", chapter=chapter, scale=scale, data=data, parts=p,
           measured={"hard_labels": hard, "kd": best, "T": chosen["T"], "alpha": chosen["alpha"],
                     "seeds": len(kd_result.preset.seeds)},
           headline=f"KD (T={chosen['T']:g}, chosen on validation) {100 * best:.1f}% against hard labels "
                    f"{100 * hard:.1f}% (digits, last epoch)")
    statuses["S1-kd-temperature"] = decide(p)

    p = kd_parts["T1-fitnet"]
    plain = kd.mean_test(kd_result, "fitnet", "plain")
    fitnet = kd.mean_test(kd_result, "fitnet", "hints then KD (FitNets)")
    teacher = kd.mean_teacher(kd_result)
    record("T1-fitnet", chapter=chapter, scale=scale, data=data, parts=p,
           measured={"fitnet_student": fitnet, "plain_student": plain, "teacher": teacher,
                     "student_params_M": kd_result.params["student"] / 1e6,
                     "teacher_params_M": kd_result.params["teacher"] / 1e6,
                     "ratio": float(methods.loc["student, plain", "ratio to teacher"])},
           headline=f"FitNet student {100 * fitnet:.1f}% ({kd_result.params['student'] / 1e3:.0f} k parameters) against "
                    f"plain {100 * plain:.1f}% and its teacher's {100 * teacher:.1f}% "
                    f"({kd_result.params['teacher'] / 1e3:.0f} k), digits")
    statuses["T1-fitnet"] = decide(p)

    primary, base = nas_result.primary, nas_result.baseline
    cpu = nas_result.search_cpu_seconds
    record("S1-darts", chapter=chapter, scale=scale, data=data, parts=nas_parts,
           measured={"darts_accuracy": float(retrained.loc[primary, "mean"]), "baseline_accuracy":
                     float(retrained.loc[base, "mean"]), "darts_params": nas_result.parameters[primary],
                     "baseline_params": nas_result.parameters[base], "darts_cpu_s": cpu[primary],
                     "evolution_cpu_s": cpu["evolution"], "random_cpu_s": cpu["random"]},
           headline=f"{primary}: {100 * retrained.loc[primary, 'mean']:.1f}% against {base} "
                    f"{100 * retrained.loc[base, 'mean']:.1f}%; search {cpu[primary]:.0f} CPU s against evolution's "
                    f"{cpu['evolution']:.0f}")
    statuses["S1-darts"] = decide(nas_parts)
    return statuses
