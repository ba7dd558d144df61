"""The runs shipped with the package: their files are what the loader expects, the demo goes from static to digits by
the project's own judges, every page shows it on a clone with no run of its own, it is never written to (training
on it trains a copy), and the builder gives the same tensors twice."""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from gan.demo import DEMO_EPOCHS, DEMO_STEPS, Plan, build, compare_folders, copy_for_training, log_spaced_steps
from gan.jobs.runner import resumed_trainer
from gan.models import build_discriminator, build_generator
from gan.scoring.diagnose import DIGITS_FID, NOISE_FID
from gan.scoring.metrics import score_generator
from gan.store.checkpoints import read_header
from gan.store.listing import list_all_runs
from gan.store.run import Run, load_generator
from gan.store.shipped import SHIPPED_DIR, SHIPPED_NAMES, ReadOnlyRunError, shipped_path
from tests.conftest import tiny_config
from tests.test_app import stop_and_forget

APP = Path(__file__).resolve().parents[1] / "app.py"
BUDGET = 12_000_000  # bytes the shipped runs may add to the repository
GRID_SIZE = (302, 302)  # 10 x 10 digits of 28 pixels, 2 pixels apart


def shipped_files() -> dict[str, str]:
    """Every shipped file's SHA-256, to show that nothing wrote into them."""
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(SHIPPED_DIR.rglob("*"))
            if path.is_file()}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_the_shipped_files_are_what_the_loader_expects(name):
    run = Run(shipped_path(name))
    config = run.config()
    epochs = run.epochs()
    assert epochs and epochs == run.epochs_with_grids()
    saved = [f"epoch-{epoch:04d}.{kind}" for epoch in epochs for kind in ("png", "safetensors")]
    tree = sorted(entry.name for entry in run.path.iterdir())
    assert tree == sorted(["config.json", "history.jsonl", *saved])  # nothing else: no lock, no full state
    history = run.history()
    assert history.skipped == 0 and [record.epoch for record in history.epochs] == list(range(1, config.epochs + 1))
    G, D = build_generator(config), build_discriminator(config)
    for epoch in epochs:
        header = read_header(run.epoch_path(epoch))
        half = {name for name, (dtype, _, _) in header.tensors.items() if dtype == "F16"}
        assert half == {name for name in header.tensors if "num_batches_tracked" not in name}  # every float is half
        state = run.load_epoch(epoch)  # every check of an untrusted checkpoint, finite values included
        assert state["G_ema"].keys() == G.state_dict().keys() and state["D"].keys() == D.state_dict().keys()
        assert all(torch.isfinite(value).all() for part in ("G_ema", "D") for value in state[part].values())
        weights = sum(value.numel() * 2 for part in ("G_ema", "D") for value in state[part].values())
        assert weights < header.size < weights + 20_000  # the weights in half precision and a small header
        assert state["position"]["step"] == history.epochs[epoch - 1].step
        assert Image.open(run.grid_path(epoch)).size == GRID_SIZE
    G.load_state_dict(load_generator(run)[0].state_dict())  # the newest epoch fits its model


def test_the_shipped_runs_fit_the_budget():
    """Counted as git stores them, each file compressed with zlib (the JSON histories shrink sevenfold)."""
    size = sum(len(zlib.compress(path.read_bytes())) for path in SHIPPED_DIR.rglob("*") if path.is_file())
    assert size <= BUDGET, f"{size:,} bytes"


def test_the_demos_epochs_are_spaced_in_log_steps():
    run = Run(shipped_path("demo"))
    steps = [record.step for record in run.epoch_records()]
    assert len(steps) == DEMO_EPOCHS >= 20 and steps == list(log_spaced_steps(DEMO_STEPS, DEMO_EPOCHS))
    ratios = [later / earlier for earlier, later in zip(steps[1:], steps[2:])]
    assert max(ratios) / min(ratios) < 1.1  # after step 1, one ratio from each epoch to the next
    assert steps[DEMO_EPOCHS // 2] < 500  # half the epochs in the first few hundred steps


@pytest.mark.slow
def test_the_demo_turns_from_static_into_digits_by_the_judges():
    run = Run(shipped_path("demo"))
    saved = {record.epoch: record.scores for record in run.epoch_records()}
    first, last = (score_generator(load_generator(run, epoch)[0]) for epoch in (1, DEMO_EPOCHS))
    assert first.fid > NOISE_FID and first.classifier_score < 2  # the judges call it noise
    assert last.fid < DIGITS_FID / 10 and last.classes_covered == 10 and last.classifier_score > 8
    for epoch, measured in ((1, first), (DEMO_EPOCHS, last)):  # the saved scores are what the files give
        assert math.isclose(saved[epoch].fid, measured.fid, rel_tol=0.02)


def test_a_clone_with_no_runs_lists_the_shipped_runs_first(root):
    assert [info.name for info in list_all_runs()] == list(SHIPPED_NAMES)
    assert all(info.shipped and info.error is None for info in list_all_runs())
    assert Run.at("demo").path == shipped_path("demo")  # the command line finds it by name too


def test_a_shipped_run_is_never_locked_nor_written(root):
    before = shipped_files()
    with pytest.raises(ReadOnlyRunError, match="read-only"), Run.at("demo").lock():
        pass
    assert shipped_files() == before


@pytest.mark.slow
def test_training_on_the_demo_trains_a_copy(root):
    before = shipped_files()
    copy = copy_for_training(Run.at("demo"))
    assert copy.path == root / "demo-copy" and copy_for_training(Run.at("demo")).name == "demo-copy-2"
    assert copy.epochs() == Run.at("demo").epochs() and copy.latest_path.is_file()
    trainer = resumed_trainer(copy, epochs=DEMO_EPOCHS + 1)
    shipped = Run.at("demo").load_epoch(DEMO_EPOCHS)
    assert trainer.step == DEMO_STEPS and trainer.epoch == DEMO_EPOCHS
    for key, value in shipped["G_ema"].items():
        assert torch.equal(trainer.G.state_dict()[key], value)  # G starts from the shipped averaged copy
    assert shipped_files() == before


@pytest.mark.slow
def test_the_command_line_resumes_a_copy_of_the_demo(root, cli, monkeypatch):
    started = []
    monkeypatch.setattr("gan.cli.train.train_with_output", lambda args, run, *rest: started.append(run) or 0)
    code, out, err = cli("train", "--run", "demo", "--resume", "--epochs", str(DEMO_EPOCHS + 1))
    assert code == 0 and "training a copy of it, demo-copy" in out
    assert started[0].path == root / "demo-copy"
    code, _, err = cli("train", "--run", "demo", "--epochs", "2")
    assert code == 1 and "already exists" in err  # a new run cannot take a shipped run's name


def test_the_builder_gives_the_same_tensors_twice(tmp_path):
    config = tiny_config(epochs=4, steps_per_epoch=None)
    plan = Plan("tiny", config, config.replace(epochs=1), (1, 3, 6, 12), frozenset({2, 4}))
    for folder in ("first", "second"):
        build(plan, tmp_path / folder)
    assert not list(compare_folders(tmp_path / "first", tmp_path / "second"))
    run = Run(tmp_path / "first")
    assert run.epochs() == [2, 4] and [record.step for record in run.epoch_records()] == [1, 3, 6, 12]
    assert [record.epoch for record in run.history().steps] == [0, 1, 1, 2, 2, 2] + [3] * 6
    state = run.load_epoch(4)
    assert state["position"] == {"epoch": 4, "batch": 0, "step": 12, "images_seen": 12 * config.batch_size}
    steps = [json.loads(line) for line in (run.path / "history.jsonl").read_text().splitlines() if '"step"' in line]
    numbers = [value for step in steps if step["kind"] == "step" for value in step.values() if isinstance(value, float)]
    assert numbers and all(len(repr(value).lstrip("-")) <= 11 for value in numbers)  # 5 significant digits


@pytest.mark.slow
@pytest.mark.parametrize("page", re.findall(r'st\.Page\("([^"]+)"', APP.read_text()))
def test_every_page_shows_the_demo_on_a_clone_with_no_runs(root, page):
    stop_and_forget()
    before = shipped_files()
    at = AppTest.from_file(str(APP), default_timeout=180).run()
    at.switch_page(page).run()
    assert not at.exception and not at.error and not at.warning  # e.g. "Epoch 20 cannot be looked inside"
    assert at.selectbox(key="run").value == "demo"
    assert shipped_files() == before
    if page == "views/timeline.py":
        assert at.select_slider(key="timeline_epoch_demo").value == DEMO_EPOCHS
        charts = " ".join(chart.proto.id for chart in at.get("plotly_chart"))
        assert all(key in charts for key in ("timeline_losses", "timeline_fid")), charts  # and the maps
    if page == "views/compare.py":
        assert at.multiselect(key="compare_runs").value == ["demo", "mode-collapse"]
    stop_and_forget()
