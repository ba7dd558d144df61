"""A run's saved sample grids read back: the PNG of an epoch, decoded, and the run's progression as an animated GIF.

The files are untrusted (a run folder may come from anywhere): a grid is read only if it is a regular file inside
the run folder, capped in size, and decoded only if its pixel count is sane. A grid that fails any check is
reported as missing (None), never as an error: the page shows the other epochs.
"""

from __future__ import annotations

import io

from PIL import Image

from gan.images import progression_gif
from gan.series import evenly
from gan.store.files import FileError, read_capped
from gan.store.run import Run

GRID_BYTES = 2_000_000  # a saved grid PNG is about 30 kB; anything far larger is not one of ours
GRID_PIXELS = 1000 * 1000
GIF_FRAMES = 60  # at most this many epochs in a progression, picked evenly


def grid_bytes(run: Run, epoch: int) -> bytes | None:
    """The saved grid PNG of an epoch, read capped and only if it is a regular file inside the run folder."""
    try:
        return read_capped(run.grid_path(epoch), GRID_BYTES, run.path)
    except FileError:
        return None


def grid_picture(run: Run, epoch: int) -> Image.Image | None:
    """The saved grid of an epoch, decoded; None if it is missing, damaged or not a picture of a sane size."""
    data = grid_bytes(run, epoch)
    if data is None:
        return None
    try:
        picture = Image.open(io.BytesIO(data))
        if picture.width * picture.height > GRID_PIXELS:
            return None
        picture.load()
    except Exception:  # Pillow raises many kinds for a damaged or foreign file
        return None
    return picture


def progression(run: Run, epochs: list[int], frames: int = GIF_FRAMES) -> bytes:
    """Up to `frames` of the given epochs' grids, picked evenly, each with its epoch number above it, as one
    animated GIF; unreadable grids are left out."""
    chosen = [(epoch, grid_picture(run, epoch)) for epoch in evenly(epochs, frames)]
    readable = [(epoch, picture) for epoch, picture in chosen if picture is not None]
    return progression_gif([picture for _, picture in readable], [f"epoch {epoch}" for epoch, _ in readable])
