"""The overview graph in a real browser: a run started from the page draws its graph live; paused, "Next sub-step"
walks one training step in ten sub-steps, each click lighting the next sub-step's part of the graph, and the step
counter has advanced by exactly one at the end. Prints the time from each click to its highlighted sub-step.
Screenshots of the graph go to the test's tmp folder (and to $GAN_STUDIO_SCREENS if set)."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.servers import streamlit_server
from tests.test_browser import (
    ADVANCED_SETTINGS,
    BROWSER_ARGS,
    CHROMIUM,
    RUN_SETTINGS,
    SHARED_SCREENS,
    TRAINING_WAIT,
    Screens,
    fill,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no chromium at {CHROMIUM}")]
GRAPH = "svg.ov"
# What each sub-step must light, and what it must leave dimmed, by the meaning of the sub-step
SUBSTEPS = {
    "D1": ({"noise", "generator", "fakes"}, {"reals", "loss_g"}),
    "D2": ({"reals", "fakes", "discriminator", "predictions"}, {"loss_g", "grad_g"}),
    "D3": ({"predictions", "loss_d"}, {"loss_g", "grad_g"}),
    "D4": ({"grad_d"}, {"grad_g", "loss_g"}),
    "D5": ({"discriminator"}, {"generator", "grad_g"}),
    "G1": ({"generator", "fakes"}, {"reals", "loss_d"}),
    "G2": ({"fakes", "discriminator", "predictions"}, {"reals", "loss_d"}),
    "G3": ({"loss_g"}, {"reals", "loss_d", "grad_d"}),
    "G4": ({"grad_g", "generator"}, {"reals", "grad_d"}),
    "G5": ({"generator"}, {"reals", "grad_d"}),
}
SHOTS = {"D2", "D5", "G4", "G5"}


@pytest.fixture
def server(tmp_path):
    with streamlit_server(tmp_path / "checkpoints", tmp_path / "streamlit.log") as url:
        yield url


def shoot_graph(page, folder, name: str) -> None:
    path = folder / f"{name}.png"
    for _ in range(3):  # a picture for the eye, not a check: the live fragment may swap the graph mid-shot
        try:
            page.locator(GRAPH).screenshot(path=path)
            break
        except sync_api.Error:
            continue
    else:
        return
    if SHARED_SCREENS:
        shutil.copy(path, SHARED_SCREENS / path.name)


def start_a_long_run(page, url: str) -> None:
    page.goto(url)
    page.get_by_text("Settings for a new run").click()
    for label, value in {**RUN_SETTINGS, "Run name": "overview", "Epochs": "1"}.items():
        fill(page, label, value)
    page.get_by_text("Advanced", exact=True).click()
    for label, value in {**ADVANCED_SETTINGS, "Batches per epoch": "100000"}.items():
        fill(page, label, value)
    page.get_by_text("Score each epoch with the digit judge").click()
    page.get_by_role("button", name="Start training").click()


def graph_state(page) -> dict:
    return page.locator(GRAPH).evaluate(
        "svg => ({substep: svg.dataset.substep, stepsDone: Number(svg.dataset.stepsDone), "
        "lit: [...svg.querySelectorAll('[data-node]')].filter(n => n.dataset.lit === 'true').map(n => n.dataset.node)})"
    )


def explains_itself_on_click(page) -> None:
    """A click on a part of the graph shows its note in the panel under the graph, in place of the hint."""
    hint, note = page.locator("#ov-help-default"), page.locator("#ov-help-discriminator")
    assert hint.is_visible() and not note.is_visible()
    page.locator("#ov-discriminator").click()
    note.wait_for(state="visible")
    assert not hint.is_visible() and "D scores each image" in note.text_content()


def walk_one_step(page, screens_folder) -> list[float]:
    """Click through the ten sub-steps; returns the seconds from each click to its sub-step lit on the graph."""
    start = None  # the step counter during the step's sub-steps (a step under way at the Pause may end after it)
    button = page.get_by_role("button", name="Next sub-step")
    seconds = []
    for substep, (lit, dimmed) in SUBSTEPS.items():
        clicked = time.perf_counter()
        button.click()
        page.wait_for_function(
            f"() => document.querySelector('{GRAPH}')?.dataset.substep === '{substep}'", timeout=TRAINING_WAIT
        )
        seconds.append(time.perf_counter() - clicked)
        state = graph_state(page)
        start = state["stepsDone"] if start is None else start
        assert lit <= set(state["lit"]) and not dimmed & set(state["lit"]), (substep, state["lit"])
        assert state["stepsDone"] == (start + 1 if substep == "G5" else start), substep
        page.get_by_text(f"{substep} of 10").first.wait_for()
        if substep in SHOTS:
            shoot_graph(page, screens_folder, f"overview-{substep}")
    page.get_by_text(f"step {start + 1:,} of").first.wait_for()
    return seconds


def test_slow_motion_lights_each_sub_step_and_advances_one_step(server, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(60_000)
        screens = Screens(page, tmp_path)
        try:
            start_a_long_run(page, server)
            page.locator(GRAPH).wait_for(timeout=TRAINING_WAIT)
            assert len(graph_state(page)["lit"]) == 10, "while training every part is lit"
            shoot_graph(page, tmp_path, "overview-training")
            page.get_by_role("button", name="Pause").click()
            page.get_by_role("button", name="Next sub-step").wait_for(timeout=TRAINING_WAIT)
            explains_itself_on_click(page)
            seconds = walk_one_step(page, tmp_path)
            screens.take("overview-after-slow-motion")
            print(
                f"\nclick to highlighted sub-step: median {sorted(seconds)[len(seconds) // 2]:.2f} s, "
                f"max {max(seconds):.2f} s ({', '.join(f'{s:.2f}' for s in seconds)})"
            )
            page.get_by_role("button", name="Stop").click()
            page.get_by_text("Stopped", exact=True).first.wait_for(timeout=TRAINING_WAIT)
        except Exception:
            screens.take("overview-failed")
            raise
        finally:
            browser.close()
