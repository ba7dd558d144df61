"""Run folders and checkpoint files: names, the safetensors format, and every kind of damaged or foreign file."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from gan.checkpoints import CheckpointError, Run, list_runs, load_generator, load_state, validate_run_name
from gan.runner import prepare_trainer
from tests.conftest import BAD_EPOCH_FILES, BAD_RUNS


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "", ".hidden", "x" * 65, "a\\b", "/tmp/x", "a/../../b"])
def test_escaping_run_names_are_refused(name):
    with pytest.raises(CheckpointError, match="not allowed"):
        validate_run_name(name)


def test_a_foreign_safetensors_file_is_refused(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a GAN Studio checkpoint"):
        load_state(foreign)


@pytest.mark.parametrize("kind", BAD_EPOCH_FILES)
def test_a_bad_epoch_file_is_refused_by_name_and_the_older_epochs_still_work(zoo, kind):
    root, marker = zoo
    run = Run.at(kind, root)
    with pytest.raises(CheckpointError, match=f"epoch-0003.safetensors: .*({BAD_EPOCH_FILES[kind]})"):
        load_generator(run)
    assert load_generator(run, 2)[2] == 2
    assert prepare_trainer(run, resume=True).step == 6, "resume falls back to the newest good epoch"
    assert not marker.exists(), "nothing in a file is ever executed"


def test_list_runs_gives_each_bad_run_its_reason_and_good_runs_still_work(zoo):
    root, marker = zoo
    runs = {info.name: info for info in list_runs(root)}
    assert len(runs) == 2 + len(BAD_EPOCH_FILES) + len(BAD_RUNS) + 1
    for kind in ("good", "classic", "history-binary"):
        assert runs[kind].error is None and runs[kind].epochs == (1, 2)
        assert load_generator(Run.at(kind, root))[2] == 2
    assert runs["history-binary"].last_record is None, "a garbled history is skipped, not fatal"
    for kind, reason in BAD_RUNS.items():
        assert reason in runs[kind].error
    for kind in BAD_EPOCH_FILES.keys() - {"wrong-shapes"}:  # the listing reads headers only, never tensors
        assert "epoch-0003.safetensors: " in runs[kind].error and runs[kind].epochs == (1, 2, 3)
    assert not marker.exists()
