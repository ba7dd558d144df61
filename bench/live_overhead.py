"""What a live page costs training: images/s of each epoch of the app's quick-start run, trained (1) by the CLI with
no one watching and (2) from the app, with a page open in a browser all along, watched in some epochs and idle in
the epochs between. Two pages are measured, each in a job of its own:

- train: the Train page, its Live view switched on (watched) or off (idle: no polling, no redraws), in turn each
  epoch;
- timeline: the Timeline page of the training run (watched: it follows new epochs as they are saved), or the Train
  page with its Live view off (idle), in turn every two epochs (see BLOCKS), the last epoch left out. The Timeline
  is first opened during epoch 2, untimed, so that what it loads once per server (MNIST, the judge, the map's real
  digits) is not counted. In the last epoch the job is paused and the Timeline moved to epochs it has not drawn:
  the CPU seconds of one redraw for a new epoch, with no training beside it to blur them.

    python bench/live_overhead.py [--repeats 3] [--epochs 10] [--pages train,timeline]

CLI and app runs alternate. An epoch's clock is the modification times of its saved file and the one before, so
start-up is left out and the end-of-epoch scoring is in every epoch alike.

This machine's speed drifts by up to a quarter over tens of seconds (with no steal time counted), far more than the
cost being measured. So the main figure compares each block of watched epochs against the idle blocks on either side
of it, in the same job, seconds apart; the comparison with the CLI (separate processes, minutes apart) is printed
too. On a CPU shared with other work even that pairing drowns in the drift; the CPU seconds the server (training
included) and the browser spend in each epoch, paired the same way, drift less: on a 2-core laptop that training
keeps busy, every CPU second the page adds is one that training loses.
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
from processes import browser_cpu_seconds, cpu_seconds  # noqa: E402

from gan.config import Config  # noqa: E402
from gan.presets import QUICK_START  # noqa: E402
from gan.scoring.judge import judge_is_cached  # noqa: E402
from views.live import FOLLOW_EVERY  # noqa: E402

CONFIG = Config.for_preset(**QUICK_START)
IMAGES_PER_EPOCH = CONFIG.steps_per_epoch * CONFIG.batch_size


@dataclass
class Epoch:
    images_per_sec: float
    watched: bool = False
    browser_cores: float = 0.0  # CPU seconds of all browser processes per wall second during the epoch
    app_cpu: float = 0.0  # CPU seconds of the server (training included) and the browser during the epoch
    number: int = 0


def set_live_view(page, on: bool) -> None:
    """Switch the Train page's Live view toggle, and wait until the page shows it took effect."""
    off_note = page.get_by_text("Live view is off")
    if off_note.is_visible() == on:
        page.get_by_text("Live view", exact=True).click()
    if on:
        off_note.wait_for(state="hidden")
    else:
        off_note.wait_for()


def open_page(page, title: str) -> None:
    """Go to another page of the app by its link, unless it is open already."""
    heading = page.get_by_role("heading", name=title, exact=True)
    if not heading.is_visible():
        page.get_by_role("link", name=title, exact=True).click()
        heading.wait_for()


def show_timeline(page) -> None:
    """The Timeline page of the training run, drawn in full (its last section's caption shows)."""
    open_page(page, "Timeline")
    page.get_by_text("Map drawn in").wait_for(timeout=120_000)


def watch(page, target: str, watched: bool) -> None:
    """Put the browser in an epoch's state: `target` watched, or the Train page with its Live view off."""
    if target == "timeline" and watched:
        show_timeline(page)
        return
    open_page(page, "Train")
    page.get_by_text("Live view", exact=True).wait_for()
    set_live_view(page, watched)


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


def timed_epochs(page, server: int, run: Path, target: str, epochs: int, watch_first: bool) -> list[Epoch]:
    """From the first timed epoch to the last, each watched or idle in turn."""
    wait_for_file(epoch_file(run, 1), 600)
    first = 2
    if target == "timeline":  # warm up: what the Timeline loads once per server, in an untimed epoch
        show_timeline(page)
        wait_for_file(epoch_file(run, 2), 600)
        first = 3
    timed = []
    for epoch in range(first, epochs + 1):
        watched = watch_first == ((epoch - first) // BLOCKS[target] % 2 == 0)
        started, browser_start, server_start = time.monotonic(), browser_cpu_seconds(), cpu_seconds(server)
        watch(page, target, watched)  # inside the epoch's clocks: opening the Timeline draws the newest epoch
        wait_for_file(epoch_file(run, epoch), 600)
        browser = browser_cpu_seconds() - browser_start
        app_cpu = browser + cpu_seconds(server) - server_start
        timed.append(Epoch(epoch_rate(run, epoch), watched, browser / (time.monotonic() - started), app_cpu, epoch))
        state = "watched" if watched else "idle   "
        rate = f"{timed[-1].images_per_sec:6,.0f} images/s, {app_cpu:5.1f} CPU s"
        rate += f", browser {timed[-1].browser_cores:.3f} cores"
        print(f"  {target} epoch {epoch:2d}: {state} {rate}", file=sys.stderr, flush=True)
    return timed


def quiet(server: int, seconds: float = 120) -> None:
    """Wait until the server uses almost no CPU (a paused job's scoring thread may still be finishing an epoch)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        before = cpu_seconds(server)
        time.sleep(1)
        if cpu_seconds(server) - before < 0.05:
            return


def opened_at(timed: list[Epoch]) -> set[int]:
    """The epochs the Timeline was drawn at while timed: the newest saved when it was opened (for the warm-up, and at
    the start of each watched block). On a CPU so slow that two epochs outlast 30 s, following drew more."""
    starts = [
        epoch for before, epoch in zip([None, *timed], timed) if epoch.watched and not (before and before.watched)
    ]
    return {1} | {epoch.number - 1 for epoch in starts}


def redraw_costs(page, server: int, url: str, run: str, newest: int, drawn: set[int], count: int = 3) -> list[float]:
    """CPU seconds (server and browser) of the Timeline of the run, paused, moved to an epoch it has not drawn yet
    (its map and push maps computed, the page re-rendered): what a Timeline open on a training run spends on each
    new epoch it follows. The epochs already drawn are stepped over, unmeasured."""
    open_page(page, "Train")
    page.get_by_role("button", name="Pause").click()
    page.get_by_text("Paused", exact=True).first.wait_for()
    page.goto(f"{url}/timeline?run={run}&epoch={newest}")
    page.locator(f"[class*='st-key-inside_map_{run}_{newest}']").wait_for(timeout=120_000)
    slider, costs = page.get_by_role("slider").first, []
    for epoch in range(newest - 1, 0, -1):
        quiet(server)  # a paused job's scoring thread may still be finishing an epoch
        page.wait_for_timeout(2000)  # and the browser the previous draw
        before = browser_cpu_seconds() + cpu_seconds(server)
        slider.focus()
        slider.press("ArrowLeft")
        page.locator(f"[class*='st-key-inside_map_{run}_{epoch}']").wait_for(timeout=120_000)
        page.wait_for_timeout(2000)  # the browser finishes drawing the page
        if epoch not in drawn:
            costs.append(browser_cpu_seconds() + cpu_seconds(server) - before)
            print(f"  timeline redraw at epoch {epoch}: {costs[-1]:.2f} CPU s", file=sys.stderr, flush=True)
        if len(costs) == count:
            break
    return costs


def from_app(epochs: int, watch_first: bool, target: str) -> tuple[list[Epoch], list[float]]:
    """The timed epochs of one quick-start run from the app, and for the Timeline the CPU cost of its redraws,
    measured in the last epoch with the job paused (so the run is still training, as far as the page knows)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as checkpoints, sync_playwright() as playwright:
        server, url = start_server(checkpoints)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            wait_for_health(url)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_role("button", name="Train a digit generator").click(timeout=60_000)
            # The live panel is polling (an epoch can be shorter than its pace, so any epoch will do).
            page.get_by_text(re.compile(r"Epoch \d+ of")).first.wait_for(timeout=60_000)
            run = next(Path(checkpoints).glob("first-*"))
            if target != "timeline":
                return timed_epochs(page, server.pid, run, target, epochs, watch_first), []
            timed = timed_epochs(page, server.pid, run, target, epochs - 1, watch_first)
            return timed, redraw_costs(page, server.pid, url, run.name, epochs - 1, opened_at(timed))
        finally:
            browser.close()
            stop_server(server)


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


def blocks(job: list[Epoch]) -> list[list[Epoch]]:
    """The job's epochs in runs of the same state (watched or idle)."""
    runs: list[list[Epoch]] = []
    for epoch in job:
        if runs and runs[-1][0].watched == epoch.watched:
            runs[-1].append(epoch)
        else:
            runs.append([epoch])
    return runs


def block_mean(block: list[Epoch], cpu: bool) -> float:
    return statistics.mean(epoch.app_cpu if cpu else epoch.images_per_sec for epoch in block)


def watching_costs(job: list[Epoch], cpu: bool = False) -> list[float]:
    """Each block of watched epochs against the mean of the idle blocks just before and after it: the images/s it
    lost, or (`cpu`) the CPU seconds the app and the browser spent on top of the same epochs' training."""
    runs, costs = blocks(job), []
    for index, block in enumerate(runs):
        beside = [other for other in runs[max(index - 1, 0) : index + 2] if not other[0].watched]
        if not block[0].watched or not beside:
            continue
        idle = statistics.mean(block_mean(other, cpu) for other in beside)
        watched = block_mean(block, cpu)
        costs.append(watched / idle - 1 if cpu else 1 - watched / idle)
    return costs


def quartiles(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    low, _, high = statistics.quantiles(values, n=4)
    return f", middle half {low:.1%} to {high:.1%}"


def median_rate(epochs: list[Epoch]) -> float:
    return statistics.median(epoch.images_per_sec for epoch in epochs)


def paired(jobs: list[list[Epoch]], cpu: bool = False) -> str:
    costs = [cost for job in jobs for cost in watching_costs(job, cpu)]
    return f"median {statistics.median(costs):.1%} over {len(costs)} epochs{quartiles(costs)}"


def report_page(target: str, jobs: list[list[Epoch]], cli_rate: float, redraws: list[float]) -> None:
    watched = [epoch for job in jobs for epoch in job if epoch.watched]
    idle = [epoch for job in jobs for epoch in job if not epoch.watched]
    print(f"{PAGES[target]}:")
    print(f"  images/s per epoch, median: watched {median_rate(watched):,.0f} ({len(watched)} epochs), idle "
          f"{median_rate(idle):,.0f} ({len(idle)} epochs)")  # fmt: skip
    print(f"  images/s lost, each watched block against the idle blocks beside it in the same job: {paired(jobs)}")
    print(f"  CPU seconds added (server and browser), the same pairs: {paired(jobs, cpu=True)}")
    print(f"  against the CLI's median epoch: watched {1 - median_rate(watched) / cli_rate:.1%} slower, idle "
          f"{1 - median_rate(idle) / cli_rate:.1%} slower")  # fmt: skip
    print(f"  browser CPU: {statistics.median(epoch.browser_cores for epoch in watched):.3f} cores watched, "
          f"{statistics.median(epoch.browser_cores for epoch in idle):.3f} idle")  # fmt: skip
    if redraws:
        cost = statistics.median(redraws)
        share = cost / (FOLLOW_EVERY * (os.cpu_count() or 1))
        print(f"  a redraw for a new epoch, the job paused: median {cost:.2f} CPU s (server and browser) over "
              f"{len(redraws)}; at most one per {FOLLOW_EVERY:.0f} s is {share:.1%} of this machine's CPU")  # fmt: skip


# Epochs watched in a row: an open Timeline redraws for new epochs at most every 30 s, and each watched block starts
# by opening it (a redraw), so blocks of single quick-start epochs (5 to 12 s) would redraw it far more often than a
# Timeline left open does.
BLOCKS = {"train": 1, "timeline": 2}
PAGES = {
    "train": "Train page, Live view on (watched) or off (idle)",
    "timeline": "Timeline page of the training run (watched), or the Train page with Live view off (idle)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="CLI runs and app runs, alternating")
    parser.add_argument("--epochs", type=int, default=QUICK_START["epochs"], help="epochs of each run to time")
    parser.add_argument("--pages", default=",".join(PAGES), help=f"which pages to measure, of {', '.join(PAGES)}")
    args = parser.parse_args()
    pages = args.pages.split(",")
    if not 4 <= args.epochs <= QUICK_START["epochs"]:
        parser.error(f"--epochs must be from 4 to {QUICK_START['epochs']}")
    if args.repeats < 1 or not pages or not set(pages) <= set(PAGES):
        parser.error(f"--repeats must be at least 1, --pages some of {', '.join(PAGES)}")
    cli, jobs, redraws = [], {target: [] for target in pages}, {target: [] for target in pages}
    for repeat in range(args.repeats):
        cli += from_cli(args.epochs)
        for target in pages:
            job, costs = from_app(args.epochs, watch_first=repeat % 2 == 0, target=target)
            jobs[target].append(job)
            redraws[target] += costs
        print(f"repeat {repeat + 1} of {args.repeats} done", file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} CPUs; quick-start run of {args.epochs} epochs; {args.repeats} runs each, alternating")
    print(f"CLI, nobody watching: {median_rate(cli):,.0f} images/s per epoch, median of {len(cli)} epochs")
    for target in pages:
        report_page(target, jobs[target], median_rate(cli), redraws[target])


if __name__ == "__main__":
    main()
