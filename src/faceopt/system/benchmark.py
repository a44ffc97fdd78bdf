"""Benchmarks of the system (thesis Chapter 4): time per frame against the frame's resolution (Table 9).

A benchmark measures; it asserts nothing. Ratios come from one run on one machine, with the
machine's own absolute times beside them (``faceopt bench system --json FILE``).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

from faceopt.system.pipeline import FacePipeline

#: The thesis's Table 9 inputs, rows x columns.
TABLE9_SIZES: tuple[tuple[int, int], ...] = ((480, 720), (960, 1440), (1600, 2400), (3000, 4500))


def frame_of_size(photo_bgr: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``photo_bgr`` scaled to the frame's height and centred on a grey ``rows`` x ``cols`` frame, so the face
    takes the same share of every frame (wider frames get grey margins, taller ones a cropped photo)."""
    scale = rows / photo_bgr.shape[0]
    width = max(1, round(photo_bgr.shape[1] * scale))
    scaled = cv2.resize(photo_bgr, (width, rows), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    frame = np.full((rows, cols, 3), 128, np.uint8)
    if width <= cols:
        x0 = (cols - width) // 2
        frame[:, x0:x0 + width] = scaled
    else:
        x0 = (width - cols) // 2
        frame[:] = scaled[:, x0:x0 + cols]
    return frame


def resolution_times(pipeline: FacePipeline, photo_bgr: np.ndarray, sizes: Sequence[tuple[int, int]] = TABLE9_SIZES,
                     *, repeats: int = 10, warmup: int = 2) -> list[dict]:
    """Median milliseconds per frame of detect, align and embed (one face) at each frame size (with the
    quartiles of the total), interleaved over sizes so that drifts of the machine hit every size alike;
    decoding the image is not included."""
    frames = {size: frame_of_size(photo_bgr, *size) for size in sizes}
    for frame in frames.values():
        for _ in range(warmup):
            pipeline.process(frame, max_faces=1)
    times: dict[tuple[int, int], list[tuple[float, float, float, int]]] = {size: [] for size in sizes}
    for _ in range(repeats):
        for size, frame in frames.items():
            start = time.perf_counter()
            pipeline.process(frame, max_faces=1)
            total = time.perf_counter() - start
            s = pipeline.last
            times[size].append((total, s.detect, s.align + s.embed, s.faces))
    rows: list[dict] = []
    for (r, c), samples in times.items():
        q25, _, q75 = statistics.quantiles([t[0] for t in samples], n=4) if len(samples) > 1 else (samples[0][0],) * 3
        rows.append({"frame": f"{r}x{c}", "megapixels": r * c / 1e6,
                     "total_ms": 1e3 * statistics.median(t[0] for t in samples),
                     "total_p25_ms": 1e3 * q25, "total_p75_ms": 1e3 * q75,
                     "detect_ms": 1e3 * statistics.median(t[1] for t in samples),
                     "align_embed_ms": 1e3 * statistics.median(t[2] for t in samples),
                     "faces": min(t[3] for t in samples), "repeats": repeats})
    base = float(rows[0]["total_ms"])
    for row in rows:
        row["ratio_to_smallest"] = float(row["total_ms"]) / base
    return rows


def time_per_image(systems: Mapping[str, Callable[[np.ndarray], object]], images: Sequence[np.ndarray], *,
                   repeats: int = 5, warmup: int = 1) -> list[dict]:
    """Median and quartile milliseconds per image of each system (a callable taking one BGR image: detect,
    align, embed), interleaved over systems and images so that drifts of the machine hit all alike (thesis
    Table 10: time per image of the proposed system beside others, measured side by side in one run)."""
    if repeats < 1 or warmup < 0 or not images or not systems:
        raise ValueError("time_per_image needs systems, images, repeats >= 1 and warmup >= 0")
    for run in systems.values():
        for _ in range(warmup):
            run(images[0])
    samples: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(repeats):
        for image in images:
            for name, run in systems.items():
                start = time.perf_counter()
                run(image)
                samples[name].append(1e3 * (time.perf_counter() - start))
    rows = []
    for name, ms in samples.items():
        q25, q50, q75 = statistics.quantiles(ms, n=4) if len(ms) > 1 else (ms[0],) * 3
        rows.append({"system": name, "median_ms": statistics.median(ms), "p25_ms": q25, "p75_ms": q75, "n": len(ms)})
    return rows
