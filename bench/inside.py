"""Figures for the look inside the discriminator: inversion quality and speed on real test digits, the time to
draw an epoch's D's-eye map, and what the map says per epoch.

    python bench/inside.py --root /tmp/runs --run healthy --digits 200
    python bench/inside.py --root /tmp/runs --run collapsed --map-only
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan.data import load_mnist
from gan.device import inference_bf16
from gan.lab.dmap import epoch_map, real_points, summary
from gan.lab.inversion import STEPS, Weights, invert
from gan.lab.probe import judge_reading, load_discriminator
from gan.scoring.judge import load_judge
from gan.store.run import Run, load_generator


def inversion_figures(run: Run, epoch: int | None, count: int, steps: int, batch: int) -> None:
    G, config, epoch = load_generator(run, epoch)
    judge = load_judge()
    test = load_mnist(split="test")
    chosen = torch.randperm(len(test), generator=torch.Generator().manual_seed(1))[:count]
    targets, labels = test.images[chosen], test.labels[chosen]
    started, cpu = time.perf_counter(), time.process_time()
    found = invert(G, judge, targets, steps=steps, batch=batch, weights=Weights(bf16=inference_bf16(config.precision)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    read = judge_reading(judge, found.images).labels
    original = judge_reading(judge, targets).labels
    print(f"inversion, {run.name} epoch {epoch}, {count} test digits, {steps} steps, batches of {batch}:")
    print(f"  judge reads the reconstruction as the original's true digit: {(read == labels).double().mean():.1%}")
    print(f"  ... as the judge's reading of the original:                  {(read == original).double().mean():.1%}")
    if found.digits is not None:
        print(f"  digit chosen by the search = true digit: {(found.digits == labels).double().mean():.1%}")
    print(f"  mean pixel distance (Euclidean, pixels in [0, 1]): {found.distances.mean():.3f} "
          f"(median {found.distances.median():.3f})")  # fmt: skip
    print(f"  time: {seconds:.1f} s, {seconds / count:.2f} s per digit ({cpu / count:.2f} s of CPU per digit, "
          f"{torch.get_num_threads()} threads)")  # fmt: skip


def map_figures(run: Run, epochs: list[int]) -> None:
    judge = load_judge()
    test = load_mnist(split="test")
    started = time.perf_counter()
    real = real_points(judge, test)
    print(f"map of {run.name}: real points and projection fitted in {time.perf_counter() - started:.2f} s")
    print(f"{'epoch':>6} {'seconds':>8} {'CPU s':>8} {'D(real)':>8} {'D(fake)':>8} {'clusters reached':>17}")
    for epoch in epochs:
        started, cpu = time.perf_counter(), time.process_time()
        G, config, _ = load_generator(run, epoch)
        D, _ = load_discriminator(run, epoch)
        found = epoch_map(G, D, config.batch_size, real, judge, bf16=inference_bf16(config.precision))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        numbers = summary(real, found)
        print(f"{epoch:>6} {seconds:>8.2f} {cpu:>8.2f} {numbers.mean_real:>8.2f} {numbers.mean_fake:>8.2f} "
              f"{numbers.classes_reached:>17}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--epoch", type=int, help="for the inversion (default: the newest)")
    parser.add_argument("--digits", type=int, default=200)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--map-only", action="store_true")
    args = parser.parse_args()
    run = Run.at(args.run, args.root)
    map_figures(run, run.epochs())
    if not args.map_only:
        inversion_figures(run, args.epoch, args.digits, args.steps, args.batch)


if __name__ == "__main__":
    main()
