"""`compare`: the settings that differ between two to four runs, and each run's scores by epoch."""

from __future__ import annotations

import argparse

from gan.cli.common import UsageError
from gan.lab import compare
from gan.store.run import Run


def register(commands: argparse._SubParsersAction) -> None:
    comparing = commands.add_parser("compare", help="the settings that differ between runs, and their scores by epoch")
    comparing.set_defaults(command=compare_command)
    comparing.add_argument("runs", nargs="+", metavar="RUN", help="2 to 4 run names")


def compare_command(args: argparse.Namespace) -> int:
    try:
        compare.check_count(args.runs)
    except ValueError as error:
        raise UsageError(str(error)) from None
    runs = compare.load([Run.at(name, args.root) for name in args.runs])
    differing = compare.differing_settings(runs)
    width = max(12, *(len(run.name) for run in runs))
    print("settings that differ" if differing else "every setting is the same")
    if differing:
        print(f"{'':<18} " + " ".join(f"{run.name:<{width}}" for run in runs))
        for name, row in differing.items():
            print(f"{name:<18} " + " ".join(f"{compare.format_setting(value):<{width}}" for value in row))
    for run in runs:
        columns, rows = compare.score_table(run)
        print(f"\nrun {run.name}: scores per epoch" + ("" if rows else ": none (trained with --no-eval?)"))
        if rows:
            print(" ".join(f"{column:>16}" for column in columns))
            for row in rows:
                print(" ".join(f"{cell(value):>16}" for value in row))
    return 0


def cell(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
