"""`probe` (the judge's reading of a user's digit picture and the discriminator's verdict on it, epoch by epoch)
and `invert` (the latent codes whose images come closest to given digits)."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from gan.cli.common import UsageError, check_suffix, number_flag, read_bytes, writing
from gan.data import load_mnist, to_unit_range
from gan.device import inference_bf16
from gan.images import grid_png
from gan.lab.inversion import STEPS as INVERSION_STEPS
from gan.lab.inversion import Inversion, Weights, invert
from gan.lab.probe import digit_from_png, digits_from_npy, judge_reading, verdicts
from gan.numbers import whole_number
from gan.scoring.judge import load_judge
from gan.store.checkpoints import CheckpointError, printable
from gan.store.run import Run, load_generator


def register(commands: argparse._SubParsersAction) -> None:
    probe = commands.add_parser("probe", help="the judge's reading of a digit picture and D's verdict per epoch")
    probe.set_defaults(command=probe_command)
    probe.add_argument("--run", required=True)
    probe.add_argument("--epoch", type=number_flag(whole_number), help="default: every saved epoch")
    probe.add_argument(
        "--image", type=Path, required=True, help="a picture of one digit (PNG, JPEG, ...), any size, any colours"
    )

    inverter = commands.add_parser("invert", help="find the latent codes whose images are closest to given digits")
    inverter.set_defaults(command=invert_command)
    inverter.add_argument("--run", required=True)
    inverter.add_argument("--epoch", type=number_flag(whole_number), help="default: the newest saved epoch")
    source = inverter.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path, help="a PNG of one digit (prepared the way MNIST was)")
    source.add_argument("--npy", type=Path, help="digits (N, 28, 28) in [0, 1], as `gan sample` writes them")
    inverter.add_argument("--out", type=Path, required=True, help="the reconstructions: .png grid or .npy array")
    inverter.add_argument("--latents", type=Path, help="save the codes here (.npy); digits beside it (.digits.npy)")
    inverter.add_argument(
        "--steps", type=number_flag(whole_number), default=INVERSION_STEPS, help=f"default {INVERSION_STEPS}"
    )


def probe_command(args: argparse.Namespace) -> int:
    run = Run.at(args.run, args.root)
    epochs = run.epochs() if args.epoch is None else [args.epoch]
    if not epochs:
        raise CheckpointError(f"run {run.name!r} has no saved epochs yet")
    digit = digit_from_png(read_bytes(args.image), str(args.image))
    reading = judge_reading(load_judge(), digit[None])
    label = int(reading.labels[0])
    print(f"{args.image}: the judge reads a {label} ({float(reading.confidences[0]):.1%} confident)")
    conditional = " (told it is a " + str(label) + ")" if run.config().conditional else ""
    print(f"{'epoch':>6}  D: probability it is real{conditional}")
    found = verdicts(run, digit, label, load_mnist(split="test"), epochs, limit=len(epochs))
    rows = {epoch: f"{probability:.3f}" for epoch, probability in found.found}
    rows.update({epoch: f"skipped: {printable(reason, 300)}" for epoch, reason in found.skipped})
    for epoch in sorted(rows):  # a damaged epoch is one line among the others, never the end of the listing
        print(f"{epoch:>6}  {rows[epoch]}")
    return 0


def invert_command(args: argparse.Namespace) -> int:
    check_suffix("--out", args.out, (".png", ".npy"))
    if args.latents is not None:
        check_suffix("--latents", args.latents, (".npy",))
    if not 1 <= args.steps <= 5000:
        raise UsageError(f"--steps={args.steps} is not allowed: a whole number from 1 to 5000")
    if args.image is not None:
        targets = digit_from_png(read_bytes(args.image), str(args.image))[None]
    else:
        targets = digits_from_npy(args.npy)
    G, config, epoch = load_generator(Run.at(args.run, args.root), args.epoch)
    judge = load_judge()
    started = time.perf_counter()
    found = invert(G, judge, targets, steps=args.steps, weights=Weights(bf16=inference_bf16(config.precision)))
    seconds = time.perf_counter() - started
    with writing():
        write_inversion(args, found, len(targets))
    same = (judge_reading(judge, found.images).labels == judge_reading(judge, targets).labels).double().mean()
    print(
        f"inverted {len(targets)} digit(s) with {args.run} epoch {epoch} in {seconds:.1f} s "
        f"({seconds / len(targets):.2f} s per digit): mean pixel distance {float(found.distances.mean()):.3f}, "
        f"the judge reads the original's digit in {float(same):.1%}; wrote {args.out}"
    )
    return 0


def write_inversion(args: argparse.Namespace, found: Inversion, count: int) -> None:
    """The reconstructions (a grid or an array), and the codes (with their digits) when asked for."""
    if args.out.suffix.lower() == ".npy":
        np.save(args.out, to_unit_range(found.images)[:, 0].numpy())
    else:
        args.out.write_bytes(grid_png(found.images, nrow=math.ceil(math.sqrt(count))))
    if args.latents is not None:
        np.save(args.latents, found.z.numpy().astype(np.float32))
        if found.digits is not None:
            np.save(args.latents.with_suffix(".digits.npy"), found.digits.numpy())
