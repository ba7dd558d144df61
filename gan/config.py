"""The training configuration: one frozen dataclass, validated once on creation, saved with each run.

Some settings may change while a run trains (`CHANGEABLE`): a change is requested through the trainer's `Control`
or scheduled in advance with `set_at` ("STEP:FIELD=VALUE", applied once STEP steps are done).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from typing import Any

PRESETS = ("classic", "dcgan", "cdcgan")
LOSSES = ("bce", "saturating", "hinge", "lsgan", "wgan-gp")
WGAN_D_STEPS = 5  # critic steps per G step that wgan-gp defaults to (Gulrajani et al., 2017)
G_KERNELS = (3, 4, 5)  # kernel of the conv generators' stride-2 transposed convolutions; 3 and 5 overlap unevenly
# Settings a running job may change: they steer the optimisation, not the shapes of the networks.
CHANGEABLE = ("lr_g", "lr_d", "d_steps", "loss", "ema_decay")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")

# What each preset trains best with on a CPU (chosen by bench/quality.py); anything given explicitly wins.
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "classic": {"latent_dim": 100, "width": 256, "batch_size": 128, "lr_g": 2e-4, "lr_d": 2e-4},
    "dcgan": {"latent_dim": 64, "width": 32, "batch_size": 128, "lr_g": 5e-4, "lr_d": 5e-4, "precision": "bf16"},
    "cdcgan": {"latent_dim": 64, "width": 32, "batch_size": 64, "lr_g": 5e-4, "lr_d": 5e-4, "precision": "bf16"},
}


class ConfigError(ValueError):
    """A setting is out of range or of the wrong type; the message names the field, the value and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field = field
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."  # values may come from a file: never quote much
        super().__init__(f"{field}={shown} is not allowed: {allowed}")


@dataclass(frozen=True)
class Config:
    preset: str = "cdcgan"
    latent_dim: int = 64
    width: int = 32  # channels (conv presets) or first hidden units (classic); the models scale from it
    batch_size: int = 128
    lr_g: float = 5e-4
    lr_d: float = 5e-4
    beta1: float = 0.5
    beta2: float = 0.999
    loss: str = "bce"
    # D updates per G update, each on the step's batch with fresh noise; None: 5 for wgan-gp, else 1
    d_steps: int | None = None
    ema_decay: float = 0.999
    epochs: int = 5
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    checkpoint_every: int = 1  # epochs between saved epoch files (the last epoch is always saved)
    steps_per_epoch: int | None = None  # cap on batches per epoch; None trains on the whole set
    evaluate: bool = True  # score samples with the digit judge after each epoch
    g_kernel: int = 4  # conv presets: kernel size of G's transposed convolutions (stride 2)
    set_at: tuple[str, ...] = ()  # scheduled changes, "STEP:FIELD=VALUE", applied once STEP steps are done

    def __post_init__(self) -> None:
        _check_choice("preset", self.preset, PRESETS)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("device", self.device, DEVICES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_int("latent_dim", self.latent_dim, 1, 1024)
        _check_int("width", self.width, 1, 2048)
        _check_int("batch_size", self.batch_size, 1, 60_000)
        _check_int("epochs", self.epochs, 1, 10_000)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        _check_int("checkpoint_every", self.checkpoint_every, 1, 10_000)
        if self.steps_per_epoch is not None:
            _check_int("steps_per_epoch", self.steps_per_epoch, 1, 1_000_000)
        _check_float("lr_g", self.lr_g, 0.0, 1.0, low_open=True)
        _check_float("lr_d", self.lr_d, 0.0, 1.0, low_open=True)
        _check_float("beta1", self.beta1, 0.0, 1.0, high_open=True)
        _check_float("beta2", self.beta2, 0.0, 1.0, high_open=True)
        _check_float("ema_decay", self.ema_decay, 0.0, 1.0, high_open=True)
        if not isinstance(self.evaluate, bool):
            raise ConfigError("evaluate", self.evaluate, "true or false")
        if self.d_steps is not None:
            _check_int("d_steps", self.d_steps, 1, 100)
        if self.g_kernel not in G_KERNELS:
            raise ConfigError("g_kernel", self.g_kernel, f"one of {', '.join(map(str, G_KERNELS))}")
        if isinstance(self.set_at, str) or not isinstance(self.set_at, (list, tuple)):
            raise ConfigError("set_at", self.set_at, "a list of STEP:FIELD=VALUE changes")
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
    def for_preset(cls, preset: str = "cdcgan", **overrides: Any) -> Config:
        """A config with the preset's tuned defaults; explicit overrides (None means 'not given') win."""
        _check_choice("preset", preset, PRESETS)
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
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                unknown[0], values[unknown[0]], f"unknown setting; known settings: {', '.join(sorted(known))}"
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
        return cls.from_dict(values)


@dataclass(frozen=True)
class ScheduledChange:
    step: int  # applied once this many steps are done, so it steers step `step + 1` onwards
    field: str
    value: Any


def parse_value(field: str, text: str) -> Any:
    """A changeable setting's value from text (CLI or form), checked like any config value."""
    if field not in CHANGEABLE:
        raise ConfigError(field, text, f"not a setting that can change mid-run; those are {', '.join(CHANGEABLE)}")
    text = text.strip()
    if field == "loss":
        value: Any = text
    elif field == "d_steps":
        value = None if text.lower() in ("auto", "none", "") else _parse_number(field, text, int)
    else:
        value = _parse_number(field, text, float)
    Config().replace(**{field: value})  # the same checks as at start
    return value


def parse_change(text: str, config: Config | None = None) -> ScheduledChange:
    """Read "STEP:FIELD=VALUE" (e.g. "500:lr_d=0.002"); a bad step, field or value raises ConfigError."""
    if not isinstance(text, str):
        raise ConfigError("set_at", text, "STEP:FIELD=VALUE, e.g. 500:lr_d=0.002")
    step_text, _, assignment = text.partition(":")
    field, equals, value_text = assignment.partition("=")
    if not equals or not step_text.strip().isdigit():
        raise ConfigError("set_at", text, "STEP:FIELD=VALUE with a whole number of steps, e.g. 500:lr_d=0.002")
    field = field.strip().replace("-", "_")
    value = parse_value(field, value_text)
    if config is not None:
        config.replace(**{field: value}, set_at=())  # e.g. d_steps checked against this run's other settings
    return ScheduledChange(int(step_text), field, value)


def _parse_number(name: str, text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        described = "a whole number" if kind is int else "a number"
        raise ConfigError(name, text, described) from None


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(name, value, f"one of {', '.join(choices)}")


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, value, f"a whole number from {low} to {high}")
    if not low <= value <= high:
        raise ConfigError(name, value, f"a whole number from {low} to {high}")


def _check_float(
    name: str, value: Any, low: float, high: float, low_open: bool = False, high_open: bool = False
) -> None:
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, value, f"a number in {interval}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high or value != value:
        raise ConfigError(name, value, f"a number in {interval}")
