"""The Timeline's look inside the discriminator, for the chosen epoch: the D's-eye map (click a point for its
details), where D pushes the generator, and quality against diversity. Layout only; the work is in gan/lab/dmap.py,
gan/lab/pushes.py and gan/scoring/metrics.py. Everything computed is cached by (run, epoch, file time), so a page
redrawn for another reason (a new epoch of a live run, a click) recomputes nothing of an epoch already shown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st
import torch

from gan.device import inference_bf16
from gan.images import grid_image
from gan.lab.dmap import EpochMap, RealPoints, epoch_map, ranked_by_d, real_points, summary
from gan.lab.latent import nearest_real
from gan.lab.probe import Push, load_discriminator
from gan.lab.pushes import push_generated, push_real
from gan.scoring.judge import load_judge
from gan.scoring.metrics import generator_per_class_fid
from gan.scoring.scores import Scores
from gan.store.checkpoints import CheckpointError
from gan.store.history import EpochRecord
from gan.store.run import Run
from views import common

REAL, FAKE = 0, 1
NEIGHBOURS = 5
RANKED = 10  # samples in each row of the sorted grid
PROBABILITY_SCALE = [[0.0, "#d62728"], [0.5, "#f7f7f7"], [1.0, "#1f77b4"]]  # red: D says fake, blue: real


# --- cached work (keys carry file times: a rewritten epoch is computed afresh) ---------------------------------


@st.cache_resource(show_spinner="Placing 1,000 real digits on the map (once)…")
def map_real_points() -> RealPoints:
    _, test = common.mnist_splits()
    return real_points(load_judge(), test)


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_discriminator(path: str, epoch: int, stamp: float) -> tuple[torch.nn.Module, Any]:
    return load_discriminator(Run(Path(path)), epoch)


@st.cache_resource(max_entries=16, show_spinner="Asking this epoch's discriminator about 1,500 digits…")
def cached_map(path: str, epoch: int, stamp: float) -> EpochMap:
    G, config, _ = common.cached_generator(path, epoch, stamp)
    D, _ = cached_discriminator(path, epoch, stamp)
    return epoch_map(G, D, config.batch_size, map_real_points(), load_judge(), bf16=inference_bf16(config.precision))


@st.cache_resource(max_entries=16, show_spinner=False)
def cached_push(path: str, epoch: int, stamp: float, kind: int, index: int) -> Push:
    """Where this epoch's D pushes a point of its map (REAL or FAKE, index): two passes through D, done once."""
    D, config = cached_discriminator(path, epoch, stamp)
    if kind == FAKE:
        return push_generated(D, config, cached_map(path, epoch, stamp), index)
    return push_real(D, config, map_real_points(), index)


# --- the map --------------------------------------------------------------------------------------------------


def map_figure(real: RealPoints, found: EpochMap) -> go.Figure:
    """Real digits as circles and generated ones as crosses on the judge's two main axes, every point coloured
    by D's probability that it is real; each real class is labelled at its centre."""
    labels = real.labels.tolist()
    asked = found.fake_digits.tolist() if found.fake_digits is not None else None
    fake_text = [
        f"generated #{index + 1}" + (f", asked for a {asked[index]}" if asked else "") + f"<br>judge reads {read}"
        for index, read in enumerate(found.fake_read.tolist())
    ]
    marker = {"colorscale": PROBABILITY_SCALE, "cmin": 0.0, "cmax": 1.0, "line": {"width": 0.5, "color": "#555"}}
    traces = [
        {"type": "scatter", "x": real.xy[:, 0].tolist(), "y": real.xy[:, 1].tolist(), "mode": "markers",
         "name": "real test digits", "customdata": [[REAL, index] for index in range(len(labels))],
         "text": [f"real {digit}" for digit in labels],
         "hovertemplate": "%{text}<br>D: %{marker.color:.2f} real<extra></extra>",
         "marker": {**marker, "size": 7, "symbol": "circle", "color": found.real_probability.tolist(),
                    "colorbar": {"title": {"text": "D: real?"}, "thickness": 12}}},
        {"type": "scatter", "x": found.fake_xy[:, 0].tolist(), "y": found.fake_xy[:, 1].tolist(),
         "mode": "markers", "name": "generated", "customdata": [[FAKE, index] for index in range(len(fake_text))],
         "text": fake_text, "hovertemplate": "%{text}<br>D: %{marker.color:.2f} real<extra></extra>",
         "marker": {**marker, "size": 9, "symbol": "x", "color": found.fake_probability.tolist(),
                    "line": {"width": 1, "color": "#222"}}},
    ]  # fmt: skip
    annotations = []
    for digit in range(10):
        centre = real.xy[real.labels.numpy() == digit].mean(0)
        annotations.append({"x": float(centre[0]), "y": float(centre[1]), "text": f"<b>{digit}</b>",
                            "showarrow": False, "font": {"size": 22, "color": "rgba(0,0,0,0.55)"}})  # fmt: skip
    explained = real.projection.explained
    layout = {
        "height": 560,
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0},
        "xaxis": {"title": {"text": f"judge's feature axis 1 ({explained[0]:.0%})"}, "zeroline": False},
        "yaxis": {"title": {"text": f"axis 2 ({explained[1]:.0%})"}, "zeroline": False},
        "annotations": annotations,
        "clickmode": "event+select",
    }
    return go.Figure({"data": traces, "layout": layout}, skip_invalid=False)


def chosen_point(event: Any, key: str) -> tuple[int, int] | None:
    """The clicked point as (REAL or FAKE, index), kept across reruns until another is clicked."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, list | tuple) and len(data) == 2:
            st.session_state[key] = (int(data[0]), int(data[1]))
            break
    return st.session_state.get(key)


def point_details(kind: int, index: int, real: RealPoints, found: EpochMap) -> None:
    if kind == REAL:
        if not 0 <= index < len(real.labels):
            return
        image = real.images[index]
        title = f"Real test digit ({int(real.labels[index])})"
        probability, read, confidence = found.real_probability[index], real.read[index], real.confidence[index]
    else:
        if not 0 <= index < len(found.fake_images):
            return
        image = found.fake_images[index]
        asked = "" if found.fake_digits is None else f", asked for a {int(found.fake_digits[index])}"
        title = f"Generated sample #{index + 1}{asked}"
        probability, read, confidence = (
            found.fake_probability[index],
            found.fake_read[index],
            found.fake_confidence[index],
        )
    picture, text = st.columns([1, 2], gap="medium")
    picture.image(grid_image(image[None], nrow=1, scale=8), caption=title)
    with text:
        st.metric("D: probability it is real", f"{probability:.2f}")
        st.metric("The judge reads", f"{int(read)}", f"{float(confidence):.0%} confident", delta_color="off")
    train, _ = common.mnist_splits()
    neighbours = nearest_real(image[None], train, k=NEIGHBOURS)
    st.image(
        [grid_image(picture[None], nrow=1, scale=3) for picture in neighbours.images[0]],
        caption=[f"distance {distance:.2f}" for distance in neighbours.distances[0].tolist()],
    )
    st.caption("Its nearest real training digits, pixel by pixel.")


def d_map(run: Run, name: str, epoch: int) -> tuple[RealPoints, EpochMap, Any]:
    st.subheader("The discriminator's map of digit space")
    st.caption(
        "Every digit placed by the judge's features (its two main axes), real test digits as circles and this "
        "epoch's samples from fixed noise as crosses, each coloured by **this epoch's D**: blue where it says "
        "real, red where it says fake. Over the epochs, watch the crosses move onto the real clusters and the "
        "colours converge; a collapsed run leaves real clusters without crosses. Click a point to see it."
    )
    frames = st.empty()  # Play draws the map of each epoch here, above the interactive one
    started = time.perf_counter()
    real = map_real_points()
    found = cached_map(str(run.path), epoch, common.mtime(run.epoch_path(epoch)))
    figure = map_figure(real, found)
    numbers = summary(real, found)
    chart, details = st.columns([3, 2], gap="large")
    with chart:
        event = st.plotly_chart(figure, key=f"inside_map_{name}_{epoch}", on_select="rerun", selection_mode="points")
        st.caption(
            f"D's mean verdict: real digits {numbers.mean_real:.2f}, generated {numbers.mean_fake:.2f}. "
            f"Generated digits reach {numbers.classes_reached} of the 10 real clusters. "
            f"Map drawn in {time.perf_counter() - started:.2f} s."
        )
    with details:
        chosen = chosen_point(event, f"inside_point_{name}")
        if chosen is None:
            st.info(
                "Click a point on the map to see the digit, D's verdict, the judge's reading and its nearest "
                "real digits."
            )
        else:
            point_details(*chosen, real, found)
    return real, found, frames


def map_frame(slot: Any, run: Run, epoch: int) -> None:
    """One frame of Play: the epoch's map, not clickable, in `slot` (nothing for a damaged epoch file)."""
    try:
        found = cached_map(str(run.path), epoch, common.mtime(run.epoch_path(epoch)))
    except CheckpointError:
        return
    figure = map_figure(map_real_points(), found)
    figure.update_layout(title={"text": f"Epoch {epoch}", "font": {"size": 15}}, height=420)
    slot.plotly_chart(figure, key=f"inside_map_frame_{epoch}_{time.monotonic_ns()}")


# --- where D pushes G -----------------------------------------------------------------------------------------


def push_figure(found: Push) -> go.Figure:
    limit = float(found.direction.abs().max()) or 1.0
    figure = go.Figure(
        go.Heatmap(
            z=found.direction.flip(0).tolist(),
            zmin=-limit,
            zmax=limit,
            colorscale=[[0.0, "#2166ac"], [0.5, "#ffffff"], [1.0, "#b2182b"]],
            colorbar={"thickness": 10, "tickvals": [-limit, 0, limit], "ticktext": ["less ink", "0", "more ink"]},
            hovertemplate="row %{y}, column %{x}: %{z:.3g}<extra></extra>",
        )
    )
    figure.update_layout(height=230, width=260, margin={"l": 0, "r": 0, "t": 0, "b": 0},
                         xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"})  # fmt: skip
    return figure


def push_row(title: str, found: Push, key: str) -> None:
    st.markdown(f"**{title}**")
    original, heatmap, moved = st.columns(3)
    original.image(grid_image(found.image[None], nrow=1, scale=6), caption=f"D: {found.before:.2f} real")
    with heatmap:
        st.plotly_chart(push_figure(found), key=key, config={"displayModeBar": False})
    moved.image(grid_image(found.moved[None], nrow=1, scale=6), caption=f"one step along it: D {found.after:.2f} real")


def d_pushes(run: Run, name: str, epoch: int, real: RealPoints, found: EpochMap) -> None:
    st.subheader("Where D pushes the generator")
    st.caption(
        "The gradient of the generator's loss with respect to each pixel: what this epoch's D would have the "
        "picture change to look more real to it. Red pixels: D wants more ink there; blue: less. On the right, "
        "the digit after one small step that way. Early in training the push is spread out like noise; later "
        "it sits on the strokes (thicken here, close that loop). For a real digit, it shows what makes D believe."
    )
    path, stamp = str(run.path), common.mtime(run.epoch_path(epoch))
    chosen = st.session_state.get(f"inside_point_{name}")
    fake_default = chosen[1] if chosen and chosen[0] == FAKE else 0
    real_default = chosen[1] if chosen and chosen[0] == REAL else 0
    columns = st.columns(2)
    fake_number = columns[0].number_input(  # numbered from 1, as on the Latent page; indices from 0
        "Generated sample #", 1, len(found.fake_images), int(fake_default) + 1, key=f"inside_push_fake_{fake_default}"
    )
    real_number = columns[1].number_input(
        "Real digit #", 1, len(real.images), int(real_default) + 1, key=f"inside_push_real_{real_default}"
    )
    fake_index, real_index = int(fake_number) - 1, int(real_number) - 1
    fake_push = cached_push(path, epoch, stamp, FAKE, fake_index)
    real_push = cached_push(path, epoch, stamp, REAL, real_index)
    push_row(f"Generated sample #{fake_number}", fake_push, f"inside_push_fake_map_{name}")
    push_row(
        f"Real digit #{real_number} ({int(real.labels[real_index])})",
        real_push,
        f"inside_push_real_map_{name}",
    )


# --- quality vs diversity ---------------------------------------------------------------------------------------

PRDC = (
    ("precision", "Precision", "Share of samples that fall within the real digits' neighbourhoods: quality."),
    ("recall", "Recall", "Share of real digits within the samples' neighbourhoods: diversity."),
    ("density", "Density", "How many real neighbourhoods a sample falls in, on average (1 for real data)."),
    ("coverage", "Coverage", "Share of real digits with a sample among their nearest neighbours."),
)


@st.cache_data(max_entries=32, show_spinner="Measuring each digit's FID…")
def cached_per_class_fid(path: str, epoch: int, stamp: float) -> tuple[float | None, ...]:
    """For epochs scored before per-digit FID was saved with the scores."""
    return generator_per_class_fid(common.cached_generator(path, epoch, stamp)[0], load_judge())


def scores_of(records: dict[int, EpochRecord], epoch: int) -> Scores | None:
    record = records.get(epoch)
    return record.scores if record is not None else None


def quality_vs_diversity(
    run: Run, records: dict[int, EpochRecord], epoch: int, found: EpochMap, conditional: bool, training: bool
) -> None:
    path, stamp = str(run.path), common.mtime(run.epoch_path(epoch))
    st.subheader("Quality against diversity")
    scores = scores_of(records, epoch)
    present = [(key, label, text) for key, label, text in PRDC if getattr(scores, key, None) is not None]
    if present:
        for column, (key, label, text) in zip(st.columns(len(present)), present, strict=True):
            column.metric(label, f"{getattr(scores, key):.2f}", help=text)
        prdc_over_time(records, epoch, [key for key, _, _ in present])
    else:
        st.caption("No precision, recall, density or coverage saved for this epoch (scored before they existed).")
    per_class = scores.per_class_fid if scores is not None else None
    if per_class is None and conditional and training:  # 10,000 samples judged: seconds the run would lose
        st.caption("This epoch's per-digit FID was not saved with it; it is measured here once the run stops.")
    elif per_class is None and conditional:
        per_class = cached_per_class_fid(path, epoch, stamp)
    if per_class:
        figure = go.Figure(go.Bar(x=[str(digit) for digit in range(len(per_class))], y=list(per_class)))
        figure.update_layout(
            title={"text": "FID of each digit against real ones of its class (lower is better)", "font": {"size": 15}},
            height=240, margin={"l": 10, "r": 10, "t": 40, "b": 10}, xaxis={"title": "digit asked for", "dtick": 1},
        )  # fmt: skip
        st.plotly_chart(figure, key="inside_per_class_fid")
    most, least = ranked_by_d(found, RANKED)
    st.image(
        grid_image(found.fake_images[torch.cat([most, least])], nrow=RANKED, scale=3),
        caption=f"Top row: the {RANKED} samples this epoch's D finds most real (most real first). Bottom row: the "
        f"{RANKED} it finds least real (least real first).",
    )


def prdc_over_time(records: dict[int, EpochRecord], epoch: int, keys: list[str]) -> None:
    epochs = sorted(records)
    if len(epochs) < 2:
        return
    figure = go.Figure()
    for key in keys:
        figure.add_scatter(x=epochs, y=[getattr(scores_of(records, shown), key, None) for shown in epochs],
                           mode="lines+markers", name=key)  # fmt: skip
    figure.add_vline(x=epoch, line={"width": 2, "dash": "dash", "color": "#7f7f7f"})
    figure.update_layout(title={"text": "Precision, recall, density, coverage by epoch", "font": {"size": 15}},
                         height=240, margin={"l": 10, "r": 10, "t": 40, "b": 10})  # fmt: skip
    st.plotly_chart(figure, key="inside_prdc")


def look_inside(
    run: Run, name: str, epoch: int, conditional: bool, records: dict[int, EpochRecord], training: bool = False
) -> Any:
    """The three sections, for one saved epoch; returns the placeholder Play draws the map's frames in. A damaged
    epoch file gets a one-line note in their place: the page and the other epochs still open. While the run is
    `training`, nothing is measured that its saved scores lack (the job budgets its own scoring)."""
    try:
        real, found, frames = d_map(run, name, epoch)
        d_pushes(run, name, epoch, real, found)
        quality_vs_diversity(run, records, epoch, found, conditional, training)
    except CheckpointError as damaged:
        st.warning(f"Epoch {epoch} cannot be looked inside: {common.plain(' '.join(str(damaged).split()))}")
        return st.empty()
    return frames
