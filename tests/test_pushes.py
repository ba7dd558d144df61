"""Where D pushes a point of the D's-eye map: the point is judged first in a batch of the run's size, among others of
its own kind (never itself), told its digit when D is conditional."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gan.config import Config
from gan.lab.dmap import EpochMap, RealPoints
from gan.lab.pushes import push_generated, push_real


class RecordingD(nn.Module):
    """A D that likes ink, and remembers every batch it was shown (images and digits)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.batches: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.batches.append((images.detach().clone(), None if labels is None else labels.clone()))
        return images.flatten(1).mean(1)


def numbered(count: int) -> torch.Tensor:
    """Images whose first pixel says which they are."""
    images = torch.full((count, 1, 28, 28), -1.0)
    images[:, 0, 0, 0] = torch.arange(count) / count
    return images


def epoch_map(count: int, conditional: bool) -> EpochMap:
    spread = np.zeros(count)
    digits = torch.arange(count) % 10 if conditional else None
    return EpochMap(spread, np.zeros((count, 2)), spread, numbered(count), digits, digits, spread)


@pytest.mark.parametrize("conditional", [True, False])
def test_a_generated_point_is_judged_first_among_the_epochs_other_samples(conditional):
    config = Config.for_preset("cdcgan" if conditional else "dcgan", batch_size=16)
    found, D = epoch_map(50, conditional), RecordingD(10 if conditional else 0)
    pushed = push_generated(D, config, found, 7)
    images, labels = D.batches[0]
    assert len(images) == 16 and torch.equal(images[0], found.fake_images[7])
    assert not any(torch.equal(image, found.fake_images[7]) for image in images[1:])
    assert (labels is None) == (not conditional)
    if conditional:
        assert labels[0] == 7 and labels[1:].tolist() == [index % 10 for index in range(50) if index != 7][:15]
    assert torch.equal(pushed.image, found.fake_images[7]) and pushed.after > pushed.before


def test_a_real_point_is_judged_among_other_real_digits_and_told_its_label():
    config = Config.for_preset("cdcgan", batch_size=8)
    labels = torch.arange(30) % 10
    real = RealPoints(None, numbered(30), labels, torch.arange(30), np.zeros((30, 2)), labels, torch.ones(30))
    D = RecordingD(10)
    push_real(D, config, real, 0)
    images, told = D.batches[0]
    assert len(images) == 8 and torch.equal(images[0], real.images[0])
    assert torch.equal(images[1:], real.images[1:8]) and told.tolist() == [0, *range(1, 8)]
