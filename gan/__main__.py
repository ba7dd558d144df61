"""Command line: `python -m gan train|sample|runs|eval|probe|invert ...`. Errors are one line and exit code 1."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from gan.config import DEFAULT_PRESET, SETTINGS, Config, ConfigError, Setting
from gan.control import Control
from gan.data import NUM_CLASSES, DataError, load_mnist, to_unit_range
from gan.device import DeviceUnavailable, configure_threads, inference_bf16
from gan.images import grid_png
from gan.jobs.runner import RunError, check_same_settings, check_startable, prepare_trainer, train_run
from gan.lab import compare
from gan.lab.inversion import STEPS as INVERSION_STEPS
from gan.lab.inversion import Weights, invert
from gan.lab.latent import sample
from gan.lab.probe import ImageError, digit_from_png, digits_from_npy, judge_reading, verdicts
from gan.lab.recipes import RECIPES, get_recipe
from gan.models import check_memory, count_parameters
from gan.scoring.diagnose import diagnose
from gan.scoring.judge import SPECS, JudgeError, judge_is_cached, judge_path, load_judge, load_judges, train_and_save
from gan.scoring.metrics import (
    EVAL_SAMPLES,
    EVAL_SEED,
    REAL_KEY,
    Scores,
    per_class_fid,
    reference_scores,
    score_generator,
)
from gan.store.checkpoints import CheckpointError, printable
from gan.store.history import EpochRecord, StepRecord
from gan.store.listing import list_runs
from gan.store.run import Run, default_root, load_generator
from gan.train import Trainer, TrainingDiverged


class UsageError(Exception):
    """A command's own flag (not a setting) has a value that is not allowed."""


class WriteError(Exception):
    """An output file could not be written: no such folder, no permission, disk full."""


# Errors a user can cause: one line, no traceback. Anything else is a bug and shows its traceback.
USER_ERRORS = (
    ConfigError,
    CheckpointError,
    DataError,
    RunError,
    TrainingDiverged,
    JudgeError,
    DeviceUnavailable,
    UsageError,
    WriteError,
    ImageError,
)


@contextmanager
def writing() -> Iterator[None]:
    """Report a failed write as a user error (it names the file); the saved epochs are untouched."""
    try:
        yield
    except OSError as error:
        raise WriteError(str(error)) from error


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except USER_ERRORS as error:
        print(f"error: {printable(' '.join(str(error).split()), 1000)}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan", description="Train and explore GANs on MNIST.")
    parser.add_argument(
        "--root", type=Path, help="folder of run folders (default: $GAN_STUDIO_CHECKPOINTS or checkpoints)"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a new run, or --resume one")
    train.set_defaults(command=train_command)
    train.add_argument("--run", help="run name (default: <preset>-<date>-<time>)")
    train.add_argument("--resume", action="store_true", help="continue the run from its newest saved state")
    train.add_argument("--max-minutes", type=float, help="stop after this many minutes of training, saving the state")
    for setting in SETTINGS.values():
        add_setting(train, setting)
    train.add_argument(
        "--recipe", choices=tuple(RECIPES), help="start from a failure recipe's settings (flags given still win)"
    )

    sampler = commands.add_parser("sample", help="draw samples from a saved epoch to a PNG grid or .npy array")
    sampler.set_defaults(command=sample_command)
    sampler.add_argument("--run", required=True)
    sampler.add_argument("--epoch", type=int, help="default: the newest saved epoch")
    sampler.add_argument("--digit", type=int, help="the digit to draw (conditional presets); default: all ten")
    sampler.add_argument("--n", type=int, default=100, help="number of samples (default 100)")
    sampler.add_argument("--seed", type=int, default=0)
    sampler.add_argument("--out", type=Path, required=True, help="a .png grid or a .npy array (N, 28, 28) in [0, 1]")

    runs = commands.add_parser("runs", help="list runs with their epochs and last losses")
    runs.set_defaults(command=runs_command)

    judge = commands.add_parser("judge", help="the two digit classifiers behind the quality scores")
    judge.set_defaults(command=judge_command)
    judge.add_argument(
        "--train", action="store_true", help="train both afresh (a minute or two), compare with the shipped files"
    )
    judge.add_argument(
        "--out",
        type=Path,
        help="folder for the trained files (default: the cache; gan/scoring/judges rebuilds the shipped)",
    )

    evaluate = commands.add_parser("eval", help="quality scores of a run's epochs: FID, classifier score, classes")
    evaluate.set_defaults(command=eval_command)
    evaluate.add_argument("--run", required=True)
    evaluate.add_argument("--epoch", type=int, help="default: every saved epoch")

    comparing = commands.add_parser("compare", help="the settings that differ between runs, and their scores by epoch")
    comparing.set_defaults(command=compare_command)
    comparing.add_argument("runs", nargs="+", metavar="RUN", help="2 to 4 run names")
    add_discriminator_commands(commands)
    return parser


def add_discriminator_commands(commands: argparse._SubParsersAction) -> None:
    probe = commands.add_parser("probe", help="the judge's reading of a digit picture and D's verdict per epoch")
    probe.set_defaults(command=probe_command)
    probe.add_argument("--run", required=True)
    probe.add_argument("--epoch", type=int, help="default: every saved epoch")
    probe.add_argument("--image", type=Path, required=True, help="a PNG of one digit, any size, any colours")

    inverter = commands.add_parser("invert", help="find the latent codes whose images are closest to given digits")
    inverter.set_defaults(command=invert_command)
    inverter.add_argument("--run", required=True)
    inverter.add_argument("--epoch", type=int, help="default: the newest saved epoch")
    source = inverter.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path, help="a PNG of one digit (prepared the way MNIST was)")
    source.add_argument("--npy", type=Path, help="digits (N, 28, 28) in [0, 1], as `gan sample` writes them")
    inverter.add_argument("--out", type=Path, required=True, help="the reconstructions: .png grid or .npy array")
    inverter.add_argument("--latents", type=Path, help="save the codes here (.npy); digits beside it (.digits.npy)")
    inverter.add_argument("--steps", type=int, default=INVERSION_STEPS, help=f"default {INVERSION_STEPS}")


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
    parser.add_argument(
        setting.cli_flag, dest=setting.name, type=setting.kind, help=f"{setting.help}{allowed}", **details
    )


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
    with writing(), run.lock():  # the lock is held for the whole job: a second writer of this run is refused
        trainer = prepare_trainer(run, config, resume=args.resume, epochs=args.epochs)
        return _train(args, run, trainer, threads)


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
    return run, None


def new_run(args: argparse.Namespace) -> tuple[Run, Config]:
    config = config_from_args(args)
    prefix = args.recipe or config.preset
    run = Run.at(args.run or f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}", args.root)
    check_startable(run, resume=False)
    check_memory(config)
    return run, config


def _train(args: argparse.Namespace, run: Run, trainer: Trainer, threads: int) -> int:
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
    control = Control()
    signal.signal(signal.SIGINT, lambda *_: (control.stop(), signal.signal(signal.SIGINT, signal.SIG_DFL)))
    outcome = _train_with_progress(run, trainer, control, args.max_minutes)
    print(f"{outcome}: epoch {trainer.epoch}/{config.epochs}, step {trainer.step}, saved in {run.path}")
    _print_diagnosis(run.history())
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
            f"epoch {epochs_done}: {seconds:.1f} s, {images / max(seconds, 1e-9):,.0f} images/s" + _scores_text(record)
        )


def _train_with_progress(run: Run, trainer: Trainer, control: Control, max_minutes: float | None) -> str:
    progress = ProgressBar(trainer)
    max_seconds = None if max_minutes is None else max_minutes * 60
    try:
        return train_run(run, trainer, control, progress.on_step, progress.on_epoch, max_seconds=max_seconds)
    finally:
        progress.bar.close()


def _scores_text(record: EpochRecord) -> str:
    scores = record.scores
    if not scores:
        return ""
    second = "" if scores.fid_second is None else f", FID 2 {scores.fid_second:.2f}"
    return f", FID {scores.fid:.2f}{second}, score {scores.classifier_score:.2f}, classes {scores.classes_covered}"


def sample_command(args: argparse.Namespace) -> int:
    if not 1 <= args.n <= 10_000:
        raise UsageError(f"--n={args.n} is not allowed: a whole number from 1 to 10000")
    if args.digit is not None and not 0 <= args.digit < NUM_CLASSES:
        raise UsageError(f"digit={args.digit} is not allowed: a digit from 0 to 9")
    G, config, epoch = load_generator(Run.at(args.run, args.root), args.epoch)
    images, _ = sample(G, args.n, args.seed, args.digit)
    if not torch.isfinite(images).all():
        raise CheckpointError(f"run {args.run!r} epoch {epoch}: the generator draws NaN or infinite pixels")
    suffix = args.out.suffix.lower()
    if suffix not in (".npy", ".png"):
        raise UsageError(f"--out={args.out} is not allowed: the file must end in .png or .npy")
    with writing():
        if suffix == ".npy":
            np.save(args.out, to_unit_range(images)[:, 0].numpy())
        else:
            nrow = 10 if config.conditional and args.digit is None else math.ceil(math.sqrt(args.n))
            args.out.write_bytes(grid_png(images, nrow=nrow))
    print(f"wrote {args.n} samples from {args.run} epoch {epoch} to {args.out}")
    return 0


def runs_command(args: argparse.Namespace) -> int:
    runs = list_runs(args.root)
    if not runs:
        print(f"no runs in {args.root or default_root()}/ yet: start one with 'python -m gan train'")
        return 0
    print(f"{'run':<28} {'preset':<8} {'epochs':>6} {'step':>7} {'loss_d':>7} {'loss_g':>7}  note")
    for info in runs:  # names and reasons come from the disk: control characters are escaped
        last = info.last_record
        preset = info.config.preset if info.config else "?"
        epochs = f"{info.epochs[-1]}" if info.epochs else "-"
        losses = f"{last.loss_d:>7.3f} {last.loss_g:>7.3f}" if last else f"{'-':>7} {'-':>7}"
        step = last.step if last else 0
        print(
            f"{printable(info.name, 100):<28} {preset:<8} {epochs:>6} {step:>7} {losses}  {printable(info.error or '')}"
        )
    return 0


def judge_command(args: argparse.Namespace) -> int:
    if not args.train:
        for name in SPECS:
            judge = load_judge(name=name)
            source = "shipped weights" if judge.metadata.get("source") == "shipped" else judge_path(name=name)
            print(f"{name} judge ({source}): test accuracy {float(judge.metadata.get('accuracy', 'nan')):.2%}")
        return 0
    for name, spec in SPECS.items():
        path = None if args.out is None else args.out / spec.file_name
        print(f"training the {name} judge (MNIST classifier, seed {spec.seed}) ...", flush=True)
        with writing():
            trained = train_and_save(name, path)
        same = "the same bytes as the shipped file" if trained.matches_shipped else "differs from the shipped file"
        print(
            f"  {trained.path}: {trained.seconds:.1f} s, test accuracy {trained.accuracy:.2%}, "
            f"{trained.path.stat().st_size:,} bytes, sha256 {trained.sha256} ({same})"
        )
    return 0


def eval_command(args: argparse.Namespace) -> int:
    run = Run.at(args.run, args.root)
    config = run.config()
    saved = {record.epoch: record.scores for record in run.epoch_records()}
    epochs = [args.epoch] if args.epoch is not None else run.epochs()
    if not epochs:
        raise CheckpointError(f"run {run.name!r} has no saved epochs yet")
    judges = load_judges()
    references = reference_scores(judges, n=EVAL_SAMPLES)
    floor = references[REAL_KEY]
    print(
        f"run {run.name} ({config.preset}); {EVAL_SAMPLES} samples per score, against the 10,000 test digits; "
        f"FID on two judges ({', '.join(SPECS)}), each beside its floor (x: times the real training digits' FID); "
        "precision, recall, density, coverage on the first judge (k=5)"
    )
    print(
        f"{'':<22} {'FID':>8} {'x':>5} {'FID 2':>8} {'x':>5} {'score':>6} {'classes':>7} {'prec':>5} {'rec':>5} "
        f"{'dens':>5} {'cov':>5} {'confidence':>10} {'agreement':>9}  warnings"
    )
    for name, scores in references.items():
        print(_scores_row(f"({name})", scores, floor))
    per_class = {}
    for epoch in epochs:
        scores = saved.get(epoch)
        if scores is None or scores.fid_second is None:  # not scored, or scored before the second judge
            scores = score_generator(load_generator(run, epoch)[0], judges)
        print(_scores_row(f"epoch {epoch}", scores, floor))
        if config.conditional:  # scored before per-digit FID was saved: measure it now
            per_class[epoch] = scores.per_class_fid or _per_class_fid(run, epoch, judges.first)
    if per_class:
        print("\nFID of each digit asked for, against the real test digits of that class")
        print(f"{'':<22} " + " ".join(f"{digit:>6}" for digit in range(10)))
        for epoch, values in per_class.items():
            cells = " ".join(f"{value:>6.1f}" if value is not None else f"{'-':>6}" for value in values)
            print(f"{f'epoch {epoch}':<22} {cells}")
    _print_diagnosis(run.history())
    return 0


def _print_diagnosis(history: Iterable) -> None:
    findings = diagnose(history)
    print("diagnosis: nothing alarming in the history and scores" if not findings else "diagnosis:")
    for finding in findings:
        print(f"- {finding.text()}")


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
                print(" ".join(f"{_cell(value):>16}" for value in row))
    return 0


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def probe_command(args: argparse.Namespace) -> int:
    run = Run.at(args.run, args.root)
    epochs = run.epochs() if args.epoch is None else [args.epoch]
    if not epochs:
        raise CheckpointError(f"run {run.name!r} has no saved epochs yet")
    digit = digit_from_png(_read_bytes(args.image), str(args.image))
    reading = judge_reading(load_judge(), digit[None])
    label = int(reading.labels[0])
    print(f"{args.image}: the judge reads a {label} ({float(reading.confidences[0]):.1%} confident)")
    conditional = " (told it is a " + str(label) + ")" if run.config().conditional else ""
    print(f"{'epoch':>6}  D: probability it is real{conditional}")
    for epoch, probability in verdicts(run, digit, label, load_mnist(split="test"), epochs, limit=len(epochs)):
        print(f"{epoch:>6}  {probability:.3f}")
    return 0


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: cannot read ({error.strerror or error})") from None


def invert_command(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() not in (".png", ".npy"):
        raise UsageError(f"--out={args.out} is not allowed: the file must end in .png or .npy")
    if args.latents is not None and args.latents.suffix.lower() != ".npy":
        raise UsageError(f"--latents={args.latents} is not allowed: the file must end in .npy")
    if not 1 <= args.steps <= 5000:
        raise UsageError(f"--steps={args.steps} is not allowed: a whole number from 1 to 5000")
    if args.image is not None:
        targets = digit_from_png(_read_bytes(args.image), str(args.image))[None]
    else:
        targets = digits_from_npy(args.npy)
    G, config, epoch = load_generator(Run.at(args.run, args.root), args.epoch)
    judge = load_judge()
    started = time.perf_counter()
    found = invert(G, judge, targets, steps=args.steps, weights=Weights(bf16=inference_bf16(config.precision)))
    seconds = time.perf_counter() - started
    with writing():
        if args.out.suffix.lower() == ".npy":
            np.save(args.out, to_unit_range(found.images)[:, 0].numpy())
        else:
            args.out.write_bytes(grid_png(found.images, nrow=math.ceil(math.sqrt(len(targets)))))
        if args.latents is not None:
            np.save(args.latents, found.z.numpy().astype(np.float32))
            if found.digits is not None:
                np.save(args.latents.with_suffix(".digits.npy"), found.digits.numpy())
    same = (judge_reading(judge, found.images).labels == judge_reading(judge, targets).labels).double().mean()
    print(
        f"inverted {len(targets)} digit(s) with {args.run} epoch {epoch} in {seconds:.1f} s "
        f"({seconds / len(targets):.2f} s per digit): mean pixel distance {float(found.distances.mean()):.3f}, "
        f"the judge reads the original's digit in {float(same):.1%}; wrote {args.out}"
    )
    return 0


def _per_class_fid(run: Run, epoch: int, judge) -> tuple[float | None, ...]:
    images, labels = sample(load_generator(run, epoch)[0], EVAL_SAMPLES, EVAL_SEED)
    return per_class_fid(images, labels, judge)


def _scores_row(label: str, scores: Scores, floor: Scores) -> str:
    agreement = "-" if scores.label_agreement is None else f"{scores.label_agreement:.1%}"
    warnings = "; ".join(scores.warnings[:2]) + (" ..." if len(scores.warnings) > 2 else "")
    neighbours = " ".join(_number(value, 5, ".2f") for value in (scores.precision, scores.recall, scores.density))
    return (
        f"{label:<22} {scores.fid:>8.2f} {scores.fid / floor.fid:>5.2f} {_number(scores.fid_second, 8, '.2f')} "
        f"{_ratio(scores.fid_second, floor.fid_second)} {scores.classifier_score:>6.2f} {scores.classes_covered:>7} "
        f"{neighbours} {_number(scores.coverage, 5, '.2f')} {scores.mean_confidence:>10.1%} {agreement:>9}  {warnings}"
    )


def _number(value: float | None, width: int, spec: str) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def _ratio(value: float | None, floor: float | None) -> str:
    return _number(None if value is None or not floor else value / floor, 5, ".2f")


if __name__ == "__main__":
    sys.exit(main())
