"""Reading a run's saved grids back: the picture that was saved, None for anything that is not one of ours, and the
progression GIF of the readable ones."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from gan.images import png_bytes
from gan.store.grids import GRID_BYTES, GRID_PIXELS, grid_picture, progression
from gan.store.run import Run


@pytest.fixture
def run(root) -> Run:
    run = Run.at("grids", root)
    run.path.mkdir(parents=True)
    return run


def save_grid(run: Run, epoch: int, size: tuple[int, int] = (62, 62)) -> None:
    run.grid_path(epoch).write_bytes(png_bytes(Image.new("L", size, epoch * 20)))


def test_a_saved_grid_reads_back_as_saved(run):
    save_grid(run, 1, (62, 32))
    picture = grid_picture(run, 1)
    assert picture.size == (62, 32) and picture.getpixel((0, 0)) == 20


def test_a_missing_damaged_huge_or_outside_grid_reads_as_none(run, tmp_path):
    run.grid_path(2).write_bytes(b"\x89PNG not really")
    save_grid(run, 3, (GRID_PIXELS // 1000 + 1, 1000))  # small in bytes, too many pixels to decode
    run.grid_path(4).write_bytes(b"\0" * (GRID_BYTES + 1))
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(png_bytes(Image.new("L", (62, 62))))
    os.symlink(outside, run.grid_path(5))
    assert [grid_picture(run, epoch) for epoch in (1, 2, 3, 4, 5)] == [None] * 5


def gif_frames(data: bytes) -> int:
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "GIF"
    return picture.n_frames


def test_the_progression_picks_frames_evenly_and_leaves_out_unreadable_grids(run):
    for epoch in range(1, 10):
        save_grid(run, epoch)
    assert gif_frames(progression(run, list(range(1, 10)), frames=5)) == 5  # epochs 1, 3, 5, 7, 9
    run.grid_path(5).write_bytes(b"damaged")
    assert gif_frames(progression(run, list(range(1, 10)), frames=5)) == 4
    assert gif_frames(progression(run, list(range(1, 10)), frames=20)) == 8
