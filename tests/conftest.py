"""Test session setup: quiet progress bars, chapter results kept out of book/, and the golden checks.

The golden smoke notebooks are compared by nbval with the cell kinds of ``golden_check``:
cells tagged ``machine-dependent`` are compared with their numbers masked, and each
``tests/golden/<chapter>.smoke.json`` becomes one test per recorded claim that compares
what the notebook just recorded with the golden values within ``tests/golden/tolerances.yml``.
"""
import json
import os
import tempfile
from pathlib import Path

import pytest
from golden_check import GOLDEN, MACHINE_DEPENDENT, cell_tags, compare_claim, load_tolerances, mask

# Set before nbval starts kernels, which inherit the environment.
os.environ.setdefault("FACEOPT_QUIET", "1")
RESULTS_DIR = Path(tempfile.mkdtemp(prefix="faceopt-test-results-"))
os.environ["FACEOPT_RESULTS_DIR"] = str(RESULTS_DIR)

# Golden notebooks that read registry assets; without them (no registry reachable when
# `make assets` ran) they are skipped with the command that fetches them, not failed.
GOLDEN_ASSETS = {"03_amphibian_detector": ("lfw_subset", "blazeface_short_range", "vtest.avi"),
                 "05_embedded_system": ("blazeface_short_range", "face_recognition_models",
                                        "dlib_face_recognition_resnet", "obama.jpg", "obama2.jpg", "obama3.jpg",
                                        "biden.jpg"),
                 "06_nist_evaluation": ("face_recognition_models", "dlib_face_recognition_resnet", "obama.jpg"),
                 "08_antispoofing": ("blazeface_short_range", "obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg",
                                     "human_antispoof.json", "human_antispoof.bin", "human_liveness.json",
                                     "human_liveness.bin")}


def _install_masking() -> None:
    """Make nbval compare cells tagged ``machine-dependent`` with their numbers masked."""
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # pragma: no cover - nbval is a test requirement
        return
    if getattr(IPyNbCell.sanitize, "faceopt_masking", False):
        return
    plain = IPyNbCell.sanitize

    def sanitize(self, s):
        s = plain(self, s)
        if isinstance(s, str) and MACHINE_DEPENDENT in cell_tags(self.cell):
            s = mask(s)
        return s

    sanitize.faceopt_masking = True
    IPyNbCell.sanitize = sanitize


_install_masking()


class SmokeClaim(pytest.Item):
    """One claim of a golden smoke run: recorded now vs recorded when the golden was made."""

    def __init__(self, *, chapter: str, claim_id: str, golden: dict, **kwargs):
        super().__init__(**kwargs)
        self.chapter, self.claim_id, self.golden = chapter, claim_id, golden

    def runtest(self):
        if not self.config.getoption("nbval", default=False):
            pytest.skip("the smoke claims are recorded by the golden notebooks: run pytest with --nbval")
        missing = _missing_assets(self.chapter)
        if missing:
            pytest.skip(f"assets missing: run `faceopt assets fetch {' '.join(missing)}`")
        rule = load_tolerances().get(self.chapter, {}).get(self.claim_id)
        if rule is None:
            raise AssertionError(f"{self.claim_id}: no tolerance in tests/golden/tolerances.yml under {self.chapter}")
        recorded_file = RESULTS_DIR / f"{self.chapter}.smoke.json"
        recorded = json.loads(recorded_file.read_text()).get("claims", {}) if recorded_file.exists() else {}
        if self.claim_id not in recorded:
            raise AssertionError(f"{self.chapter}'s golden notebook did not record {self.claim_id} in {recorded_file}")
        got = recorded[self.claim_id]
        problems = compare_claim(got["measured"], self.golden["measured"], got["status"], self.golden["status"], rule)
        if problems:
            raise AssertionError(f"{self.chapter} {self.claim_id} ({rule['why']}):\n  " + "\n  ".join(problems))

    def repr_failure(self, excinfo):
        return str(excinfo.value) if isinstance(excinfo.value, AssertionError) else super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.chapter}::{self.claim_id}"


class SmokeClaimsFile(pytest.File):
    def collect(self):
        chapter = self.path.name[: -len(".smoke.json")]
        for claim_id, entry in json.loads(self.path.read_text())["claims"].items():
            yield SmokeClaim.from_parent(self, name=claim_id, chapter=chapter, claim_id=claim_id, golden=entry)


def pytest_collect_file(parent, file_path):
    if file_path.parent == GOLDEN and file_path.name.endswith(".smoke.json"):
        return SmokeClaimsFile.from_parent(parent, path=file_path)
    return None


def _missing_assets(chapter: str) -> list[str]:
    from faceopt.assets import AssetError, asset_path

    missing = []
    for name in GOLDEN_ASSETS.get(chapter, ()):
        try:
            asset_path(name)
        except AssetError:
            missing.append(name)
    return missing


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            missing = _missing_assets(item.path.stem)
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"assets missing: run `faceopt assets fetch {' '.join(missing)}`"))
    # a smoke claim is checked after the notebook that records it has run
    items.sort(key=lambda item: isinstance(item, SmokeClaim))


# --------------------------------------------------------------------------- #
# Recording results into a scratch folder (test_results.py, test_scorecard.py)
# --------------------------------------------------------------------------- #
@pytest.fixture()
def claims_path(tmp_path: Path) -> Path:
    """A copy of the packaged claims.yml that a test may change."""
    import shutil

    from faceopt.resources import resource_path

    dst = tmp_path / "claims.yml"
    shutil.copy(resource_path("claims.yml"), dst)
    return dst


@pytest.fixture()
def rdir(tmp_path: Path) -> Path:
    """A scratch results folder."""
    return tmp_path / "results"


@pytest.fixture()
def fixed_rev(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records name revision abc1234, whatever the checkout's state."""
    monkeypatch.setenv("FACEOPT_GIT_REV", "abc1234")
