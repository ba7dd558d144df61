"""`demo`: the runs shipped with the package (where they are, their epochs and size), and `--rebuild` to train them
again from scratch on the CPU, deterministically (gan/demo.py), comparing each with the files it replaces."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gan.cli.common import writing
from gan.demo import PLANS, describe_shipped, rebuild


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="the demo runs shipped with GAN Studio; --rebuild trains them again")
    demo.set_defaults(command=demo_command)
    demo.add_argument("--rebuild", action="store_true", help="train the shipped runs again (a few minutes on a CPU)")
    demo.add_argument("--only", choices=tuple(PLANS), help="rebuild this run alone")
    demo.add_argument("--out", type=Path, help="rebuild into this folder (default: the package's shipped runs)")


def demo_command(args: argparse.Namespace) -> int:
    if not args.rebuild:
        print("runs shipped with GAN Studio (read-only; Continue or `train --resume` trains a copy):")
        for line in describe_shipped():
            print(f"  {line}")
        return 0
    for name in [args.only] if args.only else list(PLANS):
        print(f"building {name} (one CPU thread, fp32) ...", flush=True)
        started = time.perf_counter()
        with writing():
            rebuilt = rebuild(name, args.out)
        seconds = time.perf_counter() - started
        print(f"  {rebuilt.path}: {rebuilt.epochs} saved epochs, {rebuilt.size / 1e6:.2f} MB, {seconds:.0f} s")
        if rebuilt.differences is None:
            print("  (nothing there before to compare with)")
        elif not rebuilt.differences:
            print("  the same tensors, grids and records as the files it replaced (timings aside)")
        else:
            print(f"  differs from the files it replaced: {'; '.join(rebuilt.differences[:5])}")
    return 0
