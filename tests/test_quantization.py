"""Affine quantisation (thesis section 1.4) against PyTorch's own kernels, and PTQ/QAT plumbing."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from faceopt.compress.qat import (
    FakeQuant,
    QuantWrapper,
    fake_quant_ste,
    ptq,
    ptq_vs_qat,
    qat,
    quantize_modules,
)
from faceopt.compress.quantization import (
    activation_error_sym_vs_asym,
    affine_params,
    channel_params,
    dequantize,
    dynamic_range,
    entropy_range,
    fake_quantize,
    minmax_range,
    percentile_range,
    quantization_error,
    quantize,
    static_range,
    tensor_params,
    weight_error_per_tensor_vs_per_channel,
)
from faceopt.data.digits import Split
from faceopt.models.lenet import lenet5_digits, lenet300_100

CASES = [(8, False), (8, True), (4, False), (4, True)]   # (bits, symmetric)


def _random(seed: int, *shape: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * 3 + 0.7


# -- the scheme, by hand --------------------------------------------------------------------

def test_hand_checked_asymmetric_8bit() -> None:
    # S = (1 - (-1)) / 255 = 2/255.  In float32 S is a hair above 2/255, so -1/S = -127.4999..
    # rounds to -127: Z = round(alpha/S) - qmin = -127 (PyTorch zero point +127).
    r = torch.tensor([-1.0, 0.0, 0.5, 1.0])
    p = affine_params(-1.0, 1.0, 8)
    assert float(p.scale) == pytest.approx(2 / 255, rel=1e-7)
    assert int(p.zero_point) == -127 and int(p.torch_zero_point) == 127
    assert (p.qmin, p.qmax) == (0, 255)
    # Q = round(r/S) - Z: -127+127, 0+127, round(63.75)=64 +127, 127+127
    assert quantize(r, p).tolist() == [0, 127, 191, 254]
    assert float(dequantize(quantize(r, p), p)[1]) == 0.0          # zero is exact


def test_hand_checked_symmetric_and_zero_inclusion() -> None:
    p = affine_params(-0.5, 2.0, 8, symmetric=True, signed=True)     # beta = max(|a|, |b|) = 2
    assert int(p.zero_point) == 0 and float(p.scale) == pytest.approx(4 / 255)
    # +-2/S = +-127.4999.. in float32 -> +-127; +-1/S = +-63.75 -> +-64; 3 saturates at 127
    assert quantize(torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]), p).tolist() == [-127, -64, 0, 64, 127, 127]
    pu = affine_params(-0.5, 2.0, 8, symmetric=True, signed=False)   # unsigned: middle code
    assert int(pu.torch_zero_point) == 128
    # a range that excludes 0 is widened to contain it, so 0 stays exact
    p2 = affine_params(1.0, 3.0, 4)
    assert float(p2.scale) == pytest.approx(3 / 15) and int(p2.zero_point) == 0
    assert float(fake_quantize(torch.tensor(0.0), p2)) == 0.0


def test_zero_exact_on_random_ranges() -> None:
    g = torch.Generator().manual_seed(3)
    for _ in range(50):
        a, b = sorted((torch.randn(2, generator=g) * 5).tolist())
        for bits, sym in CASES:
            p = affine_params(a, b, bits, symmetric=sym, signed=sym)
            assert float(fake_quantize(torch.zeros(1), p)) == 0.0


# -- identical to PyTorch's kernels ----------------------------------------------------------

@pytest.mark.parametrize("bits,symmetric", CASES)
def test_per_tensor_matches_torch(bits: int, symmetric: bool) -> None:
    for seed in range(5):
        x = _random(seed, 4096)
        p = tensor_params(x, bits, symmetric=symmetric, signed=symmetric)
        scale, zp = float(p.scale), int(p.torch_zero_point)
        ref = torch.fake_quantize_per_tensor_affine(x, scale, zp, p.qmin, p.qmax)
        assert torch.equal(fake_quantize(x, p), ref)
        if bits == 8:
            dtype = torch.qint8 if symmetric else torch.quint8
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q = torch.quantize_per_tensor(x, scale, zp, dtype).int_repr().to(torch.int64)
            assert torch.equal(quantize(x, p), q)


@pytest.mark.parametrize("bits,symmetric", CASES)
def test_per_channel_matches_torch(bits: int, symmetric: bool) -> None:
    for axis in (0, 1):
        x = _random(10 + axis, 6, 5, 3, 3) * torch.linspace(0.1, 10, 5 if axis else 6).reshape(
            [1, -1, 1, 1] if axis else [-1, 1, 1, 1])
        p = channel_params(x, bits, axis=axis, symmetric=symmetric, signed=symmetric)
        assert p.scale.shape == (x.shape[axis],)
        ref = torch.fake_quantize_per_channel_affine(x, p.scale, p.torch_zero_point.to(torch.int32),
                                                     axis, p.qmin, p.qmax)
        assert torch.equal(fake_quantize(x, p), ref)


# -- per-channel vs per-tensor, symmetric vs asymmetric ------------------------------------

def test_per_channel_beats_per_tensor_on_uneven_channels() -> None:
    w = _random(0, 16, 8, 3, 3) * torch.logspace(-2, 1, 16).reshape(-1, 1, 1, 1)
    for bits in (8, 4):
        e = weight_error_per_tensor_vs_per_channel(w, bits)
        assert e["per_channel"] < e["per_tensor"]


def test_asymmetric_beats_symmetric_after_relu() -> None:
    a = torch.relu(_random(1, 256, 64))
    for bits in (8, 4):
        e = activation_error_sym_vs_asym(a, bits)
        assert e["asymmetric"] < e["symmetric"]
    p = tensor_params(a, 8)
    assert 0.0 < quantization_error(a, p, "relative") < 1e-4 and quantization_error(a, p) > 0.0


# -- ranges ---------------------------------------------------------------------------------

def test_ranges() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(100_000, generator=g)
    x[0] = 1000.0                                         # one outlier
    assert minmax_range(x)[1] == 1000.0 == dynamic_range(x)[1]
    lo, hi = percentile_range(x, 99.99)
    assert hi < 10 and lo > -10                           # the outlier is clipped
    batches = [x[:50_000], x[50_000:]]
    assert static_range(batches) == minmax_range(x)
    assert static_range(batches, "percentile", percentile=99.99) == pytest.approx((lo, hi))

    heavy = torch.distributions.StudentT(2.0).sample((20_000,)).abs()
    e_lo, e_hi = entropy_range(heavy, bits=8)
    assert 0.0 <= e_lo < e_hi < float(heavy.max())
    assert static_range([heavy[:10_000], heavy[10_000:]], "entropy", bits=8) == (e_lo, e_hi)


# -- straight-through estimator and QAT wrappers ------------------------------------------

def test_ste_gradient_is_one_inside_zero_outside() -> None:
    p = affine_params(-1.0, 1.0, 8)
    x = torch.tensor([-3.0, -1.5, -0.9, -0.2, 0.0, 0.3, 0.99, 1.2, 5.0], requires_grad=True)
    fake_quant_ste(x, p).sum().backward()
    # clipping range: [rmin - S/2, rmax + S/2] (codes not saturated) which contains [alpha, beta]
    inside = ((x >= p.rmin - p.scale / 2) & (x <= p.rmax + p.scale / 2)).float()
    assert x.grad is not None and torch.equal(x.grad, inside)
    assert x.grad.tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0]
    # per-channel weight quantiser: every weight lies in its channel's range, so all get
    # gradient 1, the channel maximum included (m / S = qmax + 1/2 may round past qmax)
    w = torch.randn(4, 3, requires_grad=True)
    FakeQuant(4, kind="weight", per_channel=True)(w).sum().backward()
    assert w.grad is not None and torch.equal(w.grad, torch.ones_like(w))


@pytest.mark.parametrize("bits,symmetric", CASES)
def test_ste_gradient_matches_torch(bits: int, symmetric: bool) -> None:
    x = _random(4, 2000)
    p = affine_params(-2.0, 3.0, bits, symmetric=symmetric, signed=symmetric)   # clips the tails
    ours = x.clone().requires_grad_()
    ref = x.clone().requires_grad_()
    fake_quant_ste(ours, p).sum().backward()
    torch.fake_quantize_per_tensor_affine(ref, float(p.scale), int(p.torch_zero_point), p.qmin,
                                          p.qmax).sum().backward()
    assert ours.grad is not None and torch.equal(ours.grad, ref.grad)
    assert 0 < float(ours.grad.sum()) < x.numel()


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_fake_quant_levels(bits: int) -> None:
    x = _random(2, 10_000)
    fq = FakeQuant(bits, kind="activation")
    fq.train()
    y = fq(x)
    assert torch.unique(y).numel() <= 2 ** bits
    wq = FakeQuant(bits, kind="weight", per_channel=False)(x)
    assert torch.unique(wq).numel() <= 2 ** bits


def test_quantize_modules_wraps_and_keeps_shapes() -> None:
    model = lenet5_digits()
    q = quantize_modules(model, 4)
    assert sum(isinstance(m, QuantWrapper) for m in q.modules()) == 5
    assert not any(isinstance(m, QuantWrapper) for m in model.modules())   # original untouched
    x = torch.rand(7, 1, 8, 8)
    out = q(x)
    assert out.shape == (7, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in q.parameters())
    with pytest.raises(TypeError):
        QuantWrapper(nn.ReLU(), 8)  # type: ignore[arg-type]


def _tiny_split(n: int = 200, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g))


def test_ptq_freezes_ranges_and_qat_trains() -> None:
    torch.manual_seed(0)
    model = lenet300_100()
    data = _tiny_split()
    p = ptq(model, data, 8)
    fqs = [m for m in p.modules() if isinstance(m, FakeQuant) and m.kind == "activation"]
    assert len(fqs) == 3 and all(m.observer == "off" for m in fqs)
    assert float(fqs[0].running_min) == float(data.x.min())
    with torch.no_grad():
        assert (p(data.x) - model(data.x)).abs().max() < 0.05                # 8-bit is close
    q = qat(model, data, 4, epochs=1, lr=0.01)
    changed = [not torch.equal(a, b) for a, b in zip(q.parameters(), model.parameters())]
    assert any(changed)


def test_ptq_vs_qat_structure() -> None:
    data = _tiny_split(160)
    rows = ptq_vs_qat(lenet300_100, data, _tiny_split(80, 1), (8, 4), float_epochs=1, qat_epochs=1,
                      lr=0.05, seed=0)
    assert [r["bits"] for r in rows] == [8, 4]
    for r in rows:
        assert set(r) == {"bits", "float_acc", "ptq_acc", "qat_acc"}
        assert all(0.0 <= r[k] <= 1.0 for k in ("float_acc", "ptq_acc", "qat_acc"))


def test_ptq_vs_qat_fair_gives_both_the_same_training_budget() -> None:
    """The PTQ row quantises a float model fine-tuned for the QAT epochs at the QAT rate, not the
    shorter-trained base; the float column is that model's accuracy. Rebuilt here from the same seeds."""
    from faceopt.compress.experiments import ptq_vs_qat_fair
    from faceopt.compress.pruning import clone_model
    from faceopt.compress.training import evaluate, fit

    train, test = _tiny_split(160), _tiny_split(80, 1)
    rows = ptq_vs_qat_fair(lenet300_100, train, test, seeds=[3], bits_list=[4], float_epochs=1, qat_epochs=1,
                           lr=0.05)
    torch.manual_seed(3)
    base = lenet300_100()
    fit(base, train, epochs=1, lr=0.05, seed=3)
    longer = clone_model(base)
    fit(longer, train, epochs=1, lr=0.005, seed=4)
    assert rows == [{"seed": 3, "bits": 4, "float": evaluate(longer, test), "PTQ": evaluate(ptq(longer, train, 4), test),
                     "QAT": evaluate(qat(base, train, 4, epochs=1, lr=0.005, seed=4), test)}]
    assert evaluate(ptq(base, train, 4), test) != rows[0]["PTQ"] or evaluate(base, test) != rows[0]["float"]
