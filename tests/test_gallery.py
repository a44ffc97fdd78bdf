"""The face gallery (faceopt.system.gallery): exact 1:N search, the file format and its checks,
atomic and locked writes, and an enrolling process killed with SIGKILL 100 times."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faceopt.system import gallery as gallery_module
from faceopt.system.gallery import FORMAT_VERSION, SCHEMA, Gallery, GalleryError, Threshold, create_gallery


@pytest.fixture
def g3(tmp_path: Path) -> Gallery:
    """alice (1,0,0), bob (0,1,0), carol (1,1,0)/sqrt(2) in a 3-d gallery."""
    g = Gallery.create(tmp_path / "faces.gallery", 3)
    g.enroll("alice", [1.0, 0.0, 0.0])
    g.enroll("bob", [0.0, 2.0, 0.0])  # normalised on enrolment
    g.enroll("carol", [1.0, 1.0, 0.0])
    return g


def _header_and_matrix(path: Path) -> tuple[dict, np.ndarray]:
    """Read a gallery file's header and matrix by hand (the documented layout)."""
    data = path.read_bytes()
    magic = gallery_module.MAGIC
    (n,) = gallery_module._LENGTH.unpack_from(data, len(magic))
    start = len(magic) + 8
    header = json.loads(data[start:start + n])
    matrix = np.frombuffer(data[start + n:-32], dtype="<f4").reshape(header["rows"], header["dim"])
    return header, matrix


# --- search ------------------------------------------------------------------------------------

def test_identify_orders_names_by_hand_computed_cosines(g3: Gallery):
    # probe (1, 0.5, 0): cosines 2/sqrt(5) with alice, 1/sqrt(5) with bob, 3/sqrt(10) with carol
    result = g3.identify([1.0, 0.5, 0.0], k=3)
    assert [n for n, _ in result] == ["carol", "alice", "bob"]
    assert [c for _, c in result] == pytest.approx([3 / math.sqrt(10), 2 / math.sqrt(5), 1 / math.sqrt(5)], abs=1e-6)
    assert g3.identify([1.0, 0.5, 0.0]) == result[:1]  # k defaults to 1
    assert g3.identify([0.0, 0.0, 5.0], k=2) == [("alice", pytest.approx(0.0, abs=1e-7)),
                                                 ("bob", pytest.approx(0.0, abs=1e-7))]  # a tie: first name first


def test_verify_against_the_stored_threshold(g3: Gallery):
    with pytest.raises(ValueError, match="no verification threshold.*set_threshold"):
        g3.verify("carol", [1.0, 0.5, 0.0])
    g3.set_threshold(0.9, fmr=1e-3)
    cos, ok = g3.verify("carol", [1.0, 0.5, 0.0])
    assert cos == pytest.approx(3 / math.sqrt(10), abs=1e-6) and ok
    cos, ok = g3.verify("alice", [1.0, 0.5, 0.0])
    assert cos == pytest.approx(2 / math.sqrt(5), abs=1e-6) and not ok
    g3.set_threshold(cos, fmr=1e-3)  # a score equal to the threshold is accepted (cosine >= T)
    assert g3.verify("alice", [1.0, 0.5, 0.0]) == (cos, True)
    with pytest.raises(KeyError, match="'dave' is not enrolled"):
        g3.verify("dave", [1.0, 0.0, 0.0])


def test_k_larger_than_the_gallery_and_bad_k(g3: Gallery, tmp_path: Path):
    assert [n for n, _ in g3.identify([0.0, 1.0, 0.0], k=10)] == ["bob", "carol", "alice"]
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            g3.identify([0.0, 1.0, 0.0], k=bad)  # type: ignore[arg-type]
    assert Gallery.create(tmp_path / "empty.gallery", 3).identify([1.0, 0.0, 0.0], k=5) == []


def test_several_embeddings_per_name_score_their_best(g3: Gallery):
    assert g3.enroll("alice", [0.0, 0.0, 3.0]) == 2
    assert len(g3) == 3 and g3.num_embeddings == 4 and g3.names() == ["alice", "bob", "carol"]
    np.testing.assert_allclose(g3.embeddings("alice"), [[1, 0, 0], [0, 0, 1]])
    # probe (0, 0.2, 1): alice's second embedding gives 1/sqrt(1.04), her first 0, bob 0.2/sqrt(1.04)
    top = g3.identify([0.0, 0.2, 1.0], k=3)
    assert [n for n, _ in top] == ["alice", "bob", "carol"]  # each name once
    assert [c for _, c in top] == pytest.approx([1 / math.sqrt(1.04), 0.2 / math.sqrt(1.04),
                                                 0.2 / math.sqrt(2.08)], abs=1e-6)
    g3.set_threshold(0.5, fmr=1e-3)
    assert g3.verify("alice", [0.0, 0.0, 1.0])[0] == pytest.approx(1.0, abs=1e-6)
    counts = g3.enroll_many([("dave", [1.0, 1.0, 1.0]), ("bob", [1.0, 0.0, 1.0]), ("dave", [0.0, 1.0, 1.0])])
    assert counts == {"dave": 2, "bob": 2}


def test_remove(g3: Gallery):
    g3.enroll("alice", [0.0, 0.0, 1.0])
    assert g3.remove("alice") == 2
    assert g3.names() == ["bob", "carol"] and "alice" not in g3 and g3.num_embeddings == 2
    assert [n for n, _ in g3.identify([1.0, 0.0, 0.0], k=5)] == ["carol", "bob"]
    assert Gallery(g3.path).names() == ["bob", "carol"]  # written before remove returned
    with pytest.raises(KeyError, match="'alice' is not enrolled"):
        g3.remove("alice")


def test_embeddings_are_checked_and_normalised(g3: Gallery):
    path = str(g3.path)
    bad = {
        "shape": [1.0, 0.0],
        "shape ": [[1.0, 0.0, 0.0]],
        "NaN or infinity": [1.0, float("nan"), 0.0],
        "NaN or infinity ": [float("inf"), 0.0, 0.0],
        "zero vector": [0.0, 0.0, 0.0],
        "not a numeric vector": ["a", "b", "c"],
    }
    for what, vec in bad.items():
        with pytest.raises(ValueError, match=what.strip()) as err:
            g3.enroll("eve", vec)
        assert path in str(err.value)
        with pytest.raises(ValueError, match=what.strip()):
            g3.identify(vec)
    with pytest.raises(ValueError, match="non-empty string"):
        g3.enroll("", [1.0, 0.0, 0.0])
    assert "eve" not in g3 and g3.num_embeddings == 3
    g3.enroll("eve", [3.0, 4.0, 0.0])
    np.testing.assert_allclose(g3.embeddings("eve"), [[0.6, 0.8, 0.0]], atol=1e-7)
    assert g3.embeddings("eve").dtype == np.float32
    with pytest.raises(ValueError, match="positive integer"):
        Gallery.create(g3.path.with_name("zero.gallery"), 0)


# --- the file ----------------------------------------------------------------------------------

def test_reload_from_disk_equals_memory(tmp_path: Path):
    rng = np.random.default_rng(0)
    g = create_gallery(tmp_path / "sub" / "g.gallery", 16)
    for i in range(40):
        g.enroll(f"p{i % 13}", rng.standard_normal(16))
    g.set_threshold(0.42, fmr=1e-3, method="by hand for the test")
    h = Gallery(g.path)
    assert h.names() == g.names() and len(h) == 13 and h.num_embeddings == 40 and h.dim == 16
    for name in g.names():
        np.testing.assert_array_equal(h.embeddings(name), g.embeddings(name))
    probe = rng.standard_normal(16)
    assert h.identify(probe, k=13) == g.identify(probe, k=13)
    assert h.threshold_info == g.threshold_info
    header, matrix = _header_and_matrix(g.path)  # the documented layout
    assert (header["schema"], header["version"], header["dim"], header["rows"]) == (SCHEMA, FORMAT_VERSION, 16, 40)
    assert header["names"] == [f"p{i % 13}" for i in range(40)]
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-6)
    # a second Gallery object sees another's enrolment without reopening
    g.enroll("new", rng.standard_normal(16))
    assert "new" in h and h.identify(g.embeddings("new")[0])[0][0] == "new"


def test_threshold_round_trip(tmp_path: Path):
    g = Gallery.create(tmp_path / "t.gallery", 4)
    assert g.threshold is None and g.threshold_info is None
    t = g.set_threshold(0.3125, fmr=1e-4, method="threshold_at_fmr over 1000 impostor scores of LFW")
    assert isinstance(t, Threshold) and t.value == 0.3125 and t.fmr == 1e-4
    h = Gallery(g.path)
    assert h.threshold == 0.3125 and h.threshold_info == t
    before = g.path.read_bytes()
    for value, fmr in ((float("nan"), 1e-3), (float("inf"), 1e-3), (0.5, 0.0), (0.5, 1.5), (0.5, float("nan"))):
        with pytest.raises(ValueError):
            g.set_threshold(value, fmr=fmr)
    with pytest.raises(ValueError, match="how the threshold was chosen"):
        g.set_threshold(0.5, fmr=1e-3, method=" ")
    assert g.path.read_bytes() == before
    # from impostor scores: 1 impostor of 10 may pass at FMR 0.1, so T lies just above the second largest
    t2 = g.set_threshold_for_fmr(np.linspace(0.0, 0.9, 10), 0.1, source="made-up scores")
    assert t2.value == pytest.approx(0.8) and t2.value > 0.8 and t2.fmr == 0.1
    assert t2.method == "threshold_at_fmr over 10 impostor scores of made-up scores"
    assert Gallery(g.path).threshold_info == t2


def test_open_and_create_errors(tmp_path: Path):
    path = tmp_path / "g.gallery"
    with pytest.raises(FileNotFoundError, match="Gallery.create"):
        Gallery(path)
    g = Gallery.create(path, 8)
    g.enroll("a", np.ones(8))
    with pytest.raises(FileExistsError, match="already exists"):
        Gallery.create(path, 8)
    assert Gallery.create(path, 8, exist_ok=True).names() == ["a"]
    with pytest.raises(GalleryError, match="8-d embeddings, not 4-d"):
        Gallery.create(path, 4, exist_ok=True)


def _expect_error(path: Path, data: bytes, *patterns: str) -> None:
    path.write_bytes(data)
    with pytest.raises(GalleryError) as err:
        Gallery(path)
    message = str(err.value)
    assert str(path) in message, message
    for pattern in patterns:
        assert pattern in message, message
    assert isinstance(err.value, ValueError)


def test_tampered_checksum_names_the_file(g3: Gallery):
    good = g3.path.read_bytes()
    flipped = bytearray(good)
    flipped[-40] ^= 0x01  # a bit of the last embedding
    _expect_error(g3.path, bytes(flipped), "checksum does not match", "restore it from a backup")
    renamed = good.replace(b'"carol"', b'"carql"')  # the header still parses
    _expect_error(g3.path, renamed, "checksum does not match")
    bad_digest = good[:-1] + bytes([good[-1] ^ 0xFF])
    _expect_error(g3.path, bad_digest, "checksum does not match")


def test_other_schema_future_version_and_garbage(g3: Gallery):
    header, matrix = _header_and_matrix(g3.path)
    _expect_error(g3.path, gallery_module._encode({**header, "schema": "faceopt.runs"}, matrix),
                  "schema 'faceopt.runs'", "another kind of file", "Gallery.create")
    _expect_error(g3.path, gallery_module._encode({**header, "version": FORMAT_VERSION + 1}, matrix),
                  f"format version {FORMAT_VERSION + 1}", "upgrade faceopt")
    _expect_error(g3.path, gallery_module._encode({**header, "version": "1"}, matrix), "format version '1'")
    _expect_error(g3.path, gallery_module._encode({**header, "names": header["names"][:2]}, matrix), "'names'")
    _expect_error(g3.path, gallery_module._encode(header, matrix * 2), "not unit vectors")
    _expect_error(g3.path, b"PK\x03\x04" + os.urandom(200), "not a faceopt gallery file")
    np.savez(g3.path.with_suffix(".npz"), e=matrix)
    _expect_error(g3.path, g3.path.with_suffix(".npz").read_bytes(), "not a faceopt gallery file")
    _expect_error(g3.path, gallery_module.MAGIC + b"\x05" + bytes(7) + b"{notjson" + bytes(32), "not valid JSON")


def test_truncated_file(g3: Gallery):
    good = g3.path.read_bytes()
    (head_len,) = gallery_module._LENGTH.unpack_from(good, 16)
    for cut in (0, 7, 16, 20, 24 + head_len // 2, 24 + head_len + 5, len(good) - 33, len(good) - 1):
        _expect_error(g3.path, good[:cut], "truncated")
    _expect_error(g3.path, good + b"\x00", "1 bytes after the end")


def test_a_failed_write_changes_nothing(g3: Gallery, monkeypatch: pytest.MonkeyPatch):
    before = g3.path.read_bytes()

    def disk_full(path: object, data: bytes) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gallery_module, "atomic_write_bytes", disk_full)
    with pytest.raises(OSError, match="No space"):
        g3.enroll("dave", [1.0, 1.0, 1.0])
    assert g3.path.read_bytes() == before and "dave" not in g3 and g3.num_embeddings == 3


# --- processes ---------------------------------------------------------------------------------

def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], **kwargs)


CONCURRENT = r"""
import sys
import numpy as np
from faceopt.system.gallery import Gallery
g = Gallery(sys.argv[1])
prefix, n = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # both start together
rng = np.random.default_rng(len(prefix))
for i in range(n):
    g.enroll(f"{prefix}{i}", rng.standard_normal(8))
"""


def test_concurrent_enrolment_from_two_processes_keeps_both(tmp_path: Path):
    path = tmp_path / "shared.gallery"
    Gallery.create(path, 8)
    n = 40
    procs = [_python(CONCURRENT, str(path), prefix, str(n), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE) for prefix in ("a", "bb")]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    g = Gallery(path)
    assert sorted(g.names()) == sorted([f"a{i}" for i in range(n)] + [f"bb{i}" for i in range(n)])
    assert g.num_embeddings == 2 * n


KILLED = r"""
import sys
import numpy as np
from faceopt.system.gallery import Gallery
g = Gallery(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    g.enroll(f"e{i}", np.random.default_rng(i).standard_normal(8))
    print(f"e{i}", flush=True)  # only after enroll returned: committed
    i += 1
"""


@pytest.mark.slow
def test_kill_9_during_enrolment_never_corrupts_or_loses_a_committed_entry(tmp_path: Path):
    """100 trials: a process enrolling e0, e1, ... into a fresh gallery is killed with SIGKILL a
    random 0-50 ms after it is ready (seeded). The file must load, hold exactly e0..e(j-1) with the
    reported ones among them (at most one more: killed between enroll and print), with the right
    vectors; and the next writer must work and sweep the killed writer's temporary file."""
    rng = random.Random(20230901)
    trials, committed_total, extra_total, litter_total = 100, 0, 0, 0
    start = time.monotonic()
    for trial in range(trials):
        path = tmp_path / f"kill{trial}.gallery"
        Gallery.create(path, 8)
        proc = _python(KILLED, str(path), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n", f"trial {trial}: the child did not start"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read().decode()  # to EOF; complete lines only
        proc.stdout.close()
        assert proc.wait(timeout=30) == -signal.SIGKILL
        reported = rest.split("\n")[:-1]
        assert reported == [f"e{i}" for i in range(len(reported))]

        g = Gallery(path)  # never corrupt: GalleryError would fail the test here
        present = g.names()
        j = g.num_embeddings
        assert j in (len(reported), len(reported) + 1), f"trial {trial}: reported {len(reported)}, file has {j}"
        assert sorted(present) == sorted(f"e{i}" for i in range(j)), f"trial {trial}"
        for i in range(j):
            v = np.random.default_rng(i).standard_normal(8)
            np.testing.assert_allclose(g.embeddings(f"e{i}")[0], v / np.linalg.norm(v), atol=1e-6)
        committed_total += len(reported)
        extra_total += j - len(reported)

        litter = list(tmp_path.glob(f".{path.name}.*.tmp"))
        litter_total += bool(litter)
        g.enroll("after", np.ones(8))  # the lock died with the child; temporary files are swept
        assert not list(tmp_path.glob(f".{path.name}.*.tmp"))
        assert Gallery(path).num_embeddings == j + 1
    elapsed = time.monotonic() - start
    print(f"{trials} kills in {elapsed:.1f} s: {committed_total} committed enrolments all kept, "
          f"{extra_total} enrolments written but not yet reported, {litter_total} kills left a temporary file")
    assert committed_total > trials  # the kills did land among enrolments
