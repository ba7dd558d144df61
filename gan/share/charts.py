"""The report's charts as plotly figures: the losses and D's beliefs against the step (smoothed, with a dotted line at
each epoch's end and a dashed, labelled one where a setting changed), the critic's estimate for wgan-gp, and the
FID of each scored epoch on both judges.

Text from the run folder (change labels) is escaped: plotly draws a little HTML in labels, and a label must stay text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from gan.config import SETTINGS
from gan.series import smooth, thin
from gan.store.history import ChangeRecord, EpochRecord, StepRecord

POINTS = 1500  # per curve: a report is read, not zoomed into
SMOOTHING = 0.6
LABELLED_EPOCHS = 12  # epoch numbers at least a twelfth of the axis apart (lines: every epoch)
NAMES = {
    "loss_d": ("D loss", "#1f77b4"),
    "loss_g": ("G loss", "#ff7f0e"),
    "d_real": ("D(x): real judged real", "#2ca02c"),
    "d_fake": ("D(G(z)): fake judged real", "#d62728"),
    "wasserstein": ("critic's D(x) - D(G(z))", "#8c564b"),
}
CHANGE_COLOR = "#9467bd"
EPOCH_LINE = {"width": 1, "dash": "dot", "color": "rgba(128,128,128,0.6)"}


def _vertical(x: float, line: dict[str, Any]) -> dict[str, Any]:
    return {"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1, "line": line}


def change_label(change: ChangeRecord) -> str:
    """As the app labels it: the setting's name in the form, and its new value."""
    value, field = change.new, change.field
    shown = "auto" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
    return html.escape(f"{SETTINGS[field].label if field in SETTINGS else field} {shown}"[:60])


def markers(epochs: Sequence[EpochRecord], changes: Sequence[ChangeRecord]) -> tuple[list[dict], list[dict]]:
    """Shapes and annotations: every epoch's end (a number on a few of them) and every change of a setting."""
    shapes = [_vertical(record.step, EPOCH_LINE) for record in epochs]
    gap = max((record.step for record in epochs), default=0) / LABELLED_EPOCHS  # numbers this far apart, at least
    labelled, last = [], math.inf
    for record in reversed(epochs):  # the last epoch always has its number
        if last - record.step >= gap:
            labelled.append(record)
            last = record.step
    annotations = [
        {"x": record.step, "xref": "x", "y": 1.0, "yref": "paper", "text": f"{record.epoch}", "showarrow": False,
         "yanchor": "bottom", "font": {"size": 10, "color": "#777"}}
        for record in labelled
    ]  # fmt: skip
    for change in changes:
        shapes.append(_vertical(change.step, {"width": 2, "dash": "dash", "color": CHANGE_COLOR}))
        annotations.append({"x": change.step, "xref": "x", "y": 0.97, "yref": "paper", "text": change_label(change),
                            "showarrow": False, "xanchor": "left", "yanchor": "top", "textangle": -90,
                            "font": {"size": 11, "color": CHANGE_COLOR}})  # fmt: skip
    return shapes, annotations


def _smoothed(values: list[float | None]) -> list[float | None]:
    present = iter(smooth([value for value in values if value is not None], SMOOTHING))
    return [None if value is None else next(present) for value in values]


def step_figure(
    steps: Sequence[StepRecord],
    names: Sequence[str],
    title: str,
    epochs: Sequence[EpochRecord],
    changes: Sequence[ChangeRecord],
) -> go.Figure:
    """Each metric raw (faint) and smoothed, against the step, with the epoch and change markers."""
    x = thin([record.step for record in steps], POINTS)
    traces = []
    for name in names:
        label, color = NAMES[name]
        raw = [getattr(record, name) for record in steps]
        for values, width, opacity, legend in ((raw, 1, 0.25, False), (_smoothed(raw), 2, 1.0, True)):
            traces.append({"type": "scatter", "x": x, "y": thin(values, POINTS), "mode": "lines", "name": label,
                           "showlegend": legend, "opacity": opacity, "hoverinfo": "x+y" if legend else "skip",
                           "line": {"color": color, "width": width}})  # fmt: skip
    shapes, annotations = markers(epochs, changes)
    layout = {
        "title": {"text": title, "font": {"size": 15}},
        "height": 320,
        "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
        "xaxis": {"title": {"text": "step (dotted lines: the end of each epoch, numbered above)"}},
        "legend": {"orientation": "h", "y": -0.25},
        "hovermode": "x unified",
        "shapes": shapes,
        "annotations": annotations,
    }
    return go.Figure({"data": traces, "layout": layout})


def fid_figure(epochs: Sequence[EpochRecord]) -> go.Figure | None:
    """FID of each scored epoch on both judges (log scale: from noise to digits spans three decades)."""
    scored = [record for record in epochs if record.scores is not None]
    if len(scored) < 2:
        return None
    traces = [{"type": "scatter", "x": [record.epoch for record in scored], "y": [record.scores.fid for record in
               scored], "mode": "lines+markers", "name": "FID (first judge)"}]  # fmt: skip
    second = [record for record in scored if record.scores.fid_second is not None]
    if second:
        traces.append({"type": "scatter", "x": [record.epoch for record in second],
                       "y": [record.scores.fid_second for record in second], "mode": "lines+markers",
                       "name": "FID (second judge)"})  # fmt: skip
    layout = {
        "title": {"text": "FID by epoch (lower is better)", "font": {"size": 15}},
        "height": 300,
        "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
        "xaxis": {"title": {"text": "epoch"}},
        "yaxis": {"type": "log"},
        "legend": {"orientation": "h", "y": -0.25},
    }
    return go.Figure({"data": traces, "layout": layout})


def run_figures(
    steps: Sequence[StepRecord], epochs: Sequence[EpochRecord], changes: Sequence[ChangeRecord]
) -> list[go.Figure]:
    """Every chart a run's history supports, in the report's order."""
    if not steps:
        return [figure] if (figure := fid_figure(epochs)) else []
    figures = [step_figure(steps, ("loss_d", "loss_g"), "Losses", epochs, changes)]
    if any(record.d_real is not None for record in steps):
        figures.append(step_figure(steps, ("d_real", "d_fake"), "What D believes: D(x) and D(G(z))", epochs, changes))
    if any(record.wasserstein is not None for record in steps):
        figures.append(step_figure(steps, ("wasserstein",), "The critic's estimate of the distance", epochs, changes))
    if figure := fid_figure(epochs):
        figures.append(figure)
    return figures
