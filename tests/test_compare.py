"""Comparing runs: differing settings (mid-run changes included), curves aligned on epochs, images or seconds."""

from pathlib import Path

import pytest

from gan.__main__ import main
from gan.jobs.runner import prepare_trainer, train_run
from gan.lab.compare import CHANGES, RunRecord, change_marks, differing_settings, load, score_table, step_curve
from gan.store.run import Run
from tests.conftest import tiny_config

RUN_SETTINGS = {
    "base": tiny_config(epochs=2),
    "fast-d": tiny_config(epochs=2, lr_d=2e-3, batch_size=32),
    "switched": tiny_config(epochs=2, set_at=("4:loss=hinge",)),
}


@pytest.fixture(scope="module")
def saved_root(tmp_path_factory) -> Path:
    """Three tiny runs, trained once for the module: a baseline, one with a higher lr_d and batch, one whose loss
    changed at step 4."""
    root = tmp_path_factory.mktemp("checkpoints")
    for name, config in RUN_SETTINGS.items():
        run = Run.at(name, root)
        assert train_run(run, prepare_trainer(run, config)) == "finished"
    return root


@pytest.fixture
def runs(saved_root) -> list[RunRecord]:
    return load([Run.at(name, saved_root) for name in RUN_SETTINGS])


def test_differing_settings_name_each_runs_value(runs):
    base, fast, switched = runs
    differing = differing_settings([base, fast])
    assert differing == {"batch_size": [16, 32], "lr_d": [RUN_SETTINGS["base"].lr_d, 2e-3]}
    with_changes = differing_settings(runs)
    assert with_changes["set_at"] == [(), (), ("4:loss=hinge",)]
    assert with_changes[CHANGES] == ["none", "none", "step 4: loss bce -> hinge"]
    assert differing_settings([base, base]) == {}


def test_curves_align_on_epochs_images_and_seconds(runs):
    base, fast, _ = runs
    for run in (base, fast):
        x, y = step_curve(run, "loss_d", "epoch")
        assert x == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2]) and len(y) == 6
    assert step_curve(base, "loss_d", "images")[0][-1] == 6 * 16
    assert step_curve(fast, "loss_d", "images")[0][-1] == 6 * 32, "twice the batch: twice the images per step"
    seconds = step_curve(base, "loss_d", "seconds")[0]
    assert seconds == sorted(seconds) and seconds[0] > 0


def test_change_marks_sit_after_their_step(runs):
    switched = runs[2]
    assert change_marks(switched, "epoch") == [(pytest.approx(4 / 3), "Loss hinge")]
    assert change_marks(switched, "images") == [(64.0, "Loss hinge")]


def test_score_table_has_the_columns_any_epoch_has():
    history = (
        {"kind": "epoch", "epoch": 1, "step": 3, "seconds": 1.0, "scores": {"fid": 90.0, "classes_covered": 7}},
        {"kind": "epoch", "epoch": 2, "step": 6, "seconds": 2.0, "scores": {"fid": 40.0, "recall": 0.5}},
        {"kind": "epoch", "epoch": 3, "step": 9, "seconds": 3.0},
    )
    columns, rows = score_table(RunRecord("r", tiny_config(), history))
    assert columns == ["epoch", "fid", "classes_covered", "recall"]
    assert rows == [[1, 90.0, 7, None], [2, 40.0, None, 0.5]]


def test_cli_compare_prints_the_differences_and_each_runs_scores(saved_root, capsys):
    assert main(["--root", str(saved_root), "compare", "base", "fast-d", "switched"]) == 0
    out = capsys.readouterr().out
    assert "settings that differ" in out and "lr_d" in out and "step 4: loss bce -> hinge" in out
    assert out.count("scores per epoch: none") == 3
    assert main(["--root", str(saved_root), "compare", "base"]) == 1
    assert "2 to 4 different runs" in capsys.readouterr().err
