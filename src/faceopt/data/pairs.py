"""LFW-, AgeDB- and MegaFace-like protocols over :class:`SyntheticFaces`.

Train/test disjointness: identities are global ids ``first_identity + label`` whose
traits are seeded by ``(seed, id)``. Training sets use ids below
``EVAL_FIRST_IDENTITY`` (10**6); each protocol builds its set from its own range
(``LFW_FIRST``, ``AGEDB_FIRST``, ``MEGAFACE_PROBE_FIRST``, ``MEGAFACE_DISTRACTOR_FIRST``)
and refuses a given set that starts below ``EVAL_FIRST_IDENTITY``. Pairs are indices into
the returned ``faces``; within each fold genuine pairs come first, then impostors, and
folds are identity-disjoint, so ``verification_accuracy(scores, issame, folds)`` applies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from faceopt.data.synthetic_faces import EVAL_FIRST_IDENTITY, SyntheticFaces

__all__ = ["LFW_FIRST", "AGEDB_FIRST", "MEGAFACE_PROBE_FIRST", "MEGAFACE_DISTRACTOR_FIRST",
           "PairSet", "FaceList", "lfw_like_pairs", "agedb_like_pairs", "megaface_like"]

LFW_FIRST = EVAL_FIRST_IDENTITY
AGEDB_FIRST = 2 * EVAL_FIRST_IDENTITY
MEGAFACE_PROBE_FIRST = 3 * EVAL_FIRST_IDENTITY
MEGAFACE_DISTRACTOR_FIRST = 4 * EVAL_FIRST_IDENTITY


@dataclass(frozen=True)
class PairSet:
    """Verification pairs; unpacks as ``pairs, issame``. ``fold[k]`` is pair k's fold."""

    pairs: list[tuple[int, int]]
    issame: NDArray[np.bool_]
    faces: SyntheticFaces
    fold: NDArray[np.int64]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.pairs, self.issame))

    def __len__(self) -> int:
        return len(self.pairs)


def _faces(obj: SyntheticFaces | Mapping[str, Any] | None, first: int,
           defaults: dict[str, Any]) -> SyntheticFaces:
    if isinstance(obj, SyntheticFaces):
        if obj.first_identity < EVAL_FIRST_IDENTITY:
            raise ValueError(f"evaluation faces must use first_identity >= {EVAL_FIRST_IDENTITY} "
                             f"(training range), got {obj.first_identity}")
        return obj
    kw = {**defaults, **dict(obj or {})}
    if kw.setdefault("first_identity", first) < EVAL_FIRST_IDENTITY:
        raise ValueError(f"first_identity must be >= {EVAL_FIRST_IDENTITY}, got {kw['first_identity']}")
    return SyntheticFaces(**kw)


def _pairs(faces: SyntheticFaces, folds: int, pairs_per_fold: int, seed: int,
           gap: NDArray[np.float64] | None) -> PairSet:
    if folds < 1 or pairs_per_fold < 2 or pairs_per_fold % 2:
        raise ValueError(f"need folds >= 1 and an even pairs_per_fold >= 2, got {folds}, {pairs_per_fold}")
    m, n_id, half = faces.images_per_identity, faces.identities, pairs_per_fold // 2
    k = n_id // folds
    if m < 2 or k < 2 or k * m * (m - 1) // 2 < half:
        raise ValueError(f"{n_id} identities x {m} images cannot give {folds} folds of {half} genuine pairs")
    rng = np.random.default_rng([seed, 0x9A12])
    pairs: list[tuple[int, int]] = []
    fold: list[int] = []
    for f in range(folds):
        ids = np.arange(f * k, (f + 1) * k)
        gen = [(a * m + i, a * m + j) for a in ids for i in range(m) for j in range(i + 1, m)]
        if gap is None:
            pick = rng.choice(len(gen), half, replace=False)
        else:  # prefer the largest age gaps (AgeDB-30 keeps pairs 30+ years apart)
            g = np.array([abs(gap[i] - gap[j]) for i, j in gen]) + rng.random(len(gen)) * 1e-6
            pick = np.argsort(-g)[:half]
        pairs += [gen[p] for p in pick]
        seen: set[tuple[int, int]] = set()
        while len(seen) < half:
            a, b = rng.choice(ids, 2, replace=False)
            seen.add((int(a * m + rng.integers(m)), int(b * m + rng.integers(m))))
        pairs += sorted(seen, key=lambda _: rng.random())
        fold += [f] * pairs_per_fold
    issame = np.tile(np.r_[np.ones(half, bool), np.zeros(half, bool)], folds)
    return PairSet(pairs, issame, faces, np.asarray(fold, np.int64))


def lfw_like_pairs(faces_or_params: SyntheticFaces | Mapping[str, Any] | None = None, folds: int = 10,
                   pairs_per_fold: int = 600, seed: int = 0) -> PairSet:
    """LFW-style: ``folds`` identity-disjoint folds of ``pairs_per_fold`` pairs, half genuine.

    ``faces_or_params`` is an evaluation :class:`SyntheticFaces` or keyword arguments for
    one (defaults: ``folds * max(2, ceil(pairs_per_fold / 10))`` identities x 4 images,
    112 px, ids from ``LFW_FIRST``).
    """
    k = max(2, -(-pairs_per_fold // 10))
    faces = _faces(faces_or_params, LFW_FIRST, {"identities": folds * k, "images_per_identity": 4,
                                                "size": 112, "seed": seed})
    return _pairs(faces, folds, pairs_per_fold, seed, None)


def agedb_like_pairs(faces_or_params: SyntheticFaces | Mapping[str, Any] | None = None, folds: int = 10,
                     pairs_per_fold: int = 600, seed: int = 0) -> PairSet:
    """AgeDB-30-style: as LFW but every image has an age drift (``age=1`` by default,
    greying, receding hairline, wider face, wrinkles), genuine pairs take the largest age
    gaps of their fold, and nuisance is stronger (``difficulty=0.7``); ids from ``AGEDB_FIRST``."""
    k = max(2, -(-pairs_per_fold // 15))
    faces = _faces(faces_or_params, AGEDB_FIRST, {"identities": folds * k, "images_per_identity": 6,
                                                  "size": 112, "seed": seed, "age": 1.0, "difficulty": 0.7})
    return _pairs(faces, folds, pairs_per_fold, seed, faces.ages())


class FaceList(Dataset):
    """Selected images of one or more :class:`SyntheticFaces` with their own labels."""

    def __init__(self, parts: Sequence[tuple[SyntheticFaces, Sequence[int], Sequence[int]]]) -> None:
        self.parts = [(f, np.asarray(ix, np.int64), np.asarray(lb, np.int64)) for f, ix, lb in parts]
        self.labels: NDArray[np.int64] = np.concatenate([lb for _, _, lb in self.parts])
        self._src = np.concatenate([np.full(len(ix), k) for k, (_, ix, _) in enumerate(self.parts)])
        self._idx = np.concatenate([ix for _, ix, _ in self.parts])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, _ = self.parts[self._src[i]][0].batch([self._idx[i]])
        return x[0], int(self.labels[i])

    def batch(self, indices: Sequence[int] | NDArray[np.integer]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``[B, 3, H, W]`` and labels ``[B]`` for positions ``indices``."""
        idx = np.asarray(indices, np.int64).ravel()
        out: torch.Tensor | None = None
        for k, (faces, _, _) in enumerate(self.parts):
            sel = np.nonzero(self._src[idx] == k)[0]
            if len(sel):
                x, _ = faces.batch(self._idx[idx[sel]])
                if out is None:
                    out = torch.empty((len(idx), *x.shape[1:]))
                out[torch.as_tensor(sel)] = x
        assert out is not None
        return out, torch.as_tensor(self.labels[idx])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images and labels at once."""
        return self.batch(np.arange(len(self)))


@dataclass(frozen=True)
class IdentificationSet:
    """Probe and gallery; unpacks as ``probe, gallery``. Distractors have label -1."""

    probe: FaceList
    gallery: FaceList

    def __iter__(self) -> Iterator[FaceList]:
        return iter((self.probe, self.gallery))


def megaface_like(probe_identities: int = 80, probe_images: int = 5, distractors: int = 1000,
                  seed: int = 0, **params: Any) -> IdentificationSet:
    """MegaFace-style rank-1 identification: image 0 of each probe identity is its gallery
    mate, images ``1..probe_images-1`` are probes, and ``distractors`` single images of other
    identities (ids from ``MEGAFACE_DISTRACTOR_FIRST``) join the gallery with label -1.
    ``params`` go to both :class:`SyntheticFaces` (e.g. ``size``, ``difficulty``)."""
    if probe_images < 2 or distractors < 0 or probe_identities < 1:
        raise ValueError("need probe_identities >= 1, probe_images >= 2 and distractors >= 0")
    for key in ("first_identity", "identities", "images_per_identity", "seed"):
        if key in params:
            raise ValueError(f"{key!r} is set by megaface_like")
    probe = SyntheticFaces(probe_identities, probe_images, seed=seed, first_identity=MEGAFACE_PROBE_FIRST,
                           **params)
    ids = np.arange(probe_identities)
    pidx = (ids[:, None] * probe_images + np.arange(1, probe_images)[None]).ravel()
    parts = [(probe, ids * probe_images, ids)]
    if distractors:
        dis = SyntheticFaces(distractors, 1, seed=seed, first_identity=MEGAFACE_DISTRACTOR_FIRST, **params)
        parts.append((dis, np.arange(distractors), np.full(distractors, -1)))
    return IdentificationSet(FaceList([(probe, pidx, probe.labels[pidx])]), FaceList(parts))  # type: ignore[list-item, arg-type]

