"""The app's background job: its status table, commands from any thread, the cost of being watched, failures."""

from __future__ import annotations

import dataclasses
import math
import os
import random
import threading
import time
from collections import deque

import pytest

import gan.jobs.job
import gan.jobs.session
from gan.jobs.session import TrainingSession
from gan.jobs.snapshot import HISTORY_POINTS, TRANSITIONS, Snapshot, Status, ThinnedHistory
from gan.store.history import StepRecord
from gan.store.run import Run
from gan.train import Trainer
from tests.conftest import assert_loadable, steps_logged, tiny_config, wait_for
from tests.test_train import ParkedControl

LONG = {"epochs": 1000}  # a job that outlasts the test; the test stops it


@pytest.fixture
def sessions():
    """Sessions made by a test, stopped at its end whatever happened."""
    made: list[TrainingSession] = []

    def make(**options) -> TrainingSession:
        made.append(TrainingSession(**options))
        return made[-1]

    yield make
    for session in made:
        session.stop(wait=30)


# --- the status table ---


def test_every_status_has_its_row_and_ended_jobs_only_start_again():
    assert set(TRANSITIONS) == set(Status)
    for ended in (Status.FINISHED, Status.STOPPED, Status.FAILED):
        assert TRANSITIONS[ended] == {Status.STARTING} and not ended.active
    active = (Status.STARTING, Status.RUNNING, Status.PAUSED, Status.STOPPING)
    assert tuple(status for status in Status if status.active) == active


def reached(status: Status) -> TrainingSession:
    """A session without a job, moved to `status` along the table's own moves (the shortest way from idle)."""
    ways, queue = {Status.IDLE: ()}, deque([Status.IDLE])
    while queue:
        current = queue.popleft()
        for following in TRANSITIONS[current]:
            if following not in ways:
                ways[following] = (*ways[current], following)
                queue.append(following)
    session = TrainingSession()
    for step in ways[status]:
        assert session.move(step)
    return session


@pytest.mark.parametrize("status", list(Status))
def test_a_command_is_offered_exactly_where_it_would_do_something(status):
    """The page offers Pause, Resume and Stop by the status's `can_*`: each must change the status there, and
    nothing elsewhere (a Pause while stopping, a second Stop)."""
    for command, offered in (("pause", status.can_pause), ("resume", status.can_resume), ("stop", status.can_stop)):
        session = reached(status)
        getattr(session, command)()
        assert (session.snapshot().status != status) == offered, f"{command} while {status.value}"


def test_commands_that_do_not_apply_change_nothing(sessions):
    session = sessions()
    session.pause()
    session.resume()
    session.stop()
    assert session.snapshot() == Snapshot(started=session.snapshot().started)


@pytest.mark.parametrize(
    "epochs_done, active, shown", [(0, True, 1), (2, True, 3), (5, False, 5), (5, True, 5), (0, False, 1)]
)
def test_the_epoch_shown_is_the_one_in_progress_or_the_last_done(epochs_done, active, shown):
    status = Status.RUNNING if active else Status.STOPPED
    snapshot = Snapshot(status=status, config=tiny_config(epochs=5), epochs_done=epochs_done)
    assert snapshot.current_epoch == shown


def test_progress_and_time_left_come_from_the_steps_and_the_rate():
    snapshot = Snapshot(config=tiny_config(batch_size=10), step=25, total_steps=100, images_per_sec=50.0)
    assert snapshot.progress == 0.25 and math.isclose(snapshot.eta_seconds, 75 * 10 / 50)
    assert Snapshot(step=0, total_steps=100).eta_seconds is None


# --- a job's life ---


def test_a_job_runs_to_the_end_and_publishes_its_epochs(root, sessions):
    session = sessions()
    assert session.start(tiny_config(), "whole")
    wait_for(lambda: not session.snapshot().active)
    snapshot = session.snapshot()
    assert snapshot.status == Status.FINISHED and snapshot.error is None
    assert snapshot.epochs_done == 2 and snapshot.step == 6 and snapshot.saved_epochs == (1, 2)
    assert [record.epoch for record in snapshot.epoch_records] == [1, 2]
    assert snapshot.samples_png.startswith(b"\x89PNG")


def test_the_job_redraws_its_samples_only_while_someone_watches(root, monkeypatch, sessions):
    drawn: list[int] = []
    monkeypatch.setattr(gan.jobs.job, "grid_png", lambda images: drawn.append(1) or b"png")
    session = sessions(grid_interval=0.0, publish_interval=0.0)  # a grid is due at every step, if watched
    assert session.start(tiny_config(steps_per_epoch=1_000_000, epochs=1), "watched")
    wait_for(lambda: session.snapshot().step >= 30)  # snapshot() is not watching
    assert len(drawn) == 1, "nobody watching: no grid after the first"
    for watched in range(1, 4):  # each watch() earns one fresh grid
        session.watch()
        wait_for(lambda watched=watched: len(drawn) == 1 + watched)
    assert session.snapshot().status == Status.RUNNING


def test_a_paused_job_shows_the_graph_of_the_step_it_stopped_at(root, sessions):
    """Nobody looked at the graph before either pause: each pause still draws it, of the step the counter shows."""
    session = sessions()
    assert session.start(tiny_config(steps_per_epoch=1_000_000, epochs=1), "paused-graph")
    for at_least in (3, 12):
        wait_for(lambda at_least=at_least: session.snapshot().step >= at_least)
        session.pause()
        wait_for(lambda at_least=at_least: (frame := session.snapshot().overview) and frame.step >= at_least)
        snapshot = session.snapshot()
        assert snapshot.status == Status.PAUSED and snapshot.overview.step == snapshot.step
        session.resume()


def test_a_bug_in_the_thread_fails_the_job_and_the_next_start_works(root, monkeypatch, sessions):
    def broken_step(self, real, labels):
        raise KeyError("a bug")

    session = sessions()
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", broken_step)
        assert session.start(tiny_config(), "buggy")
        wait_for(lambda: not session.is_alive())
    snapshot = session.snapshot()
    assert snapshot.status == Status.FAILED and snapshot.error == "KeyError: 'a bug'" and "\n" not in snapshot.error
    assert session.start(tiny_config(), "next")
    wait_for(lambda: session.snapshot().status == Status.FINISHED)


def test_a_run_that_cannot_start_fails_with_the_reason(root, sessions):
    run = Run.at("unreadable")
    run.path.mkdir(parents=True)
    (run.path / "config.json").write_text("{not json")
    session = sessions()
    assert session.start(None, "unreadable", resume=True)
    wait_for(lambda: not session.snapshot().active)
    assert session.snapshot().status == Status.FAILED and "config.json" in session.snapshot().error


def test_non_finite_loss_fails_the_job_and_says_what_was_kept(root, poisoned, sessions):
    poisoned(math.nan)
    session = sessions()
    assert session.start(tiny_config(epochs=3), "diverged")
    wait_for(lambda: not session.snapshot().active)
    snapshot = session.snapshot()
    assert snapshot.status == Status.FAILED
    assert "D loss became nan at step 4" in snapshot.error and "Kept: epochs up to 1." in snapshot.error
    assert Run.at("diverged").epochs() == [1]
    assert_loadable(Run.at("diverged"))


def test_a_failed_save_pauses_the_job_and_resume_retries_it(root, disk_full, sessions):
    epoch_file = "epoch-0002.safetensors"
    disk_full[epoch_file] = 2
    run, session = Run.at("full"), sessions()
    assert session.start(tiny_config(epochs=3), "full")
    for left in (1, 0):  # it fails twice: Resume retries, fails again and pauses again
        wait_for(lambda left=left: session.snapshot().status == Status.PAUSED and disk_full[epoch_file] == left)
        snapshot = session.snapshot()
        assert "could not save" in snapshot.error and "No space left on device" in snapshot.error
        assert run.epochs() == [1] and not list(run.path.glob(".*.tmp"))
        assert_loadable(run)
        session.resume()
    wait_for(lambda: not session.snapshot().active)
    assert session.snapshot().status == Status.FINISHED and session.snapshot().error is None
    assert run.epochs() == [1, 2, 3] and session.snapshot().saved_epochs == (1, 2, 3)
    assert steps_logged(run) == list(range(1, 10))
    assert [record.epoch for record in run.history().epochs] == [1, 2, 3]


def test_stop_during_a_failed_save_ends_the_job_and_keeps_the_saved_epochs(root, disk_full, sessions):
    disk_full["epoch-0002.safetensors"] = 1
    session = sessions()
    assert session.start(tiny_config(epochs=3), "stuck")
    wait_for(lambda: session.snapshot().status == Status.PAUSED)
    session.stop(wait=30)
    assert not session.is_alive() and session.snapshot().status == Status.FAILED
    assert Run.at("stuck").epochs() == [1]


# --- commands from many threads ---


def test_rapid_starts_from_two_threads_start_exactly_one_job(root, sessions):
    session, barrier, started = sessions(), threading.Barrier(2), []

    def press_start(thread: int) -> None:
        barrier.wait()
        started.extend(session.start(tiny_config(**LONG), f"race-{thread}-{i}") for i in range(5))

    threads = [threading.Thread(target=press_start, args=(thread,)) for thread in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: session.snapshot().status == Status.RUNNING)
    session.stop(wait=30)
    assert len(started) == 10 and started.count(True) == 1
    assert [path.name for path in root.iterdir()] == [session.snapshot().run_name]
    assert not session.is_alive()


@pytest.mark.parametrize("stop", [False, True], ids=["finished", "stopped"])
def test_continue_pressed_the_moment_a_job_ends_finds_the_run_free(root, monkeypatch, sessions, stop):
    session, locked_when_ended = sessions(), []
    move = session.move

    def watching_move(status, expected=None, **changes):
        if status in (Status.FINISHED, Status.STOPPED):
            locked_when_ended.append(Run.at("quick", str(root)).holds_lock())
        return move(status, expected, **changes)

    monkeypatch.setattr(session, "move", watching_move)
    assert session.start(tiny_config(**(LONG if stop else {})), "quick")
    if stop:
        wait_for(lambda: session.snapshot().status == Status.RUNNING)
        session.stop()
    wait_for(lambda: not session.snapshot().active)
    assert locked_when_ended == [False]
    assert session.start(None, "quick", resume=True, epochs=1000)
    wait_for(lambda: session.snapshot().status != Status.STARTING)
    session.stop(wait=30)
    assert session.snapshot().status == Status.STOPPED, session.snapshot().error


@pytest.mark.slow
def test_random_pause_resume_stop_and_continue_from_two_threads_never_deadlock(root, sessions):
    session, errors = sessions(publish_interval=0.0), []
    assert session.start(tiny_config(epochs=200), "storm")
    actions = {
        "pause": session.pause,
        "resume": session.resume,
        "stop": session.stop,
        "continue": lambda: session.start(None, "storm", resume=True),
    }

    seed = int(os.environ.get("GAN_TEST_SEED") or random.randrange(2**32))
    print(f"the buttons are pressed in an order drawn from seed {seed}: GAN_TEST_SEED={seed} replays it")

    def press_buttons(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(100):
                actions[rng.choices(list(actions), weights=(4, 4, 1, 2))[0]]()
                time.sleep(rng.uniform(0.0, 0.03))
        except Exception as error:  # any error fails the test below
            errors.append(error)

    threads = [threading.Thread(target=press_buttons, args=(seed + thread,)) for thread in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads) and not errors
    session.stop(wait=30)
    assert not session.is_alive() and session.snapshot().status in (Status.STOPPED, Status.FINISHED)
    assert_loadable(Run.at("storm"))


def test_a_pause_is_never_undone_by_the_trainer_publishing_a_step(root, monkeypatch, sessions):
    def slow_replace(snapshot, **changes):  # widen the trainer's read-modify-write of the snapshot
        time.sleep(0.003)
        return dataclasses.replace(snapshot, **changes)

    controls: list[ParkedControl] = []
    monkeypatch.setattr(gan.jobs.session, "replace", slow_replace)
    monkeypatch.setattr(gan.jobs.session, "Control", lambda: controls.append(ParkedControl()) or controls[-1])
    session = sessions(publish_interval=0.0)
    assert session.start(tiny_config(**LONG), "pausing")
    wait_for(lambda: session.snapshot().status == Status.RUNNING)
    control = controls[-1]
    for _ in range(15):
        parked = control.parked
        session.pause()
        wait_for(lambda: control.parked > parked)  # noqa: B023 - the step under way when paused is published
        assert session.snapshot().status == Status.PAUSED
        step = session.snapshot().step
        session.resume()
        wait_for(lambda: session.snapshot().step > step)  # noqa: B023 - running and publishing again
    session.stop(wait=30)
    assert not session.is_alive()


def test_thinned_history_stays_bounded_and_spans_the_whole_run_evenly():
    history = ThinnedHistory()
    for step in range(1, 100_001):
        history.add(StepRecord(step, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    steps = [record.step for record in history.records]
    gaps = {later - earlier for earlier, later in zip(steps, steps[1:])}
    assert HISTORY_POINTS // 2 <= len(steps) <= HISTORY_POINTS
    assert len(gaps) == 1, "evenly spaced"
    assert steps[0] <= gaps.pop() and 100_000 - steps[-1] < history.stride, "from the start to the latest step"


def test_a_poisoned_history_then_continue_then_a_new_start_both_work(root, good, sessions):
    with open(good.path / "history.jsonl", "a") as handle:
        handle.write('{"kind": "step"}\n')
    session = sessions(root=str(root))
    assert session.start(None, "good", resume=True, epochs=3)
    session._thread.join(120)
    assert session.snapshot().status == "finished", session.snapshot().error
    assert session.start(tiny_config(epochs=1), "fresh")
    session._thread.join(120)
    assert session.snapshot().status == "finished"


def test_the_app_job_refuses_a_run_the_cli_holds(root, good, sessions):
    session = sessions(root=str(root))
    with good.lock():
        assert session.start(None, "good", resume=True, epochs=3)
        session._thread.join(60)
    assert session.snapshot().status == "failed" and "being trained" in session.snapshot().error
