"""Do the failure recipes fail, and the healthy default not? Train each for the same minutes and print a table.

    python bench/recipes.py                           # every recipe and the healthy default, 2.5 minutes each
    python bench/recipes.py --minutes 1 --only unstable checkerboard

Each run is started as a user would, with `python -m gan train --recipe NAME --max-minutes M` (the healthy
default: cdcgan with 100 batches an epoch, so that it is scored as often as the recipes), in a fresh folder
(`--root`, a temporary one by default). The table gives each run's training minutes and steps, the scores of its
last epoch (first judge's FID, second judge's FID, classifier score, digits covered, recall), the spread of its
fixed-noise samples (real digits: 0.18), what the diagnosis names, and the healthy default's scores after as many
training minutes. Each epoch's fixed-noise grid is saved in its run folder
(`epoch-NNNN.png`), to be looked at: a score alone does not say that a run failed the way its recipe says.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan.__main__ import main as gan_main  # noqa: E402
from gan.lab.recipes import RECIPES  # noqa: E402
from gan.scoring.diagnose import diagnose  # noqa: E402
from gan.scoring.scores import Scores  # noqa: E402
from gan.store.history import EpochRecord  # noqa: E402
from gan.store.run import Run  # noqa: E402

HEALTHY = "healthy"


def train(root: Path, name: str, minutes: float) -> float:
    flags = ["--recipe", name] if name in RECIPES else ["--steps-per-epoch", "100", "--epochs", "1000"]
    started = time.perf_counter()
    gan_main(["--root", str(root), "train", *flags, "--max-minutes", str(minutes), "--run", name])
    return time.perf_counter() - started


def fid_text(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def scores_text(scores: Scores | None) -> str:
    if scores is None:
        return "- / - / - / - / -"
    recall = "-" if scores.recall is None else f"{scores.recall:.2f}"
    return (
        f"{fid_text(scores.fid)} / {fid_text(scores.fid_second)} / {scores.classifier_score:.2f} / "
        f"{scores.classes_covered} / {recall}"
    )


def row(root: Path, name: str, healthy: list[EpochRecord]) -> str:
    """The run's last epoch, and the healthy run's first epoch that had trained as long (when there is one)."""
    run = Run.at(name, root)
    last = run.epoch_records()[-1]
    findings = ", ".join(finding.name for finding in diagnose(run.history())) or "nothing alarming"
    same_time = next((record for record in healthy if record.seconds >= last.seconds), None)
    beside = "-" if same_time is None or name == HEALTHY else scores_text(same_time.scores)
    spread = "-" if last.spread is None else f"{last.spread:.3f}"
    return (
        f"| {name} | {last.seconds / 60:.1f} ({last.step:,}) | {scores_text(last.scores)} | {spread} | "
        f"{findings} | {beside} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.5, help="training minutes of each run")
    parser.add_argument("--only", nargs="*", choices=[*RECIPES, HEALTHY], help="these runs only")
    parser.add_argument("--table-only", action="store_true", help="print the table of the runs already in --root")
    parser.add_argument("--root", type=Path, help="folder for the runs and their grids (default: a new temporary one)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="recipes-"))
    names = args.only or [*RECIPES, HEALTHY]
    if not args.table_only:
        for name in names:
            print(f"\n=== {name}: {train(root, name, args.minutes):.0f} s with scoring", flush=True)
    print(f"\nruns and their grids in {root}\n")
    healthy = Run.at(HEALTHY, root).epoch_records() if (root / HEALTHY).is_dir() else []
    print(
        "| run | minutes (steps) | FID / FID 2 / score / digits / recall | spread | diagnosis "
        "| healthy default, same minutes |"
    )
    print("| --- | ---: | --- | ---: | --- | --- |")
    for name in names:
        print(row(root, name, healthy))


if __name__ == "__main__":
    main()
