"""Probing D with a digit: reading untrusted images, MNIST-style preprocessing, D's verdicts, gradient maps."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gan.data import DEFAULT_DATA_DIR, load_mnist
from gan.jobs.runner import prepare_trainer, train_run
from gan.lab.probe import (
    ImageError,
    d_logits,
    digit_from_png,
    digits_from_npy,
    load_discriminator,
    push,
    read_image,
    to_mnist,
    verdict_epochs,
    verdicts,
)
from gan.store.run import Run
from tests.conftest import tiny_config


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (40, 40), (0, 0, 0, 255)).save(buffer, format="JPEG")
    return buffer.getvalue()


def centre_of_mass(image: torch.Tensor) -> tuple[float, float]:
    ink = (image[0] + 1) / 2
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    return float((ink * rows).sum() / ink.sum()), float((ink * cols).sum() / ink.sum())


def ink_box(image: torch.Tensor) -> tuple[int, int]:
    rows, cols = torch.nonzero(image[0] > -0.6, as_tuple=True)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.fixture(scope="module")
def test_digits():
    return load_mnist(DEFAULT_DATA_DIR, "test")


def test_a_shifted_scaled_digit_comes_out_centred_and_sized_like_mnist(test_digits):
    original = (test_digits.images[0, 0].numpy() + 1) / 2  # a 7, as MNIST made it
    # blown up 5x (nearest), black on white, pushed into a corner of a large page
    big = np.kron(original, np.ones((5, 5)))
    page = np.ones((400, 300))
    page[10 : 10 + big.shape[0], 150 : 150 + big.shape[1]] = 1 - big
    digit = digit_from_png(png((page * 255).astype(np.uint8)))
    assert digit.shape == (1, 28, 28) and digit.min() >= -1 and digit.max() <= 1
    row, col = centre_of_mass(digit)
    assert abs(row - 13.5) <= 1 and abs(col - 13.5) <= 1
    height, width = ink_box(digit)
    assert max(height, width) in (19, 20, 21)  # the long side fills the 20-pixel box
    reference_height, reference_width = ink_box(test_digits.images[0])
    assert abs(height - reference_height) <= 2 and abs(width - reference_width) <= 2
    # and it is still the same picture: close to the original, far closer than to another digit
    assert (digit - test_digits.images[0]).abs().mean() < 0.5 * (digit - test_digits.images[1]).abs().mean()


def test_a_wide_stroke_keeps_its_aspect_ratio():
    ink = np.zeros((100, 200))
    ink[40:60, 10:190] = 1.0  # a bar 9 times as wide as it is tall
    height, width = ink_box(to_mnist(ink))
    assert width == 20 and 1 <= height <= 4


def test_light_on_dark_and_transparent_drawings_read_the_same():
    ink = np.zeros((56, 56))
    ink[10:46, 25:31] = 1.0  # a "1"
    dark_on_light = digit_from_png(png(((1 - ink) * 255).astype(np.uint8)))
    light_on_dark = digit_from_png(png((ink * 255).astype(np.uint8)))
    rgba = np.zeros((56, 56, 4), dtype=np.uint8)
    rgba[..., 3] = (ink * 255).astype(np.uint8)  # black strokes on a transparent canvas
    transparent = digit_from_png(png(rgba))
    assert torch.allclose(dark_on_light, light_on_dark, atol=1e-5)
    assert torch.allclose(dark_on_light, transparent, atol=1e-5)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is not a picture", "not an image"),
        (png(np.full((64, 64), 255, dtype=np.uint8)), "empty"),  # a blank canvas
        (png(np.zeros((4, 4), dtype=np.uint8)), "4x4 pixels"),
        (cmyk_jpeg(), "mode CMYK"),
    ],
)
def test_bad_images_get_a_one_line_message(data, message):
    with pytest.raises(ImageError, match=message) as raised:
        read_image(data, "drawing.png")
    assert "\n" not in str(raised.value)


def test_npy_digits_are_checked(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).random((3, 28, 28)).astype(np.float32))
    assert digits_from_npy(good).shape == (3, 1, 28, 28)
    for name, array in {"shape": np.zeros((3, 28)), "range": np.full((2, 28, 28), 255.0)}.items():
        np.save(tmp_path / f"{name}.npy", array)
        with pytest.raises(ImageError):
            digits_from_npy(tmp_path / f"{name}.npy")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(ImageError, match="not a readable"):
        digits_from_npy(tmp_path / "junk.npy")


class LinearD(nn.Module):
    """logit = <w, x>: D believes more in an image the more ink it has where w > 0."""

    num_classes = 0

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.weights = nn.Parameter(weights, requires_grad=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return (x.flatten(1) * self.weights.flatten()).sum(1)


@pytest.mark.parametrize("loss", ["bce", "hinge"])
def test_push_map_has_the_image_shape_and_points_where_d_wants_ink(loss):
    weights = torch.zeros(28, 28)
    weights[5:10, 5:10] = 0.1  # D likes ink in the top-left square, dislikes it in the bottom-right one
    weights[20:25, 20:25] = -0.1
    image = torch.full((1, 28, 28), -1.0)
    image[0, 20:25, 20:25] = 1.0
    companions = torch.full((3, 1, 28, 28), -1.0)
    found = push(LinearD(weights), image, None, loss, companions)
    assert found.direction.shape == (28, 28) and found.moved.shape == (1, 28, 28)
    assert (found.direction[5:10, 5:10] > 0).all() and (found.direction[20:25, 20:25] < 0).all()
    assert found.direction[0, 0] == 0
    assert found.after > found.before  # a step along the push makes the image more convincing to D


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = Run(tmp_path_factory.mktemp("runs") / "tiny")
    trainer = prepare_trainer(run, tiny_config("cdcgan", epochs=2))
    train_run(run, trainer)
    return run


def test_verdicts_give_one_probability_per_saved_epoch(tiny_run, test_digits):
    found = verdicts(tiny_run, test_digits.images[0], int(test_digits.labels[0]), test_digits)
    assert [epoch for epoch, _ in found.found] == tiny_run.epochs() == [1, 2] and found.skipped == []
    assert all(0 < probability < 1 for _, probability in found.found)


def test_a_conditional_d_needs_labels(tiny_run, test_digits):
    D, config = load_discriminator(tiny_run, 1)
    with pytest.raises(ValueError, match="conditional"):
        d_logits(D, test_digits.images[:4], None, config.batch_size)
    assert d_logits(D, test_digits.images[:40], test_digits.labels[:40], 16).shape == (40,)


def test_verdict_epochs_are_spread_and_keep_both_ends():
    chosen = verdict_epochs(list(range(1, 101)), limit=10)
    assert len(chosen) == 10 and chosen[0] == 1 and chosen[-1] == 100
