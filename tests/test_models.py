import pytest
import torch

from gan.config import Config, ConfigError
from gan.models import build_discriminator, build_generator, check_memory, estimate_training_bytes
from tests.conftest import tiny_config


@pytest.mark.parametrize("preset", ["classic", "dcgan", "cdcgan"])
def test_shapes_and_ranges(preset):
    config = Config.for_preset(preset)
    G, D = build_generator(config), build_discriminator(config)
    z, y = torch.randn(6, config.latent_dim) * 10, torch.arange(6)
    images = G(z, y)
    assert images.shape == (6, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1
    assert D(images, y).shape == (6,)


def test_conditional_generator_and_discriminator_use_the_label():
    config = Config.for_preset("cdcgan")
    torch.manual_seed(0)
    G, D = build_generator(config).eval(), build_discriminator(config)
    torch.nn.init.normal_(D.embed.weight)  # trained projections are non-zero
    z = torch.randn(1, config.latent_dim).repeat(10, 1)
    images = G(z, torch.arange(10))
    differences = (images[1:] - images[0]).abs().flatten(1).mean(1)
    assert (differences > 1e-3).all(), "every digit label must change the image drawn from the same noise"
    real = images[:1].repeat(10, 1, 1, 1).detach()
    assert D(real, torch.arange(10)).unique().numel() == 10


def test_conditional_generator_requires_labels():
    config = Config.for_preset("cdcgan")
    with pytest.raises(ValueError, match="label"):
        build_generator(config)(torch.randn(2, config.latent_dim))


@pytest.mark.parametrize(("preset", "option"), [("cdcgan", {"upsample": "nearest"}), ("classic", {"g_norm": "none"})])
def test_model_options_keep_shapes_and_ranges(preset, option):
    config = Config.for_preset(preset, **option)
    G = build_generator(config).eval()
    images = G(torch.randn(3, config.latent_dim) * 10, torch.arange(3))
    assert images.shape == (3, 1, 28, 28) and images.min() >= -1 and images.max() <= 1


def test_configs_saved_before_the_model_options_build_the_original_models():
    classic, cdcgan = (Config.for_preset(preset).to_dict() for preset in ("classic", "cdcgan"))
    for saved in (classic, cdcgan):
        del saved["upsample"], saved["g_norm"]
    assert not any("running_mean" in name for name in build_generator(Config.from_dict(classic)).state_dict())
    assert any("running_mean" in name for name in build_generator(Config.for_preset("classic")).state_dict())
    assert isinstance(build_generator(Config.from_dict(cdcgan)).rest[0], torch.nn.ConvTranspose2d)


def test_settings_beyond_the_machines_memory_are_refused_with_the_estimate():
    huge = Config.for_preset("dcgan", width=2048, latent_dim=1024, batch_size=60_000)
    assert estimate_training_bytes(huge)["state"] > 20 * 2**30
    with pytest.raises(ConfigError, match=r"need about [\d.]+ GiB .* machine has 23\.0 GiB: lower"):
        check_memory(huge, available=23 * 2**30)
    check_memory(tiny_config(), available=23 * 2**30)


def test_the_classic_discriminator_with_the_batch_spread_tells_a_batch_of_look_alikes_apart():
    config = Config.for_preset("classic", d_spread="minibatch", width=16)
    torch.manual_seed(0)
    D = build_discriminator(config)
    torch.nn.init.constant_(D.net[-1].weight[:, -1], 5.0)  # let the spread input weigh in, as training would
    varied = torch.rand(8, 1, 28, 28) * 2 - 1
    look_alikes = varied[:1].repeat(8, 1, 1, 1)
    assert D(varied)[0] != D(torch.cat([varied[:1], look_alikes[1:]]))[0], "the same digit, judged in another batch"
    without = build_discriminator(config.replace(d_spread="none"))
    assert D.net[-1].in_features == without.net[-1].in_features + 1
    assert without(varied)[0] == without(torch.cat([varied[:1], look_alikes[1:]]))[0]


def test_classic_runs_saved_before_the_batch_spread_build_the_discriminator_they_trained():
    saved = Config.for_preset("classic").to_dict()
    del saved["d_spread"]
    D = build_discriminator(Config.from_saved(saved))
    assert D.net[-1].in_features == saved["width"], "its saved weights must load"
