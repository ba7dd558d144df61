"""Time to quality: train each preset and score its EMA generator with both digit judges as it goes.

    python bench/quality.py                                     # every preset, 1, 2 and 5 minutes
    python bench/quality.py --preset cdcgan --minutes 20        # 1, 2, 5 and 20 minutes
    python bench/quality.py --preset cdcgan --images 65536,131072 --threads 1   # at equal images seen
    python bench/quality.py --preset cdcgan --minutes 20 --ema 0.9995,0.9999    # several EMA decays, one run

Per preset: when the samples first become recognisable (first judge's confidence >= 0.9 and all ten digits at >=
5% of the samples, checked every --probe-every seconds or 4,096 images), then at each mark the FID on both judges
with its ratio to that judge's floor (real training digits vs the test set), the classifier score, classes
covered, precision / recall / density / coverage (first judge, k=5) and the load average. The clock counts
training only; scoring is paused out of it. On a machine shared with other jobs, time is pessimistic and noisy:
compare recipes at equal images seen as well (`--images`), and with `--threads 1` when the cores are oversubscribed
(two threads spin-waiting on a busy core can be several times slower than one).

The EMA decay only changes which average of G is drawn from, never the training, so `--ema` scores more averages of
the same run at each mark: one run compares decays at equal steps.

`--wall` times a run as a learner waits for it instead: the product's own path from the click (after the app's
warm-up) with its epochs scored beside the training, every epoch saved, then each saved epoch scored and placed at
the wall time its epoch ended, beside the training clock (`--wall --quick-start`: the app's quick start). Every
FID is also given on a third judge kept aside (bench/third_judge.py), which nothing is tuned against.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.third_judge import load_third_judge, third_fid, third_floor  # noqa: E402
from gan.config import PRESETS, Config  # noqa: E402
from gan.control import Control  # noqa: E402
from gan.data import load_mnist  # noqa: E402
from gan.device import configure_threads  # noqa: E402
from gan.ema import update_average  # noqa: E402
from gan.images import grid_image  # noqa: E402
from gan.jobs.runner import prepare_trainer, train_run  # noqa: E402
from gan.jobs.warmup import warm_up  # noqa: E402
from gan.lab.latent import sample  # noqa: E402
from gan.presets import QUICK_START  # noqa: E402
from gan.scoring.judge import Judges, load_judges  # noqa: E402
from gan.scoring.metrics import EVAL_SAMPLES, EVAL_SEED, REAL_KEY, Scores, evaluate_images, reference_scores  # noqa: E402
from gan.store.run import Run, load_generator  # noqa: E402
from gan.train import Trainer  # noqa: E402

REPORT_MINUTES = (1, 2, 5, 20)
PROBE_IMAGES = 4096


def recognisable(scores: Scores) -> bool:
    return scores.mean_confidence >= 0.9 and min(scores.histogram) >= 0.05


class ImageBudget(Control):
    """Stops the loop once the trainer has seen `limit` images."""

    def __init__(self, trainer: Trainer, limit: int):
        super().__init__()
        self.trainer, self.limit = trainer, limit

    @property
    def stop_requested(self) -> bool:
        return self.trainer.images_seen >= self.limit


class ExtraAverages:
    """More EMA copies of the trainer's G, each with its own decay, updated as the trainer's own after each step."""

    def __init__(self, trainer: Trainer, decays: list[float]):
        self.trainer = trainer
        self.averages = {decay: copy.deepcopy(trainer.G_ema) for decay in decays}

    def __call__(self, _metrics) -> None:
        for decay, average in self.averages.items():  # called once the step is counted, so it was step - 1
            update_average(average, self.trainer.G, decay, self.trainer.step - 1)


class Third:
    """The third judge (bench/third_judge.py), kept aside: reported, never tuned against."""

    def __init__(self) -> None:
        self.judge = load_third_judge()
        self.floor = third_floor(self.judge)

    def text(self, images: torch.Tensor) -> str:
        fid = third_fid(self.judge, images)
        return f"  FID 3 {fid:>6.2f} ({fid / self.floor:>5.2f}x)"


def line(label: str, scores: Scores, floor: Scores, third: str = "") -> str:
    return (
        f"  {label:<26} FID {scores.fid:>7.2f} ({scores.fid / floor.fid:>5.2f}x)  FID 2 {scores.fid_second:>7.2f} "
        f"({scores.fid_second / floor.fid_second:>5.2f}x){third}  score {scores.classifier_score:>5.2f}  classes "
        f"{scores.classes_covered:>2}  P {scores.precision:.2f} R {scores.recall:.2f} D {scores.density:.2f} "
        f"C {scores.coverage:.2f}  conf {scores.mean_confidence:>5.1%}  min class {min(scores.histogram):>5.1%}"
    )


def run_preset(
    config: Config,
    data,
    judges: Judges,
    floor: Scores,
    marks: list[float],
    by_images: bool,
    probe: float,
    extra_decays: list[float],
    grids: Path | None,
    show_probes: bool = False,
    third: Third | None = None,
):
    trainer = Trainer(config, data)
    extra = ExtraAverages(trainer, extra_decays)
    print(
        f"{config.preset} (batch {config.batch_size}, lr {config.lr_g}/{config.lr_d}, {config.loss}, "
        f"{config.precision}, width {config.width}, ema {config.ema_decay}):"
    )
    budget = marks[-1]
    probes = sorted({*marks, *(probe * k for k in range(1, int(budget / probe) + 1))})
    reached = None
    started, scoring = time.perf_counter(), 0.0
    for target in probes:
        if by_images:
            trainer.run(ImageBudget(trainer, int(target)), on_step=extra)
        else:
            trainer.run(max_seconds=target, on_step=extra)
        clock = time.perf_counter() - started - scoring
        scoring_started = time.perf_counter()
        images, labels = sample(trainer.G_ema, EVAL_SAMPLES, EVAL_SEED)
        scores = evaluate_images(images, judges, labels)
        where = f"{clock:.0f} s, {trainer.images_seen:,} images"
        third_text = third.text(images) if third and (target in marks or show_probes) else ""
        if reached is None and recognisable(scores):
            reached = where
            print(line(f"recognisable: {where}", scores, floor))
        if show_probes and target not in marks:
            print(line(f"probe: {where}", scores, floor, third_text))
        if target in marks:
            label = f"{target:,.0f} images" if by_images else f"{target / 60:g} min, {trainer.images_seen:,} img"
            print(line(label, scores, floor, third_text) + f"  load {os.getloadavg()[0]:.1f}")
            save_grid(grids, config, target, by_images, images)
            for decay, average in extra.averages.items():
                images, labels = sample(average, EVAL_SAMPLES, EVAL_SEED)
                print(line(f"  ema {decay}", evaluate_images(images, judges, labels), floor))
                save_grid(grids, config, target, by_images, images, f"-ema{decay}")
        scoring += time.perf_counter() - scoring_started
    print(
        f"  => recognisable after {reached or 'not within the budget'}; "
        f"{trainer.images_seen / trainer.seconds:,.0f} images/s\n"
    )


def run_wall_clock(config: Config, judges: Judges, floor: Scores, third: Third | None, minutes: float) -> None:
    """The product's own path, timed as a learner waits for it: from the click (the app has loaded its page and
    warmed up, gan.jobs.warmup) through the job's start and training with its epochs scored beside it, every epoch
    saved. Afterwards each saved epoch is scored, and placed at the wall time its epoch ended."""
    warm_up(config)
    ends: dict[int, tuple[float, float]] = {}  # epoch -> (wall seconds since the click, training seconds)
    first_step: list[float] = []
    with tempfile.TemporaryDirectory() as root:
        run = Run.at("wall", root)
        started = time.perf_counter()
        with run.lock():
            trainer = prepare_trainer(run, config.replace(checkpoint_every=1))
            train_run(
                run,
                trainer,
                on_step=lambda _: first_step or first_step.append(time.perf_counter() - started),
                on_epoch=lambda done, record, _: ends.setdefault(done, (time.perf_counter() - started, record.seconds)),
                max_seconds=minutes * 60,
            )
        wall = time.perf_counter() - started
        print(
            f"{config.preset} (width {config.width}, {trainer.steps_per_epoch} steps per epoch of {config.batch_size}, "
            f"{'bf16' if trainer.bf16 else 'fp32'}), as a learner waits: first step after {first_step[0]:.1f} s, "
            f"{len(ends)} epochs in {wall:.0f} s of wall time ({trainer.seconds:.0f} s training), load "
            f"{os.getloadavg()[0]:.1f}"
        )
        reached = None
        for epoch in run.epochs():
            images, labels = sample(load_generator(run, epoch)[0], EVAL_SAMPLES, EVAL_SEED)
            scores = evaluate_images(images, judges, labels)
            at_wall, at_clock = ends[epoch]
            if reached is None and recognisable(scores):
                reached = f"{at_wall:.0f} s of wall time ({at_clock:.0f} s training), epoch {epoch}"
            label = f"epoch {epoch}: {at_wall:.0f} s ({at_clock:.0f} s)"
            print(line(label, scores, floor, third.text(images) if third else ""))
    print(f"  => recognisable after {reached or 'not within the run'}\n")


def save_grid(folder: Path | None, config: Config, mark: float, by_images: bool, images, suffix: str = "") -> None:
    """The first 100 scored samples as a PNG (a conditional G's columns are the digits 0 to 9), to look at."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    when = f"{mark:.0f}img" if by_images else f"{mark / 60:g}min"
    grid_image(images[:100], nrow=10, scale=2).save(folder / f"{config.preset}-w{config.width}-{when}{suffix}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, nargs="*", default=list(PRESETS))
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget; marks at 1, 2, 5, 20 min")
    parser.add_argument("--images", help="comma-separated marks in images seen, instead of minutes")
    parser.add_argument("--probe-every", type=float, default=10.0, help="seconds between recognisability checks")
    parser.add_argument("--probe-images", type=int, default=PROBE_IMAGES, help="... with --images: images between")
    parser.add_argument("--threads", type=int, help="CPU threads (default: every core this process may use)")
    parser.add_argument("--ema", default="", help="comma-separated extra EMA decays to score at each mark")
    parser.add_argument("--show-probes", action="store_true", help="print every probe's scores, not only the marks'")
    parser.add_argument("--grids", type=Path, help="save the first 100 samples at each mark as PNGs in this folder")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. lr_g=1e-3")
    parser.add_argument("--wall", action="store_true", help="time each preset as a learner waits (see run_wall_clock)")
    parser.add_argument("--quick-start", action="store_true", help="with --wall: the app's quick start")
    parser.add_argument("--no-third", action="store_true", help="leave out the third judge (bench/third_judge.py)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads() if args.threads else configure_threads()
    if args.images:
        marks, probe = sorted(float(int(mark)) for mark in args.images.split(",")), float(args.probe_images)
    else:
        budget = args.minutes * 60
        marks, probe = sorted({*(60.0 * m for m in REPORT_MINUTES if 60 * m <= budget), budget}), args.probe_every
    data, judges = load_mnist(), load_judges()
    references = reference_scores(judges, n=EVAL_SAMPLES)
    floor = references[REAL_KEY]
    print(f"{threads} threads; {EVAL_SAMPLES} samples per score; load {os.getloadavg()[0]:.1f}; references:")
    for name, scores in references.items():
        print(line(name, scores, floor))
    third = None if args.no_third else Third()
    if third:
        print(f"  third judge (kept aside, never tuned against): floor FID {third.floor:.3f}")
    print()
    overrides = {key: number_or_text(value) for key, value in (item.split("=", 1) for item in args.set)}
    if args.wall:
        presets = (
            [QUICK_START] if args.quick_start else [{"preset": preset, "epochs": 10_000} for preset in args.preset]
        )
        for settings in presets:
            run_wall_clock(Config.for_preset(**{**settings, **overrides}), judges, floor, third, args.minutes)
        return
    for preset in args.preset:
        config = Config.for_preset(preset, **overrides).replace(evaluate=False, epochs=10_000)
        extra_decays = [float(decay) for decay in args.ema.split(",") if decay]
        run_preset(
            config,
            data,
            judges,
            floor,
            marks,
            bool(args.images),
            probe,
            extra_decays,
            args.grids,
            args.show_probes,
            third,
        )


def number_or_text(text: str) -> int | float | str:
    """A `--set` value: a number where it reads as one (Config checks it), else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    main()
