"""Numbers read from text that a user or a file gives (a flag, a scheduled change, a saved config): the one place
that turns such text into an int or a float.

Python's own `int()` and `float()` accept more than a person means: other scripts' digits ("٣", while "²" passes
`isdigit()` and then fails), underscores ("1_000"), "nan" and "inf", and integers thousands of digits long whose
conversion Python itself refuses. Here a whole number is ASCII digits with an optional sign, a number is the usual
decimal or scientific notation, both of a sane length, and a float is finite; anything else is a `NumberError`
that quotes the text (shortened), never a traceback.
"""

from __future__ import annotations

import math
import re

MAX_CHARS = 40  # far more than any setting needs (a step count, a learning rate), far less than Python's limits
WHOLE = re.compile(r"[+-]?[0-9]+")
DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class NumberError(ValueError):
    """Text that is not a number of the kind asked for; the message quotes it, shortened, and says what is allowed."""

    def __init__(self, text: str, allowed: str):
        self.allowed = allowed
        super().__init__(f"{shown(text)} is not allowed: {allowed}")


def shown(text: str, limit: int = MAX_CHARS) -> str:
    """The text as quoted in an error: printable, and no longer than `limit` characters."""
    quoted = repr(text)
    return quoted if len(quoted) <= limit + 2 else quoted[: limit + 1] + "…"


def whole_number(text: str) -> int:
    """An int from ASCII digits with an optional sign, e.g. "500" or "-3"."""
    stripped = text.strip() if isinstance(text, str) else text
    if not isinstance(stripped, str) or len(stripped) > MAX_CHARS or not WHOLE.fullmatch(stripped):
        raise NumberError(str(text), f"a whole number (ASCII digits 0-9, at most {MAX_CHARS})")
    return int(stripped)


def decimal_number(text: str) -> float:
    """A finite float from decimal or scientific notation, e.g. "0.002", "2e-3" or "5"."""
    stripped = text.strip() if isinstance(text, str) else text
    if not isinstance(stripped, str) or len(stripped) > MAX_CHARS or not DECIMAL.fullmatch(stripped):
        raise NumberError(str(text), f"a number like 0.002 or 2e-3 (at most {MAX_CHARS} characters)")
    value = float(stripped)
    if not math.isfinite(value):
        raise NumberError(stripped, "a finite number")
    return value
