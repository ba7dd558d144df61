"""Shared fixtures: tiny configs that train in a fraction of a second, and a checkpoint root per test.

The judge cache points at a temporary folder for the whole session (CLI subprocesses included): tests read the
shipped judge weights but never write into the repository.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from gan.config import Config


def tiny_config(preset: str = "cdcgan", **changes) -> Config:
    """A model a few hundred parameters wide, three batches an epoch: for behaviour, not quality."""
    settings = dict(width=4, batch_size=16, steps_per_epoch=3, epochs=2, evaluate=False, latent_dim=8)
    settings.update(changes)
    return Config.for_preset(preset, **settings)


@pytest.fixture
def root(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("GAN_STUDIO_CHECKPOINTS", str(folder))
    return folder


def pytest_configure(config) -> None:
    os.environ["GAN_STUDIO_CACHE"] = tempfile.mkdtemp(prefix="gan-studio-cache-")


def pytest_unconfigure(config) -> None:
    shutil.rmtree(os.environ.pop("GAN_STUDIO_CACHE"), ignore_errors=True)
