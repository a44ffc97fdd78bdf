"""Run a face embedder over an evaluation protocol: embeddings, pair scores, accuracies.

Glue between the data protocols (``faceopt.data.pairs``, the ``.bin`` reader) and the
metrics (``faceopt.recognition.metrics``). Scores are cosine similarities.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from faceopt.recognition.metrics import rank1_identification, tar_at_far, verification_accuracy


@torch.no_grad()
def embed(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, *,
          batch_size: int = 128, flip: bool = False) -> np.ndarray:
    """L2-normalised embeddings [N, D] of images [N, 3, H, W].

    ``flip`` adds the embedding of the horizontally mirrored image before normalising,
    the usual test-time option of the insightface evaluation.
    """
    if images.dim() != 4:
        raise ValueError(f"expected images [N, 3, H, W], got shape {tuple(images.shape)}")
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        e = model(x)
        if flip:
            e = e + model(torch.flip(x, dims=[3]))
        out.append(nn.functional.normalize(e.float(), dim=1))
    if isinstance(model, nn.Module):
        model.train(was_training)
    return torch.cat(out).cpu().numpy()


def pair_scores(embeddings: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Cosine similarity of each pair (i, j) of rows of already normalised ``embeddings``."""
    idx = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(idx) and (idx.min() < 0 or idx.max() >= len(embeddings)):
        raise ValueError(f"pair indices must lie in [0, {len(embeddings)}), got [{idx.min()}, {idx.max()}]")
    return np.einsum("ij,ij->i", embeddings[idx[:, 0]], embeddings[idx[:, 1]])


def verify(model: nn.Module, images: torch.Tensor, pairs: Sequence[tuple[int, int]], issame: np.ndarray, *,
           folds: int = 10, flip: bool = False, far: float = 1e-2, batch_size: int = 128) -> dict[str, float]:
    """10-fold verification accuracy (mean, std) and TAR at ``far`` of a model on a pair protocol."""
    scores = pair_scores(embed(model, images, batch_size=batch_size, flip=flip), pairs)
    issame = np.asarray(issame, dtype=bool)
    mean, std = verification_accuracy(scores, issame, folds=folds)
    return {"accuracy": mean, "std": std, f"tar@far={far:g}": tar_at_far(scores[issame], scores[~issame], far)}


def identify(model: nn.Module, probe: torch.Tensor, probe_labels: np.ndarray, gallery: torch.Tensor,
             gallery_labels: np.ndarray, *, flip: bool = False, batch_size: int = 128) -> float:
    """Rank-1 identification rate of probes against a gallery with distractors (label -1)."""
    return rank1_identification(embed(model, probe, batch_size=batch_size, flip=flip), np.asarray(probe_labels),
                                embed(model, gallery, batch_size=batch_size, flip=flip),
                                np.asarray(gallery_labels))
