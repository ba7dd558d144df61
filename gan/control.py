"""Thread-safe requests to a running training loop: stop, pause and resume, settings to change mid-run, and
single steps of one player while paused. A UI or a signal handler writes them; `Trainer.run` reads them before
every step, so a request takes effect within one step. Also how the loop ends (`Outcome`) and what it does next
(`NextStep`): a step, or an end."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gan.config import check_changeable
from gan.store.history import Player


class Outcome(StrEnum):
    """How a training loop ended."""

    FINISHED = "finished"  # every configured epoch is done
    STOPPED = "stopped"  # a stop was requested
    TIME_BUDGET = "time_budget"  # the training seconds allowed are spent


@dataclass(frozen=True)
class NextStep:
    """The step the loop takes next: its players, and whether it was asked for through `Control.step`."""

    players: Player
    requested: bool
    slow: bool = False  # taken in slow motion, one sub-step per `Control.substep` (see gan.lab.slowmotion)


class Control:
    """Thread-safe requests, sent by a UI or a signal handler, read by the loop before each step: stop, pause and
    resume, settings to change, and single steps of one player (taken even while paused)."""

    def __init__(self, on_park: Callable[[], None] | None = None) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._work = threading.Condition()
        self._changes: deque[tuple[str, Any]] = deque()
        self._steps: deque[Player] = deque()
        self._substeps = 0  # sub-steps of a step in slow motion asked for and not yet taken
        self.on_park = on_park  # called on the loop's thread each time it is about to wait while paused

    def _wake(self) -> None:
        with self._work:
            self._work.notify_all()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so that it can see the stop
        self._wake()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()
        self._wake()

    def change(self, field: str, value: Any) -> None:
        """Ask for a setting to change before the next step (applied at once if paused); checked by the caller."""
        check_changeable(field, value)
        with self._work:
            self._changes.append((field, value))
            self._work.notify_all()

    def step(self, players: Player | str) -> None:
        """Ask for one step of `players` on the next batch; meant for a paused loop."""
        if players not in tuple(Player):
            raise ValueError(f"players={players!r} is not allowed: one of {', '.join(Player)}")
        with self._work:
            self._steps.append(Player(players))
            self._work.notify_all()

    def substep(self) -> None:
        """Ask a paused loop for the next sub-step of a step in slow motion; the first starts the step."""
        with self._work:
            self._substeps += 1
            self._work.notify_all()

    def take_substep(self) -> bool:
        with self._work:
            if not self._substeps:
                return False
            self._substeps -= 1
            return True

    @property
    def pending_substeps(self) -> int:
        with self._work:
            return self._substeps

    def wait_for_substep(self) -> bool:
        """Within a step in slow motion: block until its next sub-step is asked for (True), or a resume or a stop
        wants the step completed at once (False; sub-steps still asked for are dropped)."""
        with self._work:
            self._work.wait_for(lambda: self._running.is_set() or self._substeps > 0)
            if self._running.is_set():
                self._substeps = 0
                return False
            self._substeps -= 1
            return True

    def take_changes(self) -> list[tuple[str, Any]]:
        with self._work:
            changes = list(self._changes)
            self._changes.clear()
            return changes

    def take_step(self) -> Player | None:
        with self._work:
            return self._steps.popleft() if self._steps else None

    @property
    def pending_steps(self) -> int:
        with self._work:
            return len(self._steps)

    def _has_work(self) -> bool:  # called holding self._work
        return self._running.is_set() or bool(self._changes) or bool(self._steps) or self._substeps > 0

    def wait_for_work(self) -> None:
        """Block while paused with nothing to do: return on resume, stop, a change, a step or sub-step request.
        Before blocking, `on_park` is called outside the lock (it may publish what the paused loop shows, and a
        command sent meanwhile is not lost: it wakes the wait that follows)."""
        with self._work:
            parking = not self._has_work()
        if parking and self.on_park is not None:
            self.on_park()
        with self._work:
            self._work.wait_for(self._has_work)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> None:
        self._running.wait()
