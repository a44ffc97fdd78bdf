"""The cached replay of the gate equals the live AmphibianDetector; the time model adds up."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import require_asset

from faceopt.data.doorbell import DoorbellConfig, doorbell_scene
from faceopt.detection.amphibian import AmphibianDetector, PixelGate
from faceopt.detection.experiments import StageTimes, cache_scene, replay_gate, replay_pixel_gate




@pytest.fixture(scope="module")
def scene():
    from faceopt.detection.blazeface import BlazeFace
    from faceopt.detection.split import BlazeFaceSplit

    faces = np.load(require_asset("lfw_subset"))[:100]
    cfg = DoorbellConfig(width=320, height=240, frames=20, visits=1, face_size=(100, 140), poster_size=70,
                         poster_xy=(10, 20))
    frames = [f for f, _ in doorbell_scene(faces, cfg)]
    split = BlazeFaceSplit(BlazeFace.from_tflite(require_asset("blazeface_short_range")))
    return split, frames, cache_scene(split, frames, layers=(3, 6, 12))


@pytest.mark.parametrize("layer, threshold", [(3, 0.2), (12, 0.5)])
def test_replay_equals_live_detector(scene, layer, threshold):
    split, frames, cache = scene
    live = AmphibianDetector(split, layer=layer, threshold=threshold, alpha=0.9)
    live.reset(frames[0])
    replay = replay_gate(cache, layer, threshold, 0.9)
    for t, frame in enumerate(frames):
        boxes, scores = live.process(frame)
        np.testing.assert_allclose(replay.predictions[t][0], boxes, atol=1e-4)
        np.testing.assert_allclose(replay.predictions[t][1], scores, atol=1e-6)
    assert replay.static.tolist() == live.stats.static


def test_pixel_replay_equals_live_gate(scene):
    _, frames, cache = scene
    gate = PixelGate(500.0, 0.9)
    gate.observe(frames[0])
    replay = replay_pixel_gate(cache, 500.0, 0.9)
    assert replay.static.tolist() == [gate.observe(f)[1] for f in frames]


def test_time_model_adds_up():
    times = StageTimes(prepare=1.0, until={3: 2.0, 17: 10.0}, rest={3: 8.0, 17: 0.0}, decode=0.5,
                       gate={3: 0.1, 17: 0.05})
    assert times.detector_alone == pytest.approx(11.5)
    assert times.frame_time(3, static_share=0.0) == pytest.approx(1 + 2 + 0.1 + 8 + 0.5)
    assert times.frame_time(3, static_share=1.0) == pytest.approx(1 + 2 + 0.1)


def test_choose_setting_takes_the_cheapest_within_tolerance():
    import pandas as pd

    grid = pd.DataFrame({"layer": [1, 2, 3, 3], "threshold": [0.1, 0.1, 0.1, 0.2],
                         "mAP": [0.50, 1.00, 0.99, 0.97], "static share": [0.0, 0.5, 0.5, 1.0]})
    from faceopt.detection import experiments as ex

    best, chosen = ex.choose_setting(grid, [10, 10, 10], 10)
    # expected MACs: (1) 10+30=40 (2) 20+0.5*20=30 (3) 30+0.5*10=35 (4) 30+0=30 -> row 4 is below 98% of 1.0
    assert grid["expected MMACs"].tolist() == pytest.approx([40e-6, 30e-6, 35e-6, 30e-6])
    assert int(best["layer"]) == 2 and int(chosen["layer"]) == 2
    _, chosen = ex.choose_setting(grid, [10, 10, 10], 10, tolerance=0.05)
    assert int(chosen["layer"]) == 2  # tie on cost with row 4 goes to the earlier layer


def _live(split, frames, layer, threshold, alpha=0.9):
    live = AmphibianDetector(split, layer=layer, threshold=threshold, alpha=alpha)
    live.reset(frames[0])
    return [live.process(f) for f in frames]


def _gt(frames):
    rng = np.random.default_rng(0)
    out = []
    for _ in frames:
        xy = rng.uniform(0, 200, (1, 2))
        out.append(np.hstack([xy, xy + 80]).astype(np.float32))
    return out


def test_measured_run_scores_the_detector_and_the_gate_as_run_live(scene):
    from faceopt.detection import experiments as ex
    from faceopt.detection.metrics import mean_average_precision

    split, frames, cache = scene
    gt = _gt(frames)
    run = ex.measured_run(split, frames, gt, layer=6, threshold=0.3, alpha=0.9, resamples=20)
    alone = list(zip(cache.boxes, cache.scores))  # the full detector's output, cached frame by frame
    assert run["map_amphibian"] == pytest.approx(mean_average_precision(_live(split, frames, 6, 0.3), gt))
    assert run["map_detector"] == pytest.approx(mean_average_precision(alone, gt))
    assert run["saving"] == pytest.approx(1 - run["s_per_frame_amphibian"] / run["s_per_frame_detector"])
    assert run["map_gain_stderr"] >= 0 and run["saving_stderr"] > 0


def test_gate_grid_rows_are_replays(scene):
    from faceopt.detection import experiments as ex
    from faceopt.detection.metrics import mean_average_precision

    _, frames, cache = scene
    gt = _gt(frames)
    times = StageTimes(prepare=1.0, until={3: 2.0, 6: 4.0}, rest={3: 8.0, 6: 6.0}, decode=0.5, gate={3: 0.1, 6: 0.1})
    rows = ex.gate_grid(cache, gt, (3, 6), (0.1, 0.5), 0.9, times)
    assert [(r["layer"], r["threshold"]) for r in rows] == [(3, 0.1), (3, 0.5), (6, 0.1), (6, 0.5)]
    for r in rows:
        replay = replay_gate(cache, r["layer"], r["threshold"], 0.9)
        assert r["mAP"] == mean_average_precision(replay.predictions, gt)
        assert r["static share"] == pytest.approx(replay.static.mean())
        assert r["ms per frame"] == pytest.approx(1e3 * times.frame_time(r["layer"], r["static share"]))


def test_best_versus_pixel_compares_each_at_its_best(scene):
    from faceopt.detection import experiments as ex

    _, frames, cache = scene
    gt = _gt(frames)
    gate_rows = ex.gate_grid(cache, gt, (3, 6), (0.1, 0.5), 0.9)
    pixel_rows = ex.pixel_sweep(cache, gt, (100.0, 2000.0), 0.9)
    out = ex.best_versus_pixel(cache, gt, gate_rows, pixel_rows, 0.9, resamples=20)
    best_gate, best_pixel = max(gate_rows, key=lambda r: r["mAP"]), max(pixel_rows, key=lambda r: r["mAP"])
    assert (out["m"], out["lambda"], out["pixel_threshold"]) == (best_gate["layer"], best_gate["threshold"],
                                                                 best_pixel["threshold"])
    assert (out["map_amphibian_best"], out["map_pixel_l2_best"]) == (best_gate["mAP"], best_pixel["mAP"])
    assert out["gain_stderr"] >= 0
