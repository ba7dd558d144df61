import pytest
import torch

from gan.checkpoints import Run, load_generator
from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.latent import digit_grid, interpolate, move_along, nearest_real, noise, principal_directions, sample, slerp
from gan.runner import prepare_trainer, train_run
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    found = {}
    for preset in ("dcgan", "cdcgan"):
        run = Run.at(preset, root)
        train_run(run, prepare_trainer(run, tiny_config(preset)))
        found[preset] = load_generator(run)[0]
    return found


def test_sample_by_seed_is_reproducible(generators):
    a, labels = sample(generators["cdcgan"], 20, seed=1)
    b, _ = sample(generators["cdcgan"], 20, seed=1)
    c, _ = sample(generators["cdcgan"], 20, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert labels.tolist() == list(range(10)) * 2


def test_digit_grid_holds_style_per_column(generators):
    grid = digit_grid(generators["cdcgan"], styles=3, seed=0)
    assert grid.shape == (30, 1, 28, 28)


def test_slerp_keeps_endpoints_and_norm():
    a, b = noise(64, 1, 0), noise(64, 1, 1)
    t = torch.linspace(0, 1, 5).unsqueeze(1)
    path = slerp(a, b, t)
    assert torch.allclose(path[0], a[0], atol=1e-5) and torch.allclose(path[-1], b[0], atol=1e-5)
    assert path.norm(dim=1).min() > 0.9 * min(a.norm(), b.norm())


@pytest.mark.parametrize("preset", ["dcgan", "cdcgan"])
def test_interpolation_strip_runs_between_the_two_samples(generators, preset):
    G = generators[preset]
    strip = interpolate(G, 1, 2, steps=6, spherical=True, digit_a=3, digit_b=8)
    assert strip.shape == (6, 1, 28, 28)
    first = sample(G, 1, seed=1, digit=3)[0]
    assert torch.allclose(strip[0], first[0], atol=1e-5)


def test_principal_directions_move_a_sample(generators):
    G = generators["dcgan"]
    directions = principal_directions(G, count=3, samples=256)
    assert directions.vectors.shape == (3, G.latent_dim)
    assert list(directions.explained) == sorted(directions.explained, reverse=True)
    z = noise(G.latent_dim, 1, 0)
    moved = move_along(z, directions, [2.0, 0.0, 0.0])
    assert torch.allclose((moved - z).norm(), torch.tensor(2.0), atol=1e-4)


def test_nearest_real_finds_an_exact_copy():
    train = load_mnist(DEFAULT_DATA_DIR, "train")
    copies = train.images[[123, 4567]]
    found = nearest_real(copies, train, k=3)
    assert found.indices[:, 0].tolist() == [123, 4567]
    assert found.distances[:, 0].max() < 1e-3
    assert found.images.shape == (2, 3, 1, 28, 28)
