"""The digit judges: shipped weights checked by hash, the cache as fallback, deterministic training."""

from __future__ import annotations

import re
import shutil
import threading

import pytest
import torch

import gan.scoring.judge as judge_module
from gan.data import load_mnist
from gan.scoring.judge import (
    JudgeError,
    JudgeWarning,
    encode_judge,
    file_sha256,
    judge_is_cached,
    judge_path,
    load_judge,
    load_judges,
    read_judge,
    save_judge,
    shipped_path,
)
from gan.scoring.judge_models import FIRST, SECOND, SPECS, ConvJudge, judge_accuracy, train_judge


@pytest.fixture(scope="module")
def judges():
    return load_judges()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """A cache folder of its own, and no memory of judges loaded by other tests."""
    monkeypatch.setattr(judge_module, "_JUDGES", {})
    return tmp_path


def test_shipped_files_match_their_recorded_hashes_and_are_small():
    for name, spec in SPECS.items():
        path = shipped_path(name)
        assert file_sha256(path) == spec.sha256
        assert path.stat().st_size < 1_000_000


@pytest.mark.slow
def test_both_judges_load_from_the_shipped_files_and_reach_99_percent(judges):
    for judge in (judges.first, judges.second):
        assert judge.metadata["source"] == "shipped"
        assert judge_accuracy(judge) >= 0.99
    assert type(judges.first) is not type(judges.second)
    assert judges.first.feature_dim != judges.second.feature_dim


def test_shipped_judges_are_loaded_once_whatever_the_cache_folder(judges, tmp_path):
    assert load_judge(tmp_path, retrain_if_missing=False, name=FIRST) is judges.first
    assert not (tmp_path / "judge").exists()


@pytest.mark.slow
def test_training_is_deterministic_byte_for_byte():
    for name in SPECS:
        first, second = (encode_judge(train_judge(name, steps_per_epoch=2)) for _ in range(2))
        assert first == second


def test_training_leaves_the_thread_count_and_random_stream_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    train_judge(FIRST, steps_per_epoch=1)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_an_altered_shipped_file_falls_back_to_the_cache_with_a_warning(judges, empty_cache, monkeypatch):
    shipped = empty_cache / "shipped"
    shipped.mkdir()
    shutil.copyfile(shipped_path(FIRST), shipped / "convnet.safetensors")
    with (shipped / "convnet.safetensors").open("r+b") as file:
        file.seek(-4, 2)
        file.write(b"\x00\x00\x80\x3f")  # the last weight becomes 1.0: still a valid file, another hash
    monkeypatch.setattr(judge_module, "SHIPPED_DIR", shipped)
    save_judge(judges.first, judge_path(empty_cache, FIRST))
    with pytest.warns(JudgeWarning, match="SHA-256"):
        loaded = load_judge(empty_cache, retrain_if_missing=False, name=FIRST)
    assert loaded.metadata["source"] == "cache"


def test_a_missing_shipped_file_and_cache_is_an_error_naming_both(empty_cache, monkeypatch):
    monkeypatch.setattr(judge_module, "SHIPPED_DIR", empty_cache / "nowhere")
    assert not judge_is_cached(empty_cache)
    with pytest.warns(JudgeWarning, match="missing"), pytest.raises(JudgeError, match="not found"):
        load_judge(empty_cache, retrain_if_missing=False, name=SECOND)


def test_corrupt_cache_file_is_reported_by_name(empty_cache):
    path = judge_path(empty_cache, FIRST)
    assert path == empty_cache.resolve() / "judge" / "convnet.safetensors"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage, not a safetensors file" * 10)
    with pytest.raises(JudgeError, match=re.escape(str(path))):
        load_judge(empty_cache, retrain_if_missing=False, shipped=False)


def test_truncated_cache_file_is_reported(empty_cache):
    path = judge_path(empty_cache, FIRST)
    path.parent.mkdir(parents=True)
    path.write_bytes(shipped_path(FIRST).read_bytes()[:5000])
    with pytest.raises(JudgeError, match="cannot load"):
        load_judge(empty_cache, retrain_if_missing=False, shipped=False)


def test_wrong_shapes_are_reported(empty_cache):
    save_judge(ConvJudge(width=8), judge_path(empty_cache, FIRST))
    with pytest.raises(JudgeError, match="size mismatch"):
        load_judge(empty_cache, retrain_if_missing=False, shipped=False)


def test_a_cached_copy_loads_once_across_threads_and_matches(judges, empty_cache):
    for name in SPECS:
        path = judge_path(empty_cache, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shipped_path(name), path)
    loaded = []
    threads = [
        threading.Thread(target=lambda: loaded.append(load_judge(empty_cache, False, shipped=False))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 4 and all(copy is loaded[0] for copy in loaded)
    assert loaded[0].metadata["source"] == "cache" and float(loaded[0].metadata["accuracy"]) >= 0.99
    images = load_mnist(split="test").images[:64]
    with torch.inference_mode():
        assert torch.equal(loaded[0](images), judges.first(images))


def test_saved_files_round_trip_with_the_same_bytes(judges, tmp_path):
    digest = save_judge(judges.second, tmp_path / "copy.safetensors")
    assert digest == SPECS[SECOND].sha256
    assert encode_judge(read_judge(tmp_path / "copy.safetensors", SECOND)) == shipped_path(SECOND).read_bytes()


def test_the_judge_command_names_where_each_judge_comes_from(judges, capsys):
    from gan.__main__ import main

    assert main(["judge"]) == 0
    printed = capsys.readouterr().out
    for name in SPECS:
        accuracy = float(load_judge(name=name).metadata["accuracy"])
        assert f"{name} judge (shipped weights): test accuracy {accuracy:.2%}" in printed


@pytest.mark.slow  # trains both judges, then measures each on the 10,000 test digits
def test_judge_train_writes_where_asked_and_compares_with_the_shipped_file(tmp_path, monkeypatch, capsys):
    from gan.__main__ import main

    # two batches an epoch: the command's behaviour, not a good judge
    monkeypatch.setattr(judge_module, "train_judge", lambda name, data_dir: train_judge(name, data_dir, 2))
    shipped = {name: file_sha256(shipped_path(name)) for name in SPECS}
    assert main(["judge", "--train", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for name in SPECS:
        written = tmp_path / f"{name}.safetensors"
        assert f"sha256 {file_sha256(written)} (differs from the shipped file)" in printed
        assert read_judge(written, name).metadata["name"] == name
        assert file_sha256(shipped_path(name)) == shipped[name]
