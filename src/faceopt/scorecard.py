"""The book's pages about results: the scorecard, the intro's results at a glance, each chapter's claims box.

All three are MyST markdown made from the claims (``claims.yml``, :func:`faceopt.results.load_claims`)
and the recorded results (:func:`faceopt.results.load_results`); none of them decides a
status (that is :func:`faceopt.results.decide`, applied when a chapter records).

* :func:`render_markdown` / :func:`render_scorecard`: ``book/scorecard.md``, one block per claim:
  its status as a coloured badge, the thesis's number and ours in one line, the page that
  measures it, and the measured values, data and notes folded in a dropdown. It reads on a
  phone: no wide table.
* :func:`render_glance`: ``book/glance.md``, included by the intro: the count of claims by
  status and one line per chapter with the statuses of its claims.
* :func:`render_claims_box`: the box the book build puts at the top of each chapter page.

``faceopt scorecard`` writes the first two from the committed full-scale results.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from faceopt.config import check_scale, paths
from faceopt.io import atomic_write_text
from faceopt.results import (
    PENDING,
    RULE_TEXT,
    SECTION_TITLES,
    STATUS_LEGEND,
    Claim,
    format_value,
    load_claims,
    load_results,
)

#: The sphinx-design badge of each status (green, blue, red, yellow, grey).
BADGE = {"reproduced": "bdg-success", "direction-reproduced": "bdg-info", "not-reproduced": "bdg-danger",
         "needs-real-data": "bdg-warning", PENDING: "bdg-secondary"}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>$|~])")
_MAX_HEADLINE = 160
_DASH = "—"


def badge(status: str) -> str:
    """The status as a coloured MyST badge."""
    return f"{{{BADGE[status]}}}`{status}`"


def claim_label(claim_id: str) -> str:
    """The scorecard's target name of a claim (``T3-map`` -> ``claim-t3-map``), for ``{ref}`` links."""
    return "claim-" + re.sub(r"[^a-z0-9]+", "-", claim_id.lower()).strip("-")


def claim_ref(claim_id: str) -> str:
    """A link to the claim's block on the scorecard, from any page."""
    return f"{{ref}}`{claim_id} <{claim_label(claim_id)}>`"


def page_link(chapter: str, prefix: str = "chapters/") -> str:
    """A link to a chapter page, named by its page number (``page 03``)."""
    return f"{{doc}}`page {chapter[:2]} <{prefix}{chapter}>`"


def escape(text: Any) -> str:
    """Text safe inside MyST prose: one line, markdown and math specials escaped."""
    s = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", s) if s else _DASH


def _short(text: str) -> str:
    return text if len(text) <= _MAX_HEADLINE else text[: _MAX_HEADLINE - 1] + "…"


def _latest(entries: list[dict]) -> dict | None:
    """The latest of several entries for one (claim, scale); names the other chapters in its note."""
    if not entries:
        return None
    entries = sorted(entries, key=lambda e: e["recorded_at"])
    chosen = dict(entries[-1])
    others = sorted({e["chapter"] for e in entries[:-1]} - {chosen["chapter"]})
    if others:
        chosen["note"] = f"{chosen['note']} (latest of several records; also recorded by {', '.join(others)})".strip()
    return chosen


def scorecard_table(claims: Mapping[str, Claim], results: Iterable[dict], *,
                    scales: Sequence[str] = ("full", "smoke")) -> list[dict]:
    """One row per claim (claims.yml order): ``id``, ``claim`` and, per scale, ``<scale>`` = the recorded
    entry or None, ``<scale>_status`` (or 'pending') and ``<scale>_measured`` (compact text)."""
    for s in scales:
        check_scale(s)
    grouped: dict[tuple[str, str], list[dict]] = {}
    for entry in results:
        grouped.setdefault((entry["claim_id"], entry["scale"]), []).append(entry)
    rows = []
    for cid, claim in claims.items():
        row: dict[str, Any] = {"id": cid, "claim": claim}
        for s in scales:
            e = _latest(grouped.get((cid, s), []))
            row[s] = e
            row[f"{s}_status"] = e["status"] if e else PENDING
            row[f"{s}_measured"] = format_value(e["measured"]) if e else ""
        rows.append(row)
    return rows


def thesis_line(claim: Claim) -> str:
    """The thesis's number in one line: the claim's ``headline``, else its values in compact form."""
    return escape(_short(claim.headline or format_value(claim.thesis) or _DASH))


def ours_line(entry: Mapping[str, Any] | None) -> str:
    """Our result in one line: the recorded ``headline``, else the measured values in compact form."""
    if entry is None:
        return "not measured yet"
    return escape(_short(entry.get("headline") or format_value(entry["measured"]) or _DASH))


def _source(claim: Claim) -> str:
    cites = f" {{cite:p}}`{','.join(claim.cite)}`" if claim.cite else ""
    return escape(claim.source) + cites


def _claim_block(row: Mapping[str, Any], scales: Sequence[str]) -> list[str]:
    claim: Claim = row["claim"]
    main = scales[0]
    entry = row[main]
    where = f" ({page_link(entry['chapter'])})" if entry else ""
    lines = [f"({claim_label(claim.id)})=", "",
             f"{badge(row[f'{main}_status'])} **{claim.id}**, {_source(claim)}: {escape(claim.statement)}", "",
             f"*Thesis:* {thesis_line(claim)}. *Ours:* {ours_line(entry)}{where}."]
    for s in scales[1:]:
        if row[s] is not None:
            lines[-1] += f" *{s.capitalize()} run:* {badge(row[f'{s}_status'])} {ours_line(row[s])}."
    details = [f"- **checked**: {escape(claim.check)}"]
    for s in scales:
        e = row[s]
        if e is None:
            continue
        label = "" if len(scales) == 1 else f" ({s})"
        details += [f"- **measured{label}**: {escape(row[f'{s}_measured'])}",
                    f"- **data{label}**: {escape(e['data'])}"]
        if e["note"]:
            details.append(f"- **note{label}**: {escape(e['note'])}")
        details.append(f"- **recorded{label}**: {escape(e['recorded_at'][:10])}, revision {escape(e['git_rev'])}")
    lines += ["", ":::{dropdown} Measured values, data and notes", *details, ":::", ""]
    return lines


def _counts_line(rows: Sequence[Mapping[str, Any]], scale: str) -> str:
    counts = Counter(r[f"{scale}_status"] for r in rows)
    return " · ".join(f"{badge(s)} {counts[s]}" for s in STATUS_LEGEND if counts[s])


def render_markdown(claims: Mapping[str, Claim], results: Sequence[dict], *, scales: Sequence[str] = ("full", "smoke"),
                    revision: str | None = None, day: str | None = None) -> str:
    """The scorecard page as MyST markdown text (``scales[0]`` is the one whose statuses lead).

    ``revision`` and ``day`` default to those of the latest recorded result, so the page is a
    function of its inputs (the committed page can be checked for staleness).
    """
    rows = scorecard_table(claims, results, scales=scales)
    measured = sum(r[scales[0]] is not None for r in rows)
    latest = max((e for e in results if e["scale"] == scales[0]), key=lambda e: e["recorded_at"], default=None)
    revision = revision or (latest["git_rev"] if latest else "none")
    day = day or (latest["recorded_at"][:10] if latest else "never")
    lines = [
        "# Reproduction scorecard", "",
        "% Generated by `faceopt scorecard` from src/faceopt/resources/claims.yml and book/results/*.json; "
        "do not edit by hand.", "",
        "Every quantitative claim of the thesis and of its companion works, the thesis's number beside ours, "
        f"and a status decided by one rule. Made from the results recorded up to {day} (latest at revision "
        f"{escape(revision)}): "
        f"{measured} of {len(rows)} claims measured at {scales[0]} scale."
        + (" A smoke run's status and result follow each claim's; at smoke scale the sizes only show that the "
           "code runs end to end." if len(scales) > 1 else ""), "",
        _counts_line(rows, scales[0]), "",
        ":::{dropdown} How a status is decided",
        *[f"- {badge(s)}: {STATUS_LEGEND[s]}" for s in STATUS_LEGEND], "", RULE_TEXT, ":::", "",
    ]
    sections: dict[str, list[dict]] = {}
    for r in rows:
        sections.setdefault(r["claim"].section, []).append(r)
    for section, srows in sections.items():
        lines += [f"## {SECTION_TITLES.get(section, section.replace('_', ' ').capitalize())}", ""]
        for r in srows:
            lines += _claim_block(r, scales)
    orphans = sorted({e["claim_id"] for e in results if e["claim_id"] not in claims})
    if orphans:
        lines += ["## Results without a claim", "",
                  "These ids have recorded results but are no longer in claims.yml; delete their entries or restore "
                  "the claims: " + ", ".join(escape(o) for o in orphans) + "."]
    return "\n".join(lines).rstrip() + "\n"


def render_glance(claims: Mapping[str, Claim], results: Sequence[dict], chapters: Mapping[str, str], *,
                  scale: str = "full") -> str:
    """The intro's results at a glance: counts by status, then one line per chapter (``chapters``: stem -> title)."""
    rows = scorecard_table(claims, results, scales=(scale,))
    by_chapter: dict[str, list[dict]] = {}
    for r in rows:
        if r[scale] is not None:
            by_chapter.setdefault(r[scale]["chapter"], []).append(r)
    measured = sum(len(v) for v in by_chapter.values())
    lines = [f"Of the {len(rows)} claims, {measured} are measured so far: {_counts_line(rows, scale)}. "
             "The {doc}`scorecard <scorecard>` has each one with the thesis's number beside ours.", ""]
    for stem, title in chapters.items():
        found = by_chapter.get(stem, [])
        claims_text = ", ".join(f"{claim_ref(r['id'])} {badge(r[f'{scale}_status'])}" for r in found) or "no claims"
        lines.append(f"- {page_link(stem)}, {escape(title)}: {claims_text}")
    return "\n".join(lines) + "\n"


def render_claims_box(chapter: str, claims: Mapping[str, Claim], results: Sequence[dict], *, scale: str) -> str:
    """The box at the top of a chapter page: each claim it measures, the thesis's number and ours, the status."""
    rows = [r for r in scorecard_table(claims, results, scales=(scale,))
            if r[scale] is not None and r[scale]["chapter"] == chapter]
    if not rows:
        return ""
    items = [f"- {badge(r[f'{scale}_status'])} {claim_ref(r['id'])}: *thesis* {thesis_line(r['claim'])}; "
             f"*ours* {ours_line(r[scale])}" for r in rows]
    scope = "this page's run" if scale == "full" else f"this {scale}-scale run (sizes too small to test a claim)"
    return "\n".join([":::{admonition} The claims this page tests", ":class: tip", "",
                      f"Statuses of {scope}, by the one rule of the {{doc}}`scorecard <../scorecard>`:", "",
                      *items, ":::"]) + "\n"


def render_scorecard(out_path: str | Path | None = None, *, scales: Sequence[str] = ("full", "smoke"),
                     results_dir: str | Path | list[str | Path] | None = None,
                     claims_path: str | Path | None = None) -> Path:
    """Write the scorecard page (default ``book/scorecard.md``) atomically and return its path.

    ``results_dir`` may be a list of folders: the book's smoke build reads the committed
    full-scale results and the smoke results of the same run side by side.
    """
    out = Path(out_path) if out_path is not None else paths().book / "scorecard.md"
    dirs = results_dir if isinstance(results_dir, list) else [results_dir]
    results = [entry for d in dirs for entry in load_results(d)]
    atomic_write_text(out, render_markdown(load_claims(claims_path), results, scales=scales))
    return out


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``python -m faceopt.scorecard [--out PATH] [--results-dir DIR] [--claims PATH]``."""
    ap = argparse.ArgumentParser(prog="python -m faceopt.scorecard", description="Render the reproduction scorecard.")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--results-dir", type=Path, default=None)
    ap.add_argument("--claims", type=Path, default=None)
    args = ap.parse_args(argv)
    try:
        path = render_scorecard(args.out, scales=("full",), results_dir=args.results_dir, claims_path=args.claims)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli_main())
