"""Hand-computed checks for the cosine head and the Chapter 3 distillers."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from faceopt.recognition.distill import margin_distillation_margins
from faceopt.recognition.distillers import (
    DISTILLER_NAMES,
    AngularDistillation,
    MarginDistillation,
    MarginKD,
    TripletDistillation,
    make_distiller,
)
from faceopt.recognition.heads import FaceRecognizer, MarginHead
from faceopt.recognition.losses import CombinedMarginLoss

D64 = torch.float64


def _head(w: list[list[float]]) -> MarginHead:
    t = torch.tensor(w, dtype=D64)
    h = MarginHead(t.shape[1], t.shape[0]).double()
    with torch.no_grad():
        h.weight.copy_(t)
    return h


def _ce(logits: list[float], t: int) -> float:
    return -logits[t] + math.log(sum(math.exp(z) for z in logits))


def _arc(c: float, m: float) -> float:
    return math.cos(math.acos(c) + m)


# ---------------------------------------------------------------- MarginHead


def test_head_cosines_are_normalised_dot_products() -> None:
    h = _head([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    x = torch.tensor([[3.0, 4.0]], dtype=D64)
    got = h(x)[0].tolist()
    assert got == pytest.approx([0.6, 0.8, (0.6 + 0.8) / math.sqrt(2)], rel=1e-12)


def test_copy_centres_exact_and_freeze_survives_optimiser_step() -> None:
    torch.manual_seed(0)
    teacher, student = MarginHead(4, 3), MarginHead(4, 3)
    student.copy_centres_from(teacher, freeze=True)
    assert torch.equal(student.weight, teacher.weight) and not student.weight.requires_grad
    backbone = nn.Linear(5, 4)
    loss_fn = CombinedMarginLoss(64, 1, 0.5, 0)
    params = list(backbone.parameters()) + list(student.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
    w0, b0 = student.weight.detach().clone(), backbone.weight.detach().clone()
    loss_fn(student(backbone(torch.randn(6, 5))), torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    opt.step()
    assert torch.equal(student.weight, w0)
    assert not torch.equal(backbone.weight, b0)
    student.copy_centres_from(teacher, freeze=False)
    assert student.weight.requires_grad


@pytest.mark.parametrize("shape", [(4, 5), (3, 3)])
def test_copy_centres_mismatch_names_shapes(shape: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"do not match the student head.*\(3, 4\)") as e:
        MarginHead(4, 3).copy_centres_from(MarginHead(shape[0], shape[1]), freeze=True)
    assert str((shape[1], shape[0])) in str(e.value)


# ---------------------------------------------------------------- MarginDistillation


def test_margin_distillation_hand_case() -> None:
    th, sh = _head([[1.0, 0.0], [0.0, 1.0]]), _head([[0.0, 1.0], [1.0, 0.0]])
    md = MarginDistillation(sh, th)
    assert torch.equal(sh.weight, th.weight)
    t = torch.tensor([[1.8, 2.4], [2.4, 1.8]], dtype=D64)  # cos to centre 0: 0.6, 0.8
    y = torch.tensor([0, 0])
    m = md.margins(y, t)
    assert m.tolist() == pytest.approx([0.3 / 0.8 * 0.6 + 0.2, 0.5], rel=1e-12)
    x = torch.tensor([[0.6, 0.8], [0.28, 0.96]], dtype=D64)  # student cosines = rows
    exp = (_ce([64 * _arc(0.6, 0.425), 64 * 0.8], 0) + _ce([64 * _arc(0.28, 0.5), 64 * 0.96], 0)) / 2
    assert md(x, y, t).item() == pytest.approx(exp, rel=1e-9)
    assert torch.equal(m, margin_distillation_margins(torch.tensor([0.6, 0.8], dtype=D64)))


def test_margin_distillation_fixed_margin_is_arcface() -> None:
    torch.manual_seed(1)
    th, sh = MarginHead(8, 5).double(), MarginHead(8, 5).double()
    md = MarginDistillation(sh, th, adaptive_margin=False)
    x, y = torch.randn(6, 8, dtype=D64), torch.tensor([0, 1, 2, 3, 4, 0])
    ref = CombinedMarginLoss(64, 1, 0.5, 0)(sh(x), y)
    assert md(x, y, torch.randn(6, 8, dtype=D64)).item() == pytest.approx(ref.item(), rel=1e-12)
    assert md(x, y, None).item() == pytest.approx(ref.item(), rel=1e-12)


@pytest.mark.parametrize(
    "name,copy,mi,freeze",
    [
        ("margin_distillation", True, True, True),
        ("copy_mi_freeze", True, True, True),
        ("copy_mi", True, True, False),
        ("copy", True, False, False),
        ("mi", False, True, False),
        ("copy_freeze", True, False, True),
    ],
)
def test_ablation_switches(name: str, copy: bool, mi: bool, freeze: bool) -> None:
    torch.manual_seed(2)
    th, sh = MarginHead(4, 3), MarginHead(4, 3)
    w0 = sh.weight.detach().clone()
    d = make_distiller(name, sh, th)
    assert isinstance(d, MarginDistillation) and d.adaptive_margin is mi
    assert torch.equal(sh.weight, th.weight) is copy and torch.equal(sh.weight, w0) is not copy
    assert sh.weight.requires_grad is not freeze
    assert not th.weight.requires_grad


def test_factory_unknown_lists_names_and_builds_all() -> None:
    with pytest.raises(ValueError, match="copy_mi_freeze.*copy_freeze"):
        make_distiller("nope", MarginHead(4, 3), MarginHead(4, 3))
    assert len(DISTILLER_NAMES) == 11
    kd = make_distiller("margin_kd_t4", MarginHead(4, 3), MarginHead(4, 3))
    assert isinstance(kd, MarginKD) and kd.T == 4.0
    assert make_distiller("triplet_cos", MarginHead(4, 3)).distance == "cos"


# ---------------------------------------------------------------- Triplet


@pytest.mark.parametrize(
    "distance,expected", [("cos", (0.4 + 0.3 * 0.8 / 1.4) / 2), ("l2", (0.6 + 0.3 * 0.8 / 1.4) / 2)]
)
def test_triplet_hand_case(distance: str, expected: float) -> None:
    # student unit vectors (scaled): cos(0,1)=0.6, cos(0,2)=0, cos(1,2)=0.8
    s = torch.tensor([[2.0, 0.0], [0.6, 0.8], [0.0, 5.0]], dtype=D64)
    # teacher: cos(0,1)=0.8, cos(0,2)=-0.6, cos(1,2)=0
    t = torch.tensor([[1.0, 0.0], [0.8, 0.6], [-0.6, 0.8]], dtype=D64)
    y = torch.tensor([0, 0, 1])
    # cos distance: anchor0 (p1 0.4, n2 1.0), anchor1 (p0 0.4, n2 0.2); anchor2 has no positive.
    # teacher d = dT(a,n)-dT(a,p): a0 1.6-0.2=1.4, a1 1.0-0.2=0.8 -> m = 0.5, 0.2+0.3*0.8/1.4
    # cos: hinge0 = max(0, 0.4-1.0+0.5) = 0, hinge1 = 0.4-0.2+m1 = 0.4+0.3*0.8/1.4 -> mean
    # l2 (= 2x cos distance, margins scale-free): hinge0 = max(0, 0.8-2+0.5) = 0,
    #    hinge1 = 0.8-0.4+m1 = 0.6+0.3*0.8/1.4 -> mean
    got = TripletDistillation(distance)(s, y, t).item()
    assert got == pytest.approx(expected, rel=1e-9)


def test_triplet_batch_hard_picks_nearest_negative() -> None:
    s = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.8, 0.6]], dtype=D64)
    a, p, n = TripletDistillation("cos").triplets(s, torch.tensor([0, 0, 1, 2]))
    assert a.tolist() == [0, 1] and p.tolist() == [1, 0] and n.tolist() == [3, 3]


# ---------------------------------------------------------------- Angular


def test_angular_extra_term_by_hand() -> None:
    h = _head([[1.0, 0.0], [0.0, 1.0]])
    ad = AngularDistillation(h, weight=2.0)
    s = torch.tensor([[3.0, 4.0], [1.0, 0.0]], dtype=D64)
    t = torch.tensor([[1.0, 0.0], [0.0, -2.0]], dtype=D64)
    term = ((1 - 0.6) + (1 - 0.0)) / 2
    assert ad.angular_term(s, t).item() == pytest.approx(term, rel=1e-12)
    y = torch.tensor([1, 0])
    ce = CombinedMarginLoss(64, 1, 0.5, 0)(h(s), y).item()
    assert ad(s, y, t).item() == pytest.approx(ce + 2.0 * term, rel=1e-9)


# ---------------------------------------------------------------- MarginKD


def test_margin_kd_zero_for_identical_teacher() -> None:
    torch.manual_seed(3)
    th, sh = MarginHead(8, 5).double(), MarginHead(8, 5).double()
    sh.copy_centres_from(th, freeze=False)
    kd = MarginKD(sh, th, T=4.0)
    x, y = torch.randn(6, 8, dtype=D64), torch.tensor([0, 1, 2, 3, 4, 0])
    assert kd.kd_term(x, y, x.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert kd(x, y, x.clone()).item() == pytest.approx(CombinedMarginLoss(64, 1, 0.5, 0)(sh(x), y).item())


def test_margin_kd_t_squared_hand_case() -> None:
    eye = [[1.0, 0.0], [0.0, 1.0]]
    T, s, m = 2.0, 1.0, 0.5
    kd = MarginKD(_head(eye), _head(eye), s=s, m=m, T=T, alpha=0.5)
    xs = torch.tensor([[0.6, 0.8]], dtype=D64)
    xt = torch.tensor([[0.8, 0.6]], dtype=D64)
    y = torch.tensor([0])
    zs = [s * _arc(0.6, m) / T, s * 0.8 / T]
    zt = [s * _arc(0.8, m) / T, s * 0.6 / T]
    ls = [z - math.log(sum(math.exp(v) for v in zs)) for z in zs]
    lt = [z - math.log(sum(math.exp(v) for v in zt)) for z in zt]
    kl = sum(math.exp(b) * (b - a) for a, b in zip(ls, lt))
    assert kd.kd_term(xs, y, xt).item() == pytest.approx(T**2 * kl, rel=1e-9)
    ce = _ce([s * _arc(0.6, m), s * 0.8], 0)
    assert kd(xs, y, xt).item() == pytest.approx(ce + 0.5 * T**2 * kl, rel=1e-9)


# ---------------------------------------------------------------- gradients, wrapper


@pytest.mark.parametrize("name", DISTILLER_NAMES)
def test_gradients_reach_student_not_teacher(name: str) -> None:
    torch.manual_seed(4)
    th, sh = MarginHead(8, 3), MarginHead(8, 3)
    d = make_distiller(name, sh, th)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.no_grad():  # teacher embeddings near their centres -> a_i > 0
        t0 = th.weight[y] + 0.001 * torch.randn(6, 8)
    t = t0.clone().requires_grad_(True)
    s = torch.randn(6, 8, requires_grad=True)
    loss = d(s, y, t)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None and th.weight.grad is None


def test_face_recognizer_loss_and_embed() -> None:
    torch.manual_seed(5)
    images, y = torch.randn(4, 10), torch.tensor([0, 1, 2, 0])
    teacher_bb, th = nn.Linear(10, 8), MarginHead(8, 3)
    backbone, sh = nn.Linear(10, 8), MarginHead(8, 3)
    plain = FaceRecognizer(backbone, sh, CombinedMarginLoss(64, 1, 0.5, 0))
    assert plain(images, y).item() == pytest.approx(
        CombinedMarginLoss(64, 1, 0.5, 0)(sh(backbone(images)), y).item(), rel=1e-6
    )
    assert torch.allclose(plain.embed(images).norm(dim=1), torch.ones(4))
    with torch.no_grad():
        teacher_bb.weight.copy_((torch.linalg.pinv(images) @ th.weight[y]).T)
        teacher_bb.bias.zero_()
    md = make_distiller("margin_distillation", sh, th)
    rec = FaceRecognizer(backbone, sh, md, teacher=teacher_bb)
    on_the_fly = rec(images, y)
    pre = rec(images, y, teacher_emb=teacher_bb(images).detach())
    assert on_the_fly.item() == pytest.approx(pre.item(), rel=1e-6)
    on_the_fly.backward()
    assert backbone.weight.grad is not None and teacher_bb.weight.grad is None
    with pytest.raises(ValueError, match="student_head"):
        FaceRecognizer(backbone, MarginHead(8, 3), md)
