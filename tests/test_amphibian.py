"""AmphibianDetector on a fake split detector: real early exit, gate, and box filter by hand."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from faceopt.detection.amphibian import AmphibianDetector, PixelGate


@dataclass
class State:
    features: torch.Tensor
    x: torch.Tensor


class CountingDetector:
    """Layers are 2x2 average pools over an 16x16 image; counts how many layers really ran.

    ``decode`` always proposes two boxes: the top-left quarter and the bottom-right quarter.
    """

    num_layers = 3

    def __init__(self):
        self.layers_run = 0
        self.finished = 0

    def prepare(self, frame):
        x = torch.as_tensor(frame, dtype=torch.float32).permute(2, 0, 1)[None] / 255.0 + 0.1
        return x, frame.shape[:2]

    def _layer(self, x):
        self.layers_run += 1
        return torch.nn.functional.avg_pool2d(x, 2)

    def run_until(self, x, layer):
        for _ in range(layer):
            x = self._layer(x)
        return State(features=x, x=x)

    def run_from(self, state, layer):
        x = state.x
        for _ in range(layer, self.num_layers):
            x = self._layer(x)
        self.finished += 1
        return x

    def decode(self, raw, geometry):
        h, w = geometry
        norm = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]], np.float32)
        return norm * [w, h, w, h], np.array([0.9, 0.8], np.float32), norm


def _frame(moving: bool) -> np.ndarray:
    frame = np.zeros((16, 16, 3), np.uint8)
    frame[..., 0] = 100
    if moving:
        frame[0:8, 0:8] = (0, 200, 0)  # the colour direction changes in the top-left quarter only
    return frame


def test_static_frame_stops_after_layer_m():
    det = CountingDetector()
    amph = AmphibianDetector(det, layer=1, threshold=0.2, alpha=0.9)
    amph.reset(_frame(False))
    det.layers_run = 0
    boxes, scores = amph.process(_frame(False))
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    assert det.layers_run == 1 and det.finished == 0  # the rest of the network never ran
    assert amph.stats.static == [True]


def test_moving_frame_keeps_only_the_box_over_motion():
    det = CountingDetector()
    amph = AmphibianDetector(det, layer=1, threshold=0.2, alpha=0.9)
    amph.reset(_frame(False))
    boxes, scores = amph.process(_frame(True))
    assert det.finished == 1
    assert boxes.tolist() == [[0.0, 0.0, 8.0, 8.0]] and scores.tolist() == pytest.approx([0.9])
    assert amph.stats.static == [False]
    # a looser box threshold of 0 keeps the static box too
    loose = AmphibianDetector(CountingDetector(), layer=1, threshold=0.2, alpha=0.9, box_threshold=0.0)
    loose.reset(_frame(False))
    assert len(loose.process(_frame(True))[0]) == 2


def test_layer_outside_backbone_is_refused():
    with pytest.raises(ValueError, match=r"1\.\.3"):
        AmphibianDetector(CountingDetector(), layer=4, threshold=0.3, alpha=0.9)
    with pytest.raises(ValueError, match=r"1\.\.3"):
        AmphibianDetector(CountingDetector(), layer=0, threshold=0.3, alpha=0.9)


def test_pixel_gate_by_hand():
    gate = PixelGate(threshold=500.0, alpha=0.5)
    ref = np.zeros((4, 4, 3), np.uint8)
    diff, static = gate.observe(ref)
    assert static and diff.max() == 0
    frame = ref.copy()
    frame[0, 0] = (10, 10, 10)  # squared L2 = 300 < 500: static, background moves halfway
    diff, static = gate.observe(frame)
    assert static and diff[0, 0] == 300
    assert gate.background[0, 0].tolist() == [5.0, 5.0, 5.0]
    frame[0, 0] = (25, 25, 25)  # (20^2) * 3 = 1200 >= 500: motion, no update
    diff, static = gate.observe(frame)
    assert not static and diff[0, 0] == 1200 and gate.background[0, 0].tolist() == [5.0, 5.0, 5.0]
    keep = gate.filter(diff, np.array([[0, 0, 1, 1], [2, 2, 4, 4]], np.float32))
    assert keep.tolist() == [True, False]
    diff, static = gate.observe(np.zeros((5, 5, 3), np.uint8))  # size change: re-initialised, moving
    assert not static
