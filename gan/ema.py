"""The averaged generator that shows a run's progress: an exponential moving average of G's weights (it draws
cleaner digits than G, whose weights jitter from update to update), and the fixed noise it draws every epoch's
grid from, so that grids of different epochs compare the same latent points."""

from __future__ import annotations

import torch
from torch import nn

from gan.config import Config
from gan.data import NUM_CLASSES

FIXED_SAMPLES = 100  # a 10 x 10 grid; for conditional presets row r shows digit r


def fixed_noise(config: Config, count: int = FIXED_SAMPLES) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The run's fixed noise (and labels), a pure function of the seed, so every epoch's grid is comparable."""
    generator = torch.Generator().manual_seed(config.seed + 2)
    z = torch.randn(count, config.latent_dim, generator=generator)
    labels = torch.arange(count) // (count // NUM_CLASSES) % NUM_CLASSES if config.conditional else None
    return z, labels


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """Move an exponential moving average of `model` towards it after update `step` (0-based); buffers are copied.
    Warm-up: early on, the average follows the model closely instead of dragging in the random initial weights."""
    decay = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(list(average.parameters()), list(model.parameters()), 1 - decay)
    for kept, buffer in zip(average.buffers(), model.buffers()):
        kept.copy_(buffer)
