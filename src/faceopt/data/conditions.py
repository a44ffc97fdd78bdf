"""Capture conditions of the NIST FRVT 1:1 categories (thesis Table 8) on synthetic faces: visa, border, wild.

NIST's categories differ in how the faces were captured, which the thesis uses to explain its
results (high-resolution visa photos are "not the system's target"). Each condition here is a
setting of :class:`~faceopt.data.synthetic_faces.SyntheticFaces`'s nuisance knobs and a capture
resolution: the face is rendered at ``capture`` pixels and resized (``cv2.INTER_LINEAR``, as a
camera pipeline's scaler would) to the network's input, so a low capture resolution loses detail
that no network can recover.

===========  =======  ===================================================================
condition    capture  nuisance (amplitudes at ``difficulty = 1``)
===========  =======  ===================================================================
visa         112      frontal (yaw 4, pitch 3, roll 2 degrees), even light (0.1), neutral
                      expression (0.2), no occlusion, no blur, little noise (2), no codec
border       56       kiosk capture: mild pose (yaw 15, pitch 8, roll 6), glare and uneven
                      light (0.7), expression 0.4, glasses or a mask 5% of the time, blur
                      0.8, noise 6, JPEG 0.4
wild         40       every knob at its default amplitude (yaw 35, pitch 15, roll 15, light,
                      occlusion 30%, blur 1.5, noise 12, JPEG, codec 20%, infrared 10%)
===========  =======  ===================================================================

Identities of each condition come from their own global range (``CONDITION_FIRST``), disjoint from
training ids and from the other protocols of :mod:`faceopt.data.pairs`. A set holds
``identities x images_per_identity`` images; scoring every pair of them gives the genuine and impostor
scores of a 1:1 protocol, with enough impostor pairs for small false-match rates
(``n (n - 1) / 2`` pairs for ``n`` images).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import cv2
import numpy as np
import torch

from faceopt.data.synthetic_faces import EVAL_FIRST_IDENTITY, SyntheticFaces

__all__ = ["Condition", "CONDITIONS", "CONDITION_FIRST", "condition_faces", "render_condition"]


@dataclass(frozen=True)
class Condition:
    """A capture condition: the resolution the face is captured at and the nuisance knobs (``difficulty`` 1)."""

    name: str
    capture: int
    nuisance: Mapping[str, float] = field(default_factory=dict)


_OFF = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0, "shift": 0.0, "scale": 0.0, "expression": 0.0, "illumination": 0.0,
        "occlusion": 0.0, "blur": 0.0, "noise": 0.0, "jpeg": 0.0, "codec": 0.0, "infrared": 0.0, "clutter": 0.0}

CONDITIONS: dict[str, Condition] = {
    "visa": Condition("visa", 112, {**_OFF, "yaw": 4.0, "pitch": 3.0, "roll": 2.0, "shift": 0.01, "scale": 0.02,
                                    "expression": 0.2, "illumination": 0.1, "noise": 2.0}),
    "border": Condition("border", 56, {**_OFF, "yaw": 15.0, "pitch": 8.0, "roll": 6.0, "shift": 0.03, "scale": 0.05,
                                       "expression": 0.4, "illumination": 0.7, "occlusion": 0.05, "blur": 0.8,
                                       "noise": 6.0, "jpeg": 0.4, "clutter": 0.5}),
    "wild": Condition("wild", 40, {}),
}
#: First global identity of each condition's sets (above every range of faceopt.data.pairs and faceopt.data.doorphone_visits).
CONDITION_FIRST: dict[str, int] = {name: (8 + k) * EVAL_FIRST_IDENTITY for k, name in enumerate(CONDITIONS)}


def condition_faces(condition: str, identities: int, images_per_identity: int, *, seed: int = 0,
                    workers: int | None = None) -> SyntheticFaces:
    """The faces of a condition, rendered at its capture resolution (resize them with :func:`render_condition`)."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")
    c = CONDITIONS[condition]
    nuisance: dict[str, Any] = dict(c.nuisance)  # knob names only (SyntheticFaces checks them)
    return SyntheticFaces(identities, images_per_identity, size=c.capture, seed=seed, difficulty=1.0,
                          first_identity=CONDITION_FIRST[condition], workers=workers, **nuisance)


def render_condition(faces: SyntheticFaces, size: int, indices: np.ndarray | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGB images ``[N, 3, size, size]`` (the capture resized to the network's input) and labels ``[N]``."""
    idx = np.arange(len(faces)) if indices is None else np.asarray(indices)
    x, labels = faces.batch(idx)
    rgb = x.mul(127.5).add_(127.5).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    if rgb.shape[1] != size:
        rgb = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in rgb])
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2).contiguous(), labels.long()
