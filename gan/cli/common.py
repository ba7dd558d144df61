"""What several commands share: the command line's own errors, output files, reading a user's file, and the
diagnosis printed after training and evaluation."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gan.lab.images_in import read_picture_file
from gan.numbers import NumberError, shown
from gan.scoring.diagnose import diagnose
from gan.store.history import Record


class UsageError(Exception):
    """A command's own flag (not a setting) has a value that is not allowed."""


class WriteError(Exception):
    """An output file could not be written: no such folder, no permission, disk full."""


@contextmanager
def writing() -> Iterator[None]:
    """Report a failed write as a user error (it names the file); the saved epochs are untouched."""
    try:
        yield
    except OSError as error:
        raise WriteError(str(error)) from error


def check_suffix(flag: str, path: Path, allowed: tuple[str, ...]) -> None:
    if path.suffix.lower() not in allowed:
        raise UsageError(f"{flag}={path} is not allowed: the file must end in {' or '.join(allowed)}")


def number_flag(parse: Callable[[str], Any], name: str = "", allowed: str = "") -> Callable[[str], Any]:
    """argparse's `type` for a number flag: the text read by gan/numbers.py (ASCII digits, finite, a sane length),
    refused with what is allowed (the setting's own range when given), e.g. "lr_g='nan' is not allowed: ..."."""

    def read(text: str) -> Any:
        try:
            return parse(text)
        except NumberError as error:
            message = f"{name}={shown(text)} is not allowed: {allowed}" if name else str(error)
            raise argparse.ArgumentTypeError(message) from None

    read.__name__ = parse.__name__  # argparse names the type in some messages
    return read


def read_bytes(path: Path) -> bytes:
    """A picture file named by the user: a regular file (never a pipe or a device, which could block or never end)
    of a capped size, else one ImageError line."""
    return read_picture_file(path)


def print_diagnosis(history: Iterable[Record]) -> None:
    findings = diagnose(history)
    print("diagnosis: nothing alarming in the history and scores" if not findings else "diagnosis:")
    for finding in findings:
        print(f"- {finding.text()}")
