"""Code fingerprints: comments and docstrings do not count, code does, f-strings are one token."""
from __future__ import annotations

import pytest

from faceopt.fingerprint import code_fingerprint, module_file, source_fingerprint

SRC = '''"""Module docstring."""
import math


def area(r):
    """Docstring."""
    # a comment
    return math.pi * r ** 2  # trailing comment


def label(x):
    return f"{x:.2f} and {f'{x}'}"
'''


def test_comments_docstrings_and_blank_lines_do_not_count() -> None:
    other = (SRC.replace('"""Docstring."""', '"""Another docstring,\n    on two lines."""')
             .replace("# a comment", "# another comment\n\n").replace('"""Module docstring."""', "# no docstring"))
    assert source_fingerprint(other) == source_fingerprint(SRC)


@pytest.mark.parametrize("change", [("** 2", "** 3"), ("math.pi", "3.14159"), ("{x:.2f}", "{x:.3f}"),
                                    ("f'{x}'", "f'{x!r}'"), ("return math", "    return math")])
def test_any_change_to_code_moves_it(change) -> None:
    old, new = change
    changed = SRC.replace(old, new)
    if old == "return math":   # re-indentation that breaks the code is not code any more
        with pytest.raises((SyntaxError, IndentationError)):
            source_fingerprint(changed)
        return
    assert source_fingerprint(changed) != source_fingerprint(SRC)


def test_a_string_that_is_not_a_docstring_counts() -> None:
    assert source_fingerprint("x = 'a'\n") != source_fingerprint("x = 'b'\n")


def test_code_fingerprint_over_modules() -> None:
    a = code_fingerprint(["faceopt.io"])
    assert a == code_fingerprint(["faceopt.io"]) and len(a) == 64
    assert a != code_fingerprint(["faceopt.io", "faceopt.fingerprint"])
    assert module_file("faceopt.io").name == "io.py"
    with pytest.raises(ValueError, match="no Python source"):
        module_file("faceopt.not_a_module")


def test_definition_fingerprints_key_each_top_level_statement() -> None:
    from faceopt.fingerprint import definition_fingerprints

    defs = definition_fingerprints(SRC + "\nX = 1\nX = 2\n")
    assert list(defs) == ["import math", "area", "label", "= X", "= X#2"]
    other = definition_fingerprints(SRC.replace("** 2", "** 3").replace("# a comment", "# changed"))
    assert [k for k in other if other[k] != defs[k]] == ["area"]


def test_same_results_entries_are_current_and_evidenced() -> None:
    """Each entry's module still has the listed text, and its evidence shows the same results for that text."""
    import json
    from pathlib import Path

    from faceopt.fingerprint import SAME_RESULTS, _file_fingerprint, stands_for

    root = Path(__file__).resolve().parents[1]
    for (module, new), (old, evidence) in SAME_RESULTS.items():
        assert _file_fingerprint(module_file(module)) == new, (
            f"{module} changed after its SAME_RESULTS entry: remove the entry (the caches it kept become stale) "
            f"or make new evidence with .ci/same_results.py")
        assert stands_for(module, new) == old
        record = json.loads((root / evidence).read_text())
        assert (record["module"], record["new_fingerprint"], record["old_fingerprint"]) == (module, new, old)
        assert record["same"] and not record["definitions"]["changed"]
        assert all(r["identical"] for r in record["runs"].values()) and len(record["runs"]) >= 4


def test_same_results_script_compares_definitions_and_trainings(tmp_path) -> None:
    """``.ci/same_results.py`` against HEAD: every definition unchanged, every training bit-identical."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("needs the git checkout")
    out = tmp_path / "evidence.json"
    done = subprocess.run([sys.executable, str(root / ".ci" / "same_results.py"), "faceopt.train", "--old-rev", "HEAD",
                           "--out", str(out)], capture_output=True, text=True, cwd=root, timeout=600)
    record = json.loads(out.read_text())
    if record["old_fingerprint"] == record["new_fingerprint"]:   # train.py as committed (always so in CI)
        assert record["definitions"]["changed"] == [] and "train" in record["definitions"]["unchanged"]
        assert done.returncode == 0 and record["same"], done.stdout + done.stderr
    assert {"from scratch: weights", "stopped at 5, resumed: weights"} <= set(record["runs"])
    assert all(r["new"] == r["new again"] for r in record["runs"].values())   # the determinism control
