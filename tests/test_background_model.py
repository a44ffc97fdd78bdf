"""The cosine background model: hand-computed Diff maps, the gate, the update, the box filter."""
from __future__ import annotations

import math

import pytest
import torch

from faceopt.detection.background import (
    CosineBackgroundModel,
    box_cells,
    box_motion,
    cosine_difference,
    keep_moving_boxes,
)


def _map(vectors):
    """[H][W][C] nested lists -> [C, H, W] tensor."""
    return torch.tensor(vectors, dtype=torch.float32).permute(2, 0, 1)


def test_cosine_difference_by_hand():
    bg = _map([[[1, 0], [1, 0]], [[1, 1], [0, 1]]])
    fm = _map([[[2, 0], [0, 1]], [[-1, -1], [1, 1]]])
    diff = cosine_difference(bg, fm)
    expected = torch.tensor([[0.0, 1.0], [2.0, 1 - 1 / math.sqrt(2)]])
    assert torch.allclose(diff, expected, atol=1e-6)
    clipped = cosine_difference(bg, fm, clip_cosine=True)  # the author's code: cosine clipped at 0
    assert clipped[1, 0].item() == pytest.approx(1.0)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        cosine_difference(torch.ones(2, 3, 3), torch.ones(2, 3, 4))


def test_gate_is_strict_and_updates_only_static_frames():
    model = CosineBackgroundModel(threshold=0.5, alpha=0.75)
    ref = _map([[[1.0, 0.0]]])
    model.reset(ref)
    # angle of 45 degrees: Diff = 1 - cos(45) = 0.2929 < 0.5 -> static, update
    frame = _map([[[1.0, 1.0]]])
    diff, static = model.observe(frame)
    assert static and diff.item() == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)
    assert torch.allclose(model.background[:, 0, 0], torch.tensor([0.75 + 0.25, 0.25]))
    # orthogonal to the new background direction (1, 0.25): Diff = 1 -> moving, no update
    before = model.background.clone()
    diff, static = model.observe(_map([[[-0.25, 1.0]]]))
    assert not static and diff.item() == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(model.background, before)


def test_threshold_equal_to_max_diff_is_not_static():
    model = CosineBackgroundModel(threshold=1.0, alpha=0.5)
    model.reset(_map([[[1.0, 0.0]]]))
    _, static = model.observe(_map([[[0.0, 1.0]]]))  # Diff exactly 1
    assert not static


def test_alpha_one_keeps_reference_and_alpha_zero_follows_last_static_frame():
    keep = CosineBackgroundModel(threshold=2.1, alpha=1.0)
    follow = CosineBackgroundModel(threshold=2.1, alpha=0.0)
    ref, new = _map([[[1.0, 0.0]]]), _map([[[0.0, 3.0]]])
    for m in (keep, follow):
        m.reset(ref)
        m.observe(new)
    assert torch.equal(keep.background, ref)
    assert torch.equal(follow.background, new)


def test_first_frame_becomes_reference_and_size_change_reinitialises():
    model = CosineBackgroundModel(threshold=0.3, alpha=0.9)
    diff, static = model.observe(torch.ones(4, 2, 3))
    assert static and diff.shape == (2, 3)
    with pytest.warns(UserWarning, match="re-initialised"):
        diff, static = model.observe(torch.ones(4, 3, 3))
    assert not static and model.background.shape == (4, 3, 3)


def test_bad_parameters_and_missing_reference():
    with pytest.raises(ValueError, match="alpha"):
        CosineBackgroundModel(threshold=0.3, alpha=1.5)
    with pytest.raises(RuntimeError, match="reset"):
        CosineBackgroundModel(threshold=0.3, alpha=0.5).difference(torch.ones(1, 2, 2))


def test_box_cells_mapping():
    # 4 x 8 grid: x scales by 8, y by 4
    assert box_cells([0.0, 0.0, 1.0, 1.0], 4, 8) == (0, 4, 0, 8)
    assert box_cells([0.25, 0.5, 0.5, 0.75], 4, 8) == (2, 3, 2, 4)
    assert box_cells([0.26, 0.51, 0.27, 0.52], 4, 8) == (2, 3, 2, 3)  # tiny box: one cell
    assert box_cells([0.99, 0.99, 1.2, 1.3], 4, 8) == (3, 4, 7, 8)  # clipped to the grid


def test_box_motion_and_filter():
    diff = torch.zeros(4, 4)
    diff[0:2, 0:2] = 0.8  # motion in the top-left quarter
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 1.0, 0.5]])
    motion = box_motion(diff, boxes)
    assert torch.allclose(motion, torch.tensor([0.8, 0.0, 0.4]))
    assert keep_moving_boxes(diff, boxes, 0.4).tolist() == [True, False, True]
    assert keep_moving_boxes(diff, boxes, 0.41).tolist() == [True, False, False]
