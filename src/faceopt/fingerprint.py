"""Fingerprints of source code, so that a cached result names the code that made it.

A cached training run is only as good as the code that produced it: a run folder keyed by
its settings alone silently serves numbers from older code. :func:`code_fingerprint`
hashes the *tokens* of a list of modules, so that editing a comment or a docstring keeps
the fingerprint while any change to what runs moves it. The tokens are hashed the same
way on every Python from 3.10 on (an f-string is one token, whatever the tokenizer says),
so a run made on a GPU machine's Python is recognised on a laptop's.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import tokenize
from collections.abc import Iterable
from pathlib import Path

__all__ = ["source_fingerprint", "code_fingerprint", "module_file"]

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


def code_fingerprint(modules: Iterable[str]) -> str:
    """One SHA-256 (hex) over the named modules' :func:`source_fingerprint` s, in the given order."""
    h = hashlib.sha256()
    for name in modules:
        h.update(name.encode() + b"\0" + _file_fingerprint(module_file(name)).encode())
    return h.hexdigest()
