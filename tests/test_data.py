import gzip

import pytest
import torch

from gan.data import DEFAULT_DATA_DIR, DataError, batches, load_mnist, read_idx


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
