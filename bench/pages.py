"""Each page's time to its first screen and to its full render, in headless chromium, on a fresh server whose runs
are the shipped demo runs (the first visit of each page: nothing cached yet). The first screen is the page's title;
the full render is the moment Streamlit stops running the page's script (its status widget gone) with no spinner
left. The first page visited also gets its first sign of life: the title, or the note a fresh server shows while it
loads PyTorch. Optionally saves a full-page screenshot of each.

Usage: python bench/latency.py --only pages   (or python bench/pages.py [--shots DIR] [--checkpoints DIR])
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from bench.latency import BROWSER_ARGS, CHROMIUM, start_server, stop_server, wait_for_health  # noqa: E402

PAGES = {
    "train": "Train",
    "timeline": "Timeline",
    "latent": "Latent space",
    "compare": "Compare runs",
    "probe": "Your digit",
}
FULL_LIMIT = 90  # seconds; a page still running then is printed as "inf"
SCREENS = 6
LOADING = "Starting GAN Studio"  # the note a fresh server's first page shows while it loads (app.py)
BUSY = "[data-testid='stStatusWidget'], [data-testid='stSpinner']"


def visit(page, url: str, path: str, title: str, shots: Path | None) -> tuple[float, float, float]:
    """Seconds to the first sign of life, to the title and to the end of the page's run, from the click on its
    address."""
    started = time.perf_counter()
    page.goto(f"{url}/{'' if path == 'train' else path}")
    heading = page.get_by_role("heading", name=title, exact=True).first
    heading.or_(page.get_by_text(LOADING).first).first.wait_for(timeout=120_000)
    sign = time.perf_counter() - started
    heading.wait_for(timeout=120_000)
    first = time.perf_counter() - started
    page.wait_for_timeout(300)  # the status widget appears shortly after the first delta
    try:
        page.wait_for_function(f'!document.querySelector("{BUSY}")', timeout=FULL_LIMIT * 1000, polling=100)
        full = time.perf_counter() - started
    except PlaywrightTimeout:  # e.g. a fragment that reruns on a timer keeps the status widget up
        full = float("inf")
    if shots is not None:
        scroll_shots(page, shots / path)
    return sign, first, full


def scroll_shots(page, stem: Path) -> None:
    """The page screen by screen: Streamlit scrolls its main block, not the document, so a full-page shot would
    show the first screen only."""
    main = page.locator("[data-testid='stMain']")
    height = main.evaluate("element => element.scrollHeight")
    for index in range(min(SCREENS, 1 + int(height) // 800)):
        main.evaluate(f"element => element.scrollTo(0, {index * 800})")
        page.wait_for_timeout(200)
        page.screenshot(path=f"{stem}-{index}.png")


def page_figures(shots: Path | None = None, checkpoints: Path | None = None) -> None:
    """Each page's first visit on a fresh server; its runs are the demo runs, and those in `checkpoints` if given."""
    from playwright.sync_api import sync_playwright

    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as empty, sync_playwright() as playwright:
        server, url = start_server(str(checkpoints or empty))
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            wait_for_health(url)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for path, title in PAGES.items():
                sign, first, full = visit(page, url, path, title, shots)
                shown = f" · first sign {sign:5.2f} s" if path == next(iter(PAGES)) else ""  # the server's first
                print(f"(p) {title:<13} first screen {first:6.2f} s · full render {full:6.2f} s{shown}", flush=True)
        finally:
            browser.close()
            stop_server(server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=Path, default=None, help="save a full-page screenshot of each page here")
    parser.add_argument("--checkpoints", type=Path, default=None, help="a checkpoints folder of runs to open")
    arguments = parser.parse_args()
    page_figures(arguments.shots, arguments.checkpoints)
