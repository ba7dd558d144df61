"""Failure recipes: each is a valid config with its explanation, and the CLI starts one by name."""

import pytest
import torch

from gan.__main__ import main
from gan.config import Config, ConfigError
from gan.lab.recipes import RECIPES, SMALL_CLASSIC, get_recipe
from gan.store.run import Run, load_generator

TINY = ["--width", "4", "--batch-size", "16", "--latent-dim", "8", "--steps-per-epoch", "3", "--epochs", "1"]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_is_a_valid_config_with_an_explanation(name):
    recipe = get_recipe(name)
    config = recipe.config()
    assert isinstance(config, Config) and config.evaluate, "a recipe is judged by its scores"
    parts = (recipe.what, recipe.watch, recipe.teaches)
    assert all(part[0].isupper() and part[-1] == "." for part in parts), "each part is sentences, as a learner reads"
    assert recipe.title in recipe.explanation and recipe.watch in recipe.explanation
    assert config.r1_gamma == 0, "measured without R1, which steadies D and would hide the failure"


def test_recipes_fail_in_the_ways_they_name():
    assert get_recipe("vanishing-gradients").config().loss == "saturating"
    overpowered = get_recipe("overpowered-d").config()
    assert overpowered.discriminator_steps > 1 and overpowered.lr_d > 10 * overpowered.lr_g
    collapsing = get_recipe("mode-collapse").config()
    (slowdown,) = collapsing.scheduled_changes
    assert slowdown.field == "lr_d" and slowdown.value <= min(0.1 * collapsing.lr_d, 0.01 * collapsing.lr_g)
    assert get_recipe("checkerboard").config().g_kernel % 2 == 1, "a kernel the stride 2 does not divide"
    unstable, healthy = get_recipe("unstable").config(), Config.for_preset(**SMALL_CLASSIC)
    assert unstable.lr_g >= 5 * healthy.lr_g and unstable.lr_d >= 5 * healthy.lr_d and unstable.beta1 > healthy.beta1


def test_an_unknown_recipe_names_the_known_ones():
    with pytest.raises(ConfigError, match="one of mode-collapse, vanishing-gradients"):
        get_recipe("explode")


def test_the_cli_starts_a_recipe_and_explains_it(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "train", "--recipe", "unstable", "--run", "wobbly", "--no-eval", *TINY]) == 0
    out = capsys.readouterr().out
    assert out.startswith(get_recipe("unstable").explanation) and "diagnosis:" in out
    config = Run.at("wobbly", tmp_path).config()
    assert config.lr_g == get_recipe("unstable").config().lr_g and config.width == 4, "flags given still win"


@pytest.mark.parametrize("flags", [[], ["--g-kernel", "3"], ["--upsample", "nearest"]])
def test_a_checkerboard_run_loads_back_for_sampling(tmp_path, flags):
    """Its generator's kernel (or upsampling) shapes its saved tensors: loading checks them against the same one."""
    args = ["--root", str(tmp_path), "train", "--recipe", "checkerboard", "--run", "grid", "--no-eval", *TINY, *flags]
    assert main(args) == 0
    G, config, epoch = load_generator(Run.at("grid", tmp_path))
    kernel = int(flags[1]) if "--g-kernel" in flags else get_recipe("checkerboard").config().g_kernel
    assert (epoch, config.g_kernel) == (1, kernel)
    assert G(torch.zeros(2, 8)).shape == (2, 1, 28, 28)
