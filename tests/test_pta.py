"""Post-Train Adaptive MobileNetV2: blocks, configurations, subnets, costs, BN recalibration, sampled training."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v2
from torchvision.models.mobilenetv2 import InvertedResidual

from faceopt.models.mobilenetv2 import mobilenetv2
from faceopt.models.profile import count_macs, count_parameters, settle_batchnorm
from faceopt.models.pta import (
    DEFAULT_BRANCHES,
    KERNEL_BRANCHES,
    BranchSpec,
    InvertedResidualK,
    PTABlock,
    PTAMobileNetV2,
    StaticMobileNetV2,
    extract_subnet,
    flops_and_params,
    pta_blocks,
    recalibrate_bn,
    train_step_sampled,
)


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial affine parameters and running statistics, so parity tests exercise batch norm."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))


def _bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k}


def _tiny(seed: int = 0, **kwargs) -> PTAMobileNetV2:
    torch.manual_seed(seed)
    return PTAMobileNetV2(width=0.35, input_size=32, **kwargs)


# ----------------------------------------------------------------------------- the block
@pytest.mark.parametrize("in_ch,out_ch,stride,t", [(24, 24, 1, 6), (16, 24, 2, 6), (32, 32, 1, 1), (64, 96, 1, 3)])
def test_single_branch_block_equals_torchvision_inverted_residual(in_ch, out_ch, stride, t):
    torch.manual_seed(0)
    ref = InvertedResidual(in_ch, out_ch, stride, expand_ratio=t)
    _randomise_bn(ref)
    block = PTABlock(in_ch, out_ch, stride, [BranchSpec(t, 3)])
    block.branches[0].load_state_dict(ref.state_dict(), strict=True)
    assert set(block.state_dict()) == {f"branches.0.{k}" for k in ref.state_dict()}
    assert block.use_res_connect == ref.use_res_connect
    x = torch.randn(2, in_ch, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(block.eval()(x), ref.eval()(x), rtol=0, atol=1e-6)
        torch.testing.assert_close(block.train()(x), ref.train()(x), rtol=0, atol=1e-6)


def test_block_runs_only_the_active_branch_and_switching_changes_compute_and_output():
    torch.manual_seed(0)
    block = PTABlock(16, 16, 1, DEFAULT_BRANCHES).eval()
    calls = [0] * len(block)
    for i, b in enumerate(block.branches):
        b.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    x = torch.randn(1, 16, 8, 8)
    outs, macs = [], []
    for i in range(len(block)):
        block.active = i
        with torch.no_grad():
            outs.append(block(x))
        macs.append(count_macs(block, (1, 16, 8, 8)))
    assert calls == [2] * len(block)  # one forward each plus one in count_macs
    assert macs[0] > macs[1] > macs[2] > 0
    for i in range(len(block)):
        assert macs[i] == 64 * block.branch(i).macs_per_output_pixel()
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[1], outs[2])


@pytest.mark.parametrize("stride", [1, 2])
def test_kernel_branches_keep_the_block_shape_and_order_by_cost(stride):
    block = PTABlock(24, 32, stride, KERNEL_BRANCHES)
    x = torch.randn(1, 24, 12, 12)
    for i in range(len(block)):
        block.active = i
        assert block(x).shape == (1, 32, 12 // stride, 12 // stride)
    assert block.by_cost == (0, 1, 2, 3)
    assert (block.preset("max"), block.preset("mid"), block.preset("min")) == (0, 1, 3)
    assert block.branch(0).conv[1][0].kernel_size == (5, 5)


# ----------------------------------------------------------------------------- the network
def test_layout_counts_and_max_subnet_is_mobilenetv2():
    torch.manual_seed(0)
    model = PTAMobileNetV2(num_classes=2).eval()
    assert len(model.blocks) == 16 and model.configurations() == 3**16
    assert isinstance(model.features[1], InvertedResidualK) and model.features[1].expansion == 1
    assert all(isinstance(model.features[i], PTABlock) for i in range(2, 18))
    ref = mobilenetv2(num_classes=2)
    assert count_parameters(model) > count_parameters(ref)
    sub = extract_subnet(model, "max")
    assert isinstance(sub, StaticMobileNetV2) and not pta_blocks(sub)
    assert count_parameters(sub) == count_parameters(ref)
    # the max subnet *is* MobileNetV2: torchvision's network takes its weights strictly and agrees
    _randomise_bn(model)
    tv = mobilenet_v2(weights=None, num_classes=2, dropout=0.0).eval()
    tv.load_state_dict(extract_subnet(model, "max").state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model.set_config("max")
        torch.testing.assert_close(model(x), tv(x), rtol=0, atol=1e-6)
    cost = flops_and_params(model, 64, "max")
    assert cost.macs == count_macs(ref, (1, 3, 64, 64)) and cost.params == count_parameters(ref)
    assert cost.flops == 2 * cost.macs and cost.params_stored == count_parameters(model)


def test_switching_configurations_changes_flops_and_outputs():
    model = _tiny()
    settle_batchnorm(model, batches=2, batch_size=4, input_size=(3, 32, 32))
    costs = {p: flops_and_params(model, config=p) for p in ("max", "mid", "min")}
    assert costs["max"].input_shape == (1, 3, 32, 32)
    assert costs["max"].macs > costs["mid"].macs > costs["min"].macs
    assert costs["max"].params > costs["mid"].params > costs["min"].params
    assert len({c.params_stored for c in costs.values()}) == 1
    assert model.config == model.resolve("max")  # settle_batchnorm ran the default; flops_and_params restored it
    x = torch.randn(2, 3, 32, 32)
    outs = {}
    with torch.no_grad():
        for preset in ("max", "mid", "min"):
            model.eval().set_config(preset)
            outs[preset] = model(x)
    assert not torch.allclose(outs["max"], outs["mid"]) and not torch.allclose(outs["mid"], outs["min"])
    mixed = tuple(i % 3 for i in range(16))
    assert flops_and_params(model, config=mixed).macs not in {c.macs for c in costs.values()}


def test_extract_subnet_parity_for_several_configs():
    model = _tiny(seed=1)
    _randomise_bn(model, seed=1)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, 3, 32, 32)
    for config in ["max", "mid", "min", model.sample_config(gen), model.sample_config(gen)]:
        sub = extract_subnet(model.eval(), config).eval()
        model.set_config(config)
        with torch.no_grad():
            diff = (model(x) - sub(x)).abs().max().item()
        assert diff < 1e-6, (config, diff)
        assert count_parameters(sub) == flops_and_params(model, config=config).params
        assert count_macs(sub, (1, 3, 32, 32)) == flops_and_params(model, config=config).macs
    with torch.no_grad():  # an independent copy
        next(sub.parameters()).add_(1.0)
    assert all(not any(p is q for q in model.parameters()) for p in sub.parameters())
    block = model.blocks[0]
    single = extract_subnet(block, (2,))
    assert isinstance(single, InvertedResidualK) and single.expansion == block.specs[2].expansion


def test_onnx_export_of_a_subnet_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from faceopt.system.onnx_export import export_onnx

    torch.manual_seed(0)
    model = PTAMobileNetV2(input_size=64)
    model.set_config("mid")
    settle_batchnorm(model, batches=2, batch_size=4, input_size=(3, 64, 64))
    sub = extract_subnet(model).eval()
    path = export_onnx(sub, tmp_path / "pta_mid.onnx", (1, 3, 64, 64))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, 64, 64)
    (got,) = sess.run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = model.eval()(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- BN recalibration
def test_recalibrate_bn_matches_hand_computed_statistics_on_a_tiny_block():
    torch.manual_seed(0)
    block = PTABlock(2, 2, 1, [BranchSpec(2, 3), BranchSpec(1, 3)]).double()
    _randomise_bn(block)
    before = _bn_state(block)
    x = torch.randn(8, 2, 5, 5, dtype=torch.float64)
    recalibrate_bn(block, (1,), x, batches=2)
    assert block.active == 1 and not block.training
    branch = block.branch(1)
    dw_conv, dw_bn, pw_conv, pw_bn = branch.conv[0][0], branch.conv[0][1], branch.conv[1], branch.conv[2]
    assert dw_bn.momentum == 0.1 and pw_bn.momentum == 0.1
    stats: dict[str, list[torch.Tensor]] = {"m1": [], "v1": [], "m2": [], "v2": []}
    for xb in x.chunk(2):
        d = F.conv2d(xb, dw_conv.weight, padding=1, groups=2)
        mean, var_b = d.mean((0, 2, 3)), d.var((0, 2, 3), unbiased=False)
        stats["m1"].append(mean)
        stats["v1"].append(d.var((0, 2, 3), unbiased=True))
        h = ((d - mean[None, :, None, None]) / torch.sqrt(var_b[None, :, None, None] + dw_bn.eps)
             * dw_bn.weight[None, :, None, None] + dw_bn.bias[None, :, None, None]).clamp(0, 6)
        p = F.conv2d(h, pw_conv.weight)
        stats["m2"].append(p.mean((0, 2, 3)))
        stats["v2"].append(p.var((0, 2, 3), unbiased=True))
    avg = {k: torch.stack(v).mean(0) for k, v in stats.items()}
    with torch.no_grad():
        torch.testing.assert_close(dw_bn.running_mean, avg["m1"])
        torch.testing.assert_close(dw_bn.running_var, avg["v1"])
        torch.testing.assert_close(pw_bn.running_mean, avg["m2"])
        torch.testing.assert_close(pw_bn.running_var, avg["v2"])
    assert int(dw_bn.num_batches_tracked) == 2 and int(pw_bn.num_batches_tracked) == 2
    after = _bn_state(block)
    for k in before:
        assert torch.equal(before[k], after[k]) == k.startswith("branches.0."), k


def test_recalibrate_bn_changes_only_the_active_branches_and_the_shared_head():
    model = _tiny(seed=2)
    _randomise_bn(model, seed=2)
    model.set_config("max")
    before = _bn_state(model)
    config = model.sample_config(torch.Generator().manual_seed(0))
    last = model.blocks[-1].branch(config[-1]).conv[-1]
    seen: list[torch.Tensor] = []
    last.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    loader = [(torch.randn(4, 3, 32, 32), torch.zeros(4)) for _ in range(4)]
    recalibrate_bn(model, config, loader, batches=3)
    assert model.config == config and not model.training
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    active = {f"features.{2 + b}.branches.{i}." for b, i in enumerate(config)}
    after = _bn_state(model)
    for k in before:
        expected_change = any(k.startswith(a) for a in active) or k.startswith("features.18.")
        assert (not torch.equal(before[k], after[k])) == expected_change, k
    assert len(seen) == 3  # the cumulative average of the batches that layer saw
    torch.testing.assert_close(last.running_mean, torch.stack([s.mean((0, 2, 3)) for s in seen]).mean(0))
    torch.testing.assert_close(last.running_var, torch.stack([s.var((0, 2, 3)) for s in seen]).mean(0))
    with pytest.raises(ValueError, match="no batches"):
        recalibrate_bn(model, None, [])


# ----------------------------------------------------------------------------- sampling and training
def test_sample_config_is_deterministic_per_seed_and_uniform():
    model = _tiny()
    draws = [[model.sample_config(torch.Generator().manual_seed(s)) for _ in range(3)] for s in (7, 7, 8)]
    g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    assert [model.sample_config(g1) for _ in range(5)] == [model.sample_config(g2) for _ in range(5)]
    assert draws[0] == draws[1] and draws[0] != draws[2]
    g = torch.Generator().manual_seed(0)
    many = np.array([model.sample_config(g) for _ in range(300)])
    assert many.shape == (300, 16) and many.min() == 0 and many.max() == 2
    assert np.all(np.abs(np.bincount(many.ravel(), minlength=3) / many.size - 1 / 3) < 0.03)
    sandwich = model.sandwich_configs(torch.Generator().manual_seed(0), n_random=3)
    assert sandwich[:2] == [model.resolve("max"), model.resolve("min")] and len(sandwich) == 5


@pytest.mark.parametrize("sandwich", [False, True])
def test_train_step_sampled_updates_only_the_branches_that_ran(sandwich):
    model = _tiny(seed=3)
    model.set_config("mid")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    batch = (torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1]))
    step = train_step_sampled(model, batch, nn.functional.cross_entropy, opt, torch.Generator().manual_seed(0),
                              sandwich=sandwich, n_random=1)
    assert np.isfinite(step.loss) and model.config == model.resolve("mid")
    assert len(step.configs) == (3 if sandwich else 1)
    if sandwich:
        assert step.configs[:2] == (model.resolve("max"), model.resolve("min"))
    ran = {f"features.{2 + b}.branches.{c[b]}." for c in step.configs for b in range(16)}
    for k, v in model.named_parameters():
        in_branch = ".branches." in k
        changed = not torch.equal(before[k], v.detach())
        if in_branch:
            assert changed == any(k.startswith(r) for r in ran), k
    assert not torch.equal(before["features.0.0.weight"], model.features[0][0].weight.detach())


# ----------------------------------------------------------------------------- bad input
def test_bad_configurations_raise_clear_value_errors():
    model = _tiny()
    model.set_config("min")
    with pytest.raises(ValueError, match="3 entries but the model has 16 PTA blocks"):
        model.set_config((0, 1, 2))
    with pytest.raises(ValueError, match="entry 4: branch index 3 is out of range"):
        model.set_config((0,) * 4 + (3,) + (0,) * 11)
    with pytest.raises(ValueError, match="out of range"):
        model.set_config((-1,) + (0,) * 15)
    with pytest.raises(ValueError, match="must be an integer"):
        model.set_config((0.5,) + (0,) * 15)
    with pytest.raises(ValueError, match="unknown preset 'fast'; allowed: max, mid, min"):
        model.set_config("fast")
    with pytest.raises(ValueError, match="preset name or a sequence"):
        model.set_config(3)  # type: ignore[arg-type]
    assert model.config == model.resolve("min")  # a rejected configuration changes nothing
    with pytest.raises(ValueError, match="out of range"):
        model.blocks[0].active = 3
    with pytest.raises(ValueError, match="unknown preset"):
        flops_and_params(model, config="fastest")
    with pytest.raises(ValueError, match="expansion"):
        BranchSpec(0, 3)
    with pytest.raises(ValueError, match="kernel"):
        BranchSpec(6, 4)
    with pytest.raises(ValueError, match="at least one branch"):
        PTABlock(8, 8, 1, [])
    with pytest.raises(ValueError, match="duplicate"):
        PTABlock(8, 8, 1, [BranchSpec(6), BranchSpec(6, 3)])
    with pytest.raises(ValueError, match="stride"):
        PTABlock(8, 8, 3, DEFAULT_BRANCHES)
    with pytest.raises(ValueError, match="num_classes"):
        PTAMobileNetV2(num_classes=0)


def test_in_channels_and_input_size_defaults():
    torch.manual_seed(0)
    model = PTAMobileNetV2(num_classes=5, in_channels=1, input_size=48).eval()
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 5)
    assert flops_and_params(model).input_shape == (1, 1, 48, 48)
    sub = extract_subnet(model, "min")
    assert flops_and_params(sub).input_shape == (1, 1, 48, 48)
    assert flops_and_params(sub).params == flops_and_params(sub).params_stored == count_parameters(sub)
