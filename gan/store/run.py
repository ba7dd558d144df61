"""A run folder: its name and root, its writer lock, its saved epochs and grids, its history, resuming.

A run is `checkpoints/<name>/` holding
    config.json                 the validated Config
    history.jsonl               one JSON record per logged step ({"kind": "step", ...}) or epoch ({"kind": "epoch"})
    epoch-NNNN.safetensors      the full training state after epoch N (G, EMA G, D, optimisers, RNG, position)
    epoch-NNNN.png              the fixed-noise grid drawn by the EMA generator after epoch N
    latest.safetensors          the state at a stop in mid-epoch, so no trained step is lost

Every write goes to a temporary file that is renamed into place, so a crash leaves either the old file or the new
one; checkpoint files are written and checked by gan.store.checkpoints.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gan.config import Config, ConfigError
from gan.models import build_generator
from gan.store.checkpoints import CheckpointError, load_state, printable, save_state
from gan.store.files import FileError, append_lines, atomic_write, read_json
from gan.store.history import EpochRecord, History, Record, StepRecord, encode, last_step_record, read_epoch_records
from gan.store.history import read_history as read_history_file
from gan.store.shipped import refuse_writes, shipped_path

DEFAULT_ROOT = Path("checkpoints")
ROOT_VARIABLE = "GAN_STUDIO_CHECKPOINTS"
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LOCK_FILE = ".lock"
_HELD: set[Path] = set()  # run folders whose lock this process holds

EPOCH_FILE = re.compile(r"^epoch-(\d{4,})\.safetensors$")
LATEST = "latest.safetensors"


class RunLockedError(CheckpointError):
    """Another process (or job) is writing this run."""


def default_root() -> Path:
    """Where runs live: $GAN_STUDIO_CHECKPOINTS if set, else ./checkpoints (read at call time, for tests)."""
    return Path(os.environ.get(ROOT_VARIABLE) or DEFAULT_ROOT)


def default_run_name(prefix: str) -> str:
    """`<prefix>-<date>-<time>`: the name of a run started without one, from the command line or the app."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


def validate_run_name(name: str) -> str:
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or ".." in name:
        raise CheckpointError(
            f"run name {printable(name)!r} is not allowed: use 1-64 letters, digits, '-', '_' or '.', starting "
            "with a letter or digit, without '..', spaces, control characters or path separators"
        )
    return name


@dataclass(frozen=True)
class Run:
    """A run folder. Cheap to create; every property reads the disk afresh, so a growing run is seen growing."""

    path: Path

    @classmethod
    def at(cls, name: str, root: Path | str | None = None) -> Run:
        """The run of that name under root; a name of a shipped run with no folder there is the shipped run."""
        path = Path(root or default_root()) / validate_run_name(name)
        shipped = None if path.exists() or path.is_symlink() else shipped_path(name)
        return cls(shipped or path)

    @property
    def name(self) -> str:
        return self.path.name

    def exists(self) -> bool:
        return (self.path / "config.json").is_file()

    def config(self) -> Config:
        file = self.path / "config.json"
        if self.path.is_symlink():
            raise CheckpointError(f"{self.path}: the run folder is a link; runs must be real folders")
        try:
            return Config.from_saved(read_json(file, within=self.path))
        except FileError as error:
            raise CheckpointError(str(error)) from None
        except ConfigError as error:
            raise CheckpointError(f"{file}: {error}") from None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's writer lock (flock on `<run>/.lock`) for the block; a second writer, in this process or
        another, is refused with RunLockedError naming the holder. The kernel drops the lock when its holder dies,
        so a killed process never leaves the run locked. A shipped run is never locked: ReadOnlyRunError."""
        refuse_writes(self.path)
        if self.path.is_symlink():
            raise CheckpointError(f"{self.path}: the run folder is a link; runs must be real folders")
        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(f"run {self.name!r} is being trained by {self._lock_holder()}") from None
            holder = {"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
            try:
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, json.dumps(holder).encode(), 0)
            except OSError as error:  # e.g. a full disk: name the file, and leave no folder holding only the lock
                if created:
                    shutil.rmtree(self.path, ignore_errors=True)
                raise OSError(error.errno, error.strerror, str(self.path / LOCK_FILE)) from None
            _HELD.add(self.path.resolve())
            try:
                yield
            finally:
                _HELD.discard(self.path.resolve())
                if created and [entry.name for entry in self.path.iterdir()] == [LOCK_FILE]:
                    shutil.rmtree(self.path, ignore_errors=True)  # a new run that never started leaves nothing
        finally:
            os.close(descriptor)  # releases the flock

    def holds_lock(self) -> bool:
        return self.path.resolve() in _HELD

    def _lock_holder(self) -> str:
        try:
            holder = read_json(self.path / LOCK_FILE, max_bytes=1000, within=self.path)
            return f"process {int(holder['pid'])} since {printable(holder['since'], 40)}"
        except (FileError, KeyError, TypeError, ValueError):
            return "another process"

    def write_config(self, config: Config) -> None:
        atomic_write(self.path / "config.json", config.to_json().encode())

    def epoch_path(self, epoch: int) -> Path:
        return self.path / f"epoch-{epoch:04d}.safetensors"

    def grid_path(self, epoch: int) -> Path:
        return self.path / f"epoch-{epoch:04d}.png"

    @property
    def latest_path(self) -> Path:
        return self.path / LATEST

    def epochs(self) -> list[int]:
        """Saved epochs in order (temporary files of an interrupted write are never listed)."""
        if not self.path.is_dir():
            return []
        found = (EPOCH_FILE.match(entry.name) for entry in self.path.iterdir())
        return sorted(int(match.group(1)) for match in found if match)

    def epochs_with_grids(self) -> list[int]:
        """Saved epochs that have their grid PNG too, from one listing of the folder."""
        if not self.path.is_dir():
            return []
        names = {entry.name for entry in self.path.iterdir()}
        found = (EPOCH_FILE.match(name) for name in names)
        return sorted(int(match.group(1)) for match in found if match and f"epoch-{match.group(1)}.png" in names)

    def save_epoch(self, epoch: int, state: dict[str, Any], config: Config, grid: bytes | None = None) -> None:
        """The state after `epoch` (counted from 1) and its sample grid (PNG bytes)."""
        save_state(self.epoch_path(epoch), state, config)
        if grid is not None:
            atomic_write(self.grid_path(epoch), grid)
        self.latest_path.unlink(missing_ok=True)  # the epoch file is now the newest state

    def save_latest(self, state: dict[str, Any], config: Config) -> None:
        save_state(self.latest_path, state, config)

    def load_epoch(self, epoch: int) -> dict[str, Any]:
        path = self.epoch_path(epoch)
        if not path.is_file():
            raise CheckpointError(f"run {self.name!r} has no saved epoch {epoch} (saved: {self.epochs() or 'none'})")
        return load_state(path)[0]

    def resume_state(self) -> dict[str, Any] | None:
        """The newest usable state (mid-epoch stop or epoch file), skipping damaged or foreign files; None when
        nothing was saved. Saved files of which none can be loaded raise: a resume must not restart from step 0
        and overwrite them."""
        config = self.config()
        candidates = [self.latest_path] + [self.epoch_path(epoch) for epoch in reversed(self.epochs())]
        best: dict[str, Any] | None = None
        reasons = []
        for path in candidates:
            if not path.exists() and not path.is_symlink():
                continue
            try:
                state, _ = load_state(path, config)
            except CheckpointError as error:
                reasons.append(str(error))
                continue
            if "opt_g" not in state:  # weights only (a shipped run's epoch): nothing to train on from
                reasons.append(f"{path}: holds weights only, not a state training can continue from")
                continue
            if best is None or state["position"]["step"] > best["position"]["step"]:
                best = state
        if best is None and reasons:
            raise CheckpointError(
                f"run {self.name!r}: none of its {len(reasons)} saved files can be loaded, so it cannot be resumed "
                f"(the files are left as they are). First: {reasons[0]}"
            )
        return best

    def remove_partial_writes(self) -> list[Path]:
        """Delete the temporary files of writes cut short by a kill (never listed nor loaded, but they take space).
        Only while this process holds the run's lock (otherwise nothing is removed): another writer's temporary
        files may be in use."""
        if not self.holds_lock():
            return []
        leftovers = [entry for entry in self.path.glob(".*.tmp") if entry.is_file()]
        for entry in leftovers:
            entry.unlink(missing_ok=True)
        return leftovers

    def append_history(self, records: Iterable[Record]) -> None:
        """Append records all or nothing: a failed write leaves the file as it was, so a retry logs no step twice."""
        append_lines(self.path / "history.jsonl", encode(list(records)))

    def history(self, up_to_step: int | None = None) -> History:
        """The well-formed records (bad lines skipped and counted); `up_to_step` drops records after a resume point."""
        try:
            return read_history_file(self.path / "history.jsonl", up_to_step, within=self.path)
        except FileError as error:
            raise CheckpointError(str(error)) from None

    def last_step(self) -> StepRecord | None:
        """The newest step record, read from the end of the history (cheap however long the run)."""
        try:
            return last_step_record(self.path / "history.jsonl", within=self.path)
        except FileError as error:
            raise CheckpointError(str(error)) from None

    def epoch_records(self) -> list[EpochRecord]:
        try:
            return read_epoch_records(self.path / "history.jsonl", within=self.path)
        except FileError as error:
            raise CheckpointError(str(error)) from None

    def truncate_history(self, up_to_step: int) -> None:
        """Forget records logged after the state a resume starts from, so the history is not doubled."""
        atomic_write(self.path / "history.jsonl", encode(list(self.history(up_to_step).records)).encode())


def load_generator(run: Run, epoch: int | None = None, ema: bool = True) -> tuple[torch.nn.Module, Config, int]:
    """The generator of a saved epoch (the newest when `epoch` is None), in eval mode on the CPU."""
    epochs = run.epochs()
    if not epochs:
        raise CheckpointError(f"run {run.name!r} has no saved epochs yet")
    epoch = epochs[-1] if epoch is None else epoch
    path = run.epoch_path(epoch)
    if not path.is_file():
        raise CheckpointError(f"run {run.name!r} has no saved epoch {epoch} (saved: {epochs})")
    state, config = load_state(path, run.config())
    generator = build_generator(config)
    try:
        generator.load_state_dict(state["G_ema" if ema else "G"])
    except (KeyError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:200]  # PyTorch's message spans lines; errors are one line
        raise CheckpointError(f"{path}: weights do not fit the {config.preset} preset ({reason})") from None
    return generator.eval().requires_grad_(False), config, epoch
