"""Split-detector adapters: a registry detector as an AmphibianDetector backbone.

``run_until`` computes only the first ``m`` stages; ``run_from`` computes the rest, so
an early exit saves exactly the stages after ``m`` and the heads.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from faceopt.detection import blazeface as bf


@dataclass
class StageState:
    """Outputs of the stages run so far; ``features`` is the last one, [1, C, H, W]."""

    outputs: list[torch.Tensor]

    @property
    def features(self) -> torch.Tensor:
        return self.outputs[-1]


class StagedNet(Protocol):
    """What :class:`StageSplit` runs: :class:`~faceopt.detection.blazeface.BlazeFace` or
    :class:`~faceopt.detection.blazepose.BlazePose`."""

    stages: torch.nn.ModuleList
    anchors: torch.Tensor

    @property
    def num_layers(self) -> int: ...

    def features(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]: ...

    def head(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]: ...


class StageSplit:
    """Shared running part of the staged registry detectors: ``net.stages``, ``net.features(x, upto)``
    and ``net.head(stage_outputs)``. Subclasses add ``prepare`` and ``decode``."""

    net: StagedNet

    @property
    def num_layers(self) -> int:
        return self.net.num_layers

    def run_until(self, x: torch.Tensor, layer: int) -> StageState:
        return StageState(self.net.features(x, upto=layer))

    def run_from(self, state: StageState, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = list(state.outputs)
        if len(outputs) != layer:
            raise ValueError(f"state holds {len(outputs)} stage outputs, not {layer}")
        x = outputs[-1]
        for stage in self.net.stages[layer:]:
            x = stage(x)
            outputs.append(x)
        return self.net.head(outputs)


class BlazeFaceSplit(StageSplit):
    """BlazeFace (17 stages) as a :class:`~faceopt.detection.amphibian.SplitDetector`.

    Layer ``m`` means "after stage m" (1 = the stem, 17 = the whole backbone); boxes
    are returned in frame pixels and, for the motion filter, normalised to the
    128x128 network input (letterbox included), the grid the feature maps cover.
    """

    def __init__(self, net: bf.BlazeFace | None = None, *, score_threshold: float = 0.5) -> None:
        self.net = (net or bf.BlazeFace.from_tflite()).eval()
        self.score_threshold = score_threshold

    def prepare(self, frame_bgr: np.ndarray) -> tuple[torch.Tensor, bf.Letterbox]:
        return bf.preprocess(frame_bgr, color="bgr")

    def decode(self, raw: tuple[torch.Tensor, torch.Tensor], geometry: bf.Letterbox
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        reg, cls = raw
        boxes_px, scores, _ = bf.postprocess(reg[0], cls[0], self.net.anchors, None,
                                             score_threshold=self.score_threshold)
        normalised = boxes_px / bf.INPUT_SIZE
        in_frame = geometry.to_image(normalised.reshape(-1, 2, 2)).reshape(-1, 4)
        return in_frame, scores, normalised.astype(np.float32)
