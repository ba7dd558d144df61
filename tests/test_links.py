"""Links that reproduce a view: a link's page, run, epoch, seed and digit are checked, applied and kept up to date;
a bad or hostile value falls back to the default with a short notice, never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_app import stop_and_forget
from views import common
from views.links import View, notice, read_view

APP = Path(__file__).resolve().parents[1] / "app.py"
RUNS = {"demo": (1, 2, 3, 20), "mine": (1, 2)}
PAGES = ("train", "timeline", "latent", "compare", "probe")


@pytest.fixture(autouse=True)
def fresh_app(root):
    stop_and_forget()
    yield
    stop_and_forget()


def test_a_good_link_is_read_whole():
    params = {"page": "latent", "run": "mine", "epoch": "2", "seed": "42", "digit": "7"}
    assert read_view(params, PAGES, RUNS, "demo") == (View("latent", "mine", 2, 42, 7), [])
    assert read_view({"digit": "all"}, PAGES, RUNS, "demo") == (View(digit="all"), [])


def test_an_epoch_without_a_run_belongs_to_the_run_shown_by_default():
    assert read_view({"epoch": "20"}, PAGES, RUNS, "demo") == (View(epoch=20), [])
    assert read_view({"epoch": "20"}, PAGES, RUNS, "mine") == (View(), ["epoch"])


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"run": "unknown"}, ["run"]),
        ({"run": "../demo"}, ["run"]),
        ({"run": "<script>alert(1)</script>"}, ["run"]),
        ({"page": "../../etc/passwd"}, ["page"]),
        ({"run": "demo", "epoch": str(10**9)}, ["epoch"]),
        ({"run": "demo", "epoch": "7"}, ["epoch"]),  # not a saved epoch of that run
        ({"run": "demo", "epoch": "-1"}, ["epoch"]),
        ({"run": "demo", "epoch": "1e3"}, ["epoch"]),
        ({"run": "demo", "epoch": "١"}, ["epoch"]),  # an Arabic-Indic one: a digit to Python, not to a link
        ({"seed": str(2**31)}, ["seed"]),
        ({"seed": "9" * 10_000}, ["seed"]),
        ({"digit": "10"}, ["digit"]),
        ({"digit": "<b>"}, ["digit"]),
        ({"page": "x", "run": "y", "epoch": "z", "seed": "s", "digit": "d"}, ["page", "run", "epoch", "seed", "digit"]),
    ],
)
def test_a_bad_value_is_dropped_and_named(params, bad):
    view, found = read_view(params, PAGES, RUNS, "demo")
    assert found == bad
    assert all(getattr(view, key) is None for key in bad)


def test_the_notice_names_the_parameters_never_their_values():
    text = notice(["run", "epoch"])
    assert "*run*" in text and "*epoch*" in text and "default" in text


def open_link(**params) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    return at


@pytest.mark.slow
def test_a_link_opens_its_page_run_and_epoch(root):
    at = open_link(page="timeline", run="demo", epoch="5")
    assert at.title[0].value == "Timeline"
    assert at.selectbox(key="run").value == "demo"
    assert at.select_slider(key="timeline_epoch_demo").value == 5
    assert at.image[0].captions[0].startswith("Epoch 5")
    assert not at.warning or "link" not in at.warning[0].value
    assert at.query_params["page"] == "timeline" and at.query_params["epoch"] == "5"


@pytest.mark.slow
def test_moving_the_slider_moves_the_link(root):
    at = open_link(page="timeline", run="demo", epoch="5")
    at.select_slider(key="timeline_epoch_demo").set_value(9).run()
    assert not at.exception
    assert at.query_params["epoch"] == "9" and at.query_params["run"] == "demo"


@pytest.mark.slow
def test_the_latent_explorers_seed_and_digit_come_from_the_link_and_go_back_to_it(root):
    at = open_link(page="latent", run="demo", epoch="20", seed="31", digit="3")
    assert at.title[0].value == "Latent space"
    assert at.number_input(key="latent_seed").value == 31
    assert at.segmented_control(key="latent_digit").value == 3
    assert any("all asked to be a 3" in caption for image in at.image for caption in image.captions)
    at.number_input(key="latent_seed").set_value(32).run()
    assert not at.exception
    assert at.query_params["seed"] == "32" and at.query_params["digit"] == "3"


@pytest.mark.slow
@pytest.mark.parametrize(
    "params",
    [
        {"page": "timeline", "run": "../../etc", "epoch": str(10**9)},
        {"page": "<script>alert(1)</script>", "run": "<script>alert(1)</script>"},
        {"run": "demo", "epoch": "99999999999999999999", "seed": "-5", "digit": "x" * 5000},
    ],
)
def test_a_hostile_link_falls_back_to_the_default_with_a_notice(root, params):
    at = open_link(**params)
    assert not at.exception
    assert "not fit anything here" in at.warning[0].value
    assert "script" not in at.warning[0].value and "etc" not in at.warning[0].value
    assert at.selectbox(key="run").value == "demo"  # no run of one's own: the demo
    assert common.get_session().snapshot().status == "idle"
