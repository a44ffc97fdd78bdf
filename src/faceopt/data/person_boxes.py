"""The person-box annotation file: frame index -> ``float32 [N, 4]`` boxes, with a header.

:func:`save_annotations` writes one (atomically, one frame per line for small diffs),
:func:`load_annotations` reads and checks one, naming the file in every error;
:func:`default_annotation_path` is the packaged ``annotations/vtest_persons.json``
(made by ``faceopt pseudo-labels``, :mod:`faceopt.detection.pseudo_labels`).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from faceopt.io import atomic_write_text
from faceopt.resources import resource_path

FORMAT = "faceopt-person-boxes"
FORMAT_VERSION = 1


def default_annotation_path() -> Path:
    """The packaged ``annotations/vtest_persons.json`` of :mod:`faceopt.resources` (may not exist yet)."""

    return resource_path("annotations", "vtest_persons.json", must_exist=False)


def save_annotations(path: str | Path, boxes: Mapping[int, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """Write ``boxes`` (frame index -> ``[N, 4]`` x1, y1, x2, y2) and a header ``meta`` as JSON.

    The file is written to a temporary file in the same folder and moved into place
    with :func:`os.replace`, so a failure leaves either the old file or none, never a
    half-written one.  Coordinates are rounded to 0.01 px.

    Raises:
        ValueError: a frame's boxes are not ``[N, 4]`` finite numbers with ``x1 <= x2``, ``y1 <= y2``.
    """
    path = Path(path)
    frames: dict[str, list[list[float]]] = {}
    for idx in sorted(int(k) for k in boxes):
        b = np.asarray(boxes[idx], dtype=np.float64).reshape(-1, 4) if np.size(boxes[idx]) else np.zeros((0, 4))
        if not np.isfinite(b).all() or (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
            raise ValueError(f"frame {idx}: boxes must be finite x1, y1, x2, y2 with x1 <= x2 and y1 <= y2")
        frames[str(idx)] = [[round(float(v), 2) for v in row] for row in b]
    # header pretty-printed, then one frame per line (small, readable diffs)
    head = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "meta": dict(meta)}, indent=1,
                      ensure_ascii=False, allow_nan=False)
    body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in frames.items())
    text = head[:-2] + ',\n "frames": {\n' + body + ("\n }" if body else "}") + "\n}\n"
    return atomic_write_text(path, text)


def load_annotations(path: str | Path) -> tuple[dict[int, np.ndarray], dict[str, Any]]:
    """Read a file of :func:`save_annotations`: ``({frame: float32 [N, 4]}, meta)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the content is not such a file (the message names the file and what is wrong).
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT!r} annotation file (missing or wrong 'format')")
    if doc.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {doc.get('version')!r}, this code reads {FORMAT_VERSION}")
    meta, frames = doc.get("meta"), doc.get("frames")
    if not isinstance(meta, dict) or not isinstance(frames, dict):
        raise ValueError(f"{path}: 'meta' and 'frames' must be JSON objects")
    out: dict[int, np.ndarray] = {}
    for key, rows in frames.items():
        try:
            idx = int(key)
        except ValueError:
            raise ValueError(f"{path}: frame key {key!r} is not an integer") from None
        if idx < 0 or str(idx) != key:
            raise ValueError(f"{path}: frame key {key!r} is not a non-negative integer")
        try:
            b = np.asarray(rows, dtype=np.float32).reshape(-1, 4) if rows != [] else np.zeros((0, 4), np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: frame {key}: boxes must be a list of [x1, y1, x2, y2]") from None
        if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) != 4 for r in rows):
            raise ValueError(f"{path}: frame {key}: boxes must be a list of [x1, y1, x2, y2]")
        if not np.isfinite(b).all() or (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
            raise ValueError(f"{path}: frame {key}: boxes must be finite with x1 <= x2 and y1 <= y2")
        out[idx] = b
    return dict(sorted(out.items())), meta
