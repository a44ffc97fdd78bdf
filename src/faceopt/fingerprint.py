"""Fingerprints of source code, so that a cached result names the code that made it.

A cached training run is only as good as the code that produced it: a run folder keyed by
its settings alone silently serves numbers from older code. :func:`code_fingerprint`
hashes the *tokens* of a list of modules, so that editing a comment or a docstring keeps
the fingerprint while any change to what runs moves it. The tokens are hashed the same
way on every Python from 3.10 on (an f-string is one token, whatever the tokenizer says),
so a run made on a GPU machine's Python is recognised on a laptop's.

A module can change without changing what any cached run computed: code that only a resumed or
damaged run reaches moves out, names are re-imported. :data:`SAME_RESULTS` lists such reviewed
changes: a module whose current text has the listed fingerprint counts as the text it replaced,
so the caches made by that text stay valid. Each entry names its evidence (a file written by
``.ci/same_results.py``: every top-level definition compared token by token, and trainings run
with the old and the new code, bit for bit); any later edit of the module gives a new
fingerprint that no entry lists, and the caches go stale as usual.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import tokenize
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SAME_RESULTS", "source_fingerprint", "code_fingerprint", "definition_fingerprints", "module_file",
           "stands_for"]

SAME_RESULTS: dict[tuple[str, str], tuple[str, str]] = {
    # (module, fingerprint of its current text): (fingerprint of the text it replaced, evidence)
    # Issue 15: checkpoint reading and checking moved to faceopt.checkpoint; the loop is unchanged.
    ("faceopt.train", "6ea79153ffefb21903b2b1bd5bf29d491387409b721a2d0b0e06280acf082870"):
        ("bfb3904a4a257ba9647a3dcd0d406e14ee4ce815bd2c2f6dbb2be502ea1dd2ea",
         "book/results/same_results/faceopt.train.json"),
}
"""Reviewed changes that keep what every cached run computed (see the module docstring)."""

_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING}
_TYPE_ONLY = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)   # Python 3.12+
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


def _docstring_starts(tree: ast.AST) -> set[tuple[int, int]]:
    starts = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                starts.add((first.lineno, first.col_offset))
    return starts


def _tokens(text: str) -> Iterable[tuple[str, str]]:
    """``(kind, text)`` of every token that decides behaviour, f-strings whole."""
    lines = text.splitlines(keepends=True)

    def span(start: tuple[int, int], end: tuple[int, int]) -> str:
        (r0, c0), (r1, c1) = start, end
        if r0 == r1:
            return lines[r0 - 1][c0:c1]
        return lines[r0 - 1][c0:] + "".join(lines[r0:r1 - 1]) + lines[r1 - 1][:c1]

    docstrings = _docstring_starts(ast.parse(text))
    depth, fstart, after_docstring = 0, None, False
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if _FSTRING_START is not None and tok.type == _FSTRING_START:
            if depth == 0:
                fstart = tok.start
            depth += 1
            continue
        if depth:
            if tok.type == _FSTRING_END:
                depth -= 1
                if depth == 0:
                    assert fstart is not None  # set by the matching FSTRING_START
                    yield "STRING", span(fstart, tok.end)
            continue
        if tok.type in _SKIP:
            continue
        if tok.type == tokenize.STRING and tok.start in docstrings:
            after_docstring = True
            continue
        if after_docstring and tok.type == tokenize.NEWLINE:   # the docstring's statement ends
            after_docstring = False
            continue
        after_docstring = False
        name = tokenize.tok_name[tok.type]
        yield name, "" if tok.type in _TYPE_ONLY else tok.string


def source_fingerprint(text: str) -> str:
    """SHA-256 (hex) of the tokens of Python source ``text``, without comments and docstrings."""
    h = hashlib.sha256()
    for kind, value in _tokens(text):
        h.update(f"{kind}\0{value}\0".encode())
    return h.hexdigest()


def module_file(name: str) -> Path:
    """The source file of importable module ``name`` (a clear error if it has none)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ValueError(f"module {name!r} has no Python source file to fingerprint")
    return Path(spec.origin)


_CACHE: dict[tuple[str, int, int], str] = {}


def _file_fingerprint(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        _CACHE[key] = source_fingerprint(path.read_text(encoding="utf-8"))
    return _CACHE[key]


def stands_for(module: str, fingerprint: str) -> str:
    """The fingerprint that ``module``'s text with ``fingerprint`` counts as (:data:`SAME_RESULTS`), else itself."""
    return SAME_RESULTS.get((module, fingerprint), (fingerprint, ""))[0]


def code_fingerprint(modules: Iterable[str]) -> str:
    """One SHA-256 (hex) over the named modules' :func:`source_fingerprint` s (after :func:`stands_for`), in order."""
    h = hashlib.sha256()
    for name in modules:
        h.update(name.encode() + b"\0" + stands_for(name, _file_fingerprint(module_file(name))).encode())
    return h.hexdigest()


def definition_fingerprints(text: str) -> dict[str, str]:
    """:func:`source_fingerprint` of each top-level statement of ``text``, keyed by what it defines.

    Functions and classes are keyed by name (decorators included in their text), assignments by
    their targets, imports and anything else by their own first line; a key that repeats gets
    ``#2``, ``#3`` appended. Bare strings (the module docstring) are left out.
    """
    lines = text.splitlines(keepends=True)
    out: dict[str, str] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue   # the module docstring (and any bare string): not code
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        assert node.end_lineno is not None  # set by ast.parse
        segment = "".join(lines[first - 1:node.end_lineno])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            key = node.name
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            key = "= " + ", ".join(ast.unparse(t) for t in targets)
        else:
            key = lines[first - 1].strip()
        name, n = key, 1
        while name in out:
            n += 1
            name = f"{key}#{n}"
        out[name] = source_fingerprint(segment)
    return out
