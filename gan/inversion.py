"""GAN inversion: the latent code (and, for a conditional generator, the digit) whose image is closest to a target.

For each target: draw a pool of random codes, keep the few whose images are already closest (a cheap forward
pass), then refine those starts together with Adam on z for a few hundred steps, and keep the best. The loss is
the pixel error plus the error in the digit judge's features (pixels alone reward a blurry average; the judge's
features keep the strokes), plus a prior that holds |z|^2 near its typical value, latent_dim, so the code stays
where the generator was trained. A conditional generator tries the judge's two likeliest digits for the target.

Every target and start is one row of one batch: the generator and judge are in eval mode (no batch statistics),
so the rows do not interact and Adam's per-coordinate steps make the batch N independent searches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gan.latent import is_conditional

POOL = 64  # random codes looked at per target and candidate digit
STARTS = 4  # of which this many are refined
STEPS = 200
LEARNING_RATE = 0.05
PATH_POINTS = 8  # snapshots of the search kept for the strip "from a random start to the result"
BATCH = 64  # targets per batch


@dataclass(frozen=True)
class Inversion:
    z: torch.Tensor  # (N, latent_dim)
    digits: torch.Tensor | None  # (N,) for a conditional generator
    images: torch.Tensor  # (N, 1, 28, 28) in [-1, 1]: G(z, digit)
    distances: torch.Tensor  # (N,) Euclidean pixel distance to the target, pixels in [0, 1] (as nearest_real)
    path: torch.Tensor  # (N, PATH_POINTS, 1, 28, 28): the chosen start's image along the search, first to last
    path_steps: tuple[int, ...]  # the step of each path image


@dataclass(frozen=True)
class Weights:
    """The loss: pixels (mean squared error in [-1, 1]) + features * relative judge-feature error
    + prior * (|z|^2 / latent_dim - 1)^2; Adam's learning rate."""

    features: float = 1.0
    prior: float = 0.05
    learning_rate: float = LEARNING_RATE
    bf16: bool = False  # run G and the judge under bf16 autocast (as bf16-trained runs were): about 2x faster


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance per image, pixels scaled to [0, 1] (images in [-1, 1], so halved)."""
    return (a - b).flatten(1).norm(dim=1) / 2


def _candidate_digits(judge: nn.Module, targets: torch.Tensor, count: int) -> torch.Tensor:
    with torch.inference_mode():
        return judge(targets.float()).topk(count, dim=1).indices  # (N, count)


def _loss(
    G: nn.Module,
    judge: nn.Module,
    z: torch.Tensor,
    digits: torch.Tensor | None,
    targets: torch.Tensor,
    target_features: torch.Tensor,
    feature_scale: torch.Tensor,
    weights: Weights,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row loss (M,) and the images (M, 1, 28, 28) for codes z (M, latent_dim) against targets (M, ...)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=weights.bf16):
        images = G(z, digits).float()
        found_features = judge.features(images).float()
    pixels = (images - targets).square().flatten(1).mean(1)
    features = (found_features - target_features).square().sum(1) / feature_scale
    prior = (z.square().mean(1) - 1).square()
    return pixels + weights.features * features + weights.prior * prior, images


def invert(
    G: nn.Module,
    judge: nn.Module,
    targets: torch.Tensor,
    steps: int = STEPS,
    starts: int = STARTS,
    pool: int = POOL,
    seed: int = 0,
    batch: int = BATCH,
    weights: Weights | None = None,
) -> Inversion:
    """Invert targets (N, 1, 28, 28) in [-1, 1], `batch` targets at a time. Deterministic for a seed."""
    if targets.ndim != 4 or tuple(targets.shape[1:]) != (1, 28, 28) or len(targets) == 0:
        raise ValueError(f"targets must have shape (N >= 1, 1, 28, 28), got {tuple(targets.shape)}")
    if not 1 <= steps <= 5000:
        raise ValueError(f"steps={steps} is not allowed: a whole number from 1 to 5000")
    if not 1 <= starts <= pool:
        raise ValueError(f"starts={starts} is not allowed: from 1 to the pool size {pool}")
    G.eval().requires_grad_(False)
    judge.eval().requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    parts = [
        _invert_batch(
            G, judge, targets[first : first + batch].float(), steps, starts, pool, generator, weights or Weights()
        )
        for first in range(0, len(targets), batch)
    ]
    return Inversion(
        z=torch.cat([part.z for part in parts]),
        digits=None if parts[0].digits is None else torch.cat([part.digits for part in parts]),
        images=torch.cat([part.images for part in parts]),
        distances=torch.cat([part.distances for part in parts]),
        path=torch.cat([part.path for part in parts]),
        path_steps=parts[0].path_steps,
    )


def _invert_batch(
    G: nn.Module,
    judge: nn.Module,
    targets: torch.Tensor,
    steps: int,
    starts: int,
    pool: int,
    generator: torch.Generator,
    weights: Weights,
) -> Inversion:
    n, latent_dim = len(targets), G.latent_dim
    conditional = is_conditional(G)
    with torch.inference_mode():
        target_features = judge.features(targets)
    feature_scale = target_features.square().sum(1).clamp_min(1e-6)  # (n,): a relative feature error

    # candidates: (n, C) digits tried per target (C = 2 for a conditional G, else one "digit" that is ignored)
    candidates = _candidate_digits(judge, targets, 2) if conditional else torch.zeros(n, 1, dtype=torch.long)
    per_digit = max(1, starts // candidates.shape[1])
    rows = candidates.shape[1] * per_digit  # refined starts per target

    # 1. the pool: keep the `per_digit` codes per (target, digit) whose images are already closest
    z_pool = torch.randn(n, candidates.shape[1], pool, latent_dim, generator=generator)
    with torch.inference_mode():
        flat_z = z_pool.flatten(0, 2)
        flat_digits = candidates[:, :, None].expand(-1, -1, pool).flatten() if conditional else None
        repeat = candidates.shape[1] * pool
        losses, _ = _loss(
            G,
            judge,
            flat_z,
            flat_digits,
            targets.repeat_interleave(repeat, 0),
            target_features.repeat_interleave(repeat, 0),
            feature_scale.repeat_interleave(repeat, 0),
            weights,
        )
    best = losses.view(n, candidates.shape[1], pool).topk(per_digit, dim=2, largest=False).indices
    z0 = z_pool.gather(2, best[..., None].expand(-1, -1, -1, latent_dim)).reshape(n * rows, latent_dim)
    digits = candidates.repeat_interleave(per_digit, 1).flatten() if conditional else None

    # 2. Adam on z for every start of every target at once
    z = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=weights.learning_rate)
    expanded = (
        targets.repeat_interleave(rows, 0),
        target_features.repeat_interleave(rows, 0),
        feature_scale.repeat_interleave(rows, 0),
        weights,
    )
    marks = sorted({round(step) for step in torch.linspace(0, steps, PATH_POINTS).tolist()})
    snapshots = {0: z0.clone()}
    with torch.enable_grad():
        for step in range(1, steps + 1):
            loss, _ = _loss(G, judge, z, digits, *expanded)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimizer.step()
            if step in marks:
                snapshots[step] = z.detach().clone()

    # 3. the best start per target, and its path
    with torch.inference_mode():
        final, images = _loss(G, judge, z.detach(), digits, *expanded)
        choice = final.view(n, rows).argmin(1)  # (n,)
        chosen = torch.arange(n) * rows + choice
        chosen_digits = None if digits is None else digits[chosen]
        path = torch.stack(
            [G(snapshots[mark][chosen], chosen_digits).float() for mark in marks], dim=1
        )  # (n, P, 1, 28, 28)
    images = images[chosen]
    return Inversion(
        z=z.detach()[chosen],
        digits=chosen_digits,
        images=images,
        distances=pixel_distance(images, targets),
        path=path,
        path_steps=tuple(marks),
    )
