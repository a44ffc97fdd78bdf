"""The cosine background model of AmphibianDetector (thesis, section 2.3).

A feature map ``M_i`` of shape [C, H_m, W_m] (the output of the detector's first
m layers) is compared cell by cell with a background model ``M_bg``:

    Diff_i[x, y] = 1 - cos(M_bg[:, x, y], M_i[:, x, y])

A frame is static when ``max(Diff_i) < lambda``; only static frames update the
model, ``M_bg <- alpha * M_bg + (1 - alpha) * M_i``. On frames with motion, a
predicted box (normalised to 0..1) is mapped onto the H_m x W_m grid and kept when
the mean of ``Diff_i`` over it reaches the box threshold.

The author's public code clips the cosine at 0 (so Diff lies in [0, 1]); the
thesis does not, so clipping is an option that is off by default.
"""
from __future__ import annotations

import math
import warnings

import torch


def cosine_difference(background: torch.Tensor, features: torch.Tensor, *, clip_cosine: bool = False,
                      eps: float = 1e-8) -> torch.Tensor:
    """``1 - cos`` between the channel vectors of two [C, H, W] maps, as an [H, W] map in [0, 2]."""
    if background.shape != features.shape or background.dim() != 3:
        raise ValueError(f"expected two [C, H, W] maps of one shape, got {tuple(background.shape)} "
                         f"and {tuple(features.shape)}")
    cos = torch.nn.functional.cosine_similarity(background, features, dim=0, eps=eps)
    if clip_cosine:
        cos = cos.clamp(min=0.0)
    return 1.0 - cos


class CosineBackgroundModel:
    """Background model over feature maps: the static-frame gate and its running update."""

    def __init__(self, threshold: float, alpha: float, *, clip_cosine: bool = False) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if threshold < 0.0:
            raise ValueError(f"threshold must be non-negative, got {threshold}")
        self.threshold = threshold
        self.alpha = alpha
        self.clip_cosine = clip_cosine
        self.background: torch.Tensor | None = None

    def reset(self, reference: torch.Tensor) -> None:
        """Start from a reference feature map of a frame without motion."""
        if reference.dim() != 3:
            raise ValueError(f"expected a [C, H, W] feature map, got shape {tuple(reference.shape)}")
        self.background = reference.detach().clone().float()

    def difference(self, features: torch.Tensor) -> torch.Tensor:
        """The motion map Diff_i of a feature map against the current background."""
        if self.background is None:
            raise RuntimeError("the background model has no reference yet; call reset(reference) first")
        return cosine_difference(self.background, features.float(), clip_cosine=self.clip_cosine)

    def observe(self, features: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Compare a frame's map with the background; update the model if the frame is static.

        Returns (Diff map, static). The first map ever seen becomes the reference (static).
        A map of another shape (the stream changed resolution) re-initialises the model
        from it, with a warning, and the frame counts as moving so that the detector runs.
        """
        if self.background is None:
            self.reset(features)
            return torch.zeros(features.shape[1:]), True
        if features.shape != self.background.shape:
            warnings.warn(f"feature map changed shape from {tuple(self.background.shape)} to "
                          f"{tuple(features.shape)}; background model re-initialised", stacklevel=2)
            self.reset(features)
            return torch.ones(features.shape[1:]), False
        diff = self.difference(features)
        static = bool(diff.max() < self.threshold)
        if static:
            self.background.mul_(self.alpha).add_(features.float(), alpha=1.0 - self.alpha)
        return diff, static


def box_cells(box: torch.Tensor | list[float], height: int, width: int) -> tuple[int, int, int, int]:
    """Grid cells (row0, row1, col0, col1), end-exclusive, covered by a normalised box (x1, y1, x2, y2).

    The box scales to the grid as in the thesis (left * W_m, top * H_m, ...); every cell the
    scaled box touches is included, and at least one cell is.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    col0 = min(max(math.floor(x1 * width), 0), width - 1)
    row0 = min(max(math.floor(y1 * height), 0), height - 1)
    col1 = max(min(math.ceil(x2 * width), width), col0 + 1)
    row1 = max(min(math.ceil(y2 * height), height), row0 + 1)
    return row0, row1, col0, col1


def box_motion(diff: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Mean of the [H, W] motion map inside each normalised box of ``boxes`` [N, 4]."""
    height, width = diff.shape
    out = torch.empty(len(boxes))
    for i, box in enumerate(boxes):
        r0, r1, c0, c1 = box_cells(box, height, width)
        out[i] = diff[r0:r1, c0:c1].mean()
    return out


def keep_moving_boxes(diff: torch.Tensor, boxes: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean mask of the boxes whose mean motion is at least ``threshold``."""
    return box_motion(diff, boxes) >= threshold
