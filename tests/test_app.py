"""The app, driven by Streamlit's AppTest: tiny runs, widgets found by key, no exception on any page."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from gan.config import Config
from gan.jobs.runner import prepare_trainer, train_run
from gan.jobs.session import Status
from gan.store.run import Run
from tests.conftest import DEEP, bad_run, tiny_config, wait_for
from views import common

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app.py"
TINY_FORM = {"cfg_epochs": 2, "cfg_batch_size": 32, "cfg_width": 4, "cfg_latent_dim": 8, "cfg_steps_per_epoch": 3}
LONG_FORM = {**TINY_FORM, "cfg_steps_per_epoch": 1000}  # seconds per epoch: still running when the test acts


def stop_and_forget() -> None:
    """Stop the process-wide job and drop the cached session. Streamlit's other caches stay (MNIST, the map's real
    digits, models keyed by their file's path and time): what they hold depends on nothing a test changes, and
    filling them again costs seconds a test."""
    common.get_session().stop(wait=5)
    common.get_session.clear()


@pytest.fixture(autouse=True)
def fresh_app(root):
    """Every test: its own checkpoints root (the `root` fixture sets $GAN_STUDIO_CHECKPOINTS), no job running."""
    stop_and_forget()
    yield
    stop_and_forget()


def open_app(settings: bool = True) -> AppTest:
    """The app's first page, with its settings expander opened (as a click would: its form is drawn only while open)."""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    if settings:
        at.session_state["settings_open"] = True
        at.run()
        assert not at.exception
    return at


def fill_form(at: AppTest, **values) -> AppTest:
    at.checkbox(key="cfg_evaluate").uncheck()
    for key, value in values.items():
        widget = at.text_input(key=key) if key == "cfg_name" else at.number_input(key=key)
        widget.set_value(value)
    return at


def start(at: AppTest, **values) -> AppTest:
    fill_form(at, **values).button(key="start").click().run()
    assert not at.exception
    return at


def wait_until(at: AppTest, condition) -> None:
    """Rerun the page (as the live fragment would) until the condition holds, then draw it once more."""

    def rerun_until() -> bool:
        if condition():
            return True
        assert not at.run().exception
        return False

    wait_for(rerun_until, every=0.3)
    assert not at.run().exception


def settled_step(session) -> int:
    """The step count once it has stopped changing for a moment."""
    steps = [-1]
    wait_for(lambda: steps.append(session.snapshot().step) or steps[-1] == steps[-2], every=0.4)
    return steps[-1]


def saved_run(root: Path, name: str = "saved", epochs: int = 3, preset: str = "cdcgan") -> Run:
    run = Run.at(name, root)
    train_run(run, prepare_trainer(run, tiny_config(preset, epochs=epochs, batch_size=32)))
    return run


def texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "success", "warning", "error")
    return "\n".join(str(element.value) for kind in kinds for element in getattr(at, kind))


@pytest.fixture
def downloads(monkeypatch) -> dict[str, object]:
    """The data behind each download button drawn, by key (bytes, or the function that makes them on a click)."""
    offered: dict[str, object] = {}
    real = common.download

    def download(label, data, file_name, key):
        offered[key] = data
        real(label, data, file_name, key)

    monkeypatch.setattr(common, "download", download)
    return offered


def gif_frames(data: bytes) -> int:
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "GIF"
    return picture.n_frames


def test_without_runs_of_ones_own_the_app_shows_the_demo_and_how_to_start(root):
    at = open_app(settings=False)
    assert "Train your own GAN" in texts(at) and "two networks trained against each other" in texts(at)
    assert at.button(key="quick_start").proto.type == "primary"
    assert at.selectbox(key="run").value == "demo"  # every page has a run to show (tests/test_demo.py walks them)
    assert at.selectbox(key="run").options[:2] == ["demo (demo)", "mode-collapse (demo)"]


def test_the_settings_form_opens_with_its_expander_and_starts_from_a_presets_defaults(root):
    at = open_app(settings=False)
    essay = "two networks trained against each other"
    settings = [widget for widget in at.number_input if widget.key.startswith("cfg_")]
    assert essay in texts(at) and not settings  # a first visit: the explainer open, the settings closed
    at.session_state["explainer_open"] = False
    at.session_state["settings_open"] = True
    at.run()
    assert essay not in texts(at)
    assert at.selectbox(key="cfg_preset").value == "cdcgan"
    assert at.number_input(key="cfg_batch_size").value == Config.for_preset("cdcgan").batch_size
    assert not at.button(key="start").disabled


@pytest.mark.parametrize(
    ("settings", "named"),
    [({"cfg_lr_g": 0.0}, "G learning rate"), ({"cfg_epochs": 0}, "Epochs"), ({"cfg_name": "../x"}, "Run name")],
)
def test_an_invalid_setting_is_explained_and_starts_nothing(root, settings, named):
    at = start(open_app(), **{**TINY_FORM, **settings})
    assert len(at.error) == 1 and named in at.error[0].value
    assert common.get_session().snapshot().status == "idle"
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.slow
def test_a_tiny_run_shows_charts_progress_and_saved_epochs(root):
    at = start(open_app(), **TINY_FORM, cfg_name="tiny")
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "finished")
    assert session.snapshot().saved_epochs == (1, 2)
    assert len(at.get("plotly_chart")) == 2
    assert at.get("progress")[0].value == 100
    assert "Done: 2 epochs saved" in texts(at)
    assert Run.at("tiny", root).epochs() == [1, 2]


def test_a_second_tab_attaches_to_the_running_job(root):
    stale = open_app()  # opened before the job starts, so its Start button is still enabled
    start(open_app(), **LONG_FORM, cfg_name="first")
    session = common.get_session()
    started = session.snapshot().started
    second = open_app()
    assert any(header.value == "Run first" for header in second.subheader)
    assert second.button(key="start").disabled
    start(stale, **TINY_FORM, cfg_name="second")
    assert "already running" in stale.error[0].value
    assert any(header.value == "Run first" for header in stale.subheader)
    assert session.snapshot().run_name == "first" and session.snapshot().started == started
    assert not (root / "second").exists()


def test_stop_ends_the_thread_and_saves_the_state(root):
    at = start(open_app(), **LONG_FORM, cfg_name="long")
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == Status.RUNNING and session.snapshot().step > 0)
    at.button(key="stop").click().run()
    wait_for(lambda: not session.is_alive())
    assert session.snapshot().status == Status.STOPPED and Run.at("long", root).latest_path.is_file()
    at.run()
    assert not at.exception and not at.button(key="start").disabled


def test_clearing_streamlits_caches_stops_the_job(root):
    start(open_app(), **LONG_FORM, cfg_name="released")
    session = common.get_session()
    wait_for(lambda: session.snapshot().status == Status.RUNNING)
    st.cache_resource.clear()  # what the menu's "Clear caches" does
    assert not session.is_alive() and session.snapshot().status == Status.STOPPED
    assert common.get_session() is not session


@pytest.mark.slow
def test_the_timeline_slider_changes_the_shown_epoch(root, downloads):
    saved_run(root)
    at = open_app()
    at.switch_page("views/timeline.py").run(timeout=120)  # the first look also places the map's real digits
    assert not at.exception
    slider = at.select_slider(key="timeline_epoch_saved")
    assert slider.value == 3 and at.image[0].captions[0].startswith("Epoch 3")
    slider.set_value(1).run()
    assert not at.exception
    assert at.image[0].captions[0].startswith("Epoch 1")
    at.button(key="timeline_play").click().run(timeout=120)  # animates epochs 1-3 (grid and map), the slider along
    assert not at.exception
    assert at.image[0].captions[0].startswith("Epoch 3"), "Play ends on the last epoch, the slider with it"
    assert Image.open(io.BytesIO(downloads["timeline_png"])).size == Image.open(Run.at("saved", root).grid_path(1)).size
    assert callable(downloads["timeline_gif"]), "the animation is made only when asked for"
    assert gif_frames(downloads["timeline_gif"]()) == 3


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cdcgan", "classic"])
def test_the_latent_page_draws_grids_an_interpolation_and_neighbours(root, preset, downloads):
    saved_run(root, epochs=1, preset=preset)
    at = open_app()
    at.switch_page("views/latent.py").run(timeout=120)
    assert not at.exception
    captions = [caption for image in at.image for caption in image.captions]
    assert any(("Row r is digit r" if preset == "cdcgan" else "100 samples for seed 0") in text for text in captions)
    interpolated = "seed 1 (a 1) → seed 2 (a 7)" if preset == "cdcgan" else "seed 1 → seed 2"  # the digits named
    assert any(interpolated in caption for caption in captions)
    assert any("distance" in caption for caption in captions)
    assert "nearest training digit" in texts(at)
    assert callable(downloads["latent_strip_gif"]) and gif_frames(downloads["latent_strip_gif"]()) == 2 * 10 - 2
    for key in ("latent_samples_png", "latent_strip_png", "latent_neighbours_png", "latent_moved_png"):
        assert Image.open(io.BytesIO(downloads[key])).format == "PNG"
    if preset == "cdcgan":
        at.segmented_control(key="latent_digit").set_value(7).run()
        assert not at.exception
        assert any("asked to be a 7" in caption for image in at.image for caption in image.captions)


@pytest.mark.slow
def test_the_timeline_shows_an_epochs_scores_when_present(root):
    run = saved_run(root, epochs=2)
    scores = {
        **{"fid": 42.5, "classifier_score": 7.1, "histogram": [0.1] * 10, "classes_covered": 9},
        **{
            "mean_confidence": 0.8,
            "label_agreement": 0.7,
            "warnings": ["digit 1 is missing (0.0% of samples, expected ~10%)"],
        },
    }
    records = [
        {**record.to_dict(), "scores": scores} if record.kind == "epoch" else record.to_dict()
        for record in run.history()
    ]
    (run.path / "history.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    at = open_app()
    at.switch_page("views/timeline.py").run()
    assert not at.exception
    assert {metric.label: metric.value for metric in at.metric}["FID"] == "42.5"
    assert any(warning.value.startswith("Missing: 1.") for warning in at.warning), "the judge's warning, in words"
    charts = " ".join(chart.proto.id for chart in at.get("plotly_chart"))
    for key in ("timeline_losses", "timeline_beliefs", "timeline_histogram", "timeline_fid"):
        assert key in charts


@pytest.mark.slow
def test_turning_the_live_view_off_says_so_and_training_goes_on(root):
    at = start(open_app(), **LONG_FORM, cfg_name="quiet")
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "running")
    assert "Live view is off" not in texts(at)
    at.toggle(key="live_view").set_value(False).run()
    assert "Live view is off" in texts(at)
    step = session.snapshot().step
    wait_until(at, lambda: session.snapshot().step > step + 2)
    assert session.snapshot().status == "running"
    at.toggle(key="live_view").set_value(True).run()
    assert "Live view is off" not in texts(at)


@pytest.mark.slow
def test_pause_and_resume_are_enabled_only_when_they_apply(root):
    at = start(open_app(), **LONG_FORM, cfg_name="pausable")
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "running")
    assert not at.button(key="pause").disabled and at.button(key="resume").disabled
    at.button(key="pause").click().run()
    assert session.snapshot().status == "paused"
    assert at.button(key="pause").disabled and not at.button(key="resume").disabled
    step = settled_step(session)  # the step in flight when Pause came may still finish
    time.sleep(0.5)
    assert session.snapshot().step == step
    at.button(key="resume").click().run()
    assert session.snapshot().status == "running"


@pytest.mark.slow
def test_a_finished_run_can_be_continued(root):
    run = saved_run(root, epochs=2)
    at = open_app()
    at.number_input(key="continue_epochs_saved").set_value(3)
    at.button(key="continue").click().run()
    assert not at.exception
    wait_until(at, lambda: common.get_session().snapshot().status == "finished")
    assert run.epochs() == [1, 2, 3]


# --- server settings (.streamlit/config.toml) ---


def server_settings() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())


def test_the_config_binds_the_server_to_this_machine_only():
    assert server_settings()["server"]["address"] in ("localhost", "127.0.0.1", "::1")


def test_the_config_turns_off_the_rerun_gc_and_the_file_watcher():
    """Streamlit's defaults stall a training thread: a full garbage collection after every rerun holds the GIL for
    about 0.2 s (once a second while the page polls), and a polling file watcher wakes up all the time. What they
    cost is measured by bench/live_overhead.py; this checks only that the settings are there."""
    settings = server_settings()
    assert settings["runner"]["postScriptGC"] is False
    assert settings["server"]["fileWatcherType"] == "none"


def test_plain_text_escapes_markdown_links_and_images():
    from views.common import plain

    text = plain("[click](https://evil.example) ![x](https://evil.example/x.png) :red[boo]\nnext")
    assert "](" not in text.replace("\\]\\(", "") and "\\!\\[" in text and "\n" not in text and "\\:red\\[" in text


@pytest.fixture
def poisoned_app(root, good) -> AppTest:
    """The app with a good run and a poisoned one (config nested 100,000 deep, history without step numbers)."""
    (bad_run(root).path / "config.json").write_text(DEEP)
    with open(good.path / "history.jsonl", "a") as handle:
        handle.write('{"kind": "step"}\n{"kind": "epoch"}\n')
    return open_app(settings=False)


@pytest.mark.parametrize("page", ["views/train.py", "views/timeline.py", "views/latent.py"])
def test_a_poisoned_run_is_listed_with_its_reason_on_every_page(poisoned_app, page):
    poisoned_app.switch_page(page).run()
    assert not poisoned_app.exception
    options = set(poisoned_app.selectbox(key="run").options)
    assert options == {"demo (demo)", "mode-collapse (demo)", "good", "bad (unreadable)"}
    poisoned_app.selectbox(key="run").set_value("bad").run()
    assert not poisoned_app.exception
    assert any("nested too deeply" in caption.value for caption in poisoned_app.sidebar.caption)
    if page != "views/train.py":  # the pages that show a run's contents also say, in the page, why they cannot
        assert "unreadable" in poisoned_app.error[0].value


@pytest.mark.parametrize("page", [pytest.param("views/timeline.py", marks=pytest.mark.slow), "views/latent.py"])
def test_the_good_run_beside_a_poisoned_one_works(poisoned_app, page):
    poisoned_app.selectbox(key="run").set_value("good").run()
    poisoned_app.switch_page(page).run()
    assert not poisoned_app.exception and not poisoned_app.error
    assert poisoned_app.get("imgs") or poisoned_app.get("image")


def test_continue_of_a_run_with_a_poisoned_history_trains_on(poisoned_app):
    poisoned_app.selectbox(key="run").set_value("good").run()
    poisoned_app.number_input(key="continue_epochs_good").set_value(3).run()
    poisoned_app.button(key="continue").click().run()
    assert not poisoned_app.exception
    session = common.get_session()
    session._thread.join(120)
    assert session.snapshot().status == "finished", session.snapshot().error
