"""Hand-computed checks of the generic distillation losses (thesis section 1.3)."""
import math

import pytest
import torch
from torch.nn import functional as F

from faceopt.compress.distill import (
    EnsembleTeacher,
    HintRegressor,
    ensemble_kd_loss,
    ensemble_probabilities,
    hint_loss,
    kd_loss,
    logit_regression_loss,
    noisy_teacher_logits,
    rkd_angle_loss,
    rkd_distance_loss,
    softened_probabilities,
)

D64 = torch.float64


def _huber(x: float, delta: float = 1.0) -> float:
    return 0.5 * x * x / delta if abs(x) < delta else abs(x) - 0.5 * delta


# ---------------------------------------------------------------- softened probabilities and KD


def test_softened_probabilities_hand_case() -> None:
    z = torch.tensor([[0.0, math.log(3.0)]], dtype=D64)
    assert softened_probabilities(z, 1.0)[0].tolist() == pytest.approx([0.25, 0.75], rel=1e-12)
    r3 = math.sqrt(3.0)
    assert softened_probabilities(z, 2.0)[0].tolist() == pytest.approx([1 / (1 + r3), r3 / (1 + r3)], rel=1e-12)
    flat = softened_probabilities(torch.tensor([[5.0, -3.0, 1.0]], dtype=D64), 1e6)[0]
    assert flat.tolist() == pytest.approx([1 / 3] * 3, abs=1e-5)


def test_kd_loss_two_class_hand_case() -> None:
    T = 2.0
    student = torch.tensor([[0.0, 0.0], [0.0, 0.0]], dtype=D64)
    teacher = torch.tensor([[0.0, 2 * math.log(3.0)], [0.0, 0.0]], dtype=D64)
    # row 1: q_t = (1/4, 3/4), q_s = (1/2, 1/2); row 2: identical distributions, KL 0
    kl_row1 = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kd_loss(student, teacher, T).item() == pytest.approx(T**2 * (kl_row1 + 0.0) / 2, rel=1e-12)


def test_kd_loss_direction_is_kl_teacher_to_student() -> None:
    """KL(p_t || q_s), not KL(q_s || p_t): the two differ on this case."""
    s = torch.tensor([[0.0, math.log(9.0)]], dtype=D64)  # q_s = (0.1, 0.9)
    t = torch.tensor([[0.0, math.log(1.0 / 3.0)]], dtype=D64)  # p_t = (0.75, 0.25)
    forward = 0.75 * math.log(0.75 / 0.1) + 0.25 * math.log(0.25 / 0.9)
    reverse = 0.1 * math.log(0.1 / 0.75) + 0.9 * math.log(0.9 / 0.25)
    assert abs(forward - reverse) > 0.1
    assert kd_loss(s, t, 1.0).item() == pytest.approx(forward, rel=1e-12)


@pytest.mark.parametrize("T", [1.0, 3.0, 20.0])
def test_kd_loss_agrees_with_torch_kl_div(T: float) -> None:
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(7, 5, generator=g, dtype=D64) * 3, torch.randn(7, 5, generator=g, dtype=D64) * 3
    ref = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T**2
    assert kd_loss(s, t, T).item() == pytest.approx(ref.item(), rel=1e-10)


def test_kd_loss_zero_for_equal_logits_and_positive_otherwise() -> None:
    z = torch.tensor([[1.0, -2.0, 0.5]], dtype=D64)
    assert kd_loss(z, z.clone(), 4.0).item() == pytest.approx(0.0, abs=1e-14)
    assert kd_loss(z + torch.tensor([0.0, 1.0, 0.0], dtype=D64), z, 4.0).item() > 0
    # adding a constant to a row changes no probability
    assert kd_loss(z + 7.0, z, 4.0).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("T", [1.0, 4.0, 32.0])
def test_kd_loss_gradient_is_t_times_probability_difference(T: float) -> None:
    g = torch.Generator().manual_seed(1)
    s = torch.randn(4, 6, generator=g, dtype=D64).requires_grad_()
    t = torch.randn(4, 6, generator=g, dtype=D64)
    kd_loss(s, t, T).backward()
    q_s, q_t = F.softmax(s.detach() / T, 1), F.softmax(t / T, 1)
    expected = (q_s - q_t) / T * T**2 / len(s)
    assert torch.allclose(s.grad, expected, rtol=1e-10, atol=1e-14)


def test_kd_loss_gradient_size_settles_for_large_t() -> None:
    """With T**2 the gradient tends to (z_s - z_t) / (C N) (zero-mean logits): about the same for T = 50 and 500."""
    g = torch.Generator().manual_seed(2)
    s0 = torch.randn(3, 4, generator=g, dtype=D64)
    t = torch.randn(3, 4, generator=g, dtype=D64)
    s0, t = s0 - s0.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    grads = []
    for T in (50.0, 500.0):
        s = s0.clone().requires_grad_()
        kd_loss(s, t, T).backward()
        grads.append(s.grad)
    limit = (s0 - t) / (4 * 3)
    assert torch.allclose(grads[1], limit, rtol=1e-2, atol=1e-6)
    assert grads[0].norm().item() == pytest.approx(grads[1].norm().item(), rel=0.05)
    # without the T**2 factor the gradient would be 100 times smaller at T = 500 than at T = 50
    assert grads[0].norm().item() / grads[1].norm().item() < 1.1


def test_kd_loss_gradcheck() -> None:
    g = torch.Generator().manual_seed(3)
    s = torch.randn(3, 4, generator=g, dtype=D64).requires_grad_()
    t = torch.randn(3, 4, generator=g, dtype=D64)
    assert torch.autograd.gradcheck(lambda x: kd_loss(x, t, 2.5), (s,))


def test_kd_loss_detaches_the_teacher() -> None:
    s = torch.randn(2, 3, requires_grad=True)
    t = torch.randn(2, 3, requires_grad=True)
    kd_loss(s, t, 2.0).backward()
    assert t.grad is None and s.grad is not None


@pytest.mark.parametrize("T", [0.0, -1.0, float("nan"), float("inf")])
def test_kd_loss_rejects_bad_temperature(T: float) -> None:
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), T)
    with pytest.raises(ValueError, match="temperature"):
        softened_probabilities(torch.zeros(2, 3), T)


@pytest.mark.parametrize("s,t", [((2, 3), (2, 4)), ((3,), (3,)), ((2, 3), (3, 3)), ((0, 3), (0, 3)), ((2, 1), (2, 1))])
def test_kd_loss_rejects_bad_shapes(s: tuple, t: tuple) -> None:
    with pytest.raises(ValueError):
        kd_loss(torch.zeros(s), torch.zeros(t), 2.0)


# ---------------------------------------------------------------- logit regression


def test_logit_regression_hand_case() -> None:
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=D64, requires_grad=True)
    t = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=D64)
    loss = logit_regression_loss(s, t)
    assert loss.item() == pytest.approx((5.0 + 2.0) / (2 * 2), rel=1e-12)
    loss.backward()
    assert torch.allclose(s.grad, (s.detach() - t) / 2)
    with pytest.raises(ValueError):
        logit_regression_loss(torch.zeros(2, 3), torch.zeros(2, 2))


# ---------------------------------------------------------------- FitNets hints


def test_hint_regressor_shapes() -> None:
    x = torch.randn(2, 16, 4, 4)
    assert HintRegressor(16, 64)(x).shape == (2, 64, 4, 4)
    assert HintRegressor(16, 64)(x, (4, 4)).shape == (2, 64, 4, 4)
    assert HintRegressor(16, 64)(x, (2, 2)).shape == (2, 64, 2, 2)
    assert HintRegressor(16, 64)(x, (8, 8)).shape == (2, 64, 8, 8)
    assert HintRegressor(16, 64, batch_norm=True)(x, (2, 2)).shape == (2, 64, 2, 2)
    # a 1x1 conv: 16 * 64 weights and 64 biases (no bias before batch norm, which has 2 * 64 parameters)
    assert sum(p.numel() for p in HintRegressor(16, 64).parameters()) == 16 * 64 + 64
    assert sum(p.numel() for p in HintRegressor(16, 64, batch_norm=True).parameters()) == 16 * 64 + 2 * 64


def test_hint_regressor_pools_a_larger_map_by_averaging() -> None:
    torch.manual_seed(0)
    r = HintRegressor(3, 5)
    x = torch.randn(1, 3, 4, 4)
    assert torch.allclose(r(x, (2, 2)), F.avg_pool2d(r(x), 2), atol=1e-6)
    with pytest.raises(ValueError):
        r(torch.randn(1, 4, 4, 4))
    with pytest.raises(ValueError):
        HintRegressor(0, 3)


def test_hint_loss_hand_case() -> None:
    a = torch.zeros(1, 1, 1, 2, dtype=D64)
    b = torch.tensor([[[[1.0, 3.0]]]], dtype=D64)
    assert hint_loss(a, b).item() == pytest.approx(0.5 * (1 + 9) / 2, rel=1e-12)
    assert hint_loss(b, b).item() == 0.0
    with pytest.raises(ValueError, match="shape"):
        hint_loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 1, 1))


def test_hint_loss_trains_the_regressor_not_the_teacher() -> None:
    guided = torch.randn(2, 4, 3, 3, requires_grad=True)
    teacher = torch.randn(2, 6, 3, 3, requires_grad=True)
    r = HintRegressor(4, 6)
    hint_loss(r(guided), teacher).backward()
    assert teacher.grad is None and guided.grad is not None and r.conv.weight.grad is not None


# ---------------------------------------------------------------- relational KD


def _right_triangle() -> torch.Tensor:
    return torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=D64)


def test_rkd_distance_hand_case_on_three_points() -> None:
    s = _right_triangle()
    t = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]], dtype=D64)
    ds = [1.0, 1.0, math.sqrt(2.0)]  # pairs (0,1), (0,2), (1,2)
    dt = [2.0, 1.0, math.sqrt(5.0)]
    ms, mt = sum(ds) / 3, sum(dt) / 3
    expected = sum(_huber(a / ms - b / mt) for a, b in zip(ds, dt)) / 3
    assert rkd_distance_loss(s, t).item() == pytest.approx(expected, rel=1e-9)
    # a large difference reaches the linear part of the Huber loss
    far = torch.tensor([[0.0], [1.0], [100.0]], dtype=D64)
    dfar = [1.0, 100.0, 99.0]
    mf = sum(dfar) / 3
    expected_far = sum(_huber(a / ms - b / mf) for a, b in zip(ds, dfar)) / 3
    assert rkd_distance_loss(s, far).item() == pytest.approx(expected_far, rel=1e-9)


def test_rkd_angle_hand_case_on_three_points() -> None:
    s = _right_triangle()  # angles 90, 45, 45 degrees
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3.0) / 2]], dtype=D64)  # equilateral: 60 degrees
    cos_s = [0.0, math.sqrt(0.5), math.sqrt(0.5)]
    expected = sum(_huber(c - 0.5) for c in cos_s) / 3
    assert rkd_angle_loss(s, t).item() == pytest.approx(expected, rel=1e-9)


def test_rkd_losses_invariances() -> None:
    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(6, 5, generator=g, dtype=D64), torch.randn(6, 3, generator=g, dtype=D64)
    d = rkd_distance_loss(s, t).item()
    a = rkd_angle_loss(s, t).item()
    assert d > 0 and a > 0
    assert rkd_distance_loss(3.7 * s, 0.2 * t).item() == pytest.approx(d, rel=1e-9)
    assert rkd_distance_loss(s + 5.0, t).item() == pytest.approx(d, rel=1e-9)
    assert rkd_angle_loss(2.5 * s - 1.0, 0.3 * t + 4.0).item() == pytest.approx(a, rel=1e-9)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=D64))
    assert rkd_angle_loss(s @ q, t).item() == pytest.approx(a, rel=1e-9)
    # a scaled copy of the teacher has nothing left to learn
    assert rkd_distance_loss(4.0 * t, t).item() == pytest.approx(0.0, abs=1e-12)
    assert rkd_angle_loss(4.0 * t, t).item() == pytest.approx(0.0, abs=1e-12)


def test_rkd_losses_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="batches differ"):
        rkd_distance_loss(torch.randn(4, 2), torch.randn(5, 2))
    with pytest.raises(ValueError, match="at least 3"):
        rkd_angle_loss(torch.randn(2, 2), torch.randn(2, 2))
    with pytest.raises(ValueError, match="2-D"):
        rkd_distance_loss(torch.randn(4), torch.randn(4))


def test_rkd_losses_have_gradients_and_detach_the_teacher() -> None:
    s = torch.randn(5, 3, dtype=D64, requires_grad=True)
    t = torch.randn(5, 4, dtype=D64, requires_grad=True)
    (rkd_distance_loss(s, t) + rkd_angle_loss(s, t)).backward()
    assert t.grad is None and s.grad is not None and torch.isfinite(s.grad).all()


# ---------------------------------------------------------------- ensembles


def test_ensemble_logits_soften_to_the_mean_distribution() -> None:
    g = torch.Generator().manual_seed(5)
    zs = [torch.randn(4, 3, generator=g, dtype=D64) * 2 for _ in range(3)]
    T = 3.0
    mean_p = sum(F.softmax(z / T, 1) for z in zs) / 3
    assert torch.allclose(ensemble_probabilities(zs, T), mean_p)
    combined = EnsembleTeacher.combine(zs, T)
    assert torch.allclose(softened_probabilities(combined, T), mean_p, atol=1e-12)
    s = torch.randn(4, 3, generator=g, dtype=D64)
    assert ensemble_kd_loss(s, zs, T).item() == pytest.approx(kd_loss(s, combined, T).item(), rel=1e-10)
    # one teacher is plain KD; mode "logits" averages logits
    assert ensemble_kd_loss(s, zs[:1], T).item() == pytest.approx(kd_loss(s, zs[0], T).item(), rel=1e-10)
    assert torch.allclose(EnsembleTeacher.combine(zs, T, mode="logits"), (zs[0] + zs[1] + zs[2]) / 3)


def test_ensemble_teacher_module_and_switching() -> None:
    torch.manual_seed(0)
    models = [torch.nn.Linear(4, 3) for _ in range(3)]
    ens = EnsembleTeacher(models)
    x = torch.randn(5, 4)
    expected = EnsembleTeacher.combine([m(x) for m in models], 2.0)
    assert torch.allclose(ens.logits(x, 2.0), expected)
    assert torch.allclose(ens(x, 2.0), expected)
    picks = [ens.pick(torch.Generator().manual_seed(7)) for _ in range(2)]
    assert picks[0] is picks[1]
    drawn = {id(ens.pick(g)) for g in [torch.Generator().manual_seed(i) for i in range(30)]}
    assert len(drawn) == 3
    with pytest.raises(ValueError):
        EnsembleTeacher([])
    with pytest.raises(ValueError):
        EnsembleTeacher(models, mode="median")
    with pytest.raises(ValueError):
        ensemble_probabilities([torch.zeros(2, 3), torch.zeros(2, 4)], 1.0)


# ---------------------------------------------------------------- noisy teacher


def test_noisy_teacher_is_multiplicative_gaussian_noise() -> None:
    z = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], dtype=D64)
    sigma = 0.3
    xi = torch.randn(z.shape, generator=torch.Generator().manual_seed(9), dtype=D64) * sigma
    out = noisy_teacher_logits(z, sigma, torch.Generator().manual_seed(9))
    assert torch.allclose(out, z * (1 + xi))
    assert out[1, 1].item() == 0.0  # a zero logit stays zero: the noise is relative
    assert torch.equal(noisy_teacher_logits(z, 0.0, torch.Generator().manual_seed(1)), z)
    assert torch.equal(noisy_teacher_logits(z, 0.5, torch.Generator().manual_seed(1), fraction=0.0), z)


def test_noisy_teacher_statistics_and_fraction() -> None:
    z = torch.full((4000, 10), 2.0, dtype=D64)
    out = noisy_teacher_logits(z, 0.2, torch.Generator().manual_seed(0))
    ratio = out / z - 1
    assert ratio.mean().item() == pytest.approx(0.0, abs=0.01)
    assert ratio.std().item() == pytest.approx(0.2, rel=0.03)
    half = noisy_teacher_logits(z, 0.2, torch.Generator().manual_seed(0), fraction=0.5)
    untouched = (half == z).all(dim=1).double().mean().item()
    assert untouched == pytest.approx(0.5, abs=0.05)


def test_noisy_teacher_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        noisy_teacher_logits(torch.zeros(2, 3), -0.1)
    with pytest.raises(ValueError):
        noisy_teacher_logits(torch.zeros(2, 3), 0.1, fraction=1.5)
