"""What the live view costs training: images/s of each epoch of the app's quick-start run, trained (1) by the CLI
with no one watching and (2) from the app, with the Train page open in a browser all along and its Live view switched
on in every other epoch and off in the epochs between (off: no polling, no redraws; the browser stays open and idle).

    python bench/live_overhead.py [--repeats 3] [--epochs 10]

CLI and app runs alternate. An epoch's clock is the modification times of its saved file and the one before, so
start-up is left out and the end-of-epoch scoring is in every epoch alike.

This machine's speed drifts by up to a quarter over tens of seconds (with no steal time counted), far more than the
cost being measured. So the main figure compares each epoch with the live view on against the epochs on either side
of it with the live view off, in the same job, seconds apart; the comparison with the CLI (separate processes,
minutes apart) is printed too.
"""

from __future__ import annotations

import argparse
import os
import re
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

from gan.config import QUICK_START, Config  # noqa: E402
from gan.scoring.judge import judge_is_cached  # noqa: E402

CONFIG = Config.for_preset(**QUICK_START)
IMAGES_PER_EPOCH = CONFIG.steps_per_epoch * CONFIG.batch_size
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Epoch:
    images_per_sec: float
    watched: bool = False
    browser_cores: float = 0.0  # CPU seconds of all browser processes per wall second during the epoch


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, its finished threads included (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        pid = parent_pid(pid)
        if pid == ancestor:
            return True
    return False


def browser_pids() -> list[int]:
    """The processes of the browser this benchmark launched (through Playwright's driver), not anyone else's."""
    pids = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(process.name)
            if "chromium" in (process / "cmdline").read_text().split("\0")[0] and is_descendant(pid, os.getpid()):
                pids.append(pid)
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
    return pids


def browser_cpu_seconds() -> float:
    total = 0.0
    for pid in browser_pids():
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError):
            continue
    return total


def set_live_view(page, on: bool) -> None:
    """Switch the Train page's Live view toggle, and wait until the page shows it took effect."""
    off_note = page.get_by_text("Live view is off")
    if off_note.is_visible() == on:
        page.get_by_text("Live view", exact=True).click()
    if on:
        off_note.wait_for(state="hidden")
    else:
        off_note.wait_for()


def epoch_file(run: Path, epoch: int) -> Path:
    return run / f"epoch-{epoch:04d}.safetensors"


def wait_for_file(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {seconds:.0f} s")
        time.sleep(0.02)


def epoch_rate(run: Path, epoch: int) -> float:
    return IMAGES_PER_EPOCH / (epoch_file(run, epoch).stat().st_mtime - epoch_file(run, epoch - 1).stat().st_mtime)


def from_app(epochs: int, watch_first: bool) -> list[Epoch]:
    from playwright.sync_api import sync_playwright

    timed = []
    with tempfile.TemporaryDirectory() as checkpoints, sync_playwright() as playwright:
        server, url = start_server(checkpoints)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            wait_for_health(url)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.get_by_role("button", name="Train a digit generator").click(timeout=60_000)
            # The live panel is polling (an epoch can be shorter than its pace, so any epoch will do).
            page.get_by_text(re.compile(r"Epoch \d+ of")).first.wait_for(timeout=60_000)
            run = next(Path(checkpoints).glob("first-*"))
            wait_for_file(epoch_file(run, 1), 600)
            for epoch in range(2, epochs + 1):
                watched = watch_first == (epoch % 2 == 0)
                set_live_view(page, watched)
                started, browser_start = time.monotonic(), browser_cpu_seconds()
                wait_for_file(epoch_file(run, epoch), 600)
                browser_cores = (browser_cpu_seconds() - browser_start) / (time.monotonic() - started)
                timed.append(Epoch(epoch_rate(run, epoch), watched, browser_cores))
                state = "on " if watched else "off"
                rate = f"{timed[-1].images_per_sec:6,.0f} images/s, browser {browser_cores:.3f} cores"
                print(f"  epoch {epoch:2d}: live view {state} {rate}", file=sys.stderr, flush=True)
        finally:
            browser.close()
            stop_server(server)
    return timed


def from_cli(epochs: int) -> list[Epoch]:
    with tempfile.TemporaryDirectory() as checkpoints:
        command = [sys.executable, "-m", "gan", "--root", checkpoints, "train", "--run", "cli"]
        command += ["--preset", CONFIG.preset, "--epochs", str(epochs)]
        command += ["--steps-per-epoch", str(CONFIG.steps_per_epoch), "--width", str(CONFIG.width)]
        if not judge_is_cached():
            command.append("--no-eval")
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        run = Path(checkpoints) / "cli"
        return [Epoch(epoch_rate(run, epoch)) for epoch in range(2, epochs + 1)]


def watching_costs(job: list[Epoch]) -> list[float]:
    """Each epoch with the live view on against the mean of the epochs just before and after it with it off."""
    costs = []
    for index, epoch in enumerate(job):
        if not epoch.watched:
            continue
        beside = [other.images_per_sec for other in job[max(index - 1, 0) : index + 2] if not other.watched]
        if beside:
            costs.append(1 - epoch.images_per_sec / statistics.mean(beside))
    return costs


def quartiles(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    low, _, high = statistics.quantiles(values, n=4)
    return f", middle half {low:.1%} to {high:.1%}"


def report(cli: list[Epoch], app: list[Epoch], costs: list[float]) -> None:
    watched = [epoch for epoch in app if epoch.watched]
    unwatched = [epoch for epoch in app if not epoch.watched]
    rates = {
        "CLI, nobody watching": statistics.median(epoch.images_per_sec for epoch in cli),
        "app, page open, Live view off": statistics.median(epoch.images_per_sec for epoch in unwatched),
        "app, page open, Live view on": statistics.median(epoch.images_per_sec for epoch in watched),
    }
    counts = dict(zip(rates, (len(cli), len(unwatched), len(watched))))
    print("images/s per epoch, median:")
    for label, rate in rates.items():
        print(f"  {label:<40} {rate:7,.0f}  ({counts[label]} epochs)")
    print(
        f"cost of the live view, each epoch with it on against the epochs beside it with it off, in the same job: "
        f"median {statistics.median(costs):.1%} over {len(costs)} epochs{quartiles(costs)}"
    )
    cli_rate = rates["CLI, nobody watching"]
    print(
        f"against the CLI's median epoch: app with the live view on "
        f"{1 - rates['app, page open, Live view on'] / cli_rate:.1%} slower, "
        f"off {1 - rates['app, page open, Live view off'] / cli_rate:.1%} slower"
    )
    print(
        f"browser CPU: {statistics.median(epoch.browser_cores for epoch in watched):.3f} cores while Live view is on, "
        f"{statistics.median(epoch.browser_cores for epoch in unwatched):.3f} while off"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="CLI runs and app runs, alternating")
    parser.add_argument("--epochs", type=int, default=QUICK_START["epochs"], help="epochs of each run to time")
    args = parser.parse_args()
    if not 3 <= args.epochs <= QUICK_START["epochs"]:
        parser.error(f"--epochs must be from 3 to {QUICK_START['epochs']}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    cli, app, costs = [], [], []
    for repeat in range(args.repeats):
        cli += from_cli(args.epochs)
        job = from_app(args.epochs, watch_first=repeat % 2 == 0)
        app += job
        costs += watching_costs(job)
        print(f"repeat {repeat + 1} of {args.repeats} done", file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} CPUs; quick-start run, epochs 2 to {args.epochs}; {args.repeats} runs each, alternating")
    report(cli, app, costs)


if __name__ == "__main__":
    main()
