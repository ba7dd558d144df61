import pytest
import torch

from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.jobs.runner import prepare_trainer, train_run
from gan.lab.latent import (
    copy_verdict,
    digit_grid,
    direction_atlas,
    generate,
    interpolate,
    move_along,
    nearest_real,
    noise,
    principal_directions,
    sample,
    slerp,
)
from gan.store.run import Run, load_generator
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
    """Row d draws digit d; column c draws every digit from the same noise vector, the seed's c-th."""
    G = generators["cdcgan"]
    grid = digit_grid(G, styles=3, seed=0).view(10, 3, 1, 28, 28)  # (digit, style, ...)
    z = noise(G.latent_dim, 3, seed=0)
    for style in range(3):
        column = generate(G, z[style : style + 1].repeat(10, 1), torch.arange(10))
        assert torch.allclose(grid[:, style], column, atol=1e-6)
    assert not torch.allclose(grid[:, 0], grid[:, 1]), "the columns differ in style"


def test_the_direction_atlas_moves_along_one_direction_per_row(generators):
    G = generators["cdcgan"]
    directions = principal_directions(G, count=2, samples=256)
    z = noise(G.latent_dim, 1, seed=0)
    atlas = direction_atlas(G, z, directions, digit=4, steps=3, extent=2.0)
    assert atlas.shape == (2 * 3, 1, 28, 28)
    row_two_start = generate(G, move_along(z, directions, [0.0, -2.0]), torch.tensor([4]))
    assert torch.allclose(atlas[3:4], row_two_start, atol=1e-6)
    assert torch.allclose(atlas[1:2], generate(G, z, torch.tensor([4])), atol=1e-6), "the middle is unmoved"


@pytest.mark.parametrize(
    "distance, level", [(0.0, "copy"), (2.4, "copy"), (2.5, "close"), (4.9, "close"), (5.0, "novel"), (9.0, "novel")]
)
def test_a_sample_is_a_copy_below_half_the_real_digits_distance_and_close_below_it(distance, level):
    verdict = copy_verdict(distance, typical=5.0)
    assert verdict.level == level and verdict.ratio == distance / 5.0


def test_without_a_yardstick_nothing_is_called_a_copy():
    assert copy_verdict(0.0, typical=0.0).level == "novel"


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
