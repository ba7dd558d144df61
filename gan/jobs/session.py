"""The app's one background training job: a small state machine, commands in, snapshots out.

`TrainingSession` owns its thread, a lock and the job's `Control`. The UI sends commands (start, pause, resume,
stop), reads `snapshot()`, an immutable picture of the job, and calls `watch()` while it shows the live samples
(drawing them costs the trainer, so they are drawn only while someone watches). Every change of `Status` goes
through one transition table (`gan.jobs.snapshot`); the thread never touches the UI. The thread's side of a job,
which trains and publishes, is `gan.jobs.job.Job`.
"""

from __future__ import annotations

import atexit
import threading
import time
from dataclasses import replace
from typing import Any

from gan.config import Config
from gan.control import Control
from gan.jobs.job import Job
from gan.jobs.runner import check_startable
from gan.jobs.snapshot import Snapshot, Status, can_move
from gan.lab.overview import SHOWN, OverviewFrame
from gan.store.history import Player
from gan.store.run import Run

EXIT_WAIT = 60.0  # seconds the interpreter's exit waits for a stopped job to save (a step and a save: far less)


class TrainingSession:
    """One background training job per process. Commands are safe from any thread, and idempotent.

    The sample grid costs the training thread about 20 ms, so between epochs it is redrawn at most every
    `grid_interval` seconds, and only if `watch()` was called since the last one: nobody watching, no cost."""

    def __init__(self, root: str | None = None, grid_interval: float = 2.0, publish_interval: float = 0.25):
        self.root = root
        self.grid_interval, self.publish_interval = grid_interval, publish_interval
        self._lock = threading.RLock()  # re-entrant: commands move the status while holding it
        self._control = Control()
        self._thread: threading.Thread | None = None
        self._stops_at_exit = False  # whether the interpreter's exit stops this session's job
        self._snapshot = Snapshot()
        self._watched_at = 0.0  # time.monotonic() of the latest watch()
        self._overview_at, self.overview_count = 0.0, SHOWN  # ... of the latest overview(), and its count

    # --- reading ---

    def snapshot(self) -> Snapshot:
        return self._snapshot  # replaced atomically, never mutated

    def watch(self) -> Snapshot:
        """The snapshot, for a viewer of the live samples: the job keeps them fresh while this is called."""
        self._watched_at = time.monotonic()
        return self._snapshot

    def watched_since(self, moment: float) -> bool:
        return self._watched_at >= moment

    def overview(self, count: int = SHOWN) -> OverviewFrame | None:
        """The overview graph of a recent step (None before one is drawn): while this is called the job redraws it
        after a step at the sample grid's pace, and after every step asked for while paused."""
        self._overview_at, self.overview_count = time.monotonic(), count
        return self._snapshot.overview

    def overview_watched_since(self, moment: float) -> bool:
        return self._overview_at >= moment

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- commands ---

    def start(self, config: Config | None, run_name: str, resume: bool = False, epochs: int | None = None) -> bool:
        """Start a job unless one is active; returns whether this call started it. Raises CheckpointError on a
        bad run name, RunError on a taken one (or a missing one to resume) and ConfigError on settings that would
        not fit in memory, before any thread starts."""
        run = Run.at(run_name, self.root)
        with self._lock:
            if self._snapshot.active:
                return False
            check_startable(run, resume, config)
            self._control = Control()
            self._snapshot = Snapshot(status=Status.STARTING, run_name=run.name, config=config)
            job = Job(self, run, self._control, config, resume, epochs)
            self._thread = threading.Thread(target=job.work, name="gan-trainer", daemon=True)
            self._thread.start()
            if not self._stops_at_exit:  # Ctrl-C or SIGTERM ends the server normally; the daemon thread would die
                atexit.register(self.stop, wait=EXIT_WAIT)  # mid-step: stop it and let it save (paused too)
                self._stops_at_exit = True
            return True

    def pause(self) -> None:
        with self._lock:
            if self._snapshot.status.can_pause and self.move(Status.PAUSED):
                self._control.pause()

    def resume(self) -> None:
        with self._lock:
            if self._snapshot.status.can_resume and self.move(Status.RUNNING, error=None, slow_motion=None):
                self._control.resume()  # a step in slow motion completes at once

    def change(self, field: str, value: Any) -> bool:
        """Ask the running or paused job to change a setting from its next step (at once while paused). Raises
        ConfigError for a setting that cannot change or a bad value; returns whether the request was sent."""
        with self._lock:
            snapshot = self._snapshot
            if snapshot.status not in (Status.RUNNING, Status.PAUSED) or snapshot.config is None:
                return False
            snapshot.config.replace(**{field: value})  # the same checks as at start
            self._control.change(field, value)
            return True

    def step(self, players: Player | str) -> bool:
        """Take one step of `players` while paused; returns whether it was asked for (not while running, nor while
        an earlier step is still under way)."""
        with self._lock:
            if self._snapshot.status != Status.PAUSED or self._control.pending_steps:
                return False
            self._control.step(players)
            return True

    def substep(self) -> bool:
        """While paused, take the next sub-step of a step in slow motion (shown as `snapshot().slow_motion`); returns
        whether it was asked for. After the last sub-step the step is recorded like a step of both players."""
        with self._lock:
            control = self._control
            if self._snapshot.status != Status.PAUSED or control.pending_steps or control.pending_substeps:
                return False
            control.substep()
            return True

    def stop(self, wait: float | None = None) -> None:
        with self._lock:
            if self.move(Status.STOPPING):
                self._control.stop()
            thread = self._thread
        if wait and thread is not None:
            thread.join(wait)

    # --- changes, by commands and by the job's thread ---

    def move(self, status: Status, expected: Status | None = None, **changes: Any) -> bool:
        """Change the status (and other fields) if the table allows it from the current one (and the current one
        is `expected`, when given); returns whether it changed."""
        with self._lock:
            current = self._snapshot.status
            if (expected is not None and current != expected) or not can_move(current, status):
                return False
            self._snapshot = replace(self._snapshot, status=status, **changes)
            return True

    def publish(self, **changes: Any) -> None:
        """Replace fields other than the status. Under the lock, so that the thread's read-modify-write cannot undo
        a command's status (a lost Pause)."""
        assert "status" not in changes, "the status changes only through move()"
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)

    def pause_for(self, control: Control, error: str) -> bool:
        """Pause the job for a reason the user must fix (shown as its error); False if it is stopping anyway."""
        with self._lock:
            if self._control is not control:
                return False
            if self._snapshot.status == Status.PAUSED:  # the user paused while the write was under way
                self.publish(error=error)
            elif not self.move(Status.PAUSED, expected=Status.RUNNING, error=error):
                return False
            control.pause()
            return True
