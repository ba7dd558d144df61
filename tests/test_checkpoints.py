import pytest
import torch

from gan.checkpoints import CheckpointError, Run, list_runs, load_generator, load_state, validate_run_name
from gan.latent import sample
from gan.session import RunError, prepare_trainer, train_run
from gan.train import Control
from tests.conftest import tiny_config


def train_new(name: str, **changes) -> Run:
    run = Run.at(name)
    train_run(run, prepare_trainer(run, tiny_config(**changes)))
    return run


def test_run_folder_layout(root):
    run = train_new("layout")
    names = sorted(path.name for path in run.path.iterdir())
    assert names == [
        "config.json", "epoch-0001.png", "epoch-0001.safetensors", "epoch-0002.png", "epoch-0002.safetensors",
        "history.jsonl",
    ]  # fmt: skip
    assert run.config() == tiny_config()
    kinds = [record.kind for record in run.history()]
    assert kinds.count("step") == 6 and kinds.count("epoch") == 2


def test_saved_generator_draws_the_same_images(root):
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
    expected, actual = straight.load_epoch(3), run.load_epoch(3)
    for part in ("G", "G_ema", "D"):
        for key, value in expected[part].items():
            assert torch.equal(value, actual[part][key]), f"{part}/{key} differs after resume"
    steps = [record.step for record in run.history().steps]
    assert steps == list(range(1, 10)), "the history holds every step once"


def test_truncated_checkpoint_gives_clear_error_and_other_epochs_still_load(root):
    run = train_new("damaged")
    path = run.epoch_path(2)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="epoch-0002.safetensors.*truncated or corrupt"):
        load_generator(run, 2)
    G, _, epoch = load_generator(run, 1)
    assert epoch == 1
    assert prepare_trainer(run, resume=True).step == 3, "resume falls back to the newest readable epoch"


def test_foreign_safetensors_file_is_refused(root, tmp_path):
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a GAN Studio checkpoint"):
        load_state(foreign)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "", ".hidden", "x" * 65, "a\\b"])
def test_escaping_run_names_are_refused(name):
    with pytest.raises(CheckpointError, match="not allowed"):
        validate_run_name(name)


def test_existing_run_is_not_overwritten(root):
    train_new("taken")
    with pytest.raises(RunError, match="already exists"):
        prepare_trainer(Run.at("taken"), tiny_config())


def test_list_runs_reports_unreadable_runs(root):
    train_new("good")
    broken = root / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{oops")
    runs = {info.name: info for info in list_runs()}
    assert runs["good"].error is None and runs["good"].epochs == (1, 2)
    assert "config.json" in runs["broken"].error
