"""The claims of thesis Chapter 2 (page 03), recorded from the two scene studies.

Each claim is split into one part per scene (door phone, pedestrian video) and recorded with
:func:`faceopt.results.record`, whose one rule gives the status. Standard errors come from the
bootstrap over test frames that :func:`faceopt.detection.experiments.study_scene` computed.
"""
from __future__ import annotations

import pandas as pd

from faceopt.detection.experiments import SceneStudy
from faceopt.results import Part, decide, parts_table, record

#: The time the thesis's early exit saved per frame (Figure 2.6: 0.135 -> 0.112 s).
THESIS_SAVING = 0.17
#: The thesis's best setting on its grid (Figure 2.4).
THESIS_BEST = (5, 0.3)


def best_ratio(study: SceneStudy) -> pd.Series:
    """The grid row with the best mAP per modelled millisecond."""
    ratio = study.grid["mAP"] / study.grid["ms per frame"]
    return study.grid.loc[ratio.idxmax()]


def claim_parts(scenes: dict[str, SceneStudy]) -> dict[str, list[Part]]:
    """T3-map, F25-baseline, F24-grid and C6-time, one part per scene (``scenes``: name -> study)."""
    return {
        "T3-map": [Part(f"{name}: AmphibianDetector raises mAP", s.run["map_amphibian"] - s.run["map_detector"],
                        s.run["map_gain_stderr"]) for name, s in scenes.items()],
        "F25-baseline": [Part(f"{name}: AmphibianDetector beats the pixel L2 gate, each at its best tuning setting",
                              s.versus_pixel["map_amphibian"] - s.versus_pixel["map_pixel_l2"],
                              s.versus_pixel["gain_stderr"]) for name, s in scenes.items()],
        "F24-grid": [Part.observed(f"{name}: mAP and time measured over the (m, lambda) grid, arg-max reported", True,
                                   size_met=(int(s.best["layer"]), float(s.best["threshold"])) == THESIS_BEST)
                     for name, s in scenes.items()],
        "C6-time": [Part(f"{name}: early exit lowers the mean frame time", s.run["saving"], s.run["saving_stderr"],
                         size_met=s.run["saving"] >= THESIS_SAVING) for name, s in scenes.items()],
    }


def record_claims(door: SceneStudy, ped: SceneStudy, *, chapter: str, scale: str, data: str) -> pd.DataFrame:
    """Record the four claims of the page from the door-phone and pedestrian studies; return every part
    with its effect, standard error and status."""
    parts = claim_parts({"door phone": door, "pedestrian": ped})
    common = dict(chapter=chapter, scale=scale, data=data)
    run, prun = door.run, ped.run
    record("T3-map", **common, parts=parts["T3-map"],
           headline=f"mAP {run['map_detector']:.3f} → {run['map_amphibian']:.3f} (door phone), "
                    f"{prun['map_detector']:.3f} → {prun['map_amphibian']:.3f} (pedestrian)",
           measured={key: {"map_detector": s.run["map_detector"], "map_amphibian": s.run["map_amphibian"],
                           "gain_stderr": s.run["map_gain_stderr"], "m": s.chosen_setting[0],
                           "lambda": s.chosen_setting[1]} for key, s in (("doorbell", door), ("pedestrian", ped))},
           note="both scenes; (m, lambda) chosen on tuning frames by modelled time (the gate's measured cost "
                "included), scored on test frames; standard errors by a bootstrap over test frames; the pedestrian "
                "ground truth is pseudo-labels")
    base, pbase = door.versus_pixel, ped.versus_pixel
    record("F25-baseline", **common, parts=parts["F25-baseline"],
           headline=f"best mAP, gate / pixel: {base['map_amphibian']:.3f} / {base['map_pixel_l2']:.3f} (door phone), "
                    f"{pbase['map_amphibian']:.3f} / {pbase['map_pixel_l2']:.3f} (pedestrian)",
           measured={"doorbell": base, "pedestrian": pbase},
           note="each method's best setting on the tuning frames, scored on the test frames; the same number of "
                "settings searched for both; pixel distance read as squared L2; bootstrap over test frames")
    ratio = best_ratio(door)
    record("F24-grid", **common, parts=parts["F24-grid"],
           headline=f"best mAP {door.best['mAP']:.3f} at m={int(door.best['layer'])}, lambda="
                    f"{door.best['threshold']:.2f} (door phone); {ped.best['mAP']:.3f} at m={int(ped.best['layer'])}, "
                    f"lambda={ped.best['threshold']:.2f} (pedestrian)",
           measured={"doorbell": {"best_map": float(door.best["mAP"]), "best_m": int(door.best["layer"]),
                                  "best_lambda": float(door.best["threshold"]), "best_ratio_m": int(ratio["layer"]),
                                  "best_ratio_lambda": float(ratio["threshold"])},
                     "pedestrian": {"best_map": float(ped.best["mAP"]), "best_m": int(ped.best["layer"]),
                                    "best_lambda": float(ped.best["threshold"])}},
           note="heatmaps produced for both scenes on their tuning frames (BlazeFace 17 stages, SSDlite-MobileNetV2 "
                "19 blocks); time axis modelled from measured stage times; the thesis's size is its arg-max, m=5, "
                "lambda=0.3")
    record("C6-time", **common, parts=parts["C6-time"],
           headline=f"time per frame saved: {run['saving']:.0%} (door phone), {prun['saving']:.0%} (pedestrian)",
           measured={key: {k: s.run[k] for k in ("s_per_frame_detector", "s_per_frame_amphibian", "static_share",
                                                 "saving", "saving_stderr")}
                     for key, s in (("doorbell", door), ("pedestrian", ped))},
           note=f"measured in one run per scene on its test frames; saved {run['saving']:.0%} (door phone) and "
                f"{prun['saving']:.0%} (pedestrian) of the time per frame (thesis: 17%); early exits "
                f"{run['static_share']:.0%} and {prun['static_share']:.0%}; bootstrap over frames")
    table = pd.DataFrame([{"claim": claim, **row} for claim, claim_parts_ in parts.items()
                          for row in parts_table(claim_parts_)])
    table["claim status"] = table["claim"].map({c: decide(p) for c, p in parts.items()})
    return table.set_index(["claim", "part"])
