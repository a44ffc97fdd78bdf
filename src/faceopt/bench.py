"""``faceopt bench``: benchmarks that measure and write JSON; they assert nothing.

* ``faceopt bench cost``: parameters, MACs, size and latency of zoo models at 112x112 (page 01).
* ``faceopt bench system``: the end-to-end system on a real photo at the thesis's Table 9 frame sizes,
  one face detected, aligned from the original frame and embedded (the ratio to the smallest frame
  is the number to compare between machines).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from faceopt.io import atomic_write_text
from faceopt.models import MODEL_NAMES
from faceopt.provenance import machine_description


def _cost(args: argparse.Namespace) -> dict:
    from faceopt.system.cost import cpu_peak, matmul_gflops, measure_model

    rows = [measure_model(m, threads=args.threads, repeats=args.repeats, warmup=args.warmup,
                          onnx=not args.no_onnx) for m in args.models]
    peak = cpu_peak()
    return {"cpu": asdict(peak) | {"peak_gflops": peak.gflops()},
            "matmul_gflops": {t: matmul_gflops(threads=t) for t in args.threads},
            "models": [r.as_row() | {"latency": {k: asdict(v) for k, v in r.latency.items()}} for r in rows]}


def _system(args: argparse.Namespace) -> dict:
    import cv2
    import torch

    from faceopt.assets import asset_path
    from faceopt.detection.blazeface import BlazeFace
    from faceopt.models import get_model
    from faceopt.system.benchmark import TABLE9_SIZES, resolution_times
    from faceopt.system.embedders import TorchEmbedder
    from faceopt.system.pipeline import FacePipeline

    torch.set_num_threads(args.threads)
    photo_path = args.photo or asset_path("obama.jpg")
    photo = cv2.imread(str(photo_path))
    if photo is None:
        raise ValueError(f"{photo_path}: not an image OpenCV can read")
    pipeline = FacePipeline(BlazeFace.from_tflite(), TorchEmbedder(get_model(args.embedder)))
    return {"machine": machine_description(), "threads": args.threads, "embedder": args.embedder,
            "photo": str(photo_path), "table9": resolution_times(pipeline, photo, TABLE9_SIZES, repeats=args.repeats)}


def _search(args: argparse.Namespace) -> dict:
    from faceopt.system.search import benchmark_search

    return benchmark_search(args.rows, args.dim, args.queries, args.k, batch=args.batch, threads=args.threads,
                            repeats=args.repeats)


def cli_main(argv: list[str]) -> int:
    """Parse ``faceopt bench`` arguments, run the benchmark, print or write its JSON."""
    parser = argparse.ArgumentParser(prog="faceopt bench", description="benchmarks; JSON out")
    sub = parser.add_subparsers(dest="bench", required=True)
    cost = sub.add_parser("cost", help="parameters, MACs, size and latency of zoo models at 112x112")
    cost.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES, metavar="NAME")
    cost.add_argument("--repeats", type=int, default=20)
    cost.add_argument("--warmup", type=int, default=3)
    cost.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    cost.add_argument("--no-onnx", action="store_true")
    cost.set_defaults(run=_cost)
    system = sub.add_parser("system", help="detect + align + embed one face at the thesis's Table 9 frame sizes")
    system.add_argument("--photo", type=Path, default=None, help="a photo with one face (default: asset obama.jpg)")
    system.add_argument("--embedder", default="mobilefacenet_relu512", choices=MODEL_NAMES)
    system.add_argument("--repeats", type=int, default=10)
    system.add_argument("--threads", type=int, default=1)
    system.set_defaults(run=_system)
    search = sub.add_parser("search", help="exact 1:N top-k search: numpy float32, faiss IndexFlatIP, ExactSearch")
    search.add_argument("--rows", type=int, default=1_000_000, help="gallery rows (1,000,000)")
    search.add_argument("--dim", type=int, default=512)
    search.add_argument("--queries", type=int, default=64)
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--batch", type=int, default=64, help="queries per search call (1: one at a time)")
    search.add_argument("--threads", type=int, default=None, help="threads of torch, faiss and BLAS (default: theirs)")
    search.add_argument("--repeats", type=int, default=3)
    search.set_defaults(run=_search)
    for p in (cost, system, search):
        p.add_argument("--json", type=Path, default=None, help="write results here (default: stdout)")
    args = parser.parse_args(argv)
    text = json.dumps(args.run(args), indent=2)
    if args.json:
        atomic_write_text(args.json, text + "\n")
        print(f"wrote {args.json}")
    else:
        sys.stdout.write(text + "\n")
    return 0
