"""Capture conditions (visa, border, wild): disjoint identities, capture resolution, nuisance by condition."""
from __future__ import annotations

import numpy as np
import pytest

from faceopt.data.conditions import CONDITION_FIRST, CONDITIONS, condition_faces, render_condition
from faceopt.data.pairs import MEGAFACE_DISTRACTOR_FIRST
from faceopt.data.synthetic_faces import EVAL_FIRST_IDENTITY


def test_identity_ranges_are_disjoint_from_training_and_other_protocols():
    firsts = sorted(CONDITION_FIRST.values())
    assert firsts[0] > MEGAFACE_DISTRACTOR_FIRST >= EVAL_FIRST_IDENTITY
    assert all(b - a >= EVAL_FIRST_IDENTITY for a, b in zip(firsts, firsts[1:]))


def test_images_are_captured_at_the_condition_resolution_and_resized():
    for name, c in CONDITIONS.items():
        faces = condition_faces(name, 2, 2)
        assert faces.size == c.capture and faces.first_identity == CONDITION_FIRST[name]
        x, labels = render_condition(faces, 64)
        assert x.shape == (4, 3, 64, 64) and str(x.dtype) == "torch.uint8" and labels.tolist() == [0, 0, 1, 1]


def _within_identity_change(name: str) -> float:
    x, _ = render_condition(condition_faces(name, 6, 2, seed=1), 64)
    a = x.float().numpy()
    return float(np.abs(a[0::2] - a[1::2]).mean())


def test_visa_images_of_one_person_vary_least_and_wild_most():
    visa, border, wild = (_within_identity_change(n) for n in ("visa", "border", "wild"))
    assert visa < border < wild


def test_unknown_condition_names_the_choices():
    with pytest.raises(ValueError, match="visa, border, wild"):
        condition_faces("studio", 2, 2)


def test_condition_ranges_stay_clear_of_the_door_phone_ranges():
    from faceopt.data import doorphone_visits as dv

    door = [dv.DOORPHONE_RESIDENT_FIRST, dv.DOORPHONE_NEGATIVE_FIRST, dv.DOORPHONE_DISTRACTOR_FIRST]
    for first in CONDITION_FIRST.values():
        assert all(abs(first - d) >= dv.IDENTITY_RANGE for d in door)
