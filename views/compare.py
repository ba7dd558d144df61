"""Compare page: two to four runs side by side: the settings that differ (changes mid-run included), their curves
overlaid on one axis (epochs, images seen or training seconds), and their sample grids at one epoch.

The alignment and the differing settings come from gan/lab/compare.py; this page only lays them out.
"""

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from gan.lab import compare
from gan.series import smooth, thin
from gan.store.listing import list_all_runs
from gan.store.run import Run
from views import charts, common

RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
STEP_CHARTS = (("loss_d", "D loss"), ("loss_g", "G loss"), ("d_real", "D(x): real judged real"),
               ("d_fake", "D(G(z)): fake judged real"))  # fmt: skip
SCORE_CHARTS = (("fid", "FID (lower is better)"), ("classifier_score", "Classifier score (10 at best)"),
                ("recall", "Recall"), ("coverage", "Coverage"))  # fmt: skip


@st.cache_data(max_entries=8, show_spinner=False)
def loaded(paths: tuple[str, ...], stamps: tuple[float, ...]) -> list[compare.RunRecord]:
    return compare.load([Run(Path(path)) for path in paths])


def stamp(run: Run) -> float:
    return common.mtime(run.path / "history.jsonl")


def figure(title: str, height: int = 260) -> go.Figure:
    chart = go.Figure()
    chart.update_layout(
        title={"text": title, "font": {"size": 15}},
        height=height,
        # the legend in a strip under the chart: above it, it sat on the title
        margin={"l": 10, "r": 10, "t": 40, "b": charts.LEGEND_STRIP},
        legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0, "xanchor": "left", "x": 0},
        hovermode="x unified",
    )
    return chart


def mark_changes(chart: go.Figure, runs: list[compare.RunRecord], axis: str) -> None:
    for color, run in zip(RUN_COLORS, runs, strict=False):
        for x, label in compare.change_marks(run, axis):
            chart.add_vline(  # the label upright along the line, inside the plot: above it, the top cut it off
                x=x,
                line={"width": 1, "dash": "dash", "color": color},
                annotation={"text": label, "textangle": -90, "yanchor": "top", "xanchor": "left", "y": 0.98},
                annotation_position="top left",
                annotation_font={"size": 11, "color": color},
                annotation_bgcolor="rgba(255,255,255,0.8)",
            )


def step_chart(runs: list[compare.RunRecord], name: str, title: str, axis: str, smoothing: float) -> go.Figure | None:
    chart = figure(title)
    drawn = False
    for color, run in zip(RUN_COLORS, runs, strict=False):
        x, y = compare.step_curve(run, name, axis)
        kept = [(position, value) for position, value in zip(x, y, strict=True) if value is not None]
        if not kept:
            continue  # e.g. a wgan-gp critic has no beliefs to draw
        drawn = True
        xs, ys = zip(*kept, strict=True)
        smoothed = smooth(list(ys), smoothing)
        points = common.CHART_POINTS
        chart.add_scatter(
            x=thin(list(xs), points), y=thin(smoothed, points), mode="lines", name=run.name, line={"color": color}
        )
    if not drawn:
        return None
    mark_changes(chart, runs, axis)
    chart.update_xaxes(title=compare.AXES[axis])
    return chart


def score_chart(runs: list[compare.RunRecord], name: str, title: str, axis: str) -> go.Figure | None:
    chart = figure(title, height=240)
    drawn = False
    for color, run in zip(RUN_COLORS, runs, strict=False):
        x, y = compare.score_curve(run, name, axis)
        if x:
            drawn = True
            chart.add_scatter(x=x, y=y, mode="lines+markers", name=run.name, line={"color": color})
    if drawn:
        chart.update_xaxes(title=compare.AXES[axis])
    return chart if drawn else None


def settings_table(runs: list[compare.RunRecord]) -> None:
    differing = compare.differing_settings(runs)
    if not differing:
        st.caption("These runs have the same settings.")
        return
    rows = [
        {"setting": charts.setting_name(name)}
        | {run.name: compare.format_setting(value) for run, value in zip(runs, row, strict=True)}
        for name, row in differing.items()
    ]
    st.dataframe(rows, hide_index=True, key="compare_settings")


def grids(runs: list[compare.RunRecord], paths: dict[str, Run]) -> None:
    folders = [paths[run.name] for run in runs]
    saved = [[epoch for epoch in folder.epochs() if folder.grid_path(epoch).is_file()] for folder in folders]
    shared = compare.common_epochs(runs, saved)
    if not shared:
        st.caption("These runs have no saved epoch in common to show side by side.")
        return
    epoch = shared[0] if len(shared) == 1 else st.select_slider("Epoch", shared, value=shared[-1], key="compare_epoch")
    for column, run in zip(st.columns(len(runs)), runs, strict=True):
        column.image(paths[run.name].grid_path(epoch).read_bytes(), caption=f"{run.name}, epoch {epoch}")


def page() -> None:
    st.title("Compare runs")
    st.caption("Pick two to four runs: their settings that differ, their curves on one axis, their samples.")
    readable = [info for info in list_all_runs() if info.config is not None]
    if len(readable) < 2:
        st.info("Comparing needs at least two runs. Start some on the Train page (the failure recipes are quick).")
        return
    names = [info.name for info in readable]
    own_first = [info.name for info in readable if not info.shipped] + [info.name for info in readable if info.shipped]
    chosen = st.multiselect("Runs", names, default=own_first[:2], max_selections=4, key="compare_runs")
    if len(chosen) < 2:
        st.caption("Choose at least two runs.")
        return
    paths = {info.name: Run(info.path) for info in readable if info.name in chosen}
    runs = loaded(tuple(str(paths[name].path) for name in chosen), tuple(stamp(paths[name]) for name in chosen))
    axis = st.segmented_control(
        "Align by", list(compare.AXES), default="epoch", format_func=compare.AXES.get, key="compare_axis"
    )
    axis = axis or "epoch"
    st.subheader("Settings that differ")
    settings_table(runs)
    smoothing = st.slider("Smoothing", 0.0, 0.99, 0.8, 0.01, key="compare_smoothing", width=320)
    left, right = st.columns(2, gap="large")
    for index, (name, title) in enumerate(STEP_CHARTS):
        chart = step_chart(runs, name, title, axis, smoothing)
        if chart is not None:
            (left if index % 2 == 0 else right).plotly_chart(chart, key=f"compare_{name}")
    st.caption("Dashed lines mark settings changed mid-run, in the run's colour. A wgan-gp critic has no D(x) curve.")
    scored = [chart for name, title in SCORE_CHARTS if (chart := score_chart(runs, name, title, axis)) is not None]
    for index, chart in enumerate(scored):
        (left if index % 2 == 0 else right).plotly_chart(chart, key=f"compare_score_{index}")
    st.subheader("Samples side by side")
    grids(runs, paths)


page()
