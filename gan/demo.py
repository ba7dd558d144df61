"""The runs shipped with the package: building them again (`python -m gan demo --rebuild`) and copying one to train on.

- `demo`: the default preset (cdcgan) at width 8, seed 0, fp32 on the CPU, trained for DEMO_STEPS steps. Its saved
  epochs are snapshots, numbered 1 to DEMO_EPOCHS, at steps spaced evenly in log(step) after the first: most of the
  change from static to digits comes in the first few hundred steps, and even spacing would show little of it.
- `mode-collapse`: the failure recipe of that name as it is (gan/lab/recipes.py), fp32 on the CPU, every second
  epoch saved: something to set the demo against on the Compare page.

Every saved epoch keeps G's EMA copy and D in half precision (gan.store.shipped); its grid and scores are drawn
from those rounded weights, so the pages show exactly what the files hold. The build uses one CPU thread, as the
judges' training does: the same operations in the same order whatever the cores, so a rebuild on the same kind of
CPU gives the same tensors, and only the history's timings differ.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from gan.config import Config
from gan.control import Control
from gan.data import IMAGE_SIZE, Dataset, load_mnist
from gan.ema import fixed_noise
from gan.images import grid_png
from gan.lab.recipes import get_recipe
from gan.models import build_generator
from gan.scoring.diagnose import sample_spread
from gan.scoring.judge import Judges, load_judges
from gan.scoring.metrics import score_generator
from gan.store.checkpoints import CheckpointError, read_header
from gan.store.history import EpochRecord, Record, StepRecord, encode, parse_line
from gan.store.run import Run, default_root
from gan.store.shipped import DEMO, SHIPPED_DIR, SHIPPED_NAMES, is_shipped, save_weights, start_from_weights
from gan.train import Trainer

DEMO_STEPS = 3000
DEMO_EPOCHS = 20
FIRST_SPACED_STEP = 20  # epoch 1 is step 1 (static); epochs 2 to DEMO_EPOCHS run from here to DEMO_STEPS
TIMINGS = ("seconds", "images_per_sec")  # the only parts of a build that differ from one rebuild to the next


@dataclass(frozen=True)
class Plan:
    """What a shipped run is: its saved config (what a copy continues with), the config it trains with, the step
    at which each of its epochs ends, and the epochs whose weights and grid are kept."""

    name: str
    config: Config
    training: Config
    epoch_steps: tuple[int, ...]
    saved: frozenset[int]


def log_spaced_steps(last: int, count: int, first_spaced: int = FIRST_SPACED_STEP) -> tuple[int, ...]:
    """Step 1, then `count - 1` steps from `first_spaced` to `last`, evenly spaced in log(step)."""
    ratio = (last / first_spaced) ** (1 / (count - 2))
    return (1, *(round(first_spaced * ratio**index) for index in range(count - 1)))


def demo_plan() -> Plan:
    config = Config.for_preset("cdcgan", width=8, epochs=DEMO_EPOCHS, precision="fp32", device="cpu", seed=0)
    steps = log_spaced_steps(DEMO_STEPS, DEMO_EPOCHS)
    return Plan(
        DEMO, config, config.replace(epochs=min(10_000, steps[-1])), steps, frozenset(range(1, DEMO_EPOCHS + 1))
    )


def collapse_plan() -> Plan:
    config = get_recipe("mode-collapse").config(precision="fp32", device="cpu", checkpoint_every=2)
    steps = tuple(config.steps_per_epoch * epoch for epoch in range(1, config.epochs + 1))
    saved = frozenset(epoch for epoch in range(1, config.epochs + 1) if epoch % 2 == 0)
    return Plan("mode-collapse", config, config, steps, saved)


PLANS = {DEMO: demo_plan, "mode-collapse": collapse_plan}


# --- building ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def rounded(record: StepRecord) -> StepRecord:
    """A step record with 5 significant digits (a third of the bytes; the charts cannot show more)."""
    changes = {}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if isinstance(value, float):
            changes[field.name] = float(f"{value:.5g}")
    return dataclasses.replace(record, **changes)


def half(tensor: torch.Tensor) -> torch.Tensor:
    """Floats in half precision, as they are shipped (batch norm's counter stays an integer)."""
    return tensor.half() if tensor.is_floating_point() else tensor


class Builder:
    """Trains a plan's run and writes its folder: weights-only epochs, grids, the history and the config."""

    def __init__(self, plan: Plan, folder: Path, judges: Judges | None):
        self.plan, self.folder, self.judges = plan, folder, judges
        self.trainer = Trainer(plan.training, load_mnist())
        self.control = Control()
        self.records: list[Record] = []
        self.epoch_of = {step: index + 1 for index, step in enumerate(plan.epoch_steps)}

    def build(self) -> None:
        self.folder.mkdir(parents=True)
        self.trainer.run(self.control, on_step=self.on_step, on_change=self.records.append)
        (self.folder / "history.jsonl").write_text(encode(self.records))
        (self.folder / "config.json").write_text(self.plan.config.to_json())

    def on_step(self, record: StepRecord) -> None:
        before = [step for step in self.plan.epoch_steps if step < record.step]
        self.records.append(
            rounded(dataclasses.replace(record, epoch=len(before), batch=record.step - max(before, default=0)))
        )
        if record.step in self.epoch_of:
            self.end_epoch(self.epoch_of[record.step])
        if record.step >= self.plan.epoch_steps[-1]:
            self.control.stop()

    def end_epoch(self, epoch: int) -> None:
        trainer, config = self.trainer, self.plan.config
        state = {
            "G_ema": {key: half(value) for key, value in trainer.G_ema.state_dict().items()},
            "D": trainer.D.state_dict(),
            "position": {"epoch": epoch, "batch": 0, "step": trainer.step, "images_seen": trainer.images_seen},
        }
        G = build_generator(config)
        G.load_state_dict(state["G_ema"])  # the rounded weights, widened: what the shipped file will give
        G.eval()
        z, labels = fixed_noise(config)
        with torch.inference_mode():
            samples = G(z, labels)
        scores = score_generator(G, self.judges) if config.evaluate else None
        self.records.append(EpochRecord(epoch, trainer.step, trainer.seconds, scores, sample_spread(samples)))
        if epoch in self.plan.saved:
            save_weights(self.folder / f"epoch-{epoch:04d}.safetensors", state, config)
            (self.folder / f"epoch-{epoch:04d}.png").write_bytes(grid_png(samples))


def build(plan: Plan, folder: Path) -> None:
    """Train a plan's run into a new folder."""
    with one_thread():
        Builder(plan, Path(folder), load_judges() if plan.config.evaluate else None).build()


@dataclass(frozen=True)
class Rebuilt:
    name: str
    path: Path
    epochs: int
    size: int  # bytes of its files
    differences: tuple[str, ...] | None  # against the files it replaced (None: there were none)


def rebuild(name: str, out: Path | None = None) -> Rebuilt:
    """Build the run into `out`/name (default: the package's shipped runs), comparing it with what was there."""
    target = Path(out or SHIPPED_DIR) / name
    building = target.with_name(f".{name}.building")
    shutil.rmtree(building, ignore_errors=True)
    build(PLANS[name](), building)
    differences = tuple(compare_folders(target, building)) if target.is_dir() else None
    if target.is_dir():
        shutil.rmtree(target)
    building.rename(target)
    files = [entry for entry in target.iterdir() if entry.is_file()]
    epochs = len([entry for entry in files if entry.suffix == ".safetensors"])
    return Rebuilt(name, target, epochs, sum(entry.stat().st_size for entry in files), differences)


def compare_folders(old: Path, new: Path) -> Iterator[str]:
    """What differs between two builds: files, tensors, grid bytes, and history records apart from timings."""
    old_names = {entry.name for entry in old.iterdir() if entry.is_file()}
    new_names = {entry.name for entry in new.iterdir() if entry.is_file()}
    for missing in sorted(old_names ^ new_names):
        yield f"{missing}: only in {'the old' if missing in old_names else 'the new'} build"
    for file_name in sorted(old_names & new_names):
        before, after = old / file_name, new / file_name
        if file_name.endswith(".safetensors"):
            first, second = load_file(before), load_file(after)
            same = first.keys() == second.keys() and all(
                first[key].dtype == second[key].dtype and torch.equal(first[key], second[key]) for key in first
            )
            if not same or read_header(before).metadata != read_header(after).metadata:
                yield f"{file_name}: other tensors"
        elif file_name == "history.jsonl":
            if timeless(before) != timeless(after):
                yield f"{file_name}: other records (timings aside)"
        elif before.read_bytes() != after.read_bytes():
            yield f"{file_name}: other bytes"


def timeless(history: Path) -> list[dict]:
    records = [parse_line(line) for line in history.read_bytes().splitlines()]
    return [{key: value for key, value in record.to_dict().items() if key not in TIMINGS} for record in records]


# --- a copy to train on --------------------------------------------------------------------------------------


def copy_name(name: str, root: Path) -> str:
    """The first free name of the form NAME-copy, NAME-copy-2, ..."""
    candidates = (f"{name}-copy" + ("" if number == 1 else f"-{number}") for number in range(1, 10_000))
    return next(candidate for candidate in candidates if not (root / candidate).exists())


def copy_for_training(source: Run, root: Path | str | None = None) -> Run:
    """A copy of a shipped run under the checkpoints folder that training can continue: its config, history, grids
    and weights-only epochs as they are, and its newest epoch as a full training state (latest.safetensors). A
    shipped run keeps no G but its EMA copy and no optimiser moments, so G starts from the EMA copy and Adam afresh;
    the next epoch's charts show the small jolt that gives."""
    root = Path(root or default_root())
    config, epochs = source.config(), source.epochs()
    if not epochs:
        raise CheckpointError(f"run {source.name!r} has no saved epochs to continue from")
    state = source.load_epoch(epochs[-1])
    target = Run(root / copy_name(source.name, root))
    trainer = Trainer(config, Dataset(torch.zeros(0, 1, IMAGE_SIZE, IMAGE_SIZE), torch.zeros(0, dtype=torch.long)))
    start_from_weights(trainer, state)
    trainer.seconds = next((record.seconds for record in source.epoch_records() if record.epoch == epochs[-1]), 0.0)
    with target.lock():
        for entry in sorted(source.path.iterdir()):
            if entry.is_file() and not entry.is_symlink() and not entry.name.startswith("."):
                shutil.copyfile(entry, target.path / entry.name)
        target.save_latest(trainer.state_dict(), config)
    return target


def trainable(run: Run, root: Path | str | None = None) -> Run:
    """The run itself, or for a shipped run a new copy of it under the checkpoints folder (see copy_for_training)."""
    return copy_for_training(run, root) if is_shipped(run.path) else run


def describe_shipped() -> list[str]:
    """One line per shipped run: its name, epochs and size on disk."""
    lines = []
    for name in SHIPPED_NAMES:
        folder = SHIPPED_DIR / name
        files = [entry for entry in folder.iterdir() if entry.is_file()] if folder.is_dir() else []
        epochs = sorted(entry.name for entry in files if entry.suffix == ".safetensors")
        size = sum(entry.stat().st_size for entry in files)
        lines.append(f"{name:<14} {len(epochs):>3} saved epochs, {size / 1e6:5.2f} MB  {folder}")
    return lines
