"""Door-phone visits for thesis Chapter 4: recognition on H.264 video, by day and at night in infrared.

The thesis evaluates recognition where it is deployed: a door-phone camera films a visitor
walking up to the door, and the system must tell a *resident* (enrolled) from anyone else.
Its measure is the true-accept rate of residents' visits at a 10 % false-accept rate of
non-residents' visits (TAR at FAR 10 %), under weak and strong video compression and at
night in infrared. This module builds that protocol from :class:`SyntheticFaces`.

Protocol (:func:`doorphone_protocol`)
  * **Gallery**: one clean *lab* enrolment image per resident (every nuisance knob of the
    generator at 0: frontal, even light, neutral expression, no occlusion, blur, noise or
    compression) and ``distractors`` (500 in the thesis) lab images of other identities,
    label -1.
  * **Positive visits**: ``visits_per_resident`` clips of each resident (nuisance seeds
    ``1 ..``; the enrolment image is nuisance seed 0 with everything off).
  * **Negative visits**: one clip of each of ``negative_visitors`` non-residents, who are
    neither residents nor distractors.
  * Identity ranges (global ids, see :mod:`faceopt.data.synthetic_faces`): residents from
    ``DOORPHONE_RESIDENT_FIRST`` (5 * 10**6), negative visitors from
    ``DOORPHONE_NEGATIVE_FIRST`` (6 * 10**6), distractors from ``DOORPHONE_DISTRACTOR_FIRST``
    (7 * 10**6), each holding at most ``IDENTITY_RANGE`` (10**6) ids. They lie above the
    training ids (``< EVAL_FIRST_IDENTITY``) and above the ranges of :mod:`faceopt.data.pairs`
    (1 .. 5 * 10**6), so all of them are disjoint by construction.
  * Everything is seeded by ``seed`` (identity traits, nuisance, trajectories, sensor noise)
    and libx264 runs single-threaded on its C path, so a protocol is bit-identical for a seed.

A visit (:func:`render_visit`)
  A fixed camera films a ``VisitConfig.scene`` (320 x 240) frame of a wall with a door
  frame (:func:`faceopt.data.doorbell.wall`, one wall per ``seed``: the camera never moves).
  The visitor walks towards it at constant speed over ``frames`` frames. With a pinhole
  camera the apparent size is inversely proportional to the distance, and the distance falls
  linearly in time, so the side of the aligned face crop in the scene is
  ``side(t) = 1 / ((1 - t) / start_side + t / end_side)`` for ``t = k / (frames - 1)``,
  rounded to whole pixels (24 -> 96 px by default; :func:`approach_sides`). Its centre
  drifts linearly from a random far position to a random spot in front of the door, and the
  head turns towards the camera: the pose knobs (yaw, pitch, roll) shrink linearly from
  their full amplitude to ``final_pose`` times it. Expression, light, occlusion and blur are
  those of one nuisance draw for the whole visit (same nuisance seed every frame).

  Distance as resolution: frame ``k`` renders the aligned crop at the recognition size
  ``size`` (``SyntheticFaces.render``, ``difficulty=1`` with the visit's knobs), shrinks it
  with area averaging (``cv2.INTER_AREA``, as a sensor integrates light) to
  ``side(t) x side(t)`` pixels, and blends it into the scene with a feathered border (a
  linear ramp over the outer ``feather`` fraction of each side, so no square seam is
  encoded). Camera noise is added to the whole frame: Gaussian, the same in the three
  channels (after a camera's processing it is mostly brightness noise), ``day_noise`` or
  ``night_noise`` sd in grey levels, drawn anew for every frame (seeded). After the
  codec, the same box is cut out of the decoded frame and enlarged back to ``size x size``
  with bicubic interpolation: that crop is the recognition input, and it carries
  ``min(side(t), size)`` pixels of detail across. The same path without the codec is
  compression ``"none"``.

Day and night
  Day visits use the generator's normal colour light. Night visits set its ``infrared``
  knob to 1 at ``difficulty=1``, i.e. probability 1 (at the generator's default
  ``difficulty=0.5`` an ``infrared=1.0`` would mean probability 0.5): the crop becomes grey
  (a fixed channel mix), darker (gain 0.35 .. 0.7) and noisier. The night wall is the grey
  wall at ``night_wall_gain``, and the camera noise has ``night_noise`` sd.

Compression (:func:`h264_roundtrip`)
  Each visit is one clip: its scene frames are converted to yuv420p (OpenCV's BT.601
  limited-range conversion, which H.264 decoders assume by default; several times faster
  than swscale here) and encoded with libx264 (PyAV; preset ``X264_PRESET``, single
  thread, x264's C path ``X264_PARAMS`` for bit-exact output; constant rate factor
  ``CRF[name]``: ``weak`` 23, x264's default, and ``strong`` 40, visibly blocky) into an
  in-memory MP4, then decoded back to uint8 BGR. ``Visit.bytes_per_frame`` is the H.264
  bitstream size (sum of packet sizes, without the MP4 container) divided by the number of
  frames.

Layouts: images are kept as uint8 BGR ``[N, size, size, 3]`` as ``SyntheticFaces.render``
returns them; :meth:`DoorphoneProtocol.gallery` and :meth:`DoorphoneProtocol.probes` give
float32 RGB ``[N, 3, size, size]`` tensors in [-1, 1], the layout of
``SyntheticFaces.batch``. Scoring is left to the caller: e.g. a visit's score against an
enrolled identity is the best (or mean) over its frames, a positive visit is accepted when
its own resident scores above the threshold, and the threshold is set on the negative
visits' best gallery scores for FAR 10 %.

PyAV (``av``) is imported only when a codec is used, so compression ``"none"`` works
without it.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Literal

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from faceopt.data.doorbell import wall
from faceopt.data.synthetic_faces import EVAL_FIRST_IDENTITY, NUISANCE_DEFAULTS, SyntheticFaces, to_tensor

__all__ = ["CONDITIONS", "COMPRESSIONS", "CRF", "X264_PRESET", "X264_PARAMS", "IDENTITY_RANGE", "DOORPHONE_RESIDENT_FIRST",
           "DOORPHONE_NEGATIVE_FIRST", "DOORPHONE_DISTRACTOR_FIRST", "Condition", "Compression", "VisitConfig",
           "Visit", "DoorphoneProtocol", "approach_sides", "lab_image", "h264_roundtrip", "render_visit",
           "doorphone_protocol", "psnr"]

Condition = Literal["day", "night"]
Compression = Literal["none", "weak", "strong"]
CONDITIONS: tuple[str, ...] = ("day", "night")
COMPRESSIONS: tuple[str, ...] = ("none", "weak", "strong")
#: libx264 constant rate factors (0 = lossless .. 51 = worst); 23 is x264's default.
CRF: dict[str, int] = {"weak": 23, "strong": 40}
#: A real-time preset, as an embedded camera would run.
X264_PRESET = "veryfast"
#: x264's portable C path: with its SIMD code (AVX-512 on the machine that wrote this) the
#: bitstream differed from run to run even single-threaded; the C path was bit-exact in every
#: repeat and does not depend on the processor's SIMD features. About 3x slower, still ~50 ms a clip.
X264_PARAMS = "asm=0"
IDENTITY_RANGE = EVAL_FIRST_IDENTITY
DOORPHONE_RESIDENT_FIRST = 5 * EVAL_FIRST_IDENTITY
DOORPHONE_NEGATIVE_FIRST = 6 * EVAL_FIRST_IDENTITY
DOORPHONE_DISTRACTOR_FIRST = 7 * EVAL_FIRST_IDENTITY

_LAB = {k: 0.0 for k in NUISANCE_DEFAULTS}  # every knob off: the identity's template on grey
_TAG_PATH, _TAG_NOISE = 0xD00B, 0x5E45


@dataclass(frozen=True)
class VisitConfig:
    """How a visit is filmed. Pixel sizes refer to the ``scene`` frame (width, height).

    ``yaw``, ``pitch``, ``roll``, ``expression``, ``illumination``, ``occlusion`` and
    ``blur`` are amplitudes of the :class:`SyntheticFaces` knobs at ``difficulty=1``
    (defaults: the generator's defaults at its default difficulty 0.5); the pose ones apply
    at the start of the visit and shrink to ``final_pose`` times themselves at its end.
    """

    frames: int = 16
    scene: tuple[int, int] = (320, 240)
    start_side: int = 24
    end_side: int = 96
    fps: int = 10
    feather: float = 0.15
    yaw: float = 17.5
    pitch: float = 7.5
    roll: float = 7.5
    final_pose: float = 0.5
    expression: float = 0.5
    illumination: float = 0.5
    occlusion: float = 0.15
    blur: float = 0.75
    day_noise: float = 2.0
    night_noise: float = 5.0
    night_wall_gain: float = 0.45

    def __post_init__(self) -> None:
        width, height = self.scene
        for name in ("frames", "start_side", "end_side", "fps"):
            if not isinstance(getattr(self, name), (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        if self.frames < 2:
            raise ValueError(f"a visit needs frames >= 2 (the face must approach), got {self.frames}")
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"scene must be even width and height >= 16 (yuv420p), got {self.scene}")
        if not 4 <= self.start_side < self.end_side <= min(width, height):
            raise ValueError(f"need 4 <= start_side < end_side <= min(scene) = {min(width, height)}, "
                             f"got {self.start_side}, {self.end_side}")
        if self.fps < 1:
            raise ValueError(f"fps must be >= 1, got {self.fps}")
        if not 0 <= self.feather < 0.5:
            raise ValueError(f"feather must be in [0, 0.5), got {self.feather}")
        if not 0 <= self.final_pose <= 1:
            raise ValueError(f"final_pose must be in [0, 1], got {self.final_pose}")
        for name in ("yaw", "pitch", "roll", "expression", "illumination", "occlusion", "blur", "day_noise",
                     "night_noise", "night_wall_gain"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True, eq=False)
class Visit:
    """One visit: recognition crops of every frame, with where the face was in the scene.

    ``identity`` is the global identity id; ``label`` the resident index (``-1`` for a
    non-resident). ``frames`` uint8 BGR ``[T, size, size, 3]``; ``sides`` ``[T]`` the crop
    side in scene pixels; ``boxes`` ``[T, 4]`` (x0, y0, x1, y1) in the scene;
    ``bytes_per_frame`` the H.264 bitstream bytes per frame (``None`` without a codec);
    ``scene`` the (decoded) scene frames ``[T, H, W, 3]`` when asked for, else ``None``.
    """

    identity: int
    label: int
    condition: str
    compression: str
    frames: NDArray[np.uint8]
    sides: NDArray[np.int64]
    boxes: NDArray[np.int64]
    bytes_per_frame: float | None
    scene: NDArray[np.uint8] | None = None

    def tensors(self) -> torch.Tensor:
        """Frames as float32 RGB ``[T, 3, size, size]`` in [-1, 1] (``SyntheticFaces.batch`` layout)."""
        return to_tensor(self.frames)


@dataclass(frozen=True, eq=False)
class DoorphoneProtocol:
    """Gallery and visits of one (condition, compression) setting; see the module docstring.

    ``enrolment`` uint8 BGR ``[R, size, size, 3]`` (resident ``r`` is row ``r``),
    ``distractors`` ``[D, size, size, 3]``; ``resident_ids``, ``negative_ids`` and
    ``distractor_ids`` are global identity ids.
    """

    condition: str
    compression: str
    size: int
    seed: int
    enrolment: NDArray[np.uint8]
    distractors: NDArray[np.uint8]
    resident_ids: NDArray[np.int64]
    negative_ids: NDArray[np.int64]
    distractor_ids: NDArray[np.int64]
    positive: list[Visit] = field(default_factory=list)
    negative: list[Visit] = field(default_factory=list)

    @property
    def visits(self) -> list[Visit]:
        """Positive visits, then negative ones."""
        return self.positive + self.negative

    @property
    def bytes_per_frame(self) -> float | None:
        """Mean H.264 bytes per frame over all visits (``None`` for compression ``"none"``)."""
        sizes = [v.bytes_per_frame for v in self.visits if v.bytes_per_frame is not None]
        return float(np.mean(sizes)) if sizes else None

    def gallery(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Enrolment then distractor images ``[R + D, 3, size, size]`` and labels (resident index, -1)."""
        images = np.concatenate([self.enrolment, self.distractors])
        labels = np.r_[np.arange(len(self.enrolment)), np.full(len(self.distractors), -1)].astype(np.int64)
        return to_tensor(images), torch.as_tensor(labels)

    def probes(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All visit frames ``[F, 3, size, size]``, each frame's visit index into :attr:`visits`,
        and each frame's label (resident index, -1 for a non-resident)."""
        visits = self.visits
        frames = np.concatenate([v.frames for v in visits])
        visit = np.concatenate([np.full(len(v.frames), k, np.int64) for k, v in enumerate(visits)])
        labels = np.concatenate([np.full(len(v.frames), v.label, np.int64) for v in visits])
        return to_tensor(frames), torch.as_tensor(visit), torch.as_tensor(labels)


def approach_sides(config: VisitConfig) -> NDArray[np.int64]:
    """Crop side in scene pixels for each frame: constant walking speed towards a pinhole camera."""
    t = np.linspace(0.0, 1.0, config.frames)
    sides = 1.0 / ((1 - t) / config.start_side + t / config.end_side)
    return np.round(sides).astype(np.int64)


def lab_image(faces: SyntheticFaces, identity: int) -> NDArray[np.uint8]:
    """The clean enrolment photo of local ``identity``: every nuisance knob at 0 (uint8 BGR)."""
    return faces.render(identity, 0, difficulty=0.0, **_LAB)


def psnr(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 arrays of one shape (inf if equal)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0 ** 2 / mse))


def h264_roundtrip(frames: NDArray[np.uint8], crf: int, fps: int = 10,
                   preset: str = X264_PRESET) -> tuple[NDArray[np.uint8], int]:
    """Encode uint8 BGR ``[T, H, W, 3]`` frames with libx264 (yuv420p, ``crf``) into an
    in-memory MP4 and decode them back; returns the decoded BGR frames and the bitstream bytes
    (packet sizes summed, without the container). Colour conversion both ways: OpenCV, BT.601
    limited range."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) < 1:
        raise ValueError(f"frames must be uint8 [T >= 1, H, W, 3], got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs even frame sides, got {width} x {height}")
    if not 0 <= int(crf) <= 51:
        raise ValueError(f"crf must be in [0, 51], got {crf}")
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is pinned in requirements.txt
        raise ImportError("video compression needs PyAV: pip install av") from e
    buffer = io.BytesIO()
    bitstream = 0
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.codec_context.width, stream.codec_context.height = width, height
        stream.codec_context.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.options = {"crf": str(int(crf)), "preset": preset, "x264-params": X264_PARAMS}
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
            frame.pts = k
            for packet in stream.encode(frame):
                bitstream += packet.size
                container.mux(packet)
        for packet in stream.encode(None):
            bitstream += packet.size
            container.mux(packet)
    with av.open(io.BytesIO(buffer.getvalue()), mode="r") as container:
        decoded = [cv2.cvtColor(f.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420) for f in container.decode(video=0)]
    if len(decoded) != len(frames):  # pragma: no cover - a codec fault
        raise RuntimeError(f"decoded {len(decoded)} frames of {len(frames)}")
    return np.stack(decoded).astype(np.uint8), bitstream


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _camera_wall(config: VisitConfig, condition: str, seed: int) -> NDArray[np.uint8]:
    """The fixed background: the door-phone wall, grey and darker at night."""
    width, height = config.scene
    background = wall(width, height, seed)
    if condition == "night":
        grey = cv2.cvtColor(background, cv2.COLOR_BGR2GRAY).astype(np.float32) * config.night_wall_gain
        background = cv2.cvtColor(np.clip(grey, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    return background


def _boxes(config: VisitConfig, sides: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.int64]:
    """Top-left corners drift linearly from a far spot to one in front of the door; boxes stay in frame."""
    width, height = config.scene
    far = np.array([rng.uniform(0.25, 0.75) * width, rng.uniform(0.3, 0.45) * height])
    near = np.array([(0.5 + rng.uniform(-0.1, 0.1)) * width, rng.uniform(0.4, 0.5) * height])
    t = np.linspace(0.0, 1.0, len(sides))[:, None]
    centre = far + (near - far) * t
    x0 = np.clip(np.round(centre[:, 0] - sides / 2), 0, width - sides).astype(np.int64)
    y0 = np.clip(np.round(centre[:, 1] - sides / 2), 0, height - sides).astype(np.int64)
    return np.stack([x0, y0, x0 + sides, y0 + sides], 1)


def _feather(side: int, fraction: float) -> NDArray[np.float32]:
    """Blend weights ``[side, side, 1]``: 1 inside, a linear ramp to 0 over the outer ``fraction``."""
    if fraction <= 0:
        return np.ones((side, side, 1), np.float32)
    pos = np.arange(side, dtype=np.float32) + 0.5
    ramp = np.clip(np.minimum(pos, side - pos) / (fraction * side), 0.0, 1.0)
    return (ramp[:, None] * ramp[None, :])[..., None]


def _visit_knobs(config: VisitConfig, condition: str, pose: float) -> dict[str, float]:
    """Generator knobs (at ``difficulty=1``) of one frame; ``pose`` scales yaw, pitch and roll."""
    knobs = dict(_LAB)
    knobs.update(yaw=config.yaw * pose, pitch=config.pitch * pose, roll=config.roll * pose,
                 expression=config.expression, illumination=config.illumination, occlusion=config.occlusion,
                 blur=config.blur, infrared=1.0 if condition == "night" else 0.0)
    return knobs


def _scene_frames(faces: SyntheticFaces, identity: int, nuisance_seed: int, condition: str, config: VisitConfig,
                  seed: int, boxes: NDArray[np.int64], background: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Uncompressed camera frames ``[T, H, W, 3]`` of one visit."""
    gid = faces.first_identity + int(identity)
    height, width = background.shape[:2]
    t = np.linspace(0.0, 1.0, len(boxes))
    out = np.empty((len(boxes), height, width, 3), np.uint8)
    wall_f = background.astype(np.float32)
    sd = np.float32(config.night_noise if condition == "night" else config.day_noise)
    for k, (x0, y0, x1, _) in enumerate(boxes):
        side = int(x1 - x0)
        pose = 1.0 - (1.0 - config.final_pose) * float(t[k])
        crop = faces.render(identity, nuisance_seed, difficulty=1.0, **_visit_knobs(config, condition, pose))
        face = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        frame = wall_f.copy()
        alpha = _feather(side, config.feather)
        region = frame[y0:y0 + side, x0:x0 + side]
        frame[y0:y0 + side, x0:x0 + side] = region + alpha * (face - region)
        noise_rng = np.random.default_rng([seed, _TAG_NOISE, gid, nuisance_seed, k])
        frame += noise_rng.standard_normal((height, width, 1), np.float32) * sd
        out[k] = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    return out


def _crops(scene: NDArray[np.uint8], boxes: NDArray[np.int64], size: int) -> NDArray[np.uint8]:
    """Cut each frame's face box out and enlarge it (bicubic) to the recognition size."""
    out = np.empty((len(boxes), size, size, 3), np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        out[k] = cv2.resize(scene[k, y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_CUBIC)
    return out


def render_visit(faces: SyntheticFaces, identity: int, nuisance_seed: int = 1, *, condition: Condition = "day",
                 compression: Compression = "none", config: VisitConfig = VisitConfig(), seed: int = 0,
                 label: int = -1, keep_scene: bool = False) -> Visit:
    """Film local ``identity`` of ``faces`` approaching the door-phone camera (see the module docstring).

    ``nuisance_seed`` picks the visit's nuisance draw and, with ``seed`` and the identity,
    its trajectory and sensor noise. The recognition crops have side ``faces.size``.
    ``keep_scene`` keeps the (decoded) scene frames in ``Visit.scene``.
    """
    _check_choice("condition", condition, CONDITIONS)
    _check_choice("compression", compression, COMPRESSIONS)
    if not 0 <= int(identity) < faces.identities:
        raise ValueError(f"identity must be in [0, {faces.identities}), got {identity}")
    gid = faces.first_identity + int(identity)
    sides = approach_sides(config)
    boxes = _boxes(config, sides, np.random.default_rng([seed, _TAG_PATH, gid, int(nuisance_seed)]))
    scene = _scene_frames(faces, identity, nuisance_seed, condition, config, seed, boxes,
                          _camera_wall(config, condition, seed))
    bytes_per_frame: float | None = None
    if compression != "none":
        scene, bitstream = h264_roundtrip(scene, CRF[compression], config.fps)
        bytes_per_frame = bitstream / len(scene)
    return Visit(gid, int(label), condition, compression, _crops(scene, boxes, faces.size), sides, boxes,
                 bytes_per_frame, scene if keep_scene else None)


def _check_count(name: str, value: int, minimum: int) -> None:
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")


def _check_range(name: str, value: int, first: int) -> None:
    """``value`` identities must fit the id range that starts at ``first``."""
    if value > IDENTITY_RANGE:
        raise ValueError(f"{name}={value} needs {value} identities, but the door-phone range from {first} holds "
                         f"only {IDENTITY_RANGE}; use at most {IDENTITY_RANGE}")


def _map(workers: int, fn: Callable[[int, int, int], Visit], jobs: list[tuple[int, int, int]]) -> list[Visit]:
    """Render visits in order, on ``workers`` threads (cv2 and libx264 release the GIL)."""
    if workers <= 1 or len(jobs) < 2:
        return [fn(*job) for job in jobs]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda job: fn(*job), jobs))


def doorphone_protocol(residents: int = 20, visits_per_resident: int = 2, negative_visitors: int = 40,
                       distractors: int = 500, *, condition: Condition = "day", compression: Compression = "none",
                       size: int = 64, seed: int = 0, spread: float = 1.0, config: VisitConfig = VisitConfig(),
                       workers: int | None = None) -> DoorphoneProtocol:
    """Build the door-phone protocol of thesis Chapter 4 for one condition and compression.

    ``residents`` are enrolled with one lab image each and filmed ``visits_per_resident``
    times; ``negative_visitors`` non-residents visit once each; ``distractors`` lab images of
    further identities fill the gallery (500 in the thesis). ``size`` is the side of the
    aligned recognition crops, ``spread`` the generator's identity spread, ``workers`` the
    threads rendering visits (default: up to 2). Deterministic for a ``seed``.
    """
    _check_choice("condition", condition, CONDITIONS)
    _check_choice("compression", compression, COMPRESSIONS)
    _check_count("residents", residents, 1)
    _check_count("visits_per_resident", visits_per_resident, 1)
    _check_count("negative_visitors", negative_visitors, 1)
    _check_count("distractors", distractors, 0)
    _check_range("residents", residents, DOORPHONE_RESIDENT_FIRST)
    _check_range("negative_visitors", negative_visitors, DOORPHONE_NEGATIVE_FIRST)
    _check_range("distractors", distractors, DOORPHONE_DISTRACTOR_FIRST)
    if int(size) != size or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size}")
    n_workers = max(1, min(2, os.cpu_count() or 1)) if workers is None else max(1, int(workers))

    def identities(count: int, first: int) -> SyntheticFaces:
        return SyntheticFaces(int(count), 1, int(size), int(seed), spread=spread, first_identity=first, workers=1)

    resident_faces = identities(residents, DOORPHONE_RESIDENT_FIRST)
    negative_faces = identities(negative_visitors, DOORPHONE_NEGATIVE_FIRST)
    enrolment = np.stack([lab_image(resident_faces, r) for r in range(residents)])
    if distractors:
        distractor_faces = identities(distractors, DOORPHONE_DISTRACTOR_FIRST)
        gallery_extra = np.stack([lab_image(distractor_faces, d) for d in range(distractors)])
    else:
        gallery_extra = np.empty((0, int(size), int(size), 3), np.uint8)

    def film(group: int, identity: int, visit: int) -> Visit:
        faces, label = (resident_faces, identity) if group == 0 else (negative_faces, -1)
        return render_visit(faces, identity, 1 + visit, condition=condition, compression=compression, config=config,
                            seed=int(seed), label=label)

    jobs = [(0, r, v) for r in range(residents) for v in range(visits_per_resident)]
    jobs += [(1, n, 0) for n in range(negative_visitors)]
    visits = _map(n_workers, film, jobs)
    n_positive = int(residents) * int(visits_per_resident)
    return DoorphoneProtocol(
        condition, compression, int(size), int(seed), enrolment, gallery_extra,
        DOORPHONE_RESIDENT_FIRST + np.arange(residents, dtype=np.int64),
        DOORPHONE_NEGATIVE_FIRST + np.arange(negative_visitors, dtype=np.int64),
        DOORPHONE_DISTRACTOR_FIRST + np.arange(distractors, dtype=np.int64),
        visits[:n_positive], visits[n_positive:])
