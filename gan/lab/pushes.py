"""Where an epoch's D pushes a point of the D's-eye map (gan/lab/dmap.py): one of the epoch's generated samples or one
of the map's real digits, each judged as in training, in a batch of the run's size.

D sees whole batches (its minibatch spread feature compares a batch's spread with real batches'), so a point is
judged among companions of its own kind: a generated sample among the epoch's other samples, a real digit among the
other real digits of the map. A conditional D is told each image's digit: the one asked for, or the real label.
"""

from __future__ import annotations

import torch
from torch import nn

from gan.config import Config
from gan.lab.dmap import EpochMap, RealPoints
from gan.lab.probe import Push, push


def others(count: int, index: int, keep: int) -> torch.Tensor:
    """The positions of up to `keep` items of `count`, `index` left out."""
    return torch.arange(count)[torch.arange(count) != index][:keep]


def push_generated(D: nn.Module, config: Config, found: EpochMap, index: int) -> Push:
    """Where D pushes the epoch's generated sample `index`, judged among the first of the epoch's other samples."""
    companions = others(len(found.fake_images), index, config.batch_size - 1)
    digits = found.fake_digits
    label = None if digits is None else int(digits[index])
    labels = None if digits is None else digits[companions]
    return push(D, found.fake_images[index], label, config.loss, found.fake_images[companions], labels)


def push_real(D: nn.Module, config: Config, real: RealPoints, index: int) -> Push:
    """Where D pushes the map's real digit `index`, judged among the first of the map's other real digits."""
    companions = others(len(real.images), index, config.batch_size - 1)
    label = int(real.labels[index]) if config.conditional else None
    labels = real.labels[companions] if config.conditional else None
    return push(D, real.images[index], label, config.loss, real.images[companions], labels)
