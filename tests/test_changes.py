"""Settings changed mid-run and single steps of one player: when they apply, what they record, and that a run
with changes, stopped or killed and resumed, equals the uninterrupted run with the same changes, bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from gan.config import ConfigError, parse_value
from gan.control import Control
from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.device import configure_threads
from gan.jobs.runner import prepare_trainer, train_run
from gan.jobs.session import TrainingSession
from gan.lab.stepthrough import measure
from gan.store.history import ChangeRecord, EpochRecord, Player, StepRecord, encode, parse_line, parse_record
from gan.store.run import Run
from gan.train import Trainer
from tests.conftest import assert_same_weights, tiny_config, wait_for
from tests.test_cli import KILLED_AT_FSYNC

REPO = Path(__file__).resolve().parent.parent
# Every changeable field, each changed at a step inside an epoch, and the loss changed twice (to wgan-gp last).
SCHEDULE = ("5:lr_d=0.002", "7:loss=hinge", "10:d_steps=2", "13:ema_decay=0.9", "14:lr_g=0.003", "17:loss=wgan-gp")
EPOCHS, STEPS = 6, 4


@pytest.fixture(scope="module")
def data():
    return load_mnist(DEFAULT_DATA_DIR, "train")


def change_records(run: Run) -> list[tuple]:
    return [(r.step, r.field, r.old, r.new) for r in run.history() if isinstance(r, ChangeRecord)]


def test_a_scheduled_change_applies_from_the_step_after_it(data):
    trainer = Trainer(tiny_config(set_at=("3:lr_d=0.002",), steps_per_epoch=5, epochs=1), data)
    before = trainer.config.lr_d
    assert before != 0.002, "otherwise this test checks nothing"
    rates, changes = {}, []
    trainer.run(on_step=lambda m: rates.update({m.step: trainer.opt_d.param_groups[0]["lr"]}), on_change=changes.append)
    assert rates == {1: before, 2: before, 3: before, 4: 0.002, 5: 0.002}
    assert changes == [ChangeRecord(3, "lr_d", before, 0.002)]
    assert trainer.config.lr_d == 0.002 and trainer.opt_g.param_groups[0]["lr"] == trainer.config.lr_g


def test_a_requested_change_applies_at_the_next_step_and_is_recorded(root):
    run = Run.at("asked", root)
    trainer = prepare_trainer(run, tiny_config(steps_per_epoch=5, epochs=1))
    control, losses = Control(), {}

    def on_step(metrics) -> None:
        losses[metrics.step] = (trainer.config.loss, metrics.d_real)
        if metrics.step == 2:
            control.change("loss", "wgan-gp")

    assert train_run(run, trainer, control, on_step) == "finished"
    assert [losses[step][0] for step in range(1, 6)] == ["bce", "bce", "wgan-gp", "wgan-gp", "wgan-gp"]
    assert losses[2][1] is not None and losses[3][1] is None, "a critic's scores are not beliefs"
    assert trainer.config.discriminator_steps == 5, "wgan-gp brings its own default of D steps"
    assert change_records(run) == [(2, "loss", "bce", "wgan-gp")]


def test_a_bad_change_is_refused_before_it_reaches_the_loop(data):
    """The app's Control, a script's `apply_change` and the CLI's `--set-at` refuse a fixed setting alike."""
    trainer = Trainer(tiny_config(), data)
    reasons = set()
    for refuse, value in ((Control().change, 32), (trainer.apply_change, 32), (parse_value, "32")):
        with pytest.raises(ConfigError, match="not a setting that can change mid-run.*d_steps") as refused:
            refuse("batch_size", value)
        reasons.add(str(refused.value).partition(" is not allowed: ")[2])
    assert len(reasons) == 1 and trainer.config.batch_size == 16
    with pytest.raises(ConfigError, match="lr_g"):
        trainer.apply_change("lr_g", -1.0)


def test_a_changed_run_stopped_and_resumed_equals_the_uninterrupted_run(root, data):
    """A change asked for through the Control (as the app does) lives in the checkpoint: the resumed run continues
    with it although the run's config never mentions it."""
    reference = Trainer(tiny_config(set_at=("6:lr_g=0.002", "6:d_steps=3"), epochs=3, steps_per_epoch=STEPS), data)
    assert reference.run() == "finished"

    run, control = Run.at("changed", root), Control()
    trainer = prepare_trainer(run, tiny_config(epochs=3, steps_per_epoch=STEPS))

    def on_step(metrics) -> None:
        if metrics.step == 6:
            control.change("lr_g", 0.002)
            control.change("d_steps", 3)
        if metrics.step == 7:
            control.stop()  # mid-epoch: the state goes to latest.safetensors

    assert train_run(run, trainer, control, on_step) == "stopped" and trainer.step == 7
    resumed = prepare_trainer(run, resume=True)
    assert resumed.step == 7 and resumed.config.lr_g == 0.002 and resumed.config.discriminator_steps == 3
    assert train_run(run, resumed) == "finished"
    assert_same_weights(reference.state_dict(), run.load_epoch(3))
    assert change_records(run) == [(6, "lr_g", tiny_config().lr_g, 0.002), (6, "d_steps", None, 3)]


TINY = ["--width", "4", "--batch-size", "16", "--latent-dim", "8", "--no-eval"]


def train_process(root: Path, *args: str, kill_at_fsync: int = 0) -> subprocess.CompletedProcess:
    program = ["-c", KILLED_AT_FSYNC] if kill_at_fsync else ["-m", "gan"]
    env = {**os.environ, "KILL_AT_FSYNC": str(kill_at_fsync)}
    command = [sys.executable, *program, "--root", str(root), "train", "--run", "sched", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # three processes of their own, two of them killed
def test_set_at_run_killed_twice_and_resumed_equals_the_uninterrupted_run_bit_for_bit(tmp_path, data):
    """`--set-at` changes every changeable field; the run is SIGKILLed inside its 6th and then 4th write (an epoch
    end: history, epoch file, grid), resumed each time, and its weights and change records equal the run that
    never stopped."""
    configure_threads()  # as the CLI does, so both compute with the same thread count
    config = tiny_config(set_at=SCHEDULE, epochs=EPOCHS, steps_per_epoch=STEPS)
    reference = Trainer(config, data)
    changes: list[ChangeRecord] = []
    assert reference.run(on_change=changes.append) == "finished"
    assert [change.step for change in changes] == [5, 7, 10, 13, 14, 17]

    flags = [*TINY, "--epochs", str(EPOCHS), "--steps-per-epoch", str(STEPS)]
    flags += [argument for text in SCHEDULE for argument in ("--set-at", text)]
    run = Run.at("sched", tmp_path)
    first = train_process(tmp_path, *flags, kill_at_fsync=6)
    assert first.returncode == -signal.SIGKILL, first.stderr
    killed_at = run.epochs()
    second = train_process(tmp_path, "--resume", kill_at_fsync=4)
    assert second.returncode == -signal.SIGKILL, second.stderr
    assert killed_at and run.epochs()[-1] > killed_at[-1], "each life trained at least one epoch"
    assert run.epochs()[-1] < EPOCHS
    last = train_process(tmp_path, "--resume")
    assert last.returncode == 0, last.stderr
    assert run.config() == config
    assert_same_weights(reference.state_dict(), run.load_epoch(EPOCHS))
    assert change_records(run) == [(c.step, c.field, c.old, c.new) for c in changes], "each change recorded once"
    assert [r.step for r in run.history().steps] == list(range(1, EPOCHS * STEPS + 1))


def test_set_at_errors_are_one_line(tmp_path, cli):
    code, _, err = cli("--root", tmp_path, "train", "--run", "sched", *TINY, "--set-at", "10:batch_size=3")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: batch_size='3' is not allowed: not a setting that can change mid-run")
    assert not (tmp_path / "sched").exists()


# --- one player at a time -----------------------------------------------------------------------------------------


def trainer_state(trainer: Trainer) -> dict[str, dict[str, torch.Tensor]]:
    return {
        "G": {k: v.clone() for k, v in [*trainer.G.state_dict().items(), *trainer.G_ema.state_dict().items()]},
        "D": {k: v.clone() for k, v in trainer.D.state_dict().items()},
    }


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("preset", ["dcgan", "cdcgan"])
@pytest.mark.parametrize("players, changed", [(Player.D, "D"), (Player.G, "G")])
def test_a_step_of_one_player_changes_only_that_player(data, preset, players, changed):
    trainer = Trainer(tiny_config(preset), data)
    trainer.run(control=stop_after(trainer, 2))  # trained a little: Adam has state, G has batch statistics
    before = trainer_state(trainer)
    metrics = trainer.train_step(data.images[:16], data.labels[:16], players)
    after = trainer_state(trainer)
    other = "G" if changed == "D" else "D"
    assert same(before[other], after[other]), f"{other} must not change"
    assert not same(before[changed], after[changed]), f"{changed} must change"
    assert metrics.players == players and metrics.step == 3
    assert (metrics.grad_norm_d > 0) == (players == "d") and (metrics.grad_norm_g > 0) == (players == "g")


def stop_after(trainer: Trainer, steps: int) -> Control:
    control = Control()
    original = trainer.train_step

    def counted(*args, **kwargs):
        metrics = original(*args, **kwargs)
        if metrics.step >= steps:
            control.stop()
        return metrics

    trainer.train_step = counted
    return control


def test_steps_requested_while_paused_are_trained_saved_and_resumable(root, data):
    """While paused, a D step, a G step and one of each take the next three batches; resuming trains the rest. The
    whole run equals an uninterrupted one only in its step count and batches (the players differ), and it resumes
    from its own saved state exactly."""
    run, control = Run.at("stepped", root), Control()
    trainer = prepare_trainer(run, tiny_config(epochs=2, steps_per_epoch=STEPS))
    control.pause()
    seen: list[tuple[int, str]] = []
    on_step = lambda m: seen.append((m.step, m.players))  # noqa: E731
    worker = threading.Thread(target=train_run, args=(run, trainer, control, on_step))
    worker.start()
    for players in (Player.D, Player.G, Player.BOTH):
        control.step(players)
    wait_for(lambda: len(seen) == 3)
    assert worker.is_alive() and control.paused and trainer.step == 3
    control.stop()
    worker.join(30)
    assert seen == [(1, "d"), (2, "g"), (3, "dg")]
    assert [r.players for r in run.history().steps] == ["d", "g", "dg"]
    before = measure(trainer)

    resumed = prepare_trainer(run, resume=True)
    assert resumed.position() == trainer.position()
    assert_same_weights(trainer.state_dict(), resumed.state_dict())
    assert measure(resumed) == before, "measuring changes nothing, and the state came back whole"
    assert train_run(run, resumed) == "finished"
    assert [r.step for r in run.history().steps] == list(range(1, 2 * STEPS + 1))


def test_a_measurement_leaves_the_trainer_as_it_was(data):
    trainer = Trainer(tiny_config("cdcgan"), data)
    state, rng = trainer_state(trainer), trainer.noise.get_state()
    first = measure(trainer)
    assert same(state["G"], trainer_state(trainer)["G"]) and torch.equal(rng, trainer.noise.get_state())
    assert len(first.d_real) == len(first.d_fake) == 100 and all(0 <= value <= 1 for value in first.d_real)
    assert first.grid_png[:4] == b"\x89PNG" and measure(trainer) == first


# --- through the app's session ----------------------------------------------------------------------------------


def test_the_session_changes_settings_and_steps_one_player_while_paused(root):
    session = TrainingSession()
    assert session.start(tiny_config(epochs=1, steps_per_epoch=1_000_000), "live")
    wait_for(lambda: session.snapshot().step > 0)
    assert session.step("d") is False, "single steps only while paused"
    session.pause()
    assert session.change("lr_d", 0.002)
    with pytest.raises(ConfigError, match="lr_g"):
        session.change("lr_g", 5.0)
    wait_for(lambda: session.snapshot().changes)
    snapshot = session.snapshot()
    assert snapshot.config.lr_d == 0.002 and snapshot.status == "paused"
    assert snapshot.changes[0].field == "lr_d" and snapshot.changes[0].step == snapshot.step

    for players in ("d", "g"):
        step = session.snapshot().step
        assert session.step(players)
        wait_for(lambda: session.snapshot().step == step + 1)  # noqa: B023
        shown = session.snapshot().step_through
        assert shown.players == players and (shown.before.step, shown.after.step) == (step, step + 1)
        # the grid is drawn by G: a D step leaves it as it was, a G step changes it; D's outputs change either way
        assert (shown.before.grid_png == shown.after.grid_png) == (players == "d")
        assert shown.before.d_fake != shown.after.d_fake
    assert session.snapshot().status == "paused"
    session.stop(wait=30)
    records = Run.at("live", root).history()
    assert [r.players for r in records.steps][-2:] == ["d", "g"]


def test_history_keeps_the_players_the_critic_estimate_and_the_spread():
    step = StepRecord(3, 0, 3, 1.0, -0.5, None, None, 0.0, 2.0, 100.0, 1.5, wasserstein=0.7, players="g")
    epoch = EpochRecord(1, 3, 1.5, None, spread=0.08)
    change = ChangeRecord(3, "loss", "bce", "wgan-gp")
    for record in (step, epoch, change):
        assert parse_line(encode([record]).encode()) == record
    assert parse_line(encode([step]).replace('"g"', '"x"').encode()) is None, "players are d, g or dg"
    old = {key: value for key, value in step.to_dict().items() if key not in ("wasserstein", "players")}
    assert parse_record({**old, "d_real": 0.5, "d_fake": 0.4}).players == "dg", "older lines read as full steps"
