"""Run folders on disk: atomic safetensors checkpoints, the metrics history, listing, loading and resuming.

A run is `checkpoints/<name>/` holding
    config.json                 the validated Config
    history.jsonl               one JSON record per logged step ({"kind": "step", ...}) or epoch ({"kind": "epoch"})
    epoch-NNNN.safetensors      the full training state after epoch N (G, EMA G, D, optimisers, RNG, position)
    epoch-NNNN.png              the fixed-noise grid drawn by the EMA generator after epoch N
    latest.safetensors          the state at a stop in mid-epoch, so no trained step is lost

Files are data, never code: tensors go through safetensors and everything else through JSON, and every write
goes to a temporary file that is renamed into place, so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from gan.config import Config, ConfigError
from gan.models import build_discriminator, build_generator

DEFAULT_ROOT = Path("checkpoints")
ROOT_VARIABLE = "GAN_STUDIO_CHECKPOINTS"
FORMAT = "gan-studio/1"
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EPOCH_FILE = re.compile(r"^epoch-(\d{4,})\.safetensors$")
LATEST = "latest.safetensors"
ARCHITECTURE = ("preset", "latent_dim", "width", "g_kernel")  # the settings that fix the tensors' names and shapes


class CheckpointError(ValueError):
    """A run or checkpoint file cannot be used; the message names the file and what is wrong."""


def default_root() -> Path:
    """Where runs live: $GAN_STUDIO_CHECKPOINTS if set, else ./checkpoints (read at call time, for tests)."""
    return Path(os.environ.get(ROOT_VARIABLE) or DEFAULT_ROOT)


def validate_run_name(name: str) -> str:
    if not isinstance(name, str) or not RUN_NAME.match(name) or ".." in name:
        raise CheckpointError(
            f"run name {name!r} is not allowed: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or "
            "digit, without '..' or path separators"
        )
    return name


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and not error.filename:  # a failed write() names no file: say which
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise


# --- nested state <-> flat safetensors ---------------------------------------------------------------------


def flatten_state(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split a nested state into tensors keyed by path ("G/rest.0.weight") and a JSON tree of everything else."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().cpu().contiguous()
            return {"__tensor__": path}
        if isinstance(node, dict):
            return {str(key): walk(value, f"{path}/{key}" if path else str(key)) for key, value in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(value, f"{path}/{index}") for index, value in enumerate(node)]
        return node

    return tensors, walk(state, "")


def unflatten_state(tensors: dict[str, torch.Tensor], tree: Any) -> Any:
    """Inverse of flatten_state; digit keys become ints again (optimiser states are keyed by parameter index)."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return tensors[tree["__tensor__"]]
        return {int(key) if key.isdigit() else key: unflatten_state(tensors, value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [unflatten_state(tensors, value) for value in tree]
    return tree


def save_state(path: Path, state: dict[str, Any], config: Config) -> None:
    tensors, tree = flatten_state(state)
    metadata = {"format": FORMAT, "config": config.to_json(), "tree": json.dumps(tree)}
    atomic_write(path, save_safetensors(tensors, metadata=metadata))


def load_state(path: Path) -> tuple[dict[str, Any], Config]:
    """Read a checkpoint written by save_state; any damage or foreign content raises CheckpointError."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read ({error.strerror or error})") from None
    if not raw:
        raise CheckpointError(f"{path}: the file is empty")
    try:
        tensors = load_safetensors(raw)
        metadata = _read_metadata(raw)
    except (SafetensorError, ValueError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {error})") from None
    config = _saved_config(path, metadata)
    try:
        state = unflatten_state(tensors, json.loads(metadata["tree"]))
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: damaged metadata ({error})") from None
    return state, config


def check_header(path: Path, config: Config) -> None:
    """A cheap look at a checkpoint (its header only, no tensors read): whole, ours, and of the run's model."""
    try:
        with safe_open(path, "pt") as handle:
            metadata = handle.metadata() or {}
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {error})") from None
    check_fits(path, _saved_config(path, metadata), config)


def check_fits(path: Path, saved: Config, config: Config) -> None:
    """Refuse a checkpoint of another model than the run's (e.g. a file copied in from another run)."""
    if any(getattr(saved, name) != getattr(config, name) for name in ARCHITECTURE):
        described = ", ".join(f"{name} {getattr(saved, name)}" for name in ARCHITECTURE)
        expected = ", ".join(f"{name} {getattr(config, name)}" for name in ARCHITECTURE)
        raise CheckpointError(f"{path}: holds a model with {described}, but its run has {expected} (copied in?)")


def _saved_config(path: Path, metadata: dict[str, str]) -> Config:
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a GAN Studio checkpoint (format {metadata.get('format')!r})")
    try:
        return Config.from_json(metadata["config"])
    except (ConfigError, KeyError) as error:
        raise CheckpointError(f"{path}: damaged metadata ({error})") from None


def _read_metadata(raw: bytes) -> dict[str, str]:
    header_size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_size])
    return header.get("__metadata__", {})


# --- runs ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A run folder. Cheap to create; every property reads the disk afresh, so a growing run is seen growing."""

    path: Path

    @classmethod
    def at(cls, name: str, root: Path | str | None = None) -> Run:
        return cls(Path(root or default_root()) / validate_run_name(name))

    @property
    def name(self) -> str:
        return self.path.name

    def exists(self) -> bool:
        return (self.path / "config.json").is_file()

    def config(self) -> Config:
        file = self.path / "config.json"
        try:
            return Config.from_json(file.read_text(errors="replace"))  # binary junk is reported as bad JSON
        except OSError as error:
            raise CheckpointError(f"{file}: cannot read ({error.strerror or error})") from None
        except ConfigError as error:
            raise CheckpointError(f"{file}: {error}") from None

    def write_config(self, config: Config) -> None:
        atomic_write(self.path / "config.json", config.to_json().encode())

    def epoch_path(self, epoch: int) -> Path:
        return self.path / f"epoch-{epoch:04d}.safetensors"

    def grid_path(self, epoch: int) -> Path:
        return self.path / f"epoch-{epoch:04d}.png"

    @property
    def latest_path(self) -> Path:
        return self.path / LATEST

    def epochs(self) -> list[int]:
        """Saved epochs in order (temporary files of an interrupted write are never listed)."""
        if not self.path.is_dir():
            return []
        found = (EPOCH_FILE.match(entry.name) for entry in self.path.iterdir())
        return sorted(int(match.group(1)) for match in found if match)

    def save_epoch(self, epoch: int, state: dict[str, Any], config: Config, grid_png: bytes | None = None) -> None:
        save_state(self.epoch_path(epoch), state, config)
        if grid_png is not None:
            atomic_write(self.grid_path(epoch), grid_png)
        self.latest_path.unlink(missing_ok=True)  # the epoch file is now the newest state

    def save_latest(self, state: dict[str, Any], config: Config) -> None:
        save_state(self.latest_path, state, config)

    def load_epoch(self, epoch: int) -> dict[str, Any]:
        path = self.epoch_path(epoch)
        if not path.is_file():
            raise CheckpointError(f"run {self.name!r} has no saved epoch {epoch} (saved: {self.epochs() or 'none'})")
        return load_state(path)[0]

    def resume_state(self) -> dict[str, Any] | None:
        """The newest usable state (mid-epoch stop or epoch file), skipping damaged or foreign files; or None."""
        config = self.config()
        shapes = _tensor_shapes(config)
        candidates = [self.latest_path] + [self.epoch_path(epoch) for epoch in reversed(self.epochs())]
        best: dict[str, Any] | None = None
        for path in candidates:
            if not path.is_file():
                continue
            try:
                state, saved = load_state(path)
                check_fits(path, saved, config)
                fits = all({key: value.shape for key, value in state[part].items()} == shapes[part] for part in shapes)
            except (CheckpointError, KeyError, AttributeError):
                continue
            if not fits:
                continue
            if best is None or state["position"]["step"] > best["position"]["step"]:
                best = state
        return best

    def remove_partial_writes(self) -> list[Path]:
        """Delete the temporary files of writes cut short by a kill (never listed nor loaded, but they take space)."""
        leftovers = [entry for entry in self.path.glob(".*.tmp") if entry.is_file()]
        for entry in leftovers:
            entry.unlink(missing_ok=True)
        return leftovers

    def append_history(self, records: Iterable[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(record) + "\n" for record in records)
        with open(self.path / "history.jsonl", "a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def history(self, up_to_step: int | None = None) -> list[dict[str, Any]]:
        """The logged records, skipping a torn last line; `up_to_step` drops records from after a resume point."""
        file = self.path / "history.jsonl"
        if not file.is_file():
            return []
        records = []
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and (up_to_step is None or record.get("step", 0) <= up_to_step):
                records.append(record)
        return records

    def truncate_history(self, up_to_step: int) -> None:
        """Forget records logged after the state a resume starts from, so the history is not doubled."""
        records = self.history(up_to_step)
        text = "".join(json.dumps(record) + "\n" for record in records)
        atomic_write(self.path / "history.jsonl", text.encode())


def _tensor_shapes(config: Config) -> dict[str, dict[str, torch.Size]]:
    """The tensor names and shapes of the config's models, to check a state against before loading it."""
    G = {key: value.shape for key, value in build_generator(config).state_dict().items()}
    D = {key: value.shape for key, value in build_discriminator(config).state_dict().items()}
    return {"G": G, "G_ema": G, "D": D}


def load_generator(run: Run, epoch: int | None = None, ema: bool = True) -> tuple[torch.nn.Module, Config, int]:
    """The generator of a saved epoch (the newest when `epoch` is None), in eval mode on the CPU."""
    epochs = run.epochs()
    if not epochs:
        raise CheckpointError(f"run {run.name!r} has no saved epochs yet")
    epoch = epochs[-1] if epoch is None else epoch
    path = run.epoch_path(epoch)
    if not path.is_file():
        raise CheckpointError(f"run {run.name!r} has no saved epoch {epoch} (saved: {epochs})")
    state, config = load_state(path)
    check_fits(path, config, run.config())
    generator = build_generator(config)
    try:
        generator.load_state_dict(state["G_ema" if ema else "G"])
    except (KeyError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:200]  # PyTorch's message spans lines; errors are one line
        raise CheckpointError(f"{path}: weights do not fit the {config.preset} preset ({reason})") from None
    return generator.eval().requires_grad_(False), config, epoch


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path
    config: Config | None
    epochs: tuple[int, ...]
    last_record: dict[str, Any] | None
    error: str | None  # why the run cannot be used, or None


def list_runs(root: Path | str | None = None) -> list[RunInfo]:
    """Every run folder under root, newest first; unreadable runs are listed with the reason, not skipped."""
    root = Path(root or default_root())
    if not root.is_dir():
        return []
    folders = [entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")]
    folders.sort(key=lambda folder: folder.stat().st_mtime, reverse=True)
    return [_describe(Run(folder)) for folder in folders]


def _describe(run: Run) -> RunInfo:
    try:
        config = run.config()
    except CheckpointError as error:
        return RunInfo(run.name, run.path, None, tuple(run.epochs()), None, str(error))
    epochs = tuple(run.epochs())
    steps = [record for record in run.history() if record.get("kind") == "step"]
    error = None if epochs else "no saved epochs yet"
    if epochs:
        try:
            check_header(run.epoch_path(epochs[-1]), config)
        except CheckpointError as damaged:
            error = str(damaged)
    return RunInfo(run.name, run.path, config, epochs, steps[-1] if steps else None, error)
