"""Your digit page: draw a digit (or upload a PNG), see how the judge reads it and what the run's discriminator
thought of it at every saved epoch, then find it in the generator's latent space and open it in the latent
explorer. Layout only: reading, preprocessing and verdicts are in gan/lab/probe.py, the search in
gan/lab/inversion.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
import torch

from gan.device import inference_bf16
from gan.images import grid_image
from gan.lab.inversion import Inversion, Weights, invert
from gan.lab.probe import ImageError, digit_from_png, judge_reading, verdicts
from gan.scoring.judge import load_judge
from gan.store.checkpoints import CheckpointError
from gan.store.listing import RunInfo
from gan.store.run import Run
from views import common

CANVAS_SIDE = 280
STROKE = 20  # on a 280-pixel canvas: strokes about as thick as MNIST's once scaled into 20x20
STEPS = 200
MAX_UPLOAD_MB = 5  # as .streamlit/config.toml's server.maxUploadSize, which refuses more before it is held
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024  # Streamlit's megabytes
UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]  # the formats gan/lab/images_in.py decodes


def canvas_png() -> bytes | None:
    """The drawing as PNG bytes, or None when the canvas component is unavailable or nothing is drawn yet."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception:  # not installed, or this Streamlit cannot load it: the upload below still works
        return None
    state = st.session_state
    if "probe_canvas" not in state:  # arriving on the page: the canvas shows the last drawing again
        state["probe_canvas_initial"] = state.get("probe_drawing", (None, None))[0]
    result = st_canvas(
        stroke_width=STROKE,
        stroke_color="#ffffff",
        background_color="#000000",
        height=CANVAS_SIDE,
        width=CANVAS_SIDE,
        drawing_mode="freedraw",
        return_image_data=True,
        initial_drawing=state.get("probe_canvas_initial"),
        key="probe_canvas",
    )
    if not (result.json_data or {}).get("objects"):
        state.pop("probe_drawing", None)
        return None
    drawn = result.image_bytes or state.get("probe_drawing", (None, None))[1]  # a restored drawing, not yet redrawn
    state["probe_drawing"] = (result.json_data, drawn)
    return drawn


def chosen_picture() -> tuple[bytes | None, str]:
    """PNG bytes of the drawing or the upload (the upload wins when both are given), and where it came from."""
    draw, upload = st.columns(2, gap="large")
    with draw:
        st.markdown("**Draw a digit**")
        drawn = canvas_png()
        st.caption("Draw with the mouse, one digit, large and centred.")
    with upload:
        st.markdown("**… or upload one**")
        file = st.file_uploader(  # the types offered by the file dialog; the content decides (a JPEG named .png)
            "A picture of one digit", type=UPLOAD_TYPES, key="probe_upload", max_upload_size=MAX_UPLOAD_MB
        )
        if file is not None:
            data = file.getvalue()
            if len(data) > MAX_UPLOAD_BYTES:
                st.error(f"{file.name}: too large ({len(data):,} bytes, at most {MAX_UPLOAD_BYTES:,})")
                return None, ""
            return data, file.name
    return drawn, "your drawing"


@st.cache_data(max_entries=16, show_spinner="Asking the discriminator of every saved epoch…")
def cached_verdicts(path: str, epochs: tuple[int, ...], digit_key: str, _digit: torch.Tensor, label: int):
    _, test = common.mnist_splits()
    return verdicts(Run(Path(path)), _digit, label, test, list(epochs))


def verdict_figure(found: list[tuple[int, float]]) -> go.Figure:
    figure = go.Figure(
        go.Scatter(x=[epoch for epoch, _ in found], y=[value for _, value in found], mode="lines+markers")
    )
    figure.add_hline(  # at the left, under the line: the newest epoch's point sits at the right
        y=0.5, line={"width": 1, "dash": "dot"}, annotation_text="undecided", annotation_position="bottom left"
    )
    figure.update_layout(
        title={"text": "D's verdict on your digit at each saved epoch (1 = real)", "font": {"size": 15}},
        height=260,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"title": "epoch"},
        yaxis={"range": [0, 1]},
    )
    return figure


@st.cache_resource(max_entries=8, show_spinner="Searching the latent space (a few hundred steps)…")
def cached_inversion(path: str, epoch: int, stamp: float, digit_key: str, _digit: torch.Tensor) -> Inversion:
    G, config, _ = common.cached_generator(path, epoch, stamp)
    return invert(G, load_judge(), _digit[None], steps=STEPS, weights=Weights(bf16=inference_bf16(config.precision)))


def inversion(info: RunInfo, run: Run, epochs: list[int], digit: torch.Tensor, digit_key: str) -> None:
    st.subheader("Find it in the latent space")
    st.caption(
        "Which noise vector (and, for a conditional run, which digit) makes the generator draw something closest "
        "to yours? Several random starts, each refined by gradient descent on the pixels and the judge's features."
    )
    epoch = st.selectbox(
        "Generator of epoch", epochs[::-1], key=f"probe_epoch_{info.name}", width=200, help="Newest first."
    )
    clicked = st.button("Find my digit", key="probe_invert", icon=":material/search:")
    if not clicked and st.session_state.get("probe_found") != (info.name, epoch, digit_key):
        return
    st.session_state["probe_found"] = (info.name, epoch, digit_key)
    try:
        found = cached_inversion(str(run.path), epoch, common.mtime(run.epoch_path(epoch)), digit_key, digit)
    except CheckpointError as error:
        st.error(f"Cannot load epoch {epoch} of run {info.name}: {error}")
        return
    steps = found.path_steps
    st.image(
        grid_image(torch.cat([found.path[0], digit[None]]), nrow=len(steps) + 1, scale=3),
        caption=f"From a random start (step 0) to the result (step {steps[-1]}); on the right, your digit.",
    )
    result = f"the digit {int(found.digits[0])}, " if found.digits is not None else ""
    st.write(
        f"Found {result}at a pixel distance of {float(found.distances[0]):.2f} from yours "
        f"(real unseen digits are typically {common.real_typical_distance():.2f} from their nearest training digit)."
    )
    start = {
        "run": info.name,
        "epoch": epoch,
        "z": found.z[0].tolist(),
        "digit": None if found.digits is None else int(found.digits[0]),
    }
    if st.button(
        "Open it in the latent explorer",
        key="probe_open_latent",
        icon=":material/open_in_new:",
        on_click=open_in_explorer,
        args=(start,),
    ):
        st.switch_page("views/latent.py")


def open_in_explorer(start: dict) -> None:
    """Before the rerun draws the sidebar: the explorer opens this run at this epoch, whatever run is newest."""
    st.session_state["latent_start"] = start
    st.session_state["run"] = start["run"]
    st.session_state[f"latent_epoch_{start['run']}"] = start["epoch"]


def page() -> None:
    st.title("Your digit")
    st.caption(
        "Draw a digit or upload a picture of one. It is prepared the way MNIST's digits were (cropped, fitted into "
        "20×20, centred by its centre of mass in 28×28), read by the digit judge, shown to the discriminator of "
        "every saved epoch, and searched for in the generator's latent space."
    )
    info: RunInfo | None = st.session_state.get("selected_run")
    data, source = chosen_picture()
    if data is None:
        st.info("Draw a digit on the canvas or upload a PNG to begin.")
        return
    try:
        digit = digit_from_png(data, source)
    except ImageError as error:
        st.error(str(error))
        return
    digit_key = hashlib.sha256(digit.numpy().tobytes()).hexdigest()
    reading = judge_reading(load_judge(), digit[None])
    label, confidence = int(reading.labels[0]), float(reading.confidences[0])
    picture, numbers = st.columns([1, 3], gap="large")
    picture.image(grid_image(digit[None], nrow=1, scale=6), caption="As MNIST would have it: 28×28")
    numbers.metric("The judge reads", str(label), help="The digit judge's reading of your digit.")
    numbers.caption(f"{confidence:.0%} confident")  # a plain caption: a metric's delta arrow reads as a change
    if info is None or info.config is None or not info.epochs:
        numbers.info(
            "Pick a run with saved epochs in the sidebar to ask its discriminator and search its latent space."
        )
        return
    run = Run(info.path)
    epochs = run.epochs()
    verdicts_found = cached_verdicts(str(run.path), tuple(epochs), digit_key, digit, label)
    found = verdicts_found.found
    with numbers:
        for epoch, reason in verdicts_found.skipped:  # a damaged epoch file is left out, the others shown
            st.warning(f"Epoch {epoch} skipped: {common.plain(reason)}")
        if not found:
            return
        st.plotly_chart(verdict_figure(found), key="probe_verdicts")
        last_epoch, last = found[-1]
        st.caption(
            f"At epoch {last_epoch}, D gives your {label} a {last:.0%} chance of being real. "
            + (f"A conditional D is told it is a {label}. " if info.config.conditional else "")
            + "It judges it in a batch of real test digits, as it saw real digits in training."
        )
    inversion(info, run, epochs, digit, digit_key)


page()
