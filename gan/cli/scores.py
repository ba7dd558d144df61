"""`judge` (the two digit classifiers behind the scores: which weights, how accurate, or trained afresh) and
`eval` (a run's epochs scored against the real digits' floor and the noise ceiling)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gan.cli.common import number_flag, print_diagnosis, writing
from gan.numbers import whole_number
from gan.scoring.judge import SPECS, judge_path, load_judge, load_judges, train_and_save
from gan.scoring.metrics import (
    EVAL_SAMPLES,
    REAL_KEY,
    Scores,
    generator_per_class_fid,
    reference_scores,
    score_generator,
)
from gan.store.checkpoints import CheckpointError
from gan.store.run import Run, load_generator


def register(commands: argparse._SubParsersAction) -> None:
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
    evaluate.add_argument("--epoch", type=number_flag(whole_number), help="default: every saved epoch")


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
    print_header(run, config.preset)
    for name, scores in references.items():
        print(scores_row(f"({name})", scores, floor))
    per_class = {}
    for epoch in epochs:
        scores = saved.get(epoch)
        if scores is None or scores.fid_second is None:  # not scored, or scored before the second judge
            scores = score_generator(load_generator(run, epoch)[0], judges)
        print(scores_row(f"epoch {epoch}", scores, floor))
        if config.conditional:  # scored before per-digit FID was saved: measure it now
            per_class[epoch] = scores.per_class_fid or generator_per_class_fid(
                load_generator(run, epoch)[0], judges.first
            )
    if per_class:
        print("\nFID of each digit asked for, against the real test digits of that class")
        print(f"{'':<22} " + " ".join(f"{digit:>6}" for digit in range(10)))
        for epoch, values in per_class.items():
            cells = " ".join(f"{value:>6.1f}" if value is not None else f"{'-':>6}" for value in values)
            print(f"{f'epoch {epoch}':<22} {cells}")
    print_diagnosis(run.history())
    return 0


def print_header(run: Run, preset: str) -> None:
    print(
        f"run {run.name} ({preset}); {EVAL_SAMPLES} samples per score, against the 10,000 test digits; "
        f"FID on two judges ({', '.join(SPECS)}), each beside its floor (x: times the real training digits' FID); "
        "precision, recall, density, coverage on the first judge (k=5)"
    )
    print(
        f"{'':<22} {'FID':>8} {'x':>5} {'FID 2':>8} {'x':>5} {'score':>6} {'classes':>7} {'prec':>5} {'rec':>5} "
        f"{'dens':>5} {'cov':>5} {'confidence':>10} {'agreement':>9}  warnings"
    )


def scores_row(label: str, scores: Scores, floor: Scores) -> str:
    agreement = "-" if scores.label_agreement is None else f"{scores.label_agreement:.1%}"
    warnings = "; ".join(scores.warnings[:2]) + (" ..." if len(scores.warnings) > 2 else "")
    neighbours = " ".join(number(value, 5, ".2f") for value in (scores.precision, scores.recall, scores.density))
    return (
        f"{label:<22} {scores.fid:>8.2f} {scores.fid / floor.fid:>5.2f} {number(scores.fid_second, 8, '.2f')} "
        f"{ratio(scores.fid_second, floor.fid_second)} {scores.classifier_score:>6.2f} {scores.classes_covered:>7} "
        f"{neighbours} {number(scores.coverage, 5, '.2f')} {scores.mean_confidence:>10.1%} {agreement:>9}  {warnings}"
    )


def number(value: float | None, width: int, spec: str) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def ratio(value: float | None, floor: float | None) -> str:
    return number(None if value is None or not floor else value / floor, 5, ".2f")
