"""How much page 05 measures at each scale (the trainings' own settings are :data:`faceopt.system.tier_runs.PRESETS`)."""
from __future__ import annotations

from dataclasses import dataclass

from faceopt.models import MODEL_NAMES

__all__ = ["SystemPreset", "PRESETS"]


@dataclass(frozen=True)
class SystemPreset:
    """Page 05's measurement sizes."""

    name: str
    crops_per_photo: int          # jittered aligned crops per real photo, for calibration and again for parity
    latency_repeats: int          # timed calls per model form and thread count
    latency_warmup: int
    resolution_repeats: int       # timed frames per Table 9 size
    zoo: tuple[str, ...]          # zoo embedders checked for ONNX parity
    video_frames: int = 150       # frames of the door-phone clip (15 per second)
    video_every: int = 3          # recognition looks at every N-th frame
    search_rows: int = 1_000_000  # gallery rows of the 1:N search benchmark (512-d)
    search_queries: int = 64
    # latency budgets for the tier rule, as fractions of tier S's INT8 latency on the machine that runs the page
    budget_fractions: tuple[float, ...] = (0.25, 0.5, 0.8, 1.0)


PRESETS: dict[str, SystemPreset] = {
    "smoke": SystemPreset("smoke", crops_per_photo=4, latency_repeats=5, latency_warmup=2, resolution_repeats=3,
                          zoo=("mobilefacenet", "mobilefacenet_relu512"), video_every=5, search_rows=20_000,
                          search_queries=16),
    "full": SystemPreset("full", crops_per_photo=32, latency_repeats=50, latency_warmup=10, resolution_repeats=20,
                         zoo=MODEL_NAMES),
}
