"""Page 06's 1:1 protocol on a user's real faces: a folder of identities, an insightface ``.bin`` or a pair list.

Synthetic faces stand in for real ones on the book's pages; accuracy on real faces needs real faces.
:func:`verification_scores` reads one of three standard layouts of *aligned* face crops and returns
the genuine and impostor scores of an embedder, which :func:`fnmr_table` turns into FNMR at each
FMR the impostor count can resolve (NIST FRVT 1:1 style):

* a folder ``root/<identity>/<image>`` (:class:`~faceopt.data.image_folder.ImageFolderFaces`):
  every pair of its images is scored, same-identity pairs are genuine;
* an insightface verification file ``.bin`` (LFW, AgeDB-30, CFP-FP as shipped with insightface's
  datasets; :func:`~faceopt.data.verification_bin.load_verification_bin`): its listed pairs;
* a pair list ``.txt``: one pair per line, ``path_a path_b same`` with ``same`` 1 or 0, paths
  relative to the list's folder (blank lines and ``#`` comments skipped).

An embedder maps float32 images ``[N, 3, S, S]`` in [-1, 1] (RGB) to L2-normalised embeddings
(numpy), e.g. :func:`faceopt.recognition.nist_eval.torch_embedder`.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from faceopt.data.errors import DataFileError, check_listed_path, read_text_file
from faceopt.data.image_folder import ImageFolderFaces
from faceopt.data.images import decode_image
from faceopt.data.recordio import image_to_tensor
from faceopt.data.verification_bin import load_verification_bin
from faceopt.recognition.nist import fnmr_at_fmr_with_ci
from faceopt.recognition.nist_eval import pair_scores_all

__all__ = ["verification_scores", "fnmr_table", "read_pair_list"]

Embedder = Callable[[torch.Tensor], np.ndarray]


def _embed_in_batches(embed: Embedder, images: Sequence[np.ndarray], size: int, batch: int = 256) -> np.ndarray:
    out = []
    for start in range(0, len(images), batch):
        out.append(embed(torch.stack([image_to_tensor(im, size) for im in images[start:start + batch]])))
    return np.concatenate(out)


def read_pair_list(path: str | Path, *, allow_outside: bool = False) -> tuple[list[tuple[Path, Path]], np.ndarray]:
    """The pairs and their same-person flags of a pair list (see the module docstring); a path that is absolute
    or leaves the list's folder (symlinks resolved) is refused unless ``allow_outside``."""
    path = Path(path)
    pairs, same = [], []
    checked: set[str] = set()   # a list names each image many times: check (and stat) each name once
    text = read_text_file(path, "a pair list holds lines 'path_a path_b same'")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3 or fields[2] not in ("0", "1"):
            raise DataFileError(f"{path}:{number}: expected 'path_a path_b same' with same 0 or 1, got {line!r}")
        new = [name for name in dict.fromkeys(fields[:2]) if name not in checked]
        for name in new:
            check_listed_path(name, path.parent, f"{path}:{number}", allow_outside=allow_outside)
        for name in new:
            if not (path.parent / name).is_file():
                raise FileNotFoundError(f"{path}:{number}: {path.parent / name} does not exist (paths are relative to "
                                        "the list's folder)")
        checked.update(new)
        pairs.append((path.parent / fields[0], path.parent / fields[1]))
        same.append(fields[2] == "1")
    if not pairs or all(same) or not any(same):
        raise DataFileError(f"{path}: needs at least one genuine (1) and one impostor (0) pair, got "
                         f"{sum(same)} and {len(same) - sum(same)}")
    return pairs, np.asarray(same)


def _read(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), str(path))


def verification_scores(path: str | Path, embed: Embedder, *, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor cosines of ``embed`` on the real faces at ``path`` (folder, ``.bin`` or ``.txt``),
    resized to ``size`` pixels."""
    path = Path(path)
    if path.is_dir():
        faces = ImageFolderFaces(path, size)
        labels = faces.labels
        counts = np.bincount(labels)
        if (counts >= 2).sum() < 1 or len(counts) < 2:
            raise ValueError(f"{path}: needs at least 2 identities and one with 2 or more images for genuine and "
                             f"impostor pairs; it has {len(counts)} identities, {(counts >= 2).sum()} with 2 or more")
        e = _embed_in_batches(embed, [faces.image(i) for i in range(len(faces))], size)
        return pair_scores_all(e, labels)
    if path.suffix == ".bin":
        images, issame = load_verification_bin(path, size)
        e = _embed_in_batches(embed, list(images), size)
        scores = np.sum(e[0::2] * e[1::2], axis=1)
        return scores[issame], scores[~issame]
    if path.suffix == ".txt":
        pairs, same = read_pair_list(path)
        e = _embed_in_batches(embed, [_read(p) for pair in pairs for p in pair], size)
        scores = np.sum(e[0::2] * e[1::2], axis=1)
        return scores[same], scores[~same]
    raise ValueError(f"{path}: not a folder of identities, an insightface .bin or a .txt pair list")


def fnmr_table(genuine: np.ndarray, impostor: np.ndarray, fmrs: Sequence[float] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6),
               *, resamples: int = 200, seed: int = 0) -> pd.DataFrame:
    """FNMR (with a bootstrap interval) at each FMR the impostor count resolves (``fmr >= 1 / impostors``)."""
    rows = []
    for fmr in fmrs:
        if fmr * len(impostor) < 1 - 1e-9:
            rows.append({"FMR": fmr, "FNMR": math.nan, "note": f"needs {math.ceil(1 / fmr)} impostor pairs, "
                                                                f"has {len(impostor)}"})
            continue
        r = fnmr_at_fmr_with_ci(genuine, impostor, fmr, resamples=resamples, seed=seed)
        rows.append({"FMR": fmr, "FNMR": r["fnmr"], "CI low": r["ci_low"], "CI high": r["ci_high"], "note": ""})
    return pd.DataFrame(rows).set_index("FMR")
