"""Presentation-attack-detection sets on synthetic faces, split by identity, with the unseen-attack protocol.

:func:`make_pad_splits` renders three identity-disjoint groups of :class:`~faceopt.data.synthetic_faces.SyntheticFaces`
(train, validation, test) and turns each into a PAD set with :func:`~faceopt.data.spoof_attacks.make_pad_set`:
every face is presented live and attacked by every species of
:data:`~faceopt.data.spoof_attacks.ATTACK_TYPES`. :func:`protocol` then cuts the splits for one protocol:

* ``held_out=None`` ("seen"): train, choose the threshold and test on every species;
* ``held_out="print"`` (leave-one-attack-type-out, the unseen-attack protocol): train and choose the
  threshold without any print attack; test on live faces and print attacks only.

Because :func:`make_pad_set` draws each image from ``(seed, face, species, copy)`` alone, the images of the
other species are the very same in every protocol. The threshold is chosen on the validation split (never on
the test split): the score at which validation APCER (worst species) equals BPCER, the equal-error point.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from faceopt.antispoof.metrics import pad_metrics
from faceopt.data.spoof_attacks import ATTACK_TYPES, BONAFIDE, AttackConfig, make_pad_set
from faceopt.data.synthetic_faces import EVAL_FIRST_IDENTITY, SyntheticFaces, to_tensor

__all__ = ["PadDataPreset", "PadSet", "PadSplits", "PROTOCOLS", "make_pad_splits", "protocol", "equal_error_threshold",
           "as_tensor"]

#: The protocols: ``None`` is "seen" (every species everywhere), a species name holds it out of training.
PROTOCOLS: tuple[str | None, ...] = (None, *ATTACK_TYPES)


@dataclass(frozen=True)
class PadDataPreset:
    """Everything that decides a PAD set: sizes, faces per split, presentations per face and species, seed."""

    size: int = 64
    train_faces: int = 120
    val_faces: int = 40
    test_faces: int = 60
    per_face: int = 2
    difficulty: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("size", "train_faces", "val_faces", "test_faces", "per_face"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"PadDataPreset.{name} must be a positive integer, got {value!r}")
        if self.size < 32:
            raise ValueError(f"PadDataPreset.size must be at least 32 pixels (the attacks' textures), got {self.size}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values."""
        return asdict(self)


@dataclass(frozen=True)
class PadSet:
    """Images uint8 BGR ``[N, H, W, 3]``, labels (0 bona fide, 1 attack), species (``"bonafide"`` for live)
    and the face each image shows (an index into its split)."""

    images: NDArray[np.uint8]
    labels: NDArray[np.int64]
    types: NDArray[np.str_]
    faces: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: NDArray[np.bool_]) -> PadSet:
        """The rows where ``keep`` is true."""
        return PadSet(self.images[keep], self.labels[keep], self.types[keep], self.faces[keep])

    def counts(self) -> dict[str, int]:
        """Images per species (``bonafide`` included)."""
        names, n = np.unique(self.types, return_counts=True)
        return {str(k): int(v) for k, v in zip(names, n)}


@dataclass(frozen=True)
class PadSplits:
    """Identity-disjoint train, validation and test PAD sets."""

    train: PadSet
    val: PadSet
    test: PadSet


def _split(faces: SyntheticFaces, per_face: int, seed: int, config: AttackConfig) -> PadSet:
    bonafide = faces.batch(np.arange(len(faces)))[0]
    images, labels, types = make_pad_set(bonafide, ATTACK_TYPES, per_face, seed, config)
    face_index = np.repeat(np.arange(len(faces), dtype=np.int64), per_face * (1 + len(ATTACK_TYPES)))
    return PadSet(images, labels, types, face_index)


def make_pad_splits(preset: PadDataPreset, config: AttackConfig | None = None) -> PadSplits:
    """Render the three splits of ``preset`` (faces of disjoint identity ranges, one image per identity).

    The training faces are the first identities of the generator; validation and test faces come from its
    evaluation range (``EVAL_FIRST_IDENTITY`` on), so none of them is a training identity.
    """
    config = config or AttackConfig(layout="synthetic")
    first = {"train": 0, "val": EVAL_FIRST_IDENTITY, "test": EVAL_FIRST_IDENTITY + preset.val_faces}
    count = {"train": preset.train_faces, "val": preset.val_faces, "test": preset.test_faces}
    out = {}
    for k, (name, start) in enumerate(first.items()):
        faces = SyntheticFaces(count[name], 1, size=preset.size, seed=preset.seed, difficulty=preset.difficulty,
                               first_identity=start)
        out[name] = _split(faces, preset.per_face, preset.seed * 10 + k, config)
    return PadSplits(**out)


def protocol(splits: PadSplits, held_out: str | None) -> PadSplits:
    """The splits of one protocol: without ``held_out`` in train and validation, and only it (with the live
    faces) in test; ``None`` keeps every species everywhere."""
    if held_out is None:
        return splits
    if held_out not in ATTACK_TYPES:
        raise ValueError(f"unknown attack type {held_out!r}; choose one of {', '.join(ATTACK_TYPES)} or None")
    return PadSplits(train=splits.train.subset(splits.train.types != held_out),
                     val=splits.val.subset(splits.val.types != held_out),
                     test=splits.test.subset((splits.test.types == held_out) | (splits.test.types == BONAFIDE)))


def equal_error_threshold(bonafide_scores: Sequence[float] | NDArray[np.floating],
                          attack_scores: Sequence[float] | NDArray[np.floating],
                          attack_types: Sequence[str] | NDArray[np.str_]) -> float:
    """The candidate threshold (a score in the data, or 1 past the largest) minimising
    ``|APCER_max - BPCER|``, ties to the lower ACER, then to the lower threshold.

    A presentation is called an attack at ``score >= threshold`` (as in :func:`pad_metrics`).
    """
    b = np.asarray(bonafide_scores, dtype=np.float64)
    a = np.asarray(attack_scores, dtype=np.float64)
    if b.size == 0 or a.size == 0:
        raise ValueError("equal_error_threshold needs bona fide and attack scores")
    candidates = np.unique(np.concatenate([b, a, [np.nextafter(max(b.max(), a.max()), np.inf)]]))
    best: tuple[float, float, float] | None = None
    for t in candidates:
        m = pad_metrics(b, a, attack_types, float(t))
        key = (abs(m["apcer"] - m["bpcer"]), m["acer"], float(t))
        if best is None or key < best:
            best = key
    assert best is not None
    return best[2]


def as_tensor(images: NDArray[np.uint8]) -> torch.Tensor:
    """uint8 BGR ``[N, H, W, 3]`` -> float32 RGB ``[N, 3, H, W]`` in [-1, 1] (the generator's convention)."""
    return to_tensor(images)
