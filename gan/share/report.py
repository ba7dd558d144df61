"""A run as one standalone HTML file (`python -m gan report`, and the Timeline's download): opened from a disk or an
e-mail, offline, in any browser, it makes no network request. plotly's JavaScript is inlined once, every picture is
a data URI, and a Content-Security-Policy forbids fetching anything at all.

It holds the settings (and the changes made mid-run), the diagnosis, the loss and D(x) / D(G(z)) charts with the
epoch markers, a slider over the sample grids (an HTML range input and a few lines of script), the scores of each
epoch, the FID of each digit for the conditional preset, and the progression as a GIF. Everything comes from the
run folder's config, history and grids (no checkpoint is loaded, so a report takes a second), and every text read
from it is escaped: a run name or a setting holding `<script>` stays text. A damaged run gives what can be read,
with its problems listed at the top.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.io as pio
from PIL import Image

from gan.config import SETTINGS, Config
from gan.images import progression_gif
from gan.scoring.diagnose import diagnose
from gan.series import evenly
from gan.share.charts import run_figures
from gan.store.checkpoints import CheckpointError, printable
from gan.store.grids import grid_picture
from gan.store.history import ChangeRecord, EpochRecord, History
from gan.store.run import Run

# Bytes of pictures, before base64 adds a third: the slider's grids and the GIF. plotly's JavaScript is 4.8 MB, so
# these keep any report under 10 MB. A run's grids of digits are about 25 kB each: the slider shows every epoch of
# a run of a hundred; grids of noise (60 kB) or a longer run get as many epochs as fit, picked evenly.
GRID_BUDGET = 2_700_000
GIF_BUDGET = 700_000
GIF_FRAMES = 24  # at most, picked evenly among the slider's
CSP = "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:"
STYLE = """body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222 }
table { border-collapse: collapse; font-size: 0.9em }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left } th { background: #f4f4f4 }
table.numbers td, table.numbers th { text-align: right }
.problem { background: #fff3cd; border: 1px solid #e0c060; padding: 0.5em 1em }
.grid { image-rendering: pixelated; width: 604px; max-width: 100%; border: 1px solid #ddd }
input[type=range] { width: 604px; max-width: 100% }"""


@dataclass(frozen=True)
class Contents:
    """What could be read from a run folder, and what could not (one line each)."""

    name: str
    config: Config | None
    history: History
    grids: dict[int, bytes]  # epoch -> its sample grid as PNG, re-encoded from the decoded picture
    saved: int  # epochs with a grid, of which `grids` holds those that fit the budget
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    html: str
    problems: tuple[str, ...]

    def problem_line(self, name: str) -> str | None:
        """The run's problems as one line, or None when it was read whole."""
        if not self.problems:
            return None
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"run {printable(name)!r} is damaged: {self.problems[0]}{more}; the report shows what can be read"


def read_contents(run: Run) -> Contents:
    problems = []
    try:
        config = run.config()
    except CheckpointError as error:
        config = None
        problems.append(f"{printable(' '.join(str(error).split()), 300)} (its settings are not shown)")
    try:
        history = run.history()
    except CheckpointError as error:
        history = History()
        problems.append(f"{printable(' '.join(str(error).split()), 300)} (no charts or scores)")
    if history.skipped:
        problems.append(f"{history.skipped} damaged lines of its history were skipped")
    saved = run.epochs_with_grids()
    grids, unreadable = {}, []
    for epoch in within_budget(saved, {epoch: file_size(run.grid_path(epoch)) for epoch in saved}, GRID_BUDGET):
        picture = grid_picture(run, epoch)
        if picture is None:
            unreadable.append(epoch)
            continue
        buffer = io.BytesIO()
        picture.convert("L").save(buffer, format="PNG", optimize=True)
        grids[epoch] = buffer.getvalue()
    if unreadable:
        problems.append(f"the grids of epochs {', '.join(map(str, unreadable[:10]))} cannot be read")
    return Contents(run.name, config, history, grids, len(saved), tuple(problems))


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def within_budget(epochs: list[int], sizes: dict[int, int], budget: int) -> list[int]:
    """The most epochs, picked evenly (the first and the last among them), whose sizes add up to at most `budget`;
    at least the last."""
    count = len(epochs)
    while count > 1:
        chosen = evenly(epochs, count)
        total = sum(sizes[epoch] for epoch in chosen)
        if total <= budget:
            return chosen
        count = min(count - 1, max(1, count * budget // total))
    return epochs[-1:]


def build_report(run: Run) -> Report:
    contents = read_contents(run)
    return Report(report_html(contents), contents.problems)


def report_bytes(run: Run) -> bytes:
    return build_report(run).html.encode("utf-8")


# --- HTML ----------------------------------------------------------------------------------------------------


def text(value: Any) -> str:
    return html.escape(str(value))


def number(value: Any, digits: int = 2) -> str:
    """A number read from the history, else a dash (the file is untrusted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(headers: list[str], rows: list[list[str]], numbers: bool = False) -> str:
    """Headers and cells are escaped here; a table of numbers is aligned right."""
    head = "".join(f"<th>{text(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{text(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    kind = ' class="numbers"' if numbers else ""
    return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def settings_section(config: Config | None, changes: list[ChangeRecord]) -> str:
    if config is None:
        return "<h2>Settings</h2><p>The settings cannot be read.</p>"
    rows = [[SETTINGS[name].label, name, format_setting(value)] for name, value in config.to_dict().items()]
    section = "<h2>Settings</h2>" + table(["Setting", "Name", "Value"], rows)
    if changes:
        rows = [[str(change.step), change.field, format_setting(change.old), format_setting(change.new)]
                for change in changes]  # fmt: skip
        section += "<h3>Changed mid-run</h3>" + table(["After step", "Setting", "From", "To"], rows)
    return section


def format_setting(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def diagnosis_section(history: History) -> str:
    findings = diagnose(history)
    if not findings:
        return "<h2>Diagnosis</h2><p>Nothing alarming in the history and scores.</p>"
    return "<h2>Diagnosis</h2><ul>" + "".join(f"<li>{text(finding.text())}</li>" for finding in findings) + "</ul>"


def scores_section(epochs: list[EpochRecord], conditional: bool) -> str:
    scored = [record for record in epochs if record.scores is not None]
    if not scored:
        return "<h2>Scores</h2><p>No epoch was scored (the run was trained without the digit judges).</p>"
    headers = ["Epoch", "Step", "FID", "FID (2nd judge)", "Classifier score", "Precision", "Recall", "Digits drawn"]
    rows = []
    for record in scored:
        scores = record.scores
        rows.append([str(record.epoch), str(record.step), number(scores.fid), number(scores.fid_second),
                     number(scores.classifier_score), number(scores.precision), number(scores.recall),
                     f"{number(scores.classes_covered)} of 10"])  # fmt: skip
    section = "<h2>Scores by epoch</h2>" + table(headers, rows, numbers=True)
    per_digit = [record for record in scored if record.scores.per_class_fid is not None]
    if conditional and per_digit:
        rows = [
            [str(record.epoch), *(number(value, 1) for value in record.scores.per_class_fid)] for record in per_digit
        ]
        section += "<h3>FID of each digit asked for</h3>" + table(["Epoch", *map(str, range(10))], rows, numbers=True)
    return section


def slider_section(grids: dict[int, bytes], saved: int) -> str:
    if not grids:
        return "<h2>Samples</h2><p>No sample grid can be read.</p>"
    epochs = sorted(grids)
    uris = [data_uri(grids[epoch], "image/png") for epoch in epochs]
    last = len(epochs) - 1
    picked = f" ({len(epochs)} of the {saved} saved epochs, picked evenly)" if len(epochs) < saved else ""
    return f"""<h2>Samples: the same 100 noise vectors every epoch</h2>
<p><label for="epoch">Epoch <output id="epoch-label">{epochs[-1]}</output>{picked}</label><br>
<input type="range" id="epoch" min="0" max="{last}" step="1" value="{last}"></p>
<img id="grid" class="grid" alt="sample grid" src="{uris[-1]}">
<script>
(() => {{
  const grids = {json.dumps(uris)}, epochs = {json.dumps(epochs)};
  const slider = document.getElementById("epoch"), grid = document.getElementById("grid");
  const label = document.getElementById("epoch-label");
  slider.addEventListener("input", () => {{
    grid.src = grids[slider.value];
    label.textContent = epochs[slider.value];
  }});
}})();
</script>"""


def gif_section(grids: dict[int, bytes]) -> str:
    """The progression GIF, of fewer frames while it is over its budget."""
    frames = GIF_FRAMES
    while True:
        chosen = evenly(sorted(grids), frames)
        if len(chosen) < 2:
            return ""
        pictures = [Image.open(io.BytesIO(grids[epoch])) for epoch in chosen]
        gif = progression_gif(pictures, [f"epoch {epoch}" for epoch in chosen], scale=1)
        if len(gif) <= GIF_BUDGET or len(chosen) == 2:
            return f'<h2>Progression</h2><img class="grid" alt="progression" src="{data_uri(gif, "image/gif")}">'
        frames = max(2, len(chosen) * GIF_BUDGET // len(gif))


def charts_section(history: History) -> str:
    changes = [record for record in history if isinstance(record, ChangeRecord)]
    figures = run_figures(history.steps, history.epochs, changes)
    if not figures:
        return "<h2>Charts</h2><p>No steps were logged.</p>"
    parts = []
    for index, figure in enumerate(figures):  # plotly's JavaScript once, with the first chart
        parts.append(pio.to_html(figure, include_plotlyjs=index == 0, full_html=False,
                                 config={"displaylogo": False, "responsive": True}))  # fmt: skip
    return "<h2>Charts</h2>" + "".join(parts)


def report_html(contents: Contents) -> str:
    history, config = contents.history, contents.config
    changes = [record for record in history if isinstance(record, ChangeRecord)]
    conditional = (
        config.conditional
        if config
        else any(record.scores is not None and record.scores.per_class_fid is not None for record in history.epochs)
    )
    problems = "".join(f'<p class="problem">{text(problem)}</p>' for problem in contents.problems)
    steps = history.steps
    summary = (f"{config.preset}, " if config else "") + f"{len(contents.grids)} saved epochs" + (
        f", {steps[-1].step:,} steps" if steps else "")  # fmt: skip
    body = "".join([
        f"<h1>GAN Studio: run {text(contents.name)}</h1>",
        f"<p>{text(summary)}. Report made {text(time.strftime('%Y-%m-%d %H:%M'))}.</p>",
        problems,
        diagnosis_section(history),
        charts_section(history),
        slider_section(contents.grids, contents.saved),
        scores_section(history.epochs, conditional),
        gif_section(contents.grids),
        settings_section(config, changes),
    ])  # fmt: skip
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>GAN Studio: {text(contents.name)}</title>
<style>{STYLE}</style></head>
<body>{body}</body></html>
"""
