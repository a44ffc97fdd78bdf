"""Hand-computed checks for CombinedMarginLoss and MarginDistillation margins."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from faceopt.recognition.distill import margin_distillation_margins
from faceopt.recognition.losses import CombinedMarginLoss

COS = torch.tensor([[0.6, 0.2, -0.1], [0.1, 0.8, 0.3]], dtype=torch.float64)
LAB = torch.tensor([0, 1])


def _ce(logits: list[float], t: int) -> float:
    return -logits[t] + math.log(sum(math.exp(z) for z in logits))


def test_arcface_hand_computed() -> None:
    s, m = 64.0, 0.5
    t0 = math.cos(math.acos(0.6) + m)
    t1 = math.cos(math.acos(0.8) + m)
    expected = (_ce([s * t0, s * 0.2, s * -0.1], 0) + _ce([s * 0.1, s * t1, s * 0.3], 1)) / 2
    loss = CombinedMarginLoss(s, 1.0, m, 0.0)(COS, LAB)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_combined_hand_computed() -> None:
    s, m1, m2, m3 = 10.0, 1.2, 0.3, 0.1
    t0 = math.cos(m1 * math.acos(0.6) + m2) - m3
    t1 = math.cos(m1 * math.acos(0.8) + m2) - m3
    expected = (_ce([s * t0, s * 0.2, s * -0.1], 0) + _ce([s * 0.1, s * t1, s * 0.3], 1)) / 2
    loss = CombinedMarginLoss(s, m1, m2, m3)(COS, LAB)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_zero_margin_is_softmax_ce() -> None:
    loss = CombinedMarginLoss(1.0, 1.0, 0.0, 0.0)(COS, LAB)
    assert loss.item() == pytest.approx(F.cross_entropy(COS, LAB).item(), rel=1e-9)


def test_cosface_subtracts_s_m3() -> None:
    s, m3 = 30.0, 0.35
    logits = CombinedMarginLoss(s, 1.0, 0.0, m3).margin_logits(COS, LAB)
    expected = s * COS.clone()
    expected[0, 0] -= s * m3
    expected[1, 1] -= s * m3
    torch.testing.assert_close(logits, expected, rtol=1e-9, atol=1e-9)


def test_gradcheck_float64() -> None:
    x = COS.clone().requires_grad_(True)
    for m in [(8.0, 1.0, 0.5, 0.0), (8.0, 1.0, 0.0, 0.35), (4.0, 1.3, 0.2, 0.1)]:
        crit = CombinedMarginLoss(*m)
        assert torch.autograd.gradcheck(lambda c: crit(c, LAB), (x,))


def test_guard_branch_near_pi() -> None:
    m = 0.5
    c = torch.tensor([[-0.999, 0.3], [-0.95, 0.1]], dtype=torch.float64, requires_grad=True)
    lab = torch.tensor([0, 0])
    crit = CombinedMarginLoss(2.0, 1.0, m, 0.0)
    logits = crit.margin_logits(c, lab)
    # theta + m > pi for both -> cos(theta) - m * sin(pi - m)
    for i, v in enumerate([-0.999, -0.95]):
        assert math.acos(v) + m > math.pi
        assert logits[i, 0].item() == pytest.approx(2.0 * (v - m * math.sin(math.pi - m)), rel=1e-12)
    loss = crit(c, lab)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(c.grad).all()
    # clamped at exactly -1 as well
    edge = crit(torch.tensor([[-1.0, 1.0]], dtype=torch.float64, requires_grad=True), torch.tensor([0]))
    assert torch.isfinite(edge)


def test_per_sample_margins_match_scalar() -> None:
    crit = CombinedMarginLoss(16.0, 1.0, 0.4, 0.0)
    a = crit(COS, LAB)
    b = CombinedMarginLoss(16.0, 1.0, 0.0, 0.0)(COS, LAB, margins=torch.full((2,), 0.4, dtype=torch.float64))
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_per_sample_margins_hand_computed() -> None:
    s = 4.0
    t0 = math.cos(math.acos(0.6) + 0.2)
    t1 = math.cos(math.acos(0.8) + 0.5)
    expected = (_ce([s * t0, s * 0.2, s * -0.1], 0) + _ce([s * 0.1, s * t1, s * 0.3], 1)) / 2
    loss = CombinedMarginLoss(s, 1.0, 0.5, 0.0)(COS, LAB, margins=torch.tensor([0.2, 0.5], dtype=torch.float64))
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_bad_margin_shape() -> None:
    with pytest.raises(ValueError):
        CombinedMarginLoss(1.0, 1.0, 0.5, 0.0)(COS, LAB, margins=torch.zeros(3))


def test_margin_distillation_hand_computed() -> None:
    a = torch.tensor([0.8, 0.4, 0.0, -0.2], dtype=torch.float64)
    m = margin_distillation_margins(a)
    # (0.5-0.2)/0.8 * a + 0.2
    expected = [0.5, 0.2 + 0.375 * 0.4, 0.2, 0.2 - 0.375 * 0.2]
    torch.testing.assert_close(m, torch.tensor(expected, dtype=torch.float64))
    m2 = margin_distillation_margins(torch.tensor([0.5, 0.25]), m_min=0.1, m_max=0.3)
    torch.testing.assert_close(m2, torch.tensor([0.3, 0.2]))


@pytest.mark.parametrize("bad", [[0.0, -0.1], [-0.3], [], [[0.5]], [float("nan"), 0.5]])
def test_margin_distillation_invalid(bad: list) -> None:
    with pytest.raises(ValueError):
        margin_distillation_margins(torch.tensor(bad))
