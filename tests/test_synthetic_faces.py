"""Synthetic face generator: determinism, identity stability, nuisance knobs, protocols."""
import numpy as np
import pytest
import torch

from faceopt.data.pairs import LFW_FIRST, agedb_like_pairs, lfw_like_pairs, megaface_like
from faceopt.data.synthetic_faces import EVAL_FIRST_IDENTITY, NUISANCE_DEFAULTS, SyntheticFaces, sample_grid

OFF = {k: 0.0 for k in NUISANCE_DEFAULTS}


def test_determinism_and_seed() -> None:
    a, b = SyntheticFaces(3, 2, 56, seed=1), SyntheticFaces(3, 2, 56, seed=1)
    c = SyntheticFaces(3, 2, 56, seed=2)
    for i in range(len(a)):
        assert torch.equal(a[i][0], b[i][0])
    assert not torch.equal(a[0][0], c[0][0])
    xb, yb = a.batch(range(len(a)))  # batched == itemwise
    assert torch.equal(xb[3], a[3][0]) and yb.tolist() == a.labels.tolist()


@pytest.mark.parametrize("size", [32, 112])
def test_shapes_dtype_range(size: int) -> None:
    f = SyntheticFaces(2, 3, size, seed=0, difficulty=1.0)
    x, y = f[4]
    assert x.shape == (3, size, size) and x.dtype == torch.float32 and y == 1 == f.identity_of(4)
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    img = f.render(1, 7)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert len(f) == 6 and f.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_identity_stability() -> None:
    f = SyntheticFaces(6, 4, 56, seed=3, **OFF)
    assert np.array_equal(f.render(2, 0), f.render(2, 5))
    assert not np.array_equal(f.render(2, 0), f.render(3, 0))
    g = SyntheticFaces(8, 4, 56, seed=3, difficulty=0.3)
    ims = np.stack([g.render(i, k) for i in range(8) for k in range(4)]).reshape(8, 4, -1).astype(float)
    ims -= ims.mean(-1, keepdims=True)
    ims /= np.linalg.norm(ims, axis=-1, keepdims=True)
    flat = ims.reshape(32, -1)
    c = flat @ flat.T
    lab = np.repeat(np.arange(8), 4)
    same = (lab[:, None] == lab[None]) & ~np.eye(32, dtype=bool)
    assert c[same].mean() > c[lab[:, None] != lab[None]].mean()


@pytest.mark.parametrize("knob", sorted(NUISANCE_DEFAULTS))
def test_each_knob(knob: str) -> None:
    f = SyntheticFaces(2, 2, 48, seed=0, difficulty=1.0, **OFF)
    base = f.render(0, 0)
    on = {knob: 1.0 if knob in ("occlusion", "codec", "infrared", "age") else NUISANCE_DEFAULTS[knob]}
    assert any(not np.array_equal(base, f.render(0, s, **on)) for s in range(4))
    assert all(np.array_equal(base, f.render(0, s)) for s in range(4))


def test_difficulty_zero_turns_all_off() -> None:
    f = SyntheticFaces(2, 3, 32, seed=0, difficulty=0.0, age=0.0)
    assert np.array_equal(f.render(1, 0), f.render(1, 2))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="identities"):
        SyntheticFaces(-1, 2, 32, 0)
    with pytest.raises(ValueError, match="allowed.*yaw"):
        SyntheticFaces(2, 2, 32, 0, wobble=1.0)
    with pytest.raises(ValueError, match="allowed"):
        SyntheticFaces(2, 2, 32, 0).render(0, 0, wobble=1.0)
    with pytest.raises(ValueError):
        SyntheticFaces(2, 2, 32, 0, blur=-1.0)
    with pytest.raises(ValueError):
        SyntheticFaces(2, 2, 8, 0)


def test_lfw_pairs_structure() -> None:
    ps = lfw_like_pairs({"size": 32}, folds=10, pairs_per_fold=20, seed=1)
    pairs, issame = ps
    assert len(pairs) == 200 and issame.sum() == 100 and issame.dtype == bool
    lab = ps.faces.labels
    for f in range(10):
        blk = slice(20 * f, 20 * f + 20)
        assert issame[blk].tolist() == [True] * 10 + [False] * 10
        ids = {int(lab[i]) for p in pairs[blk] for i in p}
        other = {int(lab[i]) for k, p in enumerate(pairs) if ps.fold[k] != f for i in p}
        assert not ids & other  # folds are identity-disjoint
    assert all((lab[i] == lab[j]) == s for (i, j), s in zip(pairs, issame))
    assert len(set(pairs)) == len(pairs)
    assert ps.faces.first_identity >= EVAL_FIRST_IDENTITY == LFW_FIRST
    train = SyntheticFaces(50, 2, 32, seed=1)
    assert train.first_identity + train.identities <= ps.faces.first_identity
    with pytest.raises(ValueError, match="first_identity"):
        lfw_like_pairs(train, folds=2, pairs_per_fold=4)
    assert lfw_like_pairs.__defaults__[1:3] == (10, 600)  # 3,000 + 3,000 by default


def test_agedb_pairs_have_age_gaps() -> None:
    ps = agedb_like_pairs({"size": 32}, folds=2, pairs_per_fold=10, seed=0)
    ages = ps.faces.ages()
    gaps = [abs(ages[i] - ages[j]) for (i, j), s in zip(ps.pairs, ps.issame) if s]
    assert len(gaps) == 10 and np.mean(gaps) > 0.4
    assert ps.faces.first_identity > ps.faces.first_identity - 1 >= EVAL_FIRST_IDENTITY


def test_megaface_distractors() -> None:
    probe, gallery = megaface_like(probe_identities=3, probe_images=3, distractors=5, seed=0, size=32)
    assert len(probe) == 6 and len(gallery) == 8
    assert (gallery.labels == -1).sum() == 5 and set(gallery.labels[:3]) == {0, 1, 2}
    assert -1 not in probe.labels
    x, y = gallery.tensors()
    assert x.shape == (8, 3, 32, 32) and y.tolist() == gallery.labels.tolist()


def test_sample_grid() -> None:
    g = sample_grid(SyntheticFaces(4, 6, 32, seed=0), identities=2, per_identity=3)
    assert g.dtype == np.uint8 and g.shape == (2 * 34 - 2, 3 * 34 - 2, 3)
