"""How the golden smoke notebooks are compared, so that they hold on any x86-64 processor.

Floating-point kernels differ between processors (AVX2, AVX-512, AMX; oneDNN and MKL
paths), so a training run on one CPU does not give the same bits on another, and a
chaotic training trajectory turns a last-bit difference into a different model. A
golden cell is therefore one of three kinds:

* **exact** (no tag): its output does not depend on floating-point training or timing
  (shapes, counts, configurations, hand-computed values, seeded data, text). nbval
  compares it exactly.
* **machine-dependent** (tag ``machine-dependent``): it prints numbers that come out of a
  floating-point training. nbval compares its text with every number, every status word
  and every noise verdict masked (:func:`mask`), so its structure (rows, columns, labels,
  number of outputs) must still match exactly. The numbers themselves are checked where
  they matter, the claims the chapter records, against ``tolerances.yml``.
* **timing** (tag ``nbval-ignore-output``): it prints wall times; nothing of it is compared.

``tests/test_goldens.py`` pins how many cells of each kind every golden has, so a new
ignored or masked cell is a visible decision, not an accident.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

MACHINE_DEPENDENT = "machine-dependent"
TIMING = "nbval-ignore-output"
GOLDEN = Path(__file__).resolve().parent / "golden"
TOLERANCES = GOLDEN / "tolerances.yml"

_NUMBER = re.compile(r"(?<![\w.])[-+\u2212]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?")
_STATUS = re.compile(r"\b(?:direction-reproduced|not-reproduced|reproduced|needs-real-data)\b")
_VERDICT = re.compile(r"\b(?:beyond|within) the (?:seed )?noise\b")
_BOOL = re.compile(r"\b(?:True|False)\b")
_SPACES = re.compile(r"[ \t]+")


def mask(text: str) -> str:
    """``text`` with numbers, statuses, noise verdicts and booleans replaced by placeholders and
    runs of blanks collapsed (a table's column widths follow the widths of its numbers)."""
    text = _STATUS.sub("<status>", text)
    text = _VERDICT.sub("<verdict> the noise", text)
    text = _BOOL.sub("<bool>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACES.sub(" ", text)


def cell_tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


# --------------------------------------------------------------------------- #
# Recorded smoke claims against the golden ones
# --------------------------------------------------------------------------- #
def load_tolerances(path: Path = TOLERANCES) -> dict[str, dict[str, dict]]:
    """chapter -> claim id -> {numbers, status, why}, checked for a complete, known vocabulary."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for chapter, claims in doc.items():
        for claim_id, rule in claims.items():
            where = f"{path}: {chapter} / {claim_id}"
            if not isinstance(rule, dict) or not rule.get("why"):
                raise ValueError(f"{where}: every tolerance needs a 'why'")
            for numbers in (rule.get("numbers", "exact"), *(rule.get("keys") or {}).values()):
                if not (numbers in ("exact", "timing") or (isinstance(numbers, dict) and set(numbers) <= {"abs", "rel"})):
                    raise ValueError(f"{where}: numbers must be exact, timing or {{abs: x, rel: y}}, not {numbers!r}")
            if rule.get("status", "exact") not in ("exact", "free"):
                raise ValueError(f"{where}: status must be exact or free")
    return doc


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def compare_claim(measured: Any, golden: Any, status: str, golden_status: str, rule: Mapping) -> list[str]:
    """What differs between a recorded smoke claim and its golden beyond ``rule``; empty if nothing.

    ``rule``: ``numbers`` (exact | timing | {abs, rel}) for every leaf of ``measured``, ``keys``
    overriding it for single leaves (dotted paths), ``status`` (exact | free: a status word may
    differ, in the claim's status and in its leaves).
    """
    free_status = rule.get("status", "exact") == "free"
    per_key = rule.get("keys") or {}
    got, want = dict(_leaves(measured)), dict(_leaves(golden))
    problems = []
    if set(got) != set(want):
        problems.append(f"measured keys differ: missing {sorted(set(want) - set(got))}, "
                        f"new {sorted(set(got) - set(want))}")
    if not free_status and status != golden_status:
        problems.append(f"status {status!r}, golden {golden_status!r}")
    for key in sorted(set(got) & set(want)):
        a, b = got[key], want[key]
        numbers = per_key.get(key, rule.get("numbers", "exact"))
        is_num = isinstance(a, (int, float)) and not isinstance(a, bool)
        if numbers == "timing":
            continue  # a timing claim: only its keys are compared
        if is_num and isinstance(b, (int, float)) and not isinstance(b, bool):
            if numbers == "exact":
                ok = a == b
            else:
                ok = math.isclose(a, b, rel_tol=numbers.get("rel", 0.0), abs_tol=numbers.get("abs", 0.0))
            if not ok:
                problems.append(f"{key} = {a!r}, golden {b!r} (allowed: {numbers})")
        elif isinstance(a, str) and isinstance(b, str) and free_status and _STATUS.fullmatch(a) and _STATUS.fullmatch(b):
            continue
        elif numbers == "timing":
            continue  # a timing claim may also name a different fastest configuration
        elif a != b:
            problems.append(f"{key} = {a!r}, golden {b!r}")
    return problems
