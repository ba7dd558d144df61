"""What a first-time learner relies on, driven by Streamlit's AppTest: choices kept across pages, the one-step
lesson telling its own batch from the probe digits, honest status while paused or stopped, settings shown as set."""

from __future__ import annotations

import pytest

from gan.lab.stepthrough import Measurement, OwnBatch, StepThrough
from gan.store.history import Player
from tests.conftest import tiny_config
from tests.test_app import (
    fresh_app,  # noqa: F401 - an autouse fixture: a fresh checkpoints root, no job
    open_app,
    saved_run,
)
from tests.test_app_experiment import long_job, wait_until
from tests.test_app_experiment import open_app as open_experiment
from views import common


@pytest.mark.slow
def test_the_chosen_run_and_the_explorers_seed_and_digit_survive_page_switches(root):
    saved_run(root, name="older", epochs=1)
    saved_run(root, name="newer", epochs=1)
    at = open_app(settings=False)
    at.selectbox(key="run").set_value("older").run()
    at.switch_page("views/latent.py").run(timeout=120)
    at.number_input(key="latent_seed").set_value(5).run(timeout=120)
    at.segmented_control(key="latent_digit").set_value(3).run(timeout=120)
    at.switch_page("views/timeline.py").run(timeout=120)
    at.switch_page("views/probe.py").run(timeout=120)
    at.switch_page("views/latent.py").run(timeout=120)
    assert not at.exception
    assert at.selectbox(key="run").value == "older"
    assert at.number_input(key="latent_seed").value == 5
    assert at.segmented_control(key="latent_digit").value == 3


def test_the_experiment_panel_shows_the_d_steps_a_run_takes(root):
    assert tiny_config().d_steps is None, "the loss's own number: one D step per G step"
    long_job()
    at = open_experiment()
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "running" and session.snapshot().step > 0)
    assert at.number_input(key="live_d_steps").value == 1


@pytest.mark.slow
def test_paused_and_stopped_runs_say_so_in_the_sidebar_the_progress_and_the_timeline(root):
    long_job()
    at = open_experiment()
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "running" and session.snapshot().step > 0)
    at.button(key="pause").click().run()
    wait_until(at, lambda: session.snapshot().status == "paused")
    sidebar = " ".join(caption.value for caption in at.sidebar.caption)
    assert "Paused" in sidebar and "Training now" not in sidebar
    assert "images/s" not in " ".join(str(bar.proto.text) for bar in at.get("progress"))
    session.stop(wait=30)
    step = session.snapshot().step
    at.run()
    assert f"stopped at step {step:,}, saved" in " ".join(caption.value for caption in at.sidebar.caption)
    at.switch_page("views/timeline.py").run()
    assert f"It stopped at step {step:,}" in " ".join(info.value for info in at.info)


@pytest.mark.slow
def test_a_collapsed_epoch_names_every_missing_digit_in_one_warning(root):
    at = open_app(settings=False)
    at.selectbox(key="run").set_value("mode-collapse").run()
    at.session_state["timeline_epoch_mode-collapse"] = 1
    at.switch_page("views/timeline.py").run(timeout=120)
    assert not at.exception
    balance = [warning.value for warning in at.warning if "Missing" in warning.value]
    assert len(balance) == 1, "one line, not one per digit"
    missing = balance[0].split("Missing: ")[1].split(".")[0].split(", ")
    assert len(missing) > 5 and "9" in missing, "digits past the fifth are named too"
    assert "Over-represented: 8." in balance[0]


@pytest.mark.slow
def test_play_moves_the_slider_and_the_charts_marker_to_the_last_epoch(root):
    saved_run(root, epochs=3)
    at = open_app(settings=False)
    at.session_state["timeline_epoch_saved"] = 1
    at.switch_page("views/timeline.py").run(timeout=120)
    assert at.select_slider(key="timeline_epoch_saved").value == 1
    at.button(key="timeline_play").click().run(timeout=300)
    assert not at.exception
    assert at.select_slider(key="timeline_epoch_saved").value == 3, "the slider went along"
    assert "Scores at epoch 3" in [header.value for header in at.subheader], "the page below followed"
    assert "timeline_play" in [button.key for button in at.button], "Play is offered again once played"


@pytest.mark.slow
def test_a_d_step_shows_its_own_batch_beside_the_fixed_digits(root):
    long_job()
    at = open_experiment()
    session = common.get_session()
    wait_until(at, lambda: session.snapshot().status == "running" and session.snapshot().step > 0)
    at.button(key="pause").click().run()
    wait_until(at, lambda: session.snapshot().status == "paused")
    at.button(key="step_d").click().run()
    wait_until(at, lambda: session.snapshot().step_through is not None)
    shown = session.snapshot().step_through
    assert len(shown.own.before) == len(shown.own.after) == tiny_config().batch_size, "the step's own real digits"
    assert any(metric.label.startswith("mean D(x) on the step's own") for metric in at.metric)


def test_the_lesson_says_in_words_when_the_own_batch_and_the_fixed_digits_disagree():
    def measured(step: int, d_real: float) -> Measurement:
        return Measurement(step, "bce", (d_real,) * 100, (0.3,) * 100, 1.0, 1.0, b"")

    own = OwnBatch(before=(0.40,) * 64, after=(0.55,) * 64)
    disagreeing = StepThrough(Player.D, measured(968, 0.72), measured(969, 0.43), own)
    lesson = disagreeing.lesson()
    assert "64 real digits of its own batch" in lesson and "+0.150" in lesson and "-0.290" in lesson
    agreeing = StepThrough(Player.D, measured(968, 0.40), measured(969, 0.45), own)
    assert agreeing.lesson() is None, "nothing to explain when both rise"
