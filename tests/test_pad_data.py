"""PAD sets on synthetic faces: identity-disjoint splits, the unseen-attack protocol, the validation threshold."""
from __future__ import annotations

import numpy as np
import pytest

from faceopt.antispoof.metrics import pad_metrics
from faceopt.antispoof.pad_data import PROTOCOLS, PadDataPreset, as_tensor, equal_error_threshold, make_pad_splits, protocol
from faceopt.data.spoof_attacks import ATTACK_TYPES

TINY = PadDataPreset(size=32, train_faces=3, val_faces=2, test_faces=2, per_face=1)


@pytest.fixture(scope="module")
def splits():
    return make_pad_splits(TINY)


def test_every_face_is_live_and_attacked_by_every_species(splits) -> None:
    assert splits.train.counts() == {"bonafide": 3, **{a: 3 for a in ATTACK_TYPES}}
    assert splits.test.images.shape == (2 * 5, 32, 32, 3)
    assert (splits.train.labels == (splits.train.types != "bonafide")).all()


def test_splits_show_different_faces(splits) -> None:
    live = {name: getattr(splits, name).subset(getattr(splits, name).types == "bonafide").images
            for name in ("train", "val", "test")}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not any(np.array_equal(x, y) for x in live[a] for y in live[b])


def test_held_out_species_is_only_in_test(splits) -> None:
    p = protocol(splits, "replay")
    assert "replay" not in p.train.counts() and "replay" not in p.val.counts()
    assert p.test.counts() == {"bonafide": 2, "replay": 2}
    # the other species are the very same images as in the seen protocol
    seen_print = splits.train.images[splits.train.types == "print"]
    assert np.array_equal(p.train.images[p.train.types == "print"], seen_print)
    assert protocol(splits, None) is splits and PROTOCOLS[0] is None


def test_unknown_species_is_refused(splits) -> None:
    with pytest.raises(ValueError, match="unknown attack type 'paper'"):
        protocol(splits, "paper")


def test_preset_refuses_sizes_the_attacks_cannot_draw() -> None:
    with pytest.raises(ValueError, match="at least 32 pixels"):
        PadDataPreset(size=16)
    with pytest.raises(ValueError, match="train_faces"):
        PadDataPreset(train_faces=0)


def test_equal_error_threshold_by_hand() -> None:
    bona = [0.1, 0.2, 0.3, 0.6]
    attack = [0.5, 0.7, 0.8, 0.9]
    types = ["a", "a", "b", "b"]
    # at 0.5: APCER 0 (every attack >= 0.5), BPCER 1/4; at 0.6: APCER_a 1/2, BPCER 1/4; at 0.7: APCER_a 1/2, BPCER 0
    t = equal_error_threshold(bona, attack, types)
    assert t == 0.5
    m = pad_metrics(bona, attack, types, t)
    assert (m["apcer"], m["bpcer"]) == (0.0, 0.25)


def test_equal_error_threshold_separable_scores_err_nowhere() -> None:
    t = equal_error_threshold([0.0, 0.1], [0.9, 1.0], ["x", "y"])
    m = pad_metrics([0.0, 0.1], [0.9, 1.0], ["x", "y"], t)
    assert m["acer"] == 0.0 and 0.1 < t <= 0.9


def test_as_tensor_is_rgb_in_unit_range(splits) -> None:
    x = as_tensor(splits.train.images[:2])
    assert x.shape == (2, 3, 32, 32) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert np.allclose(x[0, 0].numpy(), splits.train.images[0, :, :, 2] / 127.5 - 1, atol=1e-6)
