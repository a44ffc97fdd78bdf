"""CDNet2014 layout reader, mask-to-box conversion and video reading on files the test writes."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceopt.data.cdnet import (
    as_bgr,
    iter_cdnet,
    list_cdnet_videos,
    load_cdnet_video,
    mask_to_boxes,
    read_video,
)


def _write_video_folder(root: Path, frames: int = 4, roi: str = "2 3") -> Path:
    video = root / "baseline" / "pedestrians"
    (video / "input").mkdir(parents=True)
    (video / "groundtruth").mkdir()
    for n in range(1, frames + 1):
        cv2.imwrite(str(video / "input" / f"in{n:06d}.jpg"), np.full((24, 32, 3), 10 * n, np.uint8))
        mask = np.zeros((24, 32), np.uint8)
        mask[2:6, 3:9] = 255           # a 6x4 moving blob
        mask[10:20, 20:22] = 255        # a 2x10 moving blob
        mask[0, 31] = 255               # a single pixel: below min_area
        mask[15:18, 0:3] = 170          # unknown motion: not a box
        cv2.imwrite(str(video / "groundtruth" / f"gt{n:06d}.png"), mask)
    (video / "temporalROI.txt").write_text(roi)
    return video


def test_mask_to_boxes_by_hand():
    mask = np.zeros((24, 32), np.uint8)
    mask[2:6, 3:9] = 255
    mask[10:20, 20:22] = 255
    mask[0, 31] = 255
    boxes = mask_to_boxes(mask, min_area=4)
    assert boxes.tolist() == [[3, 2, 9, 6], [20, 10, 22, 20]]
    assert mask_to_boxes(np.zeros((5, 5), np.uint8)).shape == (0, 4)


def test_load_and_iterate_roi(tmp_path):
    video = load_cdnet_video(_write_video_folder(tmp_path))
    assert len(video) == 4 and video.roi == (2, 3) and video.name == "baseline/pedestrians"
    items = list(iter_cdnet(video, min_area=4))
    assert [n for n, _, _ in items] == [2, 3]
    number, frame, boxes = items[0]
    assert frame.shape == (24, 32, 3) and boxes.tolist() == [[3, 2, 9, 6], [20, 10, 22, 20]]
    assert [v.name for v in list_cdnet_videos(tmp_path)] == ["baseline/pedestrians"]


def test_layout_errors_name_the_file(tmp_path):
    folder = _write_video_folder(tmp_path, roi="3 9")
    with pytest.raises(ValueError, match="temporalROI.txt: range 3..9"):
        load_cdnet_video(folder)
    (folder / "temporalROI.txt").write_text("start end")
    with pytest.raises(ValueError, match="two frame numbers"):
        load_cdnet_video(folder)
    (folder / "temporalROI.txt").write_text("1 4")
    (folder / "groundtruth" / "gt000003.png").unlink()
    with pytest.raises(ValueError, match="gt000003.png"):
        load_cdnet_video(folder)
    with pytest.raises(FileNotFoundError, match="nowhere.input is missing"):
        load_cdnet_video(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no <category>/<video>/input"):
        list_cdnet_videos(tmp_path / "baseline" / "pedestrians" / "input")


def test_as_bgr_accepts_grey_and_rgba_and_refuses_others():
    assert as_bgr(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert as_bgr(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5, 3)
    assert as_bgr(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="uint8"):
        as_bgr(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        as_bgr(np.zeros((4, 5, 2), np.uint8))


def test_read_video_roundtrip_and_errors(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for n in range(5):
        writer.write(np.full((24, 32, 3), 40 * n, np.uint8))
    writer.release()
    frames = list(read_video(path))
    assert len(frames) == 5 and frames[0].shape == (24, 32, 3)
    assert len(list(read_video(path, max_frames=2))) == 2
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="bad.avi"):
        list(read_video(bad))
    with pytest.raises(FileNotFoundError):
        list(read_video(tmp_path / "missing.avi"))
