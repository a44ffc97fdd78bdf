"""Seeded procedural face images: a stand-in for a face-identity data set.

No face data set can be downloaded here, so identities are *drawn*: each identity is a
stable set of traits (head shape, landmark geometry, skin tone, eye colour, hair colour
and style, facial hair, a mole, a low-frequency skin texture), seeded by
``(seed, global identity id)``. A frontal template of each identity is rendered once with
OpenCV primitives and cached; every image then applies *nuisance* on top of it, seeded by
``(seed, global identity id, nuisance seed)``:

=============  =======  =========================================================
knob           default  meaning of the value (amplitude at ``difficulty = 1``)
=============  =======  =========================================================
yaw            35       max |yaw| in degrees (cylindrical head warp)
pitch          15       max |pitch| in degrees (cylindrical head warp)
roll           15       max |roll| in degrees (in-plane rotation)
shift          0.05     max |translation| as a fraction of the image size
scale          0.08     max relative change of the face scale
expression     1.0      smile / open mouth / eye closure / gaze, 0..1
illumination   1.0      directional light gradient, global gain and gamma, 0..1
occlusion      0.3      probability of glasses, sunglasses or a medical mask
blur           1.5      max Gaussian sigma in pixels (at 112 px; scaled with size)
noise          12       max sensor-noise standard deviation in grey levels
jpeg           0.8      JPEG strength: quality drawn from [100 - 90 * s, 100]
codec          0.2      probability of a "video codec" frame (chroma subsampled,
                        quality 8..30, blocky)
infrared       0.1      probability of an infrared frame (grey, low light, noisy)
clutter        1.0      background clutter and clothes colour, 0..1
age            0.0      max age drift of the identity (greying, receding hairline,
                        wider face, wrinkles); *not* scaled by ``difficulty``
=============  =======  =========================================================

Every nuisance knob except ``age`` is multiplied by ``difficulty`` (default 0.5), and
probabilities are clipped to 1. Setting a knob to 0 turns it off exactly: with all knobs 0
every image of an identity is the same template on the same grey background.
``spread`` (default 1.0) scales how far identity traits stray from the mean face: lower
spread makes identities more alike, i.e. verification harder at fixed nuisance.

Identity ids are global: a data set holds ids ``first_identity ..
first_identity + identities - 1``. Training sets use ids below ``EVAL_FIRST_IDENTITY``
(10**6); the evaluation protocols in :mod:`faceopt.data.pairs` draw from separate ranges
above it, so train and test identities are disjoint by construction.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

__all__ = ["NUISANCE_DEFAULTS", "EVAL_FIRST_IDENTITY", "SyntheticFaces", "sample_grid", "to_tensor"]

NUISANCE_DEFAULTS: dict[str, float] = {
    "yaw": 35.0, "pitch": 15.0, "roll": 15.0, "shift": 0.05, "scale": 0.08,
    "expression": 1.0, "illumination": 1.0, "occlusion": 0.3, "blur": 1.5, "noise": 12.0,
    "jpeg": 0.8, "codec": 0.2, "infrared": 0.1, "clutter": 1.0, "age": 0.0,
}
_PROBABILITIES = ("occlusion", "codec", "infrared")
OTHER_KEYWORDS = ("difficulty", "spread", "first_identity", "cache_size", "workers")
EVAL_FIRST_IDENTITY = 1_000_000
_AGE_LEVELS = 8  # templates are cached per identity at ages k / _AGE_LEVELS
_SH = 4  # sub-pixel bits for cv2 drawing
_F = float(1 << _SH)

_SKIN = np.array([[205, 225, 250], [170, 200, 235], [130, 170, 215], [95, 135, 185],
                  [65, 100, 150], [45, 70, 110]], np.float32)  # BGR, light -> dark
_HAIR = np.array([[20, 20, 25], [25, 35, 60], [40, 65, 110], [70, 110, 160], [110, 180, 220],
                  [40, 70, 165], [30, 30, 40]], np.float32)
_IRIS = np.array([[30, 60, 100], [20, 35, 60], [160, 120, 60], [90, 130, 60], [130, 130, 120],
                  [50, 100, 120]], np.float32)
_HAIR_P = np.array([0.3, 0.25, 0.15, 0.1, 0.08, 0.05, 0.07])


def _check_nuisance(kw: dict[str, Any]) -> None:
    bad = sorted(set(kw) - set(NUISANCE_DEFAULTS))
    if bad:
        raise ValueError(f"unknown nuisance keyword(s) {bad}; allowed: "
                         f"{sorted(NUISANCE_DEFAULTS) + list(OTHER_KEYWORDS)}")
    for k, v in kw.items():
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"nuisance {k!r} must be a finite number >= 0, got {v}")


def _p(xy: Any, s: float) -> NDArray[np.int32]:
    """Normalised (x, y) points -> fixed-point int32 polyline for cv2 with shift=_SH."""
    return np.round(np.asarray(xy, np.float64).reshape(-1, 2) * s * _F).astype(np.int32)


def _c(x: float, y: float, s: float) -> tuple[int, int]:
    return int(round(x * s * _F)), int(round(y * s * _F))


def _r(v: float, s: float) -> int:
    return max(1, int(round(v * s * _F)))


def _col(c: Any, a: int | None = 255) -> tuple[float, ...]:
    v = [min(255.0, max(0.0, float(x))) for x in c]
    return tuple(v + [float(a)]) if a is not None else tuple(v)


_M64 = (1 << 64) - 1
_IR_MIX = np.array([0.25, 0.45, 0.30], np.float32)


def _mix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _uniforms(key: Sequence[int], n: int) -> NDArray[np.float64]:
    """``n`` uniforms in [0, 1) from a splitmix64 hash of the integer ``key`` (cheap, seeded)."""
    h = 0
    for k in key:
        h = _mix64(h ^ (int(k) & _M64))
    with np.errstate(over="ignore"):
        z = np.uint64(h) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _traits(seed: int, gid: int, spread: float) -> dict[str, Any]:
    """Stable identity traits in normalised image coordinates (y down)."""
    r = np.random.default_rng([seed, 0xFACE, gid])

    def z(sd: float, lim: float = 2.5) -> float:
        return float(np.clip(r.standard_normal() * spread, -lim, lim) * sd)

    t: dict[str, Any] = {}
    t["cx"], t["cy"] = 0.5, 0.5 + z(0.01)
    t["hw"], t["hh"] = 0.265 + z(0.022), 0.345 + z(0.022)
    t["sq"] = 2.2 + abs(z(0.5))  # superellipse exponent: rounder .. squarer
    t["jaw"] = 0.78 + z(0.07)  # chin width factor
    t["eye_y"] = t["cy"] - 0.035 + z(0.018)
    t["eye_dx"] = 0.105 + z(0.011)
    t["eye_w"], t["eye_h"] = 0.052 + z(0.006), 0.027 + z(0.004)
    t["eye_tilt"] = z(6.0)
    t["iris_r"] = 0.7 + z(0.06)
    t["iris"] = _IRIS[r.integers(len(_IRIS))] + r.normal(0, 12, 3)
    t["brow_dy"], t["brow_len"] = 0.045 + z(0.009), 0.075 + z(0.01)
    t["brow_arch"], t["brow_slope"] = 0.014 + z(0.008), z(0.012)
    t["brow_th"] = 0.012 + abs(z(0.004))
    t["nose_len"], t["nose_w"] = 0.115 + z(0.018), 0.034 + z(0.007)
    t["mouth_y"] = t["eye_y"] + t["nose_len"] + 0.075 + z(0.012)
    t["mouth_w"] = 0.068 + z(0.011)
    t["lip_u"], t["lip_l"] = 0.009 + abs(z(0.004)), 0.012 + abs(z(0.005))
    tone = float(np.clip(r.beta(2.0, 2.0) * spread + 0.5 * (1 - spread), 0, 1)) * (len(_SKIN) - 1)
    k = min(int(tone), len(_SKIN) - 2)
    t["skin"] = _SKIN[k] * (k + 1 - tone) + _SKIN[k + 1] * (tone - k) + r.normal(0, 6, 3)
    t["lip"] = t["skin"] * np.array([0.72, 0.68, 0.95]) + r.normal(0, 5, 3)
    t["hair"] = _HAIR[r.choice(len(_HAIR), p=_HAIR_P)] + r.normal(0, 8, 3)
    t["hair_len"] = float(r.random() ** 1.5)
    t["hairline"] = 0.6 + z(0.1)  # fraction of hh above centre where the fringe sits
    t["fringe"] = int(r.integers(3))  # straight, side part, widow's peak
    t["part"] = float(r.choice([-1.0, 1.0]))
    t["bald"] = bool(r.random() < 0.07)
    t["volume"] = 0.03 + abs(z(0.02))
    t["beard"] = float(r.random() < 0.18) * (0.4 + 0.6 * r.random())
    t["moustache"] = bool(r.random() < 0.22)
    t["mole"] = (r.uniform(-0.7, 0.7), r.uniform(-0.3, 0.6)) if r.random() < 0.4 else None
    t["grey_rate"], t["recede"] = 0.4 + 0.6 * r.random(), r.random()
    # low-frequency skin texture: Gaussian blobs and one sinusoid
    t["blobs"] = [(r.uniform(-0.8, 0.8), r.uniform(-0.8, 0.8), r.uniform(0.15, 0.4),
                   r.uniform(-0.12, 0.12) * spread) for _ in range(3)]
    t["wave"] = (r.uniform(1.0, 3.0), r.uniform(0, np.pi), r.uniform(0, 2 * np.pi),
                 r.uniform(0.02, 0.06) * spread)
    return t


def _head_contour(t: dict[str, Any], age: float, n: int = 72) -> NDArray[np.float64]:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(a), np.sin(a)
    e = 2.0 / t["sq"]
    hw = t["hw"] * (1 + 0.06 * age)
    x = hw * np.sign(c) * np.abs(c) ** e
    y = t["hh"] * np.sign(s) * np.abs(s) ** e
    lower = np.clip(s, 0, 1) ** 2
    x = x * (1 - (1 - min(t["jaw"] + 0.05 * age, 0.98)) * lower)
    return np.stack([t["cx"] + x, t["cy"] + y], 1)


def _draw_template(t: dict[str, Any], age: float, size: int) -> tuple[NDArray[np.uint8], dict[str, Any]]:
    """Premultiplied BGRA frontal template without eyes and mouth (drawn per image)."""
    D = max(2 * size, 128)
    img = np.zeros((D, D, 4), np.uint8)
    skin = np.asarray(t["skin"], np.float64) * (1 - 0.08 * age) + np.array([0, 4, 6]) * age
    hair = t["hair"] + (np.array([165, 168, 172]) - t["hair"]) * min(1.0, age * t["grey_rate"])
    hw = t["hw"] * (1 + 0.06 * age)
    cx, cy, hh = t["cx"], t["cy"], t["hh"]
    lt = cv2.LINE_AA
    # long hair behind the head
    if t["hair_len"] > 0.25 and not t["bald"]:
        L = t["hair_len"]
        cv2.ellipse(img, _c(cx, cy - 0.05 + 0.25 * L * hh, D), (_r(hw * (1.12 + 0.18 * L), D),
                    _r(hh * (0.98 + 0.4 * L), D)), 0, 0, 360, _col(hair * 0.85), -1, lt, _SH)
    # neck and ears
    cv2.fillPoly(img, [_p([[cx - 0.45 * hw, cy + 0.5 * hh], [cx + 0.45 * hw, cy + 0.5 * hh],
                           [cx + 0.5 * hw, 1.05], [cx - 0.5 * hw, 1.05]], D)], _col(skin * 0.78), lt, _SH)
    for sgn in (-1, 1):
        cv2.ellipse(img, _c(cx + sgn * hw * 0.97, t["eye_y"] + 0.03, D), (_r(0.028, D), _r(0.055, D)),
                    0, 0, 360, _col(skin * 0.88), -1, lt, _SH)
    contour = _head_contour(t, age)
    cv2.fillPoly(img, [_p(contour, D)], _col(skin), lt, _SH)
    # skin texture and shading, applied only on the head
    mask = np.zeros((D, D), np.uint8)
    cv2.fillPoly(mask, [_p(contour, D)], 255, lt, _SH)
    g = (np.arange(D, dtype=np.float32) + 0.5) / D
    X = (g[None, :] - cx) / hw
    Y = (g[:, None] - cy) / hh
    m = 1.0 - 0.16 * np.clip(X * X + 0.6 * Y * Y, 0, 1.5) ** 1.5
    for bx, by, bs, ba in t["blobs"]:
        m = m + ba * np.exp(-((X - bx) ** 2 + (Y - by) ** 2) / (2 * bs * bs))
    f, th, ph, wa = t["wave"]
    m = m + wa * np.sin(np.pi * f * (X * np.cos(th) + Y * np.sin(th)) + ph)
    m = m - 0.07 * np.exp(-((X - 0.0) ** 2 / 0.02 + (Y - 0.05) ** 2 / 0.08))  # nose side shadow
    sel = mask > 0
    mm = np.where(sel, m, 1.0).astype(np.float32)[..., None]
    img[..., :3] = np.clip(img[..., :3] * mm, 0, 255).astype(np.uint8)
    # hair on top: inside an enlarged head outline, above a hairline curve
    big = (contour - [cx, cy]) * [1.06, 1.05] + [cx, cy - 0.012 - t["volume"] * 0.5]
    hm = np.zeros((D, D), np.uint8)
    cv2.fillPoly(hm, [_p(big, D)], 255, lt, _SH)
    top = cv2.ellipse(np.zeros((D, D), np.uint8), _c(cx, cy - hh * 0.75, D),
                      (_r(hw * 0.95, D), _r(hh * 0.25 + t["volume"], D)), 0, 0, 360, 255, -1, lt, _SH)
    hm = np.maximum(hm, top)
    hl = hh * (t["hairline"] + 0.3 * age * t["recede"]) if not t["bald"] else hh * 1.25
    dx = np.clip(X, -1.5, 1.5)
    yl = cy - hl + hh * 0.45 * dx * dx
    if t["fringe"] == 1:
        yl = yl + hh * 0.18 * (t["part"] * dx + 1) * 0.5
    elif t["fringe"] == 2:
        yl = yl + hh * 0.12 * np.exp(-(dx / 0.18) ** 2)
    if t["bald"]:  # a fringe of hair at the sides only
        yl = np.where(np.abs(dx) > 0.85, cy - hh * 0.05, yl)
    yy = np.broadcast_to(g[:, None], (D, D))
    hm = (hm.astype(np.float32) / 255) * np.clip((yl - yy) * D / 1.5 + 0.5, 0, 1)
    strands = 1 + 0.06 * np.sin(X * 55 + 4 * Y) - 0.1 * Y
    hc = np.clip(hair[None, None, :] * strands[..., None], 0, 255).astype(np.float32)
    a = hm[..., None]
    img[..., :3] = (img[..., :3] * (1 - a) + hc * a).astype(np.uint8)
    img[..., 3] = np.maximum(img[..., 3], (a[..., 0] * 255).astype(np.uint8))
    # eyebrows
    for sgn in (-1, 1):
        ex = cx + sgn * t["eye_dx"]
        s = np.linspace(0, 1, 8)
        xs = ex - sgn * 0.6 * t["eye_w"] + sgn * s * t["brow_len"] * 1.3
        ys = t["eye_y"] - t["brow_dy"] - t["brow_arch"] * np.sin(np.pi * s * 0.85) + t["brow_slope"] * s
        cv2.polylines(img, [_p(np.stack([xs, ys], 1), D)], False, _col(hair * 0.8),
                      max(1, int(round(t["brow_th"] * D))), lt, _SH)
    # nose
    ny = t["eye_y"] + t["nose_len"]
    nw = t["nose_w"]
    cv2.polylines(img, [_p([[cx - 0.3 * nw, t["eye_y"] + 0.02], [cx - 0.45 * nw, ny - 0.02],
                            [cx - 0.9 * nw, ny]], D)], False, _col(skin * 0.75), max(1, D // 100), lt, _SH)
    cv2.ellipse(img, _c(cx, ny - 0.005, D), (_r(nw * 0.7, D), _r(0.015, D)), 0, 20, 160,
                _col(skin * 0.7), max(1, D // 100), lt, _SH)
    for sgn in (-1, 1):
        cv2.ellipse(img, _c(cx + sgn * nw * 0.45, ny, D), (_r(nw * 0.28, D), _r(0.008, D)), 0, 0, 360,
                    _col(skin * 0.45), -1, lt, _SH)
    # facial hair
    my, mw = t["mouth_y"], t["mouth_w"]
    if t["beard"] > 0:
        bm = np.zeros((D, D), np.uint8)
        cv2.fillPoly(bm, [_p(contour[contour[:, 1] > ny + 0.01], D)], 255, lt, _SH)
        cv2.ellipse(bm, _c(cx, my, D), (_r(mw * 1.3, D), _r(0.03, D)), 0, 0, 360, 0, -1, lt, _SH)
        a = (bm.astype(np.float32) / 255 * t["beard"] * 0.9)[..., None]
        img[..., :3] = (img[..., :3] * (1 - a) + hair * 0.9 * a).astype(np.uint8)
    if t["moustache"]:
        cv2.fillPoly(img, [_p([[cx - mw * 1.05, my + 0.004], [cx - mw * 0.5, my - 0.03], [cx, my - 0.032],
                               [cx + mw * 0.5, my - 0.03], [cx + mw * 1.05, my + 0.004],
                               [cx, my - 0.014]], D)], _col(hair * 0.85), lt, _SH)
    if t["mole"] is not None:
        mx_, my_ = t["mole"]
        cv2.circle(img, _c(cx + mx_ * hw, cy + my_ * hh, D), _r(0.009, D), _col(skin * 0.45), -1, lt, _SH)
    # age: forehead lines, nasolabial folds, eye bags
    if age > 0:
        wc = _col(skin * (1 - 0.3 * age))
        w = max(1, D // 150)
        for k in range(3):
            yk = t["eye_y"] - t["brow_dy"] - 0.04 - 0.025 * k
            cv2.ellipse(img, _c(cx, yk + 0.06, D), (_r(hw * 0.55, D), _r(0.06, D)), 0, 235, 305, wc, w, lt, _SH)
        for sgn in (-1, 1):
            cv2.line(img, _c(cx + sgn * nw * 1.2, ny - 0.005, D), _c(cx + sgn * mw * 1.25, my + 0.02, D),
                     wc, w, lt, _SH)
            cv2.ellipse(img, _c(cx + sgn * t["eye_dx"], t["eye_y"] + 0.012, D),
                        (_r(t["eye_w"] * 0.8, D), _r(0.018, D)), 0, 30, 150, wc, w, lt, _SH)
    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    # local skin colour around eyes/mouth for per-image eyelids
    def at(x: float, y: float) -> NDArray[np.float64]:
        i, j = min(size - 1, int(y * size)), min(size - 1, int(x * size))
        return out[i, j, :3].astype(np.float64)
    geo = {"lid": [at(cx + sgn * t["eye_dx"], t["eye_y"]) for sgn in (-1, 1)],
           "contour": contour, "age": age, "hair": hair,
           "lipcol": _col(t["lip"]), "lipline": _col(t["lip"] * 0.5)}
    geo["eyes"] = _eye_consts(t, geo, size)
    return out, geo  # type: ignore[return-value]


def _eye_consts(t: dict[str, Any], geo: dict[str, Any], S: int) -> list[tuple[Any, ...]]:
    ew, eh = t["eye_w"], t["eye_h"]
    ir = t["iris_r"] * eh * 1.25
    band = ir + eh
    out = []
    for k, sgn in enumerate((-1, 1)):
        ex, ey = t["cx"] + sgn * t["eye_dx"], t["eye_y"]
        out.append((ex, ey, -sgn * t["eye_tilt"], _c(ex, ey, S), (_r(ew, S), _r(eh, S)), _r(ir, S),
                    _r(ir * 0.45, S), _col(t["iris"]), _col(geo["lid"][k]), _col(geo["lid"][k] * 0.35),
                    max(1, int(round(band * S)))))
    return out


_MS = np.linspace(-1, 1, 9)
_MS2 = 1 - _MS * _MS
_TAPER = np.sqrt(_MS2)


def _eyes_mouth(img: NDArray[np.uint8], t: dict[str, Any], geo: dict[str, Any], S: int,
                smile: float, open_: float, close: float, gaze: tuple[float, float]) -> None:
    lt = cv2.LINE_AA
    ew, eh = t["eye_w"], t["eye_h"]
    h_open = max(eh * (1 - close), 0.0)
    ir = t["iris_r"] * eh * 1.25
    band = ir + eh
    lidw = max(1, S // 80)
    for ex, ey, tilt, c, axes, irr, pr, icol, lcol, dcol, bw in geo["eyes"]:
        cv2.ellipse(img, c, axes, tilt, 0, 360, (235, 238, 240, 255), -1, lt, _SH)
        ic = _c(ex + gaze[0] * ew * 0.45, ey + gaze[1] * eh * 0.3, S)
        cv2.circle(img, ic, irr, icol, -1, lt, _SH)
        cv2.circle(img, ic, pr, (15, 15, 15, 255), -1, lt, _SH)
        # lids: a skin annulus outside the visible opening covers white and iris there
        lc = _c(ex, ey + (eh - h_open) * 0.5, S)
        vy = h_open * 0.5 + eh * 0.5
        cv2.ellipse(img, lc, (_r(ew + band * 0.5, S), _r(vy + band * 0.5, S)), tilt, 0, 360, lcol, bw, lt, _SH)
        cv2.ellipse(img, lc, (_r(ew, S), _r(vy, S)), tilt, 180, 360, dcol, lidw, lt, _SH)
    my, mw = t["mouth_y"], t["mouth_w"]
    xs = t["cx"] + mw * _MS
    yb = my - smile * 0.022 * (1 - _MS2)
    gap = open_ * 0.035 * _MS2
    yiu = yb - 0.25 * gap
    yil = yb + gap
    q = S * _F
    X = xs * q
    lip = np.empty((18, 2))
    lip[:9, 0], lip[9:, 0] = X, X[::-1]
    lip[:9, 1] = (yiu - t["lip_u"] * _TAPER - 0.002) * q
    lip[9:, 1] = ((yil + t["lip_l"] * _TAPER) * q)[::-1]
    cv2.fillPoly(img, [lip.astype(np.int32)], geo["lipcol"], lt, _SH)
    if open_ > 0.08:
        lip[:9, 1] = yiu * q
        lip[9:, 1] = (yil * q)[::-1]
        cv2.fillPoly(img, [lip.astype(np.int32)], (40, 30, 60, 255), lt, _SH)
        teeth = np.concatenate([np.stack([xs[2:-2], yiu[2:-2]], 1),
                                np.stack([xs[2:-2], yiu[2:-2] + 0.35 * gap[2:-2]], 1)[::-1]])
        cv2.fillPoly(img, [_p(teeth, S)], (225, 230, 235, 255), lt, _SH)
    else:
        lip[:9, 1] = yiu * q
        cv2.polylines(img, [lip[:9].astype(np.int32)], False, geo["lipline"], max(1, S // 100), lt, _SH)


def _occlude(img: NDArray[np.uint8], t: dict[str, Any], geo: dict[str, Any], S: int,
             kind: int, col: NDArray[np.float64]) -> None:
    lt = cv2.LINE_AA
    cx, ey = t["cx"], t["eye_y"]
    if kind in (0, 1):  # glasses / sunglasses
        w = max(1, int(round(0.012 * S)))
        rx, ry = t["eye_w"] * 1.45, t["eye_h"] * 2.4
        for sgn in (-1, 1):
            c = _c(cx + sgn * t["eye_dx"], ey + 0.004, S)
            if kind == 1:
                cv2.ellipse(img, c, (_r(rx, S), _r(ry, S)), 0, 0, 360, (25, 25, 25, 255), -1, lt, _SH)
            cv2.ellipse(img, c, (_r(rx, S), _r(ry, S)), 0, 0, 360, _col(col * 0.4), w, lt, _SH)
            hw = t["hw"] * (1 + 0.06 * geo["age"])
            cv2.line(img, _c(cx + sgn * (t["eye_dx"] + rx), ey, S), _c(cx + sgn * hw * 0.97, ey - 0.005, S),
                     _col(col * 0.4), w, lt, _SH)
        cv2.line(img, _c(cx - t["eye_dx"] + rx, ey, S), _c(cx + t["eye_dx"] - rx, ey, S),
                 _col(col * 0.4), w, lt, _SH)
    else:  # medical mask from the nose bridge to the chin
        ytop = ey + t["nose_len"] * 0.45
        ct = geo["contour"]
        low = ct[ct[:, 1] > ytop + 0.02]
        low = low[np.argsort(np.arctan2(low[:, 1] - t["cy"], low[:, 0] - cx))]
        poly = np.concatenate([[[low[-1, 0], ytop + 0.02], [cx, ytop - 0.01], [low[0, 0], ytop + 0.02]], low[::-1]])
        cv2.fillPoly(img, [_p(poly, S)], _col(col), lt, _SH)


class SyntheticFaces(Dataset):
    """``identities`` x ``images_per_identity`` seeded face images of side ``size``.

    Item ``i`` is identity ``i // images_per_identity`` rendered with nuisance seed
    ``i % images_per_identity``; ``__getitem__`` returns an RGB float32 tensor
    ``[3, size, size]`` normalised as ``(x - 127.5) / 127.5`` (in [-1, 1]) and the label.
    Keywords: ``difficulty`` (default 0.5) multiplies every nuisance amplitude except
    ``age``; ``spread`` (1.0) scales identity-trait variation; ``first_identity`` (0) the
    global id of label 0; ``cache_size`` templates kept; ``workers`` threads for ``batch``;
    and the nuisance knobs of ``NUISANCE_DEFAULTS``.
    """

    def __init__(self, identities: int, images_per_identity: int, size: int = 112, seed: int = 0,
                 *, difficulty: float = 0.5, spread: float = 1.0, first_identity: int = 0,
                 cache_size: int = 20_000, workers: int | None = None, **nuisance: float) -> None:
        _check_nuisance(nuisance)
        if int(identities) != identities or identities < 1:
            raise ValueError(f"identities must be a positive integer, got {identities}")
        if int(images_per_identity) != images_per_identity or images_per_identity < 1:
            raise ValueError(f"images_per_identity must be a positive integer, got {images_per_identity}")
        if int(size) != size or size < 16:
            raise ValueError(f"size must be an integer >= 16, got {size}")
        if not (np.isfinite(difficulty) and difficulty >= 0):
            raise ValueError(f"difficulty must be >= 0 (nominally 0..1), got {difficulty}")
        if not (np.isfinite(spread) and 0 <= spread <= 2):
            raise ValueError(f"spread must be in [0, 2], got {spread}")
        if first_identity < 0:
            raise ValueError(f"first_identity must be >= 0, got {first_identity}")
        self.identities, self.images_per_identity = int(identities), int(images_per_identity)
        self.size, self.seed = int(size), int(seed)
        self.difficulty, self.spread = float(difficulty), float(spread)
        self.first_identity = int(first_identity)
        self.nuisance = {**NUISANCE_DEFAULTS, **{k: float(v) for k, v in nuisance.items()}}
        self.labels: NDArray[np.int64] = np.repeat(np.arange(self.identities, dtype=np.int64),
                                                   self.images_per_identity)
        self.workers = max(1, min(2, os.cpu_count() or 1)) if workers is None else max(1, int(workers))
        self._cache: OrderedDict[tuple[int, int], tuple[dict[str, Any], NDArray[np.uint8], dict[str, Any]]] = OrderedDict()
        self._cache_size = int(cache_size)
        self._lock = threading.Lock()
        self._banks: tuple[NDArray[np.uint8], NDArray[np.float32]] | None = None
        self._grey = np.full((int(size), int(size), 3), 128, np.uint8)
        S = self.size
        n = max(9, S // 8 + 1)
        gc = ((np.arange(n, dtype=np.float32) + 0.5) * S / n - 0.5) - (S - 1) / 2
        self._cgx, self._cgy = np.meshgrid(gc, gc)
        g = (np.arange(S, dtype=np.float32) - (S - 1) / 2) / (S / 2)
        self._X, self._Y = np.meshgrid(g, g)
        self._pool: ThreadPoolExecutor | None = None

    # -- indexing ----------------------------------------------------------------
    def __len__(self) -> int:
        return self.identities * self.images_per_identity

    def identity_of(self, i: int) -> int:
        """Label (local identity index) of item ``i``."""
        return int(self._index(i) // self.images_per_identity)

    def _index(self, i: int) -> int:
        n = len(self)
        if not -n <= int(i) < n:
            raise IndexError(f"index {i} out of range for {n} images")
        return int(i) % n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        i = self._index(i)
        ident, k = divmod(i, self.images_per_identity)
        return to_tensor(self.render(ident, k)[None])[0], ident

    def batch(self, indices: Sequence[int] | NDArray[np.integer]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``[B, 3, size, size]`` and labels ``[B]`` (rendered on ``workers`` threads)."""
        idx = [self._index(int(i)) for i in np.asarray(indices).ravel()]
        out = np.empty((len(idx), self.size, self.size, 3), np.uint8)

        def work(j: int) -> None:
            ident, k = divmod(idx[j], self.images_per_identity)
            out[j] = self.render(ident, k)

        if self.workers > 1 and len(idx) > 8:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers)
            list(self._pool.map(work, range(len(idx)), chunksize=max(1, len(idx) // (4 * self.workers))))
        else:
            for j in range(len(idx)):
                work(j)
        return to_tensor(out), torch.as_tensor(self.labels[idx])

    def __getstate__(self) -> dict[str, Any]:  # picklable for DataLoader workers
        d = dict(self.__dict__)
        d["_pool"], d["_lock"], d["_cache"] = None, None, OrderedDict()
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._lock = threading.Lock()

    # -- rendering ---------------------------------------------------------------
    def _template(self, gid: int, age_level: int) -> tuple[dict[str, Any], NDArray[np.uint8], dict[str, Any]]:
        key = (gid, age_level)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        t = _traits(self.seed, gid, self.spread)
        tmpl, geo = _draw_template(t, age_level / _AGE_LEVELS, self.size)
        with self._lock:
            self._cache[key] = (t, tmpl, geo)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return t, tmpl, geo

    def _bank(self) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        if self._banks is None:
            S, r = self.size, np.random.default_rng([self.seed, 0xB6])
            bgs = np.empty((32, S, S, 3), np.uint8)
            for b in range(32):
                low = r.uniform(20, 235, (3, 3, 3)).astype(np.float32)
                img = cv2.resize(low, (S, S), interpolation=cv2.INTER_CUBIC)
                for _ in range(int(r.integers(3, 9))):
                    col = tuple(float(v) for v in r.uniform(0, 255, 3))
                    p1 = tuple(int(v) for v in r.integers(0, S, 2))
                    p2 = tuple(int(v) for v in r.integers(0, S, 2))
                    kind = r.integers(3)
                    if kind == 0:
                        cv2.rectangle(img, p1, p2, col, -1)
                    elif kind == 1:
                        cv2.circle(img, p1, int(r.integers(2, max(3, S // 4))), col, -1, cv2.LINE_AA)
                    else:
                        cv2.line(img, p1, p2, col, int(r.integers(1, max(2, S // 20))), cv2.LINE_AA)
                bgs[b] = np.clip(img, 0, 255)
            noise = r.standard_normal((2 * S, 2 * S, 3)).astype(np.float32)
            self._banks = (bgs, noise)
        return self._banks

    def nuisance_params(self, identity: int, nuisance_seed: int, **overrides: float) -> dict[str, Any]:
        """The concrete nuisance values drawn for one image (for inspection and tests)."""
        if "difficulty" in overrides:
            d = float(overrides.pop("difficulty"))
        else:
            d = self.difficulty
        _check_nuisance(overrides)
        kn = {**self.nuisance, **overrides}
        gid = self.first_identity + int(identity)
        u = _uniforms((self.seed, 0x0B5, gid, int(nuisance_seed)), 40)
        a = {k: (v if k == "age" else v * d) for k, v in kn.items()}
        for k in _PROBABILITIES:
            a[k] = min(1.0, a[k])
        e = a["expression"]
        p: dict[str, Any] = {
            "age": a["age"] * u[0],
            "yaw": a["yaw"] * (2 * u[1] - 1), "pitch": a["pitch"] * (2 * u[2] - 1),
            "roll": a["roll"] * (2 * u[3] - 1), "tx": a["shift"] * (2 * u[4] - 1),
            "ty": a["shift"] * (2 * u[5] - 1), "scale": 1 + a["scale"] * (2 * u[6] - 1),
            "smile": min(1.0, e) * (2 * u[7] - 0.6), "open": min(1.0, e) * u[8] ** 2,
            "close": min(1.0, e) * (u[9] ** 3 if u[10] > 0.15 else 1.0),
            "gaze": (min(1.0, e) * (2 * u[11] - 1), min(1.0, e) * (2 * u[12] - 1)),
            "light": min(1.0, a["illumination"]) * 0.7 * u[13], "light_dir": 2 * np.pi * u[14],
            "gain": 2.0 ** (min(1.0, a["illumination"]) * 0.8 * (2 * u[15] - 1)),
            "gamma": 2.0 ** (min(1.0, a["illumination"]) * 0.6 * (2 * u[16] - 1)),
            "occlusion": int(u[18] * 3) if u[17] < a["occlusion"] else -1,
            "occ_col": u[19:22] * 255,
            "blur": a["blur"] * u[22] * self.size / 112,
            "noise": a["noise"] * u[23],
            "jpeg": int(round(100 - 90 * min(1.0, a["jpeg"]) * u[24])) if a["jpeg"] > 0 else None,
            "codec": int(8 + 22 * u[26]) if u[25] < a["codec"] else None,
            "infrared": u[27] < a["infrared"], "ir_gain": 0.35 + 0.35 * u[28],
            "clutter": min(1.0, a["clutter"]), "bg": int(u[29] * 32), "bg_flip": u[30] < 0.5,
            "noise_off": (int(u[31] * self.size), int(u[32] * self.size)),
            "cloth": u[33:36] * 255,
        }
        return p

    def ages(self) -> NDArray[np.float64]:
        """Per-item age drift (0 unless the ``age`` knob is on)."""
        m = self.images_per_identity
        return np.array([self.nuisance_params(i // m, i % m)["age"] for i in range(len(self))])

    def render(self, identity: int, nuisance_seed: int, **overrides: float) -> NDArray[np.uint8]:
        """One uint8 BGR ``size x size x 3`` image of local ``identity`` (knobs overridable)."""
        if not 0 <= int(identity) < self.identities:
            raise ValueError(f"identity must be in [0, {self.identities}), got {identity}")
        p = self.nuisance_params(identity, nuisance_seed, **overrides)
        S = self.size
        gid = self.first_identity + int(identity)
        t, tmpl, geo = self._template(gid, int(round(p["age"] * _AGE_LEVELS)))
        layer = tmpl.copy()
        _eyes_mouth(layer, t, geo, S, p["smile"], p["open"], p["close"], p["gaze"])
        if p["occlusion"] >= 0:
            _occlude(layer, t, geo, S, p["occlusion"], p["occ_col"])
        layer = self._pose(layer, t, p)
        bgs, noise = self._bank()
        c = p["clutter"]
        if c > 0:
            bg = bgs[p["bg"]]
            bg = cv2.flip(bg, 1) if p["bg_flip"] else bg.copy()
            if c < 1:
                bg = cv2.addWeighted(bg, c, self._grey, 1 - c, 0)
            cloth = 60.0 + c * (p["cloth"] - 60.0)
        else:
            bg = self._grey.copy()
            cloth = np.full(3, 60.0)
        cv2.ellipse(bg, (S // 2, int(S * 1.12)), (int(S * 0.48), int(S * 0.3)), 0, 0, 360,
                    (float(cloth[0]), float(cloth[1]), float(cloth[2])), -1)
        inv = cv2.cvtColor(255 - layer[..., 3], cv2.COLOR_GRAY2BGR)
        img = cv2.add(cv2.cvtColor(layer, cv2.COLOR_BGRA2BGR), cv2.multiply(bg, inv, scale=1 / 255))
        if p["blur"] > 0.05:
            img = cv2.GaussianBlur(img, (0, 0), p["blur"])
        if p["light"] > 0:
            L = (1 + p["light"] * (np.cos(p["light_dir"]) * self._X + np.sin(p["light_dir"]) * self._Y)) * 128
            L8 = cv2.cvtColor(np.clip(L, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
            img = cv2.multiply(img, L8, scale=1 / 128)
        sd = p["noise"]
        if p["infrared"]:
            img = cv2.transform(img, np.full((3, 3), 1.0, np.float32) * _IR_MIX * p["ir_gain"])
            sd = sd * 2.5 + 4.0
        if sd > 0:
            oy, ox = p["noise_off"]
            nz = noise[oy:oy + S, ox:ox + S]
            if p["infrared"]:
                nz = np.repeat(nz[..., :1], 3, axis=2)
            img = cv2.add(img, nz * np.float32(sd), dtype=cv2.CV_8U)
        if p["gamma"] != 1.0 or p["gain"] != 1.0:
            lut = np.clip(np.power(np.clip(np.arange(256) / 255.0 * p["gain"], 0, 1), p["gamma"]) * 255 + 0.5,
                          0, 255).astype(np.uint8)
            img = cv2.LUT(img, lut)
        out = img
        if p["codec"] is not None:
            ycc = cv2.cvtColor(out, cv2.COLOR_BGR2YCrCb)
            h = max(4, S // 2)
            ch = cv2.resize(cv2.resize(ycc[..., 1:], (h, h), interpolation=cv2.INTER_AREA), (S, S),
                            interpolation=cv2.INTER_NEAREST)
            ycc[..., 1:] = ch
            out = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)
            out = _jpeg(out, p["codec"])  # type: ignore[arg-type]
        elif p["jpeg"] is not None:
            out = _jpeg(out, p["jpeg"])  # type: ignore[arg-type]
        return out  # type: ignore[return-value]

    def _pose(self, layer: NDArray[np.uint8], t: dict[str, Any], p: dict[str, Any]) -> NDArray[np.uint8]:
        if p["yaw"] == 0 and p["pitch"] == 0 and p["roll"] == 0 and p["tx"] == 0 and p["ty"] == 0 \
                and p["scale"] == 1:
            return layer
        S = self.size
        s = p["scale"]
        x = (self._cgx - p["tx"] * S) / s
        y = (self._cgy - p["ty"] * S) / s
        r = math.radians(p["roll"])
        cr, sr = math.cos(r), math.sin(r)
        hy = (t["cy"] - 0.5) * S
        x1, y1 = cr * x + sr * y, -sr * x + cr * y - hy
        x0 = _cyl(x1, t["hw"] * S * 1.08, math.radians(p["yaw"]))
        y0 = _cyl(y1, t["hh"] * S * 1.1, math.radians(p["pitch"]))
        c = (S - 1) / 2
        mx = cv2.resize((x0 + c).astype(np.float32), (S, S), interpolation=cv2.INTER_LINEAR)
        my = cv2.resize((y0 + hy + c).astype(np.float32), (S, S), interpolation=cv2.INTER_LINEAR)
        return cv2.remap(layer, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # type: ignore[return-value]


def _cyl(x: NDArray[np.float32], R: float, th: float) -> NDArray[np.float32]:
    """Inverse map of a cylinder of radius R rotated by th: output coord -> source coord."""
    if th == 0:
        return x
    ang = np.clip(np.arcsin(np.clip(x / R, -1, 1)) - th, -np.pi / 2, np.pi / 2)
    inside = R * np.sin(ang)
    edge = np.where(x > 0, R * math.sin(np.pi / 2 - th) - R, R * math.sin(-np.pi / 2 - th) + R)
    return np.where(np.abs(x) < R, inside, x + edge).astype(np.float32)


def _jpeg(img: NDArray[np.uint8], q: int) -> NDArray[np.uint8]:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
    if not ok:  # pragma: no cover
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)  # type: ignore[return-value]


def to_tensor(bgr: NDArray[np.uint8]) -> torch.Tensor:
    """uint8 BGR ``[B, H, W, 3]`` -> float32 RGB ``[B, 3, H, W]`` in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(bgr)).permute(0, 3, 1, 2)[:, [2, 1, 0]]
    return x.float().sub_(127.5).div_(127.5)


def sample_grid(faces: SyntheticFaces, identities: int = 4, per_identity: int = 6,
                gap: int = 2) -> NDArray[np.uint8]:
    """uint8 BGR grid: one row per identity, one column per nuisance seed."""
    if identities < 1 or per_identity < 1 or identities > faces.identities:
        raise ValueError(f"need 1 <= identities <= {faces.identities} and per_identity >= 1")
    S = faces.size
    grid = np.full((identities * (S + gap) - gap, per_identity * (S + gap) - gap, 3), 255, np.uint8)
    for a in range(identities):
        for b in range(per_identity):
            grid[a * (S + gap):a * (S + gap) + S, b * (S + gap):b * (S + gap) + S] = faces.render(a, b)
    return grid
