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

import fcntl
import functools
import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from gan.config import CHANGEABLE, Config, ConfigError
from gan.models import build_discriminator, build_generator
from gan.store.files import FileError, append_lines, atomic_write, open_regular, parse_json, read_capped, read_json
from gan.store.history import EpochRecord, History, Record, StepRecord, encode, last_step_record, read_epoch_records
from gan.store.history import read_history as read_history_file

__all__ = ["atomic_write"]  # re-exported: older imports of gan.store.checkpoints.atomic_write keep working

DEFAULT_ROOT = Path("checkpoints")
ROOT_VARIABLE = "GAN_STUDIO_CHECKPOINTS"
FORMAT = "gan-studio/1"
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
HEADER_LIMIT = 4_000_000  # bytes of safetensors header; ours are a few kB
RNG_LIMIT = 100_000  # bytes of saved generator state (5,056 on CPU)
LOCK_FILE = ".lock"
_HELD: set[Path] = set()  # run folders whose lock this process holds

EPOCH_FILE = re.compile(r"^epoch-(\d{4,})\.safetensors$")
LATEST = "latest.safetensors"
ARCHITECTURE = ("preset", "latent_dim", "width", "g_kernel", "upsample")  # the settings that fix the tensors' shapes


class CheckpointError(ValueError):
    """A run or checkpoint file cannot be used; the message names the file and what is wrong."""


def default_root() -> Path:
    """Where runs live: $GAN_STUDIO_CHECKPOINTS if set, else ./checkpoints (read at call time, for tests)."""
    return Path(os.environ.get(ROOT_VARIABLE) or DEFAULT_ROOT)


def validate_run_name(name: str) -> str:
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or ".." in name:
        raise CheckpointError(
            f"run name {printable(name)!r} is not allowed: use 1-64 letters, digits, '-', '_' or '.', starting "
            "with a letter or digit, without '..', spaces, control characters or path separators"
        )
    return name


def printable(text: Any, limit: int = 200) -> str:
    """Text safe for a terminal or a one-line message: control characters escaped, length capped."""
    text = str(text)
    escaped = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text[:limit])
    return escaped + ("…" if len(text) > limit else "")


class RunLockedError(CheckpointError):
    """Another process (or job) is writing this run."""


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


# --- validating a checkpoint before any tensor is materialised ------------------------------------------------

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}  # fmt: skip
SAFETENSORS_NAMES = {dtype: name for name, dtype in DTYPES.items()}
POSITION_INTS = ("epoch", "batch", "step", "images_seen")


@dataclass(frozen=True)
class Header:
    tensors: dict[str, tuple[str, tuple[int, ...], tuple[int, int]]]  # name -> (dtype, shape, data offsets)
    metadata: dict[str, str]
    size: int  # of the whole file


def read_header(path: Path) -> Header:
    """The safetensors header of a regular file, read with caps (never the whole file) and checked for layout:
    every tensor's bytes lie inside the file and the data ends where the file does."""
    descriptor = open_regular(path, Path(path).parent)
    with os.fdopen(descriptor, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < 8:
            raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {size} bytes)")
        length = int.from_bytes(handle.read(8), "little")
        if length > HEADER_LIMIT or 8 + length > size:
            raise CheckpointError(
                f"{path}: not a readable checkpoint (truncated or corrupt: a header of {length:,} bytes)"
            )
        raw = handle.read(length)
    try:
        header = parse_json(raw, str(path))
    except FileError as error:
        raise CheckpointError(f"{error} (truncated or corrupt header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: its header is not an object)")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise CheckpointError(f"{path}: damaged metadata (not a map of strings)")
    tensors, end = {}, 0
    for name, entry in header.items():
        try:
            dtype, shape, (first, last) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            assert dtype in DTYPES and all(type(dim) is int and dim >= 0 for dim in shape)
            assert type(first) is int and type(last) is int and 0 <= first <= last
            assert last - first == math.prod(shape) * DTYPES[dtype].itemsize
        except (TypeError, KeyError, ValueError, AssertionError):
            raise CheckpointError(
                f"{path}: not a readable checkpoint (truncated or corrupt: bad entry for {printable(name, 80)!r})"
            ) from None
        tensors[name] = (dtype, shape, (first, last))
        end = max(end, last)
    if 8 + length + end != size:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or corrupt: {size:,} bytes, but its header describes "
            f"{8 + length + end:,})"
        )
    return Header(tensors, metadata, size)


@functools.lru_cache(maxsize=16)
def expected_tensors(architecture: tuple[Any, ...]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every tensor a checkpoint of this model may hold (name -> dtype, shape), from models built on the meta
    device (nothing allocated). Optimiser moments are optional: a state saved before the first step has none."""
    config = Config.for_preset(architecture[0], **dict(zip(ARCHITECTURE[1:], architecture[1:])))
    with torch.device("meta"):
        G, D = build_generator(config), build_discriminator(config)
    expected = {}
    for part, module in (("G", G), ("G_ema", G), ("D", D)):
        for key, value in module.state_dict().items():
            expected[f"{part}/{key}"] = (SAFETENSORS_NAMES[value.dtype], tuple(value.shape))
    for part, module in (("opt_g", G), ("opt_d", D)):
        for index, parameter in enumerate(module.parameters()):
            expected[f"{part}/state/{index}/step"] = ("F32", ())
            for moment in ("exp_avg", "exp_avg_sq"):
                expected[f"{part}/state/{index}/{moment}"] = ("F32", tuple(parameter.shape))
    return expected


def size_bound(config: Config) -> int:
    """The largest checkpoint file the config's models can make: every tensor, the RNG state and a header."""
    tensors = expected_tensors(tuple(getattr(config, name) for name in ARCHITECTURE))
    data = sum(math.prod(shape) * DTYPES[dtype].itemsize for dtype, shape in tensors.values())
    return 8 + HEADER_LIMIT + data + RNG_LIMIT


def check_tensors(path: Path, header: Header, config: Config) -> None:
    """Names, dtypes and shapes of the header against the config's models; the file's size against its bound."""
    if header.size > size_bound(config):
        raise CheckpointError(
            f"{path}: {header.size:,} bytes, more than a checkpoint of its model can hold ({size_bound(config):,})"
        )
    expected = expected_tensors(tuple(getattr(config, name) for name in ARCHITECTURE))
    for name, (dtype, shape, _) in header.tensors.items():
        if name == "rng/noise":
            if dtype != "U8" or len(shape) != 1 or shape[0] > RNG_LIMIT:
                raise CheckpointError(f"{path}: the saved random generator state has the wrong type or size")
            continue
        if name not in expected:
            raise CheckpointError(
                f"{path}: weights do not fit the {config.preset} preset (no tensor {printable(name, 80)!r} in it)"
            )
        if expected[name] != (dtype, shape):
            raise CheckpointError(
                f"{path}: weights do not fit the {config.preset} preset (tensor {name} is {dtype} {list(shape)}, "
                f"the model needs {expected[name][0]} {list(expected[name][1])})"
            )
    missing = [name for name in expected if name.split("/")[0] in ("G", "G_ema", "D") and name not in header.tensors]
    if missing or "rng/noise" not in header.tensors:
        missed = (missing or ["rng/noise"])[0]
        raise CheckpointError(f"{path}: weights do not fit the {config.preset} preset (missing {missed})")


def check_tree(path: Path, tree: Any, names: set[str]) -> None:
    """The JSON tree of a state: the parts a trainer needs, each of the right kind; every leaf a saved tensor."""

    def leaf(node: Any, where: str) -> None:
        if not (isinstance(node, dict) and set(node) == {"__tensor__"} and node["__tensor__"] in names):
            raise CheckpointError(f"{path}: damaged metadata ({where} is not a saved tensor)")

    def tensors_of(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            raise CheckpointError(f"{path}: damaged metadata ({where} is not a map of tensors)")
        for key, value in node.items():
            leaf(value, f"{where}/{printable(key, 40)}")

    parts = {"G", "G_ema", "D", "opt_g", "opt_d", "rng", "position"}
    if not isinstance(tree, dict) or set(tree) - {"settings"} != parts:  # settings: absent before they could change
        raise CheckpointError(f"{path}: damaged metadata (the state needs G, G_ema, D, opt_g, opt_d, rng, position)")
    settings = tree.get("settings", {})
    if not isinstance(settings, dict) or not set(settings) <= set(CHANGEABLE):
        raise CheckpointError(f"{path}: damaged metadata (settings may only be {', '.join(CHANGEABLE)})")
    if any(isinstance(value, (dict, list)) for value in settings.values()):
        raise CheckpointError(f"{path}: damaged metadata (settings)")
    for part in ("G", "G_ema", "D"):
        tensors_of(tree[part], part)
    for part in ("opt_g", "opt_d"):
        optimiser = tree[part]
        if not (isinstance(optimiser, dict) and isinstance(optimiser.get("state"), dict)):
            raise CheckpointError(f"{path}: damaged metadata ({part} has no state)")
        groups = optimiser.get("param_groups")
        if not (isinstance(groups, list) and groups and all(isinstance(group, dict) for group in groups)):
            raise CheckpointError(f"{path}: damaged metadata ({part} has no parameter groups)")
        for group in groups:
            params = group.get("params")
            if not (isinstance(params, list) and all(type(index) is int for index in params)):
                raise CheckpointError(f"{path}: damaged metadata ({part} parameter indices)")
            if any(isinstance(value, (dict, list)) and key not in ("betas", "params") for key, value in group.items()):
                raise CheckpointError(f"{path}: damaged metadata ({part} settings)")
        for index, moments in optimiser["state"].items():
            if not index.isdigit():
                raise CheckpointError(f"{path}: damaged metadata ({part} state is keyed by parameter index)")
            tensors_of(moments, f"{part}/state/{index}")
    if not isinstance(tree["rng"], dict) or set(tree["rng"]) != {"noise"}:
        raise CheckpointError(f"{path}: damaged metadata (rng)")
    leaf(tree["rng"]["noise"], "rng/noise")
    position = tree["position"]
    if not isinstance(position, dict):
        raise CheckpointError(f"{path}: damaged metadata (position)")
    for key in POSITION_INTS:
        if not (type(position.get(key)) is int and position[key] >= 0):
            raise CheckpointError(f"{path}: damaged metadata (position {key} must be a whole number)")
    seconds = position.get("seconds")
    if not (isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds)):
        raise CheckpointError(f"{path}: damaged metadata (position seconds must be a number)")


def load_state(path: Path, config: Config | None = None) -> tuple[dict[str, Any], Config]:
    """Read a checkpoint written by save_state; any damage or foreign content raises CheckpointError.

    Checked before any tensor is materialised: the header (capped), the file's size against what the model
    implies, names, dtypes and shapes against the model, and the state's tree; then, after loading, that every
    weight is finite. With `config` (the run's), a checkpoint of another model is refused too."""
    try:
        header = read_header(path)
    except FileError as error:
        raise CheckpointError(str(error)) from None
    saved = _saved_config(path, header.metadata)
    if config is not None:
        check_fits(path, saved, config)
    check_tensors(path, header, saved)
    tree = header.metadata.get("tree")
    if tree is None:
        raise CheckpointError(f"{path}: damaged metadata (no state tree)")
    try:
        tree = parse_json(tree, f"{path}: the state tree")
    except FileError as error:
        raise CheckpointError(f"{error}") from None
    check_tree(path, tree, set(header.tensors))
    try:
        raw = read_capped(path, header.size, Path(path).parent)
        tensors = load_safetensors(raw)
    except (FileError, SafetensorError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {error})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: tensor {name} holds NaN or infinite values (a diverged or damaged save)")
    return unflatten_state(tensors, tree), saved


def check_header(path: Path, config: Config) -> None:
    """A cheap look at a checkpoint (its header only, no tensors read): whole, ours, and of the run's model."""
    try:
        header = read_header(path)
    except FileError as error:
        raise CheckpointError(str(error)) from None
    check_fits(path, _saved_config(path, header.metadata), config)  # names and shapes are checked on loading


def check_fits(path: Path, saved: Config, config: Config) -> None:
    """Refuse a checkpoint of another model than the run's (e.g. a file copied in from another run)."""
    if any(getattr(saved, name) != getattr(config, name) for name in ARCHITECTURE):
        described = ", ".join(f"{name} {getattr(saved, name)}" for name in ARCHITECTURE)
        expected = ", ".join(f"{name} {getattr(config, name)}" for name in ARCHITECTURE)
        raise CheckpointError(f"{path}: holds a model with {described}, but its run has {expected} (copied in?)")


def _saved_config(path: Path, metadata: dict[str, str]) -> Config:
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a GAN Studio checkpoint (format {printable(metadata.get('format'), 40)!r})")
    try:
        return Config.from_json(metadata["config"])
    except (ConfigError, KeyError) as error:
        raise CheckpointError(f"{path}: damaged metadata ({printable(error)})") from None


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
        if self.path.is_symlink():
            raise CheckpointError(f"{self.path}: the run folder is a link; runs must be real folders")
        try:
            return Config.from_saved(read_json(file, within=self.path))
        except FileError as error:
            raise CheckpointError(str(error)) from None
        except ConfigError as error:
            raise CheckpointError(f"{file}: {error}") from None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's writer lock (flock on `<run>/.lock`) for the block; a second writer, in this process or
        another, is refused with RunLockedError naming the holder. The kernel drops the lock when its holder dies,
        so a killed process never leaves the run locked."""
        if self.path.is_symlink():
            raise CheckpointError(f"{self.path}: the run folder is a link; runs must be real folders")
        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(f"run {self.name!r} is being trained by {self._lock_holder()}") from None
            os.ftruncate(descriptor, 0)
            holder = {"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
            os.pwrite(descriptor, json.dumps(holder).encode(), 0)
            _HELD.add(self.path.resolve())
            try:
                yield
            finally:
                _HELD.discard(self.path.resolve())
                if created and [entry.name for entry in self.path.iterdir()] == [LOCK_FILE]:
                    shutil.rmtree(self.path, ignore_errors=True)  # a new run that never started leaves nothing
        finally:
            os.close(descriptor)  # releases the flock

    def holds_lock(self) -> bool:
        return self.path.resolve() in _HELD

    def _lock_holder(self) -> str:
        try:
            holder = read_json(self.path / LOCK_FILE, max_bytes=1000, within=self.path)
            return f"process {int(holder['pid'])} since {printable(holder['since'], 40)}"
        except (FileError, KeyError, TypeError, ValueError):
            return "another process"

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

    def epochs_with_grids(self) -> list[int]:
        """Saved epochs that have their grid PNG too, from one listing of the folder."""
        if not self.path.is_dir():
            return []
        names = {entry.name for entry in self.path.iterdir()}
        found = (EPOCH_FILE.match(name) for name in names)
        return sorted(int(match.group(1)) for match in found if match and f"epoch-{match.group(1)}.png" in names)

    def save_epoch(self, epoch: int, state: dict[str, Any], config: Config, grid: bytes | None = None) -> None:
        """The state after `epoch` (counted from 1) and its sample grid (PNG bytes)."""
        save_state(self.epoch_path(epoch), state, config)
        if grid is not None:
            atomic_write(self.grid_path(epoch), grid)
        self.latest_path.unlink(missing_ok=True)  # the epoch file is now the newest state

    def save_latest(self, state: dict[str, Any], config: Config) -> None:
        save_state(self.latest_path, state, config)

    def load_epoch(self, epoch: int) -> dict[str, Any]:
        path = self.epoch_path(epoch)
        if not path.is_file():
            raise CheckpointError(f"run {self.name!r} has no saved epoch {epoch} (saved: {self.epochs() or 'none'})")
        return load_state(path)[0]

    def resume_state(self) -> dict[str, Any] | None:
        """The newest usable state (mid-epoch stop or epoch file), skipping damaged or foreign files; None when
        nothing was saved. Saved files of which none can be loaded raise: a resume must not restart from step 0
        and overwrite them."""
        config = self.config()
        candidates = [self.latest_path] + [self.epoch_path(epoch) for epoch in reversed(self.epochs())]
        best: dict[str, Any] | None = None
        reasons = []
        for path in candidates:
            if not path.exists() and not path.is_symlink():
                continue
            try:
                state, _ = load_state(path, config)
            except CheckpointError as error:
                reasons.append(str(error))
                continue
            if best is None or state["position"]["step"] > best["position"]["step"]:
                best = state
        if best is None and reasons:
            raise CheckpointError(
                f"run {self.name!r}: none of its {len(reasons)} saved files can be loaded, so it cannot be resumed "
                f"(the files are left as they are). First: {reasons[0]}"
            )
        return best

    def remove_partial_writes(self) -> list[Path]:
        """Delete the temporary files of writes cut short by a kill (never listed nor loaded, but they take space).
        Only while this process holds the run's lock (otherwise nothing is removed): another writer's temporary
        files may be in use."""
        if not self.holds_lock():
            return []
        leftovers = [entry for entry in self.path.glob(".*.tmp") if entry.is_file()]
        for entry in leftovers:
            entry.unlink(missing_ok=True)
        return leftovers

    def append_history(self, records: Iterable[Record]) -> None:
        """Append records all or nothing: a failed write leaves the file as it was, so a retry logs no step twice."""
        append_lines(self.path / "history.jsonl", encode(list(records)))

    def history(self, up_to_step: int | None = None) -> History:
        """The well-formed records (bad lines skipped and counted); `up_to_step` drops records after a resume point."""
        try:
            return read_history_file(self.path / "history.jsonl", up_to_step, within=self.path)
        except FileError as error:
            raise CheckpointError(str(error)) from None

    def last_step(self) -> StepRecord | None:
        """The newest step record, read from the end of the history (cheap however long the run)."""
        try:
            return last_step_record(self.path / "history.jsonl", within=self.path)
        except FileError as error:
            raise CheckpointError(str(error)) from None

    def epoch_records(self) -> list[EpochRecord]:
        try:
            return read_epoch_records(self.path / "history.jsonl", within=self.path)
        except FileError as error:
            raise CheckpointError(str(error)) from None

    def truncate_history(self, up_to_step: int) -> None:
        """Forget records logged after the state a resume starts from, so the history is not doubled."""
        atomic_write(self.path / "history.jsonl", encode(list(self.history(up_to_step).records)).encode())


def load_generator(run: Run, epoch: int | None = None, ema: bool = True) -> tuple[torch.nn.Module, Config, int]:
    """The generator of a saved epoch (the newest when `epoch` is None), in eval mode on the CPU."""
    epochs = run.epochs()
    if not epochs:
        raise CheckpointError(f"run {run.name!r} has no saved epochs yet")
    epoch = epochs[-1] if epoch is None else epoch
    path = run.epoch_path(epoch)
    if not path.is_file():
        raise CheckpointError(f"run {run.name!r} has no saved epoch {epoch} (saved: {epochs})")
    state, config = load_state(path, run.config())
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
    last_record: StepRecord | None
    error: str | None  # why the run cannot be used, or None


def list_runs(root: Path | str | None = None) -> list[RunInfo]:
    """Every run folder under root, newest first; unreadable runs are listed with a one-line reason, not skipped,
    and no run can make the listing fail."""
    root = Path(root or default_root())
    try:
        entries = list(root.iterdir()) if root.is_dir() else []
    except OSError:
        return []
    runs = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_symlink() and entry.is_dir():
                runs.append((0.0, _unusable(entry, "the run folder is a link; runs must be real folders")))
            elif entry.is_dir() and not entry.is_symlink():
                runs.append((entry.stat().st_mtime, _describe(Run(entry))))
        except Exception as error:  # one broken run must never hide the others
            runs.append((0.0, _unusable(entry, error)))
    runs.sort(key=lambda item: item[0], reverse=True)
    return [info for _, info in runs]


def _unusable(path: Path, error: Any) -> RunInfo:
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return RunInfo(printable(path.name, 100), path, None, (), None, printable(" ".join(reason.split()), 300))


def _describe(run: Run) -> RunInfo:
    try:
        config = run.config()
    except CheckpointError as error:
        return _unusable(run.path, str(error))
    epochs = tuple(run.epochs())
    error = None if epochs else "no saved epochs yet"
    try:
        last = run.last_step()
    except CheckpointError as damaged:
        last, error = None, str(damaged)
    if epochs:
        try:
            check_header(run.epoch_path(epochs[-1]), config)
        except CheckpointError as damaged:
            error = str(damaged)
    return RunInfo(run.name, run.path, config, epochs, last, None if error is None else printable(error, 300))
