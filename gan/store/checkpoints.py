"""A checkpoint file: the full training state as safetensors (tensors) plus JSON (everything else), written
atomically and read back only after every check an untrusted file needs.

Files are data, never code. Before any tensor is materialised, a file's header is read with caps and checked for
layout, its size against what the model implies, its tensors' names, dtypes and shapes against the model built on
the meta device, and its state's JSON tree for the parts a trainer needs; after loading, every weight is finite.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from gan.config import CHANGEABLE, Config, ConfigError
from gan.models import build_discriminator, build_generator
from gan.store.files import FileError, atomic_write, open_regular, parse_json, read_capped

FORMAT = "gan-studio/1"
HEADER_LIMIT = 4_000_000  # bytes of safetensors header; ours are a few kB
RNG_LIMIT = 100_000  # bytes of saved generator state (5,056 on CPU)
ARCHITECTURE = ("preset", "latent_dim", "width", "g_kernel", "upsample", "g_norm", "d_spread")  # these fix the tensors


class CheckpointError(ValueError):
    """A run or checkpoint file cannot be used; the message names the file and what is wrong."""


def printable(text: Any, limit: int = 200) -> str:
    """Text safe for a terminal or a one-line message: control characters escaped, length capped."""
    text = str(text)
    escaped = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text[:limit])
    return escaped + ("…" if len(text) > limit else "")


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
    check_position(path, tree["position"])


def check_position(path: Path, position: Any) -> None:
    """Where a state stands in training: whole numbers for the counters, a finite number of seconds."""
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
    if header.metadata.get("content") == "weights":  # a shipped run's epoch: G's EMA copy and D, half precision
        from gan.store.shipped import read_weights  # here: gan.store.shipped builds on this module

        return read_weights(path, header, saved), saved
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
