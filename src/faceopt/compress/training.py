"""A small deterministic classification loop for the compression experiments.

The face-recognition training stack (margin heads, DDP, checkpoints, callbacks) lives in
:mod:`faceopt.train`; this loop trains the digit classifiers of page 02 (thesis Chapter 1)
in seconds. Why it is a loop of its own: it steps through in-memory tensors with one
seeded permutation per epoch, stops in the middle of an epoch at a given step (the
lottery ticket's rewind point), and scores the test split after every epoch, and page
02's recorded numbers (bit-identical under every CPU kernel set tried) come from exactly
these batches. ``faceopt.train`` would draw other, equally valid batches through its
seeded ``DataLoader`` and so change every recorded number of that page.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from faceopt.data.digits import Split


@dataclass
class History:
    """Per-epoch training loss and test accuracy."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


@torch.no_grad()
def evaluate(model: nn.Module, data: Split, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on ``data`` (eval mode; training mode restored)."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(data), batch_size):
        correct += (model(data.x[i:i + batch_size]).argmax(1) == data.y[i:i + batch_size]).sum().item()
    model.train(was_training)
    return correct / len(data)


def fit(model: nn.Module, train: Split, *, epochs: int, lr: float = 0.1, batch_size: int = 64,
        momentum: float = 0.9, weight_decay: float = 0.0, seed: int = 0, test: Split | None = None,
        steps: int | None = None, on_step: Callable[[int, nn.Module], None] | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> History:
    """SGD with momentum over shuffled mini-batches; deterministic for a given seed.

    ``steps`` stops after that many optimiser steps (for lottery-ticket rewinding);
    ``on_step(step, model)`` runs after every step; ``loss_fn`` defaults to cross-entropy.
    """
    loss_fn = loss_fn or nn.functional.cross_entropy
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    history = History()
    step = 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=gen)
        total, count = 0.0, 0
        for i in range(0, len(train), batch_size):
            idx = order[i:i + batch_size]
            loss = loss_fn(model(train.x[idx]), train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total += loss.item() * len(idx)
            count += len(idx)
            if on_step is not None:
                on_step(step, model)
            if steps is not None and step >= steps:
                break
        history.loss.append(total / max(count, 1))
        if test is not None:
            history.accuracy.append(evaluate(model, test))
        if steps is not None and step >= steps:
            break
    return history
