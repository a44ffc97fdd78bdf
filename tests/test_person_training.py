"""Person detector training (faceopt.detection.person_training) on a tiny synthetic video."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from faceopt.data.cdnet import read_video
from faceopt.data.person_boxes import load_annotations, save_annotations
from faceopt.detection.person_training import (
    VideoPersonDataset,
    bgr_to_tensor,
    build_person_detector,
    crop_boxes,
    evaluate_person_detector,
    train_person_detector,
    with_input_size,
)
from faceopt.detection.ssd_mobilenetv2 import build_ssd_mobilenetv2

W, H = 128, 96
SMALL_SCALES = (0.1, 0.2, 0.35, 0.5, 0.7, 0.85, 1.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _boxes(i: int) -> np.ndarray:
    """One or two 'people' per frame: tall bright rectangles moving right."""
    b = [[10 + 4 * i, 20, 26 + 4 * i, 60]]
    if i % 2 == 0:
        b.append([80, 30, 92, 70])
    return np.array(b, np.float32)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 6-frame MJPG video with its annotation file, read back as the real code reads vtest."""
    folder = tmp_path_factory.mktemp("video")
    path = folder / "tiny.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    boxes = {}
    for i in range(6):
        frame = np.full((H, W, 3), 40, np.uint8)
        boxes[i] = _boxes(i)
        for x1, y1, x2, y2 in boxes[i].astype(int):
            frame[y1:y2, x1:x2] = (60, 200, 230)
        writer.write(frame)
    writer.release()
    save_annotations(folder / "tiny.json", boxes, {"kind": "synthetic"})
    frames = list(read_video(path))
    loaded, _ = load_annotations(folder / "tiny.json")
    return frames, loaded


def test_crop_boxes_by_hand():
    box = np.array([[10, 20, 30, 60], [0, 0, 4, 4]], np.float32)
    # crop x 5..45, y 10..40: first box -> [5, 10, 25, 50] clipped to y 30: half visible, kept; second outside
    out = crop_boxes(box, 5, 10, 40, 30)
    np.testing.assert_allclose(out, [[5, 10, 25, 30]])
    assert crop_boxes(box, 5, 10, 40, 30, min_visible=0.6).shape == (0, 4)
    np.testing.assert_allclose(crop_boxes(box, 5, 10, 40, 30, flip=True), [[15, 10, 35, 30]])


def test_dataset_full_frames_and_flip(video):
    frames, boxes = video
    assert len(frames) == 6 and frames[0].shape == (H, W, 3)
    ds = VideoPersonDataset(frames, boxes, [0, 1, 2], seed=3)
    image, target = ds[0]
    assert image.shape == (3, H, W) and image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    np.testing.assert_allclose(target["boxes"].numpy(), _boxes(0))
    assert target["labels"].tolist() == [1, 1]
    flipped = VideoPersonDataset(frames, boxes, [0, 1, 2], flip=True, seed=3)
    seen = set()
    for epoch in range(8):
        flipped.set_epoch(epoch)
        image, target = flipped[1]
        is_flipped = not torch.equal(image, bgr_to_tensor(frames[1]))
        seen.add(is_flipped)
        if is_flipped:
            assert torch.equal(image, bgr_to_tensor(frames[1]).flip(-1))
            # [14, 20, 30, 60] mirrored in a 128-wide frame
            np.testing.assert_allclose(target["boxes"].numpy(), [[98, 20, 114, 60]])
        else:
            np.testing.assert_allclose(target["boxes"].numpy(), _boxes(1))
    assert seen == {True, False}


def test_dataset_crops_are_seeded_and_consistent(video):
    frames, boxes = video
    ds = VideoPersonDataset(frames, boxes, range(6), crop_size=(64, 48), flip=True, seed=1)
    a, b = ds[2], ds[2]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1]["boxes"], b[1]["boxes"])
    for epoch in range(10):
        ds.set_epoch(epoch)
        for item in range(6):
            image, target = ds[item]
            assert image.shape == (3, 48, 64)
            bx = target["boxes"]
            assert bx.shape[1] == 4 and len(target["labels"]) == len(bx)
            assert (bx[:, 0] >= 0).all() and (bx[:, 2] <= 64).all() and (bx[:, 1] >= 0).all() and (bx[:, 3] <= 48).all()
            # every target box covers painted (bright) pixels of the crop, whatever the crop and flip
            for x1, y1, x2, y2 in bx.round().int().tolist():
                assert image[1, y1:y2, x1:x2].mean() > 0.6
    with pytest.raises(ValueError):
        VideoPersonDataset(frames, boxes, [0], crop_size=(W + 1, H))


def test_builder_input_size_and_anchor_scales():
    default = build_ssd_mobilenetv2(num_classes=2, size=96, width_mult=0.25)
    assert default.transform.fixed_size == (96, 96)
    assert default.anchor_generator.scales == pytest.approx([0.2 + 0.75 * k / 5 for k in range(6)] + [1.0])
    m = build_ssd_mobilenetv2(num_classes=2, width_mult=0.25, input_size=(128, 96), anchor_scales=SMALL_SCALES)
    assert m.transform.fixed_size == (128, 96) and m.anchor_generator.scales == list(SMALL_SCALES)
    m.eval()
    with torch.inference_mode():
        images, _ = m.transform([torch.rand(3, 50, 70)])
    assert tuple(images.tensors.shape[-2:]) == (96, 128)  # fixed_size is (width, height)
    with pytest.raises(ValueError):
        build_ssd_mobilenetv2(input_size=(128, 96), anchor_scales=(0.1, 0.2))


def test_with_input_size_keeps_anchor_pixels_and_weights():
    crop = build_person_detector((64, 48), frame_size=(W, H), anchor_scales=SMALL_SCALES, width_mult=0.25)
    full = with_input_size(crop, (W, H))
    assert full.backbone is crop.backbone and full.head is crop.head
    assert crop.anchor_generator.scales == pytest.approx([2 * s for s in SMALL_SCALES])
    assert full.anchor_generator.scales == pytest.approx(SMALL_SCALES)
    # the smallest anchors in input pixels are the same
    small_crop = crop.anchor_generator._wh_pairs[0] * torch.tensor([64.0, 48.0])
    small_full = full.anchor_generator._wh_pairs[0] * torch.tensor([float(W), float(H)])
    torch.testing.assert_close(small_crop, small_full)
    assert full.transform.fixed_size == (W, H)


def test_a_few_steps_reduce_the_loss(video, tmp_path):
    frames, boxes = video
    ds = VideoPersonDataset(frames, boxes, range(4), crop_size=(W, H), seed=0)
    model = build_person_detector((W, H), frame_size=(W, H), anchor_scales=SMALL_SCALES, width_mult=0.25, seed=0)
    ckpt = tmp_path / "ckpt.pt"
    result = train_person_detector(model, ds, steps=24, batch_size=4, lr=3e-3, warmup_steps=3, seed=0,
                                   checkpoint=ckpt)
    assert result.steps == 24 and len(result.losses) == 24 and result.images == 96
    assert np.mean(result.losses[-4:]) < 0.7 * np.mean(result.losses[:4])
    saved = torch.load(ckpt, weights_only=False)
    assert saved["step"] == 24 and tuple(saved["input_size"]) == (W, H)
    assert not list(tmp_path.glob("*.tmp*"))
    assert not model.training


class _Oracle(nn.Module):
    """Returns the ground truth as detections (score 1), in the call format of a torchvision detector."""

    def __init__(self, truth: list[np.ndarray]) -> None:
        super().__init__()
        self.truth = truth
        self.calls = 0

    def forward(self, images):
        out = []
        for _ in images:
            b = torch.from_numpy(self.truth[self.calls])
            out.append({"boxes": b, "scores": torch.ones(len(b)), "labels": torch.ones(len(b), dtype=torch.int64)})
            self.calls += 1
        return out


def test_evaluation_of_perfect_predictions_is_one(video):
    frames, boxes = video
    gt = [boxes[i] for i in range(6)]
    assert evaluate_person_detector(_Oracle(gt), frames, gt, batch_size=4) == pytest.approx(1.0)
    assert evaluate_person_detector(_Oracle([g + 40 for g in gt]), frames, gt) == pytest.approx(0.0)


def test_load_person_detector_errors_name_the_file(tmp_path):
    from faceopt.detection.person_training import load_person_detector

    with pytest.raises(FileNotFoundError, match="faceopt person-detector --preset vtest --out"):
        load_person_detector(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"model": {}}, bad)
    with pytest.raises(ValueError, match="bad.pt"):
        load_person_detector(bad)


def test_committed_person_detector_loads_at_full_frame():
    from faceopt.detection.person_training import FRAME_SIZE, load_person_detector
    from faceopt.resources import resource_path

    model = load_person_detector(resource_path("runs", "person_detector", "ssdlite_mobilenetv2_vtest.pt"))
    assert tuple(model.transform.fixed_size) == FRAME_SIZE and not model.training


def test_make_person_detector_follows_the_recipe_and_writes_its_card(video, tmp_path):
    import json
    from dataclasses import asdict

    from faceopt.detection.person_training import PRESETS, PersonDetectorRecipe, make_person_detector

    frames, boxes = video
    folder = tmp_path / "v"
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "tiny.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for f in frames:
        writer.write(f)
    writer.release()
    save_annotations(folder / "tiny.json", boxes, {"kind": "synthetic"})
    recipe = PersonDetectorRecipe(steps=3, crop=(W, H), width_mult=0.25, batch_size=2, warmup_steps=1,
                                  checkpoint_every=0, train_frames=(0, 4))
    out = tmp_path / "det.pt"
    card = make_person_detector(recipe, out, video=folder / "tiny.avi", annotations=folder / "tiny.json", log=None)
    assert card["recipe"] == json.loads(json.dumps(asdict(recipe))) and card["steps"] == 3
    assert card["train_frames"] == [0, 3] and "map50_frames_4_5" in card
    assert json.loads(out.with_suffix(".json").read_text()) == card
    assert torch.load(out, weights_only=True)["step"] == 3
    assert PRESETS["vtest"].steps == 1250 and PRESETS["vtest"].train_frames == (0, 398)  # the committed weights' recipe


@pytest.mark.parametrize("content", ["garbage", "foreign-pickle", "missing-keys", "wrong-shapes"])
def test_a_tampered_or_foreign_checkpoint_is_one_error_naming_the_file(tmp_path, content):
    import pickle

    import torch

    from faceopt.detection.person_training import load_person_detector

    path = tmp_path / "detector.pt"
    if content == "garbage":
        path.write_bytes(b"\x80\x04not a checkpoint at all")
    elif content == "foreign-pickle":
        path.write_bytes(pickle.dumps(print))  # a global torch.load(weights_only=True) refuses
    elif content == "missing-keys":
        torch.save({"model": {}}, path)
    else:
        torch.save({"input_size": [64, 64], "model": {"backbone.0.weight": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match="detector.pt: not a person-detector checkpoint"):
        load_person_detector(path)
