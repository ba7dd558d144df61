"""`report`: a run as one standalone HTML file that opens offline (gan/share/report.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gan.cli.common import check_suffix, writing
from gan.share.report import build_report
from gan.store.checkpoints import CheckpointError
from gan.store.files import atomic_write
from gan.store.run import Run


def register(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="a run as one HTML file: charts, grids, scores, settings (offline)")
    report.set_defaults(command=report_command)
    report.add_argument("--run", required=True)
    report.add_argument("--out", type=Path, required=True, help="the .html file to write")


def report_command(args: argparse.Namespace) -> int:
    check_suffix("--out", args.out, (".html", ".htm"))
    run = Run.at(args.run, args.root)
    if not run.path.is_dir():
        raise CheckpointError(f"there is no run {run.name!r} in {run.path.parent}")
    report = build_report(run)
    with writing():
        atomic_write(args.out, report.html.encode("utf-8"))
    problem = report.problem_line(run.name)
    if problem:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"wrote the report of run {run.name} to {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0
