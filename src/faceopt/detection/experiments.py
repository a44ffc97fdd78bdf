"""Grid experiments of chapter 2 without re-running the detector for every setting.

The expensive parts of AmphibianDetector do not depend on the threshold: the feature
map at layer m of every frame and the detector's boxes on every frame. We compute them
once (:func:`cache_scene`) and replay the gate, the background update and the box
filter for each (m, lambda) (:func:`replay_gate`). A test checks that the replay gives
exactly what the live :class:`~faceopt.detection.amphibian.AmphibianDetector` gives.

Mean frame time over a grid is *modelled* from per-stage times measured on the same
frames: ``t(m) = t_prepare + t_until(m) + t_gate + (1 - static share) * (t_from(m) + t_decode)``.
The headline comparison (gate against detector alone) is measured directly in one run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..progress import progress
from .amphibian import PixelGate, SplitDetector
from .background import CosineBackgroundModel, keep_moving_boxes

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

    frames: int
    visits: int
    layers: tuple[int, ...]
    thresholds: tuple[float, ...]
    pixel_thresholds: tuple[float, ...]
    alpha: float
    time_frames: int
    time_repeats: int
    pedestrian_frames: int = 30             # consecutive frames from 398 (the detector's held-out half)
    pedestrian_layers: tuple[int, ...] = (1, 4, 7, 10, 14, 19)


PRESETS: dict[str, AmphibianPreset] = {
    "smoke": AmphibianPreset(frames=60, visits=2, layers=(1, 3, 6, 9, 12, 17),
                             thresholds=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0),
                             pixel_thresholds=(0, 500, 1000, 1500, 2000, 2500), alpha=0.9, time_frames=4,
                             time_repeats=2),
    "full": AmphibianPreset(frames=300, visits=4, layers=tuple(range(1, 18)),
                            thresholds=tuple(round(0.05 * i, 2) for i in range(21)),
                            pixel_thresholds=(0, 250, 500, 750, 1000, 1500, 2000, 2500), alpha=0.9,
                            time_frames=30, time_repeats=3, pedestrian_frames=150,  # the cached maps of 397 frames x 19 blocks
                            pedestrian_layers=(1, 2, 3, 4, 5, 7, 9, 11, 14, 17, 19)),  # need ~18 GB
}


def gate_grid(cache: SceneCache, gt: Sequence[np.ndarray], layers: Iterable[int], thresholds: Iterable[float],
              alpha: float, times: StageTimes | None = None) -> list[dict]:
    """mAP@0.5, share of early exits and (if ``times``) modelled mean frame time for every (m, lambda)."""
    from .metrics import mean_average_precision

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


def pixel_sweep(cache: SceneCache, gt: Sequence[np.ndarray], thresholds: Iterable[float], alpha: float) -> list[dict]:
    """mAP@0.5 and early-exit share of the pixel-space baseline for each threshold."""
    from .metrics import mean_average_precision

    rows = []
    for thr in thresholds:
        replay = replay_pixel_gate(cache, thr, alpha)
        rows.append({"threshold": thr, "mAP": mean_average_precision(replay.predictions, gt),
                     "static share": float(replay.static.mean())})
    return rows


def measured_run(detector: SplitDetector, frames: Sequence[np.ndarray], gt: Sequence[np.ndarray], *, layer: int,
                 threshold: float, alpha: float, resamples: int = 200, seed: int = 0) -> dict[str, float]:
    """The detector alone and AmphibianDetector on the same frames, timed in one run (alternating frames).

    Besides both mAPs and mean frame times: bootstrap standard errors over frames of the mAP gain
    (``map_gain_stderr``) and of the share of time saved (``saving``, ``saving_stderr``).
    """
    from faceopt.stats import bootstrap_stderr

    from .amphibian import AmphibianDetector
    from .metrics import map_difference_stderr, mean_average_precision

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


def best_versus_pixel(cache: SceneCache, gt: Sequence[np.ndarray], gate_rows: Sequence[Mapping[str, Any]],
                      pixel_rows: Sequence[Mapping[str, Any]], alpha: float, *, resamples: int = 200,
                      seed: int = 0) -> dict[str, float]:
    """AmphibianDetector and the pixel-space baseline, each at the best setting of its own sweep
    (rows of :func:`gate_grid` and :func:`pixel_sweep`): both mAPs, the settings, and the bootstrap
    standard error over frames of the difference (``gain_stderr``)."""
    from .metrics import map_difference_stderr

    gate = max(gate_rows, key=lambda r: r["mAP"])
    pixel = max(pixel_rows, key=lambda r: r["mAP"])
    ours = replay_gate(cache, int(gate["layer"]), float(gate["threshold"]), alpha).predictions
    theirs = replay_pixel_gate(cache, float(pixel["threshold"]), alpha).predictions
    return {"map_amphibian_best": float(gate["mAP"]), "map_pixel_l2_best": float(pixel["mAP"]),
            "m": int(gate["layer"]), "lambda": float(gate["threshold"]), "pixel_threshold": float(pixel["threshold"]),
            "gain_stderr": map_difference_stderr(ours, theirs, gt, resamples=resamples, seed=seed)}


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


def choose_setting(grid: pd.DataFrame, per_stage: Sequence[int], head: int, *, tolerance: float = 0.02
                   ) -> tuple[pd.Series, pd.Series]:
    """The best-mAP row of a :func:`gate_grid` table and the chosen one: among the rows within
    ``tolerance`` of the best mAP, the lowest expected cost (:func:`expected_macs`).

    Adds an ``expected MMACs`` column to ``grid`` (in place). Ties go to the earlier layer,
    then the lower threshold.
    """
    grid["expected MMACs"] = [expected_macs(per_stage, head, int(r.layer), r["static share"]) / 1e6
                              for _, r in grid.iterrows()]
    best = grid.sort_values(["mAP", "layer", "threshold"], ascending=[False, True, True]).iloc[0]
    good = grid[grid["mAP"] >= (1.0 - tolerance) * best["mAP"]]
    return best, good.sort_values(["expected MMACs", "layer", "threshold"]).iloc[0]
