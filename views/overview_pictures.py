"""One step's tensors as the overview graph's small pictures, each a PNG data: URI (the page works offline): digits,
the push maps of G's loop, the noise strips, and the colours of D's verdicts from "fake" to "real"."""

from __future__ import annotations

import base64
import io

import torch
from PIL import Image

from gan.data import to_unit_range

FAKE_RGB, MIDDLE_RGB, REAL_RGB = (230, 97, 1), (235, 235, 235), (26, 150, 65)  # D's verdict: "fake", unsure, "real"
NOISE_RANGE = 2.5  # noise values at or beyond +-2.5 (rare for a standard normal) are drawn full white or black


def png_uri(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def digit_uri(image: torch.Tensor) -> str:
    """One (1, 28, 28) image in [-1, 1] as a greyscale PNG (white ink on black, as MNIST)."""
    pixels = (to_unit_range(image.detach().float().cpu())[0] * 255).round().to(torch.uint8).numpy()
    return png_uri(Image.fromarray(pixels, mode="L"))


def push_uri(direction: torch.Tensor) -> str:
    """Where D pushes one fake's pixels (minus the gradient of G's loss): red where D wants more ink, blue where
    less, white where it does not care; scaled by the image's largest push, so that each map shows its own pattern."""
    direction = direction.detach().float().cpu().reshape(28, 28)
    strength = (direction.abs() / direction.abs().max().clamp_min(1e-12) * 255).round()
    more, less = torch.where(direction > 0, strength, 0), torch.where(direction < 0, strength, 0)
    rgb = torch.stack((255 - less, 255 - less - more, 255 - more), dim=-1).clamp(0, 255).to(torch.uint8)
    return png_uri(Image.fromarray(rgb.numpy(), mode="RGB"))


def noise_uri(z: torch.Tensor) -> str:
    """One noise vector as a strip of grey cells, one per number: black at -2.5 or below, white at +2.5 or above."""
    values = z.detach().float().cpu().clamp(-NOISE_RANGE, NOISE_RANGE)
    cells = ((values + NOISE_RANGE) / (2 * NOISE_RANGE) * 255).round().to(torch.uint8)
    return png_uri(Image.fromarray(cells.reshape(1, -1).numpy(), mode="L"))


def verdict_color(fraction: float) -> str:
    """The colour of a verdict from 0 ("fake") through 0.5 (unsure) to 1 ("real"), clamped to that range."""
    fraction = min(1.0, max(0.0, fraction))
    low, high, t = (FAKE_RGB, MIDDLE_RGB, fraction * 2) if fraction < 0.5 else (MIDDLE_RGB, REAL_RGB, fraction * 2 - 1)
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(low, high, strict=True))
