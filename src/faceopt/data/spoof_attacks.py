"""Seeded presentation attacks (PAD, ISO/IEC 30107) rendered from bona fide face images.

No public anti-spoofing data set can be fetched here, so attacks are *made*: each attack species
takes a bona fide image (the photo the attacker has of the victim) and runs the physical chain that
turns it into what a camera sees when that photo is presented to it. Every species has its own
knobs in :class:`AttackConfig`, so a split can hold one species out of training
(:func:`held_out_split`), and every image, live or attack, ends in the *same* camera model
(``capture_*`` knobs: exposure, lens blur, sensor noise, JPEG), so that a classifier cannot win
by "any processing = attack" (``bonafide_nuisance`` in :func:`make_pad_set`).

==========  ===========================================================================================
species     physical chain (each step is a knob of :class:`AttackConfig`)
==========  ===========================================================================================
print       gamut compression -> CMYK separation with grey-component replacement -> rotated clustered-dot
            (AM) halftone per ink at the classic screen angles (C 15, M 75, Y 0, K 45 degrees) at a chosen
            lines-per-inch -> subtractive ink model with real (impure) ink transmittances on off-white paper
            -> paper texture (low-frequency cloud + fibres) -> paper bending (cv2.remap) with its shading
            -> recapture defocus
replay      display transfer (gamma, black level, white point) -> LCD pixel grid with R, G, B stripe
            sub-pixels and black matrix, at a non-integer pitch and a small angle to the camera's sensor,
            area-sampled by the camera (moire) -> refresh banding (rolling shutter against the backlight)
            -> specular glare on the glass -> a dark bezel around the shrunk screen image
cutout      the print chain with holes cut at the eyes (and sometimes the mouth) through which the real
            face behind shows (``behind``, by default the bona fide image), a shadowed paper rim at each
            hole, and sometimes the paper trimmed to the face oval
mask        a worn 3D (silicone or resin) mask: fine detail and pores lost (low-resolution sculpt,
            edge-preserving smoothing), uniform material colour with a tint, a specular sheen on the
            forehead, nose and cheeks, a seam at the mask's border, sometimes eye holes
==========  ===========================================================================================

Lengths (blur sigmas, halftone period, screen pitch) are given for a 112-pixel image and scale with
``min(height, width) / 112``: an image of another size is the same scene seen by a camera of
another resolution. Each species also has a ``*_strength`` knob (default 1) that scales all its
artefact amplitudes at once; 0 leaves only the capture chain (and the geometry of holes, masks
and bezels, whose *visibility* then vanishes).

Landmark-free face geometry: eyes, mouth and the face oval are read from a fixed layout, which
assumes *aligned* crops. ``layout="arcface"`` (the default) is the ArcFace 112x112 five-point
template (the numbers of :data:`faceopt.system.align.ARCFACE_TEMPLATE_112`) scaled to the image
size; ``layout="synthetic"`` is the mean frontal face of :class:`~faceopt.data.synthetic_faces.SyntheticFaces`,
which draws smaller faces than ArcFace crops (eyes 0.21 of the width apart instead of 0.31, the
mouth at 0.66 of the height instead of 0.82). Posed or misaligned faces move their eyes away from
the holes, exactly as a real cut-out does when the attacker's head is not where the paper is.

What is *not* modelled: the attacker's own (different) face behind a cut-out (pass ``behind``),
moving video replays, paper reflections of the room, depth (all species are 2D images here).
The halftone is resolvable on purpose: a real 112-pixel crop of a printed photo shows it mostly as
faint aliasing; ``print_ppi`` is the sampling of the paper as if the crop were a high-resolution
close-up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Sequence

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

__all__ = ["ATTACK_TYPES", "BONAFIDE", "LAYOUTS", "AttackConfig", "FaceLayout", "apply_attack", "bonafide_nuisance",
           "eye_centres", "halftone_period_px", "held_out_split", "make_pad_set", "tensor_to_bgr"]

ATTACK_TYPES: tuple[str, ...] = ("print", "replay", "cutout", "mask")
BONAFIDE = "bonafide"
Range = tuple[float, float]
Image = NDArray[np.uint8]
FloatImage = NDArray[np.float32]
_REF = 112.0  # lengths in AttackConfig are for an image of this side


@dataclass(frozen=True)
class FaceLayout:
    """Where an aligned face's parts are, as fractions of the image width (x) and height (y)."""

    eyes: tuple[tuple[float, float], tuple[float, float]]
    mouth: tuple[float, float]
    oval_centre: tuple[float, float]
    oval_axes: tuple[float, float]


#: ``arcface``: ArcFace's 112-px template / 112 (eyes 38.2946, 51.6963 and 73.5318, 51.5014; mouth corners
#: 41.5493, 92.3655 and 70.7299, 92.2041); ``synthetic``: the mean traits of SyntheticFaces (head centre 0.5,
#: eyes at 0.5 -/+ 0.105 and y 0.465, mouth at eye_y + nose_len + 0.075, head half-axes 0.265 x 0.345).
LAYOUTS: dict[str, FaceLayout] = {
    "arcface": FaceLayout(eyes=((38.2946 / 112, 51.6963 / 112), (73.5318 / 112, 51.5014 / 112)),
                          mouth=((41.5493 + 70.7299) / 224, (92.3655 + 92.2041) / 224),
                          oval_centre=(0.5, 0.56), oval_axes=(0.37, 0.47)),
    "synthetic": FaceLayout(eyes=((0.395, 0.465), (0.605, 0.465)), mouth=(0.5, 0.655),
                            oval_centre=(0.5, 0.5), oval_axes=(0.265, 0.345)),
}


@dataclass(frozen=True)
class AttackConfig:
    """Knobs of every attack species and of the shared camera.

    A ``Range`` ``(lo, hi)`` is drawn uniformly per image; ``*_p`` are probabilities. Lengths in pixels are for
    a 112-pixel image (scaled with the image size). Each species's ``*_strength`` multiplies its artefacts.
    """

    # -- the camera that films whatever is presented; applied to bona fide images too (fair nuisance) --
    capture_gain: Range = (0.9, 1.1)
    """Exposure / auto-gain of the camera (multiplies all channels)."""
    capture_white_balance: Range = (0.0, 0.04)
    """Max relative per-channel gain error of auto white balance."""
    capture_blur: Range = (0.0, 0.7)
    """Lens blur / focus error, Gaussian sigma in pixels."""
    capture_noise: Range = (0.0, 3.0)
    """Sensor noise (shot + read noise), standard deviation in grey levels."""
    capture_jpeg: Range = (70.0, 95.0)
    """JPEG quality of the stored frame (block artefacts, chroma loss)."""
    capture_jpeg_p: float = 0.5
    """Probability that the frame is JPEG-compressed at all."""

    # -- print: a photo printed on paper and held in front of the camera --
    print_strength: float = 1.0
    """Multiplies every print artefact (0: a perfect print, i.e. only the camera)."""
    print_lpi: Range = (100.0, 150.0)
    """Halftone screen ruling in lines per inch (newspaper ~85, magazines 133-150, fine art 175+)."""
    print_ppi: Range = (360.0, 480.0)
    """Camera pixels per inch of paper (at 112 px); halftone period in pixels = ppi / lpi."""
    print_halftone_mix: Range = (0.25, 0.55)
    """Fraction of the binary dot pattern that survives ink spread (dot gain) and lens smoothing."""
    print_saturation: Range = (0.6, 0.85)
    """Chroma kept by the printer's gamut mapping (paper prints a smaller gamut than a camera sees)."""
    print_paper_white: Range = (0.85, 0.95)
    """Reflectance of unprinted paper: prints cannot be brighter than paper (contrast loss at the top)."""
    print_black: Range = (0.06, 0.14)
    """Transmittance of solid black ink: printed black is never black (contrast loss at the bottom)."""
    print_ink_shift: Range = (0.0, 0.08)
    """Standard deviation of random errors in the inks' transmittances (ink batch, cheap printer colour cast)."""
    print_paper_yellow: Range = (0.0, 0.06)
    """Blue absorption of the paper (recycled or aged paper looks yellowish)."""
    print_texture: Range = (0.02, 0.06)
    """Relative reflectance fluctuation of the paper (cloudy formation and fibres)."""
    print_bend: Range = (0.0, 0.06)
    """Curvature of the held sheet: foreshortening at the sheet's edges as a fraction of its half-size."""
    print_blur: Range = (0.2, 0.6)
    """Extra defocus of the recaptured sheet (held off the focal plane), Gaussian sigma in pixels."""

    # -- replay: the photo shown on a phone or monitor and filmed --
    replay_strength: float = 1.0
    """Multiplies every replay artefact."""
    replay_pixel_pitch: Range = (1.6, 3.2)
    """Screen pixel pitch in camera pixels; a non-integer ratio of two sampling grids is what makes moire."""
    replay_grid_angle: Range = (-4.0, 4.0)
    """Rotation of the screen's pixel grid against the sensor's, degrees (rotates and tightens the moire)."""
    replay_grid_mix: Range = (0.4, 0.8)
    """Modulation depth of the sub-pixel grid on the screen's surface (diffuser and anti-glare film soften it)."""
    replay_optics_blur: Range = (0.25, 0.45)
    """Camera's optical low-pass (lens + anti-aliasing filter), sigma in pixels: how much grid reaches the sensor."""
    replay_gamma: Range = (0.8, 1.25)
    """Display gamma relative to the camera's: tone curve mismatch of the recapture."""
    replay_black: Range = (0.02, 0.08)
    """Backlight leaking through black pixels (LCD black level), as a fraction of white."""
    replay_white_point: Range = (0.0, 0.08)
    """Blue cast of the display white point (6500-9000 K panels seen by a camera balanced for the room)."""
    replay_banding: Range = (0.02, 0.08)
    """Amplitude of horizontal bands: the rolling shutter samples the PWM backlight / refresh at different phases."""
    replay_band_period: Range = (0.15, 0.5)
    """Period of the bands as a fraction of the image height."""
    replay_glare: Range = (0.15, 0.5)
    """Peak brightness added by a lamp reflected in the screen's glossy cover glass."""
    replay_glare_size: Range = (0.06, 0.2)
    """Size (Gaussian sigma) of the reflected highlight as a fraction of the image side."""
    replay_glare_p: float = 0.8
    """Probability of a visible reflection."""
    replay_bezel_p: float = 0.7
    """Probability that the screen's dark frame is in view (else the screen fills the frame)."""
    replay_bezel_shrink: Range = (0.78, 0.92)
    """Side of the screen image as a fraction of the frame when the bezel is in view."""
    replay_bezel_level: Range = (0.03, 0.1)
    """Brightness of the bezel (black plastic under room light)."""

    # -- cutout: a printed photo with holes, or a paper mask held in front of a real face --
    cutout_strength: float = 1.0
    """Multiplies the print artefacts of the sheet and the rim shadow."""
    cutout_hole: Range = (0.3, 0.38)
    """Half-width of an eye hole as a fraction of the inter-ocular distance (cut by hand, generously)."""
    cutout_hole_aspect: Range = (0.55, 0.75)
    """Height / width of an eye hole."""
    cutout_mouth_p: float = 0.3
    """Probability of a mouth hole too (lets a real mouth move behind the paper)."""
    cutout_rim: Range = (0.25, 0.5)
    """Darkening at a hole's rim: the shadow of the paper edge on the face behind and the cut edge itself."""
    cutout_trim_p: float = 0.4
    """Probability that the sheet is trimmed to the face oval (a paper mask), so hair and background are real."""

    # -- mask: a 3D silicone or resin mask worn by the attacker --
    mask_strength: float = 1.0
    """Multiplies every mask artefact."""
    mask_detail: Range = (0.35, 0.6)
    """Resolution kept by the mask's sculpt and paint, as a fraction of a 112-px crop's (pores and fine lines lost)."""
    mask_smooth: Range = (25.0, 45.0)
    """Colour sigma (grey levels) of the edge-preserving smoothing of the cast surface."""
    mask_uniformity: Range = (0.4, 0.75)
    """Fraction of the skin's chroma variation removed (one pigmented material instead of living skin)."""
    mask_tint: Range = (0.0, 0.08)
    """Colour offset of the material from the real skin (fraction of the a*b* range)."""
    mask_sheen: Range = (0.08, 0.25)
    """Peak specular sheen of silicone / resin on the forehead, nose and cheeks."""
    mask_seam: Range = (0.15, 0.4)
    """Darkening along the mask's border (its lip shadows the skin; the edge does not blend)."""
    mask_eye_holes_p: float = 0.6
    """Probability that the mask has eye holes showing the wearer's real eyes."""

    layout: str = "arcface"
    """Where the eyes, mouth and face oval are (a key of :data:`LAYOUTS`); assumes aligned crops."""

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; allowed: {sorted(LAYOUTS)}")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "layout":
                continue
            if isinstance(v, tuple):
                if len(v) != 2 or not all(math.isfinite(x) for x in v) or v[0] > v[1]:
                    raise ValueError(f"{f.name} must be a finite range (lo, hi) with lo <= hi, got {v}")
                if f.name != "replay_grid_angle" and v[0] < 0:
                    raise ValueError(f"{f.name} must be >= 0, got {v}")
            elif f.name.endswith("_p"):
                if not 0 <= v <= 1:
                    raise ValueError(f"{f.name} is a probability in [0, 1], got {v}")
            elif not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{f.name} must be a finite number >= 0, got {v}")
        if self.replay_pixel_pitch[0] <= 0 or self.print_lpi[0] <= 0 or self.print_ppi[0] <= 0:
            raise ValueError("replay_pixel_pitch, print_lpi and print_ppi must be > 0")
        if not 1 <= self.capture_jpeg[0] <= self.capture_jpeg[1] <= 100:
            raise ValueError(f"capture_jpeg must be qualities in [1, 100], got {self.capture_jpeg}")
        if self.replay_bezel_shrink[1] > 1 or self.mask_detail[1] > 1 or self.mask_detail[0] <= 0:
            raise ValueError("replay_bezel_shrink must be <= 1 and mask_detail in (0, 1]")


def halftone_period_px(lpi: float, ppi: float) -> float:
    """Halftone cell period in camera pixels for a screen of ``lpi`` lines per inch seen at ``ppi`` pixels per inch."""
    return float(ppi) / float(lpi)


def held_out_split(held_out: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(training species, test species) of a leave-one-attack-out protocol."""
    _check_attacks([held_out])
    return tuple(a for a in ATTACK_TYPES if a != held_out), (held_out,)


def eye_centres(height: int, width: int, layout: str = "arcface") -> NDArray[np.float32]:
    """Pixel ``(x, y)`` of the two eyes ``[2, 2]`` of an aligned crop (no landmarks: the layout's template)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; allowed: {sorted(LAYOUTS)}")
    e = np.asarray(LAYOUTS[layout].eyes, np.float32)
    return e * np.array([width, height], np.float32)


def tensor_to_bgr(x: torch.Tensor) -> Image:
    """SyntheticFaces tensors (float RGB ``[B, 3, H, W]`` in [-1, 1]) -> uint8 BGR ``[B, H, W, 3]``."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a float tensor [B, 3, H, W], got shape {tuple(x.shape)}")
    a = x.detach().cpu().float().mul(127.5).add(127.5).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(a.permute(0, 2, 3, 1).numpy()[..., ::-1])


# ----------------------------------------------------------------------------------------------------------
# helpers


def _check_attacks(attacks: Sequence[str]) -> None:
    bad = [a for a in attacks if a not in ATTACK_TYPES]
    if bad:
        raise ValueError(f"unknown attack type(s) {bad}; allowed: {list(ATTACK_TYPES)}")


def _check_image(image: NDArray[np.generic]) -> Image:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 BGR image [H, W, 3], got {a.dtype} {a.shape}")
    if min(a.shape[:2]) < 16:
        raise ValueError(f"image too small for an attack: {a.shape[:2]} (need at least 16x16)")
    return np.ascontiguousarray(a)


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _f32(img: Image) -> FloatImage:
    return img.astype(np.float32) * np.float32(1 / 255)


def _u8(img: NDArray[np.floating]) -> Image:
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _blur(img: FloatImage, sigma: float) -> FloatImage:
    if sigma < 0.05:
        return img
    return np.asarray(cv2.GaussianBlur(img, (0, 0), sigma), dtype=np.float32)


def _resize(img: FloatImage, w: int, h: int, interpolation: int) -> FloatImage:
    return np.asarray(cv2.resize(img, (w, h), interpolation=interpolation), dtype=np.float32)


def _remap(img: FloatImage, map_x: FloatImage, map_y: FloatImage, border: int = cv2.BORDER_REFLECT) -> FloatImage:
    return np.asarray(cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=border), dtype=np.float32)


def _scale(shape: tuple[int, ...]) -> float:
    return min(shape[0], shape[1]) / _REF


def _supersampling(k: float) -> int:
    """Samples per pixel side for the sub-pixel renderings: fine patterns need ~4 samples per 112-px pixel."""
    return int(min(4, max(1, math.ceil(4 / k))))


def _grid(h: int, w: int, ss: int) -> tuple[FloatImage, FloatImage]:
    """Centres of an ``ss``-times supersampled grid in output-pixel coordinates (pixel centres at integers)."""
    x = (np.arange(w * ss, dtype=np.float32) + 0.5) / ss - 0.5
    y = (np.arange(h * ss, dtype=np.float32) + 0.5) / ss - 0.5
    return np.broadcast_to(x[None, :], (h * ss, w * ss)), np.broadcast_to(y[:, None], (h * ss, w * ss))


def _ellipse_mask(h: int, w: int, centre: tuple[float, float], axes: tuple[float, float], angle: float = 0.0,
                  soft: float = 0.0) -> FloatImage:
    """Float mask in [0, 1] of a filled ellipse (pixel coordinates), its edge softened by a Gaussian ``soft``."""
    m = np.zeros((h, w), np.uint8)
    sh = 4  # sub-pixel bits of the centre and axes
    one = 1 << sh
    cv2.ellipse(m, (int(round(centre[0] * one)), int(round(centre[1] * one))),
                (max(1, int(round(axes[0] * one))), max(1, int(round(axes[1] * one)))), angle, 0, 360, 255, -1,
                cv2.LINE_AA, sh)
    return _blur(m.astype(np.float32) * np.float32(1 / 255), soft)


def _jpeg(img: Image, quality: int) -> Image:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)  # type: ignore[return-value]


def _capture(img: FloatImage, rng: np.random.Generator, cfg: AttackConfig) -> Image:
    """The camera: exposure and white balance, lens blur, sensor noise, 8-bit quantisation, JPEG."""
    k = _scale(img.shape)
    gain = _u(rng, cfg.capture_gain)
    wb = 1 + rng.uniform(-1, 1, 3) * _u(rng, cfg.capture_white_balance)
    img = _blur(img, _u(rng, cfg.capture_blur) * k) * (gain * wb).astype(np.float32)
    sd = _u(rng, cfg.capture_noise)
    if sd > 0:
        img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sd / 255)
    out = _u8(img)
    if rng.random() < cfg.capture_jpeg_p:
        out = _jpeg(out, int(round(_u(rng, cfg.capture_jpeg))))
    return out


def bonafide_nuisance(image_bgr: Image, rng: np.random.Generator | int, config: AttackConfig = AttackConfig()) -> Image:
    """A live presentation: the bona fide image through the same camera model as every attack."""
    img = _check_image(image_bgr)
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return _capture(_f32(img), g, config)


# ----------------------------------------------------------------------------------------------------------
# print

# Transmittance of each ink per BGR channel: real process inks absorb outside their band too (cyan takes some
# green and blue, magenta some blue, yellow a little green), which is the printer's colour transform and gamut loss.
_INKS_REAL = np.array([[0.85, 0.70, 0.12],   # cyan: absorbs red
                       [0.80, 0.15, 0.92],   # magenta: absorbs green
                       [0.10, 0.88, 0.97],   # yellow: absorbs blue
                       [0.10, 0.10, 0.10]],  # black (replaced by print_black)
                      np.float32)
_INKS_IDEAL = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [0, 0, 0]], np.float32)
_SCREEN_ANGLES = np.radians([15.0, 75.0, 0.0, 45.0]).astype(np.float32)  # C, M, Y, K


def _cmyk(img: FloatImage) -> FloatImage:
    """BGR reflectance -> CMYK coverage ``[H, W, 4]`` with full grey-component replacement (greys print in black)."""
    c, m, y = 1 - img[..., 2], 1 - img[..., 1], 1 - img[..., 0]
    k = np.minimum(np.minimum(c, m), y)
    d = np.maximum(1 - k, 1e-4)
    return np.stack([(c - k) / d, (m - k) / d, (y - k) / d, k], axis=-1).astype(np.float32)


def _paper_texture(h: int, w: int, k: float, amp: float, rng: np.random.Generator) -> FloatImage:
    """Relative reflectance of paper: a low-frequency cloud (uneven fibre density) plus short oriented fibres."""
    if amp <= 0:
        return np.ones((h, w), np.float32)
    n = max(2, int(round(6 * max(h, w) / (_REF * k))))
    cloud = cv2.resize(rng.standard_normal((n, n)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    fibres = np.zeros((h, w), np.float32)
    length = max(3, int(round(3 * k)) | 1)
    for _ in range(3):
        kern = np.zeros((length, length), np.float32)
        a = rng.uniform(0, np.pi)
        c = (length - 1) / 2
        cv2.line(kern, (int(round(c - c * np.cos(a))), int(round(c - c * np.sin(a)))),
                 (int(round(c + c * np.cos(a))), int(round(c + c * np.sin(a)))), 1.0, 1)
        kern /= max(float(kern.sum()), 1.0)
        fibres += cv2.filter2D(rng.standard_normal((h, w)).astype(np.float32), -1, kern)
    tex = cloud / max(float(cloud.std()), 1e-6) + 0.7 * fibres / max(float(fibres.std()), 1e-6)
    return (1 + amp * tex / 1.2).astype(np.float32)


def _bend_maps(h: int, w: int, bend: float, sign: float, light: float, vertical_axis: bool
               ) -> tuple[FloatImage, FloatImage, FloatImage]:
    """cv2.remap maps and a shading map of a sheet curved about one axis (a held print sags or curls).

    Along the curvature the sheet is foreshortened towards its edges (the source is sampled further out); across
    it, the parts nearer the camera (``sign``) look larger. Shading follows the surface slope under a light from
    one side (``light`` in [-1, 1]). Normalised coordinates, so the same sheet at any resolution.
    """
    xs, ys = _grid(h, w, 1)
    X, Y = (xs - (w - 1) / 2) / (w / 2), (ys - (h - 1) / 2) / (h / 2)
    a, p = (X, Y) if vertical_axis else (Y, X)
    a_src = a * (1 + bend * a * a)
    p_src = p * (1 + sign * bend * 0.5 * (1 - a * a))
    shade = (1 + light * 2.0 * bend * a * sign).astype(np.float32)
    mx, my = (a_src, p_src) if vertical_axis else (p_src, a_src)
    map_x = (mx * (w / 2) + (w - 1) / 2).astype(np.float32)
    map_y = (my * (h / 2) + (h - 1) / 2).astype(np.float32)
    return map_x, map_y, shade


def _reflectance(cov: FloatImage, inks: NDArray[np.float32], paper: NDArray[np.float32]) -> FloatImage:
    """Subtractive ink model: each ink layer multiplies the light reflected by the paper by its transmittance
    (Beer-Lambert, the double pass folded into the number) over the fraction ``cov`` of the area it covers
    (Murray-Davies per ink, Demichel's independent overlap of the screens)."""
    refl = np.empty(cov.shape[:2] + (3,), np.float32)
    for ch in range(3):
        r = np.full(cov.shape[:2], paper[ch], np.float32)
        for i in range(4):
            r *= 1 - cov[..., i] * (1 - inks[i, ch])
        refl[..., ch] = r
    return refl


def _halftone(cov: FloatImage, period: float, rot: float, mix: float, phase: NDArray[np.float64]) -> FloatImage:
    """Coverage after clustered-dot screening: each ink thresholded by a round-dot spot function of the given period
    (pixels of ``cov``) at its screen angle (+ ``rot``); ``mix`` of the binary dots, the rest ink spread."""
    hs, ws = cov.shape[:2]
    x1 = np.arange(ws, dtype=np.float32) - np.float32((ws - 1) / 2)
    y1 = np.arange(hs, dtype=np.float32) - np.float32((hs - 1) / 2)
    out = np.empty_like(cov)
    f = 2 * np.pi / period
    for i, theta in enumerate(_SCREEN_ANGLES + np.float32(rot)):
        # cos(a x + b y + p) = cos(a x + p) cos(b y) - sin(a x + p) sin(b y): two outer products, no 2D cos
        ax, by = x1 * np.float32(f * np.cos(theta)) + np.float32(phase[0]), y1 * np.float32(f * np.sin(theta))
        cu = np.outer(np.cos(by), np.cos(ax)) - np.outer(np.sin(by), np.sin(ax))
        ax, by = x1 * np.float32(-f * np.sin(theta)), y1 * np.float32(f * np.cos(theta)) + np.float32(phase[1])
        cv_ = np.outer(np.cos(by), np.cos(ax)) - np.outer(np.sin(by), np.sin(ax))
        spot = 0.5 + 0.25 * (cu + cv_)  # dots grow from the spot function's maxima as coverage rises
        dots = (spot > 1 - cov[..., i]).astype(np.float32)
        out[..., i] = mix * dots + (1 - mix) * cov[..., i]
    return out


def _print_sheet(img: Image, rng: np.random.Generator, cfg: AttackConfig, s: float) -> FloatImage:
    """The printed, bent sheet as the camera's optics see it (before defocus and the camera).

    The contone print is computed at the image's resolution; the halftone's deviation from it at ``ss`` times
    that and area-averaged by the camera's pixels, so that a strength of 0 resamples nothing.
    """
    h, w = img.shape[:2]
    k = _scale(img.shape)
    ss = _supersampling(k)
    src = _f32(img)
    # printer gamut mapping: chroma pulled towards grey
    sat = 1 - s * (1 - _u(rng, cfg.print_saturation))
    grey = src.mean(axis=2, keepdims=True)
    src = np.clip(grey + sat * (src - grey), 0, 1)
    inks = _INKS_REAL.copy()
    inks[3] = _u(rng, cfg.print_black)
    inks = np.clip(inks + rng.normal(0, 1, inks.shape).astype(np.float32) * _u(rng, cfg.print_ink_shift), 0.02, 1)
    inks = (_INKS_IDEAL + s * (inks - _INKS_IDEAL)).astype(np.float32)
    yellow = _u(rng, cfg.print_paper_yellow)
    paper = (1 - s * (1 - _u(rng, cfg.print_paper_white))) * np.array([1 - s * yellow, 1 - s * yellow / 3, 1], np.float32)
    period = halftone_period_px(_u(rng, cfg.print_lpi), _u(rng, cfg.print_ppi)) * k
    mix = s * _u(rng, cfg.print_halftone_mix)
    rot = float(np.radians(rng.uniform(-3, 3)))  # the sheet is never square to the sensor
    phase = rng.uniform(0, 2 * np.pi, 2)
    bend = s * _u(rng, cfg.print_bend)
    geometry = (float(rng.choice([-1.0, 1.0])), float(rng.uniform(-1, 1)), bool(rng.random() < 0.5))
    cov = _cmyk(src)
    refl = _reflectance(cov, inks, paper) * _paper_texture(h, w, k, s * _u(rng, cfg.print_texture), rng)[..., None]
    shade: FloatImage | None = None
    if bend > 0:
        mx, my, shade = _bend_maps(h, w, bend, *geometry)
        refl = _remap(refl, mx, my)
    if mix > 0:
        cov_ss = _resize(cov, w * ss, h * ss, cv2.INTER_LINEAR) if ss > 1 else cov
        dev = _reflectance(_halftone(cov_ss, period * ss, rot, mix, phase), inks, paper) - _reflectance(cov_ss, inks, paper)
        if bend > 0:
            mx, my, _ = _bend_maps(h * ss, w * ss, bend, *geometry)
            dev = _remap(dev, mx, my)
        refl = refl + (_resize(dev, w, h, cv2.INTER_AREA) if ss > 1 else dev)  # the camera's pixels integrate the dots
    if shade is not None:
        refl = refl * shade[..., None]
    return refl.astype(np.float32)


def _attack_print(img: Image, rng: np.random.Generator, cfg: AttackConfig) -> FloatImage:
    s = cfg.print_strength
    return _blur(_print_sheet(img, rng, cfg, s), s * _u(rng, cfg.print_blur) * _scale(img.shape))


# ----------------------------------------------------------------------------------------------------------
# cut-out


def _hole_mask(h: int, w: int, rng: np.random.Generator, cfg: AttackConfig) -> FloatImage:
    lay = LAYOUTS[cfg.layout]
    eyes = eye_centres(h, w, cfg.layout)
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    k = _scale((h, w))
    m = np.zeros((h, w), np.float32)
    for e in eyes:
        hw = _u(rng, cfg.cutout_hole) * iod
        c = (float(e[0] + rng.normal(0, 0.03) * iod), float(e[1] + rng.normal(0, 0.03) * iod))
        m = np.maximum(m, _ellipse_mask(h, w, c, (hw, hw * _u(rng, cfg.cutout_hole_aspect)), rng.uniform(-8, 8)))
    if rng.random() < cfg.cutout_mouth_p:
        c = (lay.mouth[0] * w, lay.mouth[1] * h)
        m = np.maximum(m, _ellipse_mask(h, w, c, (0.45 * iod, 0.2 * iod)))
    return _blur(m, 0.5 * k)


def _attack_cutout(img: Image, rng: np.random.Generator, cfg: AttackConfig, behind: Image | None) -> FloatImage:
    s = cfg.cutout_strength
    h, w = img.shape[:2]
    k = _scale(img.shape)
    sheet = _print_sheet(img, rng, cfg, s)
    real = _f32(img if behind is None else behind)
    holes = _hole_mask(h, w, rng, cfg)
    if rng.random() < cfg.cutout_trim_p:  # a paper mask: trimmed to the face oval, the head and room around are real
        lay = LAYOUTS[cfg.layout]
        oval = _ellipse_mask(h, w, (lay.oval_centre[0] * w, lay.oval_centre[1] * h),
                             (lay.oval_axes[0] * w * 1.05, lay.oval_axes[1] * h * 1.05), soft=0.5 * k)
        holes = np.maximum(holes, 1 - oval)
    # the cut edge: paper thickness and its shadow on the face just inside the hole
    rim = np.clip(cv2.dilate(holes, np.ones((3, 3), np.uint8), iterations=max(1, int(round(k)))) - holes, 0, 1)
    rim = np.maximum(rim, np.clip(holes - cv2.erode(holes, np.ones((3, 3), np.uint8), iterations=max(1, int(round(k)))),
                                  0, 1) * 0.5)
    out = holes[..., None] * real + (1 - holes[..., None]) * sheet
    out *= (1 - s * _u(rng, cfg.cutout_rim) * rim)[..., None]
    return _blur(out.astype(np.float32), s * _u(rng, cfg.print_blur) * k)


# ----------------------------------------------------------------------------------------------------------
# replay


def _attack_replay(img: Image, rng: np.random.Generator, cfg: AttackConfig) -> FloatImage:
    s = cfg.replay_strength
    h, w = img.shape[:2]
    k = _scale(img.shape)
    ss = _supersampling(k)
    src = _f32(img)
    # display transfer: tone curve, backlight leakage, white point
    gamma = 1 + s * (_u(rng, cfg.replay_gamma) - 1)
    black = s * _u(rng, cfg.replay_black)
    wp = s * _u(rng, cfg.replay_white_point)
    tone = black + (1 - black) * np.power(src, np.float32(gamma))
    disp: FloatImage = (tone * np.array([1 + wp, 1, 1 - wp / 2], np.float32)).astype(np.float32)
    # the screen, rolled by th against the sensor: with its bezel in view it is shrunk into the frame, else it
    # is just large enough to cover the frame
    pitch = _u(rng, cfg.replay_pixel_pitch) * k
    th = np.radians(s * _u(rng, cfg.replay_grid_angle))
    if rng.random() < cfg.replay_bezel_p and s > 0:
        f = 1 - s * (1 - _u(rng, cfg.replay_bezel_shrink))
        jitter = rng.uniform(-0.3, 0.3, 2)
    else:
        f = abs(math.cos(th)) + abs(math.sin(th)) * max(h / w, w / h)
        jitter = np.zeros(2)
    x0 = (1 - f) * w / 2 * (1 + jitter[0])
    y0 = (1 - f) * h / 2 * (1 + jitter[1])
    # LCD pixel grid: each screen pixel shows the image at its centre
    ct, st = np.float32(np.cos(th)), np.float32(np.sin(th))
    xs, ys = _grid(h, w, ss)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    pu, pv = rng.uniform(0, 1, 2)
    u = (ct * (xs - cx) + st * (ys - cy)) / np.float32(pitch) + np.float32(pu)
    v = (-st * (xs - cx) + ct * (ys - cy)) / np.float32(pitch) + np.float32(pv)
    iu, iv = np.floor(u), np.floor(v)
    # screen coordinates (the image's, before the screen is rolled by th) of each sample and of its screen pixel's
    # centre: a screen pixel shows one colour (the screen's resolution; faded out with the strength)
    sx = (u - np.float32(pu)) * np.float32(pitch) + np.float32(cx)
    sy = (v - np.float32(pv)) * np.float32(pitch) + np.float32(cy)
    px = sx + np.float32(s) * (((iu + 0.5 - pu) * pitch + cx).astype(np.float32) - sx)
    py = sy + np.float32(s) * (((iv + 0.5 - pv) * pitch + cy).astype(np.float32) - sy)
    value = _remap(disp, (px - np.float32(x0)) / np.float32(f), (py - np.float32(y0)) / np.float32(f), cv2.BORDER_REPLICATE)
    # the active area, straight in screen coordinates (continuous, so its edge is not a staircase of pixels)
    on_screen = ((sx >= x0 - 0.5) & (sx <= x0 + f * w - 0.5) & (sy >= y0 - 0.5) & (sy <= y0 + f * h - 0.5))
    # Sub-pixel stripes (R, G, B left to right, each (1 - gap_h) / 3 wide) and rows (1 - gap_v) high, as Fourier
    # series attenuated by the camera's optical MTF: what is left above the sensor's Nyquist aliases into moire
    # when the camera's pixels integrate it (the INTER_AREA step below).
    gap_h, gap_v = 0.25, 0.2
    wh, wv = (1 - gap_h) / 3, 1 - gap_v
    sigma = _u(rng, cfg.replay_optics_blur) * k

    def mtf(n: int) -> float:
        return math.exp(-2 * (math.pi * sigma * n / pitch) ** 2)

    rows = np.full(u.shape, wv, np.float32)
    for n in (1, 2):
        amp_n = np.float32(2 * math.sin(math.pi * n * wv) / (math.pi * n) * mtf(n))
        rows += amp_n * np.cos(np.float32(2 * np.pi * n) * (v - 0.5))
    rows /= np.float32(wv)
    mix = np.float32(s * _u(rng, cfg.replay_grid_mix))
    emit = np.empty_like(value)
    for ch in range(3):  # BGR channel ch is lit by sub-pixel 2 - ch
        centre = (2 - ch + 0.5) / 3
        stripe = np.full(u.shape, wh, np.float32)
        for n in (1, 2, 3):
            stripe += np.float32(2 * math.sin(math.pi * n * wh) / (math.pi * n) * mtf(n)) \
                * np.cos(np.float32(2 * np.pi * n) * (u - np.float32(centre)))
        emit[..., ch] = value[..., ch] * (mix * stripe * rows / np.float32(wh) + (1 - mix))
    emit *= on_screen[..., None]
    out = _resize(emit, w, h, cv2.INTER_AREA) if ss > 1 else emit
    screen = _resize(on_screen.astype(np.float32), w, h, cv2.INTER_AREA) if ss > 1 else on_screen.astype(np.float32)
    # refresh banding: rows exposed at different phases of the backlight's modulation
    yy = np.arange(h, dtype=np.float32)[:, None]
    amp = s * _u(rng, cfg.replay_banding)
    period = _u(rng, cfg.replay_band_period) * h
    band = 1 + amp * np.sin(2 * np.pi * yy / period + rng.uniform(0, 2 * np.pi))
    out = out * band[..., None].astype(np.float32)
    # bezel: dark plastic, a little brighter towards the room light
    level = _u(rng, cfg.replay_bezel_level)
    grad = 1 + 0.4 * (np.arange(h, dtype=np.float32)[:, None] / h - 0.5) * rng.choice([-1.0, 1.0])
    bezel = np.broadcast_to((level * grad)[..., None], (h, w, 3)).astype(np.float32)
    out = out + (1 - screen)[..., None] * bezel
    # glare: a lamp reflected in the cover glass (over the screen and bezel alike)
    if rng.random() < cfg.replay_glare_p and s > 0:
        gs = _u(rng, cfg.replay_glare_size) * min(h, w)
        aspect = rng.uniform(0.5, 2.0)
        gx, gy = rng.uniform(x0, x0 + f * w), rng.uniform(y0, y0 + f * h)  # near enough: the roll is small
        phi = rng.uniform(0, np.pi)
        xg, yg = _grid(h, w, 1)
        dx, dy = xg - gx, yg - gy
        a = (dx * np.cos(phi) + dy * np.sin(phi)) / (gs * aspect)
        b = (-dx * np.sin(phi) + dy * np.cos(phi)) / (gs / aspect)
        blob = np.exp(-0.5 * (a * a + b * b)).astype(np.float32)
        tint = np.array([1.0, 0.98, 0.95], np.float32) * np.float32(s * _u(rng, cfg.replay_glare))
        out = out + blob[..., None] * tint
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# 3D mask


def _attack_mask(img: Image, rng: np.random.Generator, cfg: AttackConfig) -> FloatImage:
    s = cfg.mask_strength
    h, w = img.shape[:2]
    k = _scale(img.shape)
    lay = LAYOUTS[cfg.layout]
    src = _f32(img)
    # the cast surface: sculpted and painted at a lower resolution, smoothed but keeping the big edges
    keep = 1 - s * (1 - _u(rng, cfg.mask_detail))
    lw, lh = min(w, max(8, int(round(w * keep / k)))), min(h, max(8, int(round(h * keep / k))))
    low = cv2.resize(src, (lw, lh), interpolation=cv2.INTER_AREA)
    sc = s * _u(rng, cfg.mask_smooth) / 255
    if sc > 0:
        low = cv2.bilateralFilter(low, 5, sc, 3.0)
        low = cv2.bilateralFilter(low, 5, sc, 3.0)
    mat = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    # one pigmented material: chroma pulled to its mean over the face, plus a tint
    lab = cv2.cvtColor(np.clip(mat, 0, 1), cv2.COLOR_BGR2Lab)
    oval = _ellipse_mask(h, w, (lay.oval_centre[0] * w, lay.oval_centre[1] * h),
                         (lay.oval_axes[0] * w * 0.95, lay.oval_axes[1] * h * 0.95), soft=0.8 * k)
    wsum = float(oval.sum()) + 1e-6
    uni = s * _u(rng, cfg.mask_uniformity)
    tint = rng.normal(0, 1, 2) * s * _u(rng, cfg.mask_tint) * 127
    for c in (1, 2):
        mean = float((lab[..., c] * oval).sum()) / wsum
        lab[..., c] = mean + (1 - uni) * (lab[..., c] - mean) + tint[c - 1]
    lab[..., 0] = lab[..., 0] * (1 - 0.15 * uni) + 0.15 * uni * float((lab[..., 0] * oval).sum()) / wsum
    mat = cv2.cvtColor(lab, cv2.COLOR_Lab2BGR).astype(np.float32)
    # specular sheen of silicone / resin where the face turns towards the camera
    sheen = np.zeros((h, w), np.float32)
    iod = float(np.linalg.norm(eye_centres(h, w, cfg.layout)[1] - eye_centres(h, w, cfg.layout)[0]))
    ex = (lay.eyes[0][0] + lay.eyes[1][0]) / 2 * w
    ey = (lay.eyes[0][1] + lay.eyes[1][1]) / 2 * h
    my = lay.mouth[1] * h
    spots = [(ex, ey - 0.7 * iod, 0.45 * iod), (ex, (ey + my) / 2, 0.2 * iod),
             (ex - 0.55 * iod, (ey + my) / 2, 0.25 * iod), (ex + 0.55 * iod, (ey + my) / 2, 0.25 * iod)]
    xg, yg = _grid(h, w, 1)
    for x, y, r in spots:
        x, y, r = x + rng.normal(0, 0.08) * iod, y + rng.normal(0, 0.08) * iod, r * rng.uniform(0.7, 1.3)
        sheen += rng.uniform(0.5, 1.0) * np.exp(-((xg - x) ** 2 + (yg - y) ** 2) / (2 * r * r)).astype(np.float32)
    sheen = np.clip(sheen, 0, 1) * np.float32(s * _u(rng, cfg.mask_sheen))
    lum = mat.mean(axis=2, keepdims=True)
    mat = mat + (sheen[..., None] * (0.5 + lum)) * (1 - mat)
    # worn over the face: the wearer's head, hair and (sometimes) eyes remain real
    region = oval
    if rng.random() < cfg.mask_eye_holes_p:
        eyes = eye_centres(h, w, cfg.layout)
        for e in eyes:
            region = region * (1 - _ellipse_mask(h, w, (float(e[0]), float(e[1])), (0.25 * iod, 0.13 * iod), soft=0.5 * k))
    out = region[..., None] * mat + (1 - region[..., None]) * src
    seam = oval * (1 - oval) * 4  # the soft border of the oval, peaking at its edge
    seam = _blur(seam, 0.6 * k)
    out *= (1 - s * _u(rng, cfg.mask_seam) * np.clip(seam * 1.5, 0, 1))[..., None]
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# public entry points


def apply_attack(image_bgr: Image, attack: str, rng: np.random.Generator | int, config: AttackConfig = AttackConfig(),
                 *, behind: Image | None = None) -> Image:
    """The presentation attack ``attack`` of the bona fide ``image_bgr`` as the camera captures it.

    ``image_bgr``: uint8 BGR ``[H, W, 3]`` (an aligned crop where the species needs face geometry, see
    ``config.layout``); ``rng``: a numpy Generator or an integer seed; ``behind``: for ``cutout``, the real face
    seen through the holes (default: ``image_bgr`` itself). Returns uint8 BGR of the same size.
    """
    _check_attacks([attack])
    img = _check_image(image_bgr)
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if attack == "print":
        out = _attack_print(img, g, config)
    elif attack == "replay":
        out = _attack_replay(img, g, config)
    elif attack == "cutout":
        if behind is not None:
            behind = _check_image(behind)
            if behind.shape != img.shape:
                raise ValueError(f"behind must have the image's shape {img.shape}, got {behind.shape}")
        out = _attack_cutout(img, g, config, behind)
    else:
        out = _attack_mask(img, g, config)
    return _capture(out, g, config)


_BONAFIDE_KEY = 0xB0FA  # rng stream of live images, apart from the species' indices in ATTACK_TYPES


def make_pad_set(faces: NDArray[np.uint8] | torch.Tensor, attacks: Sequence[str], per_face: int, seed: int,
                 config: AttackConfig = AttackConfig(), *, bonafide_nuisance: bool = True
                 ) -> tuple[Image, NDArray[np.int64], NDArray[np.str_]]:
    """A presentation-attack-detection set: each face live ``per_face`` times and attacked ``per_face`` times by
    each species of ``attacks``.

    ``faces``: bona fide uint8 BGR ``[N, H, W, 3]`` or SyntheticFaces tensors ``[N, 3, H, W]``. Returns images
    uint8 BGR ``[N * per_face * (1 + len(attacks)), H, W, 3]``, labels (0 bona fide, 1 attack) and attack types
    (``"bonafide"`` for live), face-major: face ``i`` fills rows ``i * per_face * (1 + len(attacks))`` onwards,
    its live copies first, then each species in the order given. Image ``(face i, species a, copy j)`` depends only
    on ``(seed, i, a, j)``, so a set without one species holds the very same images of the others.
    ``bonafide_nuisance``: pass live images through the camera model of the attacks (else they are the input).
    """
    attacks = list(attacks)
    _check_attacks(attacks)
    if len(set(attacks)) != len(attacks):
        raise ValueError(f"attack types repeated: {attacks}")
    if per_face < 1:
        raise ValueError(f"per_face must be >= 1, got {per_face}")
    arr = tensor_to_bgr(faces) if isinstance(faces, torch.Tensor) else np.asarray(faces)
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"faces must be uint8 BGR [N, H, W, 3] (or a [N, 3, H, W] tensor), got {arr.dtype} {arr.shape}")
    n, h, w = arr.shape[:3]
    kinds = [BONAFIDE] + attacks
    out = np.empty((n * per_face * len(kinds), h, w, 3), np.uint8)
    types: list[str] = []
    row = 0
    for i in range(n):
        for kind in kinds:
            key = _BONAFIDE_KEY if kind == BONAFIDE else ATTACK_TYPES.index(kind)
            for j in range(per_face):
                g = np.random.default_rng([int(seed), i, key, j])
                if kind == BONAFIDE:
                    out[row] = _capture(_f32(arr[i]), g, config) if bonafide_nuisance else arr[i]
                else:
                    out[row] = apply_attack(arr[i], kind, g, config)
                types.append(kind)
                row += 1
    type_arr = np.array(types, dtype=str)
    return out, (type_arr != BONAFIDE).astype(np.int64), type_arr
