import shutil
import threading

import pytest
import torch

from gan.control import Control
from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.jobs.runner import prepare_trainer, train_run
from gan.jobs.session import TrainingSession
from gan.lab.overview import NODE_HELP, next_batch, overview_frame, twin
from gan.lab.slowmotion import SUBSTEP_TEXT, SlowMotion, SubStepView, slow_step
from gan.store.checkpoints import load_state
from gan.store.history import Player
from gan.store.run import Run
from gan.substeps import SubStep
from gan.train import Trainer
from tests.conftest import WAIT, assert_same_weights, tiny_config, wait_for

TIMING = ("images_per_sec", "seconds")  # a step's wall-clock figures: never equal between two runs


@pytest.fixture(scope="module")
def data():
    return load_mnist(DEFAULT_DATA_DIR, "train")


def trained_a_little(data, **settings) -> Trainer:
    trainer = Trainer(tiny_config(**settings), data)
    trainer.train_step(*next_batch(trainer))
    return trainer


def assert_same_state(first: Trainer, second: Trainer) -> None:
    one, other = first.state_dict(), second.state_dict()
    for part in ("G", "G_ema", "D"):
        assert all(torch.equal(value, other[part][key]) for key, value in one[part].items()), part
    for part in ("opt_g", "opt_d"):
        for key, moments in one[part]["state"].items():
            assert all(torch.equal(value, other[part]["state"][key][name]) for name, value in moments.items()), part
    assert torch.equal(first.noise.get_state(), second.noise.get_state())
    assert first.position() | {"seconds": 0} == second.position() | {"seconds": 0}


def same_record(one, other) -> bool:
    return {**vars(one), **dict.fromkeys(TIMING)} == {**vars(other), **dict.fromkeys(TIMING)}


def walk(motion: SlowMotion) -> list:
    views = []
    while not motion.done:
        views.append(motion.next())
    return views


@pytest.mark.parametrize("settings", [{}, {"augment": "translate", "r1_gamma": 1.0}], ids=["plain", "augmented+r1"])
def test_the_ten_sub_steps_take_the_same_step_as_the_trainer(data, settings):
    trainer = trained_a_little(data, **settings)
    reference = twin(trainer)
    motion = SlowMotion(trainer)
    views = walk(motion)
    expected = reference.train_step(*next_batch(reference))
    assert [view.substep for view in views] == list(SubStep)
    assert same_record(motion.finish(), expected) and motion.finish().step == 2
    assert_same_state(trainer, reference)
    assert_same_state(twin(trainer), reference)  # and it keeps training alike
    assert same_record(trainer.train_step(*next_batch(trainer)), reference.train_step(*next_batch(reference)))


def test_with_two_d_steps_d_takes_its_five_sub_steps_twice(data):
    trainer = trained_a_little(data, d_steps=2)
    views = walk(SlowMotion(trainer))
    assert [(view.substep.value, view.repeat) for view in views] == [
        *((f"D{number}", 0) for number in range(1, 6)),
        *((f"D{number}", 1) for number in range(1, 6)),
        *((f"G{number}", 0) for number in range(1, 6)),
    ]
    assert [view.index for view in views] == list(range(1, 16)) and views[0].total == 15
    assert views[5].label == "D1 (2/2)" and views[-1].label == "G5"
    assert [view.step for view in views] == [1] * 14 + [2]


def test_each_sub_step_shows_its_own_values_and_lights_its_nodes(data):
    trainer = trained_a_little(data)
    views = {view.substep: view for view in walk(SlowMotion(trainer))}
    record = trainer.shown.record
    assert views[SubStep.D2].values == {"d_real": record.d_real, "d_fake": record.d_fake}
    assert views[SubStep.D3].values["loss_d"] == record.loss_d == views[SubStep.D3].frame.loss_d
    assert views[SubStep.D4].values["grad_norm_d"] == record.grad_norm_d
    assert views[SubStep.G3].values["loss_g"] == record.loss_g
    assert views[SubStep.G4].values["grad_norm_g"] == record.grad_norm_g == views[SubStep.G5].frame.grad_norm_g
    # D's scores after its update are measured on the D that G's step then meets (no augmentation: same fakes)
    assert views[SubStep.D5].values["d_fake_after"] == views[SubStep.G2].values["d_fake"]
    assert views[SubStep.D5].values["d_real_before"] == record.d_real
    for substep, view in views.items():
        assert (view.title, view.text) == SUBSTEP_TEXT[substep] and set(view.highlight) <= set(NODE_HELP)
        assert view.frame.step == 2 and view.frame.fakes.shape == (8, 1, 28, 28)
    assert views[SubStep.G5].frame.loss_d == record.loss_d


def test_d5_and_g5_show_before_and_after_their_update(data):
    trainer = trained_a_little(data, preset="dcgan")
    views = {view.substep: view for view in walk(SlowMotion(trainer))}
    before, after = views[SubStep.D5].before_after
    assert before.shape == after.shape == (2, 8) and not torch.equal(before, after)
    assert tuple(before[0].tolist()) == views[SubStep.D2].frame.d_real
    samples_before, samples_after = views[SubStep.G5].before_after
    assert samples_before.shape == samples_after.shape == (8, 1, 28, 28)
    assert torch.equal(samples_before, views[SubStep.G1].frame.fakes)
    assert views[SubStep.G5].values["pixels_changed"] > 0 and not torch.equal(samples_before, samples_after)


def test_finishing_half_way_completes_the_same_step(data):
    trainer = trained_a_little(data, preset="classic", g_norm="batch")  # batch norm: G's statistics must not move
    reference = twin(trainer)
    motion = SlowMotion(trainer)
    for _ in range(3):
        motion.next()
    record = motion.finish()
    assert same_record(record, reference.train_step(*next_batch(reference)))
    assert_same_state(trainer, reference)
    with pytest.raises(RuntimeError, match="complete"):
        motion.next()


def test_a_critic_shows_its_scores_in_slow_motion(data):
    trainer = trained_a_little(data, loss="wgan-gp", d_steps=1)
    views = walk(SlowMotion(trainer))
    assert all(view.frame.critic for view in views) and len(views) == 10
    scored = views[1].values  # D2: mean critic scores, whose difference is the recorded Wasserstein estimate
    assert scored["d_real"] - scored["d_fake"] == pytest.approx(trainer.shown.record.wasserstein, abs=1e-6)


def test_g5_shows_the_step_as_the_live_graph_then_does(data):
    trainer = trained_a_little(data)
    last = walk(SlowMotion(trainer))[-1]
    live = overview_frame(trainer)
    for name in ("step", "loss_d", "loss_g", "grad_norm_d", "grad_norm_g", "d_real", "d_fake", "digits"):
        assert getattr(last.frame, name) == getattr(live, name), name
    assert torch.equal(last.frame.fakes, live.fakes) and torch.equal(last.frame.push, live.push)


# --- in the training loop and the app's job ---------------------------------------------------------------------


def saved_run(root, name: str, steps: int) -> Run:
    """A run of three epochs of three steps, stopped after `steps` steps (its state saved)."""
    run, control = Run.at(name, root), Control()
    trainer = prepare_trainer(run, tiny_config(epochs=3, steps_per_epoch=3))
    control.pause()
    for _ in range(steps):
        control.step(Player.BOTH)
    worker = threading.Thread(target=train_run, args=(run, trainer, control))
    worker.start()
    wait_for(lambda: trainer.step == steps)
    control.stop()
    worker.join(WAIT)
    return run


def one_step(run: Run, slow: bool) -> list[SubStepView]:
    """Resume the run paused and take one step of both players, in slow motion (a sub-step per request) or not."""
    trainer, control, views = prepare_trainer(run, resume=True), Control(), []
    start = trainer.step
    control.pause()

    def slow_motion(real, labels):
        return slow_step(trainer, real, labels, views.append, control.wait_for_substep)

    worker = threading.Thread(target=train_run, args=(run, trainer, control), kwargs={"slow_step": slow_motion})
    worker.start()
    if slow:
        for taken in range(1, 11):
            control.substep()
            wait_for(lambda: len(views) == taken)  # noqa: B023
    else:
        control.step(Player.BOTH)
    wait_for(lambda: trainer.step == start + 1)
    control.stop()
    worker.join(WAIT)
    return views


@pytest.mark.slow
def test_a_step_in_slow_motion_saves_what_one_of_each_saves(root):
    saved_run(root, "base", steps=4)
    for name in ("slow", "plain"):
        shutil.copytree(root / "base", root / name)
    views = one_step(Run.at("slow", root), slow=True)
    assert one_step(Run.at("plain", root), slow=False) == []
    assert [view.step for view in views] == [4] * 9 + [5]
    slow, plain = (load_state(Run.at(name, root).latest_path)[0] for name in ("slow", "plain"))
    assert_same_weights(plain, slow)
    assert torch.equal(slow["rng"]["noise"], plain["rng"]["noise"]) and slow["position"]["step"] == 5
    histories = [Run.at(name, root).history().steps for name in ("slow", "plain")]
    assert [record.step for record in histories[0]] == [1, 2, 3, 4, 5]
    assert all(same_record(one, other) for one, other in zip(*histories))


def shown_substep(session: TrainingSession) -> tuple[int, int] | None:
    view = session.snapshot().slow_motion
    return None if view is None else (view.step, view.index)


@pytest.mark.slow
def test_the_session_walks_a_step_in_slow_motion_one_click_at_a_time(root):
    session = TrainingSession()
    try:
        assert session.start(tiny_config(epochs=1, steps_per_epoch=1_000_000), "slow")
        wait_for(lambda: session.snapshot().step > 0)
        assert session.substep() is False, "slow motion only while paused"
        session.pause()
        wait_for(lambda: session.snapshot().status == "paused" and session.overview() is not None)
        step = None  # the paused job's step, published with the first sub-step
        for taken, substep in enumerate(SubStep, start=1):
            assert session.substep()
            wait_for(lambda: getattr(session.snapshot().slow_motion, "index", 0) == taken)  # noqa: B023
            shown = session.snapshot()
            step = shown.step if step is None else step
            assert shown.slow_motion.substep == substep and shown.overview is shown.slow_motion.frame
            assert shown.step == (step + 1 if substep == SubStep.G5 else step)
        wait_for(lambda: session.overview().step == step + 1 and session.snapshot().step_through is not None)
        for taken in range(1, 4):  # a Resume in the middle of a step completes it and trains on
            assert session.substep()
            wait_for(lambda: shown_substep(session) == (step + 1, taken))  # noqa: B023
        session.resume()
        wait_for(lambda: session.snapshot().step > step + 3)
        assert session.snapshot().slow_motion is None
    finally:
        session.stop(wait=WAIT)
    steps = Run.at("slow", root).history().steps
    assert [record.step for record in steps] == list(range(1, len(steps) + 1))
    assert steps[step].players == "dg"
