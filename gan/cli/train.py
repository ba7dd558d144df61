"""`train`: a new run from a preset or a failure recipe, or `--resume` of a saved one, with a progress bar, one
line per epoch and a diagnosis at the end. Every setting of the schema is a flag."""

from __future__ import annotations

import argparse
import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from gan.cli.common import UsageError, number_flag, print_diagnosis, writing
from gan.config import DEFAULT_PRESET, SETTINGS, Config, Setting
from gan.control import Control
from gan.demo import copy_for_training
from gan.device import configure_threads
from gan.jobs.runner import RunError, check_same_settings, check_startable, prepare_trainer, train_run
from gan.lab.recipes import RECIPES, get_recipe
from gan.models import count_parameters
from gan.numbers import decimal_number, whole_number
from gan.scoring.judge import judge_is_cached, load_judges
from gan.store.history import EpochRecord, StepRecord
from gan.store.run import Run, default_run_name
from gan.store.shipped import is_shipped
from gan.train import Trainer

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
FROM_TEXT = {int: whole_number, float: decimal_number}  # a flag's number, read as gan/numbers.py reads any


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a new run, or --resume one")
    train.set_defaults(command=train_command)
    train.add_argument("--run", help="run name (default: <preset>-<date>-<time>)")
    train.add_argument("--resume", action="store_true", help="continue the run from its newest saved state")
    train.add_argument(
        "--max-minutes",
        type=number_flag(decimal_number, "--max-minutes", "a number of minutes above 0"),
        help="stop after this many minutes of training, saving the state",
    )
    for setting in SETTINGS.values():
        add_setting(train, setting)
    train.add_argument(
        "--recipe", choices=tuple(RECIPES), help="start from a failure recipe's settings (flags given still win)"
    )


def add_setting(parser: argparse.ArgumentParser, setting: Setting) -> None:
    """A flag for a setting; left out, it is None, so the preset's value (or the saved run's) holds."""
    if setting.kind is bool:
        parser.add_argument(
            setting.cli_flag, dest=setting.name, action="store_const", const=False, help=f"do not {setting.help}"
        )
        return
    if setting.repeated:
        parser.add_argument(
            setting.cli_flag, dest=setting.name, action="append", metavar="STEP:FIELD=VALUE", help=setting.help
        )
        return
    details = {"choices": setting.choices} if setting.choices else {"metavar": setting.kind.__name__.upper()}
    allowed = "" if setting.choices else f" ({setting.allowed()})"
    numeric = setting.kind in FROM_TEXT
    read = number_flag(FROM_TEXT[setting.kind], setting.name, setting.allowed()) if numeric else setting.kind
    parser.add_argument(setting.cli_flag, dest=setting.name, type=read, help=f"{setting.help}{allowed}", **details)


def given_settings(args: argparse.Namespace) -> dict[str, object]:
    given = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    return {name: tuple(value) if isinstance(value, list) else value for name, value in given.items()}


def config_from_args(args: argparse.Namespace) -> Config:
    given = given_settings(args)
    if args.recipe:
        return get_recipe(args.recipe).config(**given)
    return Config.for_preset(given.pop("preset", DEFAULT_PRESET), **given)


def train_command(args: argparse.Namespace) -> int:
    if args.max_minutes is not None and not 0 < args.max_minutes < math.inf:
        raise UsageError(f"--max-minutes={args.max_minutes} is not allowed: a number of minutes above 0")
    threads = configure_threads()
    run, config = resumed_run(args) if args.resume else new_run(args)
    control = Control()
    # the lock is held for the whole job: a second writer of this run is refused
    with stopped_by_signals(control), writing(), run.lock():
        trainer = prepare_trainer(run, config, resume=args.resume, epochs=args.epochs)
        return train_with_output(args, run, trainer, threads, control)


@contextmanager
def stopped_by_signals(control: Control) -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM (sent by kill, systemd, docker, timeout) stop training at the next step, which
    is saved; the command then ends as usual, with code 0. A second signal ends the process at once. Installed
    before the data loads, so a signal during loading stops the run before its first step."""

    def stop(number: int, frame: object) -> None:
        control.stop()
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_DFL)

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def resumed_run(args: argparse.Namespace) -> tuple[Run, None]:
    """The run to resume, once the flags are known to fit it; settings repeated unchanged are allowed (people re-run
    their first command with --resume), a real change is refused before anything is touched."""
    if not args.run:
        raise RunError("--resume needs --run NAME")
    if args.recipe:
        raise RunError("--recipe cannot be used when resuming: a run keeps its settings (only the epochs may grow)")
    run = Run.at(args.run, args.root)
    check_startable(run, resume=True)
    saved = run.config()
    check_same_settings(saved, {name: value for name, value in given_settings(args).items() if name != "epochs"})
    if args.epochs is not None:
        saved.replace(epochs=args.epochs)  # a bad count is refused here
    if is_shipped(run.path):  # read-only: train a copy of it
        run = copy_for_training(run, args.root)
        print(f"run {args.run} is shipped with GAN Studio and read-only: training a copy of it, {run.name}")
    return run, None


def new_run(args: argparse.Namespace) -> tuple[Run, Config]:
    config = config_from_args(args)
    run = Run.at(args.run or default_run_name(args.recipe or config.preset), args.root)
    check_startable(run, resume=False, config=config)
    return run, config


def train_with_output(args: argparse.Namespace, run: Run, trainer: Trainer, threads: int, control: Control) -> int:
    config = trainer.config
    if args.recipe:
        print(get_recipe(args.recipe).explanation)
    if config.evaluate and not judge_is_cached():
        print("first, the digit judges that score each epoch are trained once (a minute or two) ...")
    if config.evaluate:
        load_judges()
    print(
        f"run {run.name} ({run.path}): preset {config.preset}, G {count_parameters(trainer.G):,} parameters, "
        f"D {count_parameters(trainer.D):,} parameters, device {trainer.device} ({threads} CPU threads, "
        f"{'bf16' if trainer.bf16 else 'fp32'}), "
        f"{trainer.steps_per_epoch} steps per epoch of {config.batch_size}"
    )
    first_epoch, started = trainer.epoch + 1, time.monotonic()
    outcome = train_with_progress(run, trainer, control, args.max_minutes)
    wall = time.monotonic() - started
    print(f"{outcome}: epoch {trainer.epoch}/{config.epochs}, step {trainer.step}, saved in {run.path}")
    history = run.history()
    if config.evaluate:
        print(scoring_text([record for record in history.epochs if record.epoch >= first_epoch], wall))
    print_diagnosis(history)
    return 0


class ProgressBar:
    """tqdm's bar for the steps, and one line per epoch: its time, its speed and its scores."""

    def __init__(self, trainer: Trainer):
        from tqdm import tqdm

        self.trainer = trainer
        self.bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="step", dynamic_ncols=True)
        self.epoch_started = trainer.seconds  # training seconds when the epoch in progress began

    def on_step(self, metrics: StepRecord) -> None:
        self.bar.update(1)
        if metrics.batch % 10 == 0:
            self.bar.set_postfix(
                epoch=metrics.epoch + 1,  # the epoch in progress, counted from 1 as the epoch lines are
                loss_d=f"{metrics.loss_d:.3f}",
                loss_g=f"{metrics.loss_g:.3f}",
                img_s=f"{metrics.images_per_sec:,.0f}",
                refresh=False,
            )

    def on_epoch(self, epochs_done: int, record: EpochRecord, samples_png: bytes) -> None:
        seconds, self.epoch_started = record.seconds - self.epoch_started, record.seconds
        images = self.trainer.steps_per_epoch * self.trainer.config.batch_size
        self.bar.write(
            f"epoch {epochs_done}: {seconds:.1f} s, {images / max(seconds, 1e-9):,.0f} images/s" + scores_text(record)
        )

    def on_scores(self, record: EpochRecord) -> None:  # scored beside the training, so a little later
        self.bar.write(f"epoch {record.epoch} scored" + scores_text(record))


def train_with_progress(run: Run, trainer: Trainer, control: Control, max_minutes: float | None) -> str:
    progress = ProgressBar(trainer)
    max_seconds = None if max_minutes is None else max_minutes * 60
    try:
        return train_run(
            run,
            trainer,
            control,
            progress.on_step,
            progress.on_epoch,
            max_seconds=max_seconds,
            on_scores=progress.on_scores,
        )
    finally:
        progress.bar.close()


def scores_text(record: EpochRecord) -> str:
    scores = record.scores
    if not scores:
        return ""
    second = "" if scores.fid_second is None else f", FID 2 {scores.fid_second:.2f}"
    return f", FID {scores.fid:.2f}{second}, score {scores.classifier_score:.2f}, classes {scores.classes_covered}"


def scoring_text(records: list[EpochRecord], wall: float) -> str:
    """How long the scores of this command's epochs took beside the training, against its wall time: the most
    that scoring cost it (training goes on while an epoch is scored, except for the last one's score)."""
    timed = [record.score_seconds for record in records if record.score_seconds is not None]
    return (
        f"scoring: {len(timed)} of {len(records)} epochs scored beside the training in {sum(timed):.1f} s, "
        f"{sum(timed) / max(wall, 1e-9):.1%} of the {wall:.1f} s of wall time"
    )
