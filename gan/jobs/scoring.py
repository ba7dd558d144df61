"""Scoring a run's epochs beside its training, so that a score never stops the training loop.

At an epoch's end the trainer's EMA generator is copied (its state_dict, a few hundred kB) and the copy is scored
on a worker thread while training goes on: a score always belongs to the epoch whose weights it names, and equals
what scoring those weights inline would give (the same samples, judges and threads).

Scoring 2,000 samples on both judges costs a few CPU-seconds, as much as a short epoch of the quick start, and on
a small CPU the worker takes those seconds from training (both use every core). So epochs are scored on a budget:
the last epoch is always scored, and another when the worker is idle and scoring, counting this epoch's score and
the last one's ahead (each as long as the scores so far took on average), stays within `SCORING_SHARE` of the wall
time since training began. Long epochs (the presets' full ones) are all scored; of the quick start's short ones,
the first and the last. An epoch left unscored is saved unscored, as with scoring off, and
`python -m gan eval` scores it later.

Epoch records come back in epoch order, each once its scores are in, with the wall seconds its score took
(`score_seconds`); the caller writes them to the run's history.

The worker thread ends as soon as it has nothing to score, and a new one starts for the next score. A thread that
has run PyTorch's parallel operations and stays alive, even blocked, slows the training thread's own by about 8%
on a 2-core CPU (the quick start's 200-step epoch: 5.6 s against 5.2 s), for as long as it lives.
"""

from __future__ import annotations

import atexit
import copy
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from gan.store.history import EpochRecord

SCORING_SHARE = 0.10  # of the wall time since training began, at most, spent scoring (the first epoch excepted)
EXIT_WAIT = 60.0  # seconds the interpreter's exit waits for a score under way
_workers: weakref.WeakSet[threading.Thread] = weakref.WeakSet()  # scoring threads that may still be running


@atexit.register
def _join_workers() -> None:
    """A daemon thread stopped by the interpreter's exit inside PyTorch aborts the process ("terminate called
    without an active exception", exit code 134): the exit lets a score under way end first."""
    for thread in list(_workers):
        thread.join(EXIT_WAIT)


class ScoringFailed(RuntimeError):
    """Scoring an epoch raised an error; raised again on the training thread, as scoring inline would."""


@dataclass
class _Slot:
    """An epoch waiting for its record to be handed back: scored (`weights` given) or not."""

    record: EpochRecord
    weights: dict[str, torch.Tensor] | None
    done: bool = False


class EpochScorer:
    """Scores epochs on a worker thread from copies of the EMA generator taken at each epoch's end.

    `submit` is called on the training thread at each epoch's end; `ready` hands back, without waiting, the epoch
    records whose turn has come (in epoch order); `finish` waits for all of them. `score(G)` is the scoring function
    (gan.scoring.metrics.score_generator), None for a run that is not scored; `clock` a monotonic clock in seconds."""

    def __init__(
        self,
        G_ema: nn.Module,
        score: Callable[[nn.Module], Any] | None,
        share: float = SCORING_SHARE,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.G_ema, self.score, self.share, self.clock = G_ema, score, share, clock
        self.model: nn.Module | None = None  # the worker's own copy of G_ema, made at the first score
        self.started = clock()
        self.spent = 0.0  # wall seconds of finished scores
        self.scores = 0  # how many scores finished
        self.scoring_since: float | None = None  # when the score in progress began
        self.slots: deque[_Slot] = deque()  # submitted, not yet handed back, in epoch order
        self.failure: BaseException | None = None  # what a score raised; no epoch is scored after it
        self.failure_raised = False
        self.changed = threading.Condition()
        self.thread: threading.Thread | None = None  # the latest worker
        self.working = False  # a worker has epochs to score (set when one starts, cleared when it finds none left)

    # --- the training thread's side ---

    def due(self, last: bool = False) -> bool:
        """Whether an epoch ending now is scored: the last always; another when the worker has nothing to do and
        the scores so far, this one and the last one's ahead take at most `share` of the wall time since training
        began (a score is expected to take as long as the finished ones on average; the first is free)."""
        with self.changed:
            if self.score is None or self.failure is not None:
                return False
            expected = self.spent / self.scores if self.scores else 0.0
            within = self.spent + 2 * expected <= self.share * (self.clock() - self.started)
            return last or (self.idle and within)

    @property
    def idle(self) -> bool:
        """No epoch is being scored or waiting to be."""
        with self.changed:
            return all(slot.done for slot in self.slots)

    def submit(self, record: EpochRecord, last: bool = False) -> bool:
        """Queue an epoch's record; if it is due, with a copy of G_ema's weights as they are now, to score. Returns
        whether it will be scored."""
        scored = self.due(last)
        weights = {name: value.detach().clone() for name, value in self.G_ema.state_dict().items()} if scored else None
        with self.changed:
            self.slots.append(_Slot(record, weights, done=weights is None))
            if scored and not self.working:
                self._start_worker()
        return scored

    def ready(self) -> list[EpochRecord]:
        """The records whose turn has come: the oldest ones, as long as each is scored or left unscored. Raises
        ScoringFailed, once, if a score failed."""
        self.raise_failure()
        return self._take_done()

    def raise_failure(self) -> None:
        """Raise ScoringFailed if a score failed and that was not raised yet."""
        with self.changed:
            if self.failure is not None and not self.failure_raised:
                self.failure_raised = True
                error = self.failure
                raise ScoringFailed(f"scoring an epoch failed: {type(error).__name__}: {error}") from error

    def _take_done(self) -> list[EpochRecord]:
        with self.changed:
            out = []
            while self.slots and self.slots[0].done:
                out.append(self.slots.popleft().record)
            return out

    def finish(self, timeout: float | None = None) -> list[EpochRecord]:
        """Wait until every submitted epoch is scored (at most `timeout` seconds), stop the worker and return the
        remaining records; those still unscored after a timeout (or a failed score) come back without scores. A
        failure is not raised here: see `raise_failure`."""
        deadline = None if timeout is None else self.clock() + timeout
        with self.changed:
            while not all(slot.done for slot in self.slots) and self.failure is None:
                left = None if deadline is None else deadline - self.clock()
                if left is not None and left <= 0:
                    break
                self.changed.wait(left)
            for slot in self.slots:
                slot.done, slot.weights = True, None
        if self.thread is not None:  # ended within the time left (at once, unless a score is still under way)
            self.thread.join(None if deadline is None else max(0.0, deadline - self.clock()))
        return self._take_done()

    def _start_worker(self) -> None:
        """Start a worker for the epochs waiting (called holding the lock, when no worker is working)."""
        self.working = True
        if self.model is None:
            self.model = copy.deepcopy(self.G_ema).eval().requires_grad_(False)
        self.thread = threading.Thread(target=self._work, name="gan-scorer", daemon=True)
        _workers.add(self.thread)
        self.thread.start()

    # --- the worker thread ---

    def _next(self) -> tuple[_Slot, dict[str, torch.Tensor]] | None:
        """The oldest epoch waiting to be scored and its weights; None when there is none (the worker ends)."""
        with self.changed:
            waiting = [slot for slot in self.slots if not slot.done]
            if not waiting:
                self.working = False  # a later epoch due for scoring starts a new worker
                return None
            self.scoring_since = self.clock()
            return waiting[0], waiting[0].weights

    def _work(self) -> None:
        while (job := self._next()) is not None:
            slot, weights = job
            try:
                self.model.load_state_dict(weights)
                scores = self.score(self.model)
            except BaseException as error:  # raised on the training thread; the epochs left go unscored
                with self.changed:
                    self.failure, self.scoring_since, self.working = error, None, False
                    for left in self.slots:
                        left.done, left.weights = True, None
                    self.changed.notify_all()
                return
            with self.changed:
                took = self.clock() - self.scoring_since
                if not slot.done:
                    slot.record = replace(slot.record, scores=scores, score_seconds=took)
                    slot.done, slot.weights = True, None
                self.spent += took
                self.scores += 1
                self.scoring_since = None
                self.changed.notify_all()
