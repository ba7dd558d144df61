"""The real test digits as a judge sees them, kept on disk: Gaussian fits (mean and covariance, float64) of the
judge's features of all 10,000 test digits and of each digit's, the real side of every FID.

Computing them runs the judge over the 10,000 test digits: several seconds on a small CPU, on the way to a run's
first score. They never change for a given judge and test set, so the shipped judges' fits ship beside them
(`gan/scoring/judges/<judge>.stats.safetensors`, about 850 kB for both judges) and any other judge's are computed
once and kept in the cache folder (`<cache>/judge/<judge>-<weights>.stats.safetensors`). A file holds the SHA-256
of the judge's weights and of the test digits it was computed from, and is used only when both match; covariances
are stored as their upper triangles. `python -m gan.scoring.real_stats` rewrites the shipped files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save as safetensors_bytes

from gan.data import DEFAULT_DATA_DIR, NUM_CLASSES, cache_dir, load_mnist, split_files
from gan.store.files import atomic_write

FORMAT_VERSION = "1"
SHIPPED_DIR = Path(__file__).resolve().parent / "judges"


@dataclass(frozen=True)
class Fit:
    """A Gaussian fit of features (N, D): mean (D,), covariance (D, D), both float64, and N."""

    mean: np.ndarray
    cov: np.ndarray
    count: int


@dataclass(frozen=True)
class RealStats:
    """A judge's fits of the test digits: all of them, and each digit's (0-9)."""

    overall: Fit
    digits: tuple[Fit, ...]


def fit(features: np.ndarray | torch.Tensor) -> Fit:
    """The Gaussian fit of features (N, D) in float64, as every FID here takes it."""
    features = np.asarray(features, dtype=np.float64)
    return Fit(features.mean(0), np.cov(features, rowvar=False), len(features))


def compute(features: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> RealStats:
    """The fits of test features (N, D) with their labels (N,)."""
    features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels)
    return RealStats(fit(features), tuple(fit(features[labels == digit]) for digit in range(NUM_CLASSES)))


# -----------------------------------------------------------------------------
# what a file must match: the judge's weights and the test digits


def weights_sha256(judge: torch.nn.Module) -> str:
    """The SHA-256 of a network's weights and buffers (names, dtypes, shapes, bytes), whatever file they came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(judge.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def test_digits_sha256(data_dir: str | Path = DEFAULT_DATA_DIR) -> str:
    """The SHA-256 of the test split's image and label files, as stored (gzipped or not)."""
    digest = hashlib.sha256()
    for path in split_files(data_dir, "test"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


# -----------------------------------------------------------------------------
# files


def encode(stats: RealStats, judge_sha256: str, data_sha256: str) -> bytes:
    upper = np.triu_indices(len(stats.overall.mean))
    tensors = {
        "mean": stats.overall.mean,
        "cov_upper": stats.overall.cov[upper],
        "count": np.array([stats.overall.count], dtype=np.int64),
        "digit_means": np.stack([digit.mean for digit in stats.digits]),
        "digit_covs_upper": np.stack([digit.cov[upper] for digit in stats.digits]),
        "digit_counts": np.array([digit.count for digit in stats.digits], dtype=np.int64),
    }
    metadata = {"format_version": FORMAT_VERSION, "judge_sha256": judge_sha256, "test_sha256": data_sha256}
    return safetensors_bytes(tensors, metadata={"real_stats": json.dumps(metadata, sort_keys=True)})


def _full(upper_values: np.ndarray, size: int) -> np.ndarray:
    matrix = np.zeros((size, size))
    matrix[np.triu_indices(size)] = upper_values
    return matrix + np.triu(matrix, 1).T


def read(path: Path, judge_sha256: str, data_sha256: str) -> RealStats | None:
    """The fits in a file made for this judge and these test digits; None when absent, damaged or made for others."""
    try:
        with safe_open(path, framework="numpy") as file:
            metadata = json.loads((file.metadata() or {}).get("real_stats", "{}"))
            wanted = {"format_version": FORMAT_VERSION, "judge_sha256": judge_sha256, "test_sha256": data_sha256}
            if metadata != wanted:
                return None
            values = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118 - a safetensors file, not a dict
        size = len(values["mean"])
        digits = tuple(
            Fit(values["digit_means"][digit], _full(values["digit_covs_upper"][digit], size), int(count))
            for digit, count in enumerate(values["digit_counts"])
        )
        overall = Fit(values["mean"], _full(values["cov_upper"], size), int(values["count"][0]))
    except Exception:  # safetensors, JSON, key and shape errors of a damaged file: read as absent
        return None
    if len(digits) != NUM_CLASSES or overall.cov.shape != (size, size):
        return None
    return RealStats(overall, digits)


def shipped_path(name: str) -> Path:
    return SHIPPED_DIR / f"{name}.stats.safetensors"


def cached_path(name: str, judge_sha256: str) -> Path:
    return cache_dir() / "judge" / f"{name}-{judge_sha256[:16]}.stats.safetensors"


# -----------------------------------------------------------------------------
# the fits of a judge: shipped, else cached, else computed once (and cached)

_LOCK = threading.Lock()


def real_fits(judge: torch.nn.Module, features_of, data_dir: str | Path = DEFAULT_DATA_DIR) -> RealStats:
    """The judge's fits of the test digits in `data_dir`. `features_of(judge, images)` gives features (N, D); it
    runs only when neither the shipped file nor the cache holds them."""
    name = getattr(judge, "metadata", {}).get("name", type(judge).__name__)
    judge_sha256, data_sha256 = weights_sha256(judge), test_digits_sha256(data_dir)
    with _LOCK:
        for path in (shipped_path(name), cached_path(name, judge_sha256)):
            stored = read(path, judge_sha256, data_sha256)
            if stored is not None:
                return stored
        test = load_mnist(data_dir, "test")
        stats = compute(features_of(judge, test.images), test.labels)
        with contextlib.suppress(OSError):  # an unwritable cache: computed again next time
            atomic_write(cached_path(name, judge_sha256), encode(stats, judge_sha256, data_sha256))
        return stats


def write_shipped(judges: dict[str, torch.nn.Module], features_of, data_dir: str | Path = DEFAULT_DATA_DIR) -> None:
    """Compute and write the shipped judges' files (for `python -m gan.scoring.real_stats`)."""
    test, data_sha256 = load_mnist(data_dir, "test"), test_digits_sha256(data_dir)
    for name, judge in judges.items():
        stats = compute(features_of(judge, test.images), test.labels)
        atomic_write(shipped_path(name), encode(stats, weights_sha256(judge), data_sha256))
        print(f"wrote {shipped_path(name)} ({shipped_path(name).stat().st_size:,} bytes)")


if __name__ == "__main__":
    from gan.scoring.judge import load_judges
    from gan.scoring.metrics import judge_outputs

    loaded = load_judges(retrain_if_missing=False)
    write_shipped(
        {judge.metadata["name"]: judge for judge in (loaded.first, loaded.second)},
        lambda judge, images: judge_outputs(judge, images)[0],
    )
