"""Training a run folder: new and resumed trainers, what the Recorder writes, and what a fault leaves behind."""

from __future__ import annotations

import math

import pytest
import torch

from gan.config import Config, ConfigError
from gan.control import Control
from gan.jobs.runner import RunError, check_startable, continue_target, prepare_trainer, train_run
from gan.lab.latent import sample
from gan.store.listing import list_runs
from gan.store.run import Run, load_generator
from gan.train import TrainingDiverged
from tests.conftest import assert_loadable, assert_same_weights, steps_logged, tiny_config


def train_new(name: str, **changes) -> Run:
    run = Run.at(name)
    train_run(run, prepare_trainer(run, tiny_config(**changes)))
    return run


def test_a_run_folder_holds_its_config_epochs_grids_and_history(root):
    run = train_new("layout")
    names = sorted(path.name for path in run.path.iterdir())
    epochs = [f"epoch-000{epoch}.{kind}" for epoch in (1, 2) for kind in ("png", "safetensors")]
    assert names == ["config.json", *epochs, "history.jsonl"]
    assert run.config() == tiny_config()
    kinds = [record.kind for record in run.history()]
    assert kinds.count("step") == 6 and kinds.count("epoch") == 2


def test_checkpoint_every_saves_every_nth_epoch_and_the_last(root):
    assert train_new("sparse", epochs=5, checkpoint_every=2).epochs() == [2, 4, 5]


def test_the_saved_generator_draws_what_the_trainer_drew(root):
    run = Run.at("roundtrip")
    trainer = prepare_trainer(run, tiny_config())
    train_run(run, trainer)
    G, config, epoch = load_generator(run)
    assert epoch == 2 and config == trainer.config
    images, labels = sample(G, 10, seed=5)
    trainer.G_ema.eval()
    with torch.no_grad():
        expected = trainer.G_ema(torch.randn(10, config.latent_dim, generator=torch.Generator().manual_seed(5)), labels)
    assert torch.equal(images, expected)


@pytest.mark.parametrize("preset", ["classic", "cdcgan"])
def test_resume_equals_uninterrupted_training_bit_for_bit(root, preset):
    straight = train_new(f"straight-{preset}", preset=preset, epochs=3)
    run = Run.at(f"stopped-{preset}")
    control = Control()
    first = prepare_trainer(run, tiny_config(preset, epochs=3))
    outcome = train_run(run, first, control, on_step=lambda m: control.stop() if m.step == 4 else None)
    assert outcome == "stopped" and run.latest_path.exists() and run.epochs() == [1]
    resumed = prepare_trainer(run, resume=True)
    assert resumed.step == 4
    train_run(run, resumed)
    assert_same_weights(straight.load_epoch(3), run.load_epoch(3))
    assert steps_logged(run) == list(range(1, 10)), "the history holds every step once"


def test_an_existing_run_is_not_overwritten_and_a_missing_one_not_resumed(root):
    train_new("taken")
    with pytest.raises(RunError, match="already exists"):
        prepare_trainer(Run.at("taken"), tiny_config())
    with pytest.raises(RunError, match="no run 'nothing' to resume"):
        prepare_trainer(Run.at("nothing"), resume=True)


def test_settings_beyond_the_machines_memory_are_refused_before_any_file_is_written(root):
    huge = Config.for_preset("dcgan", width=2048, latent_dim=1024, batch_size=60_000)
    with pytest.raises(ConfigError, match="GiB"):
        check_startable(Run.at("huge"), resume=False, config=huge)
    with pytest.raises(ConfigError, match="GiB"):
        prepare_trainer(Run.at("huge"), huge)
    assert not Run.at("huge").path.exists()


def test_an_epochs_end_draws_the_fixed_noise_once_for_its_spread_its_saved_grid_and_the_callback(root):
    run = Run.at("drawn")
    trainer = prepare_trainer(run, tiny_config(epochs=2))
    drawn, shown = [], {}
    sample_fixed = trainer.sample_fixed
    trainer.sample_fixed = lambda: drawn.append(trainer.step) or sample_fixed()
    train_run(run, trainer, on_epoch=lambda epochs_done, record, grid: shown.update({epochs_done: grid}))
    assert drawn == [3, 6], "one draw at each epoch's end"
    assert all(shown[epoch] == run.grid_path(epoch).read_bytes() for epoch in (1, 2))
    assert all(record.spread is not None for record in run.history().epochs)


def test_resuming_with_more_epochs_trains_a_finished_run_further(root):
    run = train_new("grow", epochs=1)
    train_run(run, prepare_trainer(run, resume=True, epochs=2))
    assert run.epochs() == [1, 2] and run.config().epochs == 2 and steps_logged(run) == list(range(1, 7))


def test_leftover_temporary_files_are_ignored_and_removed_on_resume(root):
    run = train_new("leftovers")
    partial = run.path / ".epoch-0003.safetensors.k1ll3d.tmp"
    partial.write_bytes(run.epoch_path(2).read_bytes()[:500])  # what a kill in mid-write leaves
    assert run.epochs() == [1, 2] and list_runs()[0].error is None
    assert load_generator(run)[2] == 2
    with run.lock():
        assert prepare_trainer(run, resume=True, epochs=3).step == 6
    assert not partial.exists()


@pytest.mark.parametrize("factor", [math.nan, math.inf])
def test_non_finite_loss_stops_training_and_the_last_good_epoch_stays_newest(root, poisoned, factor):
    run = Run.at("diverged")
    trainer = prepare_trainer(run, tiny_config(epochs=3))
    poisoned(factor)
    with pytest.raises(TrainingDiverged, match=r"the D loss became \S+ at step 4 \(epoch 2\).*Lower the learning"):
        train_run(run, trainer)
    assert run.epochs() == [1] and not run.latest_path.exists()
    assert_loadable(run)
    assert steps_logged(run) == [1, 2, 3]
    assert torch.isfinite(sample(load_generator(run)[0], 4, seed=0)[0]).all()


def test_a_failed_save_is_raised_without_a_handler_and_retried_with_one(root, disk_full):
    disk_full["epoch-0002.safetensors"] = 1
    run = Run.at("full")
    with pytest.raises(OSError, match="No space left"):
        train_run(run, prepare_trainer(run, tiny_config(epochs=3)))
    assert run.epochs() == [1]
    disk_full["epoch-0003.safetensors"] = 2
    errors = []
    train_run(run, prepare_trainer(run, resume=True), on_save_error=errors.append)
    assert len(errors) == 2 and run.epochs() == [1, 2, 3]
    assert_loadable(run)


@pytest.mark.parametrize("last, planned, offered", [(0, 5, 5), (3, 5, 5), (5, 5, 10)])
def test_continuing_offers_the_plan_or_five_epochs_more(last, planned, offered):
    assert continue_target(last, planned) == offered
