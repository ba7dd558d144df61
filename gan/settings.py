"""One setting of the schema: what it holds (type, range or choices), how it is offered (label, help, CLI flag, form
section) and how a value is checked. `gan.config` declares every setting of a run with `setting(...)` on its
`Config` field; the CLI flags and the app's form are built from these."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A setting is out of range or of the wrong type; the message names the field, the value and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field = field
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."  # values may come from a file: never quote much
        super().__init__(f"{field}={shown} is not allowed: {allowed}")


@dataclass(frozen=True)
class Setting:
    """One setting: what it holds and how it is offered (CLI flag, form widget)."""

    kind: type  # int, float, str or bool
    label: str  # the form's label
    help: str  # one line, for the CLI and the form
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the bounds are excluded (a learning rate of 0 trains nothing)
    high_open: bool = False
    optional: bool = False  # None is allowed (shown as 0 in the form)
    step: float = 1  # the form's increment; its digits set the shown precision
    section: str | None = "main"  # where the form shows it: "main", "advanced", or None (CLI only)
    flag: str = ""  # the CLI flag's name without dashes, when it differs from the field's
    repeated: bool = False  # a tuple of values (a repeatable CLI flag), each checked by its Config
    name: str = ""  # filled in from the Config field

    @property
    def cli_flag(self) -> str:
        if self.kind is bool:
            return f"--no-{self.flag or self.name.replace('_', '-')}"  # booleans default to on
        return f"--{self.flag or self.name.replace('_', '-')}"

    @property
    def digits(self) -> int:
        """Decimal places to show in the form (0 for whole numbers)."""
        return 0 if self.kind is not float else max(0, -math.floor(math.log10(self.step)) + 1)

    def allowed(self) -> str:
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        if self.kind is bool:
            return "true or false"
        if self.kind is int:
            return f"a whole number from {int(self.low)} to {int(self.high)}"
        return f"a number in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"

    def check(self, value: Any) -> None:
        """Raise ConfigError naming the field, the value and what is allowed."""
        if value is None and self.optional:
            return
        if self.repeated:
            if not isinstance(value, (list, tuple)) or not all(isinstance(item, self.kind) for item in value):
                raise ConfigError(self.name, value, f"a list of {self.help}")
            return
        if not self._fits(value):
            raise ConfigError(self.name, value, self.allowed())

    def _fits(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if self.kind is bool:
            return isinstance(value, bool)
        numeric = (int,) if self.kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric) or value != value:
            return False
        too_low = value <= self.low if self.low_open else value < self.low
        too_high = value >= self.high if self.high_open else value > self.high
        return not (too_low or too_high)

    def to_form(self, value: Any) -> Any:
        return 0 if value is None and self.optional else value

    def from_form(self, value: Any) -> Any:
        return None if self.optional and value == 0 else value


def setting(default: Any, kind: type, label: str, help: str, **details: Any) -> Any:
    """A Config field carrying its Setting."""
    return dataclasses.field(default=default, metadata={"setting": Setting(kind, label, help, **details)})
