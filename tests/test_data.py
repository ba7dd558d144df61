import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gan.data import DEFAULT_DATA_DIR, FILES, DataError, batches, load_mnist, read_idx


def test_training_set_shape_range_and_labels():
    data = load_mnist(DEFAULT_DATA_DIR, "train")
    assert data.images.shape == (60_000, 1, 28, 28)
    assert data.images.dtype == torch.float32
    assert data.images.min() == -1.0 and data.images.max() == 1.0
    counts = torch.bincount(data.labels, minlength=10)
    assert counts.sum() == 60_000
    assert counts.tolist()[1] == 6742 and counts.min() == 5421  # the published class counts


def test_test_set_shape():
    data = load_mnist(DEFAULT_DATA_DIR, "test")
    assert data.images.shape == (10_000, 1, 28, 28) and len(data.labels) == 10_000


def test_truncated_idx_file_names_the_file(tmp_path):
    original = gzip.decompress((DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes())
    broken = tmp_path / "t10k-labels-idx1-ubyte.gz"
    broken.write_bytes(gzip.compress(original[:-100]))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*truncated"):
        read_idx(broken)


def test_foreign_file_is_refused(tmp_path):
    foreign = tmp_path / "train-images-idx3-ubyte"
    foreign.write_bytes(b"<html>not mnist</html>")
    with pytest.raises(DataError, match="magic"):
        read_idx(foreign)


def test_missing_folder_names_the_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_mnist(tmp_path, "test")


def test_another_folder_in_the_same_format_loads(tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress((DEFAULT_DATA_DIR / name).read_bytes()))
    assert len(load_mnist(tmp_path, "test")) == 10_000


def test_batches_are_seeded_and_resumable():
    data = load_mnist(DEFAULT_DATA_DIR, "test")
    first = [labels for _, labels in batches(data, 32, seed=1, epoch=0, limit=4)]
    again = [labels for _, labels in batches(data, 32, seed=1, epoch=0, limit=4)]
    resumed = [labels for _, labels in batches(data, 32, seed=1, epoch=0, start=2, limit=4)]
    other_epoch = [labels for _, labels in batches(data, 32, seed=1, epoch=1, limit=4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(torch.equal(a, b) for a, b in zip(first[2:], resumed))
    assert not torch.equal(first[0], other_epoch[0])


def copy_test_split(folder: Path) -> Path:
    """The test split's files in `folder`, gzipped as shipped."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES["test"]:
        shutil.copyfile(DEFAULT_DATA_DIR / name, folder / name)
    return folder


def decoded(folder: Path) -> torch.Tensor:
    """The test images decoded straight from the IDX file, as load_mnist scaled them before any cache."""
    images = read_idx(folder / FILES["test"][0])
    return torch.from_numpy(images.copy()).unsqueeze(1).float().div_(127.5).sub_(1.0)


def test_cached_images_are_the_decoded_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    folder = copy_test_split(tmp_path / "mnist")
    first = load_mnist(folder, "test")
    (cached,) = (tmp_path / "cache" / "mnist").glob("t10k-images-*.npy")
    assert np.array_equal(np.load(cached), decoded(folder).numpy())
    load_mnist.cache_clear()
    assert torch.equal(load_mnist(folder, "test").images, first.images)


def test_a_later_load_reads_the_cache_not_the_idx_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    folder = copy_test_split(tmp_path / "mnist")
    load_mnist(folder, "test")
    (cached,) = (tmp_path / "cache" / "mnist").glob("t10k-images-*.npy")
    np.save(cached, np.zeros((10_000, 1, 28, 28), np.float32))  # a marker only the cache holds
    load_mnist.cache_clear()
    assert load_mnist(folder, "test").images.abs().max() == 0


def test_a_damaged_cache_file_is_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    folder = copy_test_split(tmp_path / "mnist")
    load_mnist(folder, "test")
    (cached,) = (tmp_path / "cache" / "mnist").glob("t10k-images-*.npy")
    cached.write_bytes(cached.read_bytes()[:5000])
    load_mnist.cache_clear()
    assert torch.equal(load_mnist(folder, "test").images, decoded(folder))


def test_changed_digits_are_not_read_from_an_older_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    folder = copy_test_split(tmp_path / "mnist")
    before = load_mnist(folder, "test").images
    image_file = folder / FILES["test"][0]
    raw = bytearray(gzip.decompress(image_file.read_bytes()))
    raw[16:800] = bytes(784)  # the first digit becomes a black square
    image_file.write_bytes(gzip.compress(bytes(raw), compresslevel=1))
    load_mnist.cache_clear()
    after = load_mnist(folder, "test").images
    assert torch.equal(after, decoded(folder)) and not torch.equal(after[0], before[0])
    assert torch.equal(after[1:], before[1:])


def test_an_unwritable_cache_folder_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(blocker))
    folder = copy_test_split(tmp_path / "mnist")
    assert torch.equal(load_mnist(folder, "test").images, decoded(folder))
