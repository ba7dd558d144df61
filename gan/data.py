"""MNIST in memory: IDX reading with clear errors, images scaled to [-1, 1], seeded shuffled batches.

The whole training set is one tensor (60,000 x 1 x 28 x 28 float32, 188 MB): indexing it is about
twenty times cheaper per epoch than a DataLoader with per-image transforms.

Decompressing and scaling the training images takes about half a second, on the way to a run's first step. So the
scaled images are also kept as a float32 .npy file in the cache folder (`<repo>/.cache/mnist/`, or
`$GAN_STUDIO_CACHE/mnist/`), named by the SHA-256 of the IDX file they came from, and later loads map it into memory
in milliseconds. The pixels are the same bytes either way; a cache that cannot be read or written is skipped.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PACKAGE_DIR = Path(__file__).resolve().parent
CACHE_ENV = "GAN_STUDIO_CACHE"
DEFAULT_CACHE_DIR = PACKAGE_DIR.parent / ".cache"
# An installed copy (`pip install .`) carries MNIST inside the package; a clone, or an editable install, has it in the
# repository's data/mnist, beside gan/. Either way it is found from any working directory.
INSTALLED_DATA_DIR = PACKAGE_DIR / "mnist"
DEFAULT_DATA_DIR = INSTALLED_DATA_DIR if INSTALLED_DATA_DIR.is_dir() else PACKAGE_DIR.parent / "data" / "mnist"
NUM_CLASSES = 10
IMAGE_SIZE = 28

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_UBYTE = 0x08


class DataError(ValueError):
    """A data file is missing, truncated or not in the IDX format."""


@dataclass(frozen=True)
class Dataset:
    """Images as float32 (N, 1, 28, 28) in [-1, 1] and labels as int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not) into an array of its declared shape."""
    path = Path(path)
    return parse_idx(path, _read(path))


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error})") from None


def parse_idx(path: Path, content: bytes) -> np.ndarray:
    """The array in an IDX file's bytes (`content`, gzipped when the name ends in .gz); `path` names it in errors."""
    try:
        raw = gzip.decompress(content) if path.suffix == ".gz" else content
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"{path}: cannot decompress ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != _IDX_UBYTE:
        raise DataError(f"{path}: IDX element type 0x{raw[2]:02x} is not supported (only unsigned bytes)")
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header_size + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path}: {len(raw)} bytes but its header {shape} needs {expected} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def _find(folder: Path, name: str) -> Path:
    """Accept both `name.gz` and the uncompressed `name`."""
    plain = folder / name.removesuffix(".gz")
    return plain if not (folder / name).exists() and plain.exists() else folder / name


def split_files(folder: str | Path, split: str) -> tuple[Path, Path]:
    """The (images, labels) files of a split ("train" or "test") in an MNIST-format folder."""
    if split not in FILES:
        raise DataError(f"split must be one of {sorted(FILES)}, got {split!r}")
    image_file, label_file = (_find(Path(folder), name) for name in FILES[split])
    return image_file, label_file


@functools.lru_cache(maxsize=4)
def load_mnist(folder: str | Path = DEFAULT_DATA_DIR, split: str = "train") -> Dataset:
    """Load a split ("train" or "test") of an MNIST-format folder; cached, so repeated calls are free."""
    image_file, label_file = split_files(folder, split)
    pixels, labels = scaled_images(image_file), read_idx(label_file)
    if labels.ndim != 1 or len(labels) != len(pixels):
        raise DataError(f"{label_file}: expected {len(pixels)} labels, got shape {labels.shape}")
    if labels.max() >= NUM_CLASSES:
        raise DataError(f"{label_file}: labels must be 0-9, found {int(labels.max())}")
    return Dataset(images=pixels, labels=torch.from_numpy(labels.astype(np.int64)))


def scaled_images(image_file: Path) -> torch.Tensor:
    """An IDX file's images as float32 (N, 1, 28, 28) in [-1, 1]: mapped from the cache when it holds them, else
    decoded (and cached for next time)."""
    content = _read(image_file)
    cached = cache_dir() / "mnist" / f"{image_file.name.split('.')[0]}-{hashlib.sha256(content).hexdigest()[:16]}.npy"
    pixels = _from_cache(cached)
    if pixels is not None:
        return torch.from_numpy(pixels)
    images = parse_idx(image_file, content)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{image_file}: expected images of shape (N, 28, 28), got {images.shape}")
    scaled = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(127.5).sub_(1.0)
    _to_cache(cached, scaled.numpy())
    return scaled


def cache_dir() -> Path:
    """The folder of files that are derived, never edited, and safe to delete: $GAN_STUDIO_CACHE or <repo>/.cache."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR).resolve()


def _from_cache(path: Path) -> np.ndarray | None:
    """The cached pixels, mapped copy-on-write (nothing is read until used, nothing written back); None when absent
    or not an array of 28 x 28 float32 images."""
    try:
        pixels = np.load(path, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if pixels.dtype != np.float32 or pixels.ndim != 4 or pixels.shape[1:] != (1, IMAGE_SIZE, IMAGE_SIZE):
        return None
    return pixels


def _to_cache(path: Path, pixels: np.ndarray) -> None:
    """Write the cache file whole or not at all (a temporary file renamed over it); a failure only skips it."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
            temporary = Path(handle.name)
            np.save(handle, pixels, allow_pickle=False)
        os.replace(temporary, path)
    except OSError:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


def epoch_permutation(num_items: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of one epoch, a pure function of (seed, epoch) so a resumed run sees the same order."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_items, generator=generator)


def batches(
    data: Dataset, batch_size: int, seed: int, epoch: int, start: int = 0, limit: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (images, labels) batches of one epoch, dropping the last partial batch.

    `start` skips batches already trained (resume mid-epoch); `limit` caps the batches per epoch.
    """
    order = epoch_permutation(len(data), seed, epoch)
    count = batches_per_epoch(len(data), batch_size, limit)
    for index in range(start, count):
        chosen = order[index * batch_size : (index + 1) * batch_size]
        yield data.images[chosen], data.labels[chosen]


def batches_per_epoch(num_items: int, batch_size: int, limit: int | None = None) -> int:
    count = num_items // batch_size
    return count if limit is None else min(count, limit)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Map generator output from [-1, 1] to [0, 1] for display and saving."""
    return images.add(1.0).mul(0.5).clamp(0.0, 1.0)
