"""Tensors to pictures: sample grids as PNG, progressions as animated GIF, frames labelled with text."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from gan.data import to_unit_range


def grid_image(images: torch.Tensor, nrow: int = 10, scale: int = 1) -> Image.Image:
    """Images in [-1, 1], (N, 1, 28, 28), as one greyscale grid (white padding), optionally enlarged."""
    grid = make_grid(to_unit_range(images.detach().float().cpu()), nrow=nrow, padding=2, pad_value=1.0)
    pixels = (grid[0].numpy() * 255).round().astype(np.uint8)
    picture = Image.fromarray(pixels, mode="L")
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    return picture


def png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def grid_png(images: torch.Tensor, nrow: int = 10, scale: int = 1) -> bytes:
    return png_bytes(grid_image(images, nrow, scale))


def caption(picture: Image.Image, text: str) -> Image.Image:
    """A copy of the picture with a caption band above it (used for epoch numbers on GIF frames)."""
    band = 14
    framed = Image.new("L", (picture.width, picture.height + band), color=255)
    framed.paste(picture.convert("L"), (0, band))
    ImageDraw.Draw(framed).text((3, 1), text, fill=0)
    return framed


def gif_bytes(frames: Sequence[Image.Image], seconds_per_frame: float = 0.4, loop: bool = True) -> bytes:
    """An animated GIF of the frames (all the same size); the last frame is held a little longer."""
    if not frames:
        raise ValueError("an animation needs at least one frame")
    durations = [int(seconds_per_frame * 1000)] * len(frames)
    durations[-1] *= 3
    buffer = io.BytesIO()
    first, *rest = [frame.convert("L") for frame in frames]
    first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=durations, loop=0 if loop else 1)
    return buffer.getvalue()
