"""What the live view costs training: wall-clock images/s of the same run trained (1) from the app, with the
Train page open in a browser and polling every second, and (2) by the CLI with no one watching.

    python bench/live_overhead.py [--epochs 4]

Both train the app's quick-start configuration (cdcgan, 200 batches per epoch, scoring on when the
digit judge is cached). The clock is the modification times of the saved epoch files, from the end of epoch 1
to the end of the last epoch, so start-up is excluded and everything the page costs the trainer is included.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from latency import BROWSER_ARGS, CHROMIUM, start_server, stop_server, wait_for_health  # noqa: E402

from gan.config import Config  # noqa: E402
from gan.metrics import judge_is_cached  # noqa: E402
from views.common import QUICK_START  # noqa: E402


def images_per_second(run: Path, epochs: int, batch_size: int, steps: int) -> float:
    first, last = (run / f"epoch-{epoch:04d}.safetensors" for epoch in (1, epochs))
    return (epochs - 1) * steps * batch_size / (last.stat().st_mtime - first.stat().st_mtime)


def wait_for_file(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {seconds:.0f} s")
        time.sleep(0.5)


def from_app(epochs: int, watch: bool) -> float:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as checkpoints, sync_playwright() as playwright:
        server, url = start_server(checkpoints)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            wait_for_health(url)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.get_by_role("button", name="Train a digit generator").click(timeout=60_000)
            page.get_by_text("Epoch 1 of").first.wait_for(timeout=60_000)  # the live panel is polling
            if not watch:
                page.goto("about:blank")  # the job trains on in the server with nobody polling
            run = next(Path(checkpoints).glob("first-*"))
            wait_for_file(run / f"epoch-{epochs:04d}.safetensors", 600)
            config = Config.for_preset(**QUICK_START)
            return images_per_second(run, epochs, config.batch_size, config.steps_per_epoch)
        finally:
            browser.close()
            stop_server(server)


def from_cli(epochs: int) -> float:
    config = Config.for_preset(**QUICK_START)
    with tempfile.TemporaryDirectory() as checkpoints:
        command = [sys.executable, "-m", "gan", "--root", checkpoints, "train", "--run", "cli"]
        command += ["--preset", config.preset, "--epochs", str(epochs)]
        command += ["--steps-per-epoch", str(config.steps_per_epoch)]
        if not judge_is_cached():
            command.append("--no-eval")
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        return images_per_second(Path(checkpoints) / "cli", epochs, config.batch_size, config.steps_per_epoch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6, help="epochs to time (the quick start trains 10)")
    parser.add_argument("--unwatched", action="store_true", help="also time the app's job with the page closed")
    args = parser.parse_args()
    if not 2 <= args.epochs <= QUICK_START["epochs"]:
        parser.error(f"--epochs must be from 2 to {QUICK_START['epochs']}")
    cli = from_cli(args.epochs)
    app = from_app(args.epochs, watch=True)
    print(f"CLI, nobody watching:        {cli:8,.0f} images/s")
    print(f"app, Train page open, live:  {app:8,.0f} images/s")
    print(f"cost of the live view:       {1 - app / cli:8.1%} of training throughput")
    if args.unwatched:
        alone = from_app(args.epochs, watch=False)
        print(f"app, page closed:            {alone:8,.0f} images/s ({1 - alone / cli:.1%} below the CLI)")


if __name__ == "__main__":
    main()
