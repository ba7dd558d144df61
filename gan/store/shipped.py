"""The runs shipped inside the package (gan/demo_runs/), and the weights-only checkpoint files their epochs are.

A shipped run is read-only: the store refuses to lock it for writing, so nothing trains into it, and training on
one trains a copy under the checkpoints folder (gan/demo.py). Its epoch files hold only what the pages need, the
EMA generator and D, in half precision: a sixth of a full training state, which also carries G and the optimisers'
moments in float32. They are checked like any checkpoint before a tensor is materialised (header, size, names,
dtypes and shapes against the model), then every weight must be finite, and each is widened back to float32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from gan.config import Config
from gan.store.checkpoints import ARCHITECTURE, FORMAT, CheckpointError, Header, expected_tensors, printable
from gan.store.files import FileError, atomic_write, parse_json, read_capped

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "demo_runs"
SHIPPED_NAMES = ("demo", "mode-collapse")  # listed in this order, before the user's own runs
DEMO = "demo"
WEIGHTS = "weights"  # the "content" of a weights-only file's metadata (a full training state has none)
PARTS = ("G_ema", "D")
POSITION_KEYS = ("epoch", "batch", "step", "images_seen")  # no seconds: a rebuild gives the same bytes


class ReadOnlyRunError(CheckpointError):
    """A shipped run was asked to be written: train a copy of it instead."""


def shipped_path(name: str) -> Path | None:
    """The folder of the shipped run of that name, or None."""
    folder = SHIPPED_DIR / name
    return folder if name in SHIPPED_NAMES and folder.is_dir() else None


def is_shipped(path: Path | str) -> bool:
    try:
        return Path(path).resolve().parent == SHIPPED_DIR.resolve()
    except (OSError, RuntimeError):
        return False


def refuse_writes(path: Path) -> None:
    """Raise ReadOnlyRunError for a shipped run's folder: its files are never written, locked or cleaned."""
    if is_shipped(path):
        raise ReadOnlyRunError(
            f"run {printable(Path(path).name)!r} is shipped with GAN Studio and read-only: continue a copy of it "
            "(the app's Continue and `python -m gan train --resume` make one under the checkpoints folder)"
        )


# --- weights-only files ---------------------------------------------------------------------------------------


def is_weights_only(header: Header) -> bool:
    return header.metadata.get("content") == WEIGHTS


def save_weights(path: Path, state: dict[str, Any], config: Config) -> None:
    """G_ema and D of a training state, floating-point tensors in half precision, and its position."""
    tensors, tree = {}, {}
    for part in PARTS:
        tree[part] = {}
        for key, value in state[part].items():
            value = value.detach().cpu()
            tensors[f"{part}/{key}"] = (value.half() if value.is_floating_point() else value).contiguous()
            tree[part][key] = {"__tensor__": f"{part}/{key}"}
    tree["position"] = {key: int(state["position"][key]) for key in POSITION_KEYS}
    metadata = {"format": FORMAT, "content": WEIGHTS, "config": config.to_json(), "tree": json.dumps(tree)}
    atomic_write(path, canonical(save_safetensors(tensors, metadata=metadata)))


def canonical(data: bytes) -> bytes:
    """A safetensors file with its header's keys sorted: the same tensors and metadata give the same bytes (the
    writer orders the metadata as its hash map does, which changes from one process to the next)."""
    length = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + length]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the data stays 8-byte aligned, as the writer leaves it
    return len(header).to_bytes(8, "little") + header + data[8 + length :]


def check_weights(path: Path, header: Header, config: Config) -> None:
    """Exactly the G_ema and D tensors of the config's models, each in its own dtype or, for floats, half."""
    expected = {
        name: spec
        for name, spec in expected_tensors(tuple(getattr(config, field) for field in ARCHITECTURE)).items()
        if name.split("/")[0] in PARTS
    }
    for name, (dtype, shape, _) in header.tensors.items():
        if name not in expected:
            raise CheckpointError(
                f"{path}: weights do not fit the {config.preset} preset (no tensor {printable(name, 80)!r} in it)"
            )
        wanted_dtype, wanted_shape = expected[name]
        if shape != wanted_shape or dtype not in ({wanted_dtype, "F16"} if wanted_dtype == "F32" else {wanted_dtype}):
            raise CheckpointError(
                f"{path}: weights do not fit the {config.preset} preset (tensor {name} is {dtype} {list(shape)}, "
                f"the model needs {wanted_dtype} or F16 {list(wanted_shape)})"
            )
    missing = sorted(set(expected) - set(header.tensors))
    if missing:
        raise CheckpointError(f"{path}: weights do not fit the {config.preset} preset (missing {missing[0]})")


def _check_weights_tree(path: Path, tree: Any, names: set[str]) -> None:
    if not isinstance(tree, dict) or set(tree) != {*PARTS, "position"}:
        raise CheckpointError(f"{path}: damaged metadata (a weights-only file needs G_ema, D and position)")
    for part in PARTS:
        if not isinstance(tree[part], dict):
            raise CheckpointError(f"{path}: damaged metadata ({part} is not a map of tensors)")
        for key, leaf in tree[part].items():
            if not (isinstance(leaf, dict) and set(leaf) == {"__tensor__"} and leaf["__tensor__"] == f"{part}/{key}"):
                raise CheckpointError(f"{path}: damaged metadata ({part}/{printable(key, 40)} is not a saved tensor)")
        if {f"{part}/{key}" for key in tree[part]} != {name for name in names if name.startswith(f"{part}/")}:
            raise CheckpointError(f"{path}: damaged metadata ({part} does not list the file's tensors)")
    position = tree["position"]
    if not isinstance(position, dict) or set(position) != set(POSITION_KEYS):
        raise CheckpointError(f"{path}: damaged metadata (position)")
    if not all(type(position[key]) is int and position[key] >= 0 for key in POSITION_KEYS):
        raise CheckpointError(f"{path}: damaged metadata (position counters must be whole numbers)")


def read_weights(path: Path, header: Header, config: Config) -> dict[str, Any]:
    """The state of a weights-only file ({"G_ema", "D", "position"}), every float widened to float32."""
    check_weights(path, header, config)
    try:
        tree = parse_json(header.metadata.get("tree", ""), f"{path}: the state tree")
    except FileError as error:
        raise CheckpointError(str(error)) from None
    _check_weights_tree(path, tree, set(header.tensors))
    try:
        tensors = load_safetensors(read_capped(path, header.size, Path(path).parent))
    except (FileError, SafetensorError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {error})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: tensor {name} holds NaN or infinite values (a diverged or damaged save)")
    state: dict[str, Any] = {part: {key: _widened(tensors[f"{part}/{key}"]) for key in tree[part]} for part in PARTS}
    state["position"] = dict(tree["position"])
    return state


def start_from_weights(trainer: Any, state: dict[str, Any]) -> None:
    """Put a weights-only state into a new trainer (gan.train.Trainer): G and its EMA copy from the EMA copy (the only
    generator shipped), D, and the position; the optimisers keep their fresh moments."""
    trainer.G.load_state_dict(state["G_ema"])
    trainer.G_ema.load_state_dict(state["G_ema"])
    trainer.D.load_state_dict(state["D"])
    position = state["position"]
    trainer.epoch, trainer.batch, trainer.step = position["epoch"], position["batch"], position["step"]
    trainer.images_seen = position["images_seen"]


def _widened(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if tensor.dtype == torch.float16 else tensor
