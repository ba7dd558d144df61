"""Hostile and damaged run folders, as a user's disk or a shared folder can hold them: each one is listed with a
one-line reason, never a traceback, and never takes the other runs, the CLI or the app's job down."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors

from gan.checkpoints import FORMAT, CheckpointError, Run, RunLockedError, flatten_state, list_runs, load_state
from gan.config import Config, ConfigError
from gan.files import FileError, append_lines, read_json
from gan.history import EpochRecord, StepRecord, last_step_record, parse_record, read_epoch_records, read_history
from gan.models import check_memory, estimate_training_bytes
from gan.runner import prepare_trainer, train_run
from gan.session import TrainingSession
from tests.conftest import tiny_config

REPO = Path(__file__).resolve().parent.parent
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny trained run (2 epochs), copied by each test that needs a good run."""
    folder = tmp_path_factory.mktemp("template")
    run = Run(folder / "good")
    with run.lock():
        train_run(run, prepare_trainer(run, tiny_config()))
    (run.path / ".lock").unlink()
    return run.path


@pytest.fixture
def good(root, trained) -> Run:
    shutil.copytree(trained, root / "good")
    return Run(root / "good")


def bad_run(root: Path, name: str = "bad") -> Run:
    run = Run(root / name)
    run.path.mkdir(parents=True)
    return run


def listed(root: Path) -> dict[str, str | None]:
    return {info.name: info.error for info in list_runs(root)}


def assert_listed_with_reason(root: Path, name: str, words: str) -> None:
    runs = listed(root)
    assert runs["good"] is None, "the good run beside it still works"
    assert words in runs[name] and "\n" not in runs[name]


# --- 1-3: config.json that cannot be parsed or read ----------------------------------------------------------


def test_a_deeply_nested_config_is_listed_with_a_reason(root, good):
    (bad_run(root).path / "config.json").write_text(DEEP)
    assert_listed_with_reason(root, "bad", "nested too deeply")


def test_a_deeply_nested_history_line_is_skipped_and_counted(good):
    with open(good.path / "history.jsonl", "a") as handle:
        handle.write(DEEP + "\n")
    history = good.history()
    assert history.skipped == 1 and len(history.steps) == 6
    assert list_runs()[0].error is None


def test_a_config_with_a_huge_integer_is_listed_with_a_reason(root, good):
    (bad_run(root).path / "config.json").write_text('{"seed": ' + "9" * 5000 + "}")
    assert_listed_with_reason(root, "bad", "out of range")


def test_a_fifo_config_is_refused_without_waiting_for_a_writer(root, good):
    os.mkfifo(bad_run(root).path / "config.json")
    assert_listed_with_reason(root, "bad", "not a regular file")


def test_a_config_linked_to_dev_zero_is_refused(root, good):
    (bad_run(root).path / "config.json").symlink_to("/dev/zero")
    assert_listed_with_reason(root, "bad", "outside its run folder")


def test_a_config_linked_to_a_system_file_never_quotes_it(root, good, cli):
    (bad_run(root).path / "config.json").symlink_to("/etc/passwd")
    code, out, _ = cli("runs")
    assert code == 0 and "root:" not in out and "outside its run folder" in out


def test_a_large_config_is_refused_by_its_size(root, good):
    (bad_run(root).path / "config.json").write_text(" " * 2_000_000 + "{}")
    assert_listed_with_reason(root, "bad", "too large")


def test_read_json_turns_bad_utf8_into_a_file_error(tmp_path):
    (tmp_path / "x.json").write_bytes(b'{"a": "\xff\xfe"}')
    with pytest.raises(FileError, match="not UTF-8"):
        read_json(tmp_path / "x.json")


# --- 4: bad history lines --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [{"kind": "step"}, {"kind": "epoch"}, {"kind": "step", "step": "5"}, [1, 2], {"kind": "epoch", "epoch": 1.5}],
)
def test_a_malformed_history_record_is_rejected(line):
    assert parse_record(line) is None


def test_a_step_record_with_nan_is_rejected():
    record = StepRecord(1, 0, 1, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 10.0, 1.0).to_dict()
    assert parse_record(record) == StepRecord(**{k: v for k, v in record.items() if k != "kind"})
    assert parse_record({**record, "loss_d": float("nan")}) is None


def test_a_history_without_step_numbers_does_not_break_runs_or_the_timeline_data(root, good, cli):
    with open(good.path / "history.jsonl", "a") as handle:
        handle.write('{"kind": "step"}\n{"kind": "epoch"}\n')
    code, out, _ = cli("runs")
    assert code == 0 and "good" in out
    assert good.last_step().step == 6 and [record.epoch for record in good.epoch_records()] == [1, 2]


def test_a_poisoned_history_then_continue_then_a_new_start_both_work(root, good):
    with open(good.path / "history.jsonl", "a") as handle:
        handle.write('{"kind": "step"}\n')
    session = TrainingSession(str(root))
    assert session.start(None, "good", resume=True, epochs=3)
    session._thread.join(120)
    assert session.snapshot().status == "finished", session.snapshot().error
    assert session.start(tiny_config(epochs=1), "fresh")
    session._thread.join(120)
    assert session.snapshot().status == "finished"


# --- 5: one writer per run -------------------------------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_holder(good):
    with good.lock(), pytest.raises(RunLockedError, match=rf"process {os.getpid()} since \d{{4}}-"), good.lock():
        pass


def test_the_cli_refuses_to_train_a_run_another_process_trains(good, cli):
    with good.lock():
        code, _, err = cli("train", "--run", "good", "--resume", "--epochs", "3")
    assert code == 1 and "is being trained by process" in err
    assert good.epochs() == [1, 2]


def test_the_app_job_refuses_a_run_the_cli_holds(root, good):
    session = TrainingSession(str(root))
    with good.lock():
        assert session.start(None, "good", resume=True, epochs=3)
        session._thread.join(60)
    assert session.snapshot().status == "failed" and "being trained" in session.snapshot().error


def test_a_lock_of_a_killed_process_does_not_block(good):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from gan.checkpoints import Run; "
         f"lock = Run(Path({str(good.path)!r})).lock(); lock.__enter__(); print('held', flush=True); time.sleep(600)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"process {holder.pid}"), good.lock():
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with good.lock():
        assert good.holds_lock()


def test_partial_writes_are_removed_only_under_the_lock(good):
    partial = good.path / ".epoch-0003.safetensors.other.tmp"
    partial.write_bytes(b"in use by another writer")
    assert good.remove_partial_writes() == [] and partial.exists()
    with good.lock():
        assert good.remove_partial_writes() == [partial]


# --- 6-7: safetensors files of the wrong shape, tree, values or size ------------------------------------------


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


def test_a_generator_with_nan_weights_is_refused_and_sample_writes_nothing(good, cli, tmp_path):
    state, _ = load_state(good.epoch_path(2))
    state["G_ema"] = {key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
                      for key, value in state["G_ema"].items()}  # fmt: skip
    write_checkpoint(good.epoch_path(2), state)
    code, _, err = cli("sample", "--run", "good", "--out", tmp_path / "x.npy")
    assert code == 1 and "NaN" in err and not (tmp_path / "x.npy").exists()


def test_a_sparse_30_gb_epoch_file_is_refused_from_its_header(root, good):
    path = good.epoch_path(3)
    shutil.copy(good.epoch_path(2), path)
    with open(path, "r+b") as handle:
        handle.truncate(30 * 2**30)  # sparse: no disk space used
    with pytest.raises(CheckpointError, match="bytes, but its header describes"):
        load_state(path)
    assert "header describes" in listed(root)["good"]


def test_a_header_claiming_a_huge_tensor_is_refused_by_the_models_shapes(good):
    state, _ = load_state(good.epoch_path(2))
    write_checkpoint(
        good.epoch_path(2), state, tensors_change=lambda t: t.update({"G/rest.0.weight": torch.zeros(9, 9)})
    )
    with pytest.raises(CheckpointError, match="do not fit the cdcgan preset"):
        load_state(good.epoch_path(2))


# --- 8: settings that cannot fit in memory ---------------------------------------------------------------------


def test_settings_beyond_the_machines_memory_are_refused_with_the_estimate():
    huge = Config.for_preset("dcgan", width=2048, latent_dim=1024, batch_size=60_000)
    assert estimate_training_bytes(huge)["state"] > 20 * 2**30
    with pytest.raises(ConfigError, match=r"need about [\d.]+ GiB .* machine has 23\.0 GiB: lower"):
        check_memory(huge, available=23 * 2**30)
    check_memory(tiny_config(), available=23 * 2**30)


def test_the_cli_refuses_settings_beyond_the_machines_memory(root, cli):
    code, _, err = cli("train", "--run", "huge", "--preset", "dcgan", "--width", 2048, "--latent-dim", 1024,
                       "--batch-size", 60000, "--epochs", 1)  # fmt: skip
    assert code == 1 and "GiB" in err and not (root / "huge").exists()


# --- 9: resume never restarts over damaged epochs ---------------------------------------------------------------


def test_resume_refuses_when_no_saved_epoch_can_be_loaded(good, cli):
    for epoch in good.epochs():
        good.epoch_path(epoch).write_bytes(b"\0" * 100)
    before = good.epoch_path(1).read_bytes()
    code, _, err = cli("train", "--run", "good", "--resume", "--no-eval")
    assert code == 1 and "cannot be resumed" in err
    assert good.epoch_path(1).read_bytes() == before


# --- 10: appends are all or nothing ------------------------------------------------------------------------------


def test_a_failed_append_is_rolled_back_so_a_retry_logs_once(tmp_path, monkeypatch):
    path = tmp_path / "history.jsonl"
    path.write_text('{"kind": "change", "step": 0, "field": "lr_g", "old": 1, "new": 2}\n')
    real_write = os.write
    calls = []

    def half_then_full(descriptor, data):  # the disk fills after half the bytes
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(descriptor, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        append_lines(path, "a line\n" * 10)
    monkeypatch.setattr(os, "write", real_write)
    append_lines(path, "a line\n" * 10)
    assert path.read_text().count("a line") == 10 and path.read_text().startswith('{"kind": "change"')


# --- 11: fast paths over long histories ------------------------------------------------------------------------


def test_the_last_step_and_the_epochs_are_read_without_the_whole_history(tmp_path):
    path = tmp_path / "history.jsonl"
    lines = []
    for step in range(1, 3001):
        lines.append(json.dumps(StepRecord(step, step // 10, step % 10, 0.1, 0.2, 0.3, 0.4, 1, 1, 5, step).to_dict()))
        if step % 10 == 0:
            lines.append(json.dumps(EpochRecord(step // 10, step, float(step)).to_dict()))
    path.write_text("\n".join(lines) + '\n{"kind": "step", "step": 3001}\n{"torn')
    assert last_step_record(path).step == 3000
    assert [record.epoch for record in read_epoch_records(path)] == list(range(1, 301))
    history = read_history(path)
    assert history.skipped == 2 and history.steps[-1] == last_step_record(path)


def test_the_progression_gif_picks_frames_evenly():
    from views.timeline import evenly

    assert evenly(list(range(1, 3001)), 60)[:2] == [1, 52] and evenly(list(range(1, 3001)), 60)[-1] == 3000
    assert len(evenly(list(range(1, 3001)), 60)) == 60 and evenly([1, 2, 3], 60) == [1, 2, 3]


# --- 12-14: names, links, escapes and repeated settings --------------------------------------------------------


@pytest.mark.parametrize("name", ["my run", "abc\n", "a\x1b[31m", "x/y", "..", "ok\t"])
def test_run_names_with_spaces_or_control_characters_are_refused(name):
    with pytest.raises(CheckpointError, match="is not allowed"):
        Run.at(name)


def test_a_newline_in_a_cli_run_name_creates_nothing(root, cli):
    code, _, err = cli("train", "--run", "abc\n", "--no-eval")
    assert code == 1 and "not allowed" in err
    assert not root.exists() or not list(root.iterdir())


def test_a_symlinked_run_folder_is_listed_and_never_written_through(root, good, tmp_path):
    (root / "linked").symlink_to(good.path)
    assert_listed_with_reason(root, "linked", "is a link")
    with pytest.raises(CheckpointError, match="is a link"):
        Run(root / "linked").config()
    with pytest.raises(CheckpointError, match="is a link"), Run(root / "linked").lock():
        pass


def test_runs_escapes_control_characters_in_names_and_reasons(root, good, cli):
    (root / "evil\x1b[31mred").mkdir()
    code, out, _ = cli("runs")
    assert code == 0 and "\x1b" not in out and "\\x1b[31mred" in out


def test_plain_text_escapes_markdown_links_and_images():
    from views.common import plain

    text = plain("[click](https://evil.example) ![x](https://evil.example/x.png) :red[boo]\nnext")
    assert "](" not in text.replace("\\]\\(", "") and "\\!\\[" in text and "\n" not in text and "\\:red\\[" in text


def test_resume_below_the_trained_epochs_is_refused(good, cli):
    code, _, err = cli("train", "--run", "good", "--resume", "--epochs", 1)
    assert code == 1 and "below what run 'good' has already trained (2 epochs)" in err
    assert good.config().epochs == 2


def test_resume_accepts_settings_equal_to_the_runs_own(good, cli):
    code, out, err = cli("train", "--run", "good", "--resume", "--preset", "cdcgan", "--width", 4, "--epochs", 3,
                         "--no-eval")  # fmt: skip
    assert code == 0, err
    assert good.epochs() == [1, 2, 3]


def test_resume_refuses_a_real_change_naming_both_values(good, cli):
    code, _, err = cli("train", "--run", "good", "--resume", "--preset", "classic")
    assert code == 1 and "preset cannot be changed" in err and "'cdcgan'" in err and "'classic'" in err


# --- the app's three pages with a poisoned run beside a good one ------------------------------------------------


@pytest.fixture
def app(root, good):
    """The app with a good run and a poisoned one (config nested 100,000 deep, history without step numbers)."""
    from tests.test_app import open_app, stop_and_forget

    (bad_run(root).path / "config.json").write_text(DEEP)
    with open(good.path / "history.jsonl", "a") as handle:
        handle.write('{"kind": "step"}\n{"kind": "epoch"}\n')
    stop_and_forget()
    yield open_app(settings=False)
    stop_and_forget()


@pytest.mark.parametrize("page", ["views/train.py", "views/timeline.py", "views/latent.py"])
def test_a_poisoned_run_is_listed_with_its_reason_on_every_page(app, page):
    app.switch_page(page).run()
    assert not app.exception
    assert set(app.selectbox(key="run").options) == {"good", "bad (unreadable)"}
    app.selectbox(key="run").set_value("bad").run()
    assert not app.exception
    assert any("nested too deeply" in caption.value for caption in app.sidebar.caption)


@pytest.mark.parametrize("page", ["views/timeline.py", "views/latent.py"])
def test_the_good_run_beside_a_poisoned_one_works(app, page):
    app.selectbox(key="run").set_value("good").run()
    app.switch_page(page).run()
    assert not app.exception and not app.error
    assert app.get("imgs") or app.get("image")


def test_continue_of_a_run_with_a_poisoned_history_trains_on(app):
    from views import common

    app.selectbox(key="run").set_value("good").run()
    app.number_input(key="continue_epochs_good").set_value(3).run()
    app.button(key="continue").click().run()
    assert not app.exception
    session = common.get_session()
    session._thread.join(120)
    assert session.snapshot().status == "finished", session.snapshot().error
