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
