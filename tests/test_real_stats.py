import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gan.data import DEFAULT_DATA_DIR, FILES, load_mnist
from gan.scoring import real_stats
from gan.scoring.judge import load_judges
from gan.scoring.metrics import FeatureStats, frechet_distance, judge_outputs
from gan.scoring.real_stats import cached_path, compute, real_fits, shipped_path, weights_sha256


class Counted:
    """A features function that counts its calls: a call means the fits were computed, not read."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, judge: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        with torch.no_grad():
            return judge(images.flatten(1))


def small_judge(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    judge = torch.nn.Linear(28 * 28, 4)
    judge.metadata = {"name": "small"}
    return judge


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_judges_fits_are_computed_once_then_read_from_the_cache(cache):
    features = Counted()
    first = real_fits(small_judge(), features)
    again = real_fits(small_judge(), features)
    assert features.calls == 1
    assert cached_path("small", weights_sha256(small_judge())).is_file()
    assert np.array_equal(first.overall.cov, again.overall.cov) and np.array_equal(
        first.overall.mean, again.overall.mean
    )
    assert all(np.array_equal(a.cov, b.cov) for a, b in zip(first.digits, again.digits))


def test_the_fits_read_back_are_the_fits_computed(cache):
    judge = small_judge()
    test = load_mnist(DEFAULT_DATA_DIR, "test")
    direct = compute(Counted()(judge, test.images), test.labels)
    stored = real_fits(judge, Counted())
    read = real_fits(judge, Counted())
    for a, b in zip((direct.overall, *direct.digits), (read.overall, *read.digits)):
        assert np.array_equal(a.mean, b.mean) and np.array_equal(a.cov, b.cov) and a.count == b.count
    assert stored.overall.count == 10_000 and sum(digit.count for digit in read.digits) == 10_000


def test_other_weights_are_not_given_a_judges_fits(cache):
    features = Counted()
    real_fits(small_judge(seed=0), features)
    other = real_fits(small_judge(seed=1), features)
    assert features.calls == 2
    test = load_mnist(DEFAULT_DATA_DIR, "test")
    assert np.allclose(other.overall.mean, Counted()(small_judge(seed=1), test.images).double().mean(0).numpy())


def test_a_damaged_cache_file_is_computed_again(cache):
    features = Counted()
    real_fits(small_judge(), features)
    path = cached_path("small", weights_sha256(small_judge()))
    path.write_bytes(path.read_bytes()[:300])
    real_fits(small_judge(), features)
    assert features.calls == 2


def test_other_test_digits_are_not_given_the_stored_fits(cache, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in FILES["test"]:
        shutil.copyfile(DEFAULT_DATA_DIR / name, folder / name)
    features = Counted()
    real_fits(small_judge(), features)
    labels = folder / FILES["test"][1]
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes()), compresslevel=1))  # other bytes
    real_fits(small_judge(), features, folder)
    assert features.calls == 2


def test_the_shipped_judges_fits_ship_and_are_read_without_computing(cache):
    judges = load_judges(retrain_if_missing=False)
    for judge in (judges.first, judges.second):
        assert shipped_path(judge.metadata["name"]).is_file()
        features = Counted()
        real_fits(judge, features)
        assert features.calls == 0
    assert not (cache / "judge").exists() or not list((cache / "judge").glob("*.stats.safetensors"))


@pytest.mark.slow
def test_the_shipped_fits_match_a_recomputation():
    """What `python -m gan.scoring.real_stats` would write now: the same fits, to the rounding of another CPU, and
    the same FID of 2,000 real training digits (the floor)."""
    judges, test = load_judges(retrain_if_missing=False), load_mnist(DEFAULT_DATA_DIR, "test")
    train = load_mnist(DEFAULT_DATA_DIR, "train").images[:2000]
    for judge in (judges.first, judges.second):
        shipped = real_stats.read(
            shipped_path(judge.metadata["name"]), weights_sha256(judge), real_stats.test_digits_sha256()
        )
        recomputed = compute(judge_outputs(judge, test.images)[0], test.labels)
        for a, b in zip((shipped.overall, *shipped.digits), (recomputed.overall, *recomputed.digits)):
            assert a.count == b.count
            # another instruction set sums the float32 features in another order: entries near zero differ by
            # up to 7e-7 between AVX2 and AVX-512 CPUs, where the features' own scale is 2 to 11
            assert np.allclose(a.mean, b.mean, rtol=1e-5, atol=1e-5) and np.allclose(a.cov, b.cov, rtol=1e-5, atol=1e-5)
        samples = FeatureStats(*_fit(judge_outputs(judge, train)[0]))
        floor_shipped = frechet_distance(samples, FeatureStats(shipped.overall.mean, shipped.overall.cov, 10_000))
        floor_recomputed = frechet_distance(
            samples, FeatureStats(recomputed.overall.mean, recomputed.overall.cov, 10_000)
        )
        assert floor_shipped == pytest.approx(floor_recomputed, rel=1e-5)


def _fit(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray, int]:
    fitted = real_stats.fit(features)
    return fitted.mean, fitted.cov, fitted.count
