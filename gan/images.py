"""Tensors to pictures: sample grids as PNG, progressions as animated GIF, frames labelled with text."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from gan.data import to_unit_range


def grid_image(images: torch.Tensor, nrow: int = 10, scale: int = 1) -> Image.Image:
    """Images in [-1, 1], (N, 1, 28, 28), as one greyscale grid (white padding), optionally enlarged."""
    grid = tile(to_unit_range(images.detach().float().cpu())[:, 0].numpy(), nrow)
    pixels = (grid * 255).round().astype(np.uint8)
    return enlarge(Image.fromarray(pixels, mode="L"), scale)


def tile(images: np.ndarray, nrow: int, padding: int = 2, fill: float = 1.0) -> np.ndarray:
    """Images (N, H, W) in rows of `nrow`, each `padding` pixels of `fill` from its neighbours and the edges; one
    image alone comes back as it is. torchvision's make_grid draws the same, but importing torchvision costs a
    second or more of CPU on the way to a run's first step."""
    count, height, width = images.shape
    if count == 1:
        return images[0]
    columns = min(nrow, count)
    rows = -(-count // columns)
    grid = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding), fill, images.dtype)
    for index, image in enumerate(images):
        top, left = (padding + (height + padding) * k for k in divmod(index, columns))
        grid[top : top + height, left : left + width] = image
    return grid


def enlarge(picture: Image.Image, scale: int) -> Image.Image:
    """Every pixel as a `scale` x `scale` block (nearest neighbour: digits stay crisp, never blurred)."""
    if scale <= 1:
        return picture
    return picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)


def enlarge_png(png: bytes, scale: int) -> bytes:
    return png_bytes(enlarge(Image.open(io.BytesIO(png)), scale))


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


def progression_gif(grids: Sequence[Image.Image], labels: Sequence[str], scale: int = 2) -> bytes:
    """Saved grids as one animation, each frame with its label (e.g. its epoch) written above it."""
    return gif_bytes([enlarge(caption(grid, label), scale) for grid, label in zip(grids, labels, strict=True)])


def ping_pong_gif(images: torch.Tensor, scale: int = 6, seconds_per_frame: float = 0.12) -> bytes:
    """Images (N, 1, 28, 28) as an animation that runs forwards then back (an interpolation that loops smoothly)."""
    frames = [grid_image(image[None], nrow=1, scale=scale) for image in images]
    return gif_bytes(frames + frames[-2:0:-1], seconds_per_frame)
