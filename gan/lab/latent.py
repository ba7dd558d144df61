"""The latent space: sampling by seed and digit, interpolation (linear or spherical), principal directions
(GANSpace: PCA of the generator's first-layer features, mapped back to noise space), and the nearest real
training digits to a sample ("is it copying?")."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gan.data import NUM_CLASSES, Dataset
from gan.models import Generator


def noise(latent_dim: int, count: int, seed: int) -> torch.Tensor:
    return torch.randn(count, latent_dim, generator=torch.Generator().manual_seed(seed))


def spread_labels(count: int, digit: int | None = None) -> torch.Tensor:
    """The requested digit for every sample, or the ten digits in turn (0, 1, ..., 9, 0, ...)."""
    if digit is not None and not 0 <= digit < NUM_CLASSES:
        raise ValueError(f"digit={digit} is not allowed: a digit from 0 to 9")
    return torch.full((count,), digit) if digit is not None else torch.arange(count) % NUM_CLASSES


def is_conditional(G: Generator) -> bool:
    return getattr(G, "num_classes", 0) > 0


@torch.inference_mode()
def generate(
    G: Generator, z: torch.Tensor, labels: torch.Tensor | None = None, label_embedding: torch.Tensor | None = None
) -> torch.Tensor:
    """Images (N, 1, 28, 28) in [-1, 1] on the CPU; labels are ignored by unconditional generators."""
    device = next(G.parameters()).device
    labels = labels.to(device) if labels is not None and is_conditional(G) else None
    if label_embedding is not None:
        return G(z.to(device), None, label_embedding.to(device)).float().cpu()
    return G(z.to(device), labels).float().cpu()


def sample(G: Generator, count: int, seed: int, digit: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`count` images for a seed; conditional generators draw `digit`, or all ten digits in turn."""
    z = noise(G.latent_dim, count, seed)
    labels = spread_labels(count, digit) if is_conditional(G) else None
    return generate(G, z, labels), labels


def digit_grid(G: Generator, styles: int, seed: int) -> torch.Tensor:
    """For a conditional G: 10 rows (digits 0-9) x `styles` columns; each column shares one noise vector, so
    the style is held while the class changes. Returns (10 * styles, 1, 28, 28), row by row."""
    z = noise(G.latent_dim, styles, seed).repeat(NUM_CLASSES, 1)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(styles)
    return generate(G, z, labels)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: keeps the norm typical of Gaussian noise, where lerp's midpoints shrink."""
    a_unit, b_unit = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_unit * b_unit).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    sin_omega = torch.sin(omega)
    if float(sin_omega.abs().min()) < 1e-6:
        return lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin_omega


def interpolate(
    G: Generator,
    seed_a: int,
    seed_b: int,
    steps: int,
    spherical: bool = True,
    digit_a: int | None = None,
    digit_b: int | None = None,
) -> torch.Tensor:
    """`steps` images from seed_a's noise to seed_b's; a conditional G also morphs digit_a into digit_b by
    blending the two label embeddings linearly."""
    a, b = noise(G.latent_dim, 1, seed_a), noise(G.latent_dim, 1, seed_b)
    return interpolate_codes(G, a, b, steps, spherical, digit_a, digit_b)


def interpolate_codes(
    G: Generator,
    a: torch.Tensor,
    b: torch.Tensor,
    steps: int,
    spherical: bool = True,
    digit_a: int | None = None,
    digit_b: int | None = None,
) -> torch.Tensor:
    """`steps` images from code a (1, latent_dim) to code b, e.g. from a code found by inversion."""
    if not 2 <= steps <= 256:
        raise ValueError(f"steps={steps} is not allowed: a whole number from 2 to 256")
    t = torch.linspace(0, 1, steps).unsqueeze(1)  # (steps, 1)
    z = (slerp if spherical else lerp)(a, b, t)  # (steps, latent_dim)
    if not is_conditional(G):
        return generate(G, z)
    with torch.inference_mode():
        first = G.embed(spread_labels(1, digit_a or 0).to(next(G.parameters()).device)).cpu()
        last = G.embed(spread_labels(1, digit_a if digit_b is None else digit_b).to(first.device)).cpu()
    return generate(G, z, label_embedding=lerp(first, last, t))


@dataclass(frozen=True)
class Directions:
    vectors: torch.Tensor  # (k, latent_dim), unit length: one step is one standard deviation of the noise
    explained: tuple[float, ...]  # share of the feature variance along each principal component


@torch.inference_mode()
def principal_directions(G: Generator, count: int = 5, samples: int = 2000, seed: int = 0) -> Directions:
    """GANSpace (Harkonen et al., 2020): PCA of first-layer features over random noise, then a least-squares map
    from PCA coordinates back to the noise that produced them gives one noise-space direction per component."""
    z = noise(G.latent_dim, samples, seed)
    labels = spread_labels(samples) if is_conditional(G) else None
    device = next(G.parameters()).device
    features = G.first_features(z.to(device), None if labels is None else labels.to(device)).float().cpu()
    centred = features - features.mean(0)
    _, singular, components = torch.linalg.svd(centred, full_matrices=False)  # components: (F, F) rows
    coordinates = centred @ components[:count].T  # (samples, count)
    mapping = torch.linalg.lstsq(coordinates, z).solution  # (count, latent_dim)
    vectors = mapping / mapping.norm(dim=1, keepdim=True)
    variance = singular.square()
    return Directions(vectors, tuple((variance[:count] / variance.sum()).tolist()))


def move_along(z: torch.Tensor, directions: Directions, amounts: list[float]) -> torch.Tensor:
    """Noise moved `amounts[i]` standard deviations along direction i."""
    shift = torch.tensor(amounts, dtype=z.dtype) @ directions.vectors[: len(amounts)]
    return z + shift


@dataclass(frozen=True)
class Neighbours:
    indices: torch.Tensor  # (N, k) into the training set
    distances: torch.Tensor  # (N, k), Euclidean, in pixels scaled to [0, 1]
    images: torch.Tensor  # (N, k, 1, 28, 28) in [-1, 1]


@torch.inference_mode()
def nearest_real(images: torch.Tensor, data: Dataset, k: int = 5) -> Neighbours:
    """The k training digits closest to each image in pixel space. A sample much closer to one training digit
    than real test digits are (see `typical_distance`) is probably a copy."""
    queries, pool = images.float().cpu().flatten(1), data.images.cpu().flatten(1)  # (N, 784), (M, 784) in [-1, 1]
    # The fast matrix-product distances lose a little precision; re-measure the few best candidates exactly.
    _, candidates = torch.cdist(queries, pool).topk(min(4 * k, len(pool)), dim=1, largest=False)  # (N, 4k)
    exact = (queries.unsqueeze(1) - pool[candidates]).norm(dim=2) / 2  # halved: distances in [0, 1] pixel units
    nearest, order = exact.topk(k, dim=1, largest=False)
    indices = candidates.gather(1, order)
    return Neighbours(indices, nearest, data.images.cpu()[indices])


def typical_distance(train: Dataset, test: Dataset, count: int = 200) -> float:
    """The median distance from a real unseen (test) digit to its nearest training digit: the yardstick."""
    return float(nearest_real(test.images[:count], train, k=1).distances.median())


def direction_atlas(
    G: Generator, z: torch.Tensor, directions: Directions, digit: int | None = None, steps: int = 7, extent: float = 3.0
) -> torch.Tensor:
    """One row per direction: the sample of `z` (1, latent_dim) moved from -extent to +extent standard deviations
    along it, in `steps` steps; (directions * steps, 1, 28, 28)."""
    offsets = torch.linspace(-extent, extent, steps).tolist()
    count = len(directions.explained)
    moved = torch.cat(
        [move_along(z, directions, [0.0] * index + [offset]) for index in range(count) for offset in offsets]
    )
    labels = None if digit is None else torch.full((len(moved),), digit)
    return generate(G, moved, labels)


COPY_RATIO, CLOSE_RATIO = 0.5, 1.0  # of the distance real unseen digits keep from their nearest training digit


@dataclass(frozen=True)
class CopyVerdict:
    """How a sample's nearest training digit compares with the yardstick of real unseen digits."""

    distance: float  # to the nearest training digit
    typical: float  # a real unseen digit's usual distance to its nearest training digit
    level: str  # "copy" (below half the yardstick), "close" (below it) or "novel"

    @property
    def ratio(self) -> float:
        return self.distance / self.typical if self.typical else math.inf


def copy_verdict(distance: float, typical: float) -> CopyVerdict:
    """Is a sample at `distance` from its nearest training digit probably a copy of it?"""
    ratio = distance / typical if typical else math.inf
    level = "copy" if ratio < COPY_RATIO else "close" if ratio < CLOSE_RATIO else "novel"
    return CopyVerdict(distance, typical, level)
