"""faceopt enroll / identify / verify / gallery on real photos (the face_recognition package's test set)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from helpers import require_asset

pytest.importorskip("dlib", reason="dlib-bin (requirements.txt) runs the reference models")

from faceopt.cli import main  # noqa: E402
from faceopt.system.gallery_cli import DEFAULT_THRESHOLD  # noqa: E402


@pytest.fixture(scope="module")
def photos():
    for name in ("face_recognition_models", "dlib_face_recognition_resnet"):
        require_asset(name)
    return {n: require_asset(n) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")}


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_enrol_one_photo_each_and_identify_the_others(tmp_path, photos, capsys):
    gallery = str(tmp_path / "team.bin")
    assert main(["enroll", "obama", str(photos["obama.jpg"]), "--gallery", gallery]) == 0
    assert main(["enroll", "biden", str(photos["biden.jpg"]), "--gallery", gallery]) == 0
    capsys.readouterr()
    for probe in ("obama2.jpg", "obama3.jpg"):
        assert main(["identify", str(photos[probe]), "--gallery", gallery, "--json"]) == 0
        doc = _json(capsys)
        assert doc["matches"][0]["name"] == "obama" and doc["matches"][0]["match"] is True
        assert doc["matches"][1]["name"] == "biden" and doc["matches"][1]["match"] is False
        assert doc["threshold"] == DEFAULT_THRESHOLD
    assert main(["gallery", "list", "--gallery", gallery, "--json"]) == 0
    assert _json(capsys)["names"] == {"biden": 1, "obama": 1}


def test_verify_two_photos(photos, capsys):
    assert main(["verify", str(photos["obama.jpg"]), str(photos["obama2.jpg"])]) == 0
    assert capsys.readouterr().out.startswith("same person: cosine 0.9")
    assert main(["verify", str(photos["obama.jpg"]), str(photos["biden.jpg"]), "--json"]) == 0
    doc = _json(capsys)
    assert doc["same_person"] is False and doc["cosine"] < DEFAULT_THRESHOLD


def test_several_faces_take_the_largest_and_say_so(tmp_path, photos, capsys):
    a, b = cv2.imread(str(photos["obama.jpg"])), cv2.imread(str(photos["biden.jpg"]))
    small = cv2.resize(b, (b.shape[1] * a.shape[0] // (2 * b.shape[0]), a.shape[0] // 2))
    both = np.full((a.shape[0], a.shape[1] + small.shape[1], 3), 255, np.uint8)
    both[:, :a.shape[1]] = a
    both[:small.shape[0], a.shape[1]:] = small
    path = tmp_path / "both.jpg"
    cv2.imwrite(str(path), both)
    gallery = str(tmp_path / "g.bin")
    assert main(["enroll", "someone", str(path), "--gallery", gallery]) == 0
    assert "2 faces, the largest used" in capsys.readouterr().out
    assert main(["verify", str(path), str(photos["obama2.jpg"]), "--json"]) == 0
    assert _json(capsys)["same_person"] is True  # the largest face is Obama's


def test_clear_errors_name_the_file(tmp_path, photos, capsys):
    blank, text = tmp_path / "blank.png", tmp_path / "notes.jpg"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 255, np.uint8))
    text.write_text("not an image")
    gallery = str(tmp_path / "g.bin")
    assert main(["enroll", "x", str(blank), "--gallery", gallery]) == 1
    assert f"{blank}: no face found" in capsys.readouterr().err
    assert main(["verify", str(text), str(photos["obama.jpg"])]) == 1
    assert f"{text}: cannot read it as an image" in capsys.readouterr().err
    assert main(["identify", str(photos["obama.jpg"]), "--gallery", str(tmp_path / "none.bin")]) == 1
    assert "no gallery yet" in capsys.readouterr().err
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"garbage" * 10)
    assert main(["gallery", "list", "--gallery", str(bad)]) == 1
    assert str(bad) in capsys.readouterr().err


def test_gallery_threshold_and_remove(tmp_path, photos, capsys):
    gallery = str(tmp_path / "g.bin")
    assert main(["enroll", "obama", str(photos["obama.jpg"]), "--gallery", gallery]) == 0
    assert main(["gallery", "threshold", "0.99", "--fmr", "0.0001", "--gallery", gallery]) == 0
    capsys.readouterr()
    assert main(["identify", str(photos["obama2.jpg"]), "--gallery", gallery, "--json"]) == 0
    assert _json(capsys)["matches"][0]["match"] is False  # 0.97 is below the stricter threshold
    assert main(["gallery", "remove", "obama", "--gallery", gallery]) == 0
    assert main(["gallery", "remove", "obama", "--gallery", gallery]) == 1


def _clip(tmp_path, photo, frames=6):
    from faceopt.system.video import write_video

    image = cv2.imread(str(photo))
    scale = 480 / image.shape[0]
    frame = np.full((480, 640, 3), 128, np.uint8)
    small = cv2.resize(image, (round(image.shape[1] * scale), 480))[:, :640]
    frame[:, :small.shape[1]] = small
    return write_video([frame] * frames, tmp_path / "door.mp4", fps=5)


def test_identify_a_video_frame_by_frame(tmp_path, photos, capsys):
    gallery = str(tmp_path / "home.bin")
    assert main(["enroll", "obama", str(photos["obama.jpg"]), "--gallery", gallery]) == 0
    capsys.readouterr()
    clip = _clip(tmp_path, photos["obama2.jpg"])
    assert main(["identify", str(clip), "--gallery", gallery, "--every", "2", "--json"]) == 0
    doc = _json(capsys)
    assert doc["frames"] == 6 and doc["looked_at"] == 3 and doc["recognised"] == 3
    assert doc["people"][0]["name"] == "obama" and doc["people"][0]["frames"] == 3
    assert [s["frame"] for s in doc["sightings"]] == [0, 2, 4] and all(s["accepted"] for s in doc["sightings"])


def test_a_broken_video_is_one_line(tmp_path, photos, capsys):
    gallery = str(tmp_path / "home.bin")
    assert main(["enroll", "obama", str(photos["obama.jpg"]), "--gallery", gallery]) == 0
    capsys.readouterr()
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    assert main(["identify", str(bad), "--gallery", gallery]) == 1
    err = capsys.readouterr().err.strip()
    assert "broken.mp4" in err and "cannot open it as a video" in err and "Traceback" not in err
