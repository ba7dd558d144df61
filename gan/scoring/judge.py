"""The digit judges' weights: shipped with the package, cached, or trained, and loaded once per process.

Both judges (`gan.scoring.judge_models`) ship as `gan/scoring/judges/*.safetensors`, checked against the SHA-256
recorded in their specs, so scores are there from the very first run. A missing or altered file falls back to the
cache (`<repo>/.cache/judge/`, or `$GAN_STUDIO_CACHE/judge/`), and then to training (half a minute to a minute
each), with a warning that says so. `python -m gan judge --train` rebuilds both files byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from gan.data import DEFAULT_DATA_DIR
from gan.scoring.judge_models import FIRST, SECOND, SPECS, Judge, JudgeSpec, judge_accuracy, train_judge
from gan.store.files import atomic_write

FORMAT_VERSION = 3  # bump when an architecture or training recipe changes: cached judges are then retrained
CACHE_ENV = "GAN_STUDIO_CACHE"
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache"
SHIPPED_DIR = Path(__file__).resolve().parent / "judges"
SOURCE_KEY = "source"  # in a loaded judge's metadata (never saved): shipped, cache or trained


class JudgeError(RuntimeError):
    """A judge file is missing or unreadable and retraining was not allowed."""


class JudgeWarning(UserWarning):
    """The shipped weights could not be used: the judge comes from the cache or is trained instead."""


# -----------------------------------------------------------------------------
# files: safetensors weights plus one JSON metadata entry (safetensors writes several entries in random order)


def encode_judge(judge: Judge) -> bytes:
    """The judge's file contents: the same weights and metadata always give the same bytes."""
    tensors = {name: tensor.contiguous() for name, tensor in judge.state_dict().items()}
    metadata = {key: value for key, value in judge.metadata.items() if key != SOURCE_KEY}
    metadata["format_version"] = str(FORMAT_VERSION)
    return safetensors_bytes(tensors, metadata={"judge": json.dumps(metadata, sort_keys=True)})


def save_judge(judge: Judge, path: str | Path) -> str:
    """Write the judge atomically; returns the file's SHA-256."""
    data = encode_judge(judge)
    atomic_write(Path(path), data)
    return hashlib.sha256(data).hexdigest()


def read_judge(path: str | Path, spec: JudgeSpec | str = FIRST) -> Judge:
    """Load a judge file (safetensors only, never pickle); JudgeError names the file if it is unusable."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    path = Path(path)
    if not path.is_file():
        raise JudgeError(f"{path}: judge file not found")
    try:
        with safe_open(path, framework="pt") as file:
            metadata = json.loads((file.metadata() or {}).get("judge", "{}"))
            names = file.keys()
            tensors = {name: file.get_tensor(name) for name in names}
        if not isinstance(metadata, dict) or metadata.get("format_version") != str(FORMAT_VERSION):
            raise ValueError(f"format_version {metadata.get('format_version')!r}, expected {FORMAT_VERSION}")
        judge = spec.build()
        judge.load_state_dict(tensors)
    except Exception as error:  # safetensors, JSON, shape and key errors all mean "retrain"
        raise JudgeError(f"{path}: cannot load the judge ({type(error).__name__}: {error})") from None
    judge.metadata = {str(key): str(value) for key, value in metadata.items()}
    return judge.eval().requires_grad_(False)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped_path(name: str = FIRST) -> Path:
    return SHIPPED_DIR / SPECS[name].file_name


def judge_path(cache_dir: str | Path | None = None, name: str = FIRST) -> Path:
    """Where a judge is cached: `cache_dir`, else $GAN_STUDIO_CACHE, else `<repo>/.cache`, plus judge/<name>."""
    root = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
    return Path(root).resolve() / "judge" / SPECS[name].file_name


def read_shipped(name: str = FIRST) -> Judge:
    """The weights shipped with the package, if their SHA-256 is the recorded one; else JudgeError says why."""
    spec, path = SPECS[name], shipped_path(name)
    if not path.is_file():
        raise JudgeError(f"{path}: the shipped {name} judge is missing")
    digest = file_sha256(path)
    if digest != spec.sha256:
        raise JudgeError(f"{path}: SHA-256 {digest[:12]}... is not the recorded {spec.sha256[:12]}...")
    return read_judge(path, spec)


@dataclass(frozen=True)
class TrainedJudge:
    judge: Judge
    path: Path
    sha256: str
    accuracy: float
    seconds: float

    @property
    def matches_shipped(self) -> bool:
        return self.sha256 == SPECS[self.judge.metadata["name"]].sha256


def train_and_save(
    name: str = FIRST, path: str | Path | None = None, data_dir: str | Path = DEFAULT_DATA_DIR
) -> TrainedJudge:
    """Train a judge, measure its test accuracy into its metadata and save it (default: the cache)."""
    started = time.perf_counter()
    judge = train_judge(name, data_dir)
    accuracy = judge_accuracy(judge, data_dir)
    judge.metadata["accuracy"] = f"{accuracy:.4f}"
    path = Path(path) if path is not None else judge_path(name=name)
    digest = save_judge(judge, path)
    return TrainedJudge(judge, path, digest, accuracy, time.perf_counter() - started)


# -----------------------------------------------------------------------------
# loading: shipped weights, else the cache, else training; one loaded judge per (name, cache path)

_LOCK = threading.Lock()
_JUDGES: dict[tuple[str, Path | None], Judge] = {}


def judge_is_cached(cache_dir: str | Path | None = None, name: str | None = None) -> bool:
    """Whether loading the judge (both when `name` is None) needs no training: shipped or cached weights exist."""
    names = [name] if name else list(SPECS)
    return all(shipped_path(n).is_file() or judge_path(cache_dir, n).is_file() for n in names)


def load_judge(
    cache_dir: str | Path | None = None,
    retrain_if_missing: bool = True,
    data_dir: str | Path = DEFAULT_DATA_DIR,
    name: str = FIRST,
    shipped: bool = True,
) -> Judge:
    """A judge, loaded once: the verified shipped weights, else the cache, else trained and cached.

    Thread-safe: a second caller waits for the first one's training instead of training again.
    """
    path = judge_path(cache_dir, name)
    # the shipped weights are the same whatever the cache folder: one copy of them, keyed without a path
    keys = ([(name, None)] if shipped else []) + [(name, path)]
    with _LOCK:
        for key in keys:
            if key in _JUDGES:
                return _JUDGES[key]
        judge = _read_or_train(name, path, retrain_if_missing, data_dir, shipped)
        _JUDGES[(name, None) if judge.metadata[SOURCE_KEY] == "shipped" else (name, path)] = judge
        return judge


def _read_or_train(name: str, path: Path, retrain: bool, data_dir: str | Path, shipped: bool) -> Judge:
    """The judge and where it came from (metadata "source": shipped, cache or trained)."""
    if shipped:
        try:
            return _from(read_shipped(name), "shipped")
        except JudgeError as error:
            warnings.warn(f"{error}; using the cached judge instead (or training it)", JudgeWarning, stacklevel=4)
    try:
        return _from(read_judge(path, name), "cache")
    except JudgeError as error:
        if not retrain:
            raise
        warnings.warn(f"{error}; training the {name} judge now", JudgeWarning, stacklevel=4)
        return _from(train_and_save(name, path, data_dir).judge, "trained")


def _from(judge: Judge, source: str) -> Judge:
    judge.metadata[SOURCE_KEY] = source
    return judge


@dataclass(frozen=True)
class Judges:
    """The first judge (every score) and the second (FID only, as a cross-check), or None to skip it."""

    first: Judge
    second: Judge | None = None


def load_judges(cache_dir: str | Path | None = None, retrain_if_missing: bool = True) -> Judges:
    return Judges(
        load_judge(cache_dir, retrain_if_missing, name=FIRST), load_judge(cache_dir, retrain_if_missing, name=SECOND)
    )
