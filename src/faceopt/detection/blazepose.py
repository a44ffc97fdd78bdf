"""MediaPipe's pose (person) detector as a PyTorch module, rebuilt from ``pose_detection.tflite``.

The weights are read at run time from the ``.tflite`` of the mediapipe 0.10.21
wheel (asset ``blazepose_detection``); nothing third-party is stored here.

What the file contains (read from its op graph, checked while building):

* input ``[1, 224, 224, 3]`` RGB in ``[-1, 1]``; outputs ``Identity``
  (regressors ``[1, 2254, 12]``) and ``Identity_1`` (score logits ``[1, 2254, 1]``);
* a MobileNetV2-like *encoder*: stem (explicit ``PAD`` + 3x3 conv stride 2,
  ReLU6) and inverted-residual blocks (1x1 expand + ReLU6, depthwise 3x3/5x5 +
  ReLU6 -- stride-2 ones after an explicit ``PAD`` --, linear 1x1 projection,
  residual ``ADD`` when the shape is kept), down to 7x7x1152;
* a top-down *decoder* (FPN): bilinear 2x upsampling (``RESIZE_BILINEAR``,
  half-pixel centres), 1x1 convs, lateral depthwise+1x1 branches taken from the
  28x28x40 and 14x14x112 encoder outputs, ``ADD`` (+ReLU6), and
  ``DEPTH_TO_SPACE`` (block 2) to feed three SSD heads: stride 8 (28x28, 2
  anchors per cell), stride 16 (14x14, 2) and stride 32 (7x7, 6): 1568 + 392 +
  294 = 2254 anchors; each head is depthwise 3x3 (stride 2) + 1x1 conv;
* the 1x1 weights are stored *sparse* (TFLite ``SparsityParameters``: dense
  leading dimensions and a CSR last dimension, float16 values, ``DENSIFY`` +
  ``DEQUANTIZE`` ops in the graph); :func:`read_pose_tflite` densifies them.

Stages.  For the AmphibianDetector split the *encoder* is cut into
:attr:`BlazePose.num_layers` = 17 stages (index ``i`` = output of stage ``i``):
stage 0 is the stem, every following stage ends at an inverted-residual block's
output (a residual ``ADD`` or a non-residual block's linear projection); each
stage only reads the previous stage's output.  ``features(x, upto=m)`` runs the
first ``m`` stages.  Everything else (the lateral branches, the decoder, the
heads) is :meth:`BlazePose.head`, which reads the stage outputs it needs
(stages 5, 11 and 16).  The stage table (index -> ``[C, H, W]``)::

    0: 24x112x112   1: 16x112x112   2: 24x56x56    3: 24x56x56
    4: 40x28x28     5: 40x28x28     6: 80x14x14    7: 80x14x14
    8: 80x14x14     9: 112x14x14   10: 112x14x14  11: 112x14x14
   12: 192x7x7     13: 192x7x7     14: 192x7x7    15: 192x7x7
   16: 1152x7x7

Pre-processing is MediaPipe's ``pose_detection_cpu`` graph
(``ImageToTensorCalculator``: 224x224, ``keep_aspect_ratio``, ``BORDER_ZERO``,
range ``[-1, 1]``) = :func:`faceopt.detection.blazeface.preprocess` with
``size=224``.  Post-processing is ``TensorsToDetectionsCalculator`` (12 coords,
box offset 0, 4 keypoints at offset 4, ``x/y/w/h_scale`` 224, sigmoid, clipping
100, ``reverse_output_order``, min score 0.5) and the ``WEIGHTED`` IoU 0.3
``NonMaxSuppressionCalculator``: exactly BlazeFace's decoding with other sizes
(:func:`faceopt.detection.blazeface.postprocess`).  Anchors:
``SsdAnchorsCalculator`` with 5 layers, scales 0.1484375..0.75, strides
8, 16, 32, 32, 32, offset 0.5, aspect ratio 1 (+ the interpolated one),
``fixed_anchor_size`` (see :data:`ANCHOR_OPTIONS`).

Boxes.  The detector's own box covers the person's upper body / face region.
Its 4 keypoints are: 0 the hip centre, 1 a full-body scale point, 2 the shoulder
centre, 3 an upper-body scale point.  MediaPipe turns a detection into the
(rotated) full-body ROI of the landmark model from keypoints 0 and 1
(``AlignmentPointsRectsCalculator``: a square centred on the hip centre with
side ``2 * |kp1 - kp0|``, then ``RectTransformationCalculator`` x1.25).
:func:`person_box_from_keypoints` gives the axis-aligned version of that square;
:meth:`BlazePose.detect` returns it (``box="full_body"``, scale 1.0, the default,
since thesis Chapter 2 evaluates person boxes) or the detector's box
(``box="detector"``).  Non-maximum suppression always runs on the detector's
boxes, as in MediaPipe.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceopt.assets import asset_path
from faceopt.detection import blazeface as bf
from faceopt.detection.split import StageSplit
from faceopt.detection.tflite_weights import (
    TFLiteModel,
    TFLiteOp,
    conv2d_weight_to_torch,
    depthwise_weight_to_torch,
    read_tflite,
)

__all__ = [
    "ANCHOR_OPTIONS",
    "ASSET_NAME",
    "INPUT_SIZE",
    "NUM_ANCHORS",
    "NUM_KEYPOINTS",
    "BlazePose",
    "BlazePoseSplit",
    "person_box_from_keypoints",
    "read_pose_tflite",
]

ASSET_NAME = "blazepose_detection"
INPUT_SIZE = 224
NUM_ANCHORS = 2254
NUM_KEYPOINTS = 4
NUM_COORDS = 4 + 2 * NUM_KEYPOINTS
ANCHOR_OPTIONS = bf.AnchorOptions(num_layers=5, min_scale=0.1484375, max_scale=0.75, input_size_height=224,
                                  input_size_width=224, strides=(8, 16, 32, 32, 32))
FULL_BODY_ROI_SCALE = 1.25  # MediaPipe's enlargement of the landmark ROI


# --------------------------------------------------------------------------- #
# Reading the .tflite (with sparse weights)
# --------------------------------------------------------------------------- #
def read_pose_tflite(path: str | Path) -> TFLiteModel:
    """Parse ``pose_detection.tflite``: its pruned 1x1 weights are stored sparse, which only the
    flatbuffer reader of :func:`~faceopt.detection.tflite_weights.read_tflite` expands."""
    return read_tflite(path, reader="tflite")


# --------------------------------------------------------------------------- #
# Op modules (NCHW)
# --------------------------------------------------------------------------- #
_ACT = {None: lambda x: x, "RELU": F.relu, "RELU6": lambda x: F.hardtanh(x, 0.0, 6.0)}


def _activation(op: TFLiteOp) -> str | None:
    act = op.options.get("activation")
    if act not in _ACT:
        raise NotImplementedError(f"fused activation {act} in op {op.index} ({op.opcode})")
    return act


class _Conv(nn.Module):
    def __init__(self, conv: bf.SamePadConv2d, act: str | None) -> None:
        super().__init__()
        self.conv, self.act = conv, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ACT[self.act](self.conv(x))


class _Pad(nn.Module):
    def __init__(self, pads: np.ndarray) -> None:
        super().__init__()
        p = pads.astype(int).reshape(4, 2)  # NHWC (before, after)
        if p[0].any():
            raise NotImplementedError("PAD along the batch axis")
        self.pad = (int(p[2, 0]), int(p[2, 1]), int(p[1, 0]), int(p[1, 1]), int(p[3, 0]), int(p[3, 1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad)


class _Add(nn.Module):
    def __init__(self, act: str | None) -> None:
        super().__init__()
        self.act = act

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _ACT[self.act](a + b)


class _DepthToSpace(nn.Module):
    """TFLite ``DEPTH_TO_SPACE`` (NHWC, "DCR": input channel ``(i * bs + j) * C + c``)."""

    def __init__(self, block: int) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.block
        x = x.reshape(b, s, s, c // (s * s), h, w).permute(0, 3, 4, 1, 5, 2)
        return x.reshape(b, c // (s * s), h * s, w * s)


class _Resize(nn.Module):
    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TFLite half_pixel_centers=True, align_corners=False == PyTorch align_corners=False.
        return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)


class _Reshape(nn.Module):
    """NCHW conv output -> TFLite ``[B, N, K]`` (the NHWC memory order)."""

    def __init__(self, last: int) -> None:
        super().__init__()
        self.last = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.last)


class _Concat(nn.Module):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.axis)


def _module_for(model: TFLiteModel, op: TFLiteOp) -> tuple[nn.Module, tuple[int, ...]]:
    """The PyTorch module for one op and the activation tensors it reads."""
    o = op.options
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = model.constant(op.inputs[1])
        b = model.constant(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        if op.opcode == "CONV_2D":
            wt, groups = conv2d_weight_to_torch(w), 1
        else:
            if o.get("depth_multiplier", 1) != 1:
                raise NotImplementedError("depthwise conv with channel multiplier != 1")
            wt = depthwise_weight_to_torch(w)
            groups = wt.shape[0]
        out_ch, in_per_group, kh, kw = wt.shape
        conv = nn.Conv2d(in_per_group * groups, out_ch, (kh, kw), stride=o["stride"],
                         dilation=o.get("dilation", (1, 1)), groups=groups, bias=b is not None)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(wt))
            if b is not None and conv.bias is not None:  # bias=b is not None
                conv.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        return _Conv(bf.SamePadConv2d(conv, o["padding"]), _activation(op)), (op.inputs[0],)
    if op.opcode == "PAD":
        return _Pad(model.constant(op.inputs[1])), (op.inputs[0],)
    if op.opcode == "ADD":
        lhs, rhs = op.inputs[:2]
        if model.tensors[lhs].shape != model.tensors[rhs].shape:
            raise NotImplementedError(f"broadcasting ADD (op {op.index})")
        return _Add(_activation(op)), (lhs, rhs)
    if op.opcode == "DEPTH_TO_SPACE":
        return _DepthToSpace(o["block_size"]), (op.inputs[0],)
    if op.opcode == "RESIZE_BILINEAR":
        if o.get("align_corners") or not o.get("half_pixel_centers"):
            raise NotImplementedError("RESIZE_BILINEAR other than half_pixel_centers=True, align_corners=False")
        size = model.tensors[op.outputs[0]].shape[1:3]
        return _Resize((int(size[0]), int(size[1]))), (op.inputs[0],)
    if op.opcode == "RESHAPE":
        out = model.tensors[op.outputs[0]].shape
        if len(model.tensors[op.inputs[0]].shape) != 4 or len(out) != 3:
            raise NotImplementedError("only NHWC [B,H,W,C] -> [B,N,K] reshapes are supported")
        return _Reshape(int(out[-1])), (op.inputs[0],)
    if op.opcode == "CONCATENATION":
        if o.get("activation"):
            raise NotImplementedError("fused activation on a concatenation")
        if any(len(model.tensors[t].shape) == 4 for t in op.inputs):
            raise NotImplementedError("4-D concatenation (layout change) is not supported")
        return _Concat(int(o["axis"])), tuple(op.inputs)
    raise NotImplementedError(f"op {op.index}: {op.opcode} is not supported")


class OpSequence(nn.Module):
    """A run of TFLite ops in execution order over a dictionary of tensors (by TFLite index)."""

    def __init__(self, model: TFLiteModel, ops: Sequence[TFLiteOp]) -> None:
        super().__init__()
        built = [_module_for(model, op) for op in ops]
        self.ops = nn.ModuleList(m for m, _ in built)
        self.reads = [r for _, r in built]
        self.writes = [op.outputs[0] for op in ops]
        written = set(self.writes)
        self.needs = sorted({t for r in self.reads for t in r} - written)

    def run(self, env: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        for mod, reads, out in zip(self.ops, self.reads, self.writes):
            env[out] = mod(*(env[t] for t in reads))
        return env


class _Stage(nn.Module):
    """One encoder stage: reads only the previous stage output (tensor ``source``), returns its own output."""

    def __init__(self, seq: OpSequence, source: int, output: int) -> None:
        super().__init__()
        self.seq, self.source, self.output = seq, source, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq.run({self.source: x})[self.output]


# --------------------------------------------------------------------------- #
# The network
# --------------------------------------------------------------------------- #
class BlazePose(nn.Module):
    """MediaPipe pose detector rebuilt from ``pose_detection.tflite``.

    :meth:`forward`: float ``[B, 3, 224, 224]`` RGB in ``[-1, 1]`` -> raw
    regressors ``[B, 2254, 12]`` and score logits ``[B, 2254, 1]``, identical in
    layout to the TFLite outputs ``Identity`` and ``Identity_1``.
    """

    anchors: torch.Tensor

    def __init__(self, stages: Sequence[_Stage], head: OpSequence, head_inputs: dict[int, int],
                 outputs: tuple[int, int]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head_ops = head
        self.head_inputs = dict(head_inputs)  # TFLite tensor -> stage index
        self.output_tensors = outputs  # (regressors, scores)
        self.register_buffer("anchors", torch.from_numpy(bf.generate_anchors(ANCHOR_OPTIONS)), persistent=False)

    @classmethod
    def from_tflite(cls, path: str | Path | None = None) -> BlazePose:
        """Build from the ``.tflite`` (default: the cached ``blazepose_detection`` asset).

        Raises:
            faceopt.assets.AssetMissingError: ``path`` is ``None`` and the asset is
                not cached (the message names ``faceopt assets fetch blazepose_detection``).
        """
        if path is None:

            path = asset_path(ASSET_NAME)
        return cls._from_graph(read_pose_tflite(path)).eval()

    @classmethod
    def _from_graph(cls, model: TFLiteModel) -> BlazePose:
        ops = model.compute_ops()
        if len(model.inputs) != 1 or model.tensors[model.inputs[0]].shape != (1, INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError("the pose detector must have one [1, 224, 224, 3] input")
        outs: dict[str, int] = {}
        for t in model.outputs:
            shape = model.tensors[t].shape
            outs["reg" if shape[-1] == NUM_COORDS else "cls"] = t
        if set(outs) != {"reg", "cls"} or model.tensors[outs["reg"]].shape != (1, NUM_ANCHORS, NUM_COORDS) \
                or model.tensors[outs["cls"]].shape != (1, NUM_ANCHORS, 1):
            raise ValueError(f"expected outputs [1,{NUM_ANCHORS},{NUM_COORDS}] and [1,{NUM_ANCHORS},1]")
        producer = {op.outputs[0]: op for op in ops}
        # The encoder ends at the last op before the first decoder op (upsampling / depth-to-space).
        first_dec = next(i for i, op in enumerate(ops) if op.opcode in ("RESIZE_BILINEAR", "DEPTH_TO_SPACE"))
        enc_end = producer[ops[first_dec].inputs[0]]
        # Main path: encoder ops the encoder's final tensor depends on (the lateral branches are not).
        main: set[int] = set()
        todo = [enc_end.outputs[0]]
        while todo:
            op = producer.get(todo.pop())
            if op is None or op.index in main:
                continue
            main.add(op.index)
            todo.extend(t for t in op.inputs if t >= 0 and t in producer)
        main_ops = [op for op in ops if op.index in main]

        def only_adds(t: int) -> bool:
            users = [u for u in model.consumers(t) if u.index in main]
            return bool(users) and all(u.opcode == "ADD" for u in users)

        cuts = []
        for k, op in enumerate(main_ops):
            end = (k == len(main_ops) - 1 or (op.opcode == "ADD")
                   or (op.opcode == "CONV_2D" and op.options.get("activation") is None and not only_adds(op.outputs[0]))
                   or (k > 0 and main_ops[k - 1].opcode == "PAD" and main_ops[k - 1].inputs[0] == model.inputs[0]))
            if end:
                cuts.append(k)
        stages: list[_Stage] = []
        source = model.inputs[0]
        start = 0
        for k in cuts:
            seq = OpSequence(model, main_ops[start:k + 1])
            if seq.needs != [source]:
                raise ValueError(f"stage {len(stages)} reads {seq.needs}, not only the previous stage {source}")
            stages.append(_Stage(seq, source, main_ops[k].outputs[0]))
            source, start = main_ops[k].outputs[0], k + 1
        stage_of = {s.output: i for i, s in enumerate(stages)}
        head = OpSequence(model, [op for op in ops if op.index not in main])
        missing = [t for t in head.needs if t not in stage_of]
        if missing:
            raise ValueError(f"the heads read tensors {missing} that are not stage outputs")
        net = cls(stages, head, {t: stage_of[t] for t in head.needs}, (outs["reg"], outs["cls"]))
        if net.anchors.shape[0] != NUM_ANCHORS:
            raise ValueError(f"{net.anchors.shape[0]} anchors for {NUM_ANCHORS} outputs")
        return net

    # -- running --------------------------------------------------------- #
    @property
    def num_layers(self) -> int:
        """Number of encoder stages (17)."""
        return len(self.stages)

    def features(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Run the first ``upto`` encoder stages (all when ``None``); element ``i`` is stage ``i``'s output."""
        n = self.num_layers if upto is None else int(upto)
        if not 0 <= n <= self.num_layers:
            raise ValueError(f"upto must be in [0, {self.num_layers}], got {upto}")
        feats: list[torch.Tensor] = []
        for stage in self.stages[:n]:
            x = stage(x)
            feats.append(x)
        return feats

    def head(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder + heads: raw regressors ``[B, 2254, 12]`` and logits ``[B, 2254, 1]`` from the stage outputs."""
        need = max(self.head_inputs.values()) + 1
        if len(feats) < need:
            raise ValueError(f"the heads need the outputs of the first {need} stages, got {len(feats)}")
        env = {t: feats[i] for t, i in self.head_inputs.items()}
        env = self.head_ops.run(env)
        return env[self.output_tensors[0]], env[self.output_tensors[1]]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"BlazePose expects [B, 3, {INPUT_SIZE}, {INPUT_SIZE}] input, got {tuple(x.shape)}")
        return self.head(self.features(x))

    @torch.no_grad()
    def detect(self, image_bgr: np.ndarray, score_threshold: float = 0.5, *, color: str = "bgr",
               box: str = "full_body", scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect people in one uint8 ``HxWx3`` image.

        Returns ``(boxes [N, 4] x1, y1, x2, y2, scores [N], keypoints [N, 4, 2])``
        in pixels of the image, float32, by decreasing score.  ``box="full_body"``
        (default): :func:`person_box_from_keypoints` with ``scale`` (1.0: the
        square around the hip-centre circle; MediaPipe's landmark ROI uses 1.25);
        ``box="detector"``: the detector's own (upper body / face) box.
        """
        if box not in ("full_body", "detector"):
            raise ValueError(f"box must be 'full_body' or 'detector', not {box!r}")
        tensor, lb = preprocess(image_bgr, color=color)
        reg, cls = self(tensor.to(self.anchors.device))
        boxes, scores, kps = postprocess(reg[0], cls[0], self.anchors, lb, score_threshold=score_threshold)
        if box == "full_body":
            boxes = person_box_from_keypoints(kps, scale=scale)
        return boxes, scores, kps


def preprocess(image: np.ndarray, color: str = "bgr") -> tuple[torch.Tensor, bf.Letterbox]:
    """Letterbox to 224x224, RGB, ``[-1, 1]``: ``[1, 3, 224, 224]`` and the :class:`~faceopt.detection.blazeface.Letterbox`."""
    return bf.preprocess(image, color=color, size=INPUT_SIZE)


def postprocess(raw_regressors: torch.Tensor, raw_scores: torch.Tensor, anchors: torch.Tensor | None = None,
                letterbox: bf.Letterbox | None = None, score_threshold: float = 0.5,
                nms: str = "weighted") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs of one image (``[2254, 12]``, ``[2254, 1]``) -> detector boxes, scores, keypoints ``[N, 4, 2]``.

    Pixels of the image when ``letterbox`` is given, else of the 224x224 tensor.
    """
    if anchors is None:
        anchors = torch.from_numpy(bf.generate_anchors(ANCHOR_OPTIONS))
    return bf.postprocess(raw_regressors, raw_scores, anchors, letterbox, score_threshold, nms,
                          input_size=INPUT_SIZE, num_keypoints=NUM_KEYPOINTS)


def person_box_from_keypoints(keypoints: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Full-body boxes ``[N, 4]`` (x1, y1, x2, y2) from pose keypoints ``[N, >=2, 2]`` (pixels).

    MediaPipe's alignment: the body lies in the circle centred on the hip centre
    (keypoint 0) through the full-body scale point (keypoint 1); the box is the
    axis-aligned square around that circle, side ``2 * scale * |kp1 - kp0|``
    (``scale=1.25`` is MediaPipe's landmark ROI; the rotation is dropped).
    """
    kps = np.asarray(keypoints, dtype=np.float32)
    if kps.ndim != 3 or kps.shape[1] < 2 or kps.shape[2] != 2:
        raise ValueError(f"keypoints must be [N, K>=2, 2], got shape {kps.shape}")
    centre = kps[:, 0]
    r = np.linalg.norm(kps[:, 1] - centre, axis=1) * float(scale)
    return np.stack([centre[:, 0] - r, centre[:, 1] - r, centre[:, 0] + r, centre[:, 1] + r], axis=1).astype(np.float32)


# --------------------------------------------------------------------------- #
# AmphibianDetector adapter
# --------------------------------------------------------------------------- #
class BlazePoseSplit(StageSplit):
    """The pose detector (17 encoder stages) as a :class:`~faceopt.detection.amphibian.SplitDetector`.

    Layer ``m`` means "after stage m" (1 = the stem, 17 = the whole encoder);
    ``run_from`` finishes the encoder, the decoder and the heads.  Boxes (full-body
    by default, see :meth:`BlazePose.detect`) come back in frame pixels and,
    for the motion filter, normalised to the 224x224 network input (letterbox
    included), clipped to ``[0, 1]`` since full-body squares may leave the frame.
    """

    def __init__(self, net: BlazePose | None = None, *, score_threshold: float = 0.5, box: str = "full_body",
                 scale: float = 1.0) -> None:
        if box not in ("full_body", "detector"):
            raise ValueError(f"box must be 'full_body' or 'detector', not {box!r}")
        self.net = (net or BlazePose.from_tflite()).eval()
        self.score_threshold = score_threshold
        self.box, self.scale = box, scale

    def prepare(self, frame_bgr: np.ndarray) -> tuple[torch.Tensor, bf.Letterbox]:
        return preprocess(frame_bgr, color="bgr")

    def decode(self, raw: tuple[torch.Tensor, torch.Tensor], geometry: bf.Letterbox
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        reg, cls = raw
        boxes_px, scores, kps_px = postprocess(reg[0], cls[0], self.net.anchors, None,
                                               score_threshold=self.score_threshold)
        if self.box == "full_body":
            boxes_px = person_box_from_keypoints(kps_px, scale=self.scale)
        normalised = boxes_px / INPUT_SIZE
        in_frame = geometry.to_image(normalised.reshape(-1, 2, 2)).reshape(-1, 4)
        return in_frame, scores, np.clip(normalised, 0.0, 1.0).astype(np.float32)
