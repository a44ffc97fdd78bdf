"""Door-phone visits (thesis Chapter 4): real H.264 compression, infrared nights, approach, protocol ranges."""
from functools import lru_cache

import cv2
import numpy as np
import pytest
import torch

from faceopt.data.doorphone_visits import (
    CRF,
    DOORPHONE_DISTRACTOR_FIRST,
    DOORPHONE_NEGATIVE_FIRST,
    DOORPHONE_RESIDENT_FIRST,
    IDENTITY_RANGE,
    DoorphoneProtocol,
    Visit,
    VisitConfig,
    approach_sides,
    doorphone_protocol,
    h264_roundtrip,
    lab_image,
    psnr,
    render_visit,
)
from faceopt.data.pairs import LFW_FIRST, MEGAFACE_DISTRACTOR_FIRST
from faceopt.data.synthetic_faces import EVAL_FIRST_IDENTITY, NUISANCE_DEFAULTS, SyntheticFaces, to_tensor

pytest.importorskip("av")

SMALL = VisitConfig(frames=8, scene=(192, 144), start_side=16, end_side=64)
SIZE = 48


@lru_cache(maxsize=None)
def faces() -> SyntheticFaces:
    return SyntheticFaces(3, 1, SIZE, seed=0, first_identity=DOORPHONE_RESIDENT_FIRST, workers=1)


@lru_cache(maxsize=None)
def visit(condition: str, compression: str) -> Visit:
    return render_visit(faces(), 1, 1, condition=condition, compression=compression,  # type: ignore[arg-type]
                        config=SMALL, keep_scene=True)


@lru_cache(maxsize=None)
def protocol(seed: int = 0, compression: str = "weak") -> DoorphoneProtocol:
    return doorphone_protocol(3, 2, 4, 10, condition="day", compression=compression, size=SIZE,  # type: ignore[arg-type]
                              seed=seed, config=SMALL)


def colourfulness(images: np.ndarray) -> float:
    """Mean spread between the largest and the smallest channel, in grey levels."""
    x = images.astype(np.int16)
    return float((x.max(-1) - x.min(-1)).mean())


def fine_detail(image: np.ndarray, coarse: int = 20) -> float:
    """Mean absolute difference between an image and its ``coarse``-pixel version, enlarged back."""
    side = image.shape[0]
    small = cv2.resize(image, (coarse, coarse), interpolation=cv2.INTER_AREA)
    back = cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC)
    return float(np.abs(image.astype(np.float32) - back.astype(np.float32)).mean())


def test_strong_compresses_harder_than_weak() -> None:
    raw, weak, strong = visit("day", "none"), visit("day", "weak"), visit("day", "strong")
    assert CRF["weak"] < CRF["strong"]
    assert raw.bytes_per_frame is None
    assert weak.bytes_per_frame is not None and strong.bytes_per_frame is not None
    assert 0 < strong.bytes_per_frame < 0.6 * weak.bytes_per_frame
    assert raw.scene is not None and weak.scene is not None and strong.scene is not None
    assert psnr(strong.scene, raw.scene) < psnr(weak.scene, raw.scene) - 2
    assert psnr(strong.frames, raw.frames) < psnr(weak.frames, raw.frames) - 2
    assert psnr(weak.frames, raw.frames) > 25  # weak is a mild loss, not noise


def test_decoded_frames_shape_and_dtype() -> None:
    for compression in ("none", "weak", "strong"):
        v = visit("day", compression)
        assert v.frames.shape == (SMALL.frames, SIZE, SIZE, 3) and v.frames.dtype == np.uint8
        assert v.scene is not None and v.scene.shape == (SMALL.frames, 144, 192, 3) and v.scene.dtype == np.uint8
        x = v.tensors()
        assert x.shape == (SMALL.frames, 3, SIZE, SIZE) and x.dtype == torch.float32
        assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_h264_roundtrip_is_real_and_checked() -> None:
    raw = visit("day", "none").scene
    assert raw is not None
    decoded, nbytes = h264_roundtrip(raw, 23, fps=10)
    assert decoded.shape == raw.shape and decoded.dtype == np.uint8
    assert 0 < nbytes < raw.nbytes / 20  # a real codec: far below raw size
    assert not np.array_equal(decoded, raw) and psnr(decoded, raw) > 30
    again, again_bytes = h264_roundtrip(raw, 23, fps=10)
    assert again_bytes == nbytes and np.array_equal(again, decoded)
    with pytest.raises(ValueError, match="even"):
        h264_roundtrip(raw[:, :-1], 23)
    with pytest.raises(ValueError, match="crf"):
        h264_roundtrip(raw, 60)
    with pytest.raises(ValueError, match="uint8"):
        h264_roundtrip(raw.astype(np.float32), 23)  # type: ignore[arg-type]


def test_night_is_grey_infrared_and_day_is_colour() -> None:
    for compression in ("none", "strong"):
        night, day = visit("night", compression).frames, visit("day", compression).frames
        assert colourfulness(night) < 3.0, compression
        assert colourfulness(day) > 12.0, compression
    params = faces().nuisance_params(1, 1, difficulty=1.0, infrared=1.0)
    assert params["infrared"]  # probability 1 at difficulty 1
    assert visit("night", "none").frames.mean() < visit("day", "none").frames.mean()  # darker


def test_face_grows_over_the_visit() -> None:
    sides = approach_sides(SMALL)
    assert sides[0] == SMALL.start_side and sides[-1] == SMALL.end_side
    assert np.all(np.diff(sides) >= 0) and np.all(np.diff(np.diff(sides)) >= 0)  # 1/distance: accelerating growth
    v = visit("day", "none")
    width, height = SMALL.scene
    assert np.array_equal(v.sides, sides)
    assert np.array_equal(v.boxes[:, 2] - v.boxes[:, 0], sides) and np.array_equal(v.boxes[:, 3] - v.boxes[:, 1], sides)
    assert v.boxes[:, :2].min() >= 0 and v.boxes[:, 2].max() <= width and v.boxes[:, 3].max() <= height
    # distant frames carry less detail: what a 20-px version of the crop loses grows as the face nears
    assert fine_detail(v.frames[-1]) > 2 * fine_detail(v.frames[0])


def test_lab_enrolment_is_clean_and_seed_independent() -> None:
    off = {k: 0.0 for k in NUISANCE_DEFAULTS}
    f = faces()
    assert np.array_equal(lab_image(f, 2), f.render(2, 7, difficulty=0.0, **off))
    p = protocol()
    assert np.array_equal(p.enrolment[0], lab_image(f, 0))  # same generator seed, resident range


def test_protocol_is_deterministic_for_a_seed() -> None:
    a = protocol(0)
    b = doorphone_protocol(3, 2, 4, 10, condition="day", compression="weak", size=SIZE, seed=0, config=SMALL,
                           workers=1)
    c = protocol(1)
    assert np.array_equal(a.enrolment, b.enrolment) and np.array_equal(a.distractors, b.distractors)
    for va, vb in zip(a.visits, b.visits):
        assert np.array_equal(va.frames, vb.frames) and va.bytes_per_frame == vb.bytes_per_frame
    assert not np.array_equal(a.enrolment, c.enrolment)
    assert not np.array_equal(a.positive[0].frames, c.positive[0].frames)


def test_identity_ranges_are_disjoint() -> None:
    p = protocol()
    residents, negatives, distractors = set(p.resident_ids), set(p.negative_ids), set(p.distractor_ids)
    assert len(residents) == 3 and len(negatives) == 4 and len(distractors) == 10
    assert not residents & negatives and not residents & distractors and not negatives & distractors
    assert all(i >= EVAL_FIRST_IDENTITY for i in residents | negatives | distractors)  # above training ids
    firsts = [DOORPHONE_RESIDENT_FIRST, DOORPHONE_NEGATIVE_FIRST, DOORPHONE_DISTRACTOR_FIRST]
    assert firsts[0] >= MEGAFACE_DISTRACTOR_FIRST + IDENTITY_RANGE > LFW_FIRST  # above the pairs.py ranges
    assert all(b - a >= IDENTITY_RANGE for a, b in zip(firsts, firsts[1:]))
    assert [v.identity for v in p.positive] == sorted(np.repeat(p.resident_ids, 2).tolist())
    assert [v.label for v in p.positive] == [0, 0, 1, 1, 2, 2]
    assert {v.identity for v in p.negative} == negatives and {v.label for v in p.negative} == {-1}
    assert not np.array_equal(p.positive[0].frames, p.positive[1].frames)  # two visits differ


def test_protocol_tensors_follow_the_batch_layout() -> None:
    p = protocol()
    g, labels = p.gallery()
    assert g.shape == (13, 3, SIZE, SIZE) and g.dtype == torch.float32
    assert labels.tolist() == [0, 1, 2] + [-1] * 10
    assert torch.equal(g[:3], to_tensor(p.enrolment))
    x, visit_index, frame_labels = p.probes()
    assert x.shape == (10 * SMALL.frames, 3, SIZE, SIZE)
    assert visit_index.tolist() == np.repeat(np.arange(10), SMALL.frames).tolist()
    assert frame_labels[: 6 * SMALL.frames].tolist() == np.repeat([0, 0, 1, 1, 2, 2], SMALL.frames).tolist()
    assert set(frame_labels[6 * SMALL.frames:].tolist()) == {-1}
    assert p.bytes_per_frame is not None and p.bytes_per_frame > 0


def test_bad_arguments_give_clear_errors() -> None:
    with pytest.raises(ValueError, match="condition"):
        doorphone_protocol(2, 1, 1, 0, condition="dusk", config=SMALL)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compression"):
        doorphone_protocol(2, 1, 1, 0, compression="medium", config=SMALL)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="residents must be an integer >= 1"):
        doorphone_protocol(0, 1, 1, 0, config=SMALL)
    with pytest.raises(ValueError, match="visits_per_resident"):
        doorphone_protocol(2, 0, 1, 0, config=SMALL)
    with pytest.raises(ValueError, match=f"needs {IDENTITY_RANGE + 1} identities"):
        doorphone_protocol(2, 1, 1, IDENTITY_RANGE + 1, config=SMALL)
    with pytest.raises(ValueError, match="size"):
        doorphone_protocol(2, 1, 1, 0, size=8, config=SMALL)
    with pytest.raises(ValueError, match="frames >= 2"):
        VisitConfig(frames=1)
    with pytest.raises(ValueError, match="frames must be an integer"):
        VisitConfig(frames=8.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="even"):
        VisitConfig(scene=(321, 240))
    with pytest.raises(ValueError, match="start_side < end_side"):
        VisitConfig(start_side=64, end_side=32)
    with pytest.raises(ValueError, match="min\\(scene\\)"):
        VisitConfig(end_side=300)
    with pytest.raises(ValueError, match="identity"):
        render_visit(faces(), 3, config=SMALL)
