"""Page 06's 1:1 protocol on real-face layouts (folder, insightface .bin, pair list), on files the test writes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from faceopt.data.errors import DataFileError
from faceopt.data.verification_bin import write_verification_bin
from faceopt.recognition.real_protocols import fnmr_table, read_pair_list, verification_scores


def _face(identity: int, k: int) -> np.ndarray:
    """A 24x24 image whose mean colour encodes the identity (plus a little per-image noise)."""
    rng = np.random.default_rng(100 * identity + k)
    img = np.full((24, 24, 3), (40 * identity + 20, 200 - 40 * identity, 90), np.uint8)
    return np.clip(img + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)


def _embed(x: torch.Tensor) -> np.ndarray:
    """Mean colour as the embedding, centred, normalised: images of one identity agree."""
    e = x.mean(dim=(2, 3)).numpy() - np.array([0.0, 0.0, -0.3])
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_folder_of_identities_scores_every_pair(tmp_path):
    for ident in range(3):
        (tmp_path / f"id{ident}").mkdir()
        for k in range(2):
            cv2.imwrite(str(tmp_path / f"id{ident}" / f"{k}.png"), _face(ident, k))
    genuine, impostor = verification_scores(tmp_path, _embed, size=24)
    assert len(genuine) == 3 and len(impostor) == 12  # 6 images: 15 pairs
    assert genuine.min() > impostor.max()


def test_insightface_bin_scores_its_pairs(tmp_path):
    images = [cv2.imencode(".png", _face(i, k))[1].tobytes() for i, k in ((0, 0), (0, 1), (0, 0), (2, 0))]
    path = tmp_path / "pairs.bin"
    write_verification_bin(path, images, [True, False])
    genuine, impostor = verification_scores(path, _embed, size=24)
    assert len(genuine) == len(impostor) == 1 and genuine[0] > impostor[0]


def test_pair_list_relative_paths_and_errors(tmp_path):
    for name, (i, k) in {"a.png": (0, 0), "b.png": (0, 1), "c.png": (1, 0)}.items():
        cv2.imwrite(str(tmp_path / name), _face(i, k))
    lst = tmp_path / "pairs.txt"
    lst.write_text("# pair list\na.png b.png 1\n\na.png c.png 0\n")
    pairs, same = read_pair_list(lst)
    assert [p[1].name for p in pairs] == ["b.png", "c.png"] and same.tolist() == [True, False]
    genuine, impostor = verification_scores(lst, _embed, size=24)
    assert genuine[0] > impostor[0]
    lst.write_text("a.png b.png yes\n")
    with pytest.raises(ValueError, match="pairs.txt:1"):
        read_pair_list(lst)
    lst.write_text("a.png missing.png 1\na.png c.png 0\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_pair_list(lst)
    for escape in ("../outside.png", "/etc/passwd"):
        lst.write_text(f"a.png {escape} 1\na.png c.png 0\n")
        with pytest.raises(DataFileError, match=r"pairs\.txt:1: .* leads outside"):
            read_pair_list(lst)


def test_a_folder_too_small_for_the_protocol_says_what_it_needs(tmp_path):
    (tmp_path / "only").mkdir()
    cv2.imwrite(str(tmp_path / "only" / "0.png"), _face(0, 0))
    with pytest.raises(ValueError, match="at least 2 identities"):
        verification_scores(tmp_path, _embed, size=24)
    with pytest.raises(ValueError, match="not a folder of identities"):
        verification_scores(tmp_path / "only" / "0.png", _embed)


def test_fnmr_table_marks_the_fmrs_the_impostors_cannot_resolve():
    genuine, impostor = np.array([0.9, 0.8, 0.3]), np.linspace(0, 0.5, 100)
    table = fnmr_table(genuine, impostor, fmrs=(0.1, 0.01, 0.001), resamples=20)
    assert table.loc[0.1, "FNMR"] == pytest.approx(1 / 3) and table.loc[0.01, "FNMR"] == pytest.approx(1 / 3)
    assert np.isnan(table.loc[0.001, "FNMR"]) and "needs 1000 impostor pairs" in table.loc[0.001, "note"]


@pytest.mark.parametrize("line, match", [
    (b"a.png b\xff.png 1\n", "not UTF-8 text"),
    (b"a.png a/\x001.png 0\n", "NUL byte"),
    (b"a.png " + b"x" * 300 + b".png 1\n", "longer than a path"),
])
def test_pair_list_refuses_unreadable_lines(tmp_path, line, match):
    lst = tmp_path / "pairs.txt"
    lst.write_bytes(line)
    with pytest.raises(DataFileError, match=rf"pairs\.txt.*{match}"):
        read_pair_list(lst)


def test_pair_list_checks_each_listed_name_once(tmp_path, monkeypatch):
    """A 20,000-pair list over 4 images took 5 s (a fuzz timeout): each name is now checked and stat'ed once."""
    import faceopt.recognition.real_protocols as rp

    for name in ("a0.png", "a1.png", "b0.png", "b1.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "pairs.txt").write_text("a0.png a1.png 1\nb0.png b1.png 1\na0.png b0.png 0\na1.png b1.png 0\n" * 5000)
    calls = []
    real = rp.check_listed_path
    monkeypatch.setattr(rp, "check_listed_path", lambda name, *a, **k: calls.append(name) or real(name, *a, **k))
    pairs, same = read_pair_list(tmp_path / "pairs.txt")
    assert len(pairs) == 20_000 and same.sum() == 10_000
    assert sorted(calls) == ["a0.png", "a1.png", "b0.png", "b1.png"]
