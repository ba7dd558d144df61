"""`sample` (a grid or an array of digits from a saved epoch) and `runs` (the runs with their epochs and losses)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from gan.cli.common import UsageError, check_suffix, number_flag, writing
from gan.data import NUM_CLASSES, to_unit_range
from gan.images import grid_png
from gan.lab.latent import sample
from gan.numbers import whole_number
from gan.store.checkpoints import CheckpointError, printable
from gan.store.listing import iter_all_runs, root_problem
from gan.store.run import Run, default_root, load_generator


def register(commands: argparse._SubParsersAction) -> None:
    sampler = commands.add_parser("sample", help="draw samples from a saved epoch to a PNG grid or .npy array")
    sampler.set_defaults(command=sample_command)
    sampler.add_argument("--run", required=True)
    sampler.add_argument("--epoch", type=number_flag(whole_number), help="default: the newest saved epoch")
    sampler.add_argument(
        "--digit", type=number_flag(whole_number), help="the digit to draw (conditional presets); default: all ten"
    )
    sampler.add_argument("--n", type=number_flag(whole_number), default=100, help="number of samples (default 100)")
    sampler.add_argument("--seed", type=number_flag(whole_number), default=0)
    sampler.add_argument("--out", type=Path, required=True, help="a .png grid or a .npy array (N, 28, 28) in [0, 1]")

    runs = commands.add_parser("runs", help="list runs with their epochs and last losses")
    runs.set_defaults(command=runs_command)


def sample_command(args: argparse.Namespace) -> int:
    if not 1 <= args.n <= 10_000:
        raise UsageError(f"--n={args.n} is not allowed: a whole number from 1 to 10000")
    if args.digit is not None and not 0 <= args.digit < NUM_CLASSES:
        raise UsageError(f"digit={args.digit} is not allowed: a digit from 0 to 9")
    G, config, epoch = load_generator(Run.at(args.run, args.root), args.epoch)
    images, _ = sample(G, args.n, args.seed, args.digit)
    if not torch.isfinite(images).all():
        raise CheckpointError(f"run {args.run!r} epoch {epoch}: the generator draws NaN or infinite pixels")
    check_suffix("--out", args.out, (".png", ".npy"))
    with writing():
        if args.out.suffix.lower() == ".npy":
            np.save(args.out, to_unit_range(images)[:, 0].numpy())
        else:
            nrow = 10 if config.conditional and args.digit is None else math.ceil(math.sqrt(args.n))
            args.out.write_bytes(grid_png(images, nrow=nrow))
    print(f"wrote {args.n} samples from {args.run} epoch {epoch} to {args.out}")
    return 0


def runs_command(args: argparse.Namespace) -> int:
    problem = root_problem(args.root)
    if problem:
        raise UsageError(problem)
    own = 0
    print(f"{'run':<28} {'preset':<8} {'epochs':>6} {'step':>7} {'loss_d':>7} {'loss_g':>7}  note")
    for info in iter_all_runs(args.root):  # a line as each run is read; names and reasons from disk are escaped
        own += not info.shipped
        last = info.last_record
        preset = info.config.preset if info.config else "?"
        epochs = f"{info.epochs[-1]}" if info.epochs else "-"
        losses = f"{last.loss_d:>7.3f} {last.loss_g:>7.3f}" if last else f"{'-':>7} {'-':>7}"
        step = last.step if last else 0
        note = "demo: shipped with GAN Studio, read-only (--resume trains a copy)" if info.shipped else info.error
        print(f"{printable(info.name, 100):<28} {preset:<8} {epochs:>6} {step:>7} {losses}  {printable(note or '')}")
    if not own:
        print(f"no runs of your own in {args.root or default_root()}/ yet: start one with 'python -m gan train'")
    return 0
