import math

import pytest
import torch

from gan.config import LOSSES, PRESETS, Config
from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.lab.overview import NODE_HELP, network_shapes, next_batch, overview_frame, overview_from_run
from gan.lab.slowmotion import HIGHLIGHT
from gan.models import count_parameters
from gan.store.checkpoints import CheckpointError
from gan.store.run import Run
from gan.store.shipped import shipped_path
from gan.substeps import SubStep
from gan.train import Trainer
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def data():
    return load_mnist(DEFAULT_DATA_DIR, "train")


def take_step(trainer: Trainer) -> dict:
    """One step through the trainer's own sub-steps, keeping what each produced."""
    real, labels = next_batch(trainer)
    results = {result.substep: result for result in trainer.substeps(real, labels)}
    return {"real": real, "labels": labels, **results}


def test_the_frame_shows_the_numbers_of_the_trainers_latest_step(data):
    trainer = Trainer(tiny_config("cdcgan"), data)
    take_step(trainer)
    step = take_step(trainer)
    record, drawn, scored = step[SubStep.G5].record, step[SubStep.D1], step[SubStep.D2]
    frame = overview_frame(trainer)
    assert frame.step == record.step == 2
    assert (frame.loss_d, frame.loss_g) == (record.loss_d, record.loss_g)
    assert (frame.grad_norm_d, frame.grad_norm_g) == (record.grad_norm_d, record.grad_norm_g)
    assert frame.d_real == tuple(torch.sigmoid(scored.logits_real[:8]).tolist())
    assert frame.d_fake == tuple(torch.sigmoid(scored.logits_fake[:8]).tolist())
    assert torch.equal(frame.fakes, drawn.fake[:8].detach()) and torch.equal(frame.z, drawn.z[:8])
    assert torch.equal(frame.reals, step["real"][:8]) and frame.digits == tuple(step["labels"][:8].tolist())
    assert frame.push.shape == (8, 1, 28, 28) and frame.push.abs().sum() > 0
    assert frame.d_steps == 1 and not frame.critic


@pytest.mark.parametrize(
    "preset, loss", [(preset, "bce") for preset in PRESETS] + [("cdcgan", loss) for loss in LOSSES if loss != "bce"]
)
def test_every_preset_and_loss_draws_a_frame(data, preset, loss):
    trainer = Trainer(tiny_config(preset, loss=loss), data)
    trainer.train_step(*next_batch(trainer))
    frame = overview_frame(trainer, count=5)
    assert frame.loss == loss and frame.critic == (loss == "wgan-gp")
    assert frame.fakes.shape == frame.reals.shape == frame.push.shape == (5, 1, 28, 28)
    assert frame.fakes.min() >= -1 and frame.fakes.max() <= 1 and torch.isfinite(frame.push).all()
    shown = frame.d_real + frame.d_fake
    assert len(shown) == 10 and all(math.isfinite(score) for score in shown)
    if not frame.critic:  # probabilities (lsgan's outputs are read as beliefs directly and may stray a little)
        assert all(-0.5 <= score <= 1.5 for score in shown)
    assert (frame.digits is not None) == (preset == "cdcgan")
    assert frame.generator.parameters == count_parameters(trainer.G)
    assert frame.generator.learning_rate == trainer.config.lr_g
    assert frame.d_steps == trainer.config.discriminator_steps


def test_the_boxes_name_each_layers_output_shape():
    config = Config.for_preset("cdcgan")
    width, classes = config.width, 10
    generator, discriminator = network_shapes(config)
    assert generator == (f"z {config.latent_dim + classes}", f"{4 * width}x7x7", f"{2 * width}x14x14", "1x28x28")
    assert discriminator == ("1x28x28", f"{2 * width}x14x14", f"{4 * width}x7x7", "1")
    classic = Config.for_preset("classic")
    width = classic.width
    generator, discriminator = network_shapes(classic)
    assert generator == (f"z {classic.latent_dim}", str(width), str(2 * width), str(4 * width), "1x28x28")
    assert discriminator == ("1x28x28", str(4 * width), str(2 * width), str(width), "1")


def test_a_fresh_trainer_shows_its_next_step_and_does_not_move(data):
    trainer = Trainer(tiny_config("dcgan"), data)
    weights = {key: value.clone() for key, value in trainer.G.state_dict().items()}
    noise = trainer.noise.get_state()
    frame = overview_frame(trainer)
    assert frame.step == 1 and trainer.step == 0 and trainer.shown is None
    assert torch.equal(trainer.noise.get_state(), noise)
    assert all(torch.equal(value, trainer.G.state_dict()[key]) for key, value in weights.items())
    trainer.train_step(*next_batch(trainer))
    assert overview_frame(trainer).loss_d == frame.loss_d  # the step it showed is the step taken


def test_a_saved_run_shows_its_next_step_and_nothing_is_written(good):
    before = {path: path.read_bytes() for path in good.path.iterdir() if path.is_file()}
    frame = overview_from_run(good)
    assert frame.step == good.last_step().step + 1 == 7
    assert overview_from_run(good, epoch=1).step == 4  # three steps an epoch
    assert {path: path.read_bytes() for path in good.path.iterdir() if path.is_file()} == before


def test_the_shipped_demo_run_shows_its_next_step_from_weights_only_and_nothing_is_written():
    run = Run(shipped_path("demo"))  # its epochs hold G's average and D in half precision, no optimisers
    before = {path: path.read_bytes() for path in run.path.iterdir() if path.is_file()}
    frame = overview_from_run(run)
    assert frame.step == run.last_step().step + 1
    assert all(math.isfinite(value) for value in (frame.loss_d, frame.loss_g, frame.grad_norm_d, frame.grad_norm_g))
    assert frame.fakes.shape[0] == len(frame.d_fake) == len(frame.digits) > 0  # the demo is conditional
    assert {path: path.read_bytes() for path in run.path.iterdir() if path.is_file()} == before


def test_a_damaged_run_gives_a_one_line_error(good):
    for path in good.path.glob("*.safetensors"):
        path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be resumed") as error:
        overview_from_run(good)
    assert "\n" not in str(error.value)
    with pytest.raises(CheckpointError, match="no saved epoch 9"):
        overview_from_run(good, epoch=9)


def test_every_node_explains_itself_and_every_sub_step_lights_known_nodes():
    assert set(NODE_HELP) == {
        *("noise", "generator", "fakes", "reals", "discriminator", "predictions"),
        *("loss_d", "loss_g", "grad_d", "grad_g"),
    }
    assert all(2 <= text.count(". ") + 1 <= 4 for text in NODE_HELP.values())
    assert set(HIGHLIGHT) == set(SubStep) and all(set(nodes) <= set(NODE_HELP) for nodes in HIGHLIGHT.values())
    assert "reals" not in HIGHLIGHT[SubStep.G2]  # G's step never looks at real digits
