"""The GAN's losses and D's regularisers, as pure functions of D's raw outputs (logits) and the images.

D minimises `discriminator_loss` and G minimises `generator_loss`:

- bce:        D: -log D(x) - log(1 - D(G(z)));  G: -log D(G(z)) (non-saturating: strong gradients when D wins)
- saturating: D as bce;  G: log(1 - D(G(z))), the original minimax objective, whose gradient vanishes when D wins
- hinge:      D: max(0, 1 - D(x)) + max(0, 1 + D(G(z)));  G: -D(G(z))
- lsgan:      D: (D(x) - 1)^2 / 2 + D(G(z))^2 / 2;  G: (D(G(z)) - 1)^2 / 2 (Mao et al., 2017)
- wgan-gp:    D is a critic: D(G(z)) - D(x) + 10 (|grad D(x_mix)| - 1)^2;  G: -D(G(z)) (Gulrajani et al., 2017)

Regularisers: wgan-gp's `gradient_penalty`, R1's `r1_penalty` on real images, and the `translate` augmentation
that shifts every image D sees. `d_belief` reads D's outputs as beliefs that images are real, for charts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHIFT = 3  # pixels of the translate augmentation, an eighth of the image (Zhao et al., 2020)


def discriminator_loss(loss: str, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """D's loss on its raw outputs; for wgan-gp without the gradient penalty (see `gradient_penalty`)."""
    if loss == "hinge":
        return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()
    if loss == "lsgan":
        return 0.5 * (logits_real - 1).square().mean() + 0.5 * logits_fake.square().mean()
    if loss == "wgan-gp":
        return logits_fake.mean() - logits_real.mean()
    # bce and saturating: maximise log D(x) + log(1 - D(G(z))), written with softplus for stability
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def generator_loss(loss: str, logits_fake: torch.Tensor) -> torch.Tensor:
    if loss in ("hinge", "wgan-gp"):
        return -logits_fake.mean()
    if loss == "lsgan":
        return 0.5 * (logits_fake - 1).square().mean()
    if loss == "saturating":
        # minimise log(1 - D(G(z))) = -softplus(logit): its gradient, -D(G(z)), vanishes as D rejects the fakes
        return -F.softplus(logits_fake).mean()
    # non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z)))
    return F.softplus(-logits_fake).mean()


def gradient_penalty(
    D: nn.Module, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None, mix: torch.Tensor
) -> torch.Tensor:
    """Mean (|grad_x D(x)| - 1)^2 at x = mix * real + (1 - mix) * fake, with `mix` (B, 1, 1, 1) in [0, 1]."""
    mixed = (mix * real + (1 - mix) * fake).requires_grad_(True)
    scores = D(mixed, y).float()
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)  # (B, 1, 28, 28)
    norms = (grad.flatten(1).square().sum(1) + 1e-12).sqrt()  # the epsilon keeps the norm differentiable at 0
    return (norms - 1).square().mean()


def r1_penalty(D: nn.Module, real: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Mean |grad_x D(x)|^2 on real images (Mescheder et al., 2018): D is pushed to be flat where the data is, so
    it cannot keep sharpening its boundary on the real digits and G's updates stop overshooting."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real, y).float().sum(), real, create_graph=True)
    return grad.flatten(1).square().sum(1).mean()


def translate(images: torch.Tensor, generator: torch.Generator, shift: int = SHIFT) -> torch.Tensor:
    """Each image moved by its own random whole-pixel offset in [-shift, shift] both ways, the uncovered border
    filled with the background (-1). Differentiable, so G learns through it: D cannot memorise where strokes sit,
    and G gains nothing by drawing shifted digits, since D sees real digits shifted alike (Zhao et al., 2020)."""
    count, _, height, width = images.shape
    offsets = torch.randint(-shift, shift + 1, (2, count, 1, 1), generator=generator).to(images.device)
    padded = F.pad(images, (shift, shift, shift, shift), value=-1.0)
    rows = torch.arange(height, device=images.device).view(1, height, 1) + shift + offsets[0]
    cols = torch.arange(width, device=images.device).view(1, 1, width) + shift + offsets[1]
    index = torch.arange(count, device=images.device).view(count, 1, 1)
    return padded[index, 0, rows, cols].unsqueeze(1)


def d_belief(loss: str, logits: torch.Tensor) -> torch.Tensor | None:
    """D's outputs as beliefs that images are real (0 to 1), for charts; None for a wgan-gp critic."""
    if loss == "wgan-gp":
        return None
    if loss == "lsgan":
        return logits  # its targets are 1 (real) and 0 (fake): the output reads as a belief already
    return torch.sigmoid(logits)
