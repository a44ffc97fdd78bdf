"""identify_video with stand-in detector and gate: which frames are looked at, what the gate lets through."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from faceopt.system.gallery import Gallery
from faceopt.system.video import identify_video, is_video, people_table, read_frames, write_video


@dataclass
class _Face:
    box: tuple[int, int, int, int]


class _Pipeline:
    """Two faces in every frame: a 'poster' at the left (row 0 of the gallery) and a visitor at the right."""

    def __init__(self, poster, visitor):
        self.poster, self.visitor = poster, visitor

    def encode(self, frame):
        return [(_Face((0, 0, 20, 20)), self.poster), (_Face((40, 0, 60, 20)), self.visitor)]


class _Gate:
    """Lets every other frame through, with a box around the visitor only."""

    def __init__(self):
        self.calls, self.reset_with = 0, None

    def reset(self, frame):
        self.reset_with = frame

    def process(self, frame):
        self.calls += 1
        if self.calls % 2:
            return np.array([[35, 0, 65, 25]], np.float32), np.ones(1, np.float32)
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)


@pytest.fixture()
def setup(tmp_path):
    frames = [np.full((24, 64, 3), 10 * i, np.uint8) for i in range(8)]
    clip = write_video(frames, tmp_path / "clip.mp4", fps=4)
    gallery = Gallery.create(tmp_path / "g.bin", 4)
    gallery.enroll("resident", [1, 0, 0, 0])
    pipeline = _Pipeline(np.array([1, 0, 0, 0], np.float32), np.array([0.6, 0.8, 0, 0], np.float32))
    return clip, gallery, pipeline


def test_every_nth_frame_and_the_threshold(setup):
    clip, gallery, pipeline = setup
    report = identify_video(clip, pipeline, gallery, threshold=0.9, every=3)
    assert (report.frames, report.looked_at, report.recognised) == (8, 3, 3)
    assert [s.frame for s in report.sightings] == [0, 0, 3, 3, 6, 6]
    assert [s.accepted for s in report.sightings[:2]] == [True, False]  # cosine 1.0 and 0.6
    people = {p["name"]: p for p in report.people()}
    assert people["resident"]["frames"] == 3 and people["(unknown)"]["frames"] == 3
    assert people["resident"]["first s"] == 0 and people["resident"]["last s"] == 6 / 4


def test_the_gate_skips_frames_and_drops_faces_outside_its_boxes(setup):
    clip, gallery, pipeline = setup
    gate = _Gate()
    report = identify_video(clip, pipeline, gallery, threshold=0.9, gate=gate)
    assert gate.reset_with is not None and report.looked_at == 8 and report.recognised == 4
    assert all(s.box == (40, 0, 60, 20) for s in report.sightings)  # the poster at the left never passes
    table = people_table({"gated": report})
    assert table.loc[("gated", "(unknown)"), "frames"] == 4


def test_files_and_arguments(tmp_path, setup):
    clip, gallery, pipeline = setup
    assert is_video(clip) and not is_video(tmp_path / "a.jpg")
    fps, count, frames = read_frames(clip)
    assert fps == 4 and len(list(frames)) == 8
    with pytest.raises(ValueError, match="every"):
        identify_video(clip, pipeline, gallery, 0.5, every=0)
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_frames(tmp_path / "nope.mp4")
    with pytest.raises(ValueError, match="no frames"):
        write_video([], tmp_path / "empty.mp4")
    assert not list(tmp_path.glob("*empty*"))  # nothing half-written left behind
