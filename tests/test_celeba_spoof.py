"""CelebA-Spoof reader on small trees written here in the dataset's published layout."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceopt.antispoof.metrics import leave_one_out_splits
from faceopt.data.celeba_spoof import (
    ATTACK_FAMILIES,
    SPOOF_TYPES,
    UNKNOWN_SPOOF_TYPE,
    CelebASpoof,
    FaceBox,
    attack_family,
    box_file_of,
    crop_face,
    read_box_file,
    scale_box,
)
from faceopt.data.errors import DataFileError


def vector(label: int, spoof_type: int, illumination: int = 0, environment: int = 0) -> list[int]:
    """A 44-value label vector: 40 face attributes, spoof type, illumination, environment, live/spoof label."""
    attributes = [(spoof_type + i) % 2 for i in range(40)]
    return attributes + [spoof_type, illumination, environment, label]


def pattern(width: int, height: int, seed: int) -> np.ndarray:
    """A BGR image whose every pixel differs from its neighbours (so a crop's position can be checked)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 7 + seed) % 256, (y * 5 + seed) % 256, (x + y * 3) % 256], axis=2).astype(np.uint8)


# name -> (label vector, image width, height, box line on the 224 scale)
ENTRIES = {
    "Data/train/101/live/000001.png": (vector(0, 0), 448, 224, "56 28 112 140 0.99"),
    "Data/train/101/spoof/000002.png": (vector(1, 1, 2, 1), 224, 448, "20 40 100 80 0.97"),
    "Data/train/202/live/000003.jpg": (vector(0, 0), 300, 300, "10.5 20.5 150 160 0.9"),
    "Data/train/202/spoof/000004.jpg": (vector(1, 9, 4, 2), 320, 240, "0 0 224 224 0.95"),
    "Data/train/303/spoof/000005.png": (vector(1, 4, 1, 1), 224, 224, "-20 -10 100 120 0.8"),
}
TEST_ENTRIES = {
    "Data/test/909/live/000100.png": (vector(0, 0), 224, 224, "30 30 100 100 0.99"),
    "Data/test/909/spoof/000101.png": (vector(1, 10, 3, 2), 224, 224, "30 30 100 100 0.99"),
}


def write_tree(base: Path, entries=None, test_entries=None, *, json_labels=True, txt_labels=False) -> Path:
    """A CelebA_Spoof folder under ``base`` with images, _BB.txt files and metas/intra_test label files."""
    root = base / "CelebA_Spoof"
    metas = root / "metas" / "intra_test"
    metas.mkdir(parents=True)
    for split, listed in (("train", ENTRIES if entries is None else entries),
                          ("test", TEST_ENTRIES if test_entries is None else test_entries)):
        for seed, (name, (_, width, height, box)) in enumerate(listed.items()):
            image = root / name
            image.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(image), pattern(width, height, seed))
            box_file_of(image).write_text(box + "\n")
        if json_labels:
            (metas / f"{split}_label.json").write_text(json.dumps({k: v[0] for k, v in listed.items()}))
        if txt_labels:
            (metas / f"{split}_label.txt").write_text("".join(f"{k} {v[0][43]}\n" for k, v in listed.items()))
    return root


def test_records_labels_types_and_boxes(tmp_path):
    root = write_tree(tmp_path)
    ds = CelebASpoof(root, "train", size=64)
    assert len(ds) == 5
    names = [r.name for r in ds.records]
    assert names == sorted(ENTRIES)
    assert ds.labels.tolist() == [0, 1, 0, 1, 1]
    assert ds.spoof_types.tolist() == [0, 1, 0, 9, 4]
    assert [r.spoof_type_name for r in ds.records] == ["live", "photo", "live", "phone", "face mask"]
    assert [r.subject for r in ds.records] == ["101", "101", "202", "202", "303"]
    r = ds.records[1]
    assert (r.path, r.entry, r.illumination, r.environment) == (root / names[1], 2, 2, 1)
    assert r.box_file == root / "Data/train/101/spoof/000002_BB.txt"
    # box scaling from the 224 scale: x, w by width/224, y, h by height/224
    first = ds.records[0]  # 448 x 224 image: x and w doubled
    assert first.image_size == (448, 224)
    assert first.box_224 == FaceBox(56, 28, 112, 140, 0.99)
    assert first.box == FaceBox(112, 28, 224, 140, 0.99)
    assert r.box == FaceBox(20, 80, 100, 160, 0.97)  # 224 x 448: y and h doubled
    third = ds.records[2]  # 300 x 300, fractional values kept
    assert third.box == pytest.approx(FaceBox(10.5 * 300 / 224, 20.5 * 300 / 224, 150 * 300 / 224, 160 * 300 / 224, 0.9))
    assert ds.attributes is not None and ds.attributes.shape == (5, 40)
    assert ds.attributes[1].tolist() == vector(1, 1)[:40]


def test_items_and_crop(tmp_path):
    root = write_tree(tmp_path)
    ds = CelebASpoof(root, "train", size=32, margin=0.0)
    image, label, spoof_type = ds[1]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0
    assert (label, spoof_type) == (1, 1)
    # margin 0: exactly the scaled box, x 112..336 and y 28..168 of the 448 x 224 PNG
    full = pattern(448, 224, 0)
    face = ds.face(0)
    np.testing.assert_array_equal(face, full[28:168, 112:336])
    # a margin widens each side by margin * w (or h), clipped to the image: y0 = 28 - 35 < 0 -> 0
    wide = CelebASpoof(root, "train", size=32, margin=0.25)
    np.testing.assert_array_equal(wide.face(0), full[0:203, 56:392])
    # a box reaching past the border is clipped, as the official code does: (-20, -10, 100, 120) in 224 x 224
    np.testing.assert_array_equal(ds.face(4), pattern(224, 224, 4)[0:110, 0:80])
    # crop=False resizes the whole image
    whole = CelebASpoof(root, "train", size=32, crop=False)
    assert whole.face(0).shape == (224, 448, 3)


def test_tensor_is_rgb_in_minus_one_to_one(tmp_path):
    root = write_tree(tmp_path)
    red = np.zeros((224, 224, 3), np.uint8)
    red[:, :, 2] = 255  # BGR red
    cv2.imwrite(str(root / "Data/train/101/live/000001.png"), np.concatenate([red, red], axis=1))
    image, _, _ = CelebASpoof(root, "train", size=16)[0]
    assert torch.all(image[0] == 1.0) and torch.all(image[1:] == -1.0)


def test_split_root_above_and_lazy_files(tmp_path):
    write_tree(tmp_path)
    test = CelebASpoof(tmp_path, "test", size=16)  # the folder above CelebA_Spoof
    assert [r.spoof_type for r in test.records] == [0, 10]
    lazy = CelebASpoof(tmp_path, "train", size=16, check_files=False)
    assert lazy.records[0].box is None and lazy.records[0].image_size is None
    assert lazy.face_box(0) == FaceBox(112, 28, 224, 140, 0.99)
    assert lazy[0][0].shape == (3, 16, 16)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        CelebASpoof(tmp_path, "val")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="train_label.json"):
        CelebASpoof(tmp_path / "nothing", "train")


def test_txt_fallback(tmp_path):
    root = write_tree(tmp_path, json_labels=False, txt_labels=True)
    ds = CelebASpoof(root, "train", size=16)
    assert ds.label_file.name == "train_label.txt"
    assert ds.labels.tolist() == [0, 1, 0, 1, 1]
    assert ds.spoof_types.tolist() == [0, UNKNOWN_SPOOF_TYPE, 0, UNKNOWN_SPOOF_TYPE, UNKNOWN_SPOOF_TYPE]
    assert ds.records[1].spoof_type_name == "unknown spoof"
    assert ds.records[1].illumination is None and ds.attributes is None
    assert ds.records[0].box == FaceBox(112, 28, 224, 140, 0.99)
    assert ds[3][1:] == (1, UNKNOWN_SPOOF_TYPE)
    with pytest.raises(ValueError, match="gives no spoof types"):
        CelebASpoof(root, "train", spoof_types=[1])


def test_json_is_preferred_to_txt(tmp_path):
    root = write_tree(tmp_path, json_labels=True, txt_labels=True)
    assert CelebASpoof(root, "train").label_file.name == "train_label.json"


def test_spoof_type_filter_limit_and_families(tmp_path):
    root = write_tree(tmp_path)
    ds = CelebASpoof(root, "train", spoof_types=[0, 9])
    assert ds.spoof_types.tolist() == [0, 0, 9]
    assert [r.name for r in CelebASpoof(root, "train", limit=3).records] == [sorted(ENTRIES)[i] for i in (0, 2, 4)]
    families = [attack_family(t) for t in CelebASpoof(root, "train").spoof_types]
    assert families == ["live", "print", "live", "replay", "mask"]
    assert [t for t, _ in leave_one_out_splits(families, bonafide="live")] == ["mask", "print", "replay"]
    with pytest.raises(ValueError, match="not CelebA-Spoof spoof types"):
        CelebASpoof(root, "train", spoof_types=[11])


def test_spoof_types_and_families():
    assert SPOOF_TYPES[0] == "live" and SPOOF_TYPES[3] == "A4" and SPOOF_TYPES[10] == "3D mask" and len(SPOOF_TYPES) == 11
    assert [attack_family(t) for t in range(11)] == ["live", "print", "print", "print", "mask", "mask", "mask",
                                                     "replay", "replay", "replay", "mask"]
    assert sorted(t for types in ATTACK_FAMILIES.values() for t in types) == list(range(11))
    assert attack_family(np.int64(8)) == "replay"
    for bad in (11, -1, True, "1", 1.0):
        with pytest.raises(ValueError, match="spoof_type"):
            attack_family(bad)


def test_box_helpers(tmp_path):
    f = tmp_path / "a_BB.txt"
    f.write_text("  1 2 3 4 0.5  \nignored second line\n")
    assert read_box_file(f) == FaceBox(1, 2, 3, 4, 0.5)
    assert scale_box(FaceBox(112, 0, 224, 112, 1.0), 100, 50) == FaceBox(50, 0, 100, 25, 1.0)
    assert box_file_of("Data/train/1/live/000007.jpg") == Path("Data/train/1/live/000007_BB.txt")
    img = pattern(10, 10, 0)
    np.testing.assert_array_equal(crop_face(img, FaceBox(2.5, 3.2, 4, 4, 1.0), 0.0), img[3:8, 2:7])
    with pytest.raises(ValueError, match="margin"):
        crop_face(img, FaceBox(0, 0, 4, 4, 1.0), -0.1)


# --------------------------------------------------------------------------- malformed input


def _rewrite_labels(root: Path, obj_or_text) -> Path:
    path = root / "metas/intra_test/train_label.json"
    if isinstance(obj_or_text, bytes):
        path.write_bytes(obj_or_text)
    else:
        path.write_text(obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text))
    return path


def _labels(**changes):
    obj = {k: v[0] for k, v in ENTRIES.items()}
    obj.update(changes)
    return obj


LIVE = "Data/train/101/live/000001.png"
SPOOF = "Data/train/101/spoof/000002.png"


@pytest.mark.parametrize("labels, match", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"a": [0], "a": [1]}', "listed twice"),
    (_labels(**{SPOOF: vector(1, 1)[:43]}), "maps to 43 values; every image maps to a list of 44 integers"),
    (_labels(**{SPOOF: "1"}), "maps to str"),
    (_labels(**{SPOOF: vector(1, 1)[:40] + [1, 0, 0, 0.5]}), "list of 44 integers"),
    (_labels(**{SPOOF: vector(2, 1)}), "label 2 of"),
    (_labels(**{SPOOF: vector(1, 11)}), "spoof type 11"),
    (_labels(**{SPOOF: vector(1, -1)}), "spoof type -1"),
    (_labels(**{LIVE: vector(0, 3)}), r"has label 0 \(live\) but spoof type 3 \(A4\); a live image has type 0"),
    (_labels(**{SPOOF: vector(1, 0)}), r"has label 1 \(spoof\) but spoof type 0 \(live\)"),
    (_labels(**{"Data/train/101/live/000002.png": vector(1, 1)}), "lies in a 'live' folder but has label 1"),
    (_labels(**{"../outside.png": vector(1, 1)}), "leads outside"),
    (_labels(**{"Data/train/101/spoof/missing.png": vector(1, 1)}), "which is missing"),
    (_labels(**{"Data/train/101/spoof": vector(1, 1)}), "not a file"),
    (b"{\"\xff\": 1}", "not UTF-8"),
])
def test_malformed_label_file(tmp_path, labels, match):
    root = write_tree(tmp_path)
    path = _rewrite_labels(root, labels)
    with pytest.raises(DataFileError, match=match) as err:
        CelebASpoof(root, "train")
    assert str(path) in str(err.value)


@pytest.mark.parametrize("line, match", [
    ("1 2 3", "bad bounding-box line '1 2 3'"),
    ("a b c d e", "bad bounding-box line"),
    ("1 2 3 4 nan", "bad bounding-box line"),
    ("", "bad bounding-box line ''"),
    ("10 10 0 50 0.9", "width 0 and height 50; both must be positive"),
    ("10 10 50 -5 0.9", "height -5"),
    ("230 10 20 20 0.9", "lies wholly outside"),
    ("-50 10 40 20 0.9", "lies wholly outside"),
    ("0 0 10 1e308 0.9", "overflows"),
])
def test_malformed_box(tmp_path, line, match):
    root = write_tree(tmp_path)
    box = root / "Data/train/101/spoof/000002_BB.txt"
    box.write_text(line)
    with pytest.raises(DataFileError, match=match) as err:
        CelebASpoof(root, "train")
    assert str(box) in str(err.value)


def test_missing_box_file_and_corrupt_image(tmp_path):
    root = write_tree(tmp_path)
    box = root / "Data/train/202/live/000003_BB.txt"
    box.unlink()
    with pytest.raises(DataFileError, match="bounding-box file of .*000003.jpg is missing") as err:
        CelebASpoof(root, "train")
    assert str(box) in str(err.value)
    lazy = CelebASpoof(root, "train", check_files=False)  # found when the image is loaded
    with pytest.raises(DataFileError, match="is missing"):
        lazy[2]
    box.write_text("1 2 3 4 0.5")
    (root / "Data/train/202/live/000003.jpg").write_bytes(b"not an image at all")
    with pytest.raises(DataFileError, match="000003.jpg .*is not a readable JPEG or PNG image"):
        CelebASpoof(root, "train")
    with pytest.raises(DataFileError, match="000003.jpg"):
        CelebASpoof(root, "train", check_files=False)[2]


def test_decompression_cap(tmp_path):
    root = write_tree(tmp_path)
    with pytest.raises(DataFileError, match="max_image_pixels"):
        CelebASpoof(root, "train", max_image_pixels=224 * 224)


def test_malformed_txt(tmp_path):
    root = write_tree(tmp_path, json_labels=False, txt_labels=True)
    path = root / "metas/intra_test/train_label.txt"
    for text, match in [(f"{LIVE} 2\n", ":1: expected 'relative/path label'"),
                        (f"{LIVE}\n", "expected 'relative/path label'"),
                        (f"{LIVE} 0\n\n{LIVE} 0\n", ":3: .* listed twice"),
                        (f"{LIVE} 1\n", "lies in a 'live' folder but has label 1")]:
        path.write_text(text)
        with pytest.raises(DataFileError, match=match) as err:
            CelebASpoof(root, "train")
        assert str(path) in str(err.value)
