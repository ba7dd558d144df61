"""The D's-eye map: a 2-D map of digit space with real and generated digits, each coloured by one epoch's D.

The map's axes are the first two principal components of the digit judge's features of the 10,000 real test
digits. They depend on the judge only, not on the run, so they are fitted once and every epoch of every run is
drawn on the same axes. On them: about 1,000 fixed real test digits (a hundred of each class) and an epoch's
500 samples from fixed noise, each with that epoch's D probability of "real". Over the epochs a learner sees
the generated cloud move onto the real clusters and D's opinions of the two converge; a collapsed run leaves
real clusters empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gan.data import NUM_CLASSES, Dataset
from gan.lab.latent import sample
from gan.lab.probe import d_logits

REAL_POINTS = 1000
FAKE_POINTS = 500
MAP_SEED = 4242  # the generated points: the same noise (and digits) every epoch
FEATURE_BATCH = 1000


@dataclass(frozen=True)
class Projection:
    """PCA to two dimensions: coordinates = (features - mean) @ axes.T."""

    mean: np.ndarray  # (F,)
    axes: np.ndarray  # (2, F), orthonormal rows
    explained: tuple[float, float]  # share of the feature variance along each axis

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - self.mean) @ self.axes.T  # (N, 2)


def fit_projection(features: np.ndarray) -> Projection:
    """The two principal axes of features (N, F), each signed so that its largest loading is positive (the
    same data always gives the same picture, not a mirror image)."""
    features = np.asarray(features, dtype=np.float64)
    mean = features.mean(0)
    _, singular, rows = np.linalg.svd(features - mean, full_matrices=False)
    axes = rows[:2] * np.sign(rows[:2][np.arange(2), np.abs(rows[:2]).argmax(1)])[:, None]
    variance = singular**2
    return Projection(mean, axes, (float(variance[0] / variance.sum()), float(variance[1] / variance.sum())))


@torch.inference_mode()
def judge_outputs(judge: nn.Module, images: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """The judge's features (N, F) as float64 numpy and its softmax probabilities (N, 10), in batches."""
    features, probabilities = [], []
    for start in range(0, len(images), FEATURE_BATCH):
        h = judge.features(images[start : start + FEATURE_BATCH].float())
        features.append(h.double().numpy())
        probabilities.append(torch.softmax(judge.classify(h).float(), dim=1))
    return np.concatenate(features), torch.cat(probabilities)


@dataclass(frozen=True)
class RealPoints:
    """The fixed real digits of the map (the same for every run and epoch)."""

    projection: Projection
    images: torch.Tensor  # (R, 1, 28, 28) in [-1, 1]
    labels: torch.Tensor  # (R,) the true digit
    indices: torch.Tensor  # (R,) into the test set
    xy: np.ndarray  # (R, 2)
    read: torch.Tensor  # (R,) the judge's reading
    confidence: torch.Tensor  # (R,)


def real_points(judge: nn.Module, test: Dataset, count: int = REAL_POINTS, seed: int = 0) -> RealPoints:
    """Fit the projection on all test digits' judge features and pick `count` of them, the same number of
    each class (a seeded choice)."""
    features, probabilities = judge_outputs(judge, test.images)
    projection = fit_projection(features)
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    per_class = count // NUM_CLASSES
    chosen = torch.cat([order[test.labels[order] == digit][:per_class] for digit in range(NUM_CLASSES)])
    confidence, read = probabilities[chosen].max(1)
    return RealPoints(
        projection,
        test.images[chosen],
        test.labels[chosen],
        chosen,
        projection(features[chosen.numpy()]),
        read,
        confidence,
    )


@dataclass(frozen=True)
class EpochMap:
    """One epoch's view: D's probability of "real" for the fixed real digits and for the epoch's samples."""

    real_probability: np.ndarray  # (R,)
    fake_xy: np.ndarray  # (M, 2)
    fake_probability: np.ndarray  # (M,)
    fake_images: torch.Tensor  # (M, 1, 28, 28) in [-1, 1]
    fake_digits: torch.Tensor | None  # (M,) the digit asked for (conditional runs)
    fake_read: torch.Tensor  # (M,) the judge's reading
    fake_confidence: torch.Tensor  # (M,)


def epoch_map(
    G: nn.Module,
    D: nn.Module,
    batch_size: int,
    real: RealPoints,
    judge: nn.Module,
    count: int = FAKE_POINTS,
    bf16: bool = False,
) -> EpochMap:
    """Draw `count` samples from the map's fixed noise and judge both sets with D in batches of the run's batch
    size, real with real and fake with fake, as in training (D's minibatch spread feature sees whole batches).
    `bf16` runs G and D under bf16 autocast, as a bf16-trained run did in training (about 2x faster)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        images, digits = sample(G, count, MAP_SEED)
        real_logits = d_logits(D, real.images, real.labels, batch_size)
        fake_logits = d_logits(D, images, digits, batch_size)
    features, probabilities = judge_outputs(judge, images)
    confidence, read = probabilities.max(1)
    return EpochMap(
        real_probability=torch.sigmoid(real_logits).double().numpy(),
        fake_xy=real.projection(features),
        fake_probability=torch.sigmoid(fake_logits).double().numpy(),
        fake_images=images,
        fake_digits=digits,
        fake_read=read,
        fake_confidence=confidence,
    )


def ranked_by_d(found: EpochMap, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The `count` samples D finds most real (most real first) and least real (least real first)."""
    order = torch.from_numpy(np.argsort(-found.fake_probability, kind="stable"))
    return order[:count], order.flip(0)[:count]


@dataclass(frozen=True)
class Summary:
    """What the map says in numbers: D's mean opinion of each side and how much of each real class the
    generated cloud reaches."""

    mean_real: float
    mean_fake: float
    classes_reached: int  # real classes with at least one generated point among their nearest on the map


def summary(real: RealPoints, found: EpochMap, radius_quantile: float = 0.5) -> Summary:
    """A real class counts as reached when some generated point lies within the class's median distance of its
    centre on the map."""
    reached = 0
    for digit in range(NUM_CLASSES):
        points = real.xy[real.labels.numpy() == digit]
        centre = points.mean(0)
        radius = np.quantile(np.linalg.norm(points - centre, axis=1), radius_quantile)
        reached += bool((np.linalg.norm(found.fake_xy - centre, axis=1) <= radius).any())
    return Summary(float(found.real_probability.mean()), float(found.fake_probability.mean()), reached)
