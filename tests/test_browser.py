"""End to end in a real browser: `streamlit run app.py`, a tiny run started from the page, the live chart, the
timeline slider, the latent page. Screenshots go to the test's tmp folder (and to $GAN_STUDIO_SCREENS if set)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.servers import streamlit_server

CHROMIUM = Path("/usr/bin/chromium")
SHARED_SCREENS = Path(os.environ["GAN_STUDIO_SCREENS"]) if os.environ.get("GAN_STUDIO_SCREENS") else None
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# a second or so an epoch on two idle cores (more when the CPU is shared): often still running at the first look
RUN_SETTINGS = {"Run name": "browser", "Epochs": "3", "Batch size": "32", "Latent size": "8"}
ADVANCED_SETTINGS = {"Width": "4", "Batches per epoch": "80"}
TRAINING_WAIT = 180_000  # ms; generous, as the CPU may be shared with other jobs

SCROLL_HEIGHT = "() => document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight + 120"

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no chromium at {CHROMIUM}")]


@pytest.fixture
def server(tmp_path):
    with streamlit_server(tmp_path / "checkpoints", tmp_path / "streamlit.log") as url:
        yield url


class Screens:
    def __init__(self, page, folder: Path):
        self.page, self.folder = page, folder
        if SHARED_SCREENS:
            SHARED_SCREENS.mkdir(parents=True, exist_ok=True)

    def take(self, name: str) -> None:
        """The whole page: Streamlit scrolls inside its own container, so the window is stretched to fit it."""
        path = self.folder / f"{name}.png"
        size = self.page.viewport_size
        height = self.page.evaluate(SCROLL_HEIGHT)
        self.page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(height, 5000))})
        self.page.wait_for_timeout(1000)  # let charts and images redraw at the new size
        self.page.screenshot(path=path)
        self.page.set_viewport_size(size)
        if SHARED_SCREENS:
            shutil.copy(path, SHARED_SCREENS / path.name)


def fill(page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Tab")


def test_train_watch_and_travel_in_a_real_browser(server, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(30_000)
        screens = Screens(page, tmp_path)
        try:
            walk_through(page, server, screens)
        except Exception:
            screens.take("failed")  # what the page showed when a wait ran out
            raise
        finally:
            browser.close()
    assert (tmp_path / "checkpoints" / "browser" / "epoch-0003.png").is_file()


def walk_through(page, url: str, screens: Screens) -> None:
    page.goto(f"{url}/timeline")  # a deep link as the server's first request still gets the app's frame
    page.get_by_role("link", name="Latent space", exact=True).wait_for()
    page.get_by_role("heading", name="Timeline", exact=True).wait_for()
    page.goto(url)
    page.get_by_text("Train your own GAN").first.wait_for()
    screens.take("01-first-visit")

    page.get_by_text("Settings for a new run").click()
    for label, value in RUN_SETTINGS.items():
        fill(page, label, value)
    page.get_by_text("Advanced", exact=True).click()
    for label, value in ADVANCED_SETTINGS.items():
        fill(page, label, value)
    page.get_by_text("Score each epoch with the digit judge").click()
    page.get_by_role("button", name="Start training").click()

    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=60_000)
    page.get_by_text("Epoch 2 of 3").or_(page.get_by_text("Done: 3 epochs saved")).first.wait_for(timeout=TRAINING_WAIT)
    screens.take("02-training-live")
    page.get_by_text("Done: 3 epochs saved").wait_for(timeout=TRAINING_WAIT)
    screens.take("03-training-finished")

    page.get_by_role("link", name="Timeline", exact=True).click()
    slider = page.get_by_role("slider").first
    slider.wait_for()
    page.get_by_text("Epoch 3: the same 100 noise vectors").wait_for()
    screens.take("04-timeline-epoch-3")
    slider.focus()
    slider.press("Home")
    page.get_by_text("Epoch 1: the same 100 noise vectors").wait_for()
    screens.take("05-timeline-epoch-1")

    page.get_by_role("link", name="Latent space", exact=True).click()
    page.get_by_text("Real unseen (test) digits are typically").wait_for(timeout=60_000)
    page.get_by_text("moved by the sliders").wait_for(timeout=60_000)  # the last section
    screens.take("06-latent-space")


def test_a_learning_rate_changed_while_training_is_marked_on_the_chart(server, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(60_000)
        screens = Screens(page, tmp_path)
        try:
            change_while_training(page, server, screens)
        except Exception:
            screens.take("change-failed")
            raise
        finally:
            browser.close()


def change_while_training(page, url: str, screens: Screens) -> None:
    page.goto(url)
    page.get_by_text("Settings for a new run").click()
    for label, value in {**RUN_SETTINGS, "Run name": "changed", "Epochs": "1"}.items():
        fill(page, label, value)
    page.get_by_text("Advanced", exact=True).click()
    for label, value in {**ADVANCED_SETTINGS, "Batches per epoch": "100000"}.items():
        fill(page, label, value)
    page.get_by_text("Score each epoch with the digit judge").click()
    page.get_by_role("button", name="Start training").click()
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=TRAINING_WAIT)

    page.get_by_text("Experiment: change settings, step one player").click()
    form = page.locator("[data-testid='stForm']").filter(has_text="Change while it trains")
    field = form.get_by_label("D learning rate", exact=True)
    field.fill("0.002")
    field.press("Tab")
    form.get_by_role("button", name="Apply").click()
    marker = page.locator("[data-testid='stPlotlyChart']").first.get_by_text("D learning rate 0.002")
    marker.wait_for(timeout=TRAINING_WAIT)
    screens.take("07-learning-rate-changed")
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Stopped", exact=True).first.wait_for(timeout=TRAINING_WAIT)


def test_the_timeline_of_a_training_run_follows_its_new_epochs(server, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(60_000)
        screens = Screens(page, tmp_path)
        try:
            follow_while_training(page, server, screens)
        except Exception:
            screens.take("follow-failed")
            raise
        finally:
            browser.close()


def follow_while_training(page, url: str, screens: Screens) -> None:
    """Open the Timeline while epoch 1 trains: with no click, it shows each new epoch once it is saved."""
    page.goto(url)
    page.get_by_text("Settings for a new run").click()
    for label, value in {**RUN_SETTINGS, "Run name": "followed"}.items():
        fill(page, label, value)
    page.get_by_text("Advanced", exact=True).click()
    for label, value in {**ADVANCED_SETTINGS, "Batches per epoch": "200"}.items():
        fill(page, label, value)
    page.get_by_text("Score each epoch with the digit judge").click()
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Epoch 1 of 3").first.wait_for(timeout=TRAINING_WAIT)
    page.get_by_role("link", name="Timeline", exact=True).click()
    page.get_by_text("This run is training now").wait_for()
    before_the_last = [page.get_by_text(text) for text in ("has no saved epochs yet", "Only epoch 1 is saved so far")]
    before_the_last.append(page.get_by_text("Epoch 2: the same 100 noise vectors"))
    before_the_last[0].or_(before_the_last[1]).or_(before_the_last[2]).first.wait_for(timeout=TRAINING_WAIT)
    screens.take("08-timeline-following")
    page.get_by_text("Epoch 3: the same 100 noise vectors").wait_for(timeout=TRAINING_WAIT)
