"""Sharing, in a real browser: a report opened from a file:// URL with the network cut off draws its charts, its
slider moves the grid and nothing leaves the page; a link with query parameters opens the same page, run and epoch
of the shipped demo, on a server with an empty checkpoints folder. Screenshots go to the test's tmp folder (and to
$GAN_STUDIO_SCREENS if set)."""

from __future__ import annotations

import shutil

import pytest

from gan.share.report import build_report
from tests.conftest import tiny_config, trained_run
from tests.servers import streamlit_server
from tests.test_browser import BROWSER_ARGS, CHROMIUM, SHARED_SCREENS, Screens

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no chromium at {CHROMIUM}")]


@pytest.fixture
def browser_page(tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()


def test_a_report_opens_offline_and_its_slider_moves_the_grid(tmp_path, browser_page):
    run = trained_run(tmp_path / "runs" / "shared", tiny_config(epochs=4, set_at=("5:lr_d=0.003",)))
    report = tmp_path / "report.html"
    report.write_text(build_report(run).html)
    page, left, errors = browser_page, [], []
    page.on("request", lambda request: None if request.url.startswith(("file:", "data:")) else left.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page.goto(report.as_uri())
    page.locator(".js-plotly-plot .main-svg").first.wait_for()
    assert page.locator(".js-plotly-plot").count() == 2  # the losses and D's beliefs (no scores: no FID chart)
    assert page.get_by_text("D learning rate 0.003").count() >= 1  # the change mid-run, marked on the charts
    grid, label = page.locator("#grid"), page.locator("#epoch-label")
    last = grid.get_attribute("src")
    assert label.text_content() == "4"
    slider = page.locator("#epoch")
    slider.focus()
    slider.press("Home")
    assert label.text_content() == "1" and grid.get_attribute("src") != last
    slider.press("ArrowRight")
    assert label.text_content() == "2"
    page.screenshot(path=tmp_path / "10-report.png", full_page=True)
    if SHARED_SCREENS:
        SHARED_SCREENS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "10-report.png", SHARED_SCREENS)
    assert not errors, errors
    assert not left, f"requests left the page: {left}"


def test_a_link_opens_the_same_page_run_and_epoch(tmp_path, browser_page):
    with streamlit_server(tmp_path / "checkpoints", tmp_path / "streamlit.log") as url:
        page = browser_page
        page.goto(f"{url}/?page=timeline&run=demo&epoch=7")
        page.get_by_role("heading", name="Timeline", exact=True).wait_for()
        page.get_by_text("Epoch 7: the same 100 noise vectors").wait_for()
        page.locator("[data-testid='stSidebar']").get_by_text("cdcgan · 20 of 20 epochs saved").wait_for()  # demo
        page.wait_for_url("**epoch=7**")
        assert "run=demo" in page.url and "page=timeline" in page.url
        slider = page.get_by_role("slider").first
        slider.focus()
        slider.press("ArrowRight")
        page.get_by_text("Epoch 8: the same 100 noise vectors").wait_for()
        page.wait_for_url("**epoch=8**")
        Screens(page, tmp_path).take("11-link-timeline-demo")
        moved = page.url
        page.goto(url)  # a fresh visit opens on the demo
        page.get_by_role("heading", name="Train", exact=True).wait_for()
        Screens(page, tmp_path).take("12-first-open")
        page.goto(moved)  # the link after moving opens where the user was
        page.get_by_text("Epoch 8: the same 100 noise vectors").wait_for()
