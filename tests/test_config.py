import dataclasses
import json
import re

import pytest

from gan.config import DEFAULT_PRESET, SAVED_BEFORE_ADDED, SETTINGS, Config, ConfigError
from gan.presets import PRESET_DEFAULTS, QUICK_START


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


def test_a_preset_gives_its_tuned_values_and_explicit_settings_win():
    classic = Config.for_preset("classic", epochs=3, lr_g=None)  # None: not given, so the preset's holds
    assert classic.preset == "classic" and classic.epochs == 3
    assert all(getattr(classic, name) == value for name, value in PRESET_DEFAULTS["classic"].items())
    assert classic != Config.for_preset("cdcgan", epochs=3).replace(preset="classic"), "the presets differ"
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


def test_the_default_config_is_the_default_preset():
    assert Config() == Config.for_preset(DEFAULT_PRESET)


def test_every_setting_is_described_once_with_a_label_help_and_what_is_allowed():
    assert list(SETTINGS) == [field.name for field in dataclasses.fields(Config)]
    for name, setting in SETTINGS.items():
        assert setting.name == name and setting.label and setting.help and setting.allowed()
        setting.check(getattr(Config(), name))


@pytest.mark.parametrize(
    "name, good, bad",
    [("epochs", 1, 0), ("lr_g", 1.0, 0.0), ("beta1", 0.0, 1.0), ("loss", "hinge", "l2"), ("evaluate", False, 1)],
)
def test_a_setting_checks_its_type_range_and_choices(name, good, bad):
    setting = SETTINGS[name]
    setting.check(good)
    with pytest.raises(ConfigError, match=f"{name}={bad!r} is not allowed: {re.escape(setting.allowed())}"):
        setting.check(bad)


def test_an_optional_setting_is_zero_in_the_form_and_none_in_the_config():
    setting = SETTINGS["steps_per_epoch"]
    assert setting.to_form(None) == 0 and setting.from_form(0) is None and setting.from_form(5) == 5
    assert SETTINGS["epochs"].from_form(0) == 0, "only an optional setting reads 0 as 'none'"


def test_flags_and_form_precision_follow_the_schema():
    assert SETTINGS["batch_size"].cli_flag == "--batch-size" and SETTINGS["evaluate"].cli_flag == "--no-eval"
    for setting in (setting for setting in SETTINGS.values() if setting.section is not None):  # those in the form
        if setting.kind is int:
            assert setting.digits == 0
        elif setting.kind is float:  # the form shows every step of its increment, and the default, unrounded
            assert float(f"{setting.step:.{setting.digits}f}") == setting.step
            default = Config.for_preset(DEFAULT_PRESET).to_dict()[setting.name]
            assert float(f"{default:.{setting.digits}f}") == default, setting.name


def test_the_quick_start_is_a_valid_short_run():
    config = Config.for_preset(**QUICK_START)
    assert config.epochs * config.steps_per_epoch * config.batch_size < 60_000 * 5


def test_a_run_saved_before_r1_existed_loads_with_the_r1_it_trained_with(tmp_path):
    from gan.store.run import Run

    assert Config().r1_gamma != SAVED_BEFORE_ADDED["r1_gamma"], "otherwise this test checks nothing"
    saved = Config.for_preset("cdcgan").to_dict()
    del saved["r1_gamma"]
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(saved))
    assert Run(run).config() == Config.for_preset("cdcgan", r1_gamma=0.0)
    assert Config.from_json(json.dumps(saved)).r1_gamma == 0.0  # a checkpoint's own copy of the config
    assert Config.from_dict({"preset": "cdcgan"}).r1_gamma == Config().r1_gamma  # a new run's settings
