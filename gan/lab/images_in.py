"""Reading the digits a user brings: a picture (bytes from a browser upload or a file) and a `.npy` array of digits
(a file). Both are untrusted, so every check is made before the work it guards.

A picture is recognised by its content, never by its name (a JPEG saved as .png is a JPEG), among the formats a
drawing or a photo comes in; its size is read from the header and refused above `MAX_SIDE` before any pixel is
decoded (a 151 KB PNG can claim 30000x30000 pixels, 900 million); a phone photo is turned upright by its EXIF
orientation; and a large one is reduced to `WORK_SIDE` at once, since it becomes a 20x20 digit anyway.

An array's header (shape, dtype, byte order) is read and checked, and the digits counted against `MAX_DIGITS`,
before any of its data is read: a 128-byte file claiming ten million digits costs nothing. Never unpickled.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gan.data import IMAGE_SIZE
from gan.store.files import FileError, open_regular, read_capped

MAX_BYTES = 20_000_000  # a picture file; the app's upload limit is lower
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # what a drawing, a scan or a phone photo is saved as
MIN_SIDE, MAX_SIDE = 8, 4096  # pixels; a phone photo is 4032 wide
WORK_SIDE = 1024  # a larger picture is reduced to this before it is read as ink
MAX_DIGITS = 10_000  # in one array: as many as `gan sample --n` writes at most
NPY_HEADER_LIMIT = 10_000  # bytes, numpy's own default
HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class ImageError(ValueError):
    """A picture or an array cannot be used as digits; the message says why in one line."""


# --- pictures ------------------------------------------------------------------------------------------------


def decode_image(data: bytes, name: str = "image") -> Image.Image:
    """The picture in `data`, decoded, upright and at most WORK_SIDE pixels on its longer side."""
    if len(data) == 0:
        raise ImageError(f"{name}: the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{name}: {len(data):,} bytes is too large (at most {MAX_BYTES:,})")
    try:
        picture = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: too many pixels to decode (each side at most {MAX_SIDE} pixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageError(f"{name}: not an image (a {', '.join(FORMATS)} file)") from None
    width, height = picture.size
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise ImageError(
            f"{name}: {width}x{height} pixels is not allowed: each side from {MIN_SIDE} to {MAX_SIDE} pixels"
        )
    try:
        picture.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        raise ImageError(f"{name}: the picture's data is damaged or cut short") from None
    return reduced(upright(picture), WORK_SIDE)


def upright(picture: Image.Image) -> Image.Image:
    """The picture turned the way its EXIF orientation says it was taken (a phone stores photos sideways)."""
    try:
        turned = ImageOps.exif_transpose(picture)
    except Exception:  # damaged EXIF is only a lost orientation: the pixels were decoded, read them as stored
        return picture
    return picture if turned is None else turned


def reduced(picture: Image.Image, side: int) -> Image.Image:
    """The picture shrunk by a whole factor (pixel averaging) until its longer side is at most `side`."""
    factor = math.ceil(max(picture.size) / side)
    if factor <= 1:
        return picture
    averaged = {"1": "L", "P": "RGBA", "I;16": "I"}  # modes whose values cannot be averaged as they are
    if picture.mode in averaged:
        picture = picture.convert(averaged[picture.mode])
    return picture.reduce(factor)


def read_picture_file(path: Path) -> bytes:
    """The bytes of a picture file named by the user: a regular file (never a pipe or a device) of at most
    MAX_BYTES."""
    try:
        return read_capped(path, MAX_BYTES)
    except FileError as error:
        raise ImageError(str(error)) from None


# --- arrays of digits ----------------------------------------------------------------------------------------


def read_digit_array(path: Path, max_digits: int = MAX_DIGITS) -> np.ndarray:
    """Digits (N, 28, 28) as float32 from a .npy file as `gan sample` writes them: numbers in [0, 1]."""
    path = Path(path)
    try:
        descriptor = open_regular(path)
    except FileError as error:
        raise ImageError(str(error)) from None
    with os.fdopen(descriptor, "rb") as handle:
        shape, fortran_order, dtype = _checked_header(handle, path, max_digits)
        count = math.prod(shape)
        data = handle.read(count * dtype.itemsize + 1)
    if len(data) != count * dtype.itemsize:
        state = "cut short" if len(data) < count * dtype.itemsize else "longer than its header says"
        raise ImageError(f"{path}: the array's data is {state}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    values = array.astype(np.float32)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise ImageError(f"{path}: values must be finite and in [0, 1] (as `gan sample` writes them)")
    return values


def _checked_header(handle: io.BufferedReader, path: Path, max_digits: int) -> tuple[tuple, bool, np.dtype]:
    """Shape, order and dtype from the .npy header, each checked; the handle is left at the first data byte."""
    try:
        version = np.lib.format.read_magic(handle)
        read_header = HEADER_READERS.get(version)
        header = None if read_header is None else read_header(handle, NPY_HEADER_LIMIT)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError):
        raise ImageError(f"{path}: not a readable .npy array (its header cannot be read)") from None
    if header is None:
        raise ImageError(f"{path}: .npy format version {version} is not supported (1.0 or 2.0)")
    shape, fortran_order, dtype = header
    if dtype.hasobject or dtype.kind not in "fiu" or dtype.itemsize > 8:
        raise ImageError(f"{path}: dtype {dtype} is not allowed: plain numbers in [0, 1]")
    if len(shape) != 3 or tuple(shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise ImageError(f"{path}: shape {tuple(shape)} is not allowed: (N, {IMAGE_SIZE}, {IMAGE_SIZE}) digits")
    if not 1 <= shape[0] <= max_digits:
        raise ImageError(f"{path}: {shape[0]:,} digits is not allowed: from 1 to {max_digits:,}")
    return tuple(shape), bool(fortran_order), dtype
