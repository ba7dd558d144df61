"""Generator and discriminator for each preset; every size comes from arguments.

- classic: the project's origin, fully connected both ways (noise -> 784 pixels -> one logit).
- dcgan:   a small transposed-convolution generator and strided-convolution discriminator for 28x28.
- cdcgan:  the dcgan pair conditioned on the digit: a label embedding joins the noise in G, and D adds a
           projection term <embed(y), h> (Miyato & Koyama, 2018), which learns classes faster than concatenation.

Generators map (z: (B, latent_dim), y: (B,) or None) to images (B, 1, 28, 28) in [-1, 1]; discriminators
map (x, y) to logits (B,). `first_features` is the output of G's first layer, which latent.py searches for
principal directions.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from gan.config import Config, ConfigError
from gan.data import IMAGE_SIZE, NUM_CLASSES

PIXELS = IMAGE_SIZE * IMAGE_SIZE


@runtime_checkable
class Generator(Protocol):
    """What the rest of the package relies on in a generator (latent.py, the trainer, the checkpoints)."""

    latent_dim: int
    num_classes: int  # 0 for an unconditional generator
    embed: nn.Embedding | None  # the label embedding of a conditional generator (None or absent otherwise)

    def first_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The first layer's output, (B, F): where latent.py looks for principal directions."""
        ...

    def __call__(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 1, 28, 28) in [-1, 1]."""
        ...

    def parameters(self) -> Iterator[nn.Parameter]: ...


def _hidden(in_features: int, out_features: int, norm: str) -> list[nn.Module]:
    """A fully connected layer, optionally batch-normalised, then LeakyReLU."""
    if norm == "batch":
        return [nn.Linear(in_features, out_features, bias=False), nn.BatchNorm1d(out_features), nn.LeakyReLU(0.2)]
    return [nn.Linear(in_features, out_features), nn.LeakyReLU(0.2)]


class ClassicGenerator(nn.Module):
    """z -> w -> 2w -> 4w -> 784; `norm="batch"` batch-normalises the hidden layers (steadier, faster learning)."""

    def __init__(self, latent_dim: int, width: int, norm: str = "none"):
        super().__init__()
        self.latent_dim, self.num_classes, self.embed = latent_dim, 0, None
        self.first = nn.Sequential(*_hidden(latent_dim, width, norm))
        self.rest = nn.Sequential(
            *_hidden(width, 2 * width, norm),
            *_hidden(2 * width, 4 * width, norm),
            nn.Linear(4 * width, PIXELS),
            nn.Tanh(),
        )

    def first_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.first(z)  # (B, width)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.rest(self.first(z)).view(-1, 1, IMAGE_SIZE, IMAGE_SIZE)


def minibatch_spread(h: torch.Tensor) -> torch.Tensor:
    """Minibatch standard deviation (Karras et al., 2018), one number per batch as a (B, 1) feature: real and fake
    batches go through D separately, so a batch of near-identical fakes is told apart by its low spread, and G is
    pushed to vary its samples. The epsilon keeps it differentiable twice (R1) where a feature is the same across
    the batch (the border). The variance is written out: torch.var across the batch is 5 times slower on a CPU."""
    centred = h - h.mean(dim=0)
    return (centred.square().mean(dim=0) + 1e-8).sqrt().mean().expand(len(h), 1)


class ClassicDiscriminator(nn.Module):
    """784 -> 4w -> 2w -> w -> logit; `spread=True` gives the last layer the batch's spread as one more input."""

    def __init__(self, width: int, spread: bool = False):
        super().__init__()
        self.num_classes, self.spread = 0, spread
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(PIXELS, 4 * width),
            nn.LeakyReLU(0.2),
            nn.Linear(4 * width, 2 * width),
            nn.LeakyReLU(0.2),
            nn.Linear(2 * width, width),
            nn.LeakyReLU(0.2),
            nn.Linear(width + int(spread), 1),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        *hidden, last = self.net
        for layer in hidden:
            x = layer(x)
        if self.spread:
            x = torch.cat([x, minibatch_spread(x)], dim=1)
        return last(x).squeeze(1)


def _upsample(c_in: int, c_out: int, mode: str, bias: bool, kernel: int = 4) -> list[nn.Module]:
    """Double the resolution: a stride-2 transposed convolution (kernel 4 by default), or nearest-neighbour
    upsampling and a 3x3 convolution, which covers every output pixel evenly (no checkerboard speckle).

    Stride 2 doubles the size for any kernel k with padding (k - 1) // 2 and output padding k % 2. With k = 4
    every output pixel gets the same number of kernel taps; with 3 or 5 neighbouring pixels get unequal numbers,
    which draws a checkerboard until G learns to hide it (Odena et al., 2016)."""
    if mode == "nearest":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)]
    return [nn.ConvTranspose2d(c_in, c_out, kernel, 2, (kernel - 1) // 2, kernel % 2, bias=bias)]


class ConvGenerator(nn.Module):
    """z (+ label embedding) -> 4w x 7 x 7 -> 2w x 14 x 14 -> 1 x 28 x 28."""

    def __init__(
        self, latent_dim: int, width: int, num_classes: int = 0, upsample: str = "transposed", kernel: int = 4
    ):
        super().__init__()
        self.latent_dim, self.num_classes, self.width = latent_dim, num_classes, width
        # The digit enters as a learned code that starts one-hot: ten numbers beside the noise rather than a
        # code as wide as it, which let G draw one fixed sample per digit and ignore the noise.
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None
        if self.embed is not None:
            nn.init.eye_(self.embed.weight)
        in_features = latent_dim + num_classes
        self.project = nn.Linear(in_features, 4 * width * 7 * 7, bias=False)
        self.first = nn.Sequential(nn.BatchNorm2d(4 * width), nn.ReLU())
        self.rest = nn.Sequential(
            *_upsample(4 * width, 2 * width, upsample, bias=False, kernel=kernel),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            *_upsample(2 * width, 1, upsample, bias=True, kernel=kernel),
            nn.Tanh(),
        )

    def _input(self, z: torch.Tensor, y: torch.Tensor | None, label_embedding: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            return z
        if label_embedding is None:
            if y is None:
                raise ValueError("this generator is conditional: give a digit label for every noise vector")
            label_embedding = self.embed(y)
        return torch.cat([z, label_embedding], dim=1)  # (B, latent_dim + 10)

    def first_features(
        self, z: torch.Tensor, y: torch.Tensor | None = None, label_embedding: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.project(self._input(z, y, label_embedding))  # (B, 4w * 49), before normalisation

    def forward(
        self, z: torch.Tensor, y: torch.Tensor | None = None, label_embedding: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`label_embedding` (B, 10) replaces embed(y): a blend of two digits' embeddings morphs one
        digit into another."""
        h = self.first_features(z, y, label_embedding).view(-1, 4 * self.width, 7, 7)
        return self.rest(self.first(h))  # (B, 1, 28, 28)


class ConvDiscriminator(nn.Module):
    """1 x 28 x 28 -> 2w x 14 x 14 -> 4w x 7 x 7 -> logit, plus a class projection when conditional."""

    def __init__(self, width: int, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        features = 4 * width * 7 * 7
        self.body = nn.Sequential(
            nn.Conv2d(1, 2 * width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.head = nn.Linear(features + 1, 1)
        self.embed = nn.Embedding(num_classes, features) if num_classes else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)  # start unconditional; a N(0, 1) start makes logits of ~100

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)  # (B, 4w * 49)
        logit = self.head(torch.cat([h, minibatch_spread(h)], dim=1)).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is conditional: give the digit label of every image")
            logit = logit + (self.embed(y) * h).sum(dim=1)
        return logit


def build_generator(config: Config) -> nn.Module:  # a Generator
    if config.preset == "classic":
        return ClassicGenerator(config.latent_dim, config.width, config.g_norm)
    return ConvGenerator(
        config.latent_dim, config.width, NUM_CLASSES if config.conditional else 0, config.upsample, config.g_kernel
    )


def build_discriminator(config: Config) -> nn.Module:
    if config.preset == "classic":
        return ClassicDiscriminator(config.width, spread=config.d_spread == "minibatch")
    return ConvDiscriminator(config.width, NUM_CLASSES if config.conditional else 0)


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


# --- memory bound ---------------------------------------------------------------------------------------------

GIB = 2**30
MEMORY_SHARE = 0.8  # of the machine's memory a job may plan to use; the OS, the app and MNIST need the rest
BASE_BYTES = 600 * 2**20  # PyTorch itself and MNIST in memory, measured roughly
ACTIVATION_FACTOR = 4  # activations kept for backward: D sees real and fake, G's step goes back through D


class MemoryBoundError(ConfigError):
    """The settings need more memory than this machine has."""

    def __init__(self, field: str, value: object, message: str):
        ConfigError.__init__(self, field, value, "")
        self.args = (message,)

    def __str__(self) -> str:
        return self.args[0]


def _activation_elements(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Elements output by every leaf layer for one forward pass of `inputs` (on the meta device: no memory)."""
    total = [0]

    def count(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        total[0] += output.numel()

    hooks = [leaf.register_forward_hook(count) for leaf in module.modules() if not list(leaf.children())]
    try:
        module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]


@functools.lru_cache(maxsize=16)  # the start checks run twice a job (at once, then under the run's lock)
def estimate_training_bytes(config: Config) -> dict[str, int]:
    """Training memory of a config, from models built on the meta device (nothing is allocated): parameters
    times (weights, gradients, two Adam moments, and the EMA copy of G), plus activations for a batch. Building
    them imports PyTorch's compiler package (about a second, the label embeddings' initialisation goes through
    it on the meta device); `gan.jobs.warmup` needs it too, and torch.optim at the first optimiser."""
    with torch.device("meta"):
        G, D = build_generator(config), build_discriminator(config)
        batch = 2  # batch norm needs two; scaled to the real batch below
        z = torch.zeros(batch, config.latent_dim)
        y = torch.zeros(batch, dtype=torch.long) if config.conditional else None
        image = torch.zeros(batch, 1, IMAGE_SIZE, IMAGE_SIZE)
        elements = _activation_elements(G, z, y) + _activation_elements(D, image, y)
    state = 4 * (5 * count_parameters(G) + 4 * count_parameters(D))
    activations = 4 * ACTIVATION_FACTOR * elements // batch * config.batch_size
    return {"state": state, "activations": activations, "total": state + activations + BASE_BYTES}


def machine_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def check_memory(config: Config, available: int | None = None) -> None:
    """Refuse settings whose training would not fit in this machine's memory, saying how much and what to lower."""
    available = machine_memory() if available is None else available
    if not available:
        return
    need = estimate_training_bytes(config)
    if need["total"] <= MEMORY_SHARE * available:
        return
    field = "batch_size" if need["activations"] > need["state"] else "width"
    raise MemoryBoundError(
        field,
        getattr(config, field),
        f"these settings need about {need['total'] / GIB:.1f} GiB to train (model and optimiser "
        f"{need['state'] / GIB:.1f} GiB, activations of a batch {need['activations'] / GIB:.1f} GiB), but this "
        f"machine has {available / GIB:.1f} GiB: lower the width, the latent size or the batch size",
    )
