"""The door-phone scene: determinism, exact ground truth, empty stretches, the static poster."""
import numpy as np
import pytest

from faceopt.data.doorbell import DoorbellConfig, doorbell_scene


def _faces(k=5, side=25):
    rng = np.random.default_rng(0)
    return rng.uniform(0.2, 0.9, (k, side, side))


CFG = DoorbellConfig(width=320, height=240, frames=60, visits=2, face_size=(60, 80), poster_size=50,
                     poster_xy=(10, 10), additive_noise=0.0)


def test_deterministic_and_ground_truth_is_where_the_face_was_pasted():
    a = list(doorbell_scene(_faces(), CFG))
    b = list(doorbell_scene(_faces(), CFG))
    assert all(np.array_equal(fa, fb) and np.array_equal(ga, gb) for (fa, ga), (fb, gb) in zip(a, b))
    empty = [f for f, g in a if len(g) == 0]
    busy = [(f, g) for f, g in a if len(g) > 0]
    assert empty and busy  # visits leave empty stretches for early exits
    background = empty[0]
    frame, gt = busy[len(busy) // 2]
    x0, y0, x1, y1 = gt[0].astype(int)
    changed = np.any(frame != background, axis=2)
    assert changed[y0:y1, x0:x1].mean() > 0.9  # inside the box: the face
    outside = changed.copy()
    outside[y0:y1, x0:x1] = False
    assert outside.sum() == 0  # outside: nothing else changed (no noise in this config)


def test_poster_is_static_and_never_ground_truth():
    frames = list(doorbell_scene(_faces(), CFG))
    first, last = frames[0][0], frames[-1][0]
    assert np.array_equal(first[10:60, 10:60], last[10:60, 10:60])
    poster_box = [10.0, 10.0, 60.0, 60.0]
    assert all(poster_box not in gt.tolist() for _, gt in frames)  # the poster is never a face to find
    assert all(len(g) <= CFG.visits for _, g in frames)


def test_noise_and_bad_input():
    noisy = DoorbellConfig(**{**CFG.__dict__, "additive_noise": 5.0, "gain_mean": 0.8, "gain_sd": 0.2})
    f0 = next(iter(doorbell_scene(_faces(), noisy)))[0]
    f1 = next(iter(doorbell_scene(_faces(), CFG)))[0]
    assert not np.array_equal(f0, f1) and f0.mean() < f1.mean()  # gain 0.8 darkens
    with pytest.raises(ValueError, match="grey crops"):
        next(iter(doorbell_scene(np.zeros((1, 25, 25)), CFG)))
