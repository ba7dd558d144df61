"""Listing the runs under a root: every folder, newest first, each with what it holds or why it cannot be used.

No run can make the listing fail, and the listing reads checkpoint headers only, never tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan.config import Config
from gan.store.checkpoints import CheckpointError, check_header, printable
from gan.store.history import StepRecord
from gan.store.run import Run, default_root


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path
    config: Config | None
    epochs: tuple[int, ...]
    last_record: StepRecord | None
    error: str | None  # why the run cannot be used, or None


def list_runs(root: Path | str | None = None) -> list[RunInfo]:
    """Every run folder under root, newest first; unreadable runs are listed with a one-line reason, not skipped,
    and no run can make the listing fail."""
    root = Path(root or default_root())
    try:
        entries = list(root.iterdir()) if root.is_dir() else []
    except OSError:
        return []
    runs = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_symlink() and entry.is_dir():
                runs.append((0.0, _unusable(entry, "the run folder is a link; runs must be real folders")))
            elif entry.is_dir() and not entry.is_symlink():
                runs.append((entry.stat().st_mtime, _describe(Run(entry))))
        except Exception as error:  # one broken run must never hide the others
            runs.append((0.0, _unusable(entry, error)))
    runs.sort(key=lambda item: item[0], reverse=True)
    return [info for _, info in runs]


def _unusable(path: Path, error: Any) -> RunInfo:
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return RunInfo(printable(path.name, 100), path, None, (), None, printable(" ".join(reason.split()), 300))


def _describe(run: Run) -> RunInfo:
    try:
        config = run.config()
    except CheckpointError as error:
        return _unusable(run.path, str(error))
    epochs = tuple(run.epochs())
    error = None if epochs else "no saved epochs yet"
    try:
        last = run.last_step()
    except CheckpointError as damaged:
        last, error = None, str(damaged)
    if epochs:
        try:
            check_header(run.epoch_path(epochs[-1]), config)
        except CheckpointError as damaged:
            error = str(damaged)
    return RunInfo(run.name, run.path, config, epochs, last, None if error is None else printable(error, 300))
