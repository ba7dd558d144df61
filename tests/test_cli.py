"""The command line: every command, one-line errors for what a user can get wrong, tracebacks for bugs, and
SIGKILL at any moment of `train` losing nothing."""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gan.__main__
import gan.cli.runs
from gan.config import SETTINGS
from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.device import configure_threads
from gan.jobs.runner import prepare_trainer, train_run
from gan.store.checkpoints import load_state
from gan.store.run import Run
from gan.train import Trainer
from tests.conftest import (
    BAD_EPOCH_FILES,
    BAD_RUNS,
    TINY_FLAGS,
    assert_loadable,
    assert_same_weights,
    bad_run,
    steps_logged,
    tiny_config,
    wait_for,
)
from tests.test_checkpoints import write_checkpoint

REPO = Path(__file__).resolve().parent.parent
TINY_RUN = [*TINY_FLAGS, "--steps-per-epoch", "3"]


@pytest.mark.slow  # a process of its own: about 2 s of imports before anything happens
def test_python_m_gan_trains_samples_and_lists(tmp_path):
    """The real entry point, in a process of its own."""

    def gan(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "gan", "--root", str(tmp_path), *args]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)

    trained = gan("train", "--epochs", "2", "--run", "mine", *TINY_RUN)
    assert trained.returncode == 0, trained.stderr
    assert "parameters" in trained.stdout and "finished: epoch 2/2" in trained.stdout
    listing = gan("runs")
    assert listing.returncode == 0 and listing.stderr == ""
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == ["demo", "mode-collapse", "mine"]  # the shipped runs first
    assert rows[2][:4] == ["mine", "cdcgan", "2", "6"]


@pytest.mark.slow  # three processes of their own
def test_a_scored_run_that_ends_at_once_exits_cleanly(tmp_path):
    """The epoch's score is taken on a worker thread: a process ending while it was still inside PyTorch aborted
    ("terminate called without an active exception", exit code 134) in two of three one-step runs."""
    flags = ["--preset", "cdcgan", "--epochs", "1", "--steps-per-epoch", "1"]  # the tiny networks end too soon
    for attempt in range(3):
        command = [sys.executable, "-m", "gan", "--root", str(tmp_path), "train", "--run", f"r{attempt}", *flags]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-500:]
        assert "epoch 1 scored, FID" in done.stdout and "terminate called" not in done.stderr
        took = Run.at(f"r{attempt}", tmp_path).history().epochs[0].score_seconds
        assert f"scoring: 1 of 1 epochs scored beside the training in {took:.1f} s" in done.stdout


def test_sample_writes_a_png_grid_or_an_array(root, cli, tmp_path):
    run = Run.at("mine")
    train_run(run, prepare_trainer(run, tiny_config()))
    code, out, _ = cli("sample", "--run", "mine", "--digit", "7", "--n", "16", "--out", tmp_path / "s.png")
    assert code == 0 and "wrote 16 samples from mine epoch 2" in out
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    code, _, _ = cli("sample", "--run", "mine", "--n", "30", "--out", tmp_path / "s.npy")
    array = np.load(tmp_path / "s.npy")
    assert code == 0 and array.shape == (30, 28, 28) and array.min() >= 0 and array.max() <= 1


def test_resume_with_more_epochs(root, cli):
    assert cli("train", "--epochs", "1", "--run", "grow", *TINY_RUN)[0] == 0
    code, out, _ = cli("train", "--resume", "--run", "grow", "--epochs", "2")
    assert code == 0 and "finished: epoch 2/2" in out
    assert Run.at("grow").epochs() == [1, 2]


def test_train_help_lists_every_setting_with_a_help_line(capsys):
    with pytest.raises(SystemExit):
        gan.__main__.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for setting in SETTINGS.values():
        assert f"{setting.cli_flag} " in text and setting.help.split(";")[0] in text
    assert "{auto,cpu,cuda}" in text


def test_a_bug_is_not_a_user_error_and_shows_its_traceback(root, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(gan.cli.runs, "iter_all_runs", broken)
    with pytest.raises(ValueError, match="a bug"):
        gan.__main__.main(["runs"])


# --- damaged runs ---


@pytest.mark.parametrize("kind", [*BAD_EPOCH_FILES, *BAD_RUNS])
def test_sample_of_a_bad_run_is_one_line_naming_the_file(zoo, cli, kind):
    root, marker = zoo
    out = root.parent / f"{kind}.png"
    code, _, err = cli("--root", root, "sample", "--run", kind, "--out", out)
    expected = "epoch-0003.safetensors" if kind in BAD_EPOCH_FILES else BAD_RUNS[kind]
    if kind == "empty-folder":
        expected = "run 'empty-folder' has no saved epochs yet"  # sample looks for epochs before the config
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ") and expected in err
    assert not out.exists() and not marker.exists()


def test_runs_lists_bad_runs_with_reasons_beside_good_ones(zoo, cli):
    root, marker = zoo
    code, out, err = cli("--root", root, "runs")
    assert code == 0 and err == ""
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert lines["good"].split()[1:3] == ["cdcgan", "2"] and len(lines["good"].split()) == 6, "no note"
    for kind in (*BAD_RUNS, *(BAD_EPOCH_FILES.keys() - {"wrong-shapes"})):
        assert (BAD_RUNS.get(kind) or "epoch-0003.safetensors").split(":")[0] in lines[kind]
    assert not marker.exists()


# --- bad flags ---

BAD_TRAIN_FLAGS = [
    (["--epochs", "0"], "epochs=0 is not allowed: a whole number from 1 to 10000"),
    (["--epochs", "2.5"], "argument --epochs: epochs='2.5' is not allowed: a whole number from 1 to"),
    (["--batch-size", "-1"], "batch_size=-1 is not allowed: a whole number from 1 to 60000"),
    (["--batch-size", "big"], "argument --batch-size: batch_size='big' is not allowed"),
    (["--lr-g", "abc"], "argument --lr-g: lr_g='abc' is not allowed: a number in (0.0, 1.0]"),
    (["--lr-g", "nan"], "argument --lr-g: lr_g='nan' is not allowed: a number in (0.0, 1.0]"),
    (["--lr-d", "0"], "lr_d=0.0 is not allowed: a number in (0.0, 1.0]"),
    (["--lr-d", "inf"], "argument --lr-d: lr_d='inf' is not allowed: a number in (0.0, 1.0]"),
    (["--beta1", "-0.5"], "beta1=-0.5 is not allowed: a number in [0.0, 1.0)"),
    (["--beta2", "1"], "beta2=1.0 is not allowed: a number in [0.0, 1.0)"),
    (["--ema-decay", "1.5"], "ema_decay=1.5 is not allowed: a number in [0.0, 1.0)"),
    (["--latent-dim", "0"], "latent_dim=0 is not allowed: a whole number from 1 to 1024"),
    (["--width", "99999"], "width=99999 is not allowed: a whole number from 1 to 2048"),
    (["--seed", "-1"], "seed=-1 is not allowed: a whole number from 0 to 2147483647"),
    (["--checkpoint-every", "0"], "checkpoint_every=0 is not allowed: a whole number from 1 to 10000"),
    (["--steps-per-epoch", "0"], "steps_per_epoch=0 is not allowed: a whole number from 1 to 1000000"),
    (["--loss", "foo"], "argument --loss: invalid choice: 'foo'"),
    (["--preset", "vae"], "argument --preset: invalid choice: 'vae'"),
    (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["--precision", "fp8"], "argument --precision: invalid choice: 'fp8'"),
    (["--max-minutes", "0"], "--max-minutes=0.0 is not allowed: a number of minutes above 0"),
    (["--max-minutes", "-1"], "--max-minutes=-1.0 is not allowed: a number of minutes above 0"),
    (["--max-minutes", "nan"], "argument --max-minutes: --max-minutes='nan' is not allowed: a number of minutes"),
    (["--run", "../x"], "run name '../x' is not allowed"),
    (["--run", "abc\n"], "run name 'abc\\\\n' is not allowed"),  # the name is shown escaped
]
BAD_RESUME_FLAGS = [
    (["--resume"], "--resume needs --run NAME"),
    (["--resume", "--run", "nothing"], "there is no run 'nothing' to resume"),
    (["--resume", "--run", "../x"], "run name '../x' is not allowed"),
    (["--resume", "--run", "x", "--batch-size", "-1"], "there is no run 'x' to resume"),
    (["--resume", "--run", "x", "--lr-g", "0.1"], "there is no run 'x' to resume"),
]


@pytest.mark.parametrize("flags, message", BAD_TRAIN_FLAGS + BAD_RESUME_FLAGS)
def test_bad_train_flag_is_named_with_what_is_allowed_and_creates_nothing(tmp_path, cli, flags, message):
    root = tmp_path / "checkpoints"
    elsewhere = {path: path.exists() for path in (tmp_path / "x", tmp_path.parent / "b", Path("/tmp/x"))}
    resume = "--resume" in flags
    run = [] if "--run" in flags or resume else ["--run", "bad"]
    tiny = (
        [] if resume else [*TINY_FLAGS, "--steps-per-epoch", "1", "--epochs", "1"]
    )  # a flag let through trains briefly
    code, out, err = cli("--root", root, "train", *run, *tiny, *flags)
    assert message in err
    if "argument " in message:
        assert code == 2 and err.splitlines()[-1].startswith("python -m gan train: error: argument")
    else:
        assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert not root.exists(), "no run folder is created"
    assert {path: path.exists() for path in elsewhere} == elsewhere


def test_resume_with_a_bad_epoch_count_changes_nothing(root, cli):
    run = Run.at("kept")
    train_run(run, prepare_trainer(run, tiny_config(epochs=1)))
    before = {path.name: path.read_bytes() for path in run.path.iterdir()}
    code, _, err = cli("train", "--resume", "--run", "kept", "--epochs", "0")
    assert code == 1 and err == "error: epochs=0 is not allowed: a whole number from 1 to 10000\n"
    assert {path.name: path.read_bytes() for path in run.path.iterdir()} == before


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n", "0"], "--n=0 is not allowed: a whole number from 1 to 10000"),
        (["--n", "10001"], "--n=10001 is not allowed"),
        (["--n", "many"], "argument --n: 'many' is not allowed: a whole number"),
        (["--digit", "12"], "digit=12 is not allowed: a digit from 0 to 9"),
        (["--epoch", "9"], "run 'good' has no saved epoch 9 (saved: [1, 2])"),
        (["--out", "samples.jpg"], "must end in .png or .npy"),
        (["--out", "missing-folder/samples.png"], "No such file or directory"),
    ],
)
def test_bad_sample_flag_is_named_with_what_is_allowed(zoo, cli, tmp_path, monkeypatch, flags, message):
    root, _ = zoo
    monkeypatch.chdir(tmp_path)
    defaults = {"--run": "good", "--out": "samples.png"}
    given = dict(zip(flags[::2], flags[1::2]))
    code, _, err = cli("--root", root, "sample", *[item for pair in {**defaults, **given}.items() for item in pair])
    assert code != 0 and message in err
    assert not list(tmp_path.iterdir()), "nothing is written"


# --- faults during training ---


def test_non_finite_loss_is_one_line(root, cli, poisoned):
    poisoned(math.nan)
    code, _, err = cli("train", "--run", "nan", *TINY_RUN, "--epochs", "3")
    assert code == 1 and err.splitlines()[-1].startswith("error: the D loss became nan at step 4")
    assert Run.at("nan").epochs() == [1]


def test_failed_save_is_one_line_naming_the_file_and_keeps_the_saved_epochs(root, cli, disk_full):
    disk_full["epoch-0002.safetensors"] = 1
    code, _, err = cli("train", "--run", "full", *TINY_RUN, "--epochs", "3")
    assert code == 1
    assert err.splitlines()[-1] == f"error: [Errno 28] No space left on device: '{Run.at('full').epoch_path(2)}'"
    assert Run.at("full").epochs() == [1]
    assert_loadable(Run.at("full"))
    code, out, _ = cli("train", "--resume", "--run", "full")
    assert code == 0 and "finished: epoch 3/3" in out and Run.at("full").epochs() == [1, 2, 3]


# --- SIGKILL at any moment ---

PROCESS_WAIT = 1800  # seconds: only a hung process takes this long; a shared CPU can make a run take minutes
KILL_EPOCHS, KILL_STEPS = 120, 2  # two steps an epoch: files are written constantly; enough epochs to outlast a kill
KILL_FLAGS = [*TINY_FLAGS, "--steps-per-epoch", str(KILL_STEPS), "--epochs", str(KILL_EPOCHS)]
# `python -m gan` that SIGKILLs itself at its n-th fsync: inside a write, after the data, before the rename.
KILLED_AT_FSYNC = """
import os, signal, sys
left, real_fsync = int(os.environ["KILL_AT_FSYNC"]), os.fsync
def fsync(fd):
    global left
    left -= 1
    if left == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)
os.fsync = fsync
from gan.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def start_training(root: Path, log: Path, kill_at_fsync: int = 0) -> subprocess.Popen:
    """Train run "killed" in a new process: a new run, or --resume once its config is saved."""
    resume = (root / "killed" / "config.json").is_file()
    command = ["--root", root, "train", "--run", "killed", *(["--resume"] if resume else KILL_FLAGS)]
    program = ["-c", KILLED_AT_FSYNC] if kill_at_fsync else ["-m", "gan"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "KILL_AT_FSYNC": str(kill_at_fsync)}
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, *program, *map(str, command)], cwd=REPO, env=env, stdout=out, stderr=subprocess.DEVNULL
        )


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_resume_matches_an_uninterrupted_run(tmp_path):
    configure_threads()  # as the CLI does, so the reference computes with the same thread count
    config = tiny_config(steps_per_epoch=KILL_STEPS, epochs=KILL_EPOCHS)
    reference = Trainer(config, load_mnist(DEFAULT_DATA_DIR))
    assert reference.run() == "finished"

    root, log, rng = tmp_path / "checkpoints", tmp_path / "stdout.txt", random.Random(7)
    run = Run.at("killed", root)
    kills, temporary_files = 0, set()
    for how in ("time", "write", "time", "write"):
        if how == "write":  # SIGKILL inside the n-th write of this process (history, epoch file, grid)
            process = start_training(root, log, kill_at_fsync=rng.randint(3, 8))
            process.wait(timeout=PROCESS_WAIT)
        else:  # SIGKILL from outside, at a random moment once training has made progress (however loaded the CPU)
            saved, process = len(run.epochs()), start_training(root, log)
            wait_for(lambda: len(run.epochs()) > saved or process.poll() is not None, timeout=PROCESS_WAIT)  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.6))
            process.kill()
            process.wait(timeout=PROCESS_WAIT)
        assert process.returncode == -signal.SIGKILL, log.read_text()
        kills += 1
        assert_loadable(run)
        run.history()  # a torn last line is skipped, never an error
        listed = [run.epoch_path(epoch).name for epoch in run.epochs()]
        assert listed == sorted(path.name for path in run.path.glob("epoch-*.safetensors")), "no .tmp is an epoch"
        temporary_files |= {path.name for path in run.path.glob(".*.tmp")}
    assert run.epochs()[-1] < KILL_EPOCHS, "the kills left training to resume"
    assert temporary_files, "at least one kill landed inside a write"

    process = start_training(root, log)
    assert process.wait(timeout=PROCESS_WAIT) == 0, log.read_text()
    assert f"finished: epoch {KILL_EPOCHS}/{KILL_EPOCHS}" in log.read_text()
    assert run.config() == config
    assert run.epochs() == list(range(1, KILL_EPOCHS + 1))
    assert_loadable(run)
    assert not list(run.path.glob(".*.tmp")), "resume removes the leftovers of killed writes"
    assert steps_logged(run) == list(range(1, KILL_EPOCHS * KILL_STEPS + 1)), "every step logged once"
    assert_same_weights(reference.state_dict(), run.load_epoch(KILL_EPOCHS))
    print(f"\n{kills} SIGKILLs, temporary files left by killed writes: {sorted(temporary_files)}")


# --- damaged, locked and mismatched runs ---


def test_a_config_linked_to_a_system_file_never_quotes_it(root, good, cli):
    (bad_run(root).path / "config.json").symlink_to("/etc/passwd")
    code, out, _ = cli("runs")
    assert code == 0 and "root:" not in out and "outside its run folder" in out


def test_runs_escapes_control_characters_in_names_and_reasons(root, good, cli):
    (root / "evil\x1b[31mred").mkdir()
    code, out, _ = cli("runs")
    assert code == 0 and "\x1b" not in out and "\\x1b[31mred" in out


def test_the_cli_refuses_to_train_a_run_another_process_trains(good, cli):
    with good.lock():
        code, _, err = cli("train", "--run", "good", "--resume", "--epochs", "3")
    assert code == 1 and "is being trained by process" in err
    assert good.epochs() == [1, 2]


def test_a_generator_with_nan_weights_is_refused_and_sample_writes_nothing(good, cli, tmp_path):
    state, _ = load_state(good.epoch_path(2))
    state["G_ema"] = {key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
                      for key, value in state["G_ema"].items()}  # fmt: skip
    write_checkpoint(good.epoch_path(2), state)
    code, _, err = cli("sample", "--run", "good", "--out", tmp_path / "x.npy")
    assert code == 1 and "NaN" in err and not (tmp_path / "x.npy").exists()


def test_the_cli_refuses_settings_beyond_the_machines_memory(root, cli):
    code, _, err = cli("train", "--run", "huge", "--preset", "dcgan", "--width", 2048, "--latent-dim", 1024,
                       "--batch-size", 60000, "--epochs", 1)  # fmt: skip
    assert code == 1 and "GiB" in err and not (root / "huge").exists()


def test_resume_refuses_when_no_saved_epoch_can_be_loaded(good, cli):
    for epoch in good.epochs():
        good.epoch_path(epoch).write_bytes(b"\0" * 100)
    before = good.epoch_path(1).read_bytes()
    code, _, err = cli("train", "--run", "good", "--resume", "--no-eval")
    assert code == 1 and "cannot be resumed" in err
    assert good.epoch_path(1).read_bytes() == before


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
