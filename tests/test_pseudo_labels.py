"""Pseudo-labels for vtest.avi: the annotation file format and the box maker (no asset needed)."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from faceopt.assets import ASSETS
from faceopt.detection import pseudo_labels as pl

W, H = 160, 120


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# --------------------------------------------------------------------------- #
# The file
# --------------------------------------------------------------------------- #
def test_save_load_round_trip(tmp_path):
    boxes = {0: np.array([[1.0, 2.0, 30.5, 80.25]], np.float32), 1: np.zeros((0, 4), np.float32),
             2: np.array([[0, 0, 10, 10], [5.125, 6, 7, 8]], np.float32)}
    meta = {"kind": "pseudo-labels", "n": 3}
    path = pl.save_annotations(tmp_path / "sub" / "a.json", boxes, meta)
    loaded, meta2 = pl.load_annotations(path)
    assert meta2 == meta
    assert sorted(loaded) == [0, 1, 2]
    for k in boxes:
        assert loaded[k].dtype == np.float32 and loaded[k].shape == boxes[k].shape
        np.testing.assert_allclose(loaded[k], boxes[k], atol=0.006)  # rounded to 0.01 px
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]  # no temporary file left


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    pl.save_annotations(path, {0: np.array([[0, 0, 5, 5]], np.float32)}, {"v": 1})
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", broken_fsync)   # the one atomic write (faceopt.io) syncs before renaming
    with pytest.raises(OSError, match="simulated"):
        pl.save_annotations(path, {0: np.array([[1, 1, 9, 9]], np.float32)}, {"v": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_save_rejects_bad_boxes_before_touching_the_file(tmp_path):
    path = tmp_path / "a.json"
    with pytest.raises(ValueError, match="frame 3"):
        pl.save_annotations(path, {3: np.array([[10, 0, 5, 5]], np.float32)}, {})
    with pytest.raises(ValueError, match="frame 0"):
        pl.save_annotations(path, {0: np.array([[np.nan, 0, 5, 5]], np.float32)}, {})
    assert not path.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"),
    ('{"format": "other", "version": 1, "meta": {}, "frames": {}}', "format"),
    (f'{{"format": "{pl.FORMAT}", "version": 99, "meta": {{}}, "frames": {{}}}}', "version"),
    (f'{{"format": "{pl.FORMAT}", "version": 1, "meta": [], "frames": {{}}}}', "'meta' and 'frames'"),
    (f'{{"format": "{pl.FORMAT}", "version": 1, "meta": {{}}, "frames": {{"x": []}}}}', "frame key"),
    (f'{{"format": "{pl.FORMAT}", "version": 1, "meta": {{}}, "frames": {{"0": [[1, 2, 3]]}}}}', "frame 0"),
    (f'{{"format": "{pl.FORMAT}", "version": 1, "meta": {{}}, "frames": {{"0": [[5, 2, 3, 4]]}}}}', "x1 <= x2"),
    (f'{{"format": "{pl.FORMAT}", "version": 1, "meta": {{}}, "frames": {{"0": [["a", 2, 3, 4]]}}}}', "frame 0"),
])
def test_bad_file_raises_a_clear_error(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match) as info:
        pl.load_annotations(path)
    assert "bad.json" in str(info.value)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        pl.load_annotations(tmp_path / "absent.json")


def test_committed_vtest_pseudo_labels():
    path = pl.default_annotation_path()
    boxes, meta = pl.load_annotations(path)
    assert sorted(boxes) == list(range(795))
    every = np.concatenate([b for b in boxes.values()])
    assert len(every) > 795  # several people on most frames
    assert (every[:, 0] >= 0).all() and (every[:, 1] >= 0).all()
    assert (every[:, 2] <= 768).all() and (every[:, 3] <= 576).all()
    assert ((every[:, 2] > every[:, 0]) & (every[:, 3] > every[:, 1])).all()
    assert meta["kind"] == "pseudo-labels" and "pseudo-labels" in meta["description"]
    assert meta["video"]["sha256"] == ASSETS["vtest.avi"].sha256
    assert meta["video"]["frames"] == 795 and meta["video"]["size"] == [768, 576]
    for key in ("method", "parameters", "tools", "date", "detector"):
        assert meta[key], key
    assert set(meta["parameters"]) == set(pl.PseudoLabelConfig.__dataclass_fields__)
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == pl.FORMAT


# --------------------------------------------------------------------------- #
# The box maker
# --------------------------------------------------------------------------- #
def _background() -> np.ndarray:
    rng = np.random.default_rng(0)
    bg = np.full((H, W, 3), 90, np.uint8)
    bg[:, :, 1] = np.linspace(60, 140, W, dtype=np.float32).astype(np.uint8)[None, :]  # a gradient ...
    bg = cv2.add(bg, rng.integers(0, 8, (H, W, 3), dtype=np.uint8))  # ... with a little texture
    return bg


def _rect_at(t: int) -> tuple[int, int, int, int]:
    x = 10 + 4 * t
    return x, 40, x + 14, 40 + 40  # a 14x40 upright "person" walking right


@pytest.fixture(scope="module")
def synthetic_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "walker.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG .avi files here")
    bg = _background()
    for t in range(30):
        frame = bg.copy()
        x1, y1, x2, y2 = _rect_at(t)
        frame[y1:y2, x1:x2] = (235, 235, 235)
        writer.write(frame)
    writer.release()
    return path


def test_median_background_is_the_empty_scene(synthetic_video):
    bg = pl.median_background(synthetic_video, step=3)
    assert bg.shape == (H, W, 3) and bg.dtype == np.uint8
    assert np.abs(bg.astype(int) - _background().astype(int)).mean() < 4  # MJPG loses a little
    assert (bg > 200).sum() == 0  # no trace of the walker


def test_motion_only_boxes_surround_the_moving_rectangle(synthetic_video):
    boxes, stats = pl.make_vtest_pseudo_labels(synthetic_video, detector=None, show_progress=False,
                                               config=pl.PseudoLabelConfig(background_step=3))
    assert sorted(boxes) == list(range(30)) and stats.frames == 30
    for t, b in boxes.items():
        assert b.shape == (1, 4), (t, b)
        assert _iou(b[0], np.array(_rect_at(t), np.float32)) > 0.8, (t, b[0], _rect_at(t))
    assert stats.boxes == 30 and stats.frames_with_boxes == 30 and stats.blobs_unconfirmed_kept == 30


def test_low_and_wide_blobs_are_dropped_without_a_detection():
    bg = _background()
    frame = bg.copy()
    frame[50:62, 20:120] = 255  # a 100x12 strip: not a person
    frame[10:50, 130:144] = 255  # a 14x40 upright blob: kept
    boxes = pl.person_boxes(frame, bg, None)
    np.testing.assert_allclose(boxes, [[130, 10, 144, 50]], atol=1.5)  # the blur widens by a pixel


def test_a_blob_with_two_detections_is_split():
    labels = np.zeros((H, W), np.int32)
    labels[20:100, 30:50] = 1  # two people side by side, touching: one blob
    labels[25:100, 50:70] = 1
    blobs = np.array([[30, 20, 70, 100]], np.float32)
    # keypoints: hip centre, full-body scale point, shoulder centre, upper-body scale point
    kps = np.array([[[40, 65], [40, 20], [40, 40], [40, 30]],
                    [[60, 68], [60, 23], [60, 43], [60, 33]]], np.float32)
    boxes, kinds = pl.assign_and_split(blobs, labels, kps, np.array([0.9, 0.8], np.float32))
    assert kinds == ["split", "split"]
    # column 50 is as far from both body axes and goes to the first (stronger) person
    np.testing.assert_array_equal(boxes, [[30, 20, 51, 100], [51, 25, 70, 100]])
    # the same person found twice (torsos 4 px apart) is one box
    dup = kps.copy()
    dup[1] = kps[0] + [4, 0]
    boxes, kinds = pl.assign_and_split(blobs, labels, dup, np.array([0.9, 0.8], np.float32))
    assert kinds == ["confirmed"] and boxes.tolist() == [[30, 20, 70, 100]]


def test_config_is_checked():
    with pytest.raises(ValueError, match="background_step"):
        pl.PseudoLabelConfig(background_step=0)
    with pytest.raises(ValueError, match="blur"):
        pl.PseudoLabelConfig(blur=4)


def test_unreadable_video_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(pl.read_frames(tmp_path / "absent.avi"))
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="bad.avi"):
        list(pl.read_frames(bad))
    assert os.path.exists(bad)


def test_valley_split_cuts_two_people_joined_by_a_thin_link():
    region = np.zeros((80, 44), bool)
    region[0:80, 0:18] = True  # person 1
    region[4:80, 24:44] = True  # person 2
    region[30:33, 18:24] = True  # an arm between them
    parts = pl.valley_split(region)
    assert parts is not None and len(parts) == 2
    np.testing.assert_array_equal(parts[0][[1, 3]], [0, 80])
    assert parts[0][0] == 0 and 18 <= parts[0][2] <= 24 and 18 <= parts[1][0] <= 24 and parts[1][2] == 44
    assert pl.valley_split(np.ones((80, 44), bool)) is None  # one solid blob: no valley


def test_people_split_in_the_previous_frame_stay_split():
    labels = np.zeros((H, W), np.int32)
    labels[20:100, 30:70] = 1  # one 40x80 blob, no gap, no detection
    blobs = np.array([[30, 20, 70, 100]], np.float32)
    none = np.zeros((0, 4, 2), np.float32)
    boxes, kinds = pl.assign_and_split(blobs, labels, none, np.zeros(0, np.float32))
    assert kinds == ["unconfirmed"]
    previous = np.array([[29, 21, 49, 99], [51, 20, 71, 100]], np.float32)
    boxes, kinds = pl.assign_and_split(blobs, labels, none, np.zeros(0, np.float32), previous=previous)
    assert kinds == ["carried", "carried"]
    assert boxes[0, 0] == 30 and boxes[1, 2] == 70 and 45 <= boxes[0, 2] == boxes[1, 0] <= 55
