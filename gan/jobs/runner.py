"""Training a run folder: the trainer for a new or resumed run, and the `Recorder` that keeps its folder up to date.

The CLI (`python -m gan train`) and the app's background job both call `train_run`; they differ only in the
callbacks they pass (a progress bar, or snapshots for the page) and in what they do when a save fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from gan.config import Config
from gan.control import Control, Outcome
from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.images import grid_png
from gan.jobs.scoring import EpochScorer, ScoringFailed
from gan.models import check_memory
from gan.scoring.diagnose import sample_spread
from gan.scoring.metrics import score_generator
from gan.store.checkpoints import CheckpointError, printable
from gan.store.history import ChangeRecord, EpochRecord, Player, Record, StepRecord
from gan.store.run import Run
from gan.train import ChangeCallback, Trainer, TrainingDiverged

StepCallback = Callable[[StepRecord], None]
EpochCallback = Callable[[int, EpochRecord, bytes], None]  # (epochs done, the epoch's record, its sample grid PNG)
ScoresCallback = Callable[[EpochRecord], None]  # an epoch's record once its scores are in (gan.jobs.scoring)
SaveErrorCallback = Callable[[OSError], None]


class RunError(ValueError):
    """A run cannot be started or resumed as asked (name taken, nothing to resume, ...)."""


def check_startable(run: Run, resume: bool, config: Config | None = None) -> None:
    """The checks before a job starts, in one place: refuse to start a new run over an existing one, to resume one
    that is not there, or to train a `config` that would not fit in memory (ConfigError). The CLI and the app run
    them before any work, for an answer at once; `prepare_trainer` runs them again under the run's lock, since
    another process may have created or removed the run in between."""
    if resume and not run.exists():
        raise RunError(f"there is no run {run.name!r} to resume")
    if not resume and (run.exists() or run.epochs()):
        raise RunError(f"a run named {run.name!r} already exists: choose another name, or resume it")
    if config is not None:
        check_memory(config)


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
    check_startable(run, resume, None if resume else config)
    if resume:
        return resumed_trainer(run, epochs)
    if config is None:
        raise RunError("a new run needs a config")
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(config)
    return Trainer(config, load_mnist(DEFAULT_DATA_DIR))


def resumed_trainer(run: Run, epochs: int | None = None) -> Trainer:
    """The run's trainer at its newest usable state, with its history cut back to that state."""
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


def continue_target(last_saved: int, planned: int, more: int = 5) -> int:
    """The epoch count to offer for continuing a run: its plan if unfinished, else a few epochs more."""
    return planned if last_saved < planned else planned + more


class Recorder:
    """Listens to a trainer and writes its run folder: step records, and at each epoch's end its record, its state
    and its sample grid; the exact state when training stops early. When the config asks, epochs are scored beside
    the training (gan.jobs.scoring): a scored epoch's record reaches the history, and `on_scores`, once its scores
    are in; `on_epoch` has it at the epoch's end, without them.

    A failed write (disk full, read-only folder) goes to `on_save_error`, which may wait for the user to fix it:
    the write is then tried again. Without that callback the error is raised. Saved epochs are never touched.
    """

    def __init__(
        self,
        run: Run,
        trainer: Trainer,
        control: Control,
        on_step: StepCallback | None = None,
        on_epoch: EpochCallback | None = None,
        on_save_error: SaveErrorCallback | None = None,
        on_change: ChangeCallback | None = None,
        on_scores: ScoresCallback | None = None,
    ):
        self.run, self.trainer, self.control = run, trainer, control
        self.on_step, self.on_epoch, self.on_save_error = on_step, on_epoch, on_save_error
        self.on_change, self.on_scores = on_change, on_scores
        self.pending: list[Record] = []  # records not yet appended to the history file
        self.scorer = EpochScorer(trainer.G_ema, score_generator if trainer.config.evaluate else None)

    def record_step(self, metrics: StepRecord) -> None:
        self.pending.append(metrics)
        if self.on_step:
            self.on_step(metrics)
        self.take_epochs(self.scorer.ready())

    def record_change(self, change: ChangeRecord) -> None:
        self.pending.append(change)
        if self.on_change:
            self.on_change(change)

    def end_epoch(self, epochs_done: int) -> None:
        """The epoch's record (scored when the config asks), its state and grid when it is saved, and `on_epoch`.
        The fixed noise is drawn once, for the record's spread, the saved grid and the callback's."""
        trainer, config = self.trainer, self.trainer.config
        samples = trainer.sample_fixed()
        spread = sample_spread(samples)  # the diagnosis tells collapse from variety by it
        record = EpochRecord(epochs_done, trainer.step, trainer.seconds, None, spread)
        self.scorer.submit(record, last=epochs_done == config.epochs)  # scores this G_ema's copy, if due
        self.flush()
        grid = grid_png(samples)
        if epochs_done % config.checkpoint_every == 0 or epochs_done == config.epochs:
            self.save_epoch(epochs_done, grid)
        if self.on_epoch:
            self.on_epoch(epochs_done, record, grid)
        self.take_epochs(self.scorer.ready())  # this epoch's record if unscored, or earlier ones scored by now

    def save_epoch(self, epochs_done: int, grid: bytes) -> None:
        state, config = self.trainer.state_dict(), self.trainer.config
        self.save(lambda: self.run.save_epoch(epochs_done, state, config, grid))

    def take_epochs(self, records: list[EpochRecord], flush: bool = True) -> None:
        """Epoch records handed back by the scorer, in epoch order: into the history (at once when `flush`)."""
        self.pending.extend(records)
        for record in records:
            if record.scores is not None and self.on_scores:
                self.on_scores(record)
        if records and flush:
            self.flush()

    def flush(self) -> None:
        self.save(lambda: self.run.append_history(self.pending))
        self.pending.clear()

    def finish(self, outcome: Outcome) -> None:
        """After the loop: the last epochs' scores, the last records, and the state of a run stopped mid-way (no
        trained step is lost)."""
        self.take_epochs(self.scorer.finish(), flush=False)
        self.flush()
        if outcome != Outcome.FINISHED:
            self.save(lambda: self.run.save_latest(self.trainer.state_dict(), self.trainer.config))
        self.scorer.raise_failure()  # a failed score fails the job, as scoring inline did, once all is saved

    def save(self, write: Callable[[], None]) -> None:
        while True:
            try:
                write()
                return
            except OSError as error:
                if self.on_save_error is None:
                    raise
                self.on_save_error(error)  # e.g. pause and wait for the user to free space
                if self.control.stop_requested:
                    raise


def train_run(
    run: Run,
    trainer: Trainer,
    control: Control | None = None,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    on_save_error: SaveErrorCallback | None = None,
    max_seconds: float | None = None,
    on_change: ChangeCallback | None = None,
    before_requested_step: Callable[[Player], None] | None = None,
    slow_step: Callable[[torch.Tensor, torch.Tensor], StepRecord] | None = None,
    on_scores: ScoresCallback | None = None,
) -> Outcome:
    """Train and keep the run folder up to date (see Recorder). Returns how the loop ended."""
    control = control or Control()
    recorder = Recorder(run, trainer, control, on_step, on_epoch, on_save_error, on_change, on_scores)
    try:
        outcome = trainer.run(
            control,
            on_step=recorder.record_step,
            on_epoch_end=recorder.end_epoch,
            max_seconds=max_seconds,
            on_change=recorder.record_change,
            before_requested_step=before_requested_step,
            slow_step=slow_step,
        )
    except (TrainingDiverged, ScoringFailed):
        recorder.take_epochs(recorder.scorer.finish(timeout=0), flush=False)  # unscored, not waited for
        recorder.flush()  # the steps before the bad one (or before the failed score was seen) are kept
        raise
    except BaseException:
        recorder.scorer.finish(timeout=0)  # the scoring worker ends with the job
        raise
    recorder.finish(outcome)
    return outcome
