"""The training configuration: one schema of settings and the frozen `Config` it validates.

Each setting is declared once, as a `Setting` (`gan.settings`: type, range or choices, label, help) attached to
its `Config` field with its default. The schema drives `Config`'s validation, the CLI flags of `python -m gan
train` and the app's settings form, so a new setting is one line here and appears everywhere.

Some settings may change while a run trains (`CHANGEABLE`): a change is requested through the trainer's `Control`
or scheduled in advance with `set_at` ("STEP:FIELD=VALUE", applied once STEP steps are done).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from gan.numbers import NumberError, decimal_number, whole_number
from gan.presets import DEFAULT_PRESET, PRESET_DEFAULTS, PRESETS
from gan.settings import ConfigError, Setting, setting

LOSSES = ("bce", "saturating", "hinge", "lsgan", "wgan-gp")
WGAN_D_STEPS = 5  # critic steps per G step that wgan-gp defaults to (Gulrajani et al., 2017)
G_KERNELS = (3, 4, 5)  # kernel of the conv generators' stride-2 transposed convolutions; 3 and 5 overlap unevenly
# Settings a running job may change: they steer the optimisation, not the shapes of the networks.
CHANGEABLE = ("lr_g", "lr_d", "d_steps", "loss", "ema_decay")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
UPSAMPLES = ("transposed", "nearest")
G_NORMS = ("none", "batch")
D_SPREADS = ("none", "minibatch")
AUGMENTS = ("none", "translate")


UNIT = {"low": 0.0, "high": 1.0}


@dataclass(frozen=True)
class Config:
    """The settings of a run. Defaults are the default preset's (cdcgan); `for_preset` gives the others'."""

    preset: str = setting(
        DEFAULT_PRESET,
        str,
        "Preset",
        "model family (default cdcgan); its tuned values are the defaults of the other settings",
        choices=PRESETS,
        section=None,
    )
    epochs: int = setting(5, int, "Epochs", "passes over the 60,000 training digits", low=1, high=10_000)
    batch_size: int = setting(64, int, "Batch size", "images per step", low=1, high=60_000, step=16)
    lr_g: float = setting(
        1e-3, float, "G learning rate", "Adam step size of the generator", **UNIT, low_open=True, step=1e-4
    )
    lr_d: float = setting(
        1e-3, float, "D learning rate", "Adam step size of the discriminator", **UNIT, low_open=True, step=1e-4
    )
    latent_dim: int = setting(64, int, "Latent size", "length of the noise vector z", low=1, high=1024)
    loss: str = setting(
        "bce",
        str,
        "Loss",
        "bce: the original GAN loss (non-saturating G); saturating: the original minimax G loss; hinge: as in "
        "SAGAN; lsgan: least squares; wgan-gp: a critic with a gradient penalty",
        choices=LOSSES,
    )
    d_steps: int | None = setting(
        None,
        int,
        "D steps per G step",
        "D updates per G update, each on the step's batch with fresh noise (default: 5 for wgan-gp, else 1)",
        low=1,
        high=100,
        optional=True,
        section="advanced",
    )
    seed: int = setting(0, int, "Seed", "seed of every random draw", low=0, high=2**31 - 1, section="advanced")
    width: int = setting(
        24,
        int,
        "Width",
        "channels (conv presets) or first hidden units (classic); the models scale from it",
        low=1,
        high=2048,
        section="advanced",
    )
    ema_decay: float = setting(
        0.999,
        float,
        "EMA decay",
        "how slowly the averaged generator used for samples follows G",
        **UNIT,
        high_open=True,
        step=0.001,
        section="advanced",
    )
    steps_per_epoch: int | None = setting(
        None,
        int,
        "Batches per epoch",
        "cap the batches per epoch, for quick experiments (default: all of them)",
        low=1,
        high=1_000_000,
        optional=True,
        section="advanced",
    )
    precision: str = setting(
        "auto",
        str,
        "Precision",
        "auto: bf16 autocast where the hardware computes bf16 (CUDA GPUs, CPUs with AVX512-BF16, AMX or Arm BF16), "
        "else fp32; bf16 elsewhere is emulated and over ten times slower",
        choices=PRECISIONS,
        section="advanced",
    )
    checkpoint_every: int = setting(
        1,
        int,
        "Save every (epochs)",
        "epochs between saved epoch files (the last is always saved)",
        low=1,
        high=10_000,
        section="advanced",
    )
    evaluate: bool = setting(
        True,
        bool,
        "Score each epoch with the digit judge",
        "score samples with the digit judge after each epoch",
        flag="eval",
        section="advanced",
    )
    beta1: float = setting(0.0, float, "Adam beta1", "Adam's momentum", **UNIT, high_open=True, section=None)
    beta2: float = setting(
        0.99, float, "Adam beta2", "Adam's decay of squared gradients", **UNIT, high_open=True, section=None
    )
    device: str = setting(
        "auto", str, "Device", "where to train (auto: a CUDA GPU if any)", choices=DEVICES, section=None
    )
    # Model options. Their defaults are the original designs, so runs saved before the options existed load unchanged.
    upsample: str = setting(
        "transposed",
        str,
        "Upsampling",
        "conv generators: 4x4 transposed convolutions, or nearest-neighbour upsampling and a 3x3 convolution",
        choices=UPSAMPLES,
        section="advanced",
    )
    g_norm: str = setting(
        "none", str, "G normalisation", "classic generator's hidden layers", choices=G_NORMS, section="advanced"
    )
    d_spread: str = setting(
        "none",
        str,
        "D's batch spread",
        "classic discriminator: minibatch gives its last layer the spread of the batch's features as one more input "
        "(the conv discriminators always have it), so a batch of look-alike fakes is caught and G is pushed to draw "
        "every digit",
        choices=D_SPREADS,
        section="advanced",
    )
    g_kernel: int = setting(
        4,
        int,
        "G kernel",
        "kernel of the conv generators' stride-2 transposed convolutions (3 or 5 overlap unevenly: a checkerboard)",
        low=min(G_KERNELS),
        high=max(G_KERNELS),
        section="advanced",
    )
    r1_gamma: float = setting(
        0.1,
        float,
        "R1 penalty",
        "weight of D's gradient penalty on real digits (R1), applied every 16 steps; 0: none",
        low=0.0,
        high=1000.0,
        step=0.1,
        section="advanced",
    )
    augment: str = setting(
        "none",
        str,
        "Augment D's inputs",
        "translate: D sees every real and fake digit shifted by up to 3 pixels (differentiable augmentation)",
        choices=AUGMENTS,
        section="advanced",
    )
    set_at: tuple[str, ...] = setting(
        (),
        str,
        "Scheduled changes",
        "STEP:FIELD=VALUE: change a setting once STEP steps are done, e.g. 500:lr_d=0.002 (fields: "
        + ", ".join(CHANGEABLE)
        + ")",
        repeated=True,
        section=None,
    )

    def __post_init__(self) -> None:
        for name, spec in SETTINGS.items():
            spec.check(getattr(self, name))
            if spec.kind is float and isinstance(getattr(self, name), int):  # e.g. "beta1": 0 in a JSON file
                object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "set_at", tuple(self.set_at))  # a JSON list becomes a tuple, so configs compare
        for text in self.set_at:
            parse_change(text, self)

    @property
    def discriminator_steps(self) -> int:
        """D steps per G step: `d_steps`, or the loss's usual number when it is not given."""
        if self.d_steps is not None:
            return self.d_steps
        return WGAN_D_STEPS if self.loss == "wgan-gp" else 1

    @property
    def scheduled_changes(self) -> tuple[ScheduledChange, ...]:
        return tuple(sorted((parse_change(text, self) for text in self.set_at), key=lambda change: change.step))

    def changeable(self) -> dict[str, Any]:
        """The current values of the settings a running job may change."""
        return {name: getattr(self, name) for name in CHANGEABLE}

    @property
    def conditional(self) -> bool:
        return self.preset == "cdcgan"

    @classmethod
    def for_preset(cls, preset: str = DEFAULT_PRESET, **overrides: Any) -> Config:
        """A config with the preset's tuned defaults; explicit overrides (None means 'not given') win."""
        SETTINGS["preset"].check(preset)
        given = {key: value for key, value in overrides.items() if value is not None}
        return cls.from_dict({**PRESET_DEFAULTS[preset], **given, "preset": preset})

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Build from a saved or user-given mapping; unknown fields are an error, not silently dropped."""
        if not isinstance(values, dict):
            raise ConfigError("config", values, "a JSON object of settings")
        unknown = sorted(set(values) - set(SETTINGS))
        if unknown:
            raise ConfigError(
                unknown[0], values[unknown[0]], f"unknown setting; known settings: {', '.join(sorted(SETTINGS))}"
            )
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> Config:
        try:
            values = json.loads(text)
        except RecursionError:
            raise ConfigError("config", "...", "JSON nested at most a few levels deep") from None
        except json.JSONDecodeError as error:
            raise ConfigError("config", "...", f"valid JSON ({error.msg} at line {error.lineno})") from None
        except ValueError:  # e.g. an integer of thousands of digits
            raise ConfigError("config", "...", "JSON with values in range") from None
        return cls.from_saved(values)

    @classmethod
    def from_saved(cls, values: dict[str, Any]) -> Config:
        """A config read back from a run: a setting added after the run was saved takes the value the run trained
        with (`SAVED_BEFORE_ADDED`), not today's default."""
        return cls.from_dict({**SAVED_BEFORE_ADDED, **values} if isinstance(values, dict) else values)


# Settings added with a default other than what runs saved before them trained with: a saved config that lacks one
# gets that value.
SAVED_BEFORE_ADDED: dict[str, Any] = {"r1_gamma": 0.0}


@dataclass(frozen=True)
class ScheduledChange:
    step: int  # applied once this many steps are done, so it steers step `step + 1` onwards
    field: str
    value: Any


def check_changeable(field: str, value: Any) -> None:
    """Refuse a setting that may not change while a run trains (`CHANGEABLE`): the one rule for the CLI's
    `set_at`, the app's requests and the trainer."""
    if field not in CHANGEABLE:
        raise ConfigError(field, value, f"not a setting that can change mid-run; those are {', '.join(CHANGEABLE)}")


def parse_value(field: str, text: str) -> Any:
    """A changeable setting's value from text (CLI or form), checked like any config value."""
    check_changeable(field, text)
    text = text.strip()
    if field == "loss":
        value: Any = text
    elif field == "d_steps":
        value = None if text.lower() in ("auto", "none", "") else _parse_number(field, text, whole_number)
    else:
        value = _parse_number(field, text, decimal_number)
    SETTINGS[field].check(value)
    return value


def parse_change(text: str, config: Config | None = None) -> ScheduledChange:
    """Read "STEP:FIELD=VALUE" (e.g. "500:lr_d=0.002"); a bad step, field or value raises ConfigError."""
    if not isinstance(text, str):
        raise ConfigError("set_at", text, "STEP:FIELD=VALUE, e.g. 500:lr_d=0.002")
    step_text, _, assignment = text.partition(":")
    field, equals, value_text = assignment.partition("=")
    try:
        step = whole_number(step_text) if equals else -1
    except NumberError:
        step = -1
    if step < 0:
        raise ConfigError("set_at", text, "STEP:FIELD=VALUE with a whole number of steps, e.g. 500:lr_d=0.002")
    field = field.strip().replace("-", "_")
    value = parse_value(field, value_text)
    if config is not None:
        config.replace(**{field: value}, set_at=())  # e.g. d_steps checked against this run's other settings
    return ScheduledChange(step, field, value)


def _parse_number(name: str, text: str, parse: Callable[[str], Any]) -> Any:
    """A number from text through gan/numbers.py (ASCII digits, finite, of a sane length), else a ConfigError."""
    try:
        return parse(text)
    except NumberError as error:
        raise ConfigError(name, text, error.allowed) from None


def _named(field: dataclasses.Field) -> Setting:
    return dataclasses.replace(field.metadata["setting"], name=field.name)


SETTINGS: dict[str, Setting] = {field.name: _named(field) for field in fields(Config)}
