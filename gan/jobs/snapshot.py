"""What the app may know about its training job: its `Status`, with the one table of moves between statuses, and
the `Snapshot`, an immutable picture of the job that the session replaces whole at every change. The step history
it carries is thinned (`ThinnedHistory`) so that a long run's charts stay light.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

from gan.config import Config
from gan.lab.overview import OverviewFrame
from gan.lab.slowmotion import SubStepView
from gan.lab.stepthrough import StepThrough
from gan.store.history import ChangeRecord, EpochRecord, StepRecord

HISTORY_POINTS = 2000


class Status(str, Enum):
    IDLE = "idle"  # no job since the server started
    STARTING = "starting"  # loading data, building or restoring the trainer
    RUNNING = "running"
    PAUSED = "paused"  # by the user, or by a failed save waiting for the user
    STOPPING = "stopping"  # asked to stop; the state is being saved
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """A job exists and holds the thread: no other may start."""
        return self in (Status.STARTING, Status.RUNNING, Status.PAUSED, Status.STOPPING)

    # What the user's commands may do now (the commands check the same, through the table).
    @property
    def can_pause(self) -> bool:
        return self == Status.RUNNING

    @property
    def can_resume(self) -> bool:
        return self == Status.PAUSED

    @property
    def can_stop(self) -> bool:
        return self != Status.STOPPING and can_move(self, Status.STOPPING)


ENDED = frozenset({Status.FINISHED, Status.STOPPED, Status.FAILED})
# The only changes of status there are; anything else (a Pause while stopping, a second Stop) is ignored.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.IDLE: frozenset({Status.STARTING}),
    Status.STARTING: frozenset({Status.RUNNING, Status.STOPPING, Status.FAILED}),
    Status.RUNNING: frozenset({Status.PAUSED, Status.STOPPING, *ENDED}),
    Status.PAUSED: frozenset({Status.RUNNING, Status.STOPPING, *ENDED}),  # a Pause after the last step: finished
    Status.STOPPING: ENDED,
    Status.FINISHED: frozenset({Status.STARTING}),
    Status.STOPPED: frozenset({Status.STARTING}),
    Status.FAILED: frozenset({Status.STARTING}),
}


def can_move(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]


@dataclass(frozen=True)
class Snapshot:
    """What the UI may know about the job, at one moment. Never mutated; a new one replaces it."""

    status: Status = Status.IDLE
    run_name: str | None = None
    config: Config | None = None
    epochs_done: int = 0
    step: int = 0
    total_steps: int = 0
    images_per_sec: float = 0.0
    seconds: float = 0.0
    history: tuple[StepRecord, ...] = ()  # thinned evenly to at most HISTORY_POINTS
    epoch_records: tuple[EpochRecord, ...] = ()
    samples_png: bytes | None = None  # the fixed noise drawn by the EMA generator, refreshed while watched
    saved_epochs: tuple[int, ...] = ()
    error: str | None = None
    started: float = field(default_factory=time.time)
    changes: tuple[ChangeRecord, ...] = ()  # settings changed mid-run
    step_through: StepThrough | None = None  # the latest single step taken while paused, measured before and after
    slow_motion: SubStepView | None = None  # the latest sub-step of a step taken in slow motion (None once resumed)
    overview: OverviewFrame | None = None  # the overview graph of a recent step, drawn while someone looks at it

    @property
    def active(self) -> bool:
        return self.status.active

    @property
    def epochs(self) -> int:
        return self.config.epochs if self.config else 0

    @property
    def current_epoch(self) -> int:
        """The 1-based epoch to show: the one in progress while active, else the last one done (at least 1)."""
        return min(self.epochs_done + (1 if self.active else 0), self.epochs) or 1

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
        self.limit, self.stride, self.records = limit, 1, []  # records: list[StepRecord]

    def add(self, record: StepRecord) -> None:
        if record.step % self.stride:
            return
        self.records.append(record)
        if len(self.records) > self.limit:
            self.stride *= 2
            self.records = [kept for kept in self.records if kept.step % self.stride == 0]
