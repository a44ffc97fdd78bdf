"""The reader fuzz harness (faceopt.fuzz): reproducible cases, the classifier, isolation and hostile pickles.

These tests check the harness, not the readers: whether the real readers have findings is what a campaign
reports (``python -m faceopt.fuzz``), and is left to the readers' own tests.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import time
from pathlib import Path
from typing import Iterator

import pytest

from faceopt import fuzz as F
from faceopt.assets.errors import AssetFetchError
from faceopt.data.errors import DataFileError
from faceopt.data.verification_bin import VerificationBinError

# ----------------------------------------------------------------------------- fake readers
# Module-level functions: the worker process receives a reader's ``run`` pickled by reference.


def _one_file(rng, d: Path) -> F.Inputs:
    (d / "input.dat").write_bytes(b"payload")
    return F.Inputs(d / "input.dat", ("input.dat",))


def _hostile_file(rng, d: Path) -> F.Inputs:
    (d / "input.pkl").write_bytes(F._HOSTILE["builtins-open"])
    return F.Inputs(d / "input.pkl", ("input.pkl",))


def run_fine(path: Path) -> object:
    return path.read_bytes()


def run_sleepy(path: Path) -> object:
    time.sleep(60)
    return None


def run_stuck(path: Path) -> object:
    """Deaf to the worker's alarm, as a reader stuck in C code is: only the parent's timeout ends it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(60)
    return None


def run_greedy(path: Path) -> object:
    return bytearray(2 << 30)  # far beyond the limit of the tests


def run_crash(path: Path) -> object:
    os.kill(os.getpid(), signal.SIGKILL)
    return None


def run_type_error(path: Path) -> object:
    raise TypeError(f"{path}: unsupported operand")


def run_unnamed(path: Path) -> object:
    raise ValueError("bad value")


def run_named(path: Path) -> object:
    raise DataFileError(f"{path}: corrupt, download it again")


def run_unsafe_pickle(path: Path) -> object:
    return pickle.loads(path.read_bytes())  # what a reader must never do: the marker proves it


FAKES = {"fake-sleepy": run_sleepy, "fake-stuck": run_stuck, "fake-fine": run_fine, "fake-crash": run_crash,
         "fake-greedy": run_greedy, "fake-fine-after": run_fine, "fake-type-error": run_type_error,
         "fake-unnamed": run_unnamed, "fake-named": run_named}


@pytest.fixture(scope="module")
def fakes() -> Iterator[None]:
    for name, run in FAKES.items():
        F.register_reader(F.Reader(name, run, {"valid": _one_file}))
    F.register_reader(F.Reader("fake-unsafe-pickle", run_unsafe_pickle, {"valid": _hostile_file}))
    try:
        yield
    finally:
        for name in [*FAKES, "fake-unsafe-pickle"]:
            F.unregister_reader(name)


# ----------------------------------------------------------------------------- generation

REAL = ["recordio", "bin", "image_folder", "face_list", "pair_list", "assets", "checkpoint"]


def _digests(cases: list[F.Case]) -> list[tuple[str, str]]:
    return [(c.name, F.case_digest(c)) for c in cases]


def test_cases_are_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = _digests(F.generate_cases(0, 10, tmp_path / "a", REAL))
    again = _digests(F.generate_cases(0, 10, tmp_path / "b", REAL))  # another folder: same names and bytes
    assert first == again
    assert len(first) == 10 * len(REAL)
    # a case depends on (seed, reader, index) only, not on how many cases are drawn or in which order
    few = _digests(F.generate_cases(0, 3, tmp_path / "c", ["bin", "recordio"]))
    assert sorted(few) == sorted(d for d in first if d[0].startswith(tuple(f"{r}-000{i}-" for r in ("bin", "recordio")
                                                                             for i in range(3))))
    other = dict(_digests(F.generate_cases(1, 10, tmp_path / "d", REAL)))
    assert sum(other[name] != digest for name, digest in first if name in other) > 10


def test_every_reader_starts_from_a_valid_seed_and_covers_the_asked_inputs() -> None:
    required = {
        "recordio": ["header-nan", "idx-non-ascii", "idx-negative-offset", "image-empty", "image-png-claims-12000x12000",
                     "record-len-huge", "label-nan"],
        "bin": ["truncated", "deep-tuple", "many-refs-memo", "hostile-os-system", "bins-str"],
        "image_folder": ["image-empty", "image-png-truncated", "image-png-bomb-4500x4500", "link-file-outside"],
        "face_list": ["json-invalid", "json-non-utf8", "json-path-dotdot", "json-path-absolute", "text-label-mix"],
        "pair_list": ["non-utf8", "dotdot", "absolute", "same-2"],
        "assets": ["ar-size-negative", "ar-size-absurd", "ar-bsd-name", "truncated", "valid-deb.zst", "valid-whl"],
        "checkpoint": ["step-huge", "drop-key", "retype-key"],
    }
    for reader, keys in required.items():
        mutations = list(F.READERS[reader].mutations)
        assert mutations[0] == "valid"
        assert set(keys) <= set(mutations), (reader, set(keys) - set(mutations))


# ----------------------------------------------------------------------------- classifier

def test_classifier(tmp_path: Path) -> None:
    from faceopt.train import CheckpointError

    path = tmp_path / "train.rec"
    names = (path.name,)
    assert F.classify(None, names) == ("ok", "")
    assert F.classify(DataFileError(f"{path}: truncated record"), names) == ("clean", "")
    assert F.classify(VerificationBinError(f"{path}: refusing os.system"), names) == ("clean", "")
    assert F.classify(CheckpointError(f"cannot load checkpoint {path}"), names) == ("clean", "")
    assert F.classify(FileNotFoundError(2, "No such file or directory", str(path)), names) == ("clean", "")
    assert F.classify(ValueError(f"{path}:3: expected key<TAB>offset"), names) == ("clean", "")
    assert F.classify(ValueError("embedded null byte"), names) == ("finding", "unnamed")
    assert F.classify(DataFileError("corrupt record"), names) == ("finding", "unnamed")
    assert F.classify(AssetFetchError("not an ar archive (bad magic)"), names) == ("finding", "unnamed")
    assert F.classify(TypeError(f"{path}: bad operand"), names) == ("finding", "exception")
    assert F.classify(KeyError(str(path)), names) == ("finding", "exception")
    assert F.classify(UnicodeDecodeError("utf-8", b"\xff", 0, 1, f"{path}"), names) == ("finding", "exception")
    assert F.classify(MemoryError(), names) == ("finding", "memory")
    try:
        try:
            raise MemoryError()
        except MemoryError as e:
            raise DataFileError(f"{path}: cannot unpickle it") from e
    except DataFileError as wrapped:
        assert F.classify(wrapped, names) == ("finding", "memory")  # tried to grow past the limit, even if wrapped


# ----------------------------------------------------------------------------- isolation

def test_timeouts_memory_and_crashes_are_findings_and_the_campaign_goes_on(tmp_path: Path, fakes: None) -> None:
    order = ["fake-sleepy", "fake-stuck", "fake-fine", "fake-crash", "fake-greedy", "fake-type-error", "fake-unnamed",
             "fake-named", "fake-fine-after"]
    start = time.perf_counter()
    summary = F.run_campaign(0, 1, tmp_path, time_limit_s=1.0, memory_limit_mb=256, readers=order)
    assert time.perf_counter() - start < 45
    by_reader = {f["reader"]: f for f in summary["findings"]}
    assert by_reader["fake-sleepy"]["category"] == "timeout"
    assert by_reader["fake-stuck"]["category"] == "timeout" and "killed" in by_reader["fake-stuck"]["message"]
    assert by_reader["fake-crash"]["category"] == "crash" and "signal 9" in by_reader["fake-crash"]["message"]
    assert by_reader["fake-greedy"]["category"] == "memory" and by_reader["fake-greedy"]["error_type"] == "MemoryError"
    assert by_reader["fake-type-error"]["category"] == "exception" and by_reader["fake-type-error"]["error_type"] == "TypeError"
    assert by_reader["fake-unnamed"]["category"] == "unnamed" and by_reader["fake-unnamed"]["message"] == "bad value"
    readers = summary["readers"]
    assert readers["fake-fine"]["ok"] == readers["fake-fine-after"]["ok"] == 1  # the worker was replaced after a kill
    assert readers["fake-named"]["clean"] == 1 and "fake-named" not in by_reader
    assert readers["fake-sleepy"]["slow"] == readers["fake-stuck"]["slow"] == 1
    assert readers["fake-crash"]["crash"] == readers["fake-greedy"]["memory"] == 1
    assert summary["total_findings"] == 6 == len(summary["findings"])


def test_cli_exit_codes_and_atomic_json(tmp_path: Path, fakes: None, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    args = ["--seed", "0", "--cases", "1", "--workdir", str(tmp_path / "w"), "--time-limit", "2"]
    assert F.main([*args, "--readers", "fake-fine", "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["readers"]["fake-fine"]["ok"] == 1 and summary["total_findings"] == 0
    assert "fake-fine" in capsys.readouterr().out
    assert F.main([*args, "--readers", "fake-fine", "fake-type-error", "--out", str(out)]) == 1
    assert json.loads(out.read_text())["findings"][0]["error_type"] == "TypeError"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    for bad in (["--cases", "0"], ["--readers", "no-such-reader"], ["--seed", "x"], ["--time-limit", "-1"], ["--nope"]):
        assert F.main(bad) == 2, bad


# ----------------------------------------------------------------------------- the real readers

def test_small_campaign_summary(tmp_path: Path) -> None:
    start = time.perf_counter()
    summary = F.run_campaign(0, 10, tmp_path, readers=REAL)
    assert time.perf_counter() - start < 60
    json.dumps(summary)
    assert summary["seed"] == 0 and summary["cases_per_reader"] == 10 and summary["wall_s"] > 0
    assert list(summary["readers"]) == REAL
    for name, counts in summary["readers"].items():
        assert counts["cases"] == 10 == counts["ok"] + counts["clean"] + counts["findings"], name
        assert counts["slow"] <= counts["findings"]
        assert counts["seed_ok"] is True, f"the valid seed input of {name} does not read: the harness is out of date"
    assert summary["total_findings"] == len(summary["findings"]) == sum(g["count"] for g in summary["distinct_findings"])
    for finding in summary["findings"]:
        assert {"reader", "case", "mutation", "category", "error_type", "message", "seconds"} <= set(finding)
    assert "seed 0" in F.format_table(summary)


def test_hostile_pickles_are_refused_without_running_them(tmp_path: Path, fakes: None) -> None:
    cases = [F.make_case(reader, k, 0, tmp_path, key)
             for reader in ("bin", "checkpoint")
             for k, key in enumerate(F.READERS[reader].mutations) if key.startswith("hostile-")]
    control = F.make_case("fake-unsafe-pickle", 0, 0, tmp_path)  # the same payload, loaded with pickle.loads
    assert len(cases) >= 15
    outcomes = F.run_cases([*cases, control], tmp_path)
    *real, unsafe = outcomes
    assert unsafe.category == "executed" and (control.folder / F.MARKER).exists()  # the marker does detect execution
    assert [o.case for o in real if o.category == "executed"] == []
    assert not any((c.folder / F.MARKER).exists() for c in cases)
    assert [(o.case, o.kind, o.error_type) for o in real if o.kind != "clean"] == []


# ----------------------------------------------------------------------------- the readers hold
#: The package's readers, listed before any test registers its fake ones.
PACKAGE_READERS = ("recordio", "bin", "image_folder", "face_list", "pair_list", "assets", "celeba_spoof", "checkpoint", "video")


def test_no_reader_fails_uncleanly(tmp_path: Path) -> None:
    assert set(PACKAGE_READERS) <= set(F.READERS)
    # the CI sample: 500 inputs per format (about a minute on 2 cores); cleanliness, not speed
    summary = F.run_campaign(0, 500, tmp_path, readers=list(PACKAGE_READERS), time_limit_s=60.0)
    assert summary["total_findings"] == 0, F.format_table(summary)




def test_the_committed_full_campaign_covers_every_reader_cleanly() -> None:
    """book/results/fuzz_campaign.json (``faceopt fuzz --cases 10000``): every package reader, no finding, under 1 GiB.

    A new reader needs a new campaign: run the command in the README and commit its JSON.
    """
    import json

    summary = json.loads((Path(__file__).resolve().parents[1] / "book" / "results" / "fuzz_campaign.json").read_text())
    assert set(PACKAGE_READERS) <= set(summary["readers"]), "run the full campaign again: a reader is missing"
    for name in PACKAGE_READERS:
        r = summary["readers"][name]
        assert r["cases"] >= 10_000 and r["findings"] == r["slow"] == r["memory"] == r["crash"] == 0 and r["seed_ok"]
        assert r["peak_mb"] < 1024
    assert summary["total_findings"] == 0 and "+dirty" not in summary["made_by"]["git_rev"]
