"""Inversion: finding the code a generator would need to draw a given digit."""

from __future__ import annotations

import pytest
import torch

from gan.lab.inversion import Weights, invert, pixel_distance
from gan.models import ConvGenerator
from gan.scoring.judge_models import ConvJudge


def tiny(num_classes: int = 0) -> tuple[ConvGenerator, ConvJudge]:
    torch.manual_seed(0)
    G = ConvGenerator(latent_dim=4, width=4, num_classes=num_classes).eval().requires_grad_(False)
    judge = ConvJudge(width=4, feature_dim=16).eval().requires_grad_(False)  # untrained: features, not opinions
    return G, judge


def test_inversion_recovers_a_code_that_a_tiny_generator_produced():
    G, judge = tiny()
    z_true = torch.randn(3, 4, generator=torch.Generator().manual_seed(7))
    targets = G(z_true)
    # no prior: the true code need not have the typical length, and this test asks for that code
    found = invert(G, judge, targets, steps=100, starts=2, pool=16, weights=Weights(prior=0.0, learning_rate=0.1))
    random_images = G(torch.randn(64, 4, generator=torch.Generator().manual_seed(8)))
    typical = pixel_distance(random_images[:32], random_images[32:]).median()
    assert found.z.shape == (3, 4) and found.images.shape == (3, 1, 28, 28) and found.digits is None
    assert (found.distances < 0.1 * typical).all()
    assert torch.allclose(found.distances, pixel_distance(G(found.z), targets), atol=1e-4)
    assert ((found.z - z_true).norm(dim=1) < 0.25 * z_true.norm(dim=1)).all()


def test_the_path_runs_from_a_start_to_the_result_and_gets_closer():
    G, judge = tiny()
    targets = G(torch.randn(2, 4, generator=torch.Generator().manual_seed(3)))
    found = invert(G, judge, targets, steps=40, starts=2, pool=8, weights=Weights(features=0.0, prior=0.0))
    assert found.path.shape[:2] == (2, len(found.path_steps)) and found.path_steps[0] == 0
    assert found.path_steps[-1] == 40
    assert torch.allclose(found.path[:, -1], found.images, atol=1e-5)
    first, last = pixel_distance(found.path[:, 0], targets), pixel_distance(found.path[:, -1], targets)
    assert (last <= first + 1e-6).all()


def test_a_conditional_generator_gets_a_digit_too_and_batches_do_not_interact():
    G, judge = tiny(num_classes=10)
    targets = G(torch.randn(3, 4, generator=torch.Generator().manual_seed(5)), torch.tensor([1, 2, 3]))
    together = invert(G, judge, targets, steps=10, starts=2, pool=4, batch=3)
    apart = invert(G, judge, targets, steps=10, starts=2, pool=4, batch=1)
    assert together.digits is not None and together.digits.shape == (3,)
    assert torch.allclose(G(together.z, together.digits), together.images, atol=1e-5)
    # the first target draws the same random pool either way, so its search is the same
    assert torch.allclose(together.z[0], apart.z[0], atol=1e-4)


@pytest.mark.parametrize("changes, message", [({"steps": 0}, "steps=0"), ({"starts": 9, "pool": 8}, "starts=9")])
def test_bad_settings_are_refused(changes, message):
    G, judge = tiny()
    with pytest.raises(ValueError, match=message):
        invert(G, judge, torch.zeros(1, 1, 28, 28), **changes)
