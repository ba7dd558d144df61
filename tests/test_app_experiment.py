"""The app's experiment controls, driven by AppTest: settings changed while a job runs (and marked on its charts),
single steps while paused, failure recipes, and the Compare page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import gan.lab.recipes
from gan.jobs.runner import prepare_trainer, train_run
from gan.lab.recipes import Recipe
from gan.store.run import Run
from tests.conftest import tiny_config
from tests.test_app import fresh_app  # noqa: F401 - an autouse fixture: a fresh checkpoints root, no job
from views import common

APP = Path(__file__).resolve().parents[1] / "app.py"
WAITING = "the job takes it at its next step"


def open_app() -> AppTest:
    """The app's first page with the Experiment and Failure recipes expanders open, as clicks would open them (their
    content is drawn only while open)."""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    at.session_state["experiment_open"] = at.session_state["recipes_open"] = True
    at.run()
    assert not at.exception
    return at


def wait_until(at: AppTest, condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
        at.run()
        assert not at.exception
    at.run()
    assert not at.exception


def captions(at: AppTest) -> str:
    return "\n".join(caption.value for caption in at.caption)


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def long_job(name: str = "live") -> None:
    session = common.get_session()
    assert session.start(tiny_config(epochs=1, steps_per_epoch=1_000_000), name)


def test_a_learning_rate_changed_while_training_is_applied_and_marked_on_the_charts(root):
    long_job()
    at = open_app()
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "running" and session.snapshot().step > 0)
    assert at.number_input(key="live_lr_d").value == pytest.approx(tiny_config().lr_d)
    at.number_input(key="live_lr_d").set_value(0.002)
    at.button(key="live_apply").click().run()
    assert not at.exception
    wait_until(at, lambda: session.snapshot().changes)
    snapshot = session.snapshot()
    assert snapshot.config.lr_d == 0.002 and [c.field for c in snapshot.changes] == ["lr_d"]
    labels = [a["text"] for spec in chart_specs(at) for a in spec["layout"].get("annotations", [])]
    assert labels.count("D learning rate 0.002") == 2, "a labelled line on both live charts"
    assert at.number_input(key="live_lr_d").value == pytest.approx(0.002)
    assert WAITING not in captions(at)


def test_apply_returns_at_once_and_the_page_shows_the_change_once_the_job_takes_it(root, monkeypatch):
    long_job()
    at = open_app()
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "running")
    requests = []
    monkeypatch.setattr(session, "change", lambda field, value: requests.append((field, value)) or True)
    at.number_input(key="live_lr_d").set_value(0.002)
    at.button(key="live_apply").click().run()
    assert not at.exception and requests == [("lr_d", 0.002)]
    assert WAITING in captions(at), "sent, and the page says it is on its way"
    monkeypatch.undo()  # now the job gets it
    assert session.change("lr_d", 0.002)
    wait_until(at, lambda: session.snapshot().changes)
    assert WAITING not in captions(at)
    labels = [a["text"] for spec in chart_specs(at) for a in spec["layout"].get("annotations", [])]
    assert "D learning rate 0.002" in labels


def test_a_bad_live_value_is_explained_and_changes_nothing(root):
    long_job()
    at = open_app()
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "running")
    at.number_input(key="live_ema_decay").set_value(1.5)
    at.button(key="live_apply").click().run()
    assert "EMA decay" in at.error[0].value and r"ema\_decay\=1\.5" in at.error[0].value
    assert session.snapshot().changes == ()


def test_closed_experiment_and_recipe_panels_draw_nothing_the_live_view_would_redraw(root):
    """Every live redraw re-renders the whole page in the browser: closed panels must stay empty."""
    long_job()
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "running")
    keys = {"live_lr_d", "live_apply", "step_d", "recipe_mode-collapse"}
    drawn = {widget.key for kind in ("number_input", "button") for widget in at.get(kind)}
    assert not keys & drawn
    at.session_state["experiment_open"] = at.session_state["recipes_open"] = True
    at.run()
    drawn = {widget.key for kind in ("number_input", "button") for widget in at.get(kind)}
    assert keys <= drawn


@pytest.mark.slow
@pytest.mark.parametrize("players, grid_same", [("d", True), ("g", False)])
def test_a_single_step_while_paused_shows_before_and_after(root, players, grid_same):
    long_job()
    at = open_app()
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "running" and session.snapshot().step > 0)
    assert at.button(key=f"step_{players}").disabled, "only while paused"
    at.button(key="pause").click().run()
    step = session.snapshot().step
    at.button(key=f"step_{players}").click().run()
    assert not at.exception
    wait_until(at, lambda: session.snapshot().step_through is not None)
    shown = session.snapshot().step_through
    assert shown.players == players and shown.after.step == shown.before.step + 1 >= step + 1
    assert session.snapshot().status == "paused"
    titles = [spec["layout"]["title"]["text"] for spec in chart_specs(at)]
    assert "D(x) on 100 real digits" in titles and "D(G(z)) on the 100 fixed-noise fakes" in titles
    assert {metric.label for metric in at.metric} >= {"D loss", "G loss", "mean D(x)", "mean D(G(z))"}
    captions = [caption for image in at.image for caption in image.captions]
    assert any(caption.startswith("G's samples before") for caption in captions)
    assert ("a D step leaves G untouched" in " ".join(c.value for c in at.caption)) == grid_same


def test_a_recipe_button_starts_its_run(root, monkeypatch):
    tiny = Recipe("mode-collapse", "Mode collapse", "what", "watch", "teaches", tiny_config("classic").to_dict())
    monkeypatch.setitem(gan.lab.recipes.RECIPES, "mode-collapse", tiny)
    at = open_app()
    at.button(key="recipe_mode-collapse").click().run()
    assert not at.exception
    session = common.get_session()
    assert session.snapshot().run_name.startswith("mode-collapse-")
    wait_until(at, lambda: session.snapshot().status == "finished")
    assert session.snapshot().config.preset == "classic"


def saved(root: Path, name: str, **settings) -> Run:
    run = Run.at(name, root)
    train_run(run, prepare_trainer(run, tiny_config(epochs=2, **settings)))
    return run


@pytest.mark.slow
def test_the_compare_page_overlays_runs_and_lists_what_differs(root):
    saved(root, "calm")
    saved(root, "fast-d", lr_d=0.002, set_at=("4:loss=hinge",))
    at = open_app()
    at.switch_page("views/compare.py").run()
    assert not at.exception
    assert sorted(at.multiselect(key="compare_runs").value) == ["calm", "fast-d"]
    table = at.dataframe[0].value
    settings = dict(zip(table["setting"], table["fast-d"], strict=True))
    assert settings["D learning rate"] == "0.002" and settings["changes mid-run"] == "step 4: loss bce -> hinge"
    specs = chart_specs(at)
    assert {trace["name"] for spec in specs for trace in spec["data"]} == {"calm", "fast-d"}
    assert any(a["text"] == "Loss hinge" for spec in specs for a in spec["layout"].get("annotations", []))
    assert sorted(image.captions[0] for image in at.image) == ["calm, epoch 2", "fast-d, epoch 2"]
    at.segmented_control(key="compare_axis").set_value("images").run()
    assert not at.exception
    assert chart_specs(at)[0]["layout"]["xaxis"]["title"]["text"] == "images seen"


def test_a_critic_gets_its_own_chart_instead_of_beliefs(root):
    session = common.get_session()
    assert session.start(tiny_config(epochs=1, steps_per_epoch=1_000_000, loss="wgan-gp"), "critic")
    at = open_app()
    wait_until(at, lambda: len(session.snapshot().history) > 2)
    titles = [spec["layout"]["title"]["text"] for spec in chart_specs(at)]
    assert titles == ["Losses", "What D believes", common.CRITIC_TITLE]
    beliefs = chart_specs(at)[1]
    assert all(value is None for trace in beliefs["data"] for value in trace["y"]), "no beliefs drawn for a critic"
