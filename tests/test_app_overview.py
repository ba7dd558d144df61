"""The overview graph: its SVG shows the trainer's own numbers for the step it draws, every preset and loss draws
(a critic's scores labelled as such), a sub-step lights its nodes and dims the rest; on the Train page (AppTest) it
is drawn for a finished run and a paused job, and slow motion walks one step in ten sub-steps."""

from __future__ import annotations

import shutil
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import gan.jobs.runner
from gan.config import LOSSES, PRESETS
from gan.data import batches
from gan.lab.overview import NODE_HELP, overview_frame
from gan.train import Trainer
from tests.conftest import tiny_config, wait_for
from tests.test_app import fresh_app  # noqa: F401 - an autouse fixture: a fresh checkpoints root, no job
from views import common
from views.overview_svg import DIMMED, NODES, Moment, overview_svg

APP = Path(__file__).resolve().parents[1] / "app.py"
SUBSTEPS = ("D1", "D2", "D3", "D4", "D5", "G1", "G2", "G3", "G4", "G5")


def trained(preset: str = "cdcgan", steps: int = 2, **changes) -> tuple[Trainer, object]:
    """A tiny trainer after a few steps, and the record of its last step."""
    trainer = Trainer(tiny_config(preset, **changes), gan.jobs.runner.load_mnist())  # parsed once (conftest)
    config = trainer.config
    for real, labels in batches(trainer.data, config.batch_size, config.seed, 0, limit=steps):
        record = trainer.train_step(real, labels)
    return trainer, record


def svg_of(html: str) -> ElementTree.Element:
    """The <svg> element of the graph's HTML (after its <style>), parsed as XML: it must be well formed."""
    return ElementTree.fromstring(html[html.index("<svg") :])


def nodes(svg: ElementTree.Element) -> dict[str, ElementTree.Element]:
    return {group.get("data-node"): group for group in svg.iter("g") if group.get("data-node")}


def texts(element: ElementTree.Element) -> list[str]:
    return ["".join(node.itertext()) for node in element.iter("text")]


def numbers(lines: list[str]) -> list[str]:
    """The lines that are numbers alone (the verdicts under the pictures)."""
    return [line for line in lines if line.lstrip("+-").replace(".", "", 1).isdigit()]


def test_the_graph_shows_the_trainers_numbers_for_the_step_it_draws():
    trainer, record = trained()
    frame = overview_frame(trainer)
    assert frame.step == record.step == trainer.step
    svg = svg_of(overview_svg(frame, NODE_HELP))
    parts = nodes(svg)
    assert svg.get("data-step") == str(record.step)
    assert f"{record.loss_d:.3f}" in texts(parts["loss_d"]) and f"{record.loss_g:.3f}" in texts(parts["loss_g"])
    assert any(f"{record.grad_norm_d:.3g}" in line for line in texts(parts["grad_d"]))
    assert any(f"{record.grad_norm_g:.3g}" in line for line in texts(parts["grad_g"]))
    shown = texts(parts["predictions"])
    assert [f"{score:.2f}" for score in (*frame.d_real, *frame.d_fake)] == numbers(shown)
    # the digits asked for (conditional preset) beside the noise, and each network's size
    assert [f"→ {digit}" for digit in frame.digits] == [line for line in texts(parts["noise"]) if "→" in line]
    assert f"{sum(p.numel() for p in trainer.G.parameters()):,} parameters" in texts(parts["generator"])
    assert f"{sum(p.numel() for p in trainer.D.parameters()):,} parameters" in texts(parts["discriminator"])


def test_the_pictures_are_embedded_so_the_graph_works_offline():
    trainer, _ = trained()
    html = overview_svg(overview_frame(trainer, count=8), NODE_HELP)
    images = list(svg_of(html).iter("image"))
    # 8 reals, 8 fakes, 16 verdicts, 8 push maps, 8 noise strips
    assert len(images) == 48
    assert all(image.get("href").startswith("data:image/png;base64,") for image in images)
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("loss", LOSSES)
def test_every_preset_and_loss_draws_the_graph(preset, loss):
    trainer, record = trained(preset, loss=loss)
    frame = overview_frame(trainer, count=4)
    svg = svg_of(overview_svg(frame, NODE_HELP))
    parts = nodes(svg)
    assert set(parts) == set(NODES)
    heading = texts(parts["predictions"])[0]
    assert heading == ("D's verdicts: critic scores" if loss == "wgan-gp" else "D's verdicts: P(real)")
    assert any(loss in line for line in texts(parts["loss_d"]))
    assert f"{record.loss_g:.3f}" in texts(parts["loss_g"])


def test_a_sub_step_lights_its_nodes_and_dims_the_rest():
    trainer, _ = trained()
    lit = ("reals", "fakes", "discriminator", "predictions")
    moment = Moment(trainer.step, "D2", "D2 of 10: D scores the reals and the fakes", lit)
    svg = svg_of(overview_svg(overview_frame(trainer), NODE_HELP, moment))
    assert svg.get("data-substep") == "D2" and svg.get("data-lit").split() == sorted(lit)
    for key, group in nodes(svg).items():
        assert float(group.get("opacity")) == (1 if key in lit else DIMMED), key
        assert group.find("title").text == NODE_HELP[key], "explains itself on hover"


# --- the Train page -------------------------------------------------------------------------------------------------


def graph(at: AppTest) -> ElementTree.Element:
    """The graph drawn on the page (Markdown carrying the SVG)."""
    drawn = [element.value for element in at.markdown if "<svg" in element.value]
    assert len(drawn) == 1, "one graph on the page"
    return svg_of(drawn[0])


def rerun_until(at: AppTest, condition, seconds: float = 60) -> None:
    """Run the page again until the condition holds: the job answers a request from its own thread."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
        at.run()
        assert not at.exception


def open_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    return at


@pytest.mark.slow
def test_the_train_page_draws_the_graph_of_a_finished_run(good):
    at = open_app()
    svg = graph(at)
    assert int(svg.get("data-step")) == good.last_step().step + 1, "the next step, taken on a copy"
    assert not at.warning


@pytest.mark.slow
def test_a_run_whose_files_are_damaged_gets_a_line_not_a_graph(root, trained):
    shutil.copytree(trained, root / "good")
    for path in (root / "good").glob("*.safetensors"):
        path.write_bytes(b"not a checkpoint")
    at = open_app()
    assert not [element for element in at.markdown if "<svg" in element.value]
    assert [warning.value for warning in at.warning if warning.value.startswith("The graph cannot be drawn")]


def paused_job(root, **changes) -> AppTest:
    session = common.get_session()
    assert session.start(tiny_config(epochs=1, steps_per_epoch=1_000_000, **changes), "slow")
    wait_for(lambda: session.snapshot().step >= 2)
    session.pause()
    wait_for(lambda: session.snapshot().status == "paused")
    at = open_app()
    # "paused" is shown at once, but the step under way still ends: the loop has parked once the graph it
    # publishes on parking is of the step counter's step
    wait_for(lambda: (frame := session.overview()) is not None and frame.step == session.snapshot().step)
    at.run()
    assert not at.exception
    return at


def in_page_order(node) -> list:
    """The page's elements top to bottom (blocks opened, depth first)."""
    children = getattr(node, "children", None)
    if not children:
        return [node]
    return [element for child in children.values() for element in in_page_order(child)]


@pytest.mark.slow
def test_the_graph_sits_between_the_jobs_progress_and_its_charts(root):
    at = paused_job(root)
    kinds = [(element.type, str(getattr(element, "value", ""))) for element in in_page_order(at.main)]
    graph_at = kinds.index(("subheader", "The GAN as one graph"))
    charts = [index for index, (kind, _) in enumerate(kinds) if kind == "plotly_chart"]
    progress = [index for index, (kind, _) in enumerate(kinds) if kind == "progress"]
    assert charts and progress, "a paused job shows its progress and charts"
    assert max(progress) < graph_at < min(charts)


@pytest.mark.slow
def test_slow_motion_walks_one_step_in_ten_sub_steps_each_lit_on_the_graph(root):
    at = paused_job(root)
    session = common.get_session()
    start = session.snapshot().step
    assert int(graph(at).get("data-steps-done")) == start
    for number, substep in enumerate(SUBSTEPS, 1):
        at.button(key="slowmo_next").click().run()
        assert not at.exception
        rerun_until(at, lambda: graph(at).get("data-substep") == substep)  # noqa: B023 - called at once
        svg = graph(at)
        assert svg.get("data-substep") == substep
        assert any(f"{substep} of 10" in element.value for element in at.markdown)
        lit = svg.get("data-lit").split()
        assert 0 < len(lit) < len(NODES)
        expected = start + 1 if number == len(SUBSTEPS) else start
        assert int(svg.get("data-steps-done")) == expected, substep
    assert session.snapshot().step == start + 1
    assert at.metric, "the sub-step's values"


@pytest.mark.slow
def test_a_wgan_gp_job_shows_critic_scores_and_its_loss_can_be_changed_from_the_graph(root):
    at = paused_job(root, loss="wgan-gp")
    assert "D's verdicts: critic scores" in texts(nodes(graph(at))["predictions"])
    assert at.selectbox(key="overview_loss").value == "wgan-gp"
    at.selectbox(key="overview_loss").set_value("hinge").run()
    assert not at.exception
    session = common.get_session()
    rerun_until(at, lambda: session.snapshot().config.loss == "hinge")
    at.run()
    assert [change.field for change in session.snapshot().changes] == ["loss"]
    assert at.selectbox(key="overview_loss").value == "hinge"
