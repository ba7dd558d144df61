"""Faults and bad input: SIGKILL at any moment, damaged or foreign files, out-of-range settings, non-finite
losses, failed writes, racing commands and the app's network exposure. Nothing may be lost, nothing may crash."""

from __future__ import annotations

import errno
import io
import math
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from gan.__main__ import main
from gan.checkpoints import CheckpointError, Run, list_runs, load_generator, load_state, save_state
from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.history import StepRecord
from gan.latent import sample
from gan.session import HISTORY_POINTS, ThinnedHistory, TrainingSession, prepare_trainer, train_run
from gan.train import Trainer, TrainingDiverged, configure_threads
from tests.conftest import tiny_config

REPO = Path(__file__).resolve().parent.parent
TINY = ["--width", "4", "--batch-size", "16", "--latent-dim", "8", "--no-eval"]


@pytest.fixture
def cli(capsys):
    """`python -m gan ...` in this process (no 2 s torch import): returns (exit code, stdout, stderr)."""

    def call(*argv) -> tuple[int, str, str]:
        handler = signal.getsignal(signal.SIGINT)  # train installs its own Ctrl-C handler
        try:
            code = main([str(arg) for arg in argv])
        except SystemExit as exit:  # argparse's usage errors
            code = exit.code
        finally:
            signal.signal(signal.SIGINT, handler)
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return call


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def assert_loadable(run: Run) -> None:
    """Every listed epoch is a real, whole checkpoint file of that epoch with finite weights."""
    for epoch in run.epochs():
        path = run.epoch_path(epoch)
        assert path.is_file() and not path.name.startswith(".")
        state, _ = load_state(path)
        assert state["position"]["epoch"] == epoch
        assert all(torch.isfinite(value).all() for value in state["G_ema"].values())


def assert_same_weights(expected: dict, actual: dict) -> None:
    for part in ("G", "G_ema", "D"):
        assert expected[part].keys() == actual[part].keys()
        for key, value in expected[part].items():
            assert torch.equal(value, actual[part][key]), f"{part}/{key} differs"


def steps_logged(run: Run) -> list[int]:
    return [record.step for record in run.history().steps]


# --- 1. SIGKILL at any moment ----------------------------------------------------------------------------------

KILL_EPOCHS, KILL_STEPS = 120, 2  # two steps an epoch: files are written constantly; enough epochs to outlast a kill
KILL_FLAGS = [*TINY, "--steps-per-epoch", str(KILL_STEPS), "--epochs", str(KILL_EPOCHS)]
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
            process.wait(timeout=120)
        else:  # SIGKILL from outside, at a random moment once training has made progress (however loaded the CPU)
            saved, process = len(run.epochs()), start_training(root, log)
            wait_for(lambda: len(run.epochs()) > saved or process.poll() is not None, timeout=120)  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.6))
            process.kill()
            process.wait(timeout=60)
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
    assert process.wait(timeout=120) == 0, log.read_text()
    assert f"finished: epoch {KILL_EPOCHS}/{KILL_EPOCHS}" in log.read_text()
    assert run.config() == config
    assert run.epochs() == list(range(1, KILL_EPOCHS + 1))
    assert_loadable(run)
    assert not list(run.path.glob(".*.tmp")), "resume removes the leftovers of killed writes"
    assert steps_logged(run) == list(range(1, KILL_EPOCHS * KILL_STEPS + 1)), "every step logged once"
    assert_same_weights(reference.state_dict(), run.load_epoch(KILL_EPOCHS))
    print(f"\n{kills} SIGKILLs, temporary files left by killed writes: {sorted(temporary_files)}")


def test_leftover_temporary_files_are_ignored_and_removed_on_resume(root):
    run = Run.at("leftovers")
    train_run(run, prepare_trainer(run, tiny_config()))
    partial = run.path / ".epoch-0003.safetensors.k1ll3d.tmp"
    partial.write_bytes(run.epoch_path(2).read_bytes()[:500])  # what a kill in mid-write leaves
    assert run.epochs() == [1, 2] and list_runs()[0].error is None
    assert load_generator(run)[2] == 2
    with run.lock():
        assert prepare_trainer(run, resume=True, epochs=3).step == 6
    assert not partial.exists()


# --- 2. Bad files ----------------------------------------------------------------------------------------------


class Evil:
    """Unpickling this creates `marker`: proof that a loader executed the file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# Runs copied from a good cdcgan run (epochs 1-2) with a bad epoch-0003.safetensors, and what the refusal says.
BAD_EPOCH_FILES = {
    "truncated": "truncated or corrupt",
    "zero-bytes": "empty|truncated or corrupt",
    "random-bytes": "truncated or corrupt",
    "pickle": "truncated or corrupt",
    "torch-save": "truncated or corrupt",
    "other-preset": "holds a model with preset classic",  # a classic run's epoch file copied in
    "wrong-shapes": "do not fit the cdcgan preset",  # another preset's tensors under this run's metadata
}
BAD_RUNS = {
    "config-not-json": "config.json",
    "config-binary": "config.json",
    "config-unknown-field": "config.json: colour='red' is not allowed: unknown setting",
    "config-out-of-range": "config.json: epochs=-3 is not allowed",
    "no-epochs": "no saved epochs yet",
    "empty-folder": "config.json: cannot read",
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> tuple[Path, Path]:
    """A root holding two good runs and one run per kind of bad file; returns it and the pickle's marker path."""
    root = tmp_path_factory.mktemp("zoo") / "checkpoints"
    marker = root.parent / "pickle-was-executed"
    for name, preset in (("good", "cdcgan"), ("classic", "classic")):
        run = Run.at(name, root)
        train_run(run, prepare_trainer(run, tiny_config(preset)))
    good, classic = Run.at("good", root), Run.at("classic", root)
    whole, noise = good.epoch_path(2).read_bytes(), random.Random(0).randbytes(4096)
    saved_by_torch = io.BytesIO()
    torch.save(Evil(marker), saved_by_torch)
    contents = {
        "truncated": whole[: len(whole) // 2],
        "zero-bytes": b"",
        "random-bytes": noise,
        "pickle": pickle.dumps(Evil(marker)),
        "torch-save": saved_by_torch.getvalue(),
        "other-preset": classic.epoch_path(2).read_bytes(),
    }
    for kind in BAD_EPOCH_FILES:
        shutil.copytree(good.path, root / kind)
        if kind in contents:
            Run.at(kind, root).epoch_path(3).write_bytes(contents[kind])
    save_state(Run.at("wrong-shapes", root).epoch_path(3), classic.load_epoch(2), good.config())

    configs = {
        "config-not-json": b"preset: cdcgan\n",
        "config-binary": noise,
        "config-unknown-field": good.config().to_json().replace("{", '{"colour": "red",', 1).encode(),
        "config-out-of-range": good.config().to_json().replace('"epochs": 2', '"epochs": -3').encode(),
    }
    for kind, text in configs.items():
        shutil.copytree(good.path, root / kind)
        (root / kind / "config.json").write_bytes(text)
    Run.at("no-epochs", root).path.mkdir()
    Run.at("no-epochs", root).write_config(good.config())
    Run.at("empty-folder", root).path.mkdir()
    shutil.copytree(good.path, root / "history-binary")
    (root / "history-binary" / "history.jsonl").write_bytes(noise)
    return root, marker


@pytest.mark.parametrize("kind", BAD_EPOCH_FILES)
def test_bad_epoch_file_is_refused_by_name_and_the_older_epochs_still_work(zoo, kind):
    root, marker = zoo
    run = Run.at(kind, root)
    with pytest.raises(CheckpointError, match=f"epoch-0003.safetensors: .*({BAD_EPOCH_FILES[kind]})"):
        load_generator(run)
    assert load_generator(run, 2)[2] == 2
    assert prepare_trainer(run, resume=True).step == 6, "resume falls back to the newest good epoch"
    assert not marker.exists(), "nothing in a file is ever executed"


@pytest.mark.parametrize("kind", [*BAD_EPOCH_FILES, *BAD_RUNS])
def test_cli_sample_of_a_bad_run_is_one_line_naming_the_file(zoo, cli, kind):
    root, marker = zoo
    out = root.parent / f"{kind}.png"
    code, _, err = cli("--root", root, "sample", "--run", kind, "--out", out)
    expected = "epoch-0003.safetensors" if kind in BAD_EPOCH_FILES else BAD_RUNS[kind]
    if kind == "empty-folder":
        expected = "run 'empty-folder' has no saved epochs yet"  # sample looks for epochs before the config
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ") and expected in err
    assert not out.exists() and not marker.exists()


def test_list_runs_gives_each_bad_run_its_reason_and_good_runs_still_work(zoo, cli):
    root, marker = zoo
    runs = {info.name: info for info in list_runs(root)}
    assert len(runs) == 2 + len(BAD_EPOCH_FILES) + len(BAD_RUNS) + 1
    for kind in ("good", "classic", "history-binary"):
        assert runs[kind].error is None and runs[kind].epochs == (1, 2)
    assert runs["history-binary"].last_record is None, "a garbled history is skipped, not fatal"
    for kind, reason in BAD_RUNS.items():
        assert reason in runs[kind].error
    for kind in BAD_EPOCH_FILES.keys() - {"wrong-shapes"}:  # the listing reads headers only, never tensors
        assert "epoch-0003.safetensors: " in runs[kind].error and runs[kind].epochs == (1, 2, 3)
    for good in ("good", "classic", "history-binary"):
        code, out, _ = cli("--root", root, "sample", "--run", good, "--n", "4", "--out", root.parent / f"{good}.npy")
        assert code == 0 and "wrote 4 samples" in out
    assert not marker.exists()


def test_runs_command_lists_bad_runs_with_reasons_beside_good_ones(zoo):
    root, marker = zoo
    listing = subprocess.run(
        [sys.executable, "-m", "gan", "--root", str(root), "runs"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0 and listing.stderr == ""
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert lines["good"].split()[1:3] == ["cdcgan", "2"] and len(lines["good"].split()) == 6, "no note"
    for kind in (*BAD_RUNS, *(BAD_EPOCH_FILES.keys() - {"wrong-shapes"})):
        assert (BAD_RUNS.get(kind) or "epoch-0003.safetensors").split(":")[0] in lines[kind]
    assert not marker.exists()


# --- 3. Bad input ----------------------------------------------------------------------------------------------

BAD_TRAIN_FLAGS = [
    (["--epochs", "0"], "epochs=0 is not allowed: a whole number from 1 to 10000"),
    (["--epochs", "2.5"], "argument --epochs: invalid int value: '2.5'"),
    (["--batch-size", "-1"], "batch_size=-1 is not allowed: a whole number from 1 to 60000"),
    (["--batch-size", "big"], "argument --batch-size: invalid int value"),
    (["--lr-g", "abc"], "argument --lr-g: invalid float value: 'abc'"),
    (["--lr-g", "nan"], "lr_g=nan is not allowed: a number in (0.0, 1.0]"),
    (["--lr-d", "0"], "lr_d=0.0 is not allowed: a number in (0.0, 1.0]"),
    (["--lr-d", "inf"], "lr_d=inf is not allowed: a number in (0.0, 1.0]"),
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
    (["--max-minutes", "nan"], "--max-minutes=nan is not allowed: a number of minutes above 0"),
    (["--run", "../x"], "run name '../x' is not allowed"),
    (["--run", "/tmp/x"], "run name '/tmp/x' is not allowed"),
    (["--run", "a/../../b"], "run name 'a/../../b' is not allowed"),
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
    tiny = [] if resume else [*TINY, "--steps-per-epoch", "1", "--epochs", "1"]  # a flag let through trains briefly
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
        (["--n", "many"], "argument --n: invalid int value"),
        (["--digit", "12"], "digit=12 is not allowed: a digit from 0 to 9"),
        (["--epoch", "9"], "run 'good' has no saved epoch 9 (saved: [1, 2])"),
        (["--out", "samples.jpg"], "must end in .png or .npy"),
        (["--out", "missing-folder/samples.png"], "No such file or directory"),
        (["--run", "../good"], "run name '../good' is not allowed"),
        (["--run", "/tmp/good"], "run name '/tmp/good' is not allowed"),
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


# --- 4. Non-finite losses --------------------------------------------------------------------------------------


@pytest.fixture
def poisoned(monkeypatch):
    """From step `after` + 1 on, the real batch is multiplied by `factor` (NaN or inf)."""

    def poison(factor: float, after: int = 3) -> None:
        train_step = Trainer.train_step

        def poisoned_step(self, real, labels):
            return train_step(self, real * factor if self.step >= after else real, labels)

        monkeypatch.setattr(Trainer, "train_step", poisoned_step)

    return poison


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


def test_non_finite_loss_in_the_cli_is_one_line(root, cli, poisoned):
    poisoned(math.nan)
    code, _, err = cli("train", "--run", "nan", *TINY, "--steps-per-epoch", "3", "--epochs", "3")
    assert code == 1 and err.splitlines()[-1].startswith("error: the D loss became nan at step 4")
    assert Run.at("nan").epochs() == [1]


def test_non_finite_loss_fails_the_session_and_says_what_was_kept(root, poisoned):
    poisoned(math.nan)
    session = TrainingSession()
    assert session.start(tiny_config(epochs=3), "diverged")
    wait_for(lambda: not session.snapshot().active)
    snapshot = session.snapshot()
    assert snapshot.status == "failed"
    assert "D loss became nan at step 4" in snapshot.error and "Kept: epochs up to 1." in snapshot.error
    assert Run.at("diverged").epochs() == [1]
    assert_loadable(Run.at("diverged"))


# --- 5. Disk full ----------------------------------------------------------------------------------------------


@pytest.fixture
def disk_full(monkeypatch) -> dict[str, int]:
    """Failures to inject by file name: the rename of a finished write raises ENOSPC, with no file name, as a
    write to a full disk does."""
    failures: dict[str, int] = {}
    real_replace = os.replace

    def replace(source, target, *args, **kwargs):
        if failures.get(Path(target).name, 0) > 0:
            failures[Path(target).name] -= 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return failures


def test_failed_save_pauses_the_session_and_resume_retries_it(root, disk_full):
    epoch_file = "epoch-0002.safetensors"
    disk_full[epoch_file] = 2
    run, session = Run.at("full"), TrainingSession()
    assert session.start(tiny_config(epochs=3), "full")
    for left in (1, 0):  # it fails twice: Resume retries, fails again and pauses again
        wait_for(lambda left=left: session.snapshot().status == "paused" and disk_full[epoch_file] == left)
        snapshot = session.snapshot()
        assert "could not save" in snapshot.error and "No space left on device" in snapshot.error
        assert run.epochs() == [1] and not list(run.path.glob(".*.tmp"))
        assert_loadable(run)
        session.resume()
    wait_for(lambda: not session.snapshot().active)
    assert session.snapshot().status == "finished" and session.snapshot().error is None
    assert run.epochs() == [1, 2, 3] and session.snapshot().saved_epochs == (1, 2, 3)
    assert_loadable(run)
    assert steps_logged(run) == list(range(1, 10))
    assert [record.epoch for record in run.history().epochs] == [1, 2, 3]


def test_failed_save_in_the_cli_is_one_line_naming_the_file_and_keeps_the_saved_epochs(root, cli, disk_full):
    disk_full["epoch-0002.safetensors"] = 1
    code, _, err = cli("train", "--run", "full", *TINY, "--steps-per-epoch", "3", "--epochs", "3")
    assert code == 1
    assert err.splitlines()[-1] == f"error: [Errno 28] No space left on device: '{Run.at('full').epoch_path(2)}'"
    assert Run.at("full").epochs() == [1]
    assert_loadable(Run.at("full"))
    code, out, _ = cli("train", "--resume", "--run", "full")
    assert code == 0 and "finished: epoch 3/3" in out and Run.at("full").epochs() == [1, 2, 3]


# --- 6. Concurrency --------------------------------------------------------------------------------------------


def test_rapid_starts_from_two_threads_start_exactly_one_job(root):
    session, barrier, started = TrainingSession(), threading.Barrier(2), []

    def press_start(thread: int) -> None:
        barrier.wait()
        started.extend(session.start(tiny_config(epochs=1000), f"race-{thread}-{i}") for i in range(5))

    threads = [threading.Thread(target=press_start, args=(thread,)) for thread in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: session.snapshot().status == "running")
    session.stop(wait=10)
    assert len(started) == 10 and started.count(True) == 1
    assert [path.name for path in root.iterdir()] == [session.snapshot().run_name]
    assert not session.is_alive()


def test_random_pause_resume_stop_and_continue_from_two_threads_never_deadlock(root):
    session, errors = TrainingSession(publish_interval=0.0), []
    assert session.start(tiny_config(epochs=200), "storm")
    actions = {
        "pause": session.pause,
        "resume": session.resume,
        "stop": session.stop,
        "continue": lambda: session.start(None, "storm", resume=True),
    }

    def press_buttons(seed: int) -> None:
        rng, deadline = random.Random(seed), time.monotonic() + 3.0
        try:
            while time.monotonic() < deadline:
                actions[rng.choices(list(actions), weights=(4, 4, 1, 2))[0]]()
                time.sleep(rng.uniform(0.0, 0.03))
        except Exception as error:  # any error fails the test below
            errors.append(error)

    threads = [threading.Thread(target=press_buttons, args=(seed,)) for seed in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads) and not errors
    session.stop(wait=5)
    assert not session.is_alive() and session.snapshot().status in ("stopped", "finished")
    assert_loadable(Run.at("storm"))


def test_a_pause_is_never_undone_by_the_trainer_publishing_a_step(root, monkeypatch):
    import dataclasses

    import gan.session

    def slow_replace(snapshot, **changes):  # widen the trainer's read-modify-write of the snapshot
        time.sleep(0.003)
        return dataclasses.replace(snapshot, **changes)

    monkeypatch.setattr(gan.session, "replace", slow_replace)
    session = TrainingSession(publish_interval=0.0)
    assert session.start(tiny_config(epochs=1000), "pausing")
    wait_for(lambda: session.snapshot().status == "running")
    for _ in range(15):
        session.pause()
        time.sleep(0.03)
        assert session.snapshot().status == "paused"
        session.resume()
        time.sleep(0.03)
    session.stop(wait=10)
    assert not session.is_alive()


def test_thinned_history_stays_bounded_and_spans_the_whole_run_evenly():
    history = ThinnedHistory()
    for step in range(1, 100_001):
        history.add(StepRecord(step, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    steps = [record.step for record in history.records]
    gaps = {later - earlier for earlier, later in zip(steps, steps[1:])}
    assert HISTORY_POINTS // 2 <= len(steps) <= HISTORY_POINTS
    assert len(gaps) == 1, "evenly spaced"
    assert steps[0] <= gaps.pop() and 100_000 - steps[-1] < history.stride, "from the start to the latest step"


# --- 7. Exposure -----------------------------------------------------------------------------------------------


def test_the_app_serves_this_machine_only():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    settings = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert settings["server"]["address"] in ("localhost", "127.0.0.1", "::1")
