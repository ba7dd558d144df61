"""How the listing of runs scales: a checkpoints folder of N run folders (copies of one tiny trained run), then

(a) `python -m gan runs` in a fresh process, wall time (imports included) and the listing alone in this process;
(b) app reruns with AppTest: the first load of the Train page, then the median of plain reruns (what every click,
    and every page change, costs while nothing on disk changed).

Usage: python bench/many_runs.py [--runs 2000] [--repeats 3] [--root /tmp/many-runs]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan.config import Config  # noqa: E402
from gan.jobs.runner import prepare_trainer, train_run  # noqa: E402
from gan.store.listing import list_runs  # noqa: E402
from gan.store.run import Run  # noqa: E402

TINY = dict(width=4, batch_size=16, steps_per_epoch=3, epochs=2, evaluate=False, latent_dim=8)


def make_runs(root: Path, count: int) -> None:
    """`count` copies of one tiny trained run (config, history, two epochs and their grids: about 1 MB each)."""
    template = Run(root.parent / "template-run")
    if not template.path.exists():
        with template.lock():
            train_run(template, prepare_trainer(template, Config.for_preset("cdcgan", **TINY)))
        (template.path / ".lock").unlink()
    for index in range(count):
        target = root / f"run-{index:04d}"
        if not target.exists():
            shutil.copytree(template.path, target)


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def cli_seconds(root: Path, repeats: int) -> tuple[float, float, float]:
    """`gan runs` in a fresh process; in this one, the first listing and the median of the next (unchanged) ones."""
    command = [sys.executable, "-m", "gan", "--root", str(root), "runs"]
    whole = [timed(lambda: subprocess.run(command, cwd=ROOT, check=True, capture_output=True)) for _ in range(repeats)]
    first = timed(lambda: list_runs(root))
    again = [timed(lambda: list_runs(root)) for _ in range(repeats)]
    return statistics.median(whole), first, statistics.median(again)


def rerun_seconds(root: Path, repeats: int) -> tuple[float, float]:
    from streamlit.testing.v1 import AppTest

    os.environ["GAN_STUDIO_CHECKPOINTS"] = str(root)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    first = timed(app.run)
    assert not app.exception, app.exception
    reruns = [timed(app.run) for _ in range(repeats)]
    return first, statistics.median(reruns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, help="keep the run folders here (made once, reused)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="many-runs-")) / "checkpoints"
    make_runs(root, args.runs)
    whole, first, again = cli_seconds(root, args.repeats)
    listing = f"the listing alone: first {first:.2f} s, then {again:.3f} s"
    print(f"{args.runs} runs: `gan runs` {whole:.2f} s (median of {args.repeats}); {listing}")
    first, rerun = rerun_seconds(root, args.repeats)
    print(f"{args.runs} runs: app first load {first:.2f} s, a rerun {rerun:.2f} s (median of {args.repeats})")


if __name__ == "__main__":
    main()
