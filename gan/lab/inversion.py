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

from gan.lab.latent import is_conditional

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


@dataclass(frozen=True)
class _Targets:
    """Targets with what the loss compares against, row for row."""

    images: torch.Tensor  # (M, 1, 28, 28) in [-1, 1]
    features: torch.Tensor  # (M, F): the judge's features of each image
    scale: torch.Tensor  # (M,): the features' squared size, which makes the feature error relative

    @classmethod
    def of(cls, judge: nn.Module, images: torch.Tensor) -> _Targets:
        with torch.inference_mode():
            features = judge.features(images)
        return cls(images, features, features.square().sum(1).clamp_min(1e-6))

    def repeated(self, times: int) -> _Targets:
        """Each target `times` times in a row, to line up with `times` codes per target."""
        return _Targets(*(part.repeat_interleave(times, 0) for part in (self.images, self.features, self.scale)))


def _loss(
    G: nn.Module, judge: nn.Module, z: torch.Tensor, digits: torch.Tensor | None, targets: _Targets, weights: Weights
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row loss (M,) and the images (M, 1, 28, 28) for codes z (M, latent_dim) against targets (M rows)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=weights.bf16):
        images = G(z, digits).float()
        found_features = judge.features(images).float()
    pixels = (images - targets.images).square().flatten(1).mean(1)
    features = (found_features - targets.features).square().sum(1) / targets.scale
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
    images: torch.Tensor,
    steps: int,
    starts: int,
    pool: int,
    generator: torch.Generator,
    weights: Weights,
) -> Inversion:
    """Invert one batch of targets (n, 1, 28, 28): the pool, the search from its best starts, the best result."""
    targets = _Targets.of(judge, images)
    candidates = _candidate_digits(G, judge, images)  # (n, C)
    per_digit = max(1, starts // candidates.shape[1])
    z0 = _closest_of_pool(G, judge, targets, candidates, per_digit, pool, generator, weights)
    digits = candidates.repeat_interleave(per_digit, 1).flatten() if is_conditional(G) else None
    rows = candidates.shape[1] * per_digit  # refined starts per target
    marks = sorted({round(step) for step in torch.linspace(0, steps, PATH_POINTS).tolist()})
    z, snapshots = _refine(G, judge, z0, digits, targets.repeated(rows), marks, weights)
    return _best_start(G, judge, z, digits, targets, rows, snapshots, weights)


def _candidate_digits(G: nn.Module, judge: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The digits tried per target, (n, C): the judge's two likeliest for a conditional G, else one that G ignores."""
    if not is_conditional(G):
        return torch.zeros(len(images), 1, dtype=torch.long)
    with torch.inference_mode():
        return judge(images.float()).topk(2, dim=1).indices


def _closest_of_pool(
    G: nn.Module,
    judge: nn.Module,
    targets: _Targets,
    candidates: torch.Tensor,
    per_digit: int,
    pool: int,
    generator: torch.Generator,
    weights: Weights,
) -> torch.Tensor:
    """Draw `pool` random codes per (target, digit) and keep the `per_digit` whose images are already closest:
    (n * C * per_digit, latent_dim), the rows of each target together."""
    n, tried, latent_dim = len(candidates), candidates.shape[1], G.latent_dim
    z_pool = torch.randn(n, tried, pool, latent_dim, generator=generator)
    with torch.inference_mode():
        digits = candidates[:, :, None].expand(-1, -1, pool).flatten() if is_conditional(G) else None
        losses, _ = _loss(G, judge, z_pool.flatten(0, 2), digits, targets.repeated(tried * pool), weights)
    best = losses.view(n, tried, pool).topk(per_digit, dim=2, largest=False).indices
    return z_pool.gather(2, best[..., None].expand(-1, -1, -1, latent_dim)).reshape(-1, latent_dim)


def _refine(
    G: nn.Module,
    judge: nn.Module,
    z0: torch.Tensor,
    digits: torch.Tensor | None,
    targets: _Targets,
    marks: list[int],
    weights: Weights,
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Adam on z for every start of every target at once, for marks[-1] steps: the codes found, and the codes at
    each of the marks (step 0 is the start)."""
    z = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=weights.learning_rate)
    snapshots = {0: z0.clone()}
    with torch.enable_grad():
        for step in range(1, marks[-1] + 1):
            loss, _ = _loss(G, judge, z, digits, targets, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimizer.step()
            if step in marks:
                snapshots[step] = z.detach().clone()
    return z.detach(), snapshots


def _best_start(
    G: nn.Module,
    judge: nn.Module,
    z: torch.Tensor,
    digits: torch.Tensor | None,
    targets: _Targets,
    rows: int,
    snapshots: dict[int, torch.Tensor],
    weights: Weights,
) -> Inversion:
    """The start with the lowest loss per target (`rows` starts each, in order), and its path."""
    n = len(targets.images)
    with torch.inference_mode():
        final, images = _loss(G, judge, z, digits, targets.repeated(rows), weights)
        chosen = torch.arange(n) * rows + final.view(n, rows).argmin(1)  # (n,)
        chosen_digits = None if digits is None else digits[chosen]
        path = torch.stack([G(z_then[chosen], chosen_digits).float() for z_then in snapshots.values()], dim=1)
    images = images[chosen]
    return Inversion(
        z=z[chosen],
        digits=chosen_digits,
        images=images,
        distances=pixel_distance(images, targets.images),
        path=path,  # (n, P, 1, 28, 28)
        path_steps=tuple(snapshots),
    )
