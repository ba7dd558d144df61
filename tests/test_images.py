"""Pictures from tensors: grids, crisp enlargement, and the two animations offered for download."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from gan.images import enlarge, enlarge_png, grid_image, grid_png, ping_pong_gif, progression_gif, tile


def images(count: int, value: float = 1.0) -> torch.Tensor:
    return torch.full((count, 1, 28, 28), value)


def test_a_grid_has_ten_columns_with_two_pixels_of_white_padding():
    picture = grid_image(images(20, -1.0))
    assert picture.size == (10 * 30 + 2, 2 * 30 + 2)
    assert picture.getpixel((0, 0)) == 255 and picture.getpixel((2, 2)) == 0


def test_enlarging_repeats_pixels_without_blurring():
    picture = Image.new("L", (2, 1))
    picture.putpixel((1, 0), 255)
    big = enlarge(picture, 3)
    assert big.size == (6, 3) and {big.getpixel((x, 1)) for x in range(6)} == {0, 255}
    assert [big.getpixel((x, 0)) for x in range(6)] == [0, 0, 0, 255, 255, 255]
    assert enlarge(picture, 1) is picture


def test_enlarge_png_matches_a_grid_drawn_large():
    small = grid_png(images(4), nrow=2)
    assert enlarge_png(small, 2) == grid_png(images(4), nrow=2, scale=2)


def test_the_progression_is_one_labelled_frame_per_grid():
    grids = [grid_image(images(4, value)) for value in (-1.0, 0.0, 1.0)]
    animation = Image.open(io.BytesIO(progression_gif(grids, ["epoch 1", "epoch 2", "epoch 3"], scale=2)))
    assert animation.format == "GIF" and animation.n_frames == 3
    assert animation.size == (grids[0].width * 2, (grids[0].height + 14) * 2), "a caption band above each grid"


def test_the_ping_pong_animation_runs_forwards_then_back():
    strip = torch.linspace(-1, 1, 5).view(5, 1, 1, 1).expand(5, 1, 28, 28)
    animation = Image.open(io.BytesIO(ping_pong_gif(strip, scale=1)))
    assert animation.n_frames == 8  # 0 1 2 3 4 3 2 1, then it loops
    shades = []
    for frame in range(animation.n_frames):
        animation.seek(frame)
        shades.append(animation.convert("L").getpixel((14, 14)))
    assert shades == shades[:5] + shades[3:0:-1] and shades[:5] == sorted(shades[:5])


def test_grids_are_laid_out_as_torchvision_lays_them_out():
    make_grid = pytest.importorskip("torchvision.utils").make_grid
    for count, nrow in [(100, 10), (7, 3), (23, 5), (3, 10), (1, 10)]:
        images = torch.rand(count, 1, 28, 28)
        assert np.array_equal(tile(images[:, 0].numpy(), nrow), make_grid(images, nrow, 2, pad_value=1.0)[0].numpy())
