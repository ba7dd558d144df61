import pytest

from gan.config import Config, ConfigError


@pytest.mark.parametrize(
    "field, value",
    [
        ("preset", "stylegan"),
        ("loss", "wasserstein"),
        ("epochs", 0),
        ("batch_size", 2.5),
        ("lr_g", 0.0),
        ("lr_d", float("nan")),
        ("beta1", 1.0),
        ("ema_decay", -0.1),
        ("latent_dim", True),
        ("seed", -1),
        ("steps_per_epoch", 0),
    ],
)
def test_bad_value_names_field_value_and_range(field, value):
    with pytest.raises(ConfigError) as caught:
        Config(**{field: value})
    assert caught.value.field == field
    assert field in str(caught.value) and "allowed" in str(caught.value)


def test_preset_defaults_and_overrides():
    classic = Config.for_preset("classic", epochs=3, lr_g=None)
    assert classic.preset == "classic" and classic.epochs == 3 and classic.latent_dim == 100
    assert Config.for_preset("cdcgan").conditional and not Config.for_preset("dcgan").conditional


def test_json_round_trip_and_unknown_fields():
    config = Config.for_preset("dcgan", seed=7)
    assert Config.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.from_dict({**config.to_dict(), "colour": "blue"})
    with pytest.raises(ConfigError, match="valid JSON"):
        Config.from_json("{not json")


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        Config().epochs = 3
