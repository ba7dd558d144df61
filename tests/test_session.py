"""The background job's cost to training: work done for viewers happens only while someone is viewing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import gan.session
from gan.session import TrainingSession
from tests.conftest import tiny_config


def test_the_job_redraws_its_sample_grid_only_while_someone_reads_snapshots(root, monkeypatch):
    drawn: list[float] = []
    monkeypatch.setattr(gan.session, "grid_png", lambda images: drawn.append(time.monotonic()) or b"png")
    session = TrainingSession(grid_interval=0.02)
    assert session.start(tiny_config(epochs=1, steps_per_epoch=1_000_000), "watched")
    deadline = time.monotonic() + 60
    while not drawn:  # the first grid comes with the first published state; no snapshot is read meanwhile
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.01)
    # Nobody watching for 30 steps and at least 0.6 s (30 chances at a 0.02 s interval). The test peeks at the
    # published state directly, because snapshot() is exactly the read that would let a grid be drawn.
    unwatched_from = time.monotonic()
    while session._snapshot.step < 30 or time.monotonic() - unwatched_from < 0.6:
        assert time.monotonic() < deadline, f"the job is stuck at step {session._snapshot.step}"
        time.sleep(0.01)
    unwatched = len(drawn)
    for _ in range(20):
        session.snapshot()
        time.sleep(0.05)
    watched = len(drawn) - unwatched
    snapshot = session.snapshot()
    session.stop(wait=10)
    assert snapshot.status == "running", "it trained all along"
    assert unwatched == 1, "nobody watching: no grid beyond the first"
    assert watched >= 5, f"watched for 1 s at a 0.02 s interval, only {watched} grids"


def test_the_server_leaves_the_trainer_alone_between_reruns():
    """Streamlit's defaults stall a training thread: a full garbage collection after every rerun holds the GIL for
    about 0.2 s (once a second while the page polls), and a polling file watcher wakes up all the time."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    settings = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert settings["runner"]["postScriptGC"] is False
    assert settings["server"]["fileWatcherType"] == "none"
