"""BlazeFace (MediaPipe short-range face detector) as a PyTorch module.

The network is rebuilt at run time from MediaPipe's
``face_detection_short_range.tflite`` (asset ``blazeface_short_range``); no
third-party weight is stored in this repository.

Architecture (read from the op graph, checked against the file):

* stage 0, the *stem*: 5x5 conv, stride 2, TFLite ``SAME`` (pads (1, 2) on a
  128 input), 3 -> 24 channels, ReLU: 128x128 -> 64x64;
* stages 1..16, *BlazeBlocks*: 3x3 depthwise conv (``SAME``; stride 2 pads
  (0, 1)) -> 1x1 conv, plus a shortcut (2x2 max-pool when the block has stride
  2, then zero channel padding when the block widens), add, ReLU.  Strides 2 at
  blocks 3, 6 and 12; widths 24,28,32,36,42,48,56,64,72,80,88,96,96,96,96,96.
* heads: 1x1 convs on the output of stage 11 (16x16x88, stride 8: 2 anchors per
  cell) and stage 16 (8x8x96, stride 16: 6 anchors per cell) giving 16
  regressors (box cx, cy, w, h + 6 keypoints x, y, all in 128-pixel units
  relative to the anchor) and 1 score logit per anchor; 512 + 384 = 896 anchors.

``features(x, upto=m)`` runs only the first ``m`` stages (the AmphibianDetector
split point): index ``i`` of the returned list is the output of stage ``i``.

Pre-processing follows MediaPipe's ``face_detection_short_range`` graph
(``ImageToTensorCalculator``: ``keep_aspect_ratio: true``, ``BORDER_ZERO``,
``output_tensor_float_range {-1, 1}``): the image (RGB) is letterboxed into a
128x128 square centred on the image with black (0) borders using an affine warp
with bilinear interpolation (the corners of the square ROI map to the corners of
the tensor, as ``cv::getPerspectiveTransform`` does there), then values are
mapped ``v / 127.5 - 1``.

Post-processing follows ``TensorsToDetectionsCalculator`` (``x/y/w/h_scale``
128, ``sigmoid_score``, ``score_clipping_thresh`` 100, ``min_score_thresh``
0.5, ``reverse_output_order``) and ``NonMaxSuppressionCalculator`` with
``algorithm: WEIGHTED``, ``overlap_type: INTERSECTION_OVER_UNION``,
``min_suppression_threshold: 0.3``: every kept detection is the score-weighted
mean of the boxes/keypoints of all remaining detections overlapping the best one
by IoU > 0.3 (the best one included), with the best one's score.  Plain NMS
(``torchvision.ops.nms``) is available with ``nms="plain"``.  Finally the
letterbox is removed (``DetectionLetterboxRemovalCalculator``) and coordinates
are scaled to the input image's pixels.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceopt.assets import asset_path
from faceopt.data.images import check_image
from faceopt.detection.tflite_weights import (
    TFLiteModel,
    TFLiteOp,
    conv2d_weight_to_torch,
    depthwise_weight_to_torch,
    pad_same,
    read_tflite,
)

__all__ = [
    "ASSET_NAME",
    "INPUT_SIZE",
    "NUM_ANCHORS",
    "AnchorOptions",
    "BlazeBlock",
    "BlazeFace",
    "Letterbox",
    "SamePadConv2d",
    "decode",
    "generate_anchors",
    "postprocess",
    "preprocess",
    "weighted_nms",
]

ASSET_NAME = "blazeface_short_range"
INPUT_SIZE = 128
NUM_ANCHORS = 896
NUM_KEYPOINTS = 6
MIN_SUPPRESSION_THRESHOLD = 0.3
SCORE_CLIPPING_THRESHOLD = 100.0


# --------------------------------------------------------------------------- #
# Layers
# --------------------------------------------------------------------------- #
class SamePadConv2d(nn.Module):
    """``nn.Conv2d`` with TFLite ``SAME``/``VALID`` padding (asymmetric for even sizes / stride 2)."""

    def __init__(self, conv: nn.Conv2d, padding: str) -> None:
        super().__init__()
        if padding not in ("SAME", "VALID"):
            raise ValueError(f"padding must be 'SAME' or 'VALID', not {padding!r}")
        self.conv = conv
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "SAME":
            x = pad_same(x, self.conv.kernel_size, self.conv.stride, self.conv.dilation)
        return self.conv(x)


class Stem(nn.Module):
    """Stage 0: conv (5x5, stride 2, SAME) + ReLU."""

    def __init__(self, conv: SamePadConv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class BlazeBlock(nn.Module):
    """Depthwise 3x3 -> pointwise 1x1, plus (max-pooled, channel-zero-padded) shortcut, ReLU."""

    def __init__(self, dw: SamePadConv2d, pw: SamePadConv2d, pool: tuple[int, int] | None,
                 pool_padding: str, channel_pad: tuple[int, int]) -> None:
        super().__init__()
        self.dw = dw
        self.pw = pw
        self.pool = pool
        self.pool_padding = pool_padding
        self.channel_pad = channel_pad

    @property
    def stride(self) -> int:
        return int(self.dw.conv.stride[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pw(self.dw(x))
        s = x
        if self.pool is not None:
            if self.pool_padding == "SAME":
                s = pad_same(s, self.pool, self.pool, value=float("-inf"))
            s = F.max_pool2d(s, self.pool, self.pool)
        if any(self.channel_pad):
            s = F.pad(s, (0, 0, 0, 0, *self.channel_pad))
        return F.relu(h + s)


def _conv_from_op(model: TFLiteModel, op: TFLiteOp) -> SamePadConv2d:
    w = model.constant(op.inputs[1])
    b = model.constant(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    o = op.options
    if o.get("activation") not in (None,):
        raise NotImplementedError(f"fused activation {o['activation']} in op {op.index} ({op.opcode})")
    if op.opcode == "CONV_2D":
        wt = conv2d_weight_to_torch(w)
        groups = 1
    elif op.opcode == "DEPTHWISE_CONV_2D":
        if o.get("depth_multiplier", 1) != 1:
            raise NotImplementedError("depthwise conv with channel multiplier != 1")
        wt = depthwise_weight_to_torch(w)
        groups = wt.shape[0]
    else:
        raise ValueError(f"op {op.index} is {op.opcode}, not a convolution")
    out_ch, in_per_group, kh, kw = wt.shape
    conv = nn.Conv2d(in_per_group * groups, out_ch, (kh, kw), stride=o["stride"], dilation=o.get("dilation", (1, 1)),
                     groups=groups, bias=b is not None)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(wt))
        if b is not None and conv.bias is not None:  # bias=b is not None
            conv.bias.copy_(torch.from_numpy(b.astype(np.float32)))
    return SamePadConv2d(conv, o["padding"])


def _only(ops: Sequence[TFLiteOp], opcode: str, what: str) -> TFLiteOp:
    found = [op for op in ops if op.opcode == opcode]
    if len(found) != 1:
        raise ValueError(f"unexpected BlazeFace graph: expected one {opcode} ({what}), found {len(found)}")
    return found[0]


# --------------------------------------------------------------------------- #
# Anchors
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class AnchorOptions:
    """``SsdAnchorsCalculatorOptions`` of MediaPipe's short-range face detection graph."""

    num_layers: int = 4
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    input_size_height: int = 128
    input_size_width: int = 128
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    strides: tuple[int, ...] = (8, 16, 16, 16)
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True
    reduce_boxes_in_lowest_layer: bool = False


def _calculate_scale(min_scale: float, max_scale: float, stride_index: int, num_strides: int) -> float:
    if num_strides == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * stride_index / (num_strides - 1.0)


def generate_anchors(options: AnchorOptions = AnchorOptions()) -> np.ndarray:
    """MediaPipe ``SsdAnchorsCalculator``: float32 ``[N, 4]`` rows ``(x_center, y_center, w, h)``, normalised.

    Layers with the same stride are merged into one feature map; for each cell
    (row-major) the anchors of all merged layers follow each other.  With
    ``fixed_anchor_size`` every anchor has ``w = h = 1`` (the regressors are then
    in units of the input size).
    """
    o = options
    anchors: list[tuple[float, float, float, float]] = []
    layer_id = 0
    while layer_id < o.num_layers:
        anchor_height: list[float] = []
        anchor_width: list[float] = []
        aspect_ratios: list[float] = []
        scales: list[float] = []
        last = layer_id
        while last < len(o.strides) and o.strides[last] == o.strides[layer_id]:
            scale = _calculate_scale(o.min_scale, o.max_scale, last, len(o.strides))
            if last == 0 and o.reduce_boxes_in_lowest_layer:
                aspect_ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for ar in o.aspect_ratios:
                    aspect_ratios.append(ar)
                    scales.append(scale)
                if o.interpolated_scale_aspect_ratio > 0.0:
                    scale_next = 1.0 if last == len(o.strides) - 1 else _calculate_scale(
                        o.min_scale, o.max_scale, last + 1, len(o.strides))
                    scales.append(float(np.sqrt(scale * scale_next)))
                    aspect_ratios.append(o.interpolated_scale_aspect_ratio)
            last += 1
        for ar, sc in zip(aspect_ratios, scales):
            r = float(np.sqrt(ar))
            anchor_height.append(sc / r)
            anchor_width.append(sc * r)
        stride = o.strides[layer_id]
        fm_h = int(np.ceil(o.input_size_height / stride))
        fm_w = int(np.ceil(o.input_size_width / stride))
        for y in range(fm_h):
            for x in range(fm_w):
                for k in range(len(anchor_height)):
                    xc = (x + o.anchor_offset_x) / fm_w
                    yc = (y + o.anchor_offset_y) / fm_h
                    if o.fixed_anchor_size:
                        anchors.append((xc, yc, 1.0, 1.0))
                    else:
                        anchors.append((xc, yc, anchor_width[k], anchor_height[k]))
        layer_id = last
    return np.asarray(anchors, dtype=np.float32)


# --------------------------------------------------------------------------- #
# The network
# --------------------------------------------------------------------------- #
class BlazeFace(nn.Module):
    """MediaPipe BlazeFace short-range detector rebuilt from its ``.tflite`` file.

    Input of :meth:`forward`: float ``[B, 3, 128, 128]`` RGB in ``[-1, 1]`` (see
    :func:`preprocess`).  Output: raw regressors ``[B, 896, 16]`` and raw score
    logits ``[B, 896, 1]``, in the anchor order of :func:`generate_anchors`
    (identical to the TFLite outputs ``regressors`` and ``classificators``).
    """

    anchors: torch.Tensor

    def __init__(self, stages: Sequence[nn.Module], heads: Sequence[tuple[int, nn.Module, nn.Module, int]]) -> None:
        """``heads``: ``(stage index, score conv, regressor conv, anchors per cell)`` in output order."""
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head_stages = tuple(h[0] for h in heads)
        self.anchors_per_cell = tuple(h[3] for h in heads)
        self.classifiers = nn.ModuleList(h[1] for h in heads)
        self.regressors = nn.ModuleList(h[2] for h in heads)
        self.register_buffer("anchors", torch.from_numpy(generate_anchors()), persistent=False)

    # -- construction ---------------------------------------------------- #
    @classmethod
    def from_tflite(cls, path: str | Path | None = None) -> BlazeFace:
        """Build the network from the ``.tflite`` file (default: the cached ``blazeface_short_range`` asset).

        Raises:
            faceopt.assets.AssetMissingError: ``path`` is ``None`` and the asset is
                not cached (the message names ``faceopt assets fetch blazeface_short_range``).
        """
        if path is None:

            path = asset_path(ASSET_NAME)
        model = read_tflite(path)
        return cls._from_graph(model).eval()

    @classmethod
    def _from_graph(cls, model: TFLiteModel) -> BlazeFace:
        compute = {op.index for op in model.compute_ops()}

        def users(t: int) -> list[TFLiteOp]:
            return [op for op in model.consumers(t) if op.index in compute]

        def follow_relu(t: int) -> int:
            relu = _only(users(t), "RELU", f"activation after tensor {t}")
            return relu.outputs[0]

        if len(model.inputs) != 1:
            raise ValueError("BlazeFace graph must have exactly one input")
        stem_op = _only(users(model.inputs[0]), "CONV_2D", "stem")
        cur = follow_relu(stem_op.outputs[0])
        stages: list[nn.Module] = [Stem(_conv_from_op(model, stem_op))]
        stage_of_tensor = {cur: 0}
        while True:
            dws = [op for op in users(cur) if op.opcode == "DEPTHWISE_CONV_2D"]
            if not dws:
                break
            if len(dws) != 1:
                raise ValueError(f"unexpected BlazeFace graph: {len(dws)} depthwise convs read tensor {cur}")
            dw = dws[0]
            pw = _only(users(dw.outputs[0]), "CONV_2D", "block pointwise conv")
            add = _only(users(pw.outputs[0]), "ADD", "block residual add")
            if add.options.get("activation"):
                raise NotImplementedError("fused activation on the residual add")
            short = [t for t in add.inputs if t != pw.outputs[0]][0]
            channel_pad = (0, 0)
            pool: tuple[int, int] | None = None
            pool_padding = "VALID"
            prod = model.producer(short)
            if prod is not None and prod.opcode == "PAD":
                pads = model.constant(prod.inputs[1]).astype(int).reshape(4, 2)
                if pads[:3].any():
                    raise NotImplementedError(f"PAD {pads.tolist()} is not a pure channel padding")
                channel_pad = (int(pads[3, 0]), int(pads[3, 1]))
                short = prod.inputs[0]
                prod = model.producer(short)
            if prod is not None and prod.opcode == "MAX_POOL_2D":
                if tuple(prod.options["filter"]) != tuple(prod.options["stride"]):
                    raise NotImplementedError("max-pool shortcut with filter != stride")
                pool = tuple(prod.options["stride"])
                pool_padding = prod.options["padding"]
                short = prod.inputs[0]
            if short != cur:
                raise ValueError(f"unexpected BlazeFace graph: shortcut of op {add.index} does not start at the block input")
            stages.append(BlazeBlock(_conv_from_op(model, dw), _conv_from_op(model, pw), pool, pool_padding, channel_pad))
            cur = follow_relu(add.outputs[0])
            stage_of_tensor[cur] = len(stages) - 1

        # Heads: 1x1 convs on stage outputs -> RESHAPE -> CONCATENATION -> graph outputs.
        outs = {}
        for t in model.outputs:
            shape = model.tensors[t].shape
            outs["reg" if shape[-1] > 1 else "cls"] = t
        if set(outs) != {"reg", "cls"}:
            raise ValueError("BlazeFace graph must output regressors [1,N,16] and classificators [1,N,1]")
        per_kind: dict[str, list[tuple[int, TFLiteOp]]] = {}
        for kind, t in outs.items():
            concat = model.producer(t)
            if concat is None or concat.opcode != "CONCATENATION":
                raise ValueError(f"output {model.tensors[t].name!r} is not a concatenation")
            items = []
            for r in concat.inputs:
                reshape = model.producer(r)
                conv = model.producer(reshape.inputs[0]) if reshape is not None else None
                if reshape is None or reshape.opcode != "RESHAPE" or conv is None or conv.opcode != "CONV_2D":
                    raise ValueError("head outputs must be CONV_2D -> RESHAPE")
                items.append((stage_of_tensor[conv.inputs[0]], conv))
            per_kind[kind] = items
        heads = []
        for (s_cls, c_cls), (s_reg, c_reg) in zip(per_kind["cls"], per_kind["reg"]):
            if s_cls != s_reg:
                raise ValueError("classifier and regressor heads read different stages")
            n_anchor = model.tensors[c_cls.outputs[0]].shape[-1]
            heads.append((s_cls, _conv_from_op(model, c_cls), _conv_from_op(model, c_reg), n_anchor))
        net = cls(stages, heads)
        if net.anchors.shape[0] != sum(
            model.tensors[c.outputs[0]].shape[1] * model.tensors[c.outputs[0]].shape[2] * a
            for (_, c), a in zip(per_kind["cls"], net.anchors_per_cell)
        ):
            raise ValueError("anchor count does not match the heads")
        return net

    # -- running --------------------------------------------------------- #
    @property
    def num_layers(self) -> int:
        """Number of backbone stages (17: the stem and 16 BlazeBlocks)."""
        return len(self.stages)

    def features(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Run the first ``upto`` stages (all when ``None``); element ``i`` is stage ``i``'s output.

        ``upto=1`` runs only the stem (64x64x24), ``upto=12`` is the first point
        where the stride-8 head can run (stage 11, 16x16x88), ``upto=17`` the full
        backbone (stage 16, 8x8x96).
        """
        n = self.num_layers if upto is None else int(upto)
        if not 0 <= n <= self.num_layers:
            raise ValueError(f"upto must be in [0, {self.num_layers}], got {upto}")
        feats: list[torch.Tensor] = []
        for stage in self.stages[:n]:
            x = stage(x)
            feats.append(x)
        return feats

    def head(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw regressors ``[B, 896, 16]`` and score logits ``[B, 896, 1]`` from the stage outputs."""
        need = max(self.head_stages) + 1
        if len(feats) < need:
            raise ValueError(f"the heads need the outputs of the first {need} stages, got {len(feats)}")
        regs, clss = [], []
        for s, c, r in zip(self.head_stages, self.classifiers, self.regressors):
            f = feats[s]
            b = f.shape[0]
            clss.append(c(f).permute(0, 2, 3, 1).reshape(b, -1, 1))
            regs.append(r(f).permute(0, 2, 3, 1).reshape(b, -1, 16))
        return torch.cat(regs, dim=1), torch.cat(clss, dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"BlazeFace expects [B, 3, {INPUT_SIZE}, {INPUT_SIZE}] input, got {tuple(x.shape)}")
        return self.head(self.features(x))

    @torch.no_grad()
    def detect(self, image: np.ndarray, score_threshold: float = 0.5, *, color: str = "bgr",
               nms: str = "weighted") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect faces in one uint8 ``HxWx3`` image (``color``: ``"bgr"`` as from OpenCV, or ``"rgb"``).

        Returns ``(boxes [N, 4] x1, y1, x2, y2, scores [N], keypoints [N, 6, 2])``
        in pixels of ``image``, float32, sorted by decreasing score.  Keypoints:
        right eye, left eye, nose tip, mouth centre, right ear tragion, left ear
        tragion (MediaPipe order, "right" = subject's right).
        """
        tensor, lb = preprocess(image, color=color)
        reg, cls = self(tensor.to(self.anchors.device))
        return postprocess(reg[0], cls[0], self.anchors, lb, score_threshold=score_threshold, nms=nms)


# --------------------------------------------------------------------------- #
# Pre- and post-processing
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Letterbox:
    """Where the image sits in the 128x128 tensor: ``pixel = tensor_norm * side - offset``."""

    width: int
    height: int
    side: float  # side of the square ROI in image pixels (max(width, height))
    offset_x: float  # (side - width) / 2
    offset_y: float

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Normalised tensor coordinates (``[..., 2]``, x then y) -> image pixels."""
        out = np.array(xy, dtype=np.float32, copy=True)
        out[..., 0] = out[..., 0] * self.side - self.offset_x
        out[..., 1] = out[..., 1] * self.side - self.offset_y
        return out


def preprocess(image: np.ndarray, color: str = "bgr", *, size: int = INPUT_SIZE) -> tuple[torch.Tensor, Letterbox]:
    """MediaPipe ``ImageToTensorCalculator`` for this model: letterbox to 128x128, RGB, ``[-1, 1]``.

    Returns ``[1, 3, 128, 128]`` float32 and the :class:`Letterbox` to map
    detections back.  ``size`` gives another square input (224 for the pose
    detector of :mod:`faceopt.detection.blazepose`, same calculator options).
    """
    check_image(image, color)
    h, w = image.shape[:2]
    side = float(max(w, h))
    ox, oy = (side - w) / 2.0, (side - h) / 2.0
    s = size / side
    # ROI corner (-ox, -oy) -> (0, 0), corner (side - ox, side - oy) -> (128, 128).
    m = np.array([[s, 0.0, s * ox], [0.0, s, s * oy]], dtype=np.float64)
    # Warp first, then swap the channels of the small result: the same pixels (interpolation acts on each
    # channel alone), but no pass over the whole frame, so the cost does not grow with the frame (Table 9).
    warped = cv2.warpAffine(np.ascontiguousarray(image), m, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    if color == "bgr":
        warped = cv2.cvtColor(warped, cv2.COLOR_BGR2RGB)
    x = warped.astype(np.float32) / 127.5 - 1.0
    tensor = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    return tensor, Letterbox(w, h, side, ox, oy)


def decode(raw_regressors: torch.Tensor, anchors: torch.Tensor, *, input_size: int = INPUT_SIZE,
           num_keypoints: int = NUM_KEYPOINTS) -> tuple[torch.Tensor, torch.Tensor]:
    """Regressors ``[N, 16]`` -> boxes ``[N, 4]`` (x1, y1, x2, y2) and keypoints ``[N, 6, 2]``, normalised to the tensor.

    ``input_size`` (the ``x/y/w/h_scale``) and ``num_keypoints`` default to BlazeFace's 128 and 6.
    """
    scale = float(input_size)
    a_xy, a_wh = anchors[:, None, :2], anchors[:, None, 2:]
    xc = raw_regressors[:, 0] / scale * anchors[:, 2] + anchors[:, 0]
    yc = raw_regressors[:, 1] / scale * anchors[:, 3] + anchors[:, 1]
    w = raw_regressors[:, 2] / scale * anchors[:, 2]
    h = raw_regressors[:, 3] / scale * anchors[:, 3]
    boxes = torch.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], dim=1)
    kps = raw_regressors[:, 4:4 + 2 * num_keypoints].reshape(-1, num_keypoints, 2) / scale * a_wh + a_xy
    return boxes, kps


def _iou_one(box: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    ix1 = torch.maximum(box[0], boxes[:, 0])
    iy1 = torch.maximum(box[1], boxes[:, 1])
    ix2 = torch.minimum(box[2], boxes[:, 2])
    iy2 = torch.minimum(box[3], boxes[:, 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return torch.where(union > 0, inter / union, torch.zeros_like(union))


def weighted_nms(boxes: torch.Tensor, scores: torch.Tensor, keypoints: torch.Tensor,
                 iou_threshold: float = MIN_SUPPRESSION_THRESHOLD) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MediaPipe's ``WEIGHTED`` non-maximum suppression (``NonMaxSuppressionCalculator``).

    Repeatedly take the best remaining detection; all remaining detections with
    IoU > ``iou_threshold`` to it (itself included) are removed and replaced by
    one detection whose box and keypoints are their score-weighted mean and whose
    score is the best one's.
    """
    order = torch.argsort(scores, descending=True, stable=True)
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    out_b, out_s, out_k = [], [], []
    remaining = torch.arange(scores.shape[0])
    while remaining.numel():
        best = remaining[0]
        iou = _iou_one(boxes[best], boxes[remaining])
        mask = iou > iou_threshold
        mask[0] = True  # the best box overlaps itself (guards against degenerate boxes)
        cand = remaining[mask]
        w = scores[cand]
        total = w.sum()
        out_b.append((boxes[cand] * w[:, None]).sum(0) / total)
        out_k.append((keypoints[cand] * w[:, None, None]).sum(0) / total)
        out_s.append(scores[best])
        remaining = remaining[~mask]
    if not out_s:
        return boxes[:0], scores[:0], keypoints[:0]
    return torch.stack(out_b), torch.stack(out_s), torch.stack(out_k)


def postprocess(raw_regressors: torch.Tensor, raw_scores: torch.Tensor, anchors: torch.Tensor | None = None,
                letterbox: Letterbox | None = None, score_threshold: float = 0.5,
                nms: str = "weighted", *, input_size: int = INPUT_SIZE,
                num_keypoints: int = NUM_KEYPOINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs of one image (``[896, 16]``, ``[896, 1]``) -> ``(boxes, scores, keypoints)`` as numpy.

    Coordinates are image pixels when ``letterbox`` is given, else pixels of the
    128x128 tensor.  ``input_size``/``num_keypoints`` select another model with
    the same decoding (e.g. the 224-input, 4-keypoint pose detector; then pass
    its ``anchors``).
    """
    if nms not in ("weighted", "plain"):
        raise ValueError(f"nms must be 'weighted' or 'plain', not {nms!r}")
    reg = torch.as_tensor(raw_regressors, dtype=torch.float32).reshape(-1, 4 + 2 * num_keypoints)
    logit = torch.as_tensor(raw_scores, dtype=torch.float32).reshape(-1)
    anc = torch.from_numpy(generate_anchors()) if anchors is None else anchors.to(reg.device, torch.float32)
    scores = torch.sigmoid(logit.clamp(-SCORE_CLIPPING_THRESHOLD, SCORE_CLIPPING_THRESHOLD))
    keep = scores >= score_threshold
    boxes, kps = decode(reg[keep], anc[keep], input_size=input_size, num_keypoints=num_keypoints)
    scores = scores[keep]
    if nms == "weighted":
        boxes, scores, kps = weighted_nms(boxes, scores, kps)
    else:
        from torchvision.ops import nms as tv_nms

        idx = tv_nms(boxes, scores, MIN_SUPPRESSION_THRESHOLD)
        boxes, scores, kps = boxes[idx], scores[idx], kps[idx]
    boxes_np = boxes.detach().cpu().numpy().astype(np.float32).reshape(-1, 2, 2)
    kps_np = kps.detach().cpu().numpy().astype(np.float32).reshape(-1, num_keypoints, 2)
    if letterbox is not None:
        boxes_np, kps_np = letterbox.to_image(boxes_np), letterbox.to_image(kps_np)
    else:
        boxes_np, kps_np = boxes_np * input_size, kps_np * input_size
    return boxes_np.reshape(-1, 4), scores.detach().cpu().numpy().astype(np.float32), kps_np
