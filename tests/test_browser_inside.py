"""In a real browser: draw a digit on the canvas and get a verdict, find it in the latent space, and click a
point of the D's-eye map. A tiny run is trained before the server starts. Screenshots go to the test's tmp folder
(and to $GAN_STUDIO_SCREENS if set)."""

from __future__ import annotations

import pytest

from gan.jobs.runner import prepare_trainer, train_run
from gan.store.run import Run
from tests.conftest import tiny_config
from tests.servers import streamlit_server
from tests.test_browser import BROWSER_ARGS, CHROMIUM, Screens

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no chromium at {CHROMIUM}")]
WAIT = 120_000  # ms; the CPU may be shared with other jobs


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "checkpoints"
    run = Run(root / "tiny")
    train_run(run, prepare_trainer(run, tiny_config("cdcgan", epochs=2, batch_size=32)))
    with streamlit_server(root, tmp_path / "streamlit.log") as url:
        yield url


def draw_a_one(page) -> None:
    """A vertical stroke down the middle of the drawing canvas (Fabric.js listens on its upper canvas)."""
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(timeout=WAIT)
    box = canvas.bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x + step * 0.5, box["y"] + box["height"] * (0.15 + 0.035 * step))
    page.mouse.up()


def test_draw_a_digit_get_a_verdict_and_click_the_map(server, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(WAIT)
        screens = Screens(page, tmp_path)
        try:
            page.goto(f"{server}/probe")
            page.get_by_role("heading", name="Your digit", exact=True).wait_for()
            draw_a_one(page)
            page.get_by_text("The judge reads").wait_for()
            page.get_by_text("chance of being real").wait_for()
            screens.take("inside-01-drawn-digit")
            page.get_by_role("button", name="Find my digit").click()
            page.get_by_text("at a pixel distance of").wait_for()
            screens.take("inside-02-found-in-latent-space")

            page.get_by_role("link", name="Timeline", exact=True).click()
            page.get_by_text("Click a point on the map").wait_for()
            # the map's second trace holds the generated samples; its points are SVG paths
            chart = page.locator("[class*='st-key-inside_map_tiny_2']")
            point = chart.locator(".scatterlayer .trace").nth(1).locator(".points path").first
            point.wait_for()
            point.click(force=True)
            page.get_by_text("Generated sample #").first.wait_for()
            page.get_by_text("D: probability it is real").wait_for()
            screens.take("inside-03-map-point-clicked")
        except Exception:
            screens.take("inside-failed")
            raise
        finally:
            browser.close()
