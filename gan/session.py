"""Running a training job: `train_run` trains a run folder in the foreground (the CLI uses it), and
`TrainingSession` runs it in a background thread for the app.

The session owns its thread, a lock and a `Control`. The UI sends commands (start, pause, resume, stop) and
reads `snapshot()`, an immutable picture of the job published by the thread; the thread never touches the UI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gan.checkpoints import CheckpointError, Run, printable
from gan.config import Config
from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.diagnose import sample_spread
from gan.history import ChangeRecord, EpochRecord, Record, StepRecord
from gan.images import grid_png
from gan.metrics import score_generator
from gan.models import check_memory
from gan.stepthrough import StepThrough, probe
from gan.train import ChangeCallback, Control, StepMetrics, Trainer, TrainingDiverged

EpochCallback = Callable[[int, EpochRecord], None]
SaveErrorCallback = Callable[[OSError], None]


class RunError(ValueError):
    """A run cannot be started or resumed as asked (name taken, nothing to resume, ...)."""


def check_startable(run: Run, resume: bool) -> None:
    """Refuse to start a new run over an existing one, or to resume one that is not there."""
    if resume and not run.exists():
        raise RunError(f"there is no run {run.name!r} to resume")
    if not resume and (run.exists() or run.epochs()):
        raise RunError(f"a run named {run.name!r} already exists: choose another name, or resume it")


def check_same_settings(saved: Config, given: dict[str, Any]) -> None:
    """Settings repeated on a resume must equal the run's own (people re-run the first command with --resume);
    only a real change is refused, naming the setting, the run's value and the given one."""
    for name, value in given.items():
        if value is not None and getattr(saved, name) != value:
            raise RunError(
                f"{name} cannot be changed when resuming: the run has {name}={getattr(saved, name)!r}, "
                f"{value!r} was given (a run keeps its settings; only the epochs may grow)"
            )


def prepare_trainer(run: Run, config: Config | None = None, resume: bool = False, epochs: int | None = None) -> Trainer:
    """A trainer for a new run (config required) or for the newest saved state of an existing run. Call it while
    holding the run's lock (`run.lock()`): it cleans up partial writes and rewrites the history.

    Resuming may raise the epoch count (`epochs`) to train a finished run further, never lower it below what
    is already trained.
    """
    check_startable(run, resume)
    if resume:
        saved = run.config()
        config = saved if epochs is None else saved.replace(epochs=epochs)
        check_memory(config)
        run.remove_partial_writes()
        state = run.resume_state()
        trainer = Trainer(config, load_mnist(DEFAULT_DATA_DIR))
        if state is not None:
            try:
                trainer.load_state_dict(state)
            except (KeyError, RuntimeError, ValueError, TypeError) as error:
                reason = printable(" ".join(str(error).split()), 200)
                raise CheckpointError(f"run {run.name!r}: the saved state does not fit its config ({reason})") from None
        if trainer.epoch > config.epochs:
            raise RunError(
                f"epochs={config.epochs} is below what run {run.name!r} has already trained ({trainer.epoch} "
                "epochs): give at least that many"
            )
        run.truncate_history(trainer.step)
        if config != saved:
            run.write_config(config)
        return trainer
    if config is None:
        raise RunError("a new run needs a config")
    check_memory(config)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(config)
    return Trainer(config, load_mnist(DEFAULT_DATA_DIR))


def train_run(
    run: Run,
    trainer: Trainer,
    control: Control | None = None,
    on_step: Callable[[StepMetrics], None] | None = None,
    on_epoch: EpochCallback | None = None,
    on_save_error: SaveErrorCallback | None = None,
    max_seconds: float | None = None,
    on_change: ChangeCallback | None = None,
    before_requested_step: Callable[[str], None] | None = None,
) -> str:
    """Train and keep the run folder up to date: history and an epoch file (with its grid) after each epoch,
    and the exact state at a stop or time budget. Returns the loop's outcome.

    A failed write (disk full, read-only folder) goes to `on_save_error`, which may wait for the user to fix it:
    the save is then tried again. Without that callback the error is raised; saved epochs are never touched.
    """
    control = control or Control()
    pending: list[Record] = []

    def record_step(metrics: StepMetrics) -> None:
        pending.append(StepRecord(**asdict(metrics)))
        if on_step:
            on_step(metrics)

    def record_change(change: ChangeRecord) -> None:
        pending.append(change)
        if on_change:
            on_change(change)

    def flush_history() -> None:
        _save(lambda: run.append_history(pending), control, on_save_error)
        pending.clear()

    def end_epoch(epoch: int) -> None:
        scores = score_generator(trainer.G_ema).to_dict() if trainer.config.evaluate else None
        record = EpochRecord(epoch, trainer.step, trainer.seconds, scores, sample_spread(trainer.sample_fixed()))
        pending.append(record)
        flush_history()
        config = trainer.config
        if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
            grid = grid_png(trainer.sample_fixed())
            _save(lambda: run.save_epoch(epoch, trainer.state_dict(), config, grid), control, on_save_error)
        if on_epoch:
            on_epoch(epoch, record)

    try:
        outcome = trainer.run(control, record_step, end_epoch, max_seconds, record_change, before_requested_step)
    except TrainingDiverged:
        flush_history()
        raise
    flush_history()
    if outcome != "finished":
        _save(lambda: run.save_latest(trainer.state_dict(), trainer.config), control, on_save_error)
    return outcome


def _save(write: Callable[[], None], control: Control, on_save_error: SaveErrorCallback | None) -> None:
    while True:
        try:
            write()
            return
        except OSError as error:
            if on_save_error is None:
                raise
            on_save_error(error)  # e.g. pause and wait for the user to free space
            if control.stop_requested:
                raise


# --- the background job ------------------------------------------------------------------------------------

ACTIVE = ("starting", "running", "paused", "stopping")
HISTORY_POINTS = 2000


@dataclass(frozen=True)
class Snapshot:
    """What the UI may know about the job, at one moment. Never mutated; a new one replaces it."""

    status: str = "idle"  # idle, starting, running, paused, stopping, finished, stopped, failed
    run_name: str | None = None
    config: Config | None = None
    epoch: int = 0  # epochs completed
    step: int = 0
    total_steps: int = 0
    images_per_sec: float = 0.0
    seconds: float = 0.0
    history: tuple[StepRecord, ...] = ()  # step records, thinned evenly to at most HISTORY_POINTS
    epoch_records: tuple[EpochRecord, ...] = ()
    grid_png: bytes | None = None  # the fixed noise drawn by the EMA generator, refreshed while someone watches
    saved_epochs: tuple[int, ...] = ()
    error: str | None = None
    started: float = field(default_factory=time.time)
    changes: tuple[ChangeRecord, ...] = ()  # settings changed mid-run
    step_through: StepThrough | None = None  # the latest single step taken while paused, probed before and after

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def progress(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if not self.step or not self.total_steps or self.images_per_sec <= 0 or not self.config:
            return None
        return (self.total_steps - self.step) * self.config.batch_size / self.images_per_sec


class ThinnedHistory:
    """Keeps every `stride`-th step; doubles the stride (dropping every other kept point) when full."""

    def __init__(self, limit: int = HISTORY_POINTS):
        self.limit, self.stride, self.records = limit, 1, []

    def add(self, record: StepRecord) -> None:
        if record.step % self.stride:
            return
        self.records.append(record)
        if len(self.records) > self.limit:
            self.stride *= 2
            self.records = [kept for kept in self.records if kept.step % self.stride == 0]


class TrainingSession:
    """One background training job per process. Commands are safe from any thread, and idempotent.

    The sample grid costs the training thread about 20 ms, so between epochs it is redrawn at most every
    `grid_interval` seconds, and only if a snapshot was read since the last one: nobody watching, no cost."""

    def __init__(self, root: str | None = None, grid_interval: float = 2.0, publish_interval: float = 0.25):
        self.root = root
        self.grid_interval, self.publish_interval = grid_interval, publish_interval
        self._lock = threading.RLock()  # re-entrant: commands publish while holding it
        self._control = Control()
        self._thread: threading.Thread | None = None
        self._snapshot = Snapshot()
        self._last_read = 0.0  # time.monotonic() of the latest snapshot() call

    def snapshot(self) -> Snapshot:
        self._last_read = time.monotonic()
        return self._snapshot  # replaced atomically, never mutated

    def start(self, config: Config | None, run_name: str, resume: bool = False, epochs: int | None = None) -> bool:
        """Start a job unless one is active; returns whether this call started it. Raises CheckpointError on a
        bad run name and RunError on a taken one (or a missing one to resume), before any thread starts."""
        run = Run.at(run_name, self.root)
        with self._lock:
            if self._snapshot.active:
                return False
            check_startable(run, resume)
            if config is not None:
                check_memory(config)
            self._control = Control()
            self._snapshot = Snapshot(status="starting", run_name=run.name, config=config)
            self._thread = threading.Thread(
                target=self._work, args=(run, config, resume, epochs, self._control), name="gan-trainer", daemon=True
            )
            self._thread.start()
            return True

    def pause(self) -> None:
        with self._lock:
            if self._snapshot.status == "running":
                self._control.pause()
                self._publish(status="paused")

    def resume(self) -> None:
        with self._lock:
            if self._snapshot.status == "paused":
                self._publish(status="running", error=None)
                self._control.resume()

    def change(self, field: str, value: Any) -> bool:
        """Ask the running or paused job to change a setting from its next step (at once while paused). Raises
        ConfigError for a setting that cannot change or a bad value; returns whether the request was sent."""
        with self._lock:
            snapshot = self._snapshot
            if snapshot.status not in ("running", "paused") or snapshot.config is None:
                return False
            snapshot.config.replace(**{field: value})  # the same checks as at start
            self._control.change(field, value)
            return True

    def step(self, players: str) -> bool:
        """Take one step of `players` ("d", "g" or "dg") while paused; returns whether it was asked for (not while
        running, nor while an earlier step is still under way)."""
        with self._lock:
            if self._snapshot.status != "paused" or self._control.pending_steps:
                return False
            self._control.step(players)
            return True

    def stop(self, wait: float | None = None) -> None:
        with self._lock:
            if self._snapshot.active:
                self._publish(status="stopping")
                self._control.stop()
            thread = self._thread
        if wait and thread is not None:
            thread.join(wait)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _publish(self, **changes: Any) -> None:
        # Under the lock, so that the thread's read-modify-write cannot undo a command's status (a lost Pause).
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)

    def _work(self, run: Run, config: Config | None, resume: bool, epochs: int | None, control: Control) -> None:
        """The thread's body: whatever goes wrong ends the job as "failed" with a one-line reason, so the app is
        ready for the next Start."""
        try:
            with run.lock():
                self._train(run, config, resume, epochs, control)
        except TrainingDiverged as error:
            kept = run.epochs()
            self._publish(
                status="failed", error=f"{error} Kept: {f'epochs up to {kept[-1]}' if kept else 'no epochs'}."
            )
        except (CheckpointError, ValueError) as error:  # user-caused: bad run, bad settings, damaged files
            self._publish(status="failed", error=printable(" ".join(str(error).split()), 500))
        except BaseException as error:  # anything else, e.g. a write that failed after Stop; saved files stay
            self._publish(
                status="failed", error=printable(f"{type(error).__name__}: {' '.join(str(error).split())}", 500)
            )
        finally:
            if self._snapshot.active:  # never leave the job looking busy
                self._publish(status="failed", error=self._snapshot.error or "the job ended unexpectedly")

    def _train(self, run: Run, config: Config | None, resume: bool, epochs: int | None, control: Control) -> None:
        trainer = prepare_trainer(run, config, resume, epochs)
        history = ThinnedHistory()
        past = run.history(trainer.step)  # a resumed run shows its whole past, thinned like new steps
        for record in past.steps:
            history.add(record)
        epoch_records = past.epochs
        change_records = [record for record in past if isinstance(record, ChangeRecord)]
        probed: dict[str, Any] = {}  # the probe taken just before a requested step
        last = {"publish": 0.0, "grid": time.monotonic()}  # the first grid is drawn just below
        self._publish(
            status="paused" if control.paused else "running",
            config=trainer.config,
            epoch=trainer.epoch,
            step=trainer.step,
            total_steps=trainer.total_steps,
            seconds=trainer.seconds,
            history=tuple(history.records),
            epoch_records=tuple(epoch_records),
            grid_png=grid_png(trainer.sample_fixed()),
            saved_epochs=tuple(run.epochs()),
            changes=tuple(change_records),
        )

        def on_change(change: ChangeRecord) -> None:
            change_records.append(change)
            self._publish(
                changes=tuple(change_records), config=trainer.config, step=trainer.step, history=tuple(history.records)
            )

        def before_requested_step(players: str) -> None:
            probed["before"] = probe(trainer)

        def on_step(metrics: StepMetrics) -> None:
            history.add(StepRecord(**asdict(metrics)))
            if "before" in probed:  # a requested step: show it at once, whoever watches
                self._publish(
                    step_through=StepThrough(metrics.players, probed.pop("before"), probe(trainer)),
                    step=metrics.step,
                    seconds=metrics.seconds,
                    history=tuple(history.records),
                    grid_png=grid_png(trainer.sample_fixed()),
                )
                return
            now = time.monotonic()
            changes: dict[str, Any] = {}
            if now - last["grid"] >= self.grid_interval and self._last_read >= last["grid"]:
                last["grid"] = now
                changes["grid_png"] = grid_png(trainer.sample_fixed())
            if changes or now - last["publish"] >= self.publish_interval:
                last["publish"] = now
                self._publish(
                    step=metrics.step,
                    images_per_sec=metrics.images_per_sec,
                    seconds=metrics.seconds,
                    history=tuple(history.records),
                    **changes,
                )

        def on_epoch(epoch: int, record: EpochRecord) -> None:
            epoch_records.append(record)
            self._publish(
                epoch=epoch,
                step=trainer.step,
                epoch_records=tuple(epoch_records),
                saved_epochs=tuple(run.epochs()),
                grid_png=grid_png(trainer.sample_fixed()),
            )

        def on_save_error(error: OSError) -> None:
            with self._lock:
                self._control.pause()
                self._publish(
                    status="paused",
                    error=f"could not save to {run.path} ({error.strerror or error}); training is paused and the "
                    "saved epochs are intact. Free space or fix permissions, then Resume (or Stop).",
                )
            control.wait_while_paused()

        outcome = train_run(
            run, trainer, control, on_step, on_epoch, on_save_error, None, on_change, before_requested_step
        )
        self._publish(
            status="finished" if outcome == "finished" else "stopped",
            epoch=trainer.epoch,
            step=trainer.step,
            seconds=trainer.seconds,
            history=tuple(history.records),
            saved_epochs=tuple(run.epochs()),
            grid_png=grid_png(trainer.sample_fixed()),
        )
