"""Readers of the real face-data formats, on tiny files written by the tests themselves."""
from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceopt.data.errors import DataFileError
from faceopt.data.image_folder import ImageFolderFaces
from faceopt.data.megaface import read_face_list
from faceopt.data.recordio import MAGIC, IRHeader, RecordIOFaces, RecordIOReader, write_recordio
from faceopt.data.verification_bin import load_verification_bin, write_verification_bin


def _faces(n: int = 5, size: int = 112, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


# ---------------------------------------------------------------- RecordIO

def _insightface_rec(tmp_path: Path, images: list[np.ndarray], labels: list[int]) -> tuple[Path, Path]:
    """insightface layout: header 0, images 1..n, one header per identity."""
    n, classes = len(images), sorted(set(labels))
    start, end = n + 1, n + 1 + len(classes)
    items: list = [(IRHeader(2, np.array([start, end], np.float32), 0, 0), b"")]
    items += [(float(lab), _png(img)) for img, lab in zip(images, labels)]
    for c in classes:
        first = 1 + labels.index(c)
        items.append(([first, first + labels.count(c)], b""))
    rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
    write_recordio(rec, idx, items)
    return rec, idx


def test_recordio_roundtrip_insightface_layout(tmp_path: Path) -> None:
    images, labels = _faces(), [0, 0, 1, 1, 1]
    rec, idx = _insightface_rec(tmp_path, images, labels)
    reader = RecordIOReader(rec, idx)
    assert len(reader) == 5 and reader.image_keys == [1, 2, 3, 4, 5]
    assert reader.header0 == (6, 8) and reader.num_classes == 2
    for key, img, lab in zip(reader.image_keys, images, labels):
        head, data = reader.read(key)
        assert head.flag == 0 and head.label == lab and data == _png(img)
        assert reader.label(key) == lab
        np.testing.assert_array_equal(reader.image(key), img)
    head, _ = reader.read(7)  # the identity header of class 1: images 3..5
    np.testing.assert_array_equal(head.label, [3, 6])
    ds = RecordIOFaces(rec, idx)
    x, y = ds[2]
    assert x.shape == (3, 112, 112) and x.dtype == torch.float32 and y == 1
    assert -1.0 <= x.min() and x.max() <= 1.0
    expect = torch.from_numpy(images[2][:, :, ::-1].copy()).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(x, expect)
    clone = pickle.loads(pickle.dumps(reader))  # what spawned DataLoader workers do
    assert clone.read(3)[1] == _png(images[2])


def test_recordio_bytes_match_mxnet_layout_and_plain_keys(tmp_path: Path) -> None:
    jpg = cv2.imencode(".jpg", _faces(1)[0])[1].tobytes()
    rec, idx = tmp_path / "a.rec", tmp_path / "a.idx"
    write_recordio(rec, idx, [(3.0, jpg), (7.0, jpg[:-1])])
    payload = struct.pack("<IfQQ", 0, 3.0, 0, 0) + jpg
    first = struct.pack("<II", MAGIC, len(payload)) + payload + b"\0" * (-len(payload) % 4)
    assert rec.read_bytes().startswith(first)
    assert idx.read_text().splitlines() == ["0\t0", f"1\t{len(first)}"]
    reader = RecordIOReader(rec, idx)  # no header record: every key is an image
    assert reader.image_keys == [0, 1] and reader.header0 is None and reader.num_classes is None
    assert reader.label(1) == 7 and reader.read(1)[1] == jpg[:-1]
    np.testing.assert_array_equal(reader.image(0), cv2.imdecode(np.frombuffer(jpg, np.uint8), 1))


def test_recordio_multipart_record_containing_magic(tmp_path: Path) -> None:
    data = b"abcdefgh" + struct.pack("<I", MAGIC) + b"tail!" + struct.pack("<I", MAGIC)
    rec, idx = tmp_path / "m.rec", tmp_path / "m.idx"
    write_recordio(rec, idx, [(1.0, data), (2.0, b"x")])
    raw = rec.read_bytes()
    assert (struct.unpack_from("<I", raw, 4)[0] >> 29) == 1  # split into parts at the magic
    reader = RecordIOReader(rec, idx)
    assert reader.read(0)[1] == data and reader.read(1)[1] == b"x"


def test_recordio_truncated(tmp_path: Path) -> None:
    images = _faces()
    rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
    offsets = write_recordio(rec, idx, [(float(i), _png(img)) for i, img in enumerate(images)])
    rec.write_bytes(rec.read_bytes()[:-50])  # cut the last record short
    reader = RecordIOReader(rec, idx)
    assert reader.read(3)[1] == _png(images[3])
    with pytest.raises(ValueError, match=rf"train\.rec: truncated record at offset {offsets[4]}"):
        reader.read(4)
    rec.write_bytes(rec.read_bytes()[:offsets[4] + 4])  # cut inside the record header
    with pytest.raises(ValueError, match=r"train\.idx: key 4 points at offset .* past the end"):
        RecordIOReader(rec, idx)


def test_recordio_wrong_magic_and_idx_errors(tmp_path: Path) -> None:
    rec, idx = _insightface_rec(tmp_path, _faces(), [0, 0, 1, 1, 1])
    offsets = [int(line.split()[1]) for line in idx.read_text().splitlines()]
    raw = bytearray(rec.read_bytes())
    raw[offsets[2]:offsets[2] + 4] = b"JUNK"
    rec.write_bytes(bytes(raw))
    reader = RecordIOReader(rec, idx)
    with pytest.raises(ValueError, match=rf"train\.rec: wrong magic .* at offset {offsets[2]} .*train\.idx"):
        reader.image(2)
    idx.write_text(idx.read_text() + f"99\t{len(raw) + 4096}\n")
    with pytest.raises(ValueError, match=r"train\.idx: key 99 points at offset .* past the end"):
        RecordIOReader(rec, idx)
    idx.write_text(f"0\t{offsets[0] + 4}\n")  # into the middle of a record
    with pytest.raises(ValueError, match="wrong magic"):
        RecordIOReader(rec, idx)
    idx.write_text("0 zero\n")
    with pytest.raises(ValueError, match=r"train\.idx:1"):
        RecordIOReader(rec, idx)
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        RecordIOReader(rec, tmp_path / "nope.idx")


# ---------------------------------------------------------------- verification .bin

def test_verification_bin_roundtrip(tmp_path: Path) -> None:
    images, issame = _faces(6), [True, False, True]
    path = tmp_path / "lfw.bin"
    write_verification_bin(path, images, issame)
    got, same = load_verification_bin(path)
    assert got.shape == (6, 112, 112, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.stack(images))
    assert same.dtype == bool and same.tolist() == issame
    small, _ = load_verification_bin(path, image_size=(56, 64))
    assert small.shape == (6, 56, 64, 3)
    # Python 2's protocol 2: images as BINSTRING (str), read as bytes
    body = b"".join(b"T" + struct.pack("<I", len(_png(i))) + _png(i) for i in images[:2])
    path.write_bytes(b"\x80\x02](" + body + b"e](\x89e\x86.")
    got, same = load_verification_bin(path)
    np.testing.assert_array_equal(got, np.stack(images[:2]))
    assert same.tolist() == [False]


@pytest.mark.parametrize("protocol", [2, 4])
def test_verification_bin_python3_protocols_and_numpy_bools(tmp_path: Path, protocol: int) -> None:
    images = _faces(4)
    path = tmp_path / "agedb_30.bin"
    with open(path, "wb") as f:  # bytes at protocol 2 go through _codecs.encode; numpy bools
        pickle.dump(([_png(i) for i in images], [np.bool_(True), np.bool_(False)]), f, protocol=protocol)
    got, same = load_verification_bin(path)
    np.testing.assert_array_equal(got, np.stack(images))
    assert same.tolist() == [True, False]
    with open(path, "wb") as f:
        pickle.dump(([_png(i) for i in images], [np.float64(1.0), True]), f, protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match=r"agedb_30\.bin.*dtype"):
        load_verification_bin(path)


def test_verification_bin_refuses_malicious_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "cfp_fp.bin"
    path.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match=r"cfp_fp\.bin.*os\.system"):
        load_verification_bin(path)

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    path.write_bytes(pickle.dumps(([b"a", b"b"], [Evil()]), protocol=4))  # STACK_GLOBAL, nested
    with pytest.raises(pickle.UnpicklingError, match=r"cfp_fp\.bin.*refusing to load global .*system"):
        load_verification_bin(path)
    assert not marker.exists()


def test_verification_bin_structure_errors(tmp_path: Path) -> None:
    path = tmp_path / "lfw.bin"
    write_verification_bin(path, _faces(5), [True, False])
    with pytest.raises(ValueError, match=r"lfw\.bin: 5 images for 2 pairs.*mislabelled or truncated"):
        load_verification_bin(path)
    write_verification_bin(path, [_png(_faces(1)[0]), b"not an image"], [True])
    with pytest.raises(ValueError, match=r"lfw\.bin: image 1 \(pair 0\)"):
        load_verification_bin(path)
    path.write_bytes(pickle.dumps({"bins": []}))
    with pytest.raises(ValueError, match=r"lfw\.bin: expected a pickled \(bins, issame_list\)"):
        load_verification_bin(path)


# ---------------------------------------------------------------- image folders

def test_image_folder(tmp_path: Path) -> None:
    images = _faces(5, size=64)
    for i, (who, img) in enumerate(zip(["bob", "bob", "alice", "carol", "carol"], images)):
        (tmp_path / who).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / who / f"{i}.png"), img)
    (tmp_path / "bob" / "notes.txt").write_text("ignored")
    ds = ImageFolderFaces(tmp_path, size=112)
    assert ds.classes == ["alice", "bob", "carol"] and len(ds) == 5
    assert ds.labels.tolist() == [0, 1, 1, 2, 2]
    np.testing.assert_array_equal(ds.image(0), images[2])
    x, y = ds[0]
    assert x.shape == (3, 112, 112) and y == 0 and -1 <= x.min() and x.max() <= 1
    (tmp_path / "dave").mkdir()
    with pytest.raises(ValueError, match=r"hold no .* images, e\.g\. \['dave'\]"):
        ImageFolderFaces(tmp_path)
    (tmp_path / "dave" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataFileError, match=r"broken\.jpg is not a decodable encoded image"):
        ImageFolderFaces(tmp_path)[5]  # dave sorts last
    (tmp_path / "dave" / "broken.jpg").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"broken\.jpg is not a decodable encoded image \(bytes, 0 bytes\)"):
        ImageFolderFaces(tmp_path)[5]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no identity folders"):
        ImageFolderFaces(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        ImageFolderFaces(tmp_path / "missing")


def test_image_folder_refuses_links_leading_outside_the_root(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "faces", tmp_path / "elsewhere"
    img = _faces(1, size=32)[0]
    for folder in (root / "alice", elsewhere / "secret"):
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "0.png"), img)
    (root / "alice" / "1.png").symlink_to(root / "alice" / "0.png")  # a link inside the root is fine
    assert len(ImageFolderFaces(root)) == 2
    (root / "mallory").symlink_to(elsewhere / "secret", target_is_directory=True)
    with pytest.raises(DataFileError, match=r"mallory is a symbolic link to .*secret, outside .*follow_links=True"):
        ImageFolderFaces(root)
    assert len(ImageFolderFaces(root, follow_links=True)) == 3
    (root / "mallory").unlink()
    (root / "alice" / "2.png").symlink_to(elsewhere / "secret" / "0.png")
    with pytest.raises(DataFileError, match=r"2\.png is a symbolic link"):
        ImageFolderFaces(root)


def test_image_folder_pixel_cap(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "big.png"), np.zeros((300, 300, 3), np.uint8))
    with pytest.raises(DataFileError, match="decompression bomb"):
        ImageFolderFaces(tmp_path, max_image_pixels=200 * 200).image(0)
    assert ImageFolderFaces(tmp_path).image(0).shape == (300, 300, 3)


# ---------------------------------------------------------------- MegaFace / FaceScrub lists


@pytest.mark.parametrize("escape", ["../../etc/passwd", "/etc/passwd", "a/../../outside.png"])
def test_face_list_paths_must_stay_under_the_root(tmp_path: Path, escape: str) -> None:
    root = tmp_path / "images"
    (root / "a").mkdir(parents=True)
    (root / "a" / "1.png").write_bytes(b"x")
    (tmp_path / "outside.png").write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text(f"a/1.png\n{escape}\n")
    with pytest.raises(DataFileError, match=r"list\.txt \(entry 2\): .* leads outside"):
        read_face_list(listing, root)
    faces = read_face_list(listing)  # without a root nothing is opened
    with pytest.raises(DataFileError, match="allow_outside=True"):
        faces.resolve(root, check=False)
    assert len(faces.resolve(root, check=False, allow_outside=True)) == 2


def test_face_list_symlink_out_of_the_root_and_non_utf8(tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    listing = tmp_path / "list.txt"
    listing.write_text("link.png\n")
    with pytest.raises(DataFileError, match="leads outside"):
        read_face_list(listing, root)
    listing.write_bytes(b"\xff\xfe a.png\n")
    with pytest.raises(DataFileError, match=r"list\.txt: not UTF-8 text"):
        read_face_list(listing)

def test_megaface_json_and_text_lists(tmp_path: Path) -> None:
    root = tmp_path / "images"
    names = ["Aaron_Eckhart/a_1.png", "Aaron_Eckhart/a_2.png", "Adam_Brody/b_1.png"]
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        (root / n).write_bytes(b"x")
    facescrub = tmp_path / "facescrub_features_list.json"
    facescrub.write_text(json.dumps({"id": ["Aaron_Eckhart", "Aaron_Eckhart", "Adam_Brody"], "path": names}))
    faces = read_face_list(facescrub, root)
    assert faces.paths == names and faces.labels().tolist() == [0, 0, 1]
    assert faces.resolve(root) == [root / n for n in names]
    mega = tmp_path / "megaface_features_list.json_1000000_1"  # JSON without the .json suffix
    mega.write_text(json.dumps({"path": names + ["123/4@N00/missing_0.jpg"]}))
    assert read_face_list(mega).ids is None
    with pytest.raises(FileNotFoundError, match=r"1 of 4 images listed in .*json_1000000_1.*missing_0\.jpg"):
        read_face_list(mega, root)

    text = tmp_path / "list.txt"
    text.write_text("# comment\n" + "".join(f"{n}\t{i // 2}\n" for i, n in enumerate(names)))
    faces = read_face_list(text, root)
    assert faces.paths == names and faces.ids == [0, 0, 1]
    text.write_text("\n".join(names) + "\n")
    assert read_face_list(text, root).ids is None
    text.write_text(f"{names[0]} 0\n{names[1]}\n")
    with pytest.raises(ValueError, match="some lines have a label column"):
        read_face_list(text)
    facescrub.write_text(json.dumps({"id": ["a"], "path": names}))
    with pytest.raises(ValueError, match="'id' must be a list as long as 'path'"):
        read_face_list(facescrub)


@pytest.mark.parametrize("content, match", [
    (json.dumps({"path": ["a\u0000.png"]}), "NUL byte"),
    ('{"path": ["a/\\ud800.png"]}', "characters no file name can hold"),
    (json.dumps({"path": ["x" * 300 + ".png"]}), "longer than a path"),
    (json.dumps({"path": ["a/" * 3000 + "b.png"]}), "longer than a path"),
    ('{"path": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"path": ["a.png"], "id": [' + "7" * 5000 + "]}", "unreadable JSON"),
])
def test_face_list_refuses_names_no_file_can_have(tmp_path: Path, content: str, match: str) -> None:
    listing = tmp_path / "list.json"
    listing.write_text(content)
    with pytest.raises(DataFileError, match=rf"list\.json.*{match}"):
        read_face_list(listing, tmp_path)
