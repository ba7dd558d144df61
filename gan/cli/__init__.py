"""The command line, `python -m gan COMMAND ...`: the parser and `main`. Errors a user can cause print one line
and exit with code 1; anything else is a bug and shows its traceback.

Each module here holds one group of commands and a `register(commands)` that adds them to the parser, each with
`set_defaults(command=function)`; the function takes the parsed arguments and returns the exit code. To add a
command, write its module (see `compare.py`, the smallest) and add its name to COMMANDS below.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from gan.cli.common import UsageError, WriteError
from gan.jobs.errors import USER_ERRORS
from gan.store.checkpoints import printable

# modules of gan.cli, in the order --help lists them
COMMANDS = ("train", "step", "runs", "scores", "compare", "probe", "report", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan", description="Train and explore GANs on MNIST.")
    parser.add_argument(
        "--root", type=Path, help="folder of run folders (default: $GAN_STUDIO_CHECKPOINTS or checkpoints)"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"gan.cli.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.command(args)
    except (*USER_ERRORS, UsageError, WriteError) as error:
        print(f"error: {printable(' '.join(str(error).split()), 1000)}", file=sys.stderr)
        return 1
