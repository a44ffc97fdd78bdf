"""Cosine classification head (class centres) and a backbone+head+loss training wrapper."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MarginHead", "FaceRecognizer"]


class MarginHead(nn.Module):
    """Class centres ``W`` of shape ``[num_classes, D]`` (row j = centre of class j).

    ``forward(x)`` returns the cosines ``normalize(x) @ normalize(W).T`` (``[B, C]``),
    the input of :class:`~faceopt.recognition.losses.CombinedMarginLoss`. The thesis
    writes ``W`` as ``D x n`` (columns = centres); this is its transpose.
    """

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__()
        if embedding_size < 1 or num_classes < 1:
            raise ValueError(
                f"embedding_size and num_classes must be >= 1, got {embedding_size}, {num_classes}"
            )
        self.embedding_size, self.num_classes = int(embedding_size), int(num_classes)
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.embedding_size))
        nn.init.normal_(self.weight, std=0.01)  # insightface's init for the fc7 centres

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosines ``[B, C]`` between each embedding and each class centre."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings must be [B, {self.embedding_size}], got shape {tuple(embeddings.shape)}"
            )
        w = F.normalize(self.weight, dim=1)
        return F.normalize(embeddings.to(w.dtype), dim=1) @ w.T

    def copy_centres_from(self, teacher_head: "MarginHead", freeze: bool) -> None:
        """``W_S = W_T`` (thesis idea 1); ``freeze=True`` makes ``W_S`` non-trainable.

        Raises ``ValueError`` naming both shapes when class count or embedding size differ.
        ``freeze=False`` leaves (or makes) ``W_S`` trainable.
        """
        wt = teacher_head.weight
        if tuple(wt.shape) != tuple(self.weight.shape):
            raise ValueError(
                "the teacher's centres do not match the student head: teacher "
                f"{tuple(wt.shape)} vs student {tuple(self.weight.shape)} ([num_classes, D])"
            )
        with torch.no_grad():
            self.weight.copy_(wt.detach())
        self.weight.requires_grad_(not freeze)


class FaceRecognizer(nn.Module):
    """``backbone`` + ``head`` + ``loss``: ``forward(images, labels)`` returns the training loss.

    * ``loss`` a plain margin loss (e.g. ``CombinedMarginLoss``): ``loss(head(backbone(x)), y)``.
    * ``loss`` a distiller (has ``needs_teacher``; see :mod:`.distillers`):
      ``loss(backbone(x), y, teacher_emb)``. ``teacher_emb`` is taken from the call
      (precomputed) or, if omitted, computed on the fly by ``teacher`` under
      ``no_grad``. ``teacher`` is frozen (``requires_grad=False``) and kept in eval mode.

    ``embed(images)`` returns L2-normalised embeddings (verification uses cosines).
    """

    def __init__(
        self, backbone: nn.Module, head: MarginHead, loss: nn.Module, teacher: nn.Module | None = None
    ) -> None:
        super().__init__()
        student_head = getattr(loss, "student_head", None)
        if student_head is not None and student_head is not head:
            raise ValueError("the distiller's student_head must be the recognizer's head")
        self.backbone, self.head, self.loss = backbone, head, loss
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()

    def train(self, mode: bool = True) -> "FaceRecognizer":
        """Switch train/eval mode; the teacher always stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised student embeddings ``[B, D]``."""
        return F.normalize(self.backbone(images), dim=1)

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor, teacher_emb: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scalar training loss for one mini-batch."""
        emb = self.backbone(images)
        if not getattr(self.loss, "needs_teacher", False):
            if getattr(self.loss, "student_head", None) is not None:  # distiller without teacher
                return self.loss(emb, labels, None)
            return self.loss(self.head(emb), labels)
        if teacher_emb is None:
            if self.teacher is None:
                raise ValueError("this loss needs teacher embeddings: pass teacher_emb or a teacher")
            with torch.no_grad():
                teacher_emb = self.teacher(images)
        return self.loss(emb, labels, teacher_emb)
