"""A run's history (`history.jsonl`) as typed records: one JSON line per logged step, epoch or setting change.

Lines are untrusted: each is size-capped and checked for type and required keys; a bad line is skipped and
counted, never raised. An epoch's scores are checked once here (`Scores.from_dict`): damaged ones read as none.
The on-disk format is the plain `{"kind": ..., ...}` object of each record's `to_dict`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from gan.scoring.scores import DamagedScores, Scores
from gan.store.files import FileError, open_regular, parse_json

LINE_LIMIT = 64_000  # bytes per line; an epoch record with scores is about 1,000
TAIL_START = 4096  # bytes read first from the end for the last step; doubled until a step line is found


class Player(StrEnum):
    """Which players a training step updates: both (a normal step), or one, for a single step while paused."""

    BOTH = "dg"
    D = "d"
    G = "g"

    @property
    def updates_d(self) -> bool:
        return self in (Player.BOTH, Player.D)

    @property
    def updates_g(self) -> bool:
        return self in (Player.BOTH, Player.G)


@dataclass(frozen=True)
class StepRecord:
    """One training step as the trainer reports it and the history stores it."""

    step: int
    epoch: int
    batch: int
    loss_d: float
    loss_g: float
    # Mean D(x) and D(G(z)) (before the G update) as beliefs that an image is real, from 0 to 1: the sigmoid of the
    # logit, or for lsgan the output itself (its targets are 1 and 0). None for wgan-gp, whose critic scores are
    # not probabilities: its `wasserstein` estimate, mean D(x) - mean D(G(z)), is recorded instead.
    d_real: float | None
    d_fake: float | None
    grad_norm_d: float  # 0 when D was not updated (a G-only step)
    grad_norm_g: float  # 0 when G was not updated (a D-only step)
    images_per_sec: float
    seconds: float  # training seconds so far (pauses excluded)
    wasserstein: float | None = None
    players: Player = Player.BOTH  # D or G alone for a single step taken while paused

    kind = "step"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    step: int
    seconds: float
    scores: Scores | None = None  # when the run scores each epoch
    spread: float | None = None  # how different the fixed-noise samples are from each other (gan.scoring.diagnose)
    score_seconds: float | None = None  # wall seconds its score took beside the training (None: not scored so)

    kind = "epoch"

    def to_dict(self) -> dict[str, Any]:
        values = {"kind": self.kind, "epoch": self.epoch, "step": self.step, "seconds": self.seconds}
        if self.spread is not None:
            values["spread"] = self.spread
        if self.score_seconds is not None:
            values["score_seconds"] = self.score_seconds
        return values if self.scores is None else {**values, "scores": self.scores.to_dict()}


@dataclass(frozen=True)
class ChangeRecord:
    """A setting changed mid-run: from step `step` on, `field` is `new` instead of `old`."""

    step: int
    field: str
    old: Any
    new: Any

    kind = "change"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}


Record = StepRecord | EpochRecord | ChangeRecord
INTEGERS = {"step", "epoch", "batch"}
OPTIONAL_NUMBERS = {"d_real", "d_fake", "wasserstein"}  # None where they do not apply


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_record(obj: Any) -> Record | None:
    """The typed record of one parsed line, or None when it is not a well-formed record of a known kind."""
    if not isinstance(obj, dict):
        return None
    kind = obj.get("kind")
    if kind == "step":
        fields = dataclasses.fields(StepRecord)
        required = [field.name for field in fields if field.default is dataclasses.MISSING]
        if not all(name in obj for name in required):
            return None
        values = {field.name: obj.get(field.name, field.default) for field in fields}
        if values["players"] not in tuple(Player):
            return None
        values["players"] = Player(values["players"])
        for name, value in values.items():
            if name == "players" or (name in OPTIONAL_NUMBERS and value is None):
                continue
            if not (_is_int(value) if name in INTEGERS else _is_number(value)):
                return None
        return StepRecord(**values)
    if kind == "epoch":
        scores, spread = obj.get("scores"), obj.get("spread")
        if not (_is_int(obj.get("epoch")) and _is_int(obj.get("step")) and _is_number(obj.get("seconds"))):
            return None
        if spread is not None and not _is_number(spread):
            return None
        took = obj.get("score_seconds")
        took = took if _is_number(took) and took >= 0 else None  # only informative: a bad value reads as unknown
        return EpochRecord(obj["epoch"], obj["step"], obj["seconds"], _saved_scores(scores), spread, took)
    if kind == "change":
        if not (_is_int(obj.get("step")) and isinstance(obj.get("field"), str) and "old" in obj and "new" in obj):
            return None
        return ChangeRecord(obj["step"], obj["field"], obj["old"], obj["new"])
    return None


def _saved_scores(values: Any) -> Scores | None:
    """An epoch's saved scores, or None when it has none or they are damaged (as if it had not been scored)."""
    if values is None:
        return None
    try:
        return Scores.from_dict(values)
    except DamagedScores:
        return None


def parse_line(line: bytes) -> Record | None:
    if len(line) > LINE_LIMIT:
        return None
    try:
        return parse_record(parse_json(line, "history line"))
    except FileError:
        return None


def encode(records: list[Record]) -> str:
    return "".join(json.dumps(record.to_dict()) + "\n" for record in records)


@dataclass(frozen=True)
class History:
    records: tuple[Record, ...] = ()
    skipped: int = 0  # lines that were not well-formed records (a torn last line, damage)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def steps(self) -> list[StepRecord]:
        return [record for record in self.records if isinstance(record, StepRecord)]

    @property
    def epochs(self) -> list[EpochRecord]:
        return [record for record in self.records if isinstance(record, EpochRecord)]


def _lines(path: Path, within: Path | None):
    """The lines of a regular file, read in chunks (a line longer than LINE_LIMIT comes back cut short and is
    skipped as bad by the caller: it still counts once)."""
    descriptor = open_regular(path, within)
    with os.fdopen(descriptor, "rb") as handle:
        while True:
            line = handle.readline(LINE_LIMIT + 1)
            if not line:
                return
            if len(line) > LINE_LIMIT and not line.endswith(b"\n"):
                while True:  # drop the rest of the overlong line
                    rest = handle.readline(LINE_LIMIT)
                    if not rest or rest.endswith(b"\n"):
                        break
            yield line


def read_history(path: Path, up_to_step: int | None = None, within: Path | None = None) -> History:
    """Every well-formed record (only those up to `up_to_step`, when given) and how many lines were skipped.
    A missing file is an empty history; an unreadable one (a pipe, a link out of the run) raises FileError."""
    if not Path(path).exists() and not Path(path).is_symlink():
        return History()
    records, skipped = [], 0
    for line in _lines(path, within):
        if not line.strip():
            continue
        record = parse_line(line)
        if record is None:
            skipped += 1
        elif up_to_step is None or record.step <= up_to_step:
            records.append(record)
    return History(tuple(records), skipped)


def read_epoch_records(path: Path, within: Path | None = None) -> list[EpochRecord]:
    """Only the epoch records: step lines are recognised by their opening bytes and never parsed."""
    if not Path(path).exists() and not Path(path).is_symlink():
        return []
    found = []
    for line in _lines(path, within):
        if line.startswith(b'{"kind": "step"'):
            continue
        record = parse_line(line)
        if isinstance(record, EpochRecord):
            found.append(record)
    return found


def last_step_record(path: Path, within: Path | None = None) -> StepRecord | None:
    """The newest well-formed step record, read from the end of the file: the window grows until one is found."""
    if not Path(path).exists() and not Path(path).is_symlink():
        return None
    descriptor = open_regular(path, within)
    with os.fdopen(descriptor, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        window = TAIL_START
        while True:
            start = max(0, size - window)
            handle.seek(start)
            lines = handle.read(size - start).split(b"\n")
            if start > 0:
                lines = lines[1:]  # the first piece may be the end of a longer line
            for line in reversed(lines):
                if b'"step"' in line:
                    record = parse_line(line)
                    if isinstance(record, StepRecord):
                        return record
            if start == 0:
                return None
            window *= 4
