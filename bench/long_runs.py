"""How `python -m gan runs` and the Timeline page scale with long runs: 5 runs of 3,000 saved epochs each.

The runs are built cheaply in a temporary folder: one tiny trained epoch file and its grid hard-linked 3,000
times per run, and a matching history (3 steps and 1 epoch record per epoch). Prints the wall time of the CLI
listing (a fresh process) and of a first and a second Timeline render driven by Streamlit's AppTest.

    python bench/long_runs.py [--runs 5] [--epochs 3000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gan.config import Config  # noqa: E402
from gan.jobs.runner import prepare_trainer, train_run  # noqa: E402
from gan.store.history import EpochRecord, StepRecord, encode  # noqa: E402
from gan.store.run import Run  # noqa: E402


def build(root: Path, runs: int, epochs: int) -> None:
    config = Config.for_preset("cdcgan", width=4, latent_dim=8, batch_size=16, steps_per_epoch=3, epochs=1,
                               evaluate=False)  # fmt: skip
    template = Run(root / ".template")
    with template.lock():
        train_run(template, prepare_trainer(template, config))
    for number in range(runs):
        run = Run(root / f"long-{number}")
        run.path.mkdir(parents=True)
        run.write_config(config.replace(epochs=epochs))
        for epoch in range(1, epochs + 1):
            os.link(template.epoch_path(1), run.epoch_path(epoch))
            os.link(template.grid_path(1), run.grid_path(epoch))
        records = []
        for epoch in range(epochs):
            for batch in range(1, 4):
                step = epoch * 3 + batch
                records.append(StepRecord(step, epoch, batch, 1.3, 0.7, 0.6, 0.4, 1.0, 1.0, 900.0, step * 0.05))
            records.append(EpochRecord(epoch + 1, (epoch + 1) * 3, (epoch + 1) * 0.15))
        (run.path / "history.jsonl").write_text(encode(records))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "checkpoints"
        started = time.perf_counter()
        build(root, args.runs, args.epochs)
        print(f"built {args.runs} runs of {args.epochs} epochs in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        listing = subprocess.run([sys.executable, "-m", "gan", "--root", str(root), "runs"], cwd=REPO,
                                 capture_output=True, text=True, check=True)  # fmt: skip
        print(f"python -m gan runs: {time.perf_counter() - started:.2f} s (a fresh process, torch import included)")
        print(listing.stdout.rstrip())
        os.environ["GAN_STUDIO_CHECKPOINTS"] = str(root)
        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300).run()
        at.selectbox(key="run").set_value("long-0").run()
        for label in ("first", "second"):
            started = time.perf_counter()
            at.switch_page("views/timeline.py").run()
            seconds = time.perf_counter() - started
            assert not at.exception, at.exception
            print(f"Timeline render ({label}): {seconds:.2f} s, {len(at.get('plotly_chart'))} charts")
        started = time.perf_counter()
        at.run()
        print(f"Timeline rerun: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
