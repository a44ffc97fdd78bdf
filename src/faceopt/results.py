"""Claims of the thesis, recorded measurements, and the book's reproduction scorecard.

``claims.yml`` (packaged in :mod:`faceopt.resources`, ``src/faceopt/resources/claims.yml``
in a checkout) lists every quantitative claim of the thesis. Each chapter
calls :func:`record` once per claim it measures, which writes
``book/results/<chapter>.<scale>.json``. :mod:`faceopt.scorecard` joins both
into the book's pages about results (``faceopt scorecard`` on the command line).
"""
from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from faceopt.config import ALLOWED_SCALES, check_scale, paths
from faceopt.io import atomic_write_text
from faceopt.provenance import git_revision

#: An effect counts as beyond the noise when it exceeds this many standard errors.
NOISE_K = 2.0
#: Statuses the rule gives, from weakest to strongest (a claim of several parts holds only as far as its weakest).
STATUS_STRENGTH = ("not-reproduced", "direction-reproduced", "reproduced")
#: Shown for a claim nothing has measured yet, or measured only in part (its numbers are then shown).
PENDING = "pending"
#: Statuses a measurement can be recorded with: the rule's, or these two without parts.
RECORDED_STATUSES = (*STATUS_STRENGTH, "needs-real-data", PENDING)


def weakest(statuses: Iterable[str]) -> str:
    """The weakest of several statuses of the rule (``STATUS_STRENGTH`` order)."""
    return min(statuses, key=STATUS_STRENGTH.index)


@dataclass(frozen=True)
class Part:
    """One testable part of a claim, as the one status rule (:func:`decide`) reads it.

    ``effect`` is signed so that positive is the thesis's direction (a difference of means, a
    log ratio of times); ``stderr`` is its standard error, over seeds or from a bootstrap, 0 for
    an exact observation (a count, a deterministic check), and None where the noise could not be
    estimated (a single seed): such a part is never beyond the noise; ``size_met`` says whether the
    thesis's headline size is met within the tolerance the claim states, None if the claim
    states no size.
    """

    name: str
    effect: float
    stderr: float | None
    size_met: bool | None = None

    def __post_init__(self) -> None:
        bad_stderr = self.stderr is not None and not (math.isfinite(self.stderr) and self.stderr >= 0)
        if not math.isfinite(self.effect) or bad_stderr:
            raise ValueError(f"part {self.name!r}: effect must be finite and stderr finite and >= 0 (or None), "
                             f"got {self.effect!r} and {self.stderr!r}")

    @property
    def beyond_noise(self) -> bool:
        """The effect has the thesis's direction and exceeds ``NOISE_K`` standard errors (> 0 if exact;
        never when the noise was not estimated)."""
        if self.stderr is None:
            return False
        return self.effect > NOISE_K * self.stderr if self.stderr > 0 else self.effect > 0

    @property
    def status(self) -> str:
        if not self.beyond_noise:
            return "not-reproduced"
        return "direction-reproduced" if self.size_met is False else "reproduced"

    @classmethod
    def observed(cls, name: str, held: bool, size_met: bool | None = None) -> Part:
        """An exact yes/no observation (effect +1 or -1, no noise): a count, a deterministic check."""
        return cls(name, 1.0 if held else -1.0, 0.0, size_met)

    @classmethod
    def compared(cls, name: str, comparison: Any, size_met: bool | None = None) -> Part:
        """A :class:`faceopt.stats.Comparison` of A (the thesis's better side) against B over seeds;
        with one seed on either side the noise is not estimated."""
        single = min(comparison.n_a, comparison.n_b) < 2
        return cls(name, float(comparison.diff), None if single else float(comparison.stderr), size_met)

    def as_dict(self) -> dict:
        return {"name": self.name, "effect": self.effect, "stderr": self.stderr, "size_met": self.size_met}


def decide(parts: Sequence[Part]) -> str:
    """The one status rule: each part's status from its effect, noise and size; the claim's is the weakest."""
    if not parts:
        raise ValueError("decide needs at least one part; record needs-real-data or pending without parts")
    return weakest(p.status for p in parts)


def parts_table(parts: Sequence[Part]) -> list[dict]:
    """One row per part (name, effect, standard error, beyond the noise, size met, status), for a chapter's table."""
    return [{"part": p.name, "effect": p.effect, "stderr": p.stderr, "beyond noise": p.beyond_noise,
             "size met": "-" if p.size_met is None else p.size_met, "status": p.status} for p in parts]


def parts_from_json(items: Sequence[Mapping]) -> list[Part]:
    """Parts as stored in a results file."""
    return [Part(str(i["name"]), float(i["effect"]), None if i["stderr"] is None else float(i["stderr"]),
                 i.get("size_met")) for i in items]


STATUS_LEGEND = {
    "reproduced": f"every part of the claim has the thesis's direction beyond the noise (more than {NOISE_K:g} "
                  "standard errors over seeds or a bootstrap; an exact count has no noise; a single seed never "
                  "clears it) and meets the thesis's headline size within the claim's stated tolerance",
    "direction-reproduced": "the thesis's direction beyond the noise, but not its headline size",
    "not-reproduced": "no effect beyond the noise, or the opposite direction (the note says which)",
    "needs-real-data": "only testable on a dataset the user must provide; the protocol runs and is tested on "
                       "format-true files",
    "pending": "not measured yet, or measured only in part (the numbers measured so far are shown)",
}
RULE_TEXT = ("A claim is split into parts, each an effect signed so that positive is the thesis's direction, "
             "with its standard error and, where the thesis states one, whether its headline size was met. "
             "A claim with several parts takes the status of its weakest part. The rule is "
             "`faceopt.results.decide`; a test recomputes every recorded status with it.")

SECTION_TITLES = {
    "survey": "Survey of optimisation methods",
    "amphibian_detector": "AmphibianDetector",
    "margin_distillation": "MarginDistillation",
    "embedded_system": "Embedded face recognition system",
    "face_antispoofing": "Face anti-spoofing and mobile recipes",
}

_REQUIRED_FIELDS = ("id", "source", "statement", "check")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_CHAPTER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_MAX_LIST_ITEMS = 8


# ---------------------------------------------------------------------------
# claims.yml
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One quantitative claim of the thesis, as listed in the packaged ``claims.yml``."""

    id: str
    section: str
    source: str
    statement: str
    thesis: dict = field(default_factory=dict)
    check: str = ""
    headline: str = ""
    """The thesis's number in one line, as the scorecard shows it (``thesis`` holds all of them)."""
    cite: tuple[str, ...] = ()
    """Bibliography keys (book/references.bib) of the work the claim comes from, where it is not the thesis."""


def load_claims(path: str | os.PathLike | None = None) -> dict[str, Claim]:
    """Read ``claims.yml`` (default ``paths().claims``) into ``{id: Claim}``, in file order."""
    import yaml

    path = Path(path) if path is not None else paths().claims
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: claims file not found") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of section name -> list of claims")

    claims: dict[str, Claim] = {}
    for section, items in raw.items():
        if not isinstance(items, list):
            raise ValueError(f"{path}: section {section!r} must be a list of claims")
        for i, item in enumerate(items):
            where = f"{path}: section {section!r}, claim #{i + 1}"
            if not isinstance(item, dict):
                raise ValueError(f"{where}: expected a mapping with fields {', '.join(_REQUIRED_FIELDS)}")
            if item.get("id"):
                where += f" ({item['id']})"
            missing = [k for k in _REQUIRED_FIELDS if item.get(k) in (None, "")]
            if missing:
                raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
            cid = str(item["id"])
            if not _ID_RE.match(cid):
                raise ValueError(f"{where}: id {cid!r} must be letters, digits and _.+- only")
            if cid in claims:
                raise ValueError(
                    f"{path}: duplicate claim id {cid!r} (in sections {claims[cid].section!r} and {section!r})"
                )
            thesis = item.get("thesis") or {}
            if not isinstance(thesis, dict):
                raise ValueError(f"{where}: 'thesis' must be a mapping of name -> value")
            claims[cid] = Claim(
                id=cid,
                section=str(section),
                source=str(item["source"]),
                statement=str(item["statement"]),
                thesis=thesis,
                check=str(item["check"]),
                headline=str(item.get("headline") or ""),
                cite=tuple(str(k) for k in (item.get("cite") or ())),
            )
    return claims


# ---------------------------------------------------------------------------
# Recording results
# ---------------------------------------------------------------------------
def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types; numpy / torch scalars and arrays become floats / lists."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(
                f"{where} is {value!r}, which JSON cannot hold; record None or a string if that is the result"
            )
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            k = _jsonable(k, f"{where} key {k!r}")
            if isinstance(k, bool) or not isinstance(k, (str, int, float)):
                raise ValueError(f"{where} has key {k!r}; keys must be strings or numbers")
            out[str(k)] = _jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    module = type(value).__module__ or ""
    if module.startswith("torch") and hasattr(value, "tolist"):  # tensors, without importing torch
        value = value.detach().cpu() if hasattr(value, "detach") else value
        return _jsonable(value.tolist(), where)
    if module.startswith("numpy"):
        if hasattr(value, "tolist"):  # ndarray and numpy scalars (np.float32, np.int64, np.bool_, np.str_)
            return _jsonable(value.tolist(), where)
    raise ValueError(
        f"{where} has type {type(value).__name__} ({value!r:.80}), which is not JSON-serialisable; "
        "use numbers, strings, booleans, None, lists or dicts (numpy and torch values are converted)"
    )


def _check_claim_id(claim_id: str, claims: Mapping[str, Claim], claims_path: Path) -> None:
    if claim_id in claims:
        return
    by_lower = {c.lower(): c for c in claims}
    close = difflib.get_close_matches(str(claim_id).lower(), list(by_lower), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(by_lower[c]) for c in close)}?" if close else ""
    raise ValueError(f"unknown claim id {claim_id!r}: not in {claims_path} ({len(claims)} claims){hint}")


def _status_of(parts: Sequence[Part] | None, status: str | None) -> str:
    """The status to record: the rule's from ``parts``, or ``status`` when it is one the rule does not give."""
    if parts:
        if status is not None:
            raise ValueError("pass parts (the rule decides the status) or a status, not both")
        if not all(isinstance(p, Part) for p in parts):
            raise ValueError("parts must be faceopt.results.Part objects")
        return decide(parts)
    if status in STATUS_STRENGTH:
        raise ValueError(f"status {status!r} is decided by the rule: pass the claim's parts instead")
    if status not in RECORDED_STATUSES:
        raise ValueError(f"unknown status {status!r}; pass parts, or one of needs-real-data, {PENDING}")
    return status


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (POSIX) so concurrent records do not lose updates."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_results_file(path: Path) -> dict:
    """Parse and sanity-check one results file; ValueError naming it if malformed."""
    advice = "delete or regenerate it (re-run the chapter that wrote it)"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"results file {path} is not valid JSON ({exc}); {advice}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), dict):
        raise ValueError(f"results file {path} has no 'claims' object; {advice}")
    for cid, entry in doc["claims"].items():
        if not isinstance(entry, dict) or "measured" not in entry or "status" not in entry:
            raise ValueError(f"results file {path}: entry {cid!r} lacks 'measured' or 'status'; {advice}")
        if entry["status"] not in RECORDED_STATUSES:
            raise ValueError(f"results file {path}: entry {cid!r} has unknown status {entry['status']!r}; {advice}")
    return doc


def record(
    claim_id: str,
    *,
    chapter: str,
    scale: str,
    data: str,
    measured: dict,
    parts: Sequence[Part] | None = None,
    status: str | None = None,
    note: str = "",
    headline: str = "",
    results_dir: str | os.PathLike | None = None,
    claims_path: str | os.PathLike | None = None,
) -> Path:
    """Record the measurement of one claim in ``<results_dir>/<chapter>.<scale>.json``; return that path.

    ``headline`` is our result in one line, as the scorecard and the chapter's claims box show
    it beside the thesis's (for example ``"mAP 0.755 -> 0.770 (+0.015 ± 0.007)"``).

    The status comes from ``parts`` by the one rule (:func:`decide`); a chapter passes a
    ``status`` only for what the rule does not decide: needs-real-data, or pending (then
    ``measured`` holds what was measured so far).

    Other claims already in the file are kept; an earlier entry for ``claim_id`` is replaced.
    """
    claims_file = Path(claims_path) if claims_path is not None else paths().claims
    _check_claim_id(claim_id, load_claims(claims_file), claims_file)
    check_scale(scale)
    status = _status_of(parts, status)
    if not isinstance(chapter, str) or not _CHAPTER_RE.match(chapter):
        raise ValueError(f"chapter {chapter!r} must be a non-empty name of letters, digits, '_' and '-' (no dots or slashes)")
    if not isinstance(data, str) or not data.strip():
        raise ValueError("data must be a non-empty string naming the data measured on (e.g. 'embedded synthetic faces')")
    if not isinstance(note, str) or not isinstance(headline, str) or "\n" in headline:
        raise ValueError("note and headline must be strings, the headline on one line")
    if not isinstance(measured, Mapping):
        raise ValueError(f"measured must be a dict of name -> value, not {type(measured).__name__}")
    measured_json = _jsonable(measured, "measured")
    json.dumps(measured_json, allow_nan=False)  # belt and braces: fails loudly rather than writing bad JSON

    directory = Path(results_dir) if results_dir is not None else paths().results
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{chapter}.{scale}.json"
    entry = {
        "measured": measured_json,
        "status": status,
        **({"parts": [p.as_dict() for p in parts]} if parts else {}),
        "data": data,
        "note": note,
        **({"headline": headline} if headline else {}),
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_rev": git_revision(paths().root),
    }
    with _locked(directory):
        existing = _read_results_file(path)["claims"] if path.exists() else {}
        existing[claim_id] = entry
        doc = {"chapter": chapter, "scale": scale, "claims": dict(sorted(existing.items()))}
        atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return path


def load_results(results_dir: str | os.PathLike | None = None) -> list[dict]:
    """Every recorded entry, as dicts with claim_id, chapter, scale, measured, status, data, note,
    recorded_at, git_rev and path."""
    directory = Path(results_dir) if results_dir is not None else paths().results
    if not directory.is_dir():
        return []
    files = sorted(p for scale in ALLOWED_SCALES for p in directory.glob(f"*.{scale}.json"))
    entries: list[dict] = []
    for path in files:
        doc = _read_results_file(path)
        stem_chapter, _, stem_scale = path.name[: -len(".json")].rpartition(".")
        chapter = str(doc.get("chapter") or stem_chapter)
        scale = str(doc.get("scale") or stem_scale)
        for cid, e in doc["claims"].items():
            entries.append(
                {
                    "claim_id": cid,
                    "chapter": chapter,
                    "scale": scale,
                    "measured": e["measured"],
                    "status": e["status"],
                    "parts": list(e.get("parts", [])),
                    "data": str(e.get("data", "")),
                    "note": str(e.get("note", "")),
                    "headline": str(e.get("headline", "")),
                    "recorded_at": str(e.get("recorded_at", "")),
                    "git_rev": str(e.get("git_rev", "unknown")),
                    "path": str(path),
                }
            )
    return entries


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------
def format_number(x: float | int) -> str:
    """Compact number: ints as is, floats to 4 significant digits (no exponent for 1e4..1e9)."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    if 1e4 <= abs(x) < 1e9:
        return f"{x:.0f}"
    return f"{x:.4g}"


def format_value(value: Any) -> str:
    """Compact one-line text of a (nested) value: ``a.b=1.234; a.c=5; d=[1, 2]``."""
    if isinstance(value, Mapping):
        if not value:
            return ""
        parts = []
        for k, v in _flatten(value):
            parts.append(f"{k}={_format_leaf(v)}")
        return "; ".join(parts)
    return _format_leaf(value)


def _flatten(d: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _format_leaf(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, (bool, int, float)):
        return format_number(v)
    if isinstance(v, Mapping):
        return "{" + format_value(v) + "}"
    if isinstance(v, (list, tuple)):
        items = [_format_leaf(x) for x in v]
        if len(items) > _MAX_LIST_ITEMS:
            items = items[: _MAX_LIST_ITEMS - 2] + ["…", items[-1]]
            return "[" + ", ".join(items) + f"] (n={len(v)})"
        return "[" + ", ".join(items) + "]"
    return str(v)
