"""How quickly the app answers. Prints medians of several repetitions:

(a) `streamlit run app.py` to the first rendered page in a real browser (Debian chromium via playwright);
(b) server-side work behind the latent page: a 10 x 10 digit grid and a 10-step interpolation strip, each
    generated and PNG-encoded, plus one nearest-neighbour search over the 60,000 training digits;
(c) with a full-size training job running: an AppTest rerun of the Train page, and in the browser a click on
    another page until its title shows;
(d) start-up, each in a fresh process, as a new learner meets it: the quick start's click to the trainer's first
    step (AppTest: the page is loaded, then the button is clicked; in the browser: until the page shows a step),
    and `python -m gan train` from the process's start (imports included) to its first step, for the quick start
    and the default preset;
(e) what scoring costs: the same run with and without scoring (paired, in turn), the difference as a share of
    the scored run's wall and CPU time, for the quick start and the default (--quick-epochs, --default-epochs).
(d) and (e) start processes of their own: they live in bench/startup.py.

(p) each page's first screen and full render in the browser (--only pages; see bench/pages.py).

Usage: python bench/latency.py [--repeats 5] [--no-browser] [--only latent,apptest,browser,start,scoring,pages]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gan.config import Config  # noqa: E402
from gan.data import load_mnist  # noqa: E402
from gan.images import grid_png  # noqa: E402
from gan.lab.latent import digit_grid, interpolate, nearest_real, sample  # noqa: E402
from gan.models import build_generator  # noqa: E402
from gan.presets import QUICK_START  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# a job that keeps the CPU busy for the whole measurement, as a real run would
BUSY_JOB = {"epochs": 1, "evaluate": False}


def report(label: str, seconds: list[float]) -> None:
    middle, low = statistics.median(seconds) * 1000, min(seconds) * 1000
    print(f"{label:<46} {middle:8.1f} ms   (min {low:.1f}, n={len(seconds)})", flush=True)


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def timed(action: Callable[[], object], repeats: int) -> list[float]:
    action()  # warm up caches and lazy imports
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


# --- (a) and (c, browser): a real server --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(checkpoints: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "GAN_STUDIO_CHECKPOINTS": checkpoints}
    server_flags = ["--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"]
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), *server_flags]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server, f"http://127.0.0.1:{port}"


def wait_for_health(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("streamlit did not come up")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()


def first_page(browser, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as checkpoints:
            page = browser.new_page()
            started = time.perf_counter()
            server, url = start_server(checkpoints)
            try:
                wait_for_health(url)
                page.goto(url)
                page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=60_000)
                times.append(time.perf_counter() - started)
            finally:
                page.close()
                stop_server(server)
    return times


def page_switch_while_training(browser, repeats: int) -> list[float]:
    with tempfile.TemporaryDirectory() as checkpoints:
        server, url = start_server(checkpoints)
        try:
            wait_for_health(url)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_role("button", name="Train a digit generator").click()
            page.get_by_text(re.compile(r"Epoch 1 of \d+ · step")).first.wait_for()
            times = []
            for index in range(repeats * 2):
                target = "Timeline" if index % 2 == 0 else "Train"
                started = time.perf_counter()
                page.get_by_role("link", name=target, exact=True).click()
                page.get_by_role("heading", name=target, exact=True).wait_for()
                times.append(time.perf_counter() - started)
                page.wait_for_timeout(300)
            return times
        finally:
            stop_server(server)


def browser_figures(repeats: int) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("(a), (c) browser: skipped, playwright is not installed")
        return
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            report("(a) streamlit run -> first rendered page", first_page(browser, max(3, repeats // 2)))
            report("(c) browser page switch, while training", page_switch_while_training(browser, repeats))
        finally:
            browser.close()


# --- (b) the latent page's work ------------------------------------------------------------------------------


def latent_figures(repeats: int) -> None:
    G = build_generator(Config.for_preset("cdcgan")).eval().requires_grad_(False)  # render cost ignores training
    train = load_mnist()
    query = sample(G, 1, 0, 3)[0]
    report("(b) 10 x 10 digit grid + PNG", timed(lambda: grid_png(digit_grid(G, 10, 1), scale=2), repeats))
    report("(b) 10-step interpolation strip + PNG", timed(lambda: grid_png(interpolate(G, 1, 2, 10), 10, 2), repeats))
    report("(b) nearest real digits (1 vs 60,000)", timed(lambda: nearest_real(query, train, 6), repeats))


# --- (c) AppTest rerun while training -----------------------------------------------------------------------


def apptest_figures(repeats: int) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from views import common

    with tempfile.TemporaryDirectory() as checkpoints:
        os.environ["GAN_STUDIO_CHECKPOINTS"] = checkpoints
        session = common.get_session()
        session.start(Config.for_preset("cdcgan", **BUSY_JOB), "bench")
        try:
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
            deadline = time.monotonic() + 60
            while session.snapshot().status != "running" or not session.snapshot().history:
                if time.monotonic() > deadline:
                    raise RuntimeError("the job did not start")
                time.sleep(0.2)
            times = timed(at.run, repeats * 2)
            assert not at.exception, at.exception
            report("(c) AppTest rerun of Train, while training", times)
        finally:
            session.stop(wait=10)
            st.cache_resource.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true", help="skip the browser figures")
    parser.add_argument("--only", default="latent,apptest,browser,start,scoring", help="comma-separated parts")
    parser.add_argument("--quick-epochs", type=int, default=QUICK_START["epochs"], help="quick start epochs in (e)")
    parser.add_argument("--default-epochs", type=int, default=1, help="epochs of the default preset in (e); 0: skip it")
    parser.add_argument("--scoring-repeats", type=int, default=1, help="pairs of runs per figure in (e)")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    print(f"GAN Studio latency, {os.cpu_count()} CPUs, {torch.backends.cpu.get_cpu_capability()}, medians, {load()}")
    if "latent" in parts:
        latent_figures(args.repeats * 4)
    if "apptest" in parts:
        apptest_figures(args.repeats)
    browser = not args.no_browser and Path(CHROMIUM).is_file()
    if "browser" in parts and browser:
        browser_figures(args.repeats)
    if "start" in parts:
        from bench.startup import start_figures

        start_figures(args.repeats, browser)
    if "pages" in parts and browser:  # not in the default list: a server of its own, a minute or more
        from bench.pages import page_figures

        page_figures()
    if "scoring" in parts:
        from bench.startup import scoring_figures

        scoring_figures(args.scoring_repeats, args.quick_epochs, args.default_epochs)


if __name__ == "__main__":
    main()
