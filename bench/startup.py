"""Start-up and scoring's cost, for bench/latency.py (parts d and e): each figure starts processes of its own.

(d) the quick start's click to the trainer's first step, in a fresh process each time (AppTest: the page is loaded,
    then the button is clicked at once, or once the page has been read, its warm-up over (gan.jobs.warmup); in the
    browser: until the page shows a step), and `python -m gan train` from the
    process's start (imports included) to its first step, for the quick start and the default preset;
(e) the same run with and without scoring (paired, in turn), the difference as a share of the scored run's wall
    and CPU time, for the quick start and the default; and, from the scored run alone, the seconds its scores took
    beside the training (each epoch's `score_seconds` in its history) as a share of its wall time: the most
    scoring can have cost, read within one run, so the machine's run-to-run noise does not enter it.

`python bench/startup.py --click-child ROOT` is the fresh process of (d)'s AppTest figure.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.latency import BROWSER_ARGS, CHROMIUM, load, report, start_server, stop_server, wait_for_health  # noqa: E402
from gan.config import DEFAULT_PRESET, SETTINGS  # noqa: E402
from gan.presets import QUICK_START  # noqa: E402
from gan.store.run import Run  # noqa: E402

# --- (d) start-up: click or command to the first training step --------------------------------------------

QUICK_FLAGS = [f"{SETTINGS[name].cli_flag}={value}" for name, value in QUICK_START.items()]
DEFAULT_FLAGS = [f"--preset={DEFAULT_PRESET}"]
FIRST_STEP = re.compile(rb"\|\s*([1-9]\d*)/\d+")  # tqdm's count once a step is done: "| 1/9380"


def cli_first_step(flags: list[str], root: str, name: str) -> float:
    """Seconds from starting `python -m gan train` to its progress bar counting the first step (tqdm redraws on
    every step here), then the process is stopped."""
    command = [sys.executable, "-m", "gan", "--root", root, "train", "--run", name, *flags]
    env = {**os.environ, "TQDM_MININTERVAL": "0"}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = b""
    try:
        while chunk := process.stderr.read1(4096):
            seen += chunk
            if FIRST_STEP.search(seen):
                return time.perf_counter() - started
        raise RuntimeError(f"the CLI ended before its first step: {seen[-500:].decode(errors='replace')}")
    finally:
        process.kill()
        process.wait()


def click_first_step_child(root: str, read_first: bool) -> None:
    """In a fresh process: load the app's first page, click the quick start (at once, or once the page has been
    read: its warm-up over), print the seconds from the click to the first step."""
    os.environ["GAN_STUDIO_CHECKPOINTS"] = root
    from streamlit.testing.v1 import AppTest

    from gan.jobs.warmup import wait_until_warm
    from views import common

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    if read_first:
        wait_until_warm(120)
    session, first_step = common.get_session(), []

    def watch() -> None:  # the step lands in the job's thread, maybe before the page's rerun ends
        deadline = time.monotonic() + 120
        while session.snapshot().step < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        first_step.append(time.perf_counter())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    at.button(key="quick_start").click().run()
    watcher.join()
    print(f"{first_step[0] - started:.3f}", flush=True)
    session.stop(wait=30)


def click_first_step(root: str, read_first: bool) -> float:
    command = [sys.executable, str(Path(__file__).resolve()), "--click-child", root, *(["--read-first"] * read_first)]
    answer = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return float(answer.stdout.split()[-1])


def browser_click_first_step(browser, repeats: int) -> list[float]:
    """A fresh server each time; from the click on the quick start to the page showing a step done."""
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as checkpoints:
            server, url = start_server(checkpoints)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(120_000)
            try:
                wait_for_health(url)
                page.goto(url)
                button = page.get_by_role("button", name="Train a digit generator")
                button.wait_for()
                started = time.perf_counter()
                button.click()
                page.get_by_text(re.compile(r"· step [1-9][\d,]* of")).first.wait_for()
                times.append(time.perf_counter() - started)
            finally:
                page.close()
                stop_server(server)
    return times


def start_figures(repeats: int, browser: bool) -> None:
    with tempfile.TemporaryDirectory() as root:
        print(f"(d) start-up, {load()}")
        for read_first, when in ((False, "at once"), (True, "page read")):
            clicks = [click_first_step(f"{root}/click{read_first}{index}", read_first) for index in range(repeats)]
            report(f"(d) quick start: click ({when}) -> first step", clicks)
        for label, flags in (("quick start", QUICK_FLAGS), ("default", DEFAULT_FLAGS)):
            times = [cli_first_step(flags, root, f"{label[0]}{index}") for index in range(repeats)]
            report(f"(d) CLI {label}: start -> first step", times)
    if browser and Path(CHROMIUM).is_file():
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            try:
                times = browser_click_first_step(chromium, max(2, repeats // 2))
                report("(d) quick start: click -> step shown (browser)", times)
            finally:
                chromium.close()


# --- (e) what scoring costs ----------------------------------------------------------------------------------


def cli_run(flags: list[str], root: str, name: str) -> tuple[float, float]:
    """Wall and CPU seconds (the child's user + system) of one `python -m gan train` to its end."""
    command = [sys.executable, "-m", "gan", "--root", root, "train", "--run", name, *flags]
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def scoring_figures(repeats: int, quick_epochs: int, default_epochs: int) -> None:
    """Each run with scoring, then the same without (--no-eval), in turn; scoring's share is the difference
    over the scored run's, pair by pair, in wall time and in CPU time (on a machine shared with other work the
    CPU time is the steadier of the two)."""
    runs = (
        (f"quick start, {quick_epochs} epochs", [*QUICK_FLAGS, f"--epochs={quick_epochs}"]),
        (f"default, {default_epochs} epoch(s)", [*DEFAULT_FLAGS, f"--epochs={default_epochs}"]),
    )[: 2 if default_epochs else 1]
    with tempfile.TemporaryDirectory() as root:
        for index, (label, flags) in enumerate(runs):
            walls, cpus, scored_wall, busy = [], [], [], []
            for repeat in range(repeats):
                scored = cli_run(flags, root, f"scored-{index}-{repeat}")
                plain = cli_run([*flags, "--no-eval"], root, f"plain-{index}-{repeat}")
                walls.append((scored[0] - plain[0]) / scored[0])
                cpus.append((scored[1] - plain[1]) / scored[1])
                scored_wall.append(scored[0])
                took = Run.at(f"scored-{index}-{repeat}", root).history().epochs
                busy.append(sum(record.score_seconds or 0.0 for record in took) / scored[0])
            print(
                f"(e) scoring's share, {label}: wall {statistics.median(walls):.1%}, CPU "
                f"{statistics.median(cpus):.1%} (scored run {statistics.median(scored_wall):.0f} s wall, n={repeats}); "
                f"scores' own time in the scored run {statistics.median(busy):.1%} of its wall time "
                f"(each: {', '.join(f'{share:.1%}' for share in busy)}), {load()}",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--click-child", required=True, metavar="ROOT", help="checkpoints folder of the fresh app")
    parser.add_argument("--read-first", action="store_true", help="click once the page's warm-up is over")
    arguments = parser.parse_args()
    click_first_step_child(arguments.click_child, arguments.read_first)
