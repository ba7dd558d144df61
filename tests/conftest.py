"""Shared helpers and fixtures: tiny configs that train in a fraction of a second, a checkpoint root per test, the
CLI in this process, waiting on a condition, and a judge cache of this test session's own.

The digit judge is cached in a temporary folder made for the session ($GAN_STUDIO_CACHE, inherited by the CLI and
app servers the tests start), so the suite never writes into the repository and runs from a read-only checkout.
The judge is trained there once, by the first test that needs it (those are marked slow).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gan.config import Config

# CLI flags of a model that trains in a fraction of a second (the epochs and batches per epoch are the test's)
TINY_FLAGS = ["--width", "4", "--batch-size", "16", "--latent-dim", "8", "--no-eval"]
WAIT = 60.0  # seconds: generous, for a CPU shared with other work; a test only waits this long when it fails


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
