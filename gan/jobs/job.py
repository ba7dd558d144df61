"""The training thread's side of a `TrainingSession`'s job: it builds the trainer, trains with a Recorder and
publishes what happens (progress, samples, the overview graph, slow motion) into the session's snapshot.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from gan.config import Config
from gan.control import Control, Outcome
from gan.images import grid_png
from gan.jobs.errors import USER_ERRORS
from gan.jobs.runner import prepare_trainer, train_run
from gan.jobs.snapshot import Status, ThinnedHistory
from gan.lab.overview import OverviewFrame, next_batch, overview_frame
from gan.lab.slowmotion import SubStepView, slow_step
from gan.lab.stepthrough import Measurement, OwnBatch, StepThrough, measure, own_scores
from gan.store.checkpoints import printable
from gan.store.history import ChangeRecord, EpochRecord, Player, StepRecord
from gan.store.run import Run
from gan.train import Trainer, TrainingDiverged

if TYPE_CHECKING:
    from gan.jobs.session import TrainingSession

ERROR_CHARS = 500  # an error shown to the user is one line of at most this many characters


class Job:
    """The thread's side of one job: builds the trainer, trains with a Recorder, and publishes what happens."""

    def __init__(
        self,
        session: TrainingSession,
        run: Run,
        control: Control,
        config: Config | None,
        resume: bool,
        epochs: int | None,
    ):
        self.session, self.run, self.control = session, run, control
        self.config, self.resume, self.epochs = config, resume, epochs
        self.trainer: Trainer | None = None
        self.history = ThinnedHistory()
        self.epoch_records: list[EpochRecord] = []
        self.changes: list[ChangeRecord] = []
        self.measured: Measurement | None = None  # the trainer just before a requested step
        self.published_at = 0.0  # time.monotonic() of the latest progress published
        self.drawn_at = 0.0  # ... and of the latest sample grid
        self.overview_at = 0.0  # ... and of the latest overview graph
        control.on_park = self.on_park

    def work(self) -> None:
        """The thread's body: whatever goes wrong ends in a published failure, so the next Start can begin. The
        job's last status is published only after the run's lock is released: a Continue pressed the moment the
        job shows Stopped must find the run free."""
        try:
            try:
                with self.run.lock():  # held for the whole job: a second writer of this run (a CLI) is refused
                    ended, changes = self.train()
            except BaseException as error:  # shown to the user; what was saved stays on disk
                ended, changes = Status.FAILED, {"error": self.failure(error)}
            self.session.move(ended, **changes)
        finally:
            if self.session.snapshot().active:  # never leave the job looking busy
                self.session.move(Status.FAILED, error=self.session.snapshot().error or "the job ended unexpectedly")

    def train(self) -> tuple[Status, dict[str, Any]]:
        """Train to the end, a Stop or an error; returns the status to end in and what it shows."""
        self.trainer = prepare_trainer(self.run, self.config, self.resume, self.epochs)
        self.load_past()
        self.session.publish(**self.ready_changes())
        self.session.move(Status.RUNNING, expected=Status.STARTING)
        outcome = train_run(
            self.run,
            self.trainer,
            self.control,
            self.on_step,
            self.on_epoch,
            self.on_save_error,
            on_change=self.on_change,
            before_requested_step=self.before_requested_step,
            slow_step=self.slow_step,
            on_scores=self.on_scores,
        )
        ended = Status.FINISHED if outcome == Outcome.FINISHED else Status.STOPPED
        return ended, self.final_changes()

    def load_past(self) -> None:
        """A resumed run shows its whole past, thinned like new steps."""
        past = self.run.history(self.trainer.step)
        for record in past.steps:
            self.history.add(record)
        self.epoch_records = list(past.epochs)
        self.changes = [record for record in past if isinstance(record, ChangeRecord)]

    def failure(self, error: BaseException) -> str:
        """One line for the user: what went wrong, and for a diverged run what was kept."""
        if isinstance(error, TrainingDiverged):
            kept = self.run.epochs()
            return f"{error} Kept: {f'epochs up to {kept[-1]}' if kept else 'no epochs'}."
        text = " ".join(str(error).split())
        if not isinstance(error, USER_ERRORS):  # a bug, or e.g. a write that failed after Stop: name the error
            text = f"{type(error).__name__}: {text}"
        return printable(text, ERROR_CHARS)

    # --- what each moment changes in the snapshot ---

    def samples(self) -> bytes:
        self.drawn_at = time.monotonic()
        return grid_png(self.trainer.sample_fixed())

    def position_changes(self) -> dict[str, Any]:
        trainer = self.trainer
        return {"epochs_done": trainer.epoch, "step": trainer.step, "seconds": trainer.seconds}

    def ready_changes(self) -> dict[str, Any]:
        return {
            **self.position_changes(),
            "config": self.trainer.config,
            "total_steps": self.trainer.total_steps,
            "history": tuple(self.history.records),
            "epoch_records": tuple(self.epoch_records),
            "samples_png": self.samples(),
            "saved_epochs": tuple(self.run.epochs()),
            "changes": tuple(self.changes),
        }

    def step_changes(self, metrics: StepRecord) -> dict[str, Any]:
        return {
            "step": metrics.step,
            "images_per_sec": metrics.images_per_sec,
            "seconds": metrics.seconds,
            "history": tuple(self.history.records),
        }

    def epoch_changes(self, samples_png: bytes) -> dict[str, Any]:
        self.drawn_at = time.monotonic()
        return {
            **self.position_changes(),
            "epoch_records": tuple(self.epoch_records),
            "saved_epochs": tuple(self.run.epochs()),
            "samples_png": samples_png,
        }

    def final_changes(self) -> dict[str, Any]:
        return {
            **self.position_changes(),
            "history": tuple(self.history.records),
            "saved_epochs": tuple(self.run.epochs()),
            "samples_png": self.samples(),
        }

    # --- the Recorder's callbacks, on the training thread ---

    def on_change(self, change: ChangeRecord) -> None:
        self.changes.append(change)
        trainer = self.trainer
        self.session.publish(changes=tuple(self.changes), config=trainer.config, **self.position_changes())

    def before_requested_step(self, players: Player) -> None:
        self.measured = measure(self.trainer)
        self.own_batch = next_batch(self.trainer)  # the batch this step is about to train on
        self.own = OwnBatch(own_scores(self.trainer, *self.own_batch))

    def slow_step(self, real: torch.Tensor, labels: torch.Tensor) -> StepRecord:
        return slow_step(self.trainer, real, labels, self.on_substep, self.control.wait_for_substep)

    def on_substep(self, view: SubStepView) -> None:
        self.session.publish(slow_motion=view, overview=view.frame, step=view.step)

    def overview(self) -> OverviewFrame:
        self.overview_at = time.monotonic()
        return overview_frame(self.trainer, self.session.overview_count)

    def on_park(self) -> None:
        """The loop waits while paused: publish its latest step (progress is otherwise published at most every
        `publish_interval`) and an overview graph of that step, drawn now (about 70 ms) unless the graph shown
        already is of it, so a paused job's graph always matches its step counter."""
        changes = {**self.position_changes(), "history": tuple(self.history.records)}
        shown = self.session.snapshot().overview
        if shown is None or shown.step != self.trainer.step:
            changes["overview"] = self.overview()
        self.session.publish(**changes)

    def on_step(self, metrics: StepRecord) -> None:
        self.history.add(metrics)
        if self.measured is not None:  # a requested step: show it at once, whoever watches
            own = replace(self.own, after=own_scores(self.trainer, *self.own_batch))
            shown = StepThrough(metrics.players, self.measured, measure(self.trainer), own)
            self.measured = None
            changes = {"step_through": shown, "samples_png": self.samples(), "overview": self.overview()}
            self.session.publish(**changes, **self.step_changes(metrics))
            return
        now = time.monotonic()
        changes = {}
        if self.wants_samples(now):
            changes["samples_png"] = self.samples()
        looked_at = self.session.overview_watched_since(self.overview_at)
        if looked_at and now - self.overview_at >= self.session.grid_interval:
            changes["overview"] = self.overview()
        if changes or now - self.published_at >= self.session.publish_interval:
            self.published_at = now
            self.session.publish(**self.step_changes(metrics), **changes)

    def wants_samples(self, now: float) -> bool:
        """A fresh grid is due: the last is old enough, and someone watched since it was drawn."""
        return now - self.drawn_at >= self.session.grid_interval and self.session.watched_since(self.drawn_at)

    def on_epoch(self, epochs_done: int, record: EpochRecord, samples_png: bytes) -> None:
        self.epoch_records.append(record)
        self.session.publish(**self.epoch_changes(samples_png))

    def on_scores(self, scored: EpochRecord) -> None:
        """An epoch's scores came in (scored beside the training): its record replaces the unscored one."""
        self.epoch_records = [scored if record.epoch == scored.epoch else record for record in self.epoch_records]
        self.session.publish(epoch_records=tuple(self.epoch_records))

    def on_save_error(self, error: OSError) -> None:
        reason = (
            f"could not save to {self.run.path} ({error.strerror or error}); training is paused and the saved "
            "epochs are intact. Free space or fix permissions, then Resume (or Stop)."
        )
        if self.session.pause_for(self.control, reason):
            self.control.wait_while_paused()
