"""Evaluation glue: embeddings, pair scores, verification and identification on hand cases."""
import numpy as np
import pytest
import torch
from torch import nn

from faceopt.recognition.evaluate import embed, identify, pair_scores, verify


class MeanColour(nn.Module):
    """Embedding = mean of each channel: images of one colour share a direction."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


def _colour_images(colours):
    return torch.stack([torch.tensor(c, dtype=torch.float32).view(3, 1, 1).expand(3, 4, 4) for c in colours])


def test_embed_normalises_and_flip_is_symmetric():
    images = _colour_images([(1, 0, 0), (0, 2, 0)])
    e = embed(MeanColour(), images, batch_size=1)
    assert np.allclose(e, [[1, 0, 0], [0, 1, 0]])
    assert np.allclose(embed(MeanColour(), images, flip=True), e)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        embed(MeanColour(), torch.zeros(3, 4, 4))


def test_pair_scores_by_hand():
    e = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    assert np.allclose(pair_scores(e, [(0, 1), (1, 2), (0, 2)]), [0.6, 0.8, 0.0])
    with pytest.raises(ValueError, match="pair indices"):
        pair_scores(e, [(0, 3)])


def test_verify_and_identify_on_separable_colours():
    colours = [(1, 0, 0), (1, 0.05, 0), (0, 1, 0), (0, 1, 0.05)] * 5
    images = _colour_images(colours)
    genuine = [(i, i + 1) for i in range(0, 20, 2)]
    impostor = [(i, i + 2) for i in range(0, 20, 4)] * 2
    pairs = [p for pair in zip(genuine, impostor) for p in pair]  # every fold holds both kinds
    issame = np.array([True, False] * 10)
    result = verify(MeanColour(), images, pairs, issame, folds=2)
    assert result["accuracy"] == 1.0 and result["std"] == 0.0
    gallery = _colour_images([(1, 0, 0), (0, 1, 0), (0, 0, 1)])
    probe = _colour_images([(1, 0.1, 0), (0, 1, 0.1), (0.9, 0, 0.1)])
    rate = identify(MeanColour(), probe, np.array([0, 1, 0]), gallery, np.array([0, 1, -1]))
    assert rate == pytest.approx(1.0)
