#!/usr/bin/env python3
"""Evidence that a changed module computes what its old text computed, for faceopt.fingerprint.SAME_RESULTS.

    python .ci/same_results.py faceopt.train --old-rev 331d528 --moved-to faceopt.checkpoint \
        --out book/results/same_results/faceopt.train.json

1. Static: every top-level definition of the old and the new text, compared by its token
   fingerprint (comments and docstrings do not count); definitions that moved to
   ``--moved-to`` are compared with their new selves (names aside).
2. Dynamic: the same trainings run with the old tree (``git archive`` of ``--old-rev``) and the
   new one, each in its own process with one thread: the digits demo from scratch with
   checkpoints, and the same run stopped at step 5 and resumed. Weights (``state_checksum``),
   loss histories and the checkpoints' tensors must agree bit for bit; the new tree runs twice
   as a control for determinism.

The JSON says ``"same": true`` only if nothing differs but the listed removals and additions.
Prints the table; exits 1 when the texts are not shown to give the same results.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceopt.fingerprint import definition_fingerprints, module_file, source_fingerprint  # noqa: E402
from faceopt.io import atomic_write_text  # noqa: E402

BATTERY = r'''
import hashlib, json, sys, tempfile
from pathlib import Path
import torch
from faceopt.config import seed_everything
from faceopt.data.digits import load_digits_split
from faceopt.train import DemoNet, TrainConfig, load_checkpoint, state_checksum, train

torch.set_num_threads(1)
split, _ = load_digits_split(size=16, channels=1)
data = torch.utils.data.TensorDataset(split.x[:320], split.y[:320])

def digest(obj):
    h = hashlib.sha256()
    def walk(o, key):
        if isinstance(o, torch.Tensor):
            h.update(key.encode() + str(o.dtype).encode() + str(tuple(o.shape)).encode())
            h.update(o.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(o, dict):
            for k in o:
                if k != "config":     # holds the run's own folder
                    walk(o[k], f"{key}/{k}")
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, f"{key}/{i}")
        else:
            h.update(f"{key}={o!r}".encode())
    walk(obj, "")
    return h.hexdigest()

def run(folder, steps, seed=3):
    seed_everything(seed, threads=None)
    model = DemoNet()
    cfg = TrainConfig(max_steps=steps, batch_size=32, lr=0.1, milestones=(7,), seed=seed,
                      checkpoint_dir=str(folder), checkpoint_every=5, log_every=1, progress=False)
    r = train(model, data, cfg)
    return model, r

out = {}
with tempfile.TemporaryDirectory() as tmp:
    model, r = run(Path(tmp) / "whole", 12)
    out["from scratch: weights"] = state_checksum(model)
    out["from scratch: loss history"] = repr(r.loss_history)
    out["from scratch: checkpoint"] = digest(load_checkpoint(Path(tmp) / "whole" / "last.pt"))
    run(Path(tmp) / "resumed", 5)
    model, r = run(Path(tmp) / "resumed", 12)
    out["stopped at 5, resumed: weights"] = state_checksum(model)
    out["stopped at 5, resumed: loss history"] = repr(r.loss_history)
    out["stopped at 5, resumed: resumed from"] = r.resumed_from
    out["stopped at 5, resumed: checkpoint"] = digest(load_checkpoint(Path(tmp) / "resumed" / "last.pt"))
json.dump(out, sys.stdout)
'''


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True).stdout


def _battery(src: Path) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", BATTERY], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the training battery failed with {src}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("module", help="the changed module, e.g. faceopt.train")
    p.add_argument("--old-rev", required=True, help="git revision of the old text (the one the caches were made with)")
    p.add_argument("--moved-to", action="append", default=[], help="module that took over removed definitions")
    p.add_argument("--out", required=True, type=Path, help="JSON evidence to write")
    a = p.parse_args(argv)

    rel = module_file(a.module).resolve().relative_to(ROOT)
    old_text = _git("show", f"{a.old_rev}:{rel.as_posix()}").decode()
    new_text = module_file(a.module).read_text(encoding="utf-8")
    old_defs, new_defs = definition_fingerprints(old_text), definition_fingerprints(new_text)
    changed = sorted(k for k in old_defs.keys() & new_defs.keys() if old_defs[k] != new_defs[k])
    removed = [k for k in old_defs if k not in new_defs]
    added = [k for k in new_defs if k not in old_defs]
    moved: dict[str, dict[str, object]] = {}
    for target in a.moved_to:
        target_defs = definition_fingerprints(module_file(target).read_text(encoding="utf-8"))
        for k in (k for k in removed if k.isidentifier()):   # functions and classes
            for new_name in (k, k.lstrip("_")):
                if new_name in target_defs:
                    old_seg = _segment(old_text, k)
                    if new_name != k:
                        old_seg = old_seg.replace(f"def {k}(", f"def {new_name}(", 1)
                    moved[k] = {"to": f"{target}.{new_name}",
                                "same code": source_fingerprint(old_seg) == target_defs[new_name]}
                    break

    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "old.tar"
        archive.write_bytes(_git("archive", "--format=tar", a.old_rev, "src/faceopt"))
        with tarfile.open(archive) as tar:
            tar.extractall(Path(tmp) / "old", filter="data")
        print("training with the old code ...", flush=True)
        old_runs = _battery(Path(tmp) / "old" / "src")
    print("training with the new code (twice) ...", flush=True)
    new_runs, control = _battery(ROOT / "src"), _battery(ROOT / "src")
    runs = {k: {"old": old_runs[k], "new": new_runs.get(k), "new again": control.get(k),
                "identical": old_runs[k] == new_runs.get(k) == control.get(k)} for k in old_runs}
    same = not changed and all(r["identical"] for r in runs.values())
    evidence = {
        "module": a.module, "old_rev": _git("rev-parse", a.old_rev).decode().strip(),
        "old_fingerprint": source_fingerprint(old_text), "new_fingerprint": source_fingerprint(new_text),
        "definitions": {"unchanged": sorted(old_defs.keys() & new_defs.keys() - set(changed)),
                        "changed": changed, "removed": removed, "added": added, "moved": moved},
        "runs": runs, "same": same,
        "machine": {"python": platform.python_version(), "torch": _torch_version(), "processor": platform.processor()
                    or platform.machine(), "threads": 1},
    }
    atomic_write_text(a.out, json.dumps(evidence, indent=1) + "\n")
    print(f"{a.module}: {len(evidence['definitions']['unchanged'])} definitions unchanged, changed {changed}, "
          f"removed {removed}, added {added}")
    for k, r in runs.items():
        print(f"  {'same' if r['identical'] else 'DIFFERENT':9s} {k}")
    print(f"{'same results' if same else 'NOT shown to give the same results'} -> {a.out}")
    return 0 if same else 1


def _segment(text: str, name: str) -> str:
    import ast

    lines = text.splitlines(keepends=True)
    for node in ast.parse(text).body:
        if getattr(node, "name", None) == name:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            return "".join(lines[first - 1:node.end_lineno])
    raise KeyError(name)


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


if __name__ == "__main__":
    sys.exit(main())
