"""Quality scores of generated digits, measured by the digit judges (`gan.scoring.judge_models`) against the 10,000 test
digits.

- FID: Frechet distance between Gaussian fits of judge features (lower is better; real vs real is the floor),
  on both judges: they are built differently and notice different flaws.
- precision, recall, density, coverage (Kynkaanniemi et al. 2019; Naeem et al. 2020): k-nearest-neighbour
  balls around real and generated features of the first judge. Precision and density say how many samples look
  real, recall and coverage how much of the real variety the samples reach.
- classifier score: exp(E_x[KL(p(y|x) || p(y))]), from 1 to 10 (confident and diverse digits score high).
- class histogram, classes covered (classes with >= 1% of samples), mean confidence (mean max softmax).
- label agreement for conditional models: how often the judge reads the digit that was asked for.
- collapse warnings: digits that are missing or over-represented.

The test-set statistics are computed once per judge and kept in memory, so scoring 2,000 samples takes about a
second on two CPU cores.
"""

from __future__ import annotations

import math
import threading
import warnings
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from gan.data import DEFAULT_DATA_DIR, IMAGE_SIZE, NUM_CLASSES, load_mnist
from gan.lab.latent import sample
from gan.scoring.judge import Judges, load_judges
from gan.scoring.judge_models import Judge, judge_outputs
from gan.scoring.real_stats import real_fits
from gan.scoring.scores import Scores

COVERED_FRACTION = 0.01  # a class counts as covered when at least 1% of the samples are judged to be that digit
NEIGHBOURS = 5  # k of precision, recall, density and coverage, as in Naeem et al. 2020
REAL_KEY, NOISE_KEY = "real train vs test", "uniform noise"
EVAL_SAMPLES, EVAL_SEED = 2000, 12345  # per-epoch scoring; the nearest-neighbour scores compare equal counts
REFERENCE_SEED = 7  # which test digits are the real side of the nearest-neighbour scores


# -----------------------------------------------------------------------------
# Frechet distance


@dataclass(frozen=True)
class FeatureStats:
    """A Gaussian fit of judge features: mean (D,) and covariance (D, D), float64."""

    mean: np.ndarray
    cov: np.ndarray
    count: int


def feature_stats(features: np.ndarray | torch.Tensor) -> FeatureStats:
    """Fit a Gaussian to features (N, D) in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must have shape (N >= 2, D), got {features.shape}")
    return FeatureStats(features.mean(0), np.cov(features, rowvar=False), len(features))


def frechet_distance(a: FeatureStats, b: FeatureStats, eps: float = 1e-6) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), as in pytorch-fid."""
    import scipy.linalg  # here, not at the top: a third of a second that training's start need not wait for

    diff = a.mean - b.mean
    with warnings.catch_warnings():
        # dead ReLU features make both covariances singular; sqrtm still works but warns every time
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(a.cov @ b.cov)
        # a collapsed generator can give inf/NaN or large imaginary parts: regularise, as pytorch-fid does
        if not np.isfinite(covmean).all() or np.abs(np.imag(np.diagonal(covmean))).max() > 1e-3:
            offset = np.eye(len(a.cov)) * eps
            covmean = scipy.linalg.sqrtm((a.cov + offset) @ (b.cov + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * np.trace(covmean))


def fid(features_a: np.ndarray | torch.Tensor, features_b: np.ndarray | torch.Tensor) -> float:
    """Frechet distance between Gaussian fits of two feature sets, each (N, D)."""
    return frechet_distance(feature_stats(features_a), feature_stats(features_b))


# -----------------------------------------------------------------------------
# precision, recall, density, coverage


@dataclass(frozen=True)
class Neighbourhoods:
    """Feature vectors (N, D) and the distance from each to its k-th nearest neighbour in the set (N,)."""

    features: torch.Tensor
    radii: torch.Tensor


@dataclass(frozen=True)
class PRDC:
    precision: float  # share of fakes inside some real k-NN ball
    recall: float  # share of reals inside some fake k-NN ball
    density: float  # real balls holding a fake, per fake, over k: about 1 when fakes are distributed like reals
    coverage: float  # share of real balls holding at least one fake


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # exact differences rather than the matrix-product shortcut, so equal points are exactly 0 apart
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def neighbourhoods(features: np.ndarray | torch.Tensor, k: int = NEIGHBOURS) -> Neighbourhoods:
    """Each point's distance to its k-th nearest other point, in float64."""
    features = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    if features.ndim != 2 or len(features) <= k:
        raise ValueError(f"features must have shape (N > k={k}, D), got {tuple(features.shape)}")
    # k + 1: the nearest point to each is itself, at distance 0
    radii = _distances(features, features).kthvalue(k + 1, dim=1).values
    return Neighbourhoods(features, radii)


def precision_recall_density_coverage(
    real_features: np.ndarray | torch.Tensor | Neighbourhoods,
    fake_features: np.ndarray | torch.Tensor,
    k: int = NEIGHBOURS,
) -> PRDC:
    """Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020) of fake
    features (M, D) against real ones (N, D), with k-nearest-neighbour balls. Give `Neighbourhoods` for the real
    side to reuse its radii. Identical sets give 1, 1, (k + 1) / k, 1; far-apart sets give zeros."""
    real = real_features if isinstance(real_features, Neighbourhoods) else neighbourhoods(real_features, k)
    fake = neighbourhoods(fake_features, k)
    if fake.features.shape[1] != real.features.shape[1]:
        raise ValueError(f"feature sizes differ: real {real.features.shape[1]}, fake {fake.features.shape[1]}")
    distances = _distances(real.features, fake.features)  # (N, M)
    inside_real = distances <= real.radii[:, None]  # fake j inside real ball i
    inside_fake = distances <= fake.radii[None, :]  # real i inside fake ball j
    return PRDC(
        precision=inside_real.any(dim=0).double().mean().item(),
        recall=inside_fake.any(dim=1).double().mean().item(),
        density=inside_real.sum().item() / (k * len(fake.features)),
        coverage=inside_real.any(dim=1).double().mean().item(),
    )


# -----------------------------------------------------------------------------
# what each judge sees of the test set, computed once per (judge, data folder)


@dataclass(frozen=True)
class Reference:
    stats: FeatureStats  # all 10,000 test digits
    class_stats: tuple[FeatureStats, ...]  # each digit's test images (about 1,000 each), for per-class FID


_REFERENCE_LOCK = threading.Lock()
_REFERENCES: weakref.WeakKeyDictionary[Judge, dict[Path, Reference]] = weakref.WeakKeyDictionary()
_NEIGHBOURHOODS: weakref.WeakKeyDictionary[Judge, dict[Path, Neighbourhoods]] = weakref.WeakKeyDictionary()


def _once(store: weakref.WeakKeyDictionary, judge: Judge, data_dir: str | Path, compute: Callable[[], Any]) -> Any:
    """`compute()` the first time for a (judge, data folder), the stored result after; one computation at a time."""
    key = Path(data_dir).resolve()
    with _REFERENCE_LOCK:
        cached = store.setdefault(judge, {})
        if key not in cached:
            cached[key] = compute()
        return cached[key]


def reference(judge: Judge, data_dir: str | Path = DEFAULT_DATA_DIR) -> Reference:
    """The judge's view of the test digits (stored beside the judges), read once per (judge, data folder)."""

    def read() -> Reference:
        stats = real_fits(judge, lambda model, images: judge_outputs(model, images)[0], data_dir)  # stored
        by_class = tuple(FeatureStats(digit.mean, digit.cov, digit.count) for digit in stats.digits)
        return Reference(FeatureStats(stats.overall.mean, stats.overall.cov, stats.overall.count), by_class)

    return _once(_REFERENCES, judge, data_dir, read)


def reference_neighbourhoods(judge: Judge, data_dir: str | Path = DEFAULT_DATA_DIR) -> Neighbourhoods:
    """EVAL_SAMPLES test digits seen by the judge, with their nearest-neighbour radii: the real side of precision,
    recall, density and coverage. Computed once per (judge, data folder), and only for the judge that needs them
    (the first): a third of a second of the first score that the second judge's FID need not wait for."""

    def compute() -> Neighbourhoods:
        test = load_mnist(data_dir, "test")
        chosen = torch.randperm(len(test), generator=torch.Generator().manual_seed(REFERENCE_SEED))
        features, _ = judge_outputs(judge, test.images[chosen[:EVAL_SAMPLES]])  # as in a pass over all 10,000
        return neighbourhoods(features)

    return _once(_NEIGHBOURHOODS, judge, data_dir, compute)


def real_stats(judge: Judge, data_dir: str | Path = DEFAULT_DATA_DIR) -> FeatureStats:
    """Feature statistics of the 10,000 test images."""
    return reference(judge, data_dir).stats


# -----------------------------------------------------------------------------
# scores


def classifier_score(logits: torch.Tensor) -> float:
    """exp(E_x[KL(p(y|x) || p(y))]): 1 for identical or uniform predictions, 10 for confident and balanced."""
    log_p = F.log_softmax(logits.double(), dim=1)  # (N, 10)
    log_marginal = torch.logsumexp(log_p, dim=0) - math.log(len(log_p))  # (10,)
    kl = (log_p.exp() * (log_p - log_marginal)).sum(1)  # (N,)
    return math.exp(kl.mean().item())


def class_histogram(logits: torch.Tensor) -> tuple[float, ...]:
    counts = torch.bincount(logits.argmax(1), minlength=NUM_CLASSES)
    return tuple((counts.double() / len(logits)).tolist())


def collapse_warnings(histogram: tuple[float, ...] | list[float], low: float = 0.03, high: float = 0.25) -> list[str]:
    """Messages for digits below `low` or above `high` of the samples (a balanced generator gives ~10% each)."""
    expected = 1.0 / len(histogram)
    messages = []
    for digit, fraction in enumerate(histogram):
        if fraction < low:
            state = "missing" if fraction < COVERED_FRACTION else "rare"
            messages.append(f"digit {digit} is {state} ({fraction:.1%} of samples, expected ~{expected:.0%})")
        elif fraction > high:
            messages.append(f"digit {digit} is over-represented ({fraction:.0%} of samples, expected ~{expected:.0%})")
    return messages


def _check_images(images: torch.Tensor) -> None:
    shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
    if shape[1:] != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"images must be a tensor of shape (N, 1, {IMAGE_SIZE}, {IMAGE_SIZE}), got {shape}")
    if len(images) <= NEIGHBOURS:
        raise ValueError(f"images: need more than {NEIGHBOURS} images to score, got {len(images)}")


def evaluate_images(
    images: torch.Tensor,
    judges: Judges | Judge,
    requested_labels: torch.Tensor | None = None,
    data_dir: str | Path = DEFAULT_DATA_DIR,
) -> Scores:
    """Score generated images (N, 1, 28, 28) in [-1, 1] against the test digits: every score on the first
    judge, FID on the second one too (given `Judges` with a second judge)."""
    return _evaluate(images, judges, requested_labels, data_dir)[0]


def _evaluate(
    images: torch.Tensor, judges: Judges | Judge, requested_labels: torch.Tensor | None, data_dir: str | Path
) -> tuple[Scores, torch.Tensor]:
    """evaluate_images' scores and the first judge's features of the images, for per-class FID to reuse."""
    _check_images(images)
    if requested_labels is not None and tuple(requested_labels.shape) != (len(images),):
        raise ValueError(f"requested_labels must have shape ({len(images)},), got {tuple(requested_labels.shape)}")
    judges = judges if isinstance(judges, Judges) else Judges(judges)
    features, logits = judge_outputs(judges.first, images)
    histogram = class_histogram(logits)
    agreement = None
    if requested_labels is not None:
        agreement = (logits.argmax(1) == requested_labels.cpu()).double().mean().item()
    fid_second = None
    if judges.second is not None:
        second_features, _ = judge_outputs(judges.second, images)
        fid_second = frechet_distance(feature_stats(second_features), reference(judges.second, data_dir).stats)
    neighbours = precision_recall_density_coverage(reference_neighbourhoods(judges.first, data_dir), features)
    scores = Scores(
        fid=frechet_distance(feature_stats(features), reference(judges.first, data_dir).stats),
        classifier_score=classifier_score(logits),
        histogram=histogram,
        classes_covered=sum(fraction >= COVERED_FRACTION for fraction in histogram),
        mean_confidence=F.softmax(logits.double(), dim=1).amax(1).mean().item(),
        label_agreement=agreement,
        warnings=tuple(collapse_warnings(histogram)),
        fid_second=fid_second,
        **asdict(neighbours),
    )
    return scores, features


def reference_scores(
    judges: Judges | Judge, n: int = EVAL_SAMPLES, seed: int = 0, data_dir: str | Path = DEFAULT_DATA_DIR
) -> dict[str, Scores]:
    """The floor (n real training images vs the test set) and the ceiling (n uniform-noise images)."""
    generator = torch.Generator().manual_seed(seed)
    train = load_mnist(data_dir, "train")
    chosen = torch.randperm(len(train), generator=generator)[:n]
    noise = torch.rand(n, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator) * 2 - 1
    return {
        REAL_KEY: evaluate_images(train.images[chosen], judges, train.labels[chosen], data_dir),
        NOISE_KEY: evaluate_images(noise, judges, data_dir=data_dir),
    }


# -----------------------------------------------------------------------------
# scoring a generator


def score_generator(
    G: nn.Module, judges: Judges | Judge | None = None, count: int = EVAL_SAMPLES, seed: int = EVAL_SEED
) -> Scores:
    """Score `count` samples of G (for a conditional G, the ten digits in equal numbers, and the judge's
    agreement with them). The same seed every epoch makes the epochs' scores comparable."""
    images, labels = sample(G, count, seed)
    judges = judges if judges is not None else load_judges()
    scores, features = _evaluate(images, judges, labels, DEFAULT_DATA_DIR)
    if labels is None:
        return scores
    first = judges.first if isinstance(judges, Judges) else judges
    return replace(scores, per_class_fid=per_class_fid(images, labels, first, features))


# -----------------------------------------------------------------------------
# per-class FID (conditional generators)


def generator_per_class_fid(G: nn.Module, judge: Judge) -> tuple[float | None, ...]:
    """Per-digit FID of a conditional generator's samples, drawn as `score_generator` draws them (so the values
    match those saved with an epoch's scores): for epochs scored before per-digit FID was saved."""
    images, labels = sample(G, EVAL_SAMPLES, EVAL_SEED)
    return per_class_fid(images, labels, judge)


def real_class_stats(judge: Judge, data_dir: str | Path = DEFAULT_DATA_DIR) -> tuple[FeatureStats, ...]:
    """Feature statistics of the test digits of each class (about 1,000 each), once per (judge, data folder)."""
    return reference(judge, data_dir).class_stats


def per_class_fid(
    images: torch.Tensor, requested_labels: torch.Tensor, judge: Judge, features: torch.Tensor | None = None
) -> tuple[float | None, ...]:
    """FID of the samples asked to be each digit against the real test digits of that class (None for a digit
    with fewer than two samples). With 200 samples a class the values carry a small-sample bias: compare them
    across epochs and digits of one run, not with the all-digit FID. `features`: the judge's features of these
    images, when already computed."""
    _check_images(images)
    if features is None:
        features, _ = judge_outputs(judge, images)
    labels = requested_labels.cpu()
    out: list[float | None] = []
    for digit, reference_stats in enumerate(real_class_stats(judge)):
        chosen = features[labels == digit]
        out.append(frechet_distance(feature_stats(chosen), reference_stats) if len(chosen) >= 2 else None)
    return tuple(out)
