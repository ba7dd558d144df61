import pytest
import torch

from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.lab.overview import NODE_HELP, next_batch, twin
from gan.lab.slowmotion import SUBSTEP_TEXT, SlowMotion
from gan.substeps import SubStep
from gan.train import Trainer
from tests.conftest import tiny_config

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
