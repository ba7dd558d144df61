"""Comparing runs: the settings that differ (changes made mid-run included), and their curves and scores aligned
on a common axis: epochs, images seen or training seconds.

Pure functions of configs and history records; `load` reads the runs once. The CLI's `compare` command and the
app's Compare page both draw from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gan.config import SETTINGS, Config
from gan.data import batches_per_epoch
from gan.store.run import Run

TRAINING_IMAGES = 60_000
AXES = {"epoch": "epoch", "images": "images seen", "seconds": "training seconds"}
SCORE_COLUMNS = ("fid", "classifier_score", "classes_covered", "precision", "recall", "density", "coverage")
CHANGES = "changes mid-run"


@dataclass(frozen=True)
class RunRecord:
    """A run as compared: its name, the settings it started with, and its history."""

    name: str
    config: Config
    history: tuple[dict[str, Any], ...]

    @property
    def steps_per_epoch(self) -> int:
        return batches_per_epoch(TRAINING_IMAGES, self.config.batch_size, self.config.steps_per_epoch)

    @property
    def changes(self) -> list[dict[str, Any]]:
        return [record for record in self.history if record.get("kind") == "change"]

    @property
    def epochs(self) -> list[dict[str, Any]]:
        return [record for record in self.history if record.get("kind") == "epoch"]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return [record for record in self.history if record.get("kind", "step") == "step"]


def load(runs: Sequence[Run]) -> list[RunRecord]:
    return [RunRecord(run.name, run.config(), tuple(record.to_dict() for record in run.history())) for run in runs]


def check_count(names: Sequence[str], low: int = 2, high: int = 4) -> None:
    if not low <= len(names) <= high or len(set(names)) != len(names):
        raise ValueError(f"runs={list(names)} is not allowed: {low} to {high} different runs")


def format_setting(value: Any) -> str:
    """A setting's value as a table cell: lists of scheduled changes joined, None as 'default'."""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return "default" if value is None else str(value)


def describe_change(record: dict[str, Any]) -> str:
    return f"step {record['step']}: {record['field']} {record['old']} -> {record['new']}"


def differing_settings(runs: Sequence[RunRecord]) -> dict[str, list[Any]]:
    """Each setting whose value differs between the runs, with each run's value in order; a last row lists the
    changes each run made mid-run, when any did. Settings that only matter for speed or scoring are included too:
    they explain differences in the seconds axis."""
    configs = [run.config.to_dict() for run in runs]
    table = {name: [config[name] for config in configs] for name in configs[0]}
    differing = {name: row for name, row in table.items() if any(value != row[0] for value in row[1:])}
    changes = ["; ".join(describe_change(record) for record in run.changes) or "none" for run in runs]
    if any(text != "none" for text in changes) and len(set(changes)) > 1:
        differing[CHANGES] = changes
    return differing


def step_x(run: RunRecord, record: dict[str, Any], axis: str) -> float:
    """Where a step record sits on the axis: fractional epochs, images seen, or training seconds."""
    if axis == "epoch":
        return record["epoch"] + record["batch"] / run.steps_per_epoch
    if axis == "images":
        return float(record["step"] * run.config.batch_size)
    if axis == "seconds":
        return float(record["seconds"])
    raise ValueError(f"axis={axis!r} is not allowed: one of {', '.join(AXES)}")


def epoch_x(run: RunRecord, record: dict[str, Any], axis: str) -> float:
    if axis == "epoch":
        return float(record["epoch"])
    if axis == "images":
        return float(record["step"] * run.config.batch_size)
    if axis == "seconds":
        return float(record["seconds"])
    raise ValueError(f"axis={axis!r} is not allowed: one of {', '.join(AXES)}")


def step_curve(run: RunRecord, name: str, axis: str) -> tuple[list[float], list[float | None]]:
    """A step metric (loss_d, d_real, ...) against the axis; missing values (a critic's beliefs) are None."""
    steps = run.steps
    return [step_x(run, record, axis) for record in steps], [record.get(name) for record in steps]


def score_curve(run: RunRecord, name: str, axis: str) -> tuple[list[float], list[float]]:
    """An epoch score (fid, classifier_score, recall, ...) against the axis, for the epochs that have it."""
    scored = [record for record in run.epochs if isinstance((record.get("scores") or {}).get(name), (int, float))]
    return [epoch_x(run, record, axis) for record in scored], [float(record["scores"][name]) for record in scored]


def change_marks(run: RunRecord, axis: str) -> list[tuple[float, str]]:
    """Where each mid-run change sits on the axis (at the step it followed), with a short label."""
    by_step = {record["step"]: record for record in run.steps}
    marks = []
    for change in run.changes:
        after = by_step.get(change["step"])
        if axis == "epoch":
            x = after["epoch"] + after["batch"] / run.steps_per_epoch if after else 0.0
        elif axis == "images":
            x = float(change["step"] * run.config.batch_size)
        else:
            x = float(after["seconds"]) if after else 0.0
        field = change["field"]
        marks.append((x, f"{SETTINGS[field].label if field in SETTINGS else field} {change['new']}"))
    return marks


def score_table(run: RunRecord) -> tuple[list[str], list[list[Any]]]:
    """The run's scores per epoch: column names (those any epoch has) and one row per scored epoch."""
    scored = [record for record in run.epochs if record.get("scores")]
    columns = [name for name in SCORE_COLUMNS if any(name in record["scores"] for record in scored)]
    rows = [[record["epoch"], *(record["scores"].get(name) for name in columns)] for record in scored]
    return ["epoch", *columns], rows


def common_epochs(runs: Sequence[RunRecord], saved: Sequence[Sequence[int]]) -> list[int]:
    """Epochs saved by every run (for side-by-side grids)."""
    shared = set(saved[0]) if saved else set()
    for epochs in saved[1:]:
        shared &= set(epochs)
    return sorted(shared)
