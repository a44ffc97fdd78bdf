"""Grid experiments of thesis Chapter 2 (page 03) without re-running the detector for every setting.

The expensive parts of AmphibianDetector do not depend on the threshold: the feature
map at layer m of every frame and the detector's boxes on every frame. We compute them
once (:func:`cache_scene`) and replay the gate, the background update and the box
filter for each (m, lambda) (:func:`replay_gate`). A test checks that the replay gives
exactly what the live :class:`~faceopt.detection.amphibian.AmphibianDetector` gives.

Mean frame time over a grid is *modelled* from per-stage times measured on the same
frames: ``t(m) = t_prepare + t_until(m) + t_gate + (1 - static share) * (t_from(m) + t_decode)``.
The headline comparison (gate against detector alone) is measured directly in one run.

:func:`study_scene` is the chapter's protocol for one scene: every setting is searched on
*tuning* frames and scored on other, *test* frames, and both gates get the same number of
settings.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import torch

from faceopt.detection.amphibian import AmphibianDetector, PixelGate, SplitDetector
from faceopt.detection.background import CosineBackgroundModel, keep_moving_boxes
from faceopt.detection.metrics import map_difference_stderr, mean_average_precision
from faceopt.progress import progress
from faceopt.stats import bootstrap_stderr

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class SceneCache:
    """Per-frame detections of the whole detector and the feature maps at the chosen layers."""

    boxes: list[np.ndarray]  # frame pixels
    scores: list[np.ndarray]
    normalised: list[np.ndarray]  # boxes on the network input, 0..1
    features: dict[int, torch.Tensor]  # layer -> [T, C, H, W]
    frames: list[np.ndarray]


def cache_scene(detector: SplitDetector, frames: Sequence[np.ndarray], layers: Iterable[int]) -> SceneCache:
    """Run the detector once per frame, keeping its detections and the feature maps at ``layers``.

    The detector's state must keep every stage output in ``outputs`` (as
    :class:`~faceopt.detection.split.StageState` does), so one pass yields all layers.
    """
    layers = sorted(set(layers))
    feats: dict[int, list[torch.Tensor]] = {m: [] for m in layers}
    boxes, scores, norm = [], [], []
    deepest = max(layers)
    with torch.inference_mode():
        for frame in progress(frames, desc="detector"):
            x, geometry = detector.prepare(frame)
            state = detector.run_until(x, deepest)
            for m in layers:
                feats[m].append(state.outputs[m - 1][0].clone())
            b, s, n = detector.decode(detector.run_from(state, deepest), geometry)
            boxes.append(b)
            scores.append(s)
            norm.append(n)
    return SceneCache(boxes, scores, norm, {m: torch.stack(v) for m, v in feats.items()}, list(frames))


@dataclass
class Replay:
    """Predictions per frame and which frames exited early."""

    predictions: list[tuple[np.ndarray, np.ndarray]]
    static: np.ndarray


def replay_gate(cache: SceneCache, layer: int, threshold: float, alpha: float, *,
                box_threshold: float | None = None, clip_cosine: bool = False) -> Replay:
    """What AmphibianDetector(layer, threshold, alpha) returns on the cached scene; frame 0 is the reference."""
    box_threshold = threshold if box_threshold is None else box_threshold
    maps = cache.features[layer]
    model = CosineBackgroundModel(threshold, alpha, clip_cosine=clip_cosine)
    model.reset(maps[0])
    preds, static = [], []
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    for t in range(len(maps)):
        diff, is_static = model.observe(maps[t])
        static.append(is_static)
        if is_static or not len(cache.boxes[t]):
            preds.append(empty)
            continue
        keep = keep_moving_boxes(diff, torch.as_tensor(cache.normalised[t]), box_threshold).numpy()
        preds.append((cache.boxes[t][keep], cache.scores[t][keep]))
    return Replay(preds, np.asarray(static))


def replay_pixel_gate(cache: SceneCache, threshold: float, alpha: float) -> Replay:
    """The pixel-space baseline on the cached scene (squared L2 per pixel, same gate and filter)."""
    gate = PixelGate(threshold, alpha)
    gate.observe(cache.frames[0])
    preds, static = [], []
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    for t, frame in enumerate(cache.frames):
        diff, is_static = gate.observe(frame)
        static.append(is_static)
        if is_static or not len(cache.boxes[t]):
            preds.append(empty)
            continue
        keep = gate.filter(diff, cache.boxes[t])
        preds.append((cache.boxes[t][keep], cache.scores[t][keep]))
    return Replay(preds, np.asarray(static))


@dataclass
class GateSnapshot:
    """What the live gate did on one frame: its Diff map, the boxes it kept and dropped."""

    diff: np.ndarray  # [H, W] Diff = 1 - cos at the gate's layer
    kept: np.ndarray  # [N, 4] frame pixels
    dropped: np.ndarray  # [K, 4] boxes of the detector alone that the gate removed
    static: bool


def gate_snapshots(amph: AmphibianDetector, frames: Sequence[np.ndarray], detector_boxes: Sequence[np.ndarray],
                   show: Iterable[int]) -> dict[int, GateSnapshot]:
    """Run ``amph`` live over ``frames`` (from a reset on frame 0) and keep a snapshot of the frames in ``show``.

    ``detector_boxes[t]`` are the boxes of the detector alone on frame ``t`` (a
    :class:`SceneCache`'s ``boxes``); those the gate does not return count as dropped.
    """
    wanted = set(show)
    amph.reset(frames[0])
    shots: dict[int, GateSnapshot] = {}
    for t, frame in enumerate(frames):
        kept, _ = amph.process(frame)
        if t in wanted and amph.last_diff is not None:
            static = amph.stats.static[-1]
            alone = np.zeros((0, 4)) if static else detector_boxes[t]
            dropped = np.array([b for b in alone if not any(np.allclose(b, k) for k in kept)]).reshape(-1, 4)
            shots[t] = GateSnapshot(amph.last_diff.numpy(), kept, dropped, static)
    return shots


@dataclass(frozen=True)
class StageTimes:
    """Measured seconds per frame: preprocessing, layers 1..m, the rest, decoding, and the gate at m."""

    prepare: float
    until: dict[int, float]
    rest: dict[int, float]
    decode: float
    gate: dict[int, float]

    def frame_time(self, layer: int, static_share: float) -> float:
        """Modelled mean frame time of AmphibianDetector at ``layer`` with this share of static frames."""
        return (self.prepare + self.until[layer] + self.gate[layer]
                + (1.0 - static_share) * (self.rest[layer] + self.decode))

    @property
    def detector_alone(self) -> float:
        m = max(self.until)
        return self.prepare + self.until[m] + self.rest[m] + self.decode


def measure_stage_times(detector: SplitDetector, frames: Sequence[np.ndarray], layers: Iterable[int], *,
                        repeats: int = 3) -> StageTimes:
    """Median seconds of each part of the detector on ``frames`` (the best of ``repeats`` passes per frame)."""
    layers = sorted(set(layers))

    def best(fn) -> float:
        out = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
        return min(out)

    prep, dec = [], []
    until: dict[int, list[float]] = {m: [] for m in layers}
    rest: dict[int, list[float]] = {m: [] for m in layers}
    gate: dict[int, list[float]] = {m: [] for m in layers}
    with torch.inference_mode():
        for frame in frames:
            prep.append(best(lambda: detector.prepare(frame)))
            x, geometry = detector.prepare(frame)
            for m in layers:
                until[m].append(best(lambda: detector.run_until(x, m)))
                state = detector.run_until(x, m)
                rest[m].append(best(lambda: detector.run_from(state, m)))
                fmap = state.features[0]
                model = CosineBackgroundModel(0.5, 0.9)
                model.reset(fmap)
                gate[m].append(best(lambda: model.difference(fmap).max()))
            raw = detector.run_from(detector.run_until(x, max(layers)), max(layers))
            dec.append(best(lambda: detector.decode(raw, geometry)))
    med = lambda v: float(np.median(v))  # noqa: E731
    return StageTimes(med(prep), {m: med(v) for m, v in until.items()}, {m: med(v) for m, v in rest.items()},
                      med(dec), {m: med(v) for m, v in gate.items()})


# ----------------------------------------------------------------------------- chapter driver
@dataclass(frozen=True)
class AmphibianPreset:
    """Sizes of the chapter's experiments at one scale."""

    frames: int                             # door phone: frames of the test scene and of the tuning scene
    visits: int
    layers: tuple[int, ...]
    thresholds: tuple[float, ...]
    alpha: float
    time_frames: int
    time_repeats: int
    pedestrian_frames: int = 30             # test: consecutive frames from 398 (the detector's held-out half);
    pedestrian_layers: tuple[int, ...] = (1, 4, 7, 10, 14, 19)   # tuning: as many right after them

    def pedestrian_split(self, first: int = 398) -> tuple[list[int], list[int]]:
        """vtest.avi frame indices of the tuning block and of the test block."""
        n = self.pedestrian_frames
        return list(range(first + n, first + 2 * n)), list(range(first, first + n))


#: The door-phone tuning scene is drawn with seed + this offset: same generator, other visits.
TUNING_SEED_OFFSET = 1000


PRESETS: dict[str, AmphibianPreset] = {
    "smoke": AmphibianPreset(frames=60, visits=2, layers=(1, 3, 6, 9, 12, 17),
                             thresholds=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0), alpha=0.9, time_frames=4,
                             time_repeats=2),
    "full": AmphibianPreset(frames=300, visits=4, layers=tuple(range(1, 18)),
                            thresholds=tuple(round(0.05 * i, 2) for i in range(21)),
                            alpha=0.9, time_frames=30, time_repeats=3,
                            pedestrian_frames=150,  # x 2 of the 397 held-out frames: the cached maps of 150 frames
                            pedestrian_layers=(1, 2, 3, 4, 5, 7, 9, 11, 14, 17, 19)),  # x 11 blocks take ~4 GB
}


def gate_grid(cache: SceneCache, gt: Sequence[np.ndarray], layers: Iterable[int], thresholds: Iterable[float],
              alpha: float, times: StageTimes | None = None) -> list[dict]:
    """mAP@0.5, share of early exits and (if ``times``) modelled mean frame time for every (m, lambda)."""

    rows = []
    jobs = [(m, lam) for m in layers for lam in thresholds]
    for m, lam in progress(jobs, desc="grid"):
        replay = replay_gate(cache, m, lam, alpha)
        row = {"layer": m, "threshold": lam, "mAP": mean_average_precision(replay.predictions, gt),
               "static share": float(replay.static.mean())}
        if times is not None:
            row["ms per frame"] = 1e3 * times.frame_time(m, row["static share"])
        rows.append(row)
    return rows


def replay_pixel_sweep(cache: SceneCache, thresholds: Sequence[float], alpha: float) -> list[Replay]:
    """:func:`replay_pixel_gate` for every threshold in one pass over the frames.

    Thresholds whose gates have made the same static/moving decisions so far share one
    background, so the per-pixel distance is computed once per group and frame; a group
    splits when a frame is static for some of its thresholds and moving for others. Each
    threshold's arithmetic is the single gate's, so the results are identical to
    :func:`replay_pixel_gate` (a test checks this).
    """
    thresholds = [float(t) for t in thresholds]
    n = len(thresholds)
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    preds: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n)]
    static = np.zeros((n, len(cache.frames)), bool)
    # frame 0 is the reference, then it is observed like every frame (as replay_pixel_gate does)
    groups: list[tuple[np.ndarray, list[int]]] = [(cache.frames[0].astype(np.float32), list(range(n)))]
    for t, frame in enumerate(cache.frames):
        current = frame.astype(np.float32)
        next_groups = []
        for background, members in groups:
            diff = ((current - background) ** 2).sum(axis=2)
            peak = diff.max()
            still = [k for k in members if peak < thresholds[k]]
            moving = [k for k in members if not peak < thresholds[k]]
            if still:
                next_groups.append((alpha * background + (1.0 - alpha) * current, still))
            if moving:
                next_groups.append((background, moving))
            for k in still:
                static[k, t] = True
                preds[k].append(empty)
            if moving:
                h, w = diff.shape
                boxes = cache.boxes[t]
                norm = torch.as_tensor(boxes, dtype=torch.float32) / torch.tensor([w, h, w, h], dtype=torch.float32)
                tdiff = torch.as_tensor(diff)
                for k in moving:
                    if not len(boxes):
                        preds[k].append(empty)
                        continue
                    keep = keep_moving_boxes(tdiff, norm, thresholds[k]).numpy()
                    preds[k].append((boxes[keep], cache.scores[t][keep]))
        groups = next_groups
    return [Replay(preds[k], static[k]) for k in range(n)]


def pixel_sweep(cache: SceneCache, gt: Sequence[np.ndarray], thresholds: Iterable[float], alpha: float) -> list[dict]:
    """mAP@0.5 and early-exit share of the pixel-space baseline for each threshold."""

    thresholds = list(thresholds)
    replays = replay_pixel_sweep(cache, thresholds, alpha)
    return [{"threshold": thr, "mAP": mean_average_precision(r.predictions, gt), "static share": float(r.static.mean())}
            for thr, r in zip(thresholds, progress(replays, desc="pixel sweep"))]


def measured_run(detector: SplitDetector, frames: Sequence[np.ndarray], gt: Sequence[np.ndarray], *, layer: int,
                 threshold: float, alpha: float, resamples: int = 200, seed: int = 0) -> dict[str, float]:
    """The detector alone and AmphibianDetector on the same frames, timed in one run (alternating frames).

    Besides both mAPs and mean frame times: bootstrap standard errors over frames of the mAP gain
    (``map_gain_stderr``) and of the share of time saved (``saving``, ``saving_stderr``).
    """

    amph = AmphibianDetector(detector, layer, threshold, alpha)
    amph.reset(frames[0])
    alone, gated, t_alone, t_gated = [], [], [], []
    with torch.inference_mode():
        for frame in frames:
            start = time.perf_counter()
            x, geometry = detector.prepare(frame)
            state = detector.run_until(x, detector.num_layers)
            b, s, _ = detector.decode(detector.run_from(state, detector.num_layers), geometry)
            t_alone.append(time.perf_counter() - start)
            alone.append((b, s))
            gated.append(amph.process(frame))
            t_gated.append(amph.stats.seconds[-1])
    ta, tg = np.asarray(t_alone), np.asarray(t_gated)
    return {"map_detector": mean_average_precision(alone, gt), "map_amphibian": mean_average_precision(gated, gt),
            "map_gain_stderr": map_difference_stderr(gated, alone, gt, resamples=resamples, seed=seed),
            "s_per_frame_detector": float(ta.mean()), "s_per_frame_amphibian": float(tg.mean()),
            "saving": float(1 - tg.mean() / ta.mean()),
            "saving_stderr": bootstrap_stderr(lambda i: 1 - tg[i].mean() / ta[i].mean(), len(ta),
                                              resamples=resamples, seed=seed),
            "static_share": amph.stats.static_share}


#: Largest squared L2 distance of two BGR pixels of 0..255 frames: beyond it every frame is static.
MAX_PIXEL_DISTANCE = 3 * 255.0 ** 2


def extend_pixel_thresholds(cache: SceneCache, gt: Sequence[np.ndarray], alpha: float, *, budget: int,
                            start: float = 2500.0, tolerance: float = 0.02) -> tuple[float, ...]:
    """``budget`` evenly spaced pixel thresholds from 0 to where the pixel gate's mAP has fallen.

    The end doubles from ``start`` until the mAP at the end is more than ``tolerance``
    (relative) below the best mAP seen at the probes so far, or reaches
    :data:`MAX_PIXEL_DISTANCE`. The grid then gives the baseline as many settings as the
    feature-map gate gets (``budget``), over a range that contains its peak and its fall.
    """

    if budget < 2:
        raise ValueError(f"budget must be >= 2 thresholds, got {budget}")
    best, end = -1.0, float(start)
    while True:
        value = mean_average_precision(replay_pixel_gate(cache, end, alpha).predictions, gt)
        best = max(best, value)
        if value < (1.0 - tolerance) * best or end >= MAX_PIXEL_DISTANCE:
            break
        end = min(2.0 * end, MAX_PIXEL_DISTANCE)
    return tuple(float(t) for t in np.linspace(0.0, end, budget))


def score_versus_pixel(cache: SceneCache, gt: Sequence[np.ndarray], *, layer: int, threshold: float,
                       pixel_threshold: float, alpha: float, resamples: int = 200, seed: int = 0) -> dict[str, float]:
    """AmphibianDetector at (``layer``, ``threshold``) against the pixel-space gate at
    ``pixel_threshold``, both scored on ``cache``'s frames (settings chosen elsewhere): both
    mAPs, the settings, and the bootstrap standard error over frames of the difference."""

    ours = replay_gate(cache, layer, threshold, alpha).predictions
    theirs = replay_pixel_gate(cache, pixel_threshold, alpha).predictions
    return {"map_amphibian": mean_average_precision(ours, gt), "map_pixel_l2": mean_average_precision(theirs, gt),
            "m": int(layer), "lambda": float(threshold), "pixel_threshold": float(pixel_threshold),
            "gain_stderr": map_difference_stderr(ours, theirs, gt, resamples=resamples, seed=seed)}


@dataclass
class SceneStudy:
    """One scene's study: settings searched on tuning frames, scored on test frames.

    ``grid`` (every (m, lambda): mAP, early exits, modelled ms per frame) and ``pixel``
    (the baseline's thresholds) are measured on the tuning frames, as are ``times``;
    ``best`` is the grid's best-mAP row, ``chosen`` the row :func:`choose_setting` picks
    (cheapest modelled time near the best mAP), ``pixel_best`` the baseline's best row.
    ``versus_pixel`` scores ``best`` against ``pixel_best`` and ``run`` measures the
    detector alone against ``chosen`` (:func:`measured_run`), both on the test frames;
    ``candidates`` are the grid rows ``chosen`` was picked from (within the tolerance of
    the best tuning mAP) with their ``test mAP``: how much the choice among them matters.
    ``test_cache`` holds the test frames' detections and maps at the layers used.
    """

    grid: pd.DataFrame
    pixel: pd.DataFrame
    best: pd.Series
    chosen: pd.Series
    pixel_best: pd.Series
    times: StageTimes
    versus_pixel: dict[str, float]
    run: dict[str, float]
    map_alone_tuning: float
    test_cache: SceneCache
    candidates: pd.DataFrame

    @property
    def chosen_setting(self) -> tuple[int, float]:
        return int(self.chosen["layer"]), float(self.chosen["threshold"])


def study_scene(detector: SplitDetector, tuning: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
                test: tuple[Sequence[np.ndarray], Sequence[np.ndarray]], *, layers: Sequence[int],
                thresholds: Sequence[float], alpha: float, time_frames: int, time_repeats: int,
                tolerance: float = 0.02, resamples: int = 200, seed: int = 0) -> SceneStudy:
    """Search (m, lambda) and the pixel threshold on ``tuning`` (frames, ground truth), then
    score the chosen settings on ``test``: the chapter's protocol, once per scene.

    The feature-map gate gets ``len(layers) * len(thresholds)`` settings and the pixel gate as
    many thresholds (:func:`extend_pixel_thresholds`), so neither method has the larger search.
    """
    import pandas as pd


    tune_frames, tune_gt = tuning
    test_frames, test_gt = test
    cache = cache_scene(detector, tune_frames, layers)
    times = measure_stage_times(detector, tune_frames[:time_frames], layers, repeats=time_repeats)
    grid = pd.DataFrame(gate_grid(cache, tune_gt, layers, thresholds, alpha, times))
    best, chosen = choose_setting(grid, tolerance=tolerance)
    candidates = grid[grid["mAP"] >= (1.0 - tolerance) * best["mAP"]].drop(columns="ms per frame")
    budget = len(grid)
    cache.features.clear()   # the pixel gate needs frames and boxes only; the maps are large
    pixel = pd.DataFrame(pixel_sweep(cache, tune_gt, extend_pixel_thresholds(cache, tune_gt, alpha, budget=budget),
                                     alpha))
    pixel_best = pixel.sort_values(["mAP", "threshold"], ascending=[False, True]).iloc[0]
    map_alone_tuning = mean_average_precision(list(zip(cache.boxes, cache.scores)), tune_gt)
    del cache
    test_cache = cache_scene(detector, test_frames, {int(m) for m in candidates["layer"]} | {int(best["layer"])})
    candidates = candidates.assign(**{"test mAP": [
        mean_average_precision(replay_gate(test_cache, int(r.layer), float(r.threshold), alpha).predictions, test_gt)
        for r in candidates.itertuples()]})
    versus = score_versus_pixel(test_cache, test_gt, layer=int(best["layer"]), threshold=float(best["threshold"]),
                                pixel_threshold=float(pixel_best["threshold"]), alpha=alpha, resamples=resamples,
                                seed=seed)
    run = measured_run(detector, test_frames, test_gt, layer=int(chosen["layer"]), threshold=float(chosen["threshold"]),
                       alpha=alpha, resamples=resamples, seed=seed)
    candidates = candidates.rename(columns={"mAP": "tuning mAP", "static share": "tuning early exits"})
    return SceneStudy(grid, pixel, best, chosen, pixel_best, times, versus, run, map_alone_tuning, test_cache,
                      candidates.reset_index(drop=True))


def stage_macs(detector, example: np.ndarray) -> tuple[list[int], int]:
    """Multiply-accumulates of each backbone stage and of everything after the backbone, on one frame.

    A deterministic cost model (counted by ``FlopCounterMode``, 2 FLOPs per MAC) that the
    chapter uses to choose a setting without depending on noisy timings.
    """
    from torch.utils.flop_counter import FlopCounterMode

    if hasattr(detector, "stage_macs"):  # detectors that count their own stages (SSD-MobileNetV2)
        return detector.stage_macs(example)
    x, _ = detector.prepare(example)
    per_stage = []
    with torch.inference_mode():
        outputs = []
        for stage in detector.net.stages:
            with FlopCounterMode(display=False) as counter:
                x = stage(x)
            outputs.append(x)
            per_stage.append(counter.get_total_flops() // 2)
        with FlopCounterMode(display=False) as counter:
            detector.net.head(outputs)
    return per_stage, counter.get_total_flops() // 2


def expected_macs(per_stage: Sequence[int], head: int, layer: int, static_share: float) -> float:
    """MACs per frame when frames stop after ``layer`` with probability ``static_share``."""
    return sum(per_stage[:layer]) + (1.0 - static_share) * (sum(per_stage[layer:]) + head)


def choose_setting(grid: pd.DataFrame, *, tolerance: float = 0.02, time_band: float = 0.10
                   ) -> tuple[pd.Series, pd.Series]:
    """The best-mAP row of a :func:`gate_grid` table and the chosen one: among the rows within
    ``tolerance`` (relative) of the best mAP, the fastest by modelled ``ms per frame``.

    The modelled time comes from measured stage times and includes the gate's own cost
    (:meth:`StageTimes.frame_time`), so an early split whose cosine map is expensive is
    not chosen for its few multiply-accumulates. A timer is noisy (another process, another
    processor), so rows within ``time_band`` (relative) of the fastest count as equally fast,
    and among them the earliest layer, then the lowest threshold, is taken.
    """
    if "ms per frame" not in grid:
        raise ValueError("choose_setting needs the grid's 'ms per frame' column: pass measured StageTimes to gate_grid")
    best = grid.sort_values(["mAP", "layer", "threshold"], ascending=[False, True, True]).iloc[0]
    good = grid[grid["mAP"] >= (1.0 - tolerance) * best["mAP"]]
    fast = good[good["ms per frame"] <= (1.0 + time_band) * good["ms per frame"].min()]
    return best, fast.sort_values(["layer", "threshold"]).iloc[0]
