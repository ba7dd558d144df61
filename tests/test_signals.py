"""Told to stop, a process that trains saves the step it reached and exits cleanly: SIGTERM (`kill`, systemd, docker,
`timeout`) or SIGINT (Ctrl-C) to `python -m gan train` or to the app's server, while training, while paused and
before the first epoch. Nothing trained is lost, the run is free afterwards, and it resumes bit for bit.

Real processes get real signals: the CLI as a subprocess, the server as `streamlit run app.py` driven over its
websocket as a browser tab would (tests/streamlit_client.py). Every wait is on a condition, with a deadline."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.device import configure_threads
from gan.store.checkpoints import load_state
from gan.store.run import Run
from gan.train import Trainer
from tests.conftest import TINY_FLAGS, WAIT, assert_same_weights, steps_logged, tiny_config, wait_for
from tests.servers import free_port, wait_for_health
from tests.streamlit_client import Tab

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXIT_WAIT = 30.0  # seconds from the signal to the process's end: a few are enough; a loaded CPU gets margin
STEPS, EPOCHS = 100, 2  # long epochs: a signal can land well inside the first one


def saved_step(run: Run) -> int:
    """The step of the newest saved state (latest.safetensors or the newest epoch)."""
    path = run.latest_path if run.latest_path.is_file() else run.epoch_path(run.epochs()[-1])
    return load_state(path)[0]["position"]["step"]


def assert_stopped_cleanly(run: Run, log: str, at_least: int) -> None:
    """The process saved the step it reached (at least `at_least`), logged every step once, and left the run free."""
    assert "Traceback" not in log and "terminate called" not in log, log
    step = saved_step(run)
    assert step >= at_least, f"saved step {step}, but step {at_least} had been reached"
    assert steps_logged(run) == list(range(1, step + 1)), "every step up to the saved one logged once"
    with run.lock():  # the run is free: a new job may take it
        pass


# --- python -m gan train --------------------------------------------------------------------------------------


def start_cli(root: Path, log: Path, *flags: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "gan", "--root", str(root), "train", "--run", "signalled", *flags]
    with open(log, "w") as out:
        return subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=out)


def steps_shown(log: Path) -> int:
    """The step count tqdm's bar shows last (0 before the bar appears)."""
    counts = re.findall(r"\| *(\d+)/\d+ \[", log.read_text(errors="replace"))
    return int(counts[-1]) if counts else 0


def stop_cli(process: subprocess.Popen, log: Path, number: signal.Signals, after_step: int) -> int:
    """Send the signal once the bar shows `after_step` steps; returns the steps shown then."""
    wait_for(lambda: steps_shown(log) >= after_step or process.poll() is not None, timeout=600)
    assert process.poll() is None, f"the run ended before step {after_step}:\n{log.read_text()}"
    shown = steps_shown(log)
    process.send_signal(number)
    assert process.wait(EXIT_WAIT) == 0, log.read_text()
    return shown


def test_sigterm_and_sigint_to_the_cli_save_the_step_reached_and_resume_bit_for_bit(tmp_path):
    configure_threads()  # as the CLI does, so the reference computes with the same thread count
    config = tiny_config(steps_per_epoch=STEPS, epochs=EPOCHS)
    reference = Trainer(config, load_mnist(DEFAULT_DATA_DIR))
    assert reference.run() == "finished"

    root, log = tmp_path / "checkpoints", tmp_path / "train.log"
    run = Run.at("signalled", root)
    flags = [*TINY_FLAGS, "--steps-per-epoch", str(STEPS), "--epochs", str(EPOCHS)]

    shown = stop_cli(start_cli(root, log, *flags), log, signal.SIGTERM, after_step=5)  # before the first epoch
    assert run.epochs() == [] and "stopped" in log.read_text()
    assert_stopped_cleanly(run, log.read_text(), at_least=shown)

    shown = stop_cli(start_cli(root, log, "--resume"), log, signal.SIGINT, after_step=STEPS + 10)  # in epoch 2
    assert run.epochs() == [1]
    assert_stopped_cleanly(run, log.read_text(), at_least=shown)

    process = start_cli(root, log, "--resume")
    assert process.wait(600) == 0, log.read_text()
    assert steps_logged(run) == list(range(1, STEPS * EPOCHS + 1))
    assert_same_weights(reference.state_dict(), run.load_epoch(EPOCHS))


# --- streamlit run app.py -------------------------------------------------------------------------------------


class Server:
    """`streamlit run app.py` with runs under `root`, and one browser tab on it."""

    def __init__(self, root: Path, log: Path):
        self.log, port = log, free_port()
        env = {**os.environ, "GAN_STUDIO_CHECKPOINTS": str(root)}
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
        with open(log, "w") as out:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, self.process, log)
        self.tab = Tab(url)
        self.tab.run()

    def progress(self) -> tuple[str, int]:
        """The job's badge ("Training", "Paused", ...) and the step its progress line shows, after a rerun."""
        texts = self.tab.run().texts()
        badge = next((text for text in texts if "-badge[" in text), "")
        steps = [re.search(r"step ([\d,]+) of", text) for text in texts]
        step = next((int(found.group(1).replace(",", "")) for found in steps if found), 0)
        return badge, step

    def wait_for_step(self, step: int) -> int:
        reached: list[int] = []
        wait_for(lambda: reached.append(self.progress()[1]) or reached[-1] >= step, timeout=600, every=0.5)
        return reached[-1]

    def stop(self, number: signal.Signals) -> str:
        """Send the signal; returns the server's log once it has exited (with code 0)."""
        self.tab.close()
        self.process.send_signal(number)
        try:
            code = self.process.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the server did not exit within {EXIT_WAIT:.0f} s:\n{self.log.read_text()}") from None
        log = self.log.read_text()
        assert code == 0, f"exit code {code}:\n{log}"
        return log


@pytest.fixture
def server(tmp_path):
    started: list[Server] = []

    def start() -> Server:
        started.append(Server(tmp_path / "checkpoints", tmp_path / "server.log"))
        return started[-1]

    yield start
    for each in started:
        if each.process.poll() is None:
            each.process.kill()
            each.process.wait()


def only_run(root: Path) -> Run:
    runs = [path for path in root.iterdir() if path.is_dir()]
    assert len(runs) == 1, runs
    return Run(runs[0])


def test_sigterm_to_the_server_while_training_saves_the_step_reached_before_the_first_epoch(server, tmp_path):
    app = server()
    app.tab.run(press="quick_start")
    shown = app.wait_for_step(3)
    log = app.stop(signal.SIGTERM)
    run = only_run(tmp_path / "checkpoints")
    assert run.epochs() == [], "stopped inside the first epoch"
    assert_stopped_cleanly(run, log, at_least=shown)


def test_sigint_to_the_server_while_paused_saves_the_paused_step(server, tmp_path):
    app = server()
    app.tab.run(press="quick_start")
    app.wait_for_step(2)
    app.tab.run(press="pause")
    wait_for(lambda: "Paused" in app.progress()[0], timeout=WAIT, every=0.5)
    _, paused_at = app.progress()
    log = app.stop(signal.SIGINT)
    run = only_run(tmp_path / "checkpoints")
    assert_stopped_cleanly(run, log, at_least=paused_at)


def test_sigterm_to_the_server_while_it_loads_the_job_exits_cleanly(server, tmp_path):
    app = server()
    app.tab.run(press="quick_start")
    log = app.stop(signal.SIGTERM)
    run = only_run(tmp_path / "checkpoints")
    assert_stopped_cleanly(run, log, at_least=0)
