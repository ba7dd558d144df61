"""Streamlit servers for the browser and install tests: a free port, waiting for the health check, and a server
started on the repository's app.py and stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_health(url: str, server: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    """Return once the server at `url` answers its health check; fail with its log if it exits or stays silent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    ended = "exited early" if server.poll() is not None else f"did not answer within {seconds:.0f} s"
    raise AssertionError(f"streamlit {ended}:\n{log.read_text()}")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextlib.contextmanager
def streamlit_server(root: Path, log_path: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free port with runs under `root`; yields its URL, stops it afterwards."""
    port = free_port()
    env = {**os.environ, "GAN_STUDIO_CHECKPOINTS": str(root)}
    server_flags = ["--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"]
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), *server_flags]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_health(url, process, log_path)
            yield url
        finally:
            stop(process)
