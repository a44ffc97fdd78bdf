"""Presentation attacks: each species leaves its physical trace, and the generator is seeded and fair."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import require_asset

from faceopt.data import spoof_attacks as sa
from faceopt.data.spoof_attacks import (
    ATTACK_TYPES,
    BONAFIDE,
    LAYOUTS,
    AttackConfig,
    apply_attack,
    bonafide_nuisance,
    eye_centres,
    held_out_split,
    make_pad_set,
    tensor_to_bgr,
)
from faceopt.data.synthetic_faces import SyntheticFaces, to_tensor

S = 112
# a camera that changes nothing but blur: isolates each attack's own trace
CLEAN = dict(capture_gain=(1.0, 1.0), capture_white_balance=(0.0, 0.0), capture_noise=(0.0, 0.0), capture_jpeg_p=0.0,
             layout="synthetic")


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """Six bona fide synthetic faces (no codec / infrared / JPEG frames, whose 8x8 blocks are periodic too)."""
    sf = SyntheticFaces(6, 1, S, seed=0, codec=0, infrared=0, jpeg=0)
    return np.stack([sf.render(i, 0) for i in range(6)])


def _power(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power spectrum of the Hann-windowed grey image, and each bin's frequencies (cycles per pixel)."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)
    g -= g.mean()
    h, w = g.shape
    p = np.abs(np.fft.fft2(g * np.outer(np.hanning(h), np.hanning(w)))) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    return p, fx, fy


def _annulus_share(img: np.ndarray, f0: float, tol: float = 0.12) -> float:
    """Share of the (non-DC) spectral energy at radial frequencies within ``tol`` of ``f0``."""
    p, fx, fy = _power(img)
    r = np.hypot(fx, fy)
    return float(p[np.abs(r - f0) <= tol * f0].sum() / p[r > 0.02].sum())


def _bin_share(img: np.ndarray, fx0: float, fy0: float) -> float:
    """Share of the spectral energy within 1.5 bins of (+-fx0, +-fy0)."""
    p, fx, fy = _power(img)
    n = img.shape[0]
    sel = (np.abs(np.abs(fx) - fx0) <= 1.5 / n) & (np.abs(np.abs(fy) - fy0) <= 1.5 / n)
    return float(p[sel].sum() / p[np.hypot(fx, fy) > 0.02].sum())


def _laplacian_var(img: np.ndarray) -> float:
    """Fine detail on the face (cheeks, nose and mouth of the synthetic layout)."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(cv2.Laplacian(g, cv2.CV_32F)[30:80, 35:77].var())


@pytest.mark.parametrize("attack", ATTACK_TYPES)
def test_each_attack_changes_image_keeps_shape_and_is_seeded(faces: np.ndarray, attack: str) -> None:
    f = faces[0]
    a = apply_attack(f, attack, 3)
    assert a.shape == f.shape and a.dtype == np.uint8
    assert np.abs(a.astype(int) - f).mean() > 2
    np.testing.assert_array_equal(a, apply_attack(f, attack, np.random.default_rng(3)))
    assert not np.array_equal(a, apply_attack(f, attack, 4))
    odd = cv2.resize(f, (90, 70))  # any size, not only squares
    assert apply_attack(odd, attack, 0).shape == odd.shape


@pytest.mark.parametrize("attack", ATTACK_TYPES)
def test_zero_strength_leaves_only_the_camera(faces: np.ndarray, attack: str) -> None:
    cfg = AttackConfig(**{f"{attack}_strength": 0.0, **CLEAN, "capture_blur": (0.0, 0.0)})
    diff = np.abs(apply_attack(faces[1], attack, 0, cfg).astype(int) - faces[1])
    if attack == "replay":  # the screen is still sampled on a finer grid and integrated by the camera's pixels
        assert diff.mean() < 3
    else:
        assert diff.mean() < 0.2


@pytest.mark.parametrize("lpi", [100.0, 150.0])
def test_print_shows_a_halftone_at_the_chosen_screen_ruling(faces: np.ndarray, lpi: float) -> None:
    ppi, other = 420.0, 250.0 - lpi
    cfg = AttackConfig(print_lpi=(lpi, lpi), print_ppi=(ppi, ppi), print_blur=(0.3, 0.3), capture_blur=(0.3, 0.3), **CLEAN)
    for i, f in enumerate(faces):
        live, printed = bonafide_nuisance(f, i, cfg), apply_attack(f, "print", i, cfg)
        at_screen = _annulus_share(printed, lpi / ppi)
        assert at_screen > 2 * _annulus_share(live, lpi / ppi), i
        assert at_screen > 1.5 * _annulus_share(printed, other / ppi), i  # the energy sits at ppi / lpi, not elsewhere


def test_print_default_config_adds_high_frequency_band_energy(faces: np.ndarray) -> None:
    cfg = AttackConfig(layout="synthetic")
    ratios = [_annulus_share(apply_attack(f, "print", i, cfg), 0.3, 0.4)
              / _annulus_share(bonafide_nuisance(f, i, cfg), 0.3, 0.4) for i, f in enumerate(faces)]
    assert np.median(ratios) > 2


@pytest.mark.parametrize("pitch", [2.3, 1.7])
def test_replay_shows_the_pixel_grid_or_its_moire(faces: np.ndarray, pitch: float) -> None:
    """A grid of pitch p gives a line at 1/p cycles per pixel; above Nyquist (p < 2) it aliases to |1/p - 1|: moire."""
    cfg = AttackConfig(replay_pixel_pitch=(pitch, pitch), replay_grid_angle=(0.0, 0.0), replay_bezel_p=0.0,
                       replay_glare_p=0.0, replay_banding=(0.0, 0.0), **CLEAN)
    fa = abs(1 / pitch - round(1 / pitch))
    for i, f in enumerate(faces):
        replay, live = apply_attack(f, "replay", i, cfg), bonafide_nuisance(f, i, cfg)
        assert _bin_share(replay, fa, 0.0) > 0.001 and _bin_share(replay, fa, 0.0) > 30 * _bin_share(live, fa, 0.0), i
        assert _bin_share(replay, 0.0, fa) > 10 * _bin_share(live, 0.0, fa), i  # the rows of the black matrix


def test_replay_bezel_is_dark_at_the_borders(faces: np.ndarray) -> None:
    cfg = AttackConfig(replay_bezel_p=1.0, **CLEAN)
    for i, f in enumerate(faces):
        grey = cv2.cvtColor(apply_attack(f, "replay", i, cfg), cv2.COLOR_BGR2GRAY).astype(float)
        live = cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(float)

        def border(g: np.ndarray) -> float:
            return float(np.median(np.concatenate([g[:2].ravel(), g[-2:].ravel(), g[:, :2].ravel(), g[:, -2:].ravel()])))

        assert border(grey) < 45 and border(grey) < 0.4 * border(live), i
        assert grey[40:70, 40:70].mean() > 2 * border(grey), i  # the screen itself is lit


def test_replay_default_config_adds_periodic_energy(faces: np.ndarray) -> None:
    cfg = AttackConfig(layout="synthetic")
    ratios = [_annulus_share(apply_attack(f, "replay", i, cfg), 0.35, 0.45)
              / _annulus_share(bonafide_nuisance(f, i, cfg), 0.35, 0.45) for i, f in enumerate(faces)]
    assert np.median(ratios) > 2


def _eye_regions(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Small ellipses at the layout's eyes (always inside a hole) and the face away from the holes."""
    yy, xx = np.mgrid[:n, :n]
    inner, far = np.zeros((n, n), bool), np.ones((n, n), bool)
    for x, y in eye_centres(n, n, "synthetic"):
        inner |= ((xx - x) / 3.0) ** 2 + ((yy - y) / 1.5) ** 2 <= 1
        far &= ((xx - x) / 14.0) ** 2 + ((yy - y) / 10.0) ** 2 > 1
    face = ((xx - n / 2) / (0.25 * n)) ** 2 + ((yy - n / 2) / (0.32 * n)) ** 2 <= 1
    return inner, face & far


def test_cutout_eyes_are_the_real_face_and_the_rest_is_print(faces: np.ndarray) -> None:
    inner, rest = _eye_regions(S)
    sharp = AttackConfig(cutout_trim_p=0.0, cutout_mouth_p=0.0, capture_blur=(0.0, 0.0), print_blur=(0.0, 0.0), **CLEAN)
    blurred = AttackConfig(cutout_trim_p=0.0, cutout_mouth_p=0.0, capture_blur=(0.5, 0.5), print_blur=(0.4, 0.4), **CLEAN)
    for i, f in enumerate(faces):
        d = np.abs(apply_attack(f, "cutout", i, sharp).astype(float) - f).mean(axis=2)
        assert d[inner].mean() < 1.0 and d[rest].mean() > 8, i
        # with defocus and lens blur the holes hold the bona fide face seen through the same blur (sigma 0.5 o 0.4)
        seen = cv2.GaussianBlur(cv2.GaussianBlur(f, (0, 0), 0.4), (0, 0), 0.5).astype(float)
        d = np.abs(apply_attack(f, "cutout", i, blurred).astype(float) - seen).mean(axis=2)
        assert d[inner].mean() < 3.0 and d[rest].mean() > 8, i


def test_cutout_shows_the_face_behind() -> None:
    a = np.full((S, S, 3), 200, np.uint8)
    b = np.zeros((S, S, 3), np.uint8)
    cfg = AttackConfig(cutout_trim_p=0.0, cutout_mouth_p=0.0, capture_blur=(0.0, 0.0), print_blur=(0.0, 0.0), **CLEAN)
    out = apply_attack(a, "cutout", 0, cfg, behind=b)
    inner, rest = _eye_regions(S)
    assert out[inner].max() < 5 and out[rest].mean() > 100
    with pytest.raises(ValueError, match="shape"):
        apply_attack(a, "cutout", 0, cfg, behind=b[:50])


def test_mask_removes_fine_detail(faces: np.ndarray) -> None:
    strict = AttackConfig(mask_eye_holes_p=0.0, capture_blur=(0.0, 0.0), **CLEAN)
    for i, f in enumerate(faces):
        assert _laplacian_var(apply_attack(f, "mask", i, strict)) < 0.65 * _laplacian_var(f), i
    cfg = AttackConfig(layout="synthetic")  # and against live images through the same (default) camera
    ratios = [_laplacian_var(apply_attack(f, "mask", i, cfg)) / _laplacian_var(bonafide_nuisance(f, i, cfg))
              for i, f in enumerate(faces)]
    assert np.median(ratios) < 0.6


def test_bonafide_nuisance_varies_live_images_mildly(faces: np.ndarray) -> None:
    f = faces[2]
    a, b = bonafide_nuisance(f, 0), bonafide_nuisance(f, 1)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, bonafide_nuisance(f, 0))
    for x in (a, b):
        assert 0 < np.abs(x.astype(int) - f).mean() < 20


def test_make_pad_set_counts_labels_and_determinism(faces: np.ndarray) -> None:
    imgs, labels, types = make_pad_set(faces[:3], ["print", "mask"], per_face=2, seed=5)
    assert imgs.shape == (3 * 2 * 3, S, S, 3) and imgs.dtype == np.uint8
    assert labels.dtype == np.int64 and list(labels[:6]) == [0, 0, 1, 1, 1, 1]
    assert list(types[:6]) == [BONAFIDE, BONAFIDE, "print", "print", "mask", "mask"]
    assert (labels == (types != BONAFIDE)).all() and (labels == 0).sum() == 6
    for t in (BONAFIDE, "print", "mask"):
        assert (types == t).sum() == 6
    again = make_pad_set(faces[:3], ["print", "mask"], per_face=2, seed=5)
    np.testing.assert_array_equal(imgs, again[0])
    other = make_pad_set(faces[:3], ["print", "mask"], per_face=2, seed=6)[0]
    assert not np.array_equal(imgs, other)
    assert not np.array_equal(imgs[0], imgs[1])  # live copies vary too
    # a set without one species holds the same images of the others (leave-one-attack-out splits)
    only_mask, _, t2 = make_pad_set(faces[:3], ["mask"], per_face=2, seed=5)
    np.testing.assert_array_equal(only_mask[t2 == "mask"], imgs[types == "mask"])
    np.testing.assert_array_equal(only_mask[t2 == BONAFIDE], imgs[types == BONAFIDE])
    raw = make_pad_set(faces[:1], [], per_face=1, seed=0, bonafide_nuisance=False)[0]
    np.testing.assert_array_equal(raw[0], faces[0])


def test_make_pad_set_takes_synthetic_tensors(faces: np.ndarray) -> None:
    t = to_tensor(faces[:2])
    np.testing.assert_array_equal(tensor_to_bgr(t), faces[:2])
    a = make_pad_set(t, ["replay"], per_face=1, seed=0)[0]
    np.testing.assert_array_equal(a, make_pad_set(faces[:2], ["replay"], per_face=1, seed=0)[0])
    x, _ = SyntheticFaces(2, 1, 64, seed=1).batch([0, 1])
    imgs, labels, _ = make_pad_set(x, list(ATTACK_TYPES), per_face=1, seed=0)
    assert imgs.shape == (2 * 5, 64, 64, 3) and labels.sum() == 8


def test_bad_names_and_knobs_are_refused(faces: np.ndarray) -> None:
    for call in (lambda: apply_attack(faces[0], "video", 0), lambda: make_pad_set(faces, ["print", "deepfake"], 1, 0),
                 lambda: held_out_split("paper")):
        with pytest.raises(ValueError, match="allowed") as err:
            call()
        assert all(a in str(err.value) for a in ATTACK_TYPES)
    with pytest.raises(ValueError, match="allowed"):
        AttackConfig(layout="profile")
    with pytest.raises(ValueError, match="print_lpi"):
        AttackConfig(print_lpi=(150.0, 100.0))
    with pytest.raises(ValueError, match="probability"):
        AttackConfig(replay_bezel_p=1.5)
    with pytest.raises(ValueError, match="uint8"):
        apply_attack(faces[0].astype(np.float32), "print", 0)
    with pytest.raises(ValueError, match="per_face"):
        make_pad_set(faces, ["print"], 0, 0)
    assert held_out_split("replay") == (("print", "cutout", "mask"), ("replay",))


def test_layouts_match_their_sources() -> None:
    from faceopt.data.synthetic_faces import _traits
    from faceopt.system.align import ARCFACE_TEMPLATE_112

    np.testing.assert_allclose(eye_centres(112, 112), ARCFACE_TEMPLATE_112[:2], atol=1e-4)
    np.testing.assert_allclose(np.array(LAYOUTS["arcface"].mouth) * 112, ARCFACE_TEMPLATE_112[3:].mean(0), atol=1e-4)
    t = [_traits(0, g, 1.0) for g in range(200)]
    lay = LAYOUTS["synthetic"]
    assert abs(np.mean([x["cx"] - x["eye_dx"] for x in t]) - lay.eyes[0][0]) < 0.01
    assert abs(np.mean([x["eye_y"] for x in t]) - lay.eyes[0][1]) < 0.01
    assert abs(np.mean([x["mouth_y"] for x in t]) - lay.mouth[1]) < 0.01
    assert sa.halftone_period_px(120, 360) == 3.0


def test_every_attack_on_a_real_photo() -> None:
    require_asset("obama.jpg")
    from faceopt.system.real_photos import load_photos

    photo = load_photos(["obama.jpg"])["obama.jpg"]
    photo = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
    for attack in ATTACK_TYPES:
        out = apply_attack(photo, attack, 0)
        assert out.shape == photo.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - photo).mean() > 2
