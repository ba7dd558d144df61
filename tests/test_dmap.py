"""The D's-eye map: its projection, its fixed real points, an epoch's points and D's ranking of samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.lab.dmap import epoch_map, fit_projection, ranked_by_d, real_points, summary
from gan.models import ConvDiscriminator, ConvGenerator
from gan.scoring.judge_models import ConvJudge


def test_projection_finds_the_direction_of_largest_spread():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 6)) * np.array([0.1, 5.0, 0.1, 2.0, 0.1, 0.1])
    projection = fit_projection(features)
    assert np.allclose(np.abs(projection.axes[0]), np.eye(6)[1], atol=0.05)
    assert np.allclose(np.abs(projection.axes[1]), np.eye(6)[3], atol=0.05)
    assert projection.explained[0] > projection.explained[1] > 0
    xy = projection(features)
    assert xy.shape == (500, 2) and np.allclose(xy.mean(0), 0, atol=1e-9)
    assert np.allclose(fit_projection(-features).axes, projection.axes)  # signs fixed: never a mirror image


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    judge = ConvJudge(width=4, feature_dim=16).eval().requires_grad_(False)
    G = ConvGenerator(latent_dim=8, width=4, num_classes=10).eval().requires_grad_(False)
    D = ConvDiscriminator(width=4, num_classes=10).eval().requires_grad_(False)
    test = load_mnist(DEFAULT_DATA_DIR, "test")
    return judge, G, D, real_points(judge, test, count=200)


def test_real_points_are_balanced_and_fixed(tiny):
    judge, _, _, real = tiny
    assert torch.bincount(real.labels, minlength=10).tolist() == [20] * 10
    assert real.xy.shape == (200, 2) and real.images.shape == (200, 1, 28, 28)
    again = real_points(judge, load_mnist(DEFAULT_DATA_DIR, "test"), count=200)
    assert torch.equal(real.indices, again.indices) and np.allclose(real.xy, again.xy)


def test_an_epoch_map_has_a_probability_for_every_point_and_a_ranking(tiny):
    judge, G, D, real = tiny
    found = epoch_map(G, D, 16, real, judge, count=50)
    assert found.fake_xy.shape == (50, 2) and found.fake_images.shape == (50, 1, 28, 28)
    assert found.real_probability.shape == (200,) and found.fake_probability.shape == (50,)
    for probabilities in (found.real_probability, found.fake_probability):
        assert ((probabilities > 0) & (probabilities < 1)).all()
    assert found.fake_digits.tolist() == [index % 10 for index in range(50)]
    most, least = ranked_by_d(found, 5)
    assert found.fake_probability[most[0]] == found.fake_probability.max()
    assert found.fake_probability[least[0]] == found.fake_probability.min()
    assert (np.diff(found.fake_probability[most.numpy()]) <= 0).all()
    again = epoch_map(G, D, 16, real, judge, count=50)  # the same noise every time
    assert np.allclose(found.fake_xy, again.fake_xy)


def test_summary_counts_real_classes_the_samples_reach(tiny):
    judge, G, D, real = tiny
    found = epoch_map(G, D, 16, real, judge, count=50)
    # samples placed on the real points of digits 0-4 only
    on_low_digits = real.xy[real.labels.numpy() < 5]
    moved = type(found)(**{**found.__dict__, "fake_xy": on_low_digits})
    assert summary(real, moved).classes_reached >= 5
    far = type(found)(**{**found.__dict__, "fake_xy": found.fake_xy * 0 + 1e6})
    assert summary(real, far).classes_reached == 0
