"""The CUDA path end to end, on a machine with an NVIDIA GPU: the default preset trained for 60 s on the GPU as
`python -m gan train` trains it (every epoch saved and scored beside the training), then samples drawn on the GPU
and scored on both judges and the third (bench/third_judge.py), real digits inverted (with a saved epoch, on the
CPU, as the app and the CLI invert), and one training step in slow motion. Prints images/s, the first saved epoch
whose samples are recognisable (first judge's confidence >= 0.9, every digit >= 5%) with its training and wall time,
and the FIDs after 60 s. A part that fails prints its error and the others still run. Without CUDA it says so in
one line and exits.

    python bench/gpu.py [--seconds 60] [--preset cdcgan] [--grid samples.png] [--set batch_size=256 ...]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.utils import save_image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import number_or_text  # noqa: E402
from bench.third_judge import load_third_judge, third_fid, third_floor  # noqa: E402
from gan.config import Config  # noqa: E402
from gan.data import load_mnist  # noqa: E402
from gan.jobs.runner import prepare_trainer, train_run  # noqa: E402
from gan.lab.inversion import invert  # noqa: E402
from gan.lab.latent import sample  # noqa: E402
from gan.presets import DEFAULT_PRESET, PRESETS  # noqa: E402
from gan.scoring.judge import load_judges  # noqa: E402
from gan.scoring.metrics import EVAL_SAMPLES, EVAL_SEED, REAL_KEY, evaluate_images, reference_scores  # noqa: E402
from gan.store.run import Run, load_generator  # noqa: E402
from gan.train import Trainer  # noqa: E402


def recognisable(scores) -> bool:
    return scores.mean_confidence >= 0.9 and min(scores.histogram) >= 0.05


def train(config: Config, root: str, seconds: float) -> tuple[Run, Trainer, dict[int, tuple[float, float]]]:
    """The product's path (as `python -m gan train` takes it) on the GPU: every epoch saved and scored beside the
    training; returns the run, its trainer and each epoch's end as (wall seconds, training seconds)."""
    run, ends = Run.at("gpu", root), {}
    started = time.perf_counter()
    with run.lock():
        trainer = prepare_trainer(run, config)
        train_run(
            run,
            trainer,
            on_epoch=lambda done, record, _: ends.setdefault(done, (time.perf_counter() - started, record.seconds)),
            max_seconds=seconds,
        )
    return run, trainer, ends


def first_recognisable(run: Run, judges, ends: dict[int, tuple[float, float]]) -> str:
    """Each saved epoch scored afterwards (on a CPU copy, as `gan eval` scores it): the first recognisable one."""
    for epoch in run.epochs():
        images, labels = sample(load_generator(run, epoch)[0], EVAL_SAMPLES, EVAL_SEED)
        if recognisable(evaluate_images(images, judges, labels)):
            wall, clock = ends[epoch]
            return f"epoch {epoch}, {clock:.1f} s of training ({wall:.1f} s of wall time)"
    return "not within the run"


def stage(name: str, work: Callable[[], str]) -> None:
    """Run one part of the path; a failure is printed as that part's line and the others still run."""
    started = time.perf_counter()
    try:
        print(f"{name}: {work()} ({time.perf_counter() - started:.1f} s)", flush=True)
    except Exception as error:  # noqa: BLE001 - the point is to see every part that fails on a GPU
        print(f"{name}: FAILED, {type(error).__name__}: {' '.join(str(error).split())[:300]}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="training seconds (default 60)")
    parser.add_argument("--preset", choices=PRESETS, default=DEFAULT_PRESET)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: check this script itself")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="settings, e.g. batch_size=256")
    parser.add_argument("--grid", type=Path, help="save the first 100 samples after the run as a PNG, to look at")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA GPU on this machine (torch.cuda.is_available() is False); nothing was run")
        return 0
    if args.device == "cuda":
        print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    overrides = {key: number_or_text(value) for key, value in (item.split("=", 1) for item in args.set)}
    config = Config.for_preset(args.preset, **overrides, device=args.device, epochs=10_000, checkpoint_every=1)
    judges = load_judges(retrain_if_missing=False)
    floor, third_judge = reference_scores(judges)[REAL_KEY], load_third_judge()
    third_base = third_floor(third_judge)
    with tempfile.TemporaryDirectory() as root:
        run, trainer, ends = train(config, root, args.seconds)
        print(
            f"{config.preset} (width {config.width}, batch {config.batch_size}, {'bf16' if trainer.bf16 else 'fp32'}):"
            f" {trainer.seconds:.0f} s of training, {trainer.images_seen / trainer.seconds:,.0f} images/s, "
            f"{len(ends)} epochs, {sum(record.scores is not None for record in run.history().epochs)} scored beside it",
            flush=True,
        )
        stage("recognisable after", lambda: first_recognisable(run, judges, ends))

        def fids() -> str:
            images, labels = sample(trainer.G_ema, EVAL_SAMPLES, EVAL_SEED)  # drawn on the GPU
            if args.grid:
                save_image(images[:100], args.grid, nrow=10, normalize=True, value_range=(-1, 1))
            scores, third = evaluate_images(images, judges, labels), third_fid(third_judge, images)
            return (
                f"FID {scores.fid:.2f} ({scores.fid / floor.fid:.2f}x its floor) / {scores.fid_second:.3f} "
                f"({scores.fid_second / floor.fid_second:.2f}x) / third {third:.3f} ({third / third_base:.2f}x), "
                f"confidence {scores.mean_confidence:.1%}, rarest digit {min(scores.histogram):.1%}"
            )

        stage(f"after {trainer.seconds:.0f} s", fids)
        targets = load_mnist(split="test").images[:8]
        stage(
            "inversion (8 test digits, 100 steps, saved epoch on the CPU)",
            lambda: inversion(run, trainer, judges, targets),
        )
        stage("one step in slow motion", lambda: slow_motion_step(trainer))
    return 0


def inversion(run: Run, trainer: Trainer, judges, targets: torch.Tensor) -> str:
    G = load_generator(run)[0] if run.epochs() else copy.deepcopy(trainer.G_ema).cpu()  # no epoch saved yet
    found = invert(G, judges.first, targets, steps=100)
    return f"mean pixel distance {found.distances.mean():.3f}"


def slow_motion_step(trainer: Trainer) -> str:
    """One step taken sub-step by sub-step (gan/lab/slowmotion.py), if this checkout has it."""
    if importlib.util.find_spec("gan.lab.slowmotion") is None:
        return "not in this checkout"
    from gan.lab.slowmotion import SlowMotion

    motion, shown = SlowMotion(trainer), 0
    while not motion.done:
        motion.next()
        shown += 1
    return f"{shown} sub-steps, step {trainer.step}"


if __name__ == "__main__":
    sys.exit(main())
