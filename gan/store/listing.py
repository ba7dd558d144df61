"""Listing the runs under a root: every folder, newest first, each with what it holds or why it cannot be used;
and the same after the runs shipped with the package.

No run can make the listing fail, and the listing reads checkpoint headers only, never tensors.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan.config import Config
from gan.store.checkpoints import CheckpointError, check_header, printable
from gan.store.history import StepRecord
from gan.store.run import ROOT_VARIABLE, Run, default_root
from gan.store.shipped import SHIPPED_NAMES, shipped_path


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path
    config: Config | None
    epochs: tuple[int, ...]
    last_record: StepRecord | None
    error: str | None  # why the run cannot be used, or None
    shipped: bool = False  # a read-only run shipped with the package (gan.store.shipped)


def list_all_runs(root: Path | str | None = None) -> list[RunInfo]:
    """The shipped runs first (those whose name no run under root has taken), then every run under root."""
    return list(iter_all_runs(root))


def iter_all_runs(root: Path | str | None = None) -> Iterator[RunInfo]:
    """The runs of `list_all_runs`, described one at a time."""
    root = Path(root or default_root())
    try:
        taken = {entry.name for entry in root.iterdir()} if root.is_dir() else set()
    except OSError:
        taken = set()
    for name in SHIPPED_NAMES:
        if name not in taken and (path := shipped_path(name)) is not None:
            yield dataclasses.replace(_described(path, path.stat()), shipped=True)
    yield from iter_runs(root)


def list_runs(root: Path | str | None = None) -> list[RunInfo]:
    """Every run folder under root, newest first; unreadable runs are listed with a one-line reason, not skipped,
    and no run can make the listing fail."""
    return list(iter_runs(root))


def iter_runs(root: Path | str | None = None) -> Iterator[RunInfo]:
    """The runs of `list_runs`, described one at a time (a listing of thousands starts at once). A run that has not
    changed since this process last described it is not read again: see `_described`."""
    root = Path(root or default_root())
    try:
        entries = [(entry, entry.lstat()) for entry in root.iterdir() if not entry.name.startswith(".")]
    except OSError:
        return
    entries.sort(key=lambda item: item[1].st_mtime if stat.S_ISDIR(item[1].st_mode) else 0.0, reverse=True)
    for entry, status in entries:
        try:
            if stat.S_ISLNK(status.st_mode) and entry.is_dir():
                yield _unusable(entry, "the run folder is a link; runs must be real folders")
            elif stat.S_ISDIR(status.st_mode):
                yield _described(entry, status)
        except Exception as error:  # one broken run must never hide the others
            yield _unusable(entry, error)


def root_problem(root: Path | str | None = None) -> str | None:
    """Why the folder of runs cannot hold runs (it is a file, or cannot be read), or None: no runs yet is fine."""
    root = Path(root or default_root())
    if root.is_file() or (root.exists() and not root.is_dir()):
        return f"{root} is a file, not a folder of runs: choose another with --root or ${ROOT_VARIABLE}"
    try:
        next(iter(root.iterdir()), None) if root.exists() else None
    except OSError as error:
        return f"{root}: cannot read the folder of runs ({error.strerror or error})"
    return None


# run folder -> (its stamp when described, what was found). Listing 2,000 runs reads 2,000 configs, histories and
# checkpoint headers (seconds); an app rerun lists them each time, so a run is read again only when it changed.
_CACHE: dict[Path, tuple[tuple, RunInfo]] = {}
SETTLED = 2.0  # seconds: a folder changed more recently than this is read afresh (a change within the same clock tick)


def _described(folder: Path, status: os.stat_result) -> RunInfo:
    cached = _CACHE.get(folder)
    if cached is not None and cached[0] == _stamp(folder, status, cached[1]):
        return cached[1]
    before = _stamp(folder, status, None)  # taken first: a change while reading makes the next look read again
    info = _describe(Run(folder))
    stamp = before + _newest_epoch_stamp(folder, info)
    if time.time() - max(changed for changed, _ in stamp) / 1e9 > SETTLED:
        _CACHE[folder] = (stamp, info)
    return info


def _stamp(folder: Path, status: os.stat_result, info: RunInfo | None) -> tuple[tuple[int, int], ...]:
    """What changes when a run's listing may, as (time changed in ns, identity or size) pairs: the folder's entries
    (its time changes when a file is added, renamed over or removed) and the files read in place: the config, the
    history (appended to) and the newest epoch (known from the run's last description)."""
    stamp = ((status.st_mtime_ns, status.st_ino), _file_stamp(folder / "config.json"))
    stamp += (_file_stamp(folder / "history.jsonl"),)
    return stamp if info is None else stamp + _newest_epoch_stamp(folder, info)


def _newest_epoch_stamp(folder: Path, info: RunInfo) -> tuple[tuple[int, int], ...]:
    return (_file_stamp(Run(folder).epoch_path(info.epochs[-1])),) if info.epochs else ()


def _file_stamp(path: Path) -> tuple[int, int]:
    try:
        status = path.lstat()
    except OSError:
        return (0, -1)
    return (status.st_mtime_ns, status.st_size)


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
