"""Page 03's claims are recorded from the two scene studies by the one rule."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from faceopt import results
from faceopt.detection import claims


def _study(gain, gain_se, saving, saving_se, best=(3, 0.2), gate_vs_pixel=0.0):
    grid = pd.DataFrame([{"layer": 1, "threshold": 0.0, "mAP": 0.5, "ms per frame": 4.0},
                         {"layer": best[0], "threshold": best[1], "mAP": 0.6, "ms per frame": 2.0}])
    return SimpleNamespace(
        run={"map_detector": 0.5, "map_amphibian": 0.5 + gain, "map_gain_stderr": gain_se, "saving": saving,
             "saving_stderr": saving_se, "s_per_frame_detector": 0.004, "s_per_frame_amphibian": 0.004 * (1 - saving),
             "static_share": 0.4},
        versus_pixel={"map_amphibian": 0.6, "map_pixel_l2": 0.6 - gate_vs_pixel, "gain_stderr": 0.001},
        best=grid.iloc[1], grid=grid, chosen_setting=best)


def test_parts_are_signed_in_the_thesis_direction_per_scene():
    door, ped = _study(0.015, 0.007, 0.18, 0.02, best=(5, 0.3)), _study(0.035, 0.007, -0.2, 0.01)
    parts = claims.claim_parts({"door phone": door, "pedestrian": ped})
    assert [p.effect for p in parts["T3-map"]] == pytest.approx([0.015, 0.035])
    assert results.decide(parts["T3-map"]) == "reproduced"  # both beyond twice their standard error
    assert results.decide(parts["C6-time"]) == "not-reproduced"  # the pedestrian video is slower
    assert results.decide(parts["F25-baseline"]) == "not-reproduced"  # the gates tie
    assert [p.size_met for p in parts["F24-grid"]] == [True, False]  # only the door phone's arg-max is (5, 0.3)


def test_record_claims_writes_four_claims_with_headlines(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEOPT_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("FACEOPT_GIT_REV", "abc1234")
    table = claims.record_claims(_study(0.015, 0.007, 0.18, 0.02), _study(0.035, 0.007, -0.2, 0.01),
                                 chapter="03_amphibian_detector", scale="smoke", data="made up")
    found = {e["claim_id"]: e for e in results.load_results(tmp_path)}
    assert set(found) == {"T3-map", "F25-baseline", "F24-grid", "C6-time"}
    assert found["T3-map"]["headline"] == "mAP 0.500 → 0.515 (door phone), 0.500 → 0.535 (pedestrian)"
    assert found["C6-time"]["headline"] == "time per frame saved: 18% (door phone), -20% (pedestrian)"
    assert found["F24-grid"]["measured"]["doorbell"]["best_ratio_m"] == 3  # 0.6 mAP in 2 ms beats 0.5 in 4 ms
    assert table.loc["T3-map"]["claim status"].unique().tolist() == ["reproduced"]
