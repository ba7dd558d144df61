"""Run folders and checkpoint files: names, listing, locks, the safetensors format, and every kind of damaged or
foreign file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors
from safetensors.torch import save_file

from gan.jobs.runner import prepare_trainer
from gan.store.checkpoints import FORMAT, CheckpointError, flatten_state, load_state
from gan.store.listing import list_runs
from gan.store.run import Run, RunLockedError, load_generator
from tests.conftest import BAD_EPOCH_FILES, BAD_RUNS, DEEP, assert_listed_with_reason, bad_run, tiny_config

NAMES_REFUSED = ["../x", "a/b", "..", "", ".hidden", "x" * 65, "a\\b", "/tmp/x", "a/../../b"]  # escapes
NAMES_REFUSED += ["my run", "abc\n", "a\x1b[31m", "ok\t"]  # spaces and control characters


@pytest.mark.parametrize("name", NAMES_REFUSED)
def test_escaping_run_names_and_names_with_spaces_or_control_characters_are_refused(name):
    with pytest.raises(CheckpointError, match="is not allowed"):
        Run.at(name)


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


# --- config files that cannot be parsed or read ---


def test_a_deeply_nested_config_is_listed_with_a_reason(root, good):
    (bad_run(root).path / "config.json").write_text(DEEP)
    assert_listed_with_reason(root, "bad", "nested too deeply")


def test_a_config_with_a_huge_integer_is_listed_with_a_reason(root, good):
    (bad_run(root).path / "config.json").write_text('{"seed": ' + "9" * 5000 + "}")
    assert_listed_with_reason(root, "bad", "out of range")


def test_a_fifo_config_is_refused_without_waiting_for_a_writer(root, good):
    os.mkfifo(bad_run(root).path / "config.json")
    assert_listed_with_reason(root, "bad", "not a regular file")


def test_a_config_linked_to_dev_zero_is_refused(root, good):
    (bad_run(root).path / "config.json").symlink_to("/dev/zero")
    assert_listed_with_reason(root, "bad", "outside its run folder")


def test_a_large_config_is_refused_by_its_size(root, good):
    (bad_run(root).path / "config.json").write_text(" " * 2_000_000 + "{}")
    assert_listed_with_reason(root, "bad", "too large")


def test_a_symlinked_run_folder_is_listed_and_never_written_through(root, good, tmp_path):
    (root / "linked").symlink_to(good.path)
    assert_listed_with_reason(root, "linked", "is a link")
    with pytest.raises(CheckpointError, match="is a link"):
        Run(root / "linked").config()
    with pytest.raises(CheckpointError, match="is a link"), Run(root / "linked").lock():
        pass


# --- one writer per run ---


def test_a_second_writer_is_refused_naming_the_holder(good):
    with good.lock(), pytest.raises(RunLockedError, match=rf"process {os.getpid()} since \d{{4}}-"), good.lock():
        pass


def test_a_lock_of_a_killed_process_does_not_block(good):
    ready, told = os.pipe()
    holder = os.fork()  # a copy of this process, its imports done: no second start of torch
    if holder == 0:
        try:
            lock = good.lock()  # kept: a dropped context manager would release the lock
            lock.__enter__()
            os.write(told, b"held")
            time.sleep(600)
        finally:
            os._exit(1)
    try:
        assert os.read(ready, 4) == b"held"
        with pytest.raises(RunLockedError, match=f"process {holder}"), good.lock():
            pass
    finally:
        os.kill(holder, signal.SIGKILL)
        os.waitpid(holder, 0)
        os.close(ready), os.close(told)
    with good.lock():
        assert good.holds_lock()


def test_partial_writes_are_removed_only_under_the_lock(good):
    partial = good.path / ".epoch-0003.safetensors.other.tmp"
    partial.write_bytes(b"in use by another writer")
    assert good.remove_partial_writes() == [] and partial.exists()
    with good.lock():
        assert good.remove_partial_writes() == [partial]


# --- safetensors files of the wrong tree, values or size ---


def write_checkpoint(path: Path, state: dict, tree_change=None, tensors_change=None) -> None:
    tensors, tree = flatten_state(state)
    if tree_change:
        tree = tree_change(tree)
    if tensors_change:
        tensors_change(tensors)
    config = tiny_config()
    metadata = {
        "format": FORMAT,
        "config": config.to_json(),
        "tree": tree if isinstance(tree, str) else json.dumps(tree),
    }
    path.write_bytes(save_safetensors(tensors, metadata=metadata))


def replaced(key, value):
    return lambda tree: {**tree, key: value}


def with_step(tree):
    return {**tree, "position": {**tree["position"], "step": "999"}}


def adam_of_shape_3(tensors):
    name = next(name for name in tensors if name.startswith("opt_g/state/") and name.endswith("exp_avg"))
    tensors[name] = torch.zeros(3)


BAD_TREES = {
    "tree is a list": {"tree_change": lambda tree: []},
    "tree nested deeply": {"tree_change": lambda tree: DEEP},
    "G_ema is a number": {"tree_change": replaced("G_ema", 5)},
    "step is a string": {"tree_change": with_step},
    "Adam moment of shape (3,)": {"tensors_change": adam_of_shape_3},
    "a leaf names no tensor": {"tree_change": lambda tree: {**tree, "rng": {"noise": {"__tensor__": "nowhere"}}}},
}


@pytest.mark.parametrize("kind", BAD_TREES)
def test_a_checkpoint_with_a_wrong_tree_is_refused_everywhere(good, cli, tmp_path, kind):
    state, _ = load_state(good.epoch_path(2))
    write_checkpoint(good.epoch_path(2), state, **BAD_TREES[kind])
    with pytest.raises(CheckpointError):
        load_state(good.epoch_path(2))
    code, _, err = cli("sample", "--run", "good", "--epoch", 2, "--out", tmp_path / "x.npy")
    assert code == 1 and not (tmp_path / "x.npy").exists()
    with good.lock():
        assert prepare_trainer(good, resume=True).step == 3, "resume falls back to the good epoch"


def test_a_sparse_30_gb_epoch_file_is_refused_from_its_header(root, good):
    path = good.epoch_path(3)
    shutil.copy(good.epoch_path(2), path)
    with open(path, "r+b") as handle:
        handle.truncate(30 * 2**30)  # sparse: no disk space used
    with pytest.raises(CheckpointError, match="bytes, but its header describes"):
        load_state(path)
    assert "header describes" in {info.name: info.error for info in list_runs(root)}["good"]


def test_a_header_claiming_a_huge_tensor_is_refused_by_the_models_shapes(good):
    state, _ = load_state(good.epoch_path(2))
    write_checkpoint(
        good.epoch_path(2), state, tensors_change=lambda t: t.update({"G/rest.0.weight": torch.zeros(9, 9)})
    )
    with pytest.raises(CheckpointError, match="do not fit the cdcgan preset"):
        load_state(good.epoch_path(2))
