import torch

from gan.jobs.warmup import warm_up
from tests.conftest import tiny_config


def test_the_warm_up_draws_no_random_number():
    """A job may build its trainer while the app warms up: its seeded weights must not depend on that."""
    for config in (tiny_config(), tiny_config("classic", r1_gamma=0.0)):
        torch.manual_seed(1)
        before = torch.get_rng_state()
        warm_up(config)
        assert torch.equal(torch.get_rng_state(), before)
