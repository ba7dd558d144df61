"""What the live view costs training: wall-clock images/s of the same run trained (1) by the CLI with no one
watching and (2) from the app, with the Train page open in a browser and polling; optionally (3) from the app with
the page closed. The runs alternate (CLI, app, CLI, app, ...) so that a machine drifting in speed hits both alike.

    python bench/live_overhead.py [--repeats 3] [--epochs 6] [--unwatched]

All train the app's quick-start configuration (cdcgan, 200 batches per epoch, scoring on when the digit judge is
cached). The clock is the modification times of the saved epoch files, from the end of epoch 1 to the end of the
last epoch, so start-up is excluded and everything the page costs the trainer is included. Over the same window it
also counts the CPU seconds of the browser and of the app server (the trainer's threads included), to show where
the time went.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from latency import BROWSER_ARGS, CHROMIUM, start_server, stop_server, wait_for_health  # noqa: E402

from gan.config import Config  # noqa: E402
from gan.metrics import judge_is_cached  # noqa: E402
from views.common import QUICK_START  # noqa: E402

CONFIG = Config.for_preset(**QUICK_START)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Timing:
    images_per_sec: float
    browser_cores: float = 0.0  # CPU seconds of all browser processes per wall second, over the timed epochs
    server_cores: float = 0.0  # the same for the app server, trainer included


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, its finished threads included (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def browser_cpu_seconds() -> float:
    total = 0.0
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if "chrom" in (process / "cmdline").read_text():
                total += cpu_seconds(int(process.name))
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
    return total


def epoch_file(run: Path, epoch: int) -> Path:
    return run / f"epoch-{epoch:04d}.safetensors"


def wait_for_file(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {seconds:.0f} s")
        time.sleep(0.05)


def images_per_second(run: Path, epochs: int) -> float:
    seconds = epoch_file(run, epochs).stat().st_mtime - epoch_file(run, 1).stat().st_mtime
    return (epochs - 1) * CONFIG.steps_per_epoch * CONFIG.batch_size / seconds


def from_app(epochs: int, watch: bool) -> Timing:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as checkpoints, sync_playwright() as playwright:
        server, url = start_server(checkpoints)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            wait_for_health(url)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.get_by_role("button", name="Train a digit generator").click(timeout=60_000)
            page.get_by_text("Epoch 1 of").first.wait_for(timeout=60_000)  # the live panel is polling
            if not watch:
                page.goto("about:blank")  # the job trains on in the server with nobody polling
            run = next(Path(checkpoints).glob("first-*"))
            wait_for_file(epoch_file(run, 1), 600)
            started, browser_start, server_start = time.monotonic(), browser_cpu_seconds(), cpu_seconds(server.pid)
            wait_for_file(epoch_file(run, epochs), 600)
            wall = time.monotonic() - started
            return Timing(
                images_per_second(run, epochs),
                (browser_cpu_seconds() - browser_start) / wall,
                (cpu_seconds(server.pid) - server_start) / wall,
            )
        finally:
            browser.close()
            stop_server(server)


def from_cli(epochs: int) -> Timing:
    with tempfile.TemporaryDirectory() as checkpoints:
        command = [sys.executable, "-m", "gan", "--root", checkpoints, "train", "--run", "cli"]
        command += ["--preset", CONFIG.preset, "--epochs", str(epochs)]
        command += ["--steps-per-epoch", str(CONFIG.steps_per_epoch)]
        if not judge_is_cached():
            command.append("--no-eval")
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        return Timing(images_per_second(Path(checkpoints) / "cli", epochs))


def summary(label: str, timings: list[Timing], cli: list[Timing] | None = None) -> str:
    rates = [timing.images_per_sec for timing in timings]
    text = f"{label:<32} {statistics.median(rates):7,.0f} images/s  (runs: {', '.join(f'{r:,.0f}' for r in rates)})"
    if cli is not None:
        costs = [1 - timing.images_per_sec / base.images_per_sec for timing, base in zip(timings, cli)]
        browser = statistics.median(timing.browser_cores for timing in timings)
        server = statistics.median(timing.server_cores for timing in timings)
        text += f"\n{'':<32} cost against the CLI run beside it: median {statistics.median(costs):.1%} "
        text += f"(runs: {', '.join(f'{cost:.1%}' for cost in costs)})"
        text += f"\n{'':<32} CPU while timed: browser {browser:.2f} cores, app server {server:.2f} cores"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind, alternating")
    parser.add_argument("--epochs", type=int, default=6, help="epochs to time (the quick start trains 10)")
    parser.add_argument("--unwatched", action="store_true", help="also time the app's job with the page closed")
    args = parser.parse_args()
    if not 2 <= args.epochs <= QUICK_START["epochs"]:
        parser.error(f"--epochs must be from 2 to {QUICK_START['epochs']}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    cli, watched, closed = [], [], []
    for repeat in range(args.repeats):
        cli.append(from_cli(args.epochs))
        watched.append(from_app(args.epochs, watch=True))
        if args.unwatched:
            closed.append(from_app(args.epochs, watch=False))
        print(f"repeat {repeat + 1} of {args.repeats} done", file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} CPUs; quick-start run, epochs 2 to {args.epochs}; {args.repeats} runs each, alternating")
    print(summary("CLI, nobody watching:", cli))
    print(summary("app, Train page open, live:", watched, cli))
    if closed:
        print(summary("app, page closed:", closed, cli))


if __name__ == "__main__":
    main()
