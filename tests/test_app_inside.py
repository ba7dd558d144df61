"""AppTest of the views that look inside the discriminator: the Timeline's map, push maps and quality section,
the Your digit page, and the latent explorer starting from an inverted digit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gan.data import load_mnist
from tests.test_app import fresh_app, open_app, saved_run, texts  # noqa: F401 - fresh_app is an autouse fixture


@pytest.mark.slow
def test_the_timeline_draws_the_map_and_a_clicked_point_shows_its_details(root):
    saved_run(root, epochs=2)
    at = open_app(settings=False)
    at.switch_page("views/timeline.py").run(timeout=120)
    assert not at.exception
    charts = {chart.proto.id for chart in at.get("plotly_chart")}
    assert any("inside_map_saved_2" in chart for chart in charts)
    spec = next(chart.proto.spec for chart in at.get("plotly_chart") if "inside_map_saved_2" in chart.proto.id)
    assert "generated #1" in spec and "generated #0" not in spec  # samples counted from 1 on every page
    assert "Click a point on the map" in texts(at)
    assert "Top row: the 10 samples this epoch's D finds most real" in "\n".join(
        caption for image in at.image for caption in image.captions
    )
    at.session_state["inside_point_saved"] = (1, 7)  # as a click on the eighth generated sample leaves it
    at.run(timeout=120)
    assert not at.exception
    captions = [caption for image in at.image for caption in image.captions]
    assert any(caption.startswith("Generated sample #8") for caption in captions)  # counted from 1, as on hover
    labels = {metric.label: metric.value for metric in at.metric}
    assert 0.0 <= float(labels["D: probability it is real"]) <= 1.0
    assert labels["The judge reads"] in [str(digit) for digit in range(10)]
    assert at.number_input(key="inside_push_fake_7").value == 8  # the push map follows the clicked sample
    assert any("one step along it" in caption for caption in captions)


def png_of_test_digit(index: int = 0) -> bytes:
    image = load_mnist(split="test").images[index, 0]
    buffer = io.BytesIO()
    Image.fromarray(((image.numpy() + 1) * 127.5).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(at, data: bytes):
    at.file_uploader(key="probe_upload").set_value(("digit.png", data, "image/png")).run(timeout=120)
    return at


@pytest.mark.slow
def test_the_digit_page_reads_a_picture_shows_verdicts_and_finds_it(root):
    saved_run(root, epochs=2)
    at = open_app(settings=False)
    at.switch_page("views/probe.py").run(timeout=120)
    assert not at.exception
    assert "Draw a digit on the canvas or upload a PNG" in texts(at)
    upload(at, png_of_test_digit())
    assert not at.exception
    assert {metric.label: metric.value for metric in at.metric}["The judge reads"] == "7"
    assert "D gives your 7 a" in texts(at)
    at.button(key="probe_invert").click().run(timeout=120)
    assert not at.exception
    assert "at a pixel distance of" in texts(at)
    at.button(key="probe_open_latent").click().run(timeout=120)
    assert not at.exception
    start = at.session_state["latent_start"]
    assert start["run"] == "saved" and len(start["z"]) == 8 and 0 <= start["digit"] <= 9
    assert "Starting from your digit" in texts(at)


def test_a_blank_picture_gets_a_one_line_message(root):
    saved_run(root, epochs=1)
    at = open_app(settings=False)
    at.switch_page("views/probe.py").run(timeout=120)
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buffer, format="PNG")
    upload(at, buffer.getvalue())
    assert not at.exception
    assert "the image is empty" in at.error[0].value and "\n" not in at.error[0].value
    upload(at, b"not a picture at all")
    assert "not an image" in at.error[0].value
