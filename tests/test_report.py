"""The standalone report: one HTML file with plotly inlined once and pictures as data URIs, every section a run
supports, text from the run folder kept as text, and what can be read of a damaged run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from gan.share.report import build_report
from gan.store.run import Run
from tests.conftest import tiny_config, trained_run

PLOTLY_BANNER = "plotly.js v"  # the first line of plotly.min.js
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    """A tiny run with a setting changed mid-run (4 epochs of 3 steps), made once."""
    return trained_run(
        tmp_path_factory.mktemp("report") / "shared", tiny_config(epochs=4, set_at=("5:lr_d=0.003",))
    ).path


@pytest.fixture
def run(shared, tmp_path) -> Run:
    shutil.copytree(shared, tmp_path / "shared")
    return Run(tmp_path / "shared")


def sources(page: str) -> list[str]:
    """Every address the page could load: src, href, url(...) and srcset."""
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']|url\(([^)]*)\)""", page)


def grids_of(page: str) -> list[str]:
    return json.loads(re.search(r"const grids = (\[.*?\])", page).group(1))


def test_a_report_holds_every_section_in_one_file(run):
    report = build_report(run)
    page = report.html
    assert not report.problems
    assert page.count(PLOTLY_BANNER) == 1, "plotly's JavaScript is inlined once"
    assert page.count("Plotly.newPlot") == 2  # the losses and D's beliefs
    for heading in ("Diagnosis", "Charts", "Samples", "Scores", "Settings", "Changed mid-run", "Progression"):
        assert f"<h2>{heading}" in page or f"<h3>{heading}" in page, heading
    assert "lr_d=0.003" in page  # the change, on the charts and in its table
    grids = grids_of(page)
    assert len(grids) == 4 and all(uri.startswith("data:image/png;base64,") for uri in grids)
    assert 'src="data:image/gif;base64,' in page


def test_a_report_loads_nothing_from_anywhere(run):
    page = build_report(run).html
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.S)  # scripts: the browser test watches them
    found = [address for pair in sources(markup) for address in pair if address]
    assert found and all(address.startswith(("data:", "#")) for address in found), found
    assert "<link" not in page and "@import" not in page
    assert "default-src 'none'" in page  # the browser is told to fetch nothing, whatever a script tries


def test_scores_and_per_digit_fid_are_tabled_for_a_scored_conditional_run(run):
    scores = {
        "fid": 42.5, "classifier_score": 7.1, "histogram": [0.1] * 10, "classes_covered": 9, "mean_confidence": 0.8,
        "label_agreement": 0.7, "warnings": [], "fid_second": 3.25, "precision": 0.61, "recall": 0.42,
        "per_class_fid": [float(digit) + 0.5 for digit in range(10)],
    }  # fmt: skip
    lines = [json.loads(line) for line in (run.path / "history.jsonl").read_text().splitlines()]
    lines = [{**line, "scores": scores} if line["kind"] == "epoch" else line for line in lines]
    (run.path / "history.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    page = build_report(run).html
    for shown in ("42.50", "3.25", "7.10", "0.61", "0.42", "9 of 10", "FID of each digit asked for", "9.5"):
        assert shown in page, shown
    assert page.count("Plotly.newPlot") == 3  # and FID by epoch


@pytest.mark.parametrize("where", ["folder", "config", "history"])
def test_text_from_the_run_folder_stays_text(run, tmp_path, where):
    if where == "folder":  # a folder name the app would list (only the command line checks names)
        run = Run(run.path.rename(tmp_path / f"x{HOSTILE.replace('/', '')}"))
    elif where == "config":
        config = json.loads((run.path / "config.json").read_text())
        (run.path / "config.json").write_text(json.dumps({**config, "preset": HOSTILE}))
    else:
        with open(run.path / "history.jsonl", "a") as history:
            history.write(json.dumps({"kind": "change", "step": 7, "field": HOSTILE, "old": HOSTILE, "new": 1}) + "\n")
    page = build_report(run).html
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page or "\\u003cscript\\u003ealert" in page


def test_a_damaged_run_gives_one_line_and_what_can_be_read(run):
    (run.path / "config.json").write_text("{not json")
    with open(run.path / "history.jsonl", "a") as history:
        history.write('{"kind": "step"}\n\x00\x01garbage\n')
    run.grid_path(2).write_bytes(b"not a png")
    report = build_report(run)
    line = report.problem_line(run.name)
    assert "\n" not in line and "config.json" in line and "2 more" in line and "what can be read" in line
    page = report.html
    assert "The settings cannot be read" in page and "2 damaged lines" in page and "epochs 2 cannot be read" in page
    assert page.count("Plotly.newPlot") == 2 and len(grids_of(page)) == 3


def test_the_command_writes_the_report_and_names_a_damaged_run_in_one_line(cli, root, good, tmp_path):
    out = tmp_path / "good.html"
    code, printed, errors = cli("report", "--run", "good", "--out", out)
    assert code == 0 and not errors and "wrote the report of run good" in printed
    assert out.read_text().count(PLOTLY_BANNER) == 1
    (good.path / "history.jsonl").write_text("\x00" * 10 + "\n")
    code, printed, errors = cli("report", "--run", "good", "--out", out)
    assert code == 0 and errors.count("\n") == 1 and errors.startswith("warning: run 'good' is damaged")


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--run", "missing", "--out", "x.html"], "there is no run 'missing'"),
        (["--run", "../x", "--out", "x.html"], "is not allowed"),
        (["--run", "good", "--out", "x.pdf"], "must end in .html"),
    ],
)
def test_the_command_refuses_in_one_line(cli, root, good, arguments, says):
    code, _, errors = cli("report", *arguments)
    assert code == 1 and says in errors and errors.count("\n") == 1


def test_a_report_that_cannot_be_written_is_one_line(cli, root, good, tmp_path):
    (tmp_path / "a-file").write_text("")
    code, _, errors = cli("report", "--run", "good", "--out", tmp_path / "a-file" / "x.html")
    assert code == 1 and "a-file" in errors and errors.count("\n") == 1


@pytest.mark.slow
def test_a_fifty_epoch_report_stays_under_ten_megabytes(tmp_path):
    run = trained_run(tmp_path / "long", tiny_config(epochs=50))
    size = len(build_report(run).html.encode())
    assert 5_000_000 < size <= 10_000_000, f"{size:,} bytes"
