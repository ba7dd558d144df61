"""What a first-time learner relies on, driven by Streamlit's AppTest: choices kept across pages, the one-step
lesson telling its own batch from the probe digits, honest status while paused or stopped, settings shown as set."""

from __future__ import annotations

import pytest

from tests.test_app import open_app, saved_run


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
