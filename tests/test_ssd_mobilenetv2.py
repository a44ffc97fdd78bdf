"""SSD-MobileNetV2 (thesis, chapter 2): architecture, training, eval output and the early-exit split."""
from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from faceopt.detection.amphibian import AmphibianDetector
from faceopt.detection.ssd_mobilenetv2 import SSDMobileNetV2Split, build_ssd_mobilenetv2

SIZE = 128


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine, more threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _spread(model: nn.Module) -> nn.Module:
    """Kaiming (fan-in) backbone convolutions, so that a random model's scores differ from 0.5 and from each other."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and not name.startswith("head"):
            nn.init.kaiming_normal_(module.weight)
    return model


@pytest.fixture(scope="module")
def split() -> SSDMobileNetV2Split:
    torch.manual_seed(0)
    return SSDMobileNetV2Split(_spread(build_ssd_mobilenetv2(num_classes=2, size=SIZE)), score_threshold=0.0)


def _frame(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _as_image(frame_bgr: np.ndarray) -> torch.Tensor:
    """The torchvision detection input for a BGR frame: RGB [3, H, W] in 0..1."""
    return torch.from_numpy(np.ascontiguousarray(frame_bgr[..., ::-1])).permute(2, 0, 1).float() / 255.0


@pytest.mark.parametrize("layer", [1, 7, 14, 15, 18, 19])
def test_split_matches_the_whole_network(split, layer):
    frame = _frame(SIZE, SIZE, 1)
    x, _ = split.prepare(frame)
    with torch.inference_mode():
        whole = split.model([_as_image(frame)])[0]
        out = split.run_from(split.run_until(x, layer), layer)
    assert len(out) == 1 and len(whole["scores"]) > 10
    assert whole["scores"].unique().numel() > 10  # a non-degenerate comparison
    for key in ("boxes", "scores", "labels"):
        assert out[0][key].shape == whole[key].shape
        torch.testing.assert_close(out[0][key], whole[key], rtol=0, atol=1e-5)


def test_decode_maps_boxes_to_a_non_square_frame(split):
    frame = _frame(90, 170, 2)
    x, geometry = split.prepare(frame)
    assert x.shape == (1, 3, SIZE, SIZE) and (geometry.width, geometry.height) == (170, 90)
    with torch.inference_mode():
        whole = split.model([_as_image(frame)])[0]
        boxes, scores, normalised = split.decode(split.run_from(split.run_until(x, 10), 10), geometry)
    assert boxes.dtype == scores.dtype == normalised.dtype == np.float32
    assert boxes.shape == normalised.shape == (len(scores), 4) and len(scores) == len(whole["scores"])
    np.testing.assert_allclose(boxes, whole["boxes"].numpy(), atol=1e-3)
    np.testing.assert_allclose(scores, whole["scores"].numpy(), atol=1e-6)
    assert ((normalised >= 0) & (normalised <= 1)).all()


def test_run_until_runs_only_the_first_blocks(split):
    x, _ = split.prepare(_frame(SIZE, SIZE, 3))
    per_block, rest = split.stage_macs(_frame(SIZE, SIZE, 3))
    assert len(per_block) == split.num_layers == 19 and rest > 0
    with torch.inference_mode():
        for layer in (3, 14, 15, 19):
            with FlopCounterMode(display=False) as counter:
                state = split.run_until(x, layer)
            assert counter.get_total_flops() // 2 == sum(per_block[:layer])
            assert len(state.outputs) == layer
            assert (state.tap is not None) == (layer >= 15)  # the stride-16 tap is inside block 15
        assert state.features.shape == (1, 1280, SIZE // 32, SIZE // 32)


def test_layer_outside_the_range_raises(split):
    x, _ = split.prepare(_frame(SIZE, SIZE, 4))
    with torch.inference_mode():
        for bad in (0, -1, 20):
            with pytest.raises(ValueError, match=r"1\.\.19"):
                split.run_until(x, bad)
        state = split.run_until(x, 5)
        with pytest.raises(ValueError, match=r"1\.\.19"):
            split.run_from(state, 20)
        with pytest.raises(ValueError, match="5 block outputs"):
            split.run_from(state, 6)
    with pytest.raises(ValueError, match="1..19"):
        AmphibianDetector(split, layer=20, threshold=0.1, alpha=0.9)


def test_amphibian_detector_exits_early_on_a_static_frame(split):
    background, moved = _frame(100, 140, 5), _frame(100, 140, 5)
    moved[20:80, 30:110] = 255
    amph = AmphibianDetector(split, layer=8, threshold=0.05, alpha=0.9)
    amph.reset(background)
    boxes, scores = amph.process(background)
    assert len(boxes) == len(scores) == 0
    amph.process(moved)
    assert amph.stats.static == [True, False]


def _rectangles(n: int, size: int, seed: int) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Bright rectangles on dark noise, each with its box as the target (label 1)."""
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(n):
        image = 0.4 * torch.rand(3, size, size, generator=g)
        w, h = torch.randint(size // 4, size // 2, (2,), generator=g).tolist()
        x0 = int(torch.randint(0, size - w, (1,), generator=g))
        y0 = int(torch.randint(0, size - h, (1,), generator=g))
        image[:, y0:y0 + h, x0:x0 + w] = 0.9
        images.append(image)
        targets.append({"boxes": torch.tensor([[x0, y0, x0 + w, y0 + h]], dtype=torch.float32),
                        "labels": torch.ones(1, dtype=torch.int64)})
    return images, targets


def test_sgd_steps_lower_the_training_loss():
    torch.manual_seed(0)
    model = build_ssd_mobilenetv2(num_classes=2, size=96, width_mult=0.5).train()
    images, targets = _rectangles(8, 96, seed=0)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(12):
        parts = model(images, targets)
        assert set(parts) == {"bbox_regression", "classification"}
        loss = sum(parts.values())
        assert torch.isfinite(loss)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert max(losses[-3:]) < 0.6 * losses[0], losses


def test_eval_output_structure():
    torch.manual_seed(0)
    model = build_ssd_mobilenetv2(num_classes=3, size=SIZE).eval()
    images = [torch.rand(3, 100, 150), torch.rand(3, 64, 64)]
    with torch.inference_mode():
        out = model(images)
    assert isinstance(out, list) and len(out) == 2
    for det, image in zip(out, images):
        assert set(det) == {"boxes", "scores", "labels"}
        n = len(det["scores"])
        assert det["boxes"].shape == (n, 4) and det["labels"].shape == (n,) and n <= 300
        assert det["boxes"].dtype == det["scores"].dtype == torch.float32 and det["labels"].dtype == torch.int64
        assert ((det["labels"] >= 1) & (det["labels"] <= 2)).all()
        h, w = image.shape[-2:]
        assert (det["boxes"][:, 0::2] <= w).all() and (det["boxes"][:, 1::2] <= h).all() and (det["boxes"] >= 0).all()


def test_builds_offline_with_the_ssdlite_layout(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("network access while building the detector")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    model = build_ssd_mobilenetv2(num_classes=2, size=320)
    assert not any(tmp_path.iterdir())
    assert model.backbone.out_channels == [576, 1280, 512, 256, 256, 128]
    assert len(model.backbone.body) == 19
    assert model.anchor_generator.num_anchors_per_location() == [6] * 6
    with torch.inference_mode():
        maps = model.eval().backbone(torch.zeros(1, 3, 320, 320))
    assert [m.shape[-1] for m in maps.values()] == [20, 10, 5, 3, 2, 1]
    assert 2.9e6 < sum(p.numel() for p in model.parameters()) < 3.2e6


def test_invalid_arguments_raise():
    for kwargs in ({"num_classes": 1}, {"size": 16}, {"width_mult": 0.0}):
        with pytest.raises(ValueError):
            build_ssd_mobilenetv2(**kwargs)
    with pytest.raises(ValueError, match="build_ssd_mobilenetv2"):
        from torchvision.models.detection import ssdlite320_mobilenet_v3_large

        SSDMobileNetV2Split(ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=2))
