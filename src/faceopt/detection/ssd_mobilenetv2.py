"""SSD with a MobileNetV2 backbone (thesis Chapter 2, page 03), trainable, and its AmphibianDetector split.

Layout: SSDlite as torchvision assembles ``ssdlite320_mobilenet_v3_large``, with
MobileNetV2 in place of MobileNetV3. It is also the layout of the MobileNetV2 paper
(section 6.2) and of the TF Object Detection API's ``ssdlite_mobilenet_v2``:

* feature map 1: the expansion conv (1x1, 6x channels, 576 at width 1.0) of
  ``mobilenet_v2.features[14]``, the first stride-2 block of the 160-channel stage
  (TF's ``layer_15/expansion_output``; block 13 when the inverted-residual blocks are
  counted from 0), at stride 16;
* feature map 2: the end of ``features`` (the 1x1 conv to 1280 channels), stride 32;
* feature maps 3-6: four SSDlite extra blocks (1x1 to half depth, 3x3 depthwise stride
  2, 1x1 to depth) of depth 512, 256, 256 and 128, times ``width_mult``;
* SSDlite heads (3x3 depthwise + 1x1 conv, :class:`~torchvision.models.detection.ssdlite.SSDLiteHead`);
* anchors: ``DefaultBoxGenerator`` with aspect ratios {1, 2, 1/2, 3, 1/3} plus the extra
  scale-1 box (6 per cell) and scales 0.2..0.95, torchvision's SSDlite setting.

Matching, losses (smooth L1 + hard-negative-mined cross-entropy), resizing, box coding
and NMS are torchvision's :class:`~torchvision.models.detection.SSD`. The original
(non-lite) SSD-MobileNetV2 of the TF API uses the same feature maps with full 3x3
heads; only the heads differ. Weights are never downloaded: the backbone starts from
torchvision's SSDlite random initialisation.

For the early exit (thesis, section 2.3) layer ``m`` means "after block ``m`` of
``mobilenet_v2.features``" (1 = the stem conv, 19 = the whole backbone).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import mobilenet_v2
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.ssdlite import SSDLiteHead
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.ops.misc import Conv2dNormActivation

from faceopt.data.images import check_image
from faceopt.detection.split import StageState

C4_BLOCK = 14
"""Index in ``mobilenet_v2.features`` of the block whose expansion output is the stride-16 feature map."""

EXTRA_DEPTHS = (512, 256, 256, 128)
"""Output channels of the four SSDlite extra blocks at ``width_mult = 1``."""


def _extra_block(in_channels: int, out_channels: int, norm_layer: Callable[..., nn.Module]) -> nn.Sequential:
    """SSDlite extra layer: 1x1 to half depth, 3x3 depthwise stride 2, 1x1 to ``out_channels`` (ReLU6 each)."""
    mid = out_channels // 2
    return nn.Sequential(
        Conv2dNormActivation(in_channels, mid, kernel_size=1, norm_layer=norm_layer, activation_layer=nn.ReLU6),
        Conv2dNormActivation(mid, mid, kernel_size=3, stride=2, groups=mid, norm_layer=norm_layer,
                             activation_layer=nn.ReLU6),
        Conv2dNormActivation(mid, out_channels, kernel_size=1, norm_layer=norm_layer, activation_layer=nn.ReLU6),
    )


def _normal_init(module: nn.Module, std: float = 0.03) -> None:
    """Convolutions ~ N(0, std), biases 0: torchvision's SSDlite initialisation without pretrained weights."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.normal_(layer.weight, mean=0.0, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _out_channels(block: nn.Module) -> int:
    """``block.out_channels``, recorded by torchvision's ``Conv2dNormActivation``."""
    n = getattr(block, "out_channels")
    if not isinstance(n, int):
        raise TypeError(f"{type(block).__name__}.out_channels is not an int")
    return n


def _expansion_and_rest(block: nn.Module) -> tuple[nn.Module, nn.Sequential]:
    """An ``InvertedResidual``'s ``conv`` split into its expansion conv and the rest of it."""
    conv = block.conv
    if not isinstance(conv, nn.Sequential):
        raise TypeError(f"{type(block).__name__}.conv is not an nn.Sequential")
    return conv[0], conv[1:]


class MobileNetV2SSDLiteFeatures(nn.Module):
    """MobileNetV2 ``features`` plus SSDlite extras; returns the six SSD feature maps.

    ``body`` is the unchanged ``mobilenet_v2(...).features`` (19 blocks). Block
    :data:`C4_BLOCK` has no residual connection, so running its expansion conv and then
    the rest of it equals running the block; the expansion output is tapped on the way.
    """

    def __init__(self, body: nn.Sequential, norm_layer: Callable[..., nn.Module], width_mult: float = 1.0,
                 min_depth: int = 16) -> None:
        super().__init__()
        tap_block = body[C4_BLOCK]
        if not isinstance(tap_block, InvertedResidual) or tap_block.use_res_connect or tap_block.stride != 2:
            raise ValueError(f"features[{C4_BLOCK}] must be a stride-2 inverted residual block without a shortcut")
        self.body = body
        depths = [max(min_depth, int(d * width_mult)) for d in EXTRA_DEPTHS]
        last = _out_channels(body[-1])
        self.extra = nn.ModuleList(_extra_block(c_in, c_out, norm_layer)
                                   for c_in, c_out in zip([last, *depths[:-1]], depths))
        _normal_init(self.extra)
        self.out_channels: list[int] = [tap_block.conv[0].out_channels, last, *depths]

    @property
    def num_blocks(self) -> int:
        """Blocks of ``mobilenet_v2.features`` (19)."""
        return len(self.body)

    def run_blocks(self, x: torch.Tensor, start: int, stop: int) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Run blocks ``start..stop-1`` (0-based) on ``x``; their outputs, and the stride-16 tap if it was passed."""
        outputs: list[torch.Tensor] = []
        tap = None
        for i in range(start, stop):
            block = self.body[i]
            if i == C4_BLOCK:
                expansion, rest = _expansion_and_rest(block)
                tap = expansion(x)
                x = rest(tap)
            else:
                x = block(x)
            outputs.append(x)
        return outputs, tap

    def feature_maps(self, last: torch.Tensor, tap: torch.Tensor) -> list[torch.Tensor]:
        """The six SSD maps from the backbone's last output and the stride-16 tap (runs the extras)."""
        maps = [tap, last]
        x = last
        for block in self.extra:
            x = block(x)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        outputs, tap = self.run_blocks(x, 0, self.num_blocks)
        assert tap is not None
        return OrderedDict((str(i), m) for i, m in enumerate(self.feature_maps(outputs[-1], tap)))


def build_ssd_mobilenetv2(num_classes: int = 2, size: int = 320, width_mult: float = 1.0, *,
                          input_size: Sequence[int] | None = None,
                          anchor_scales: Sequence[float] | None = None) -> SSD:
    """SSDlite + MobileNetV2 detector (layout in the module docstring), randomly initialised.

    ``num_classes`` counts the background (2 = one object class). Input: a list of
    ``[3, H, W]`` float images in 0..1, resized (stretched) to ``size x size`` and mapped
    to [-1, 1]. In train mode ``model(images, targets)`` returns
    ``{"bbox_regression", "classification"}`` losses (targets: ``boxes`` [N, 4] x1y1x2y2 in
    image pixels, ``labels`` [N] int64 in 1..num_classes-1); in eval mode a list of
    ``{"boxes", "scores", "labels"}`` per image, boxes in the image's own pixels.
    Train on batches of at least 2 images: the last extra maps are 1x1, and batch norm
    needs more than one value per channel (as in torchvision's SSDlite).

    Optional, for small objects or non-square frames (the defaults keep the layout above):

    * ``input_size``: ``(width, height)`` of the network input, replacing ``size x size``.
      torchvision's ``GeneralizedRCNNTransform(fixed_size=(w, h))`` stretches every image
      to ``h`` rows and ``w`` columns, and ``DefaultBoxGenerator`` multiplies the relative
      anchor width by the input width and the relative height by the input height, so an
      anchor of scale ``s`` and aspect ratio ``a`` is ``s*sqrt(a)*w`` by ``s/sqrt(a)*h``
      input pixels (the same fraction of the frame at any input size).
    * ``anchor_scales``: the 7 relative scales ``s_1..s_6, s_7`` of ``DefaultBoxGenerator``
      (map ``k`` uses ``s_k`` and ``sqrt(s_k * s_{k+1})``), replacing 0.2..0.95 and 1.0.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes counts the background and must be an int >= 2, got {num_classes!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise ValueError(f"size must be an int >= 32 (a multiple of 32 is intended), got {size!r}")
    if not width_mult > 0:
        raise ValueError(f"width_mult must be positive, got {width_mult!r}")
    if input_size is None:
        input_size = (size, size)
    if (len(input_size) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 32
                                    for v in input_size)):
        raise ValueError(f"input_size must be (width, height), ints >= 32, got {input_size!r}")
    input_size = (int(input_size[0]), int(input_size[1]))
    if anchor_scales is not None:
        anchor_scales = [float(v) for v in anchor_scales]
        if len(anchor_scales) != 7 or not all(0 < v for v in anchor_scales) or anchor_scales != sorted(anchor_scales):
            raise ValueError(f"anchor_scales must be 7 increasing positive relative scales, got {anchor_scales!r}")
    norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    backbone = mobilenet_v2(weights=None, width_mult=width_mult, norm_layer=norm_layer)
    _normal_init(backbone)
    features = MobileNetV2SSDLiteFeatures(backbone.features, norm_layer, width_mult)
    anchors = DefaultBoxGenerator([[2, 3] for _ in features.out_channels], min_ratio=0.2, max_ratio=0.95,
                                  scales=anchor_scales)
    head = SSDLiteHead(features.out_channels, anchors.num_anchors_per_location(), num_classes, norm_layer)
    return SSD(features, anchors, input_size, num_classes, head=head,
               score_thresh=0.001, nms_thresh=0.55, detections_per_img=300, topk_candidates=300,
               image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])


@dataclass
class SSDStageState(StageState):
    """Block outputs so far (``outputs[i]`` = after block ``i + 1``), the network input size
    (height, width), and the stride-16 tap once block :data:`C4_BLOCK` has run."""

    image_size: tuple[int, int] = (0, 0)
    tap: torch.Tensor | None = None


@dataclass(frozen=True)
class Resize:
    """How :meth:`SSDMobileNetV2Split.prepare` stretched a frame onto the network input."""

    width: int
    height: int
    input_width: int
    input_height: int

    def normalise(self, boxes_input: torch.Tensor) -> torch.Tensor:
        """Boxes [N, 4] in network-input pixels -> fractions of the input (= of the frame)."""
        return boxes_input / boxes_input.new_tensor([self.input_width, self.input_height] * 2)

    def to_frame(self, normalised: torch.Tensor) -> torch.Tensor:
        """Normalised boxes [N, 4] -> frame pixels."""
        return normalised * normalised.new_tensor([self.width, self.height] * 2)


class SSDMobileNetV2Split:
    """SSD-MobileNetV2 as a :class:`~faceopt.detection.amphibian.SplitDetector`.

    Layer ``m`` (1..19) is "after block ``m`` of ``mobilenet_v2.features``": ``run_until``
    runs only those blocks; ``run_from`` runs the remaining blocks, the extras, the heads
    and torchvision's postprocessing (score threshold, top-k, NMS) and returns one
    ``{"boxes", "scores", "labels"}`` dict per image, boxes in network-input pixels.
    ``decode`` keeps scores >= ``score_threshold`` (all foreground classes) and maps the
    boxes to the frame. The model is put in eval mode.
    """

    def __init__(self, model: SSD | None = None, *, score_threshold: float = 0.5) -> None:
        self.model = (model if model is not None else build_ssd_mobilenetv2()).eval()
        if not isinstance(self.model.backbone, MobileNetV2SSDLiteFeatures):
            raise ValueError("model must come from build_ssd_mobilenetv2 (its backbone is MobileNetV2SSDLiteFeatures)")
        self.score_threshold = score_threshold

    @property
    def num_layers(self) -> int:
        return self.model.backbone.num_blocks

    def _check_layer(self, layer: int) -> None:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 1 <= layer <= self.num_layers:
            raise ValueError(f"layer must be an int in 1..{self.num_layers} (blocks of mobilenet_v2.features), "
                             f"got {layer!r}")

    def prepare(self, frame_bgr: np.ndarray) -> tuple[torch.Tensor, Resize]:
        """BGR uint8 frame -> network input [1, 3, size, size] (the model's own resize and normalisation)."""
        check_image(frame_bgr, "bgr")
        h, w = frame_bgr.shape[:2]
        image = torch.from_numpy(np.ascontiguousarray(frame_bgr[..., ::-1])).permute(2, 0, 1).float() / 255.0
        images, _ = self.model.transform([image])
        ih, iw = images.image_sizes[0]
        return images.tensors, Resize(w, h, iw, ih)

    def run_until(self, x: torch.Tensor, layer: int) -> SSDStageState:
        """Run blocks 1..``layer`` of the backbone on a prepared input [B, 3, size, size]."""
        self._check_layer(layer)
        outputs, tap = self.model.backbone.run_blocks(x, 0, int(layer))
        return SSDStageState(outputs, image_size=(int(x.shape[-2]), int(x.shape[-1])), tap=tap)

    def run_from(self, state: SSDStageState, layer: int) -> list[dict[str, torch.Tensor]]:
        """Finish the network from ``run_until(x, layer)``: the rest of the backbone, extras, heads, postprocessing."""
        self._check_layer(layer)
        if len(state.outputs) != layer:
            raise ValueError(f"state holds {len(state.outputs)} block outputs, not {layer}")
        features = self.model.backbone
        rest, tap = features.run_blocks(state.features, int(layer), features.num_blocks)
        tap = state.tap if tap is None else tap
        assert tap is not None
        maps = features.feature_maps(rest[-1] if rest else state.features, tap)
        head_outputs = self.model.head(maps)
        h, w = state.image_size
        batch = state.features.shape[0]
        images = ImageList(state.features.new_zeros(()).expand(batch, 3, h, w), [(h, w)] * batch)
        anchors = self.model.anchor_generator(images, maps)
        return self.model.postprocess_detections(head_outputs, anchors, images.image_sizes)

    def decode(self, raw: list[dict[str, torch.Tensor]], geometry: Resize
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes in frame pixels [N, 4], scores [N], boxes normalised to the input [N, 4] (one image only)."""
        if len(raw) != 1:
            raise ValueError(f"decode takes the detections of one image, got {len(raw)}")
        keep = raw[0]["scores"] >= self.score_threshold
        normalised = geometry.normalise(raw[0]["boxes"][keep].float())
        scores = raw[0]["scores"][keep]
        return (geometry.to_frame(normalised).cpu().numpy().astype(np.float32),
                scores.cpu().numpy().astype(np.float32), normalised.cpu().numpy().astype(np.float32))

    def stage_macs(self, example: np.ndarray) -> tuple[list[int], int]:
        """Multiply-accumulates of each backbone block and of the rest (extras + heads) on one frame.

        Same contract as :func:`faceopt.detection.experiments.stage_macs` (which needs
        ``net.stages``), so :func:`~faceopt.detection.experiments.expected_macs` applies.
        """
        x, _ = self.prepare(example)
        features = self.model.backbone
        per_block: list[int] = []
        tap = None
        with torch.inference_mode():
            for i in range(features.num_blocks):
                with FlopCounterMode(display=False) as counter:
                    (x,), t = features.run_blocks(x, i, i + 1)
                tap = t if t is not None else tap
                per_block.append(counter.get_total_flops() // 2)
            assert tap is not None
            with FlopCounterMode(display=False) as counter:
                self.model.head(features.feature_maps(x, tap))
        return per_block, counter.get_total_flops() // 2
