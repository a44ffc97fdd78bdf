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


def test_choose_setting_takes_the_fastest_modelled_time_within_tolerance():
    import pandas as pd

    from faceopt.detection import experiments as ex

    # the time model with a gate that costs more than the first stage (as measured at m=1)
    times = StageTimes(prepare=0.0, until={1: 1.0, 2: 4.0}, rest={1: 9.0, 2: 6.0}, decode=0.0, gate={1: 3.0, 2: 0.2})
    rows = [{"layer": m, "threshold": lam, "mAP": mAP, "static share": s}
            for m, lam, mAP, s in [(1, 0.1, 1.00, 0.5), (2, 0.1, 0.99, 0.5), (2, 0.2, 0.95, 0.9)]]
    for r in rows:
        r["ms per frame"] = times.frame_time(r["layer"], r["static share"])
    grid = pd.DataFrame(rows)
    # modelled: (1) 1 + 3 + 0.5 * 9 = 8.5, (2) 4 + 0.2 + 0.5 * 6 = 7.2, (3) 4 + 0.2 + 0.1 * 6 = 4.8 (mAP too low)
    assert grid["ms per frame"].tolist() == pytest.approx([8.5, 7.2, 4.8])
    best, chosen = ex.choose_setting(grid)
    assert int(best["layer"]) == 1 and (int(chosen["layer"]), chosen["threshold"]) == (2, 0.1)  # 8.5 > 1.1 * 7.2
    _, chosen = ex.choose_setting(grid, tolerance=0.06)
    assert chosen["threshold"] == 0.2
    # within the time band the timer cannot tell them apart: the earlier layer is taken
    _, chosen = ex.choose_setting(grid, time_band=0.2)
    assert int(chosen["layer"]) == 1
    # without the gate's cost row 1 would be the fastest by far (what a count of MACs sees)
    assert StageTimes(0.0, {1: 1.0, 2: 4.0}, {1: 9.0, 2: 6.0}, 0.0, {1: 0.0, 2: 0.0}).frame_time(1, 0.5) < 7.2
    with pytest.raises(ValueError, match="ms per frame"):
        ex.choose_setting(grid.drop(columns="ms per frame"))


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


def test_score_versus_pixel_scores_the_given_settings(scene):
    from faceopt.detection import experiments as ex
    from faceopt.detection.metrics import map_difference_stderr, mean_average_precision

    _, frames, cache = scene
    gt = _gt(frames)
    out = ex.score_versus_pixel(cache, gt, layer=6, threshold=0.3, pixel_threshold=2000.0, alpha=0.9, resamples=20)
    ours = replay_gate(cache, 6, 0.3, 0.9).predictions
    theirs = replay_pixel_gate(cache, 2000.0, 0.9).predictions
    assert out["map_amphibian"] == mean_average_precision(ours, gt)
    assert out["map_pixel_l2"] == mean_average_precision(theirs, gt)
    assert (out["m"], out["lambda"], out["pixel_threshold"]) == (6, 0.3, 2000.0)
    assert out["gain_stderr"] == map_difference_stderr(ours, theirs, gt, resamples=20, seed=0)


def test_pixel_sweep_in_one_pass_equals_one_replay_per_threshold(scene):
    from faceopt.detection import experiments as ex

    _, frames, cache = scene
    thresholds = [0.0, 50.0, 500.0, 2000.0, 2e4, ex.MAX_PIXEL_DISTANCE]
    for thr, r in zip(thresholds, ex.replay_pixel_sweep(cache, thresholds, 0.9)):
        single = replay_pixel_gate(cache, thr, 0.9)
        assert r.static.tolist() == single.static.tolist()
        for (b, s), (b1, s1) in zip(r.predictions, single.predictions):
            assert np.array_equal(b, b1) and np.array_equal(s, s1)


def test_pixel_thresholds_extend_until_the_map_falls(scene, monkeypatch):
    from faceopt.detection import experiments as ex

    _, frames, cache = scene
    gt = _gt(frames)
    # a fake pixel gate whose mAP is flat to 10,000 and falls after: probes 2500, 5000, 10000, 20000
    probes = []

    def fake_replay(cache_, threshold, alpha):
        probes.append(threshold)
        return ex.Replay([(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))] * len(frames), np.zeros(len(frames)))

    monkeypatch.setattr(ex, "replay_pixel_gate", fake_replay)
    monkeypatch.setattr(ex, "mean_average_precision", lambda preds, gt_: 0.8 if probes[-1] <= 10_000 else 0.5)
    out = ex.extend_pixel_thresholds(cache, gt, 0.9, budget=5)
    assert probes == [2500.0, 5000.0, 10_000.0, 20_000.0]
    assert out == (0.0, 5000.0, 10_000.0, 15_000.0, 20_000.0)
    probes.clear()
    monkeypatch.setattr(ex, "mean_average_precision", lambda preds, gt_: 0.8)   # never falls: stops at the cap
    assert ex.extend_pixel_thresholds(cache, gt, 0.9, budget=3)[-1] == ex.MAX_PIXEL_DISTANCE
    with pytest.raises(ValueError, match="budget"):
        ex.extend_pixel_thresholds(cache, gt, 0.9, budget=1)


def test_study_scene_chooses_on_tuning_frames_and_scores_on_test_frames(scene):
    """The protocol: every setting comes from the tuning frames; every score from the test frames."""
    from faceopt.detection import experiments as ex
    from faceopt.detection.metrics import mean_average_precision

    split, frames, _ = scene
    tune, test = frames[:10], frames[10:]
    gt = _gt(frames)
    study = ex.study_scene(split, (tune, gt[:10]), (test, gt[10:]), layers=(3, 6), thresholds=(0.1, 0.5), alpha=0.9,
                           time_frames=2, time_repeats=1, resamples=10)
    assert len(study.grid) == len(study.pixel) == 4                       # the same search budget
    tune_cache = ex.cache_scene(split, tune, (3, 6))
    for _, r in study.grid.iterrows():                                   # the grid is measured on the tuning frames
        assert r["mAP"] == mean_average_precision(replay_gate(tune_cache, int(r.layer), r.threshold, 0.9).predictions,
                                                  gt[:10])
    m, lam = study.chosen_setting
    assert study.run["map_amphibian"] == pytest.approx(mean_average_precision(_live(split, test, m, lam), gt[10:]))
    assert len(study.test_cache.frames) == len(test)
    v = study.versus_pixel
    assert (v["m"], v["lambda"]) == (int(study.best["layer"]), float(study.best["threshold"]))
    assert v["pixel_threshold"] == float(study.pixel_best["threshold"])
    cand = study.candidates                      # the rows the choice was made from, scored on the test frames
    assert (study.chosen_setting[0], study.chosen_setting[1]) in set(zip(cand["layer"], cand["threshold"]))
    assert (cand["tuning mAP"] >= 0.98 * study.best["mAP"]).all()
    test_cache = ex.cache_scene(split, test, set(cand["layer"]))
    for r in cand.itertuples():
        assert r[cand.columns.get_loc("test mAP") + 1] == mean_average_precision(
            replay_gate(test_cache, int(r.layer), r.threshold, 0.9).predictions, gt[10:])




def test_gate_versus_pixel_draws_the_chosen_layer_and_the_pixel_sweep():
    from types import SimpleNamespace

    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    from faceopt.detection.figures import gate_versus_pixel

    grid = pd.DataFrame({"layer": [1, 1, 2, 2], "threshold": [0.1, 0.2, 0.1, 0.2], "mAP": [0.5, 0.6, 0.7, 0.8],
                         "ms per frame": [3.0, 2.5, 2.0, 1.5]})
    pixel = pd.DataFrame({"threshold": [0.0, 5000.0], "mAP": [0.4, 0.9]})
    study = SimpleNamespace(grid=grid, pixel=pixel, chosen_setting=(2, 0.1), map_alone_tuning=0.45,
                            times=StageTimes(0.0, {2: 1.0}, {2: 1.0}, 0.0, {2: 0.0}))
    fig = gate_versus_pixel(study, "gate", "pixel", time_panel=True)
    gate_ax, pixel_ax, time_ax = fig.axes
    assert list(gate_ax.lines[0].get_ydata()) == [0.7, 0.8]          # layer 2 only
    assert list(pixel_ax.lines[0].get_xdata()) == [0.0, 5000.0]
    assert list(time_ax.lines[0].get_ydata()) == [2.0, 1.5]
    assert gate_ax.get_shared_y_axes().joined(gate_ax, pixel_ax)
    assert len(gate_versus_pixel(study, "gate", "pixel").axes) == 2


def test_gate_snapshots_are_what_the_live_gate_keeps_and_drops(scene):
    from faceopt.detection.experiments import gate_snapshots

    split, frames, cache = scene
    replay = replay_gate(cache, 6, 0.3, 0.9)
    show = [0, 5, len(frames) - 1]
    shots = gate_snapshots(AmphibianDetector(split, layer=6, threshold=0.3, alpha=0.9), frames, cache.boxes, show)
    assert sorted(shots) == show
    for t in show:
        np.testing.assert_allclose(shots[t].kept, replay.predictions[t][0], atol=1e-4)
        assert shots[t].static == replay.static[t]
        assert shots[t].diff.ndim == 2 and shots[t].diff.min() > -1e-5  # 1 - cos, up to rounding
        alone = 0 if shots[t].static else len(cache.boxes[t])
        assert len(shots[t].kept) + len(shots[t].dropped) == alone  # every box of the detector alone is one or the other
