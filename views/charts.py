"""The pages' charts: plotly figures of a run's losses and D's beliefs with epoch and change markers, the class
histogram and FID by epoch, all laid out the same way. Presentation only: the numbers come from `gan/`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from gan.config import SETTINGS
from gan.series import smooth, thin
from gan.store.history import ChangeRecord, EpochRecord, StepRecord
from views.common import CHANGE_COLOR, CHART_POINTS, COLORS, HIGHLIGHT, LABELS

LABEL_BOX = "rgba(255,255,255,0.8)"  # behind a label that a curve may cross

# Room on the right for plotly's mode bar, which stands upright there (shown while the pointer is over a chart), clear
# of the title and the legend; the buttons that do nothing on these charts are left out.
CHART_MARGIN = {"l": 10, "r": 40, "t": 40, "b": 10}
MODEBAR = {"orientation": "v", "remove": ["lasso2d", "select2d", "autoScale2d"]}
LEGEND_STRIP = 72  # pixels under a chart: the tick labels, the axis title and a one-line legend


@dataclass(frozen=True)
class Marker:
    step: int
    label: str


def chart_layout(title: str, height: int, **more: Any) -> dict[str, Any]:
    """The layout every chart shares: a small title, tight margins; `more` adds to it or overrides it."""
    layout = {"title": {"text": title, "font": {"size": 15}}, "height": height, "margin": CHART_MARGIN}
    return {**layout, "modebar": MODEBAR, **more}


def vertical_line(x: float, width: int, dash: str, color: str) -> dict[str, Any]:
    line = {"width": width, "dash": dash, "color": color}
    return {"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1, "line": line}


def curves(steps: list[int], raw: list[float], smoothed: list[float], name: str, points: int) -> list[dict[str, Any]]:
    """A metric's raw values (faint, no legend) and its smoothed curve, each thinned to about `points`."""
    line = {"color": COLORS[name]}
    faint = {
        "type": "scatter",
        "x": steps,
        "y": thin(raw, points),
        "mode": "lines",
        "opacity": 0.25,
        "line": {**line, "width": 1},
        "hoverinfo": "skip",
        "showlegend": False,
    }
    solid = {
        "type": "scatter",
        "x": steps,
        "y": thin(smoothed, points),
        "mode": "lines",
        "name": LABELS[name],
        "line": {**line, "width": 2},
    }
    return [faint, solid]


def metric_figure(
    records: Sequence[StepRecord],
    names: Sequence[str],
    title: str,
    smoothing: float,
    markers: Sequence[Marker] = (),
    highlight: Marker | None = None,
    height: int = 300,
    points: int = CHART_POINTS,
    changes: Sequence[Marker] = (),
) -> go.Figure:
    """Raw values (faint) and their smoothed curve (solid) against the step, with optional epoch lines and labelled
    lines where settings changed mid-run; each curve thinned to about `points` points after smoothing. Missing
    values (None: a wgan-gp critic has no beliefs) leave gaps.

    Built in one go from plain dicts: adding shapes one by one (add_vline) costs plotly ~10 ms each, which a
    live chart cannot afford."""
    steps = thin([record.step for record in records], points)
    traces = []
    for name in names:
        raw = [getattr(record, name) for record in records]
        traces += curves(steps, raw, smooth_gaps(raw, smoothing), name, points)
    shapes = [vertical_line(marker.step, 1, "dot", "rgba(128,128,128,0.5)") for marker in markers]
    shapes += [vertical_line(change.step, 2, "dash", CHANGE_COLOR) for change in changes]
    annotations = [change_label(change) for change in changes]  # upright along its line, so several stay apart
    if highlight is not None:  # named in the legend, where its label cannot overlap the legend or the curves
        line = vertical_line(highlight.step, 2, "dash", HIGHLIGHT)
        shapes.append({**line, "name": highlight.label, "showlegend": True})
    layout = chart_layout(
        title,
        height,
        # The legend goes in a strip of its own at the bottom, under the axis title: above the plot it ran into the
        # title once its entries wrapped (a laptop's screen is narrow enough), and into the mode bar.
        margin={**CHART_MARGIN, "b": LEGEND_STRIP},
        legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0, "xanchor": "left", "x": 0},
        xaxis={"title": {"text": "step"}},
        hovermode="x unified",
        shapes=shapes,
        annotations=annotations,
    )
    return go.Figure({"data": traces, "layout": layout}, skip_invalid=False)


def change_label(change: Marker) -> dict[str, Any]:
    """A change's label in the plot, upright along its line, on a light box (a loss spike may run behind it)."""
    font = {"size": 11, "color": CHANGE_COLOR}
    place = {"x": change.step, "xref": "x", "y": 0.98, "yref": "paper", "xanchor": "left", "yanchor": "top"}
    return {**place, "text": change.label, "showarrow": False, "textangle": -90, "font": font, "bgcolor": LABEL_BOX}


def epoch_markers(epoch_records: Sequence[EpochRecord]) -> list[Marker]:
    return [Marker(record.step, f"epoch {record.epoch}") for record in epoch_records]


def change_markers(change_records: Sequence[ChangeRecord]) -> list[Marker]:
    """A labelled line per setting changed mid-run, where it took effect (after its step)."""
    return [
        Marker(record.step, f"{setting_name(record.field)} {format_value(record.new)}") for record in change_records
    ]


def setting_name(field: str) -> str:
    """The name a learner reads for a setting: the form's label ("D learning rate"), not the code's (lr_d)."""
    return SETTINGS[field].label if field in SETTINGS else field


def format_value(value: Any) -> str:
    if value is None:
        return "auto"
    return f"{value:g}" if isinstance(value, float) else str(value)


def smooth_gaps(values: Sequence[float | None], weight: float) -> list[float | None]:
    """`smooth` over the present values, with the gaps (None) kept where they were."""
    present = smooth([value for value in values if value is not None], weight)
    filled = iter(present)
    return [None if value is None else next(filled) for value in values]


def scores_figure(histogram: Sequence[float]) -> go.Figure:
    figure = go.Figure(go.Bar(x=[str(digit) for digit in range(len(histogram))], y=list(histogram)))
    title = "Which digits the generator draws (share of samples; dotted: 10% each, balanced)"
    xaxis = {"title": "digit (as the judge reads it)", "dtick": 1}
    figure.update_layout(chart_layout(title, 240, xaxis=xaxis, yaxis={"tickformat": ".0%"}))
    figure.add_hline(y=0.1, line={"width": 1, "dash": "dot"})  # named in the title: a label here sat on a bar
    return figure


def fid_figure(epochs: Sequence[int], fids: Sequence[float], epoch: int) -> go.Figure:
    """FID against the epoch, with the chosen epoch marked."""
    figure = go.Figure(go.Scatter(x=list(epochs), y=list(fids), mode="lines+markers", name="FID"))
    xaxis = {"title": "epoch", "dtick": max(1, len(epochs) // 10)}
    yaxis = {"title": "FID (log scale)", "type": "log"}  # the first epoch's noise (~700) would flatten the rest
    shapes = [vertical_line(epoch, 2, "dash", HIGHLIGHT)]
    figure.update_layout(chart_layout("FID by epoch (lower is better)", 240, xaxis=xaxis, yaxis=yaxis, shapes=shapes))
    return figure
