"""Shared helpers and fixtures: tiny configs that train in a fraction of a second, a checkpoint root per test, the
CLI in this process, waiting on a condition, and a judge cache of this test session's own.

The judge cache is a temporary folder made for the session ($GAN_STUDIO_CACHE, inherited by the CLI and app servers
the tests start): the tests read the judges' shipped weights and never write into the repository, so
the suite runs from a read-only checkout.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import pickle
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import gan.cli.scores
import gan.jobs.runner
import gan.scoring.metrics
from gan.config import Config
from gan.jobs.runner import prepare_trainer, train_run
from gan.store.checkpoints import load_state, save_state
from gan.store.listing import list_runs
from gan.store.run import Run
from gan.train import Trainer

# CLI flags of a model that trains in a fraction of a second (the epochs and batches per epoch are the test's)
TINY_FLAGS = ["--width", "4", "--batch-size", "16", "--latent-dim", "8", "--no-eval"]
WAIT = 60.0  # seconds: generous, for a CPU shared with other work; a test only waits this long when it fails
DEEP = "[" * 100_000 + "]" * 100_000  # JSON nested deeper than any parser's recursion limit


def pytest_configure(config: pytest.Config) -> None:
    config.judge_cache = tempfile.mkdtemp(prefix="gan-studio-judge-")
    os.environ["GAN_STUDIO_CACHE"] = config.judge_cache


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(getattr(config, "judge_cache", ""), ignore_errors=True)


def tiny_config(preset: str = "cdcgan", **changes) -> Config:
    """A model a few hundred parameters wide, three batches an epoch: for behaviour, not quality."""
    settings = dict(width=4, batch_size=16, steps_per_epoch=3, epochs=2, evaluate=False, latent_dim=8)
    settings.update(changes)
    return Config.for_preset(preset, **settings)


def wait_for(condition: Callable[[], object], timeout: float = WAIT, every: float = 0.02) -> None:
    """Return once the condition holds; fail if it has not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


@pytest.fixture(autouse=True, scope="session")
def computed_once():
    """Trainers made by the tests share one parsed copy of MNIST (reading it is tested in test_data.py): parsing the
    60,000 digits again for each of a hundred tiny runs would double the suite's time. Nothing writes into it.
    Likewise `gan eval` measures the real digits' and noise's reference scores once (they are deterministic:
    test_metrics.py), not a few seconds' worth again for each test of the command."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gan.jobs.runner, "load_mnist", functools.cache(gan.jobs.runner.load_mnist))
        patch.setattr(gan.cli.scores, "reference_scores", functools.cache(gan.scoring.metrics.reference_scores))
        yield


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("GAN_STUDIO_CHECKPOINTS", str(folder))
    return folder


@pytest.fixture
def cli(capsys):
    """`python -m gan ...` in this process (no 2 s torch import): returns (exit code, stdout, stderr)."""
    from gan.__main__ import main

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


def trained_run(path: Path, config: Config | None = None) -> Run:
    """A run trained to its end at `path` (the tiny settings by default), its lock file gone so that copies of the
    folder start unlocked."""
    run = Run(path)
    with run.lock():
        train_run(run, prepare_trainer(run, config or tiny_config()))
    (run.path / ".lock").unlink(missing_ok=True)
    return run


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """One tiny trained run (2 epochs of 3 steps), copied by each test that needs a good run."""
    return trained_run(tmp_path_factory.mktemp("template") / "good").path


@pytest.fixture
def good(root, trained) -> Run:
    """A copy of the tiny trained run, named "good", under this test's checkpoint root."""
    shutil.copytree(trained, root / "good")
    return Run(root / "good")


def bad_run(root: Path, name: str = "bad") -> Run:
    """An empty run folder: the test writes the damaged files into it."""
    run = Run(root / name)
    run.path.mkdir(parents=True)
    return run


def assert_listed_with_reason(root: Path, name: str, words: str) -> None:
    """`list_runs` gives the run `name` a one-line reason holding `words`, and the good run beside it none."""
    runs = {info.name: info.error for info in list_runs(root)}
    assert runs["good"] is None, "the good run beside it still works"
    assert words in runs[name] and "\n" not in runs[name]


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


@pytest.fixture
def poisoned(monkeypatch):
    """Call with a factor (NaN or inf): from step `after` + 1 on, the real batch is multiplied by it."""

    def poison(factor: float, after: int = 3) -> None:
        train_step = Trainer.train_step

        def poisoned_step(self, real, labels):
            return train_step(self, real * factor if self.step >= after else real, labels)

        monkeypatch.setattr(Trainer, "train_step", poisoned_step)

    return poison


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


# --- a zoo of damaged runs, shared by the checkpoint and CLI tests ---


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


@pytest.fixture(scope="session")
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
