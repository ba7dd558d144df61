"""Probing a run's discriminator with a digit: reading images the user brings, MNIST-style preprocessing, D's
verdict at every saved epoch, and the gradient map of where D pushes the generator.

Images from a browser or a file are untrusted: `read_image` checks that the bytes are an image of a sane size
and mode and that it has ink, and raises `ImageError` (one line) otherwise. `to_mnist` then does what was done
to make MNIST: crop to the ink's bounding box, fit it into 20x20 keeping the aspect ratio, and place its
centre of mass at the centre of the 28x28 field.

D's verdict is sigmoid(D(x)): the probability that x is real for the bce loss, and the same monotone reading of
the hinge loss's score. The conditional D looks at (image, digit), and every D here sees a whole batch (its
minibatch standard deviation compares the batch's spread with real batches'), so a single image is judged
among companions: real test digits for a probe, the epoch's other samples for a generated digit, as in training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from gan.config import Config
from gan.data import IMAGE_SIZE, Dataset
from gan.lab.images_in import ImageError, decode_image, read_digit_array
from gan.losses import generator_loss
from gan.models import build_discriminator
from gan.store.checkpoints import CheckpointError, load_state
from gan.store.run import Run

MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I")  # what a drawing or a scan is saved as
INK = 0.2  # a pixel with at least this much ink (0 = background, 1 = full stroke) counts as drawn
MIN_INK_PIXELS = 4
MAX_INK_SHARE = 0.6  # more than this much of the picture inked is a photo or a filled square, not a digit
BOX = 20  # MNIST digits were fitted into 20x20 and centred in 28x28
COMPANIONS = 63  # real test digits that share a batch with a probed image (64, the default batch size)
MAX_VERDICT_EPOCHS = 60


# --- reading and preprocessing --------------------------------------------------------------------------------


def read_image(data: bytes, name: str = "image") -> np.ndarray:
    """Ink (H, W) in [0, 1] from picture bytes (PNG, JPEG, ...: see gan/lab/images_in.py, which decodes them with
    every check made before the work it guards): 1 where the digit is drawn, whatever its colours.

    Transparent pixels count as paper; light-on-dark and dark-on-light drawings both work (the border tells
    which is paper)."""
    picture = decode_image(data, name)
    mode = picture.mode
    if mode not in MODES:
        raise ImageError(f"{name}: image mode {mode} is not supported: use a grayscale or RGB(A) picture")
    if mode in ("I;16", "I"):  # 16-bit grayscale: scale to 8 bits by the picture's own range
        values = np.asarray(picture, dtype=np.float64)
        span = values.max() - values.min()
        gray = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    else:
        rgba = picture.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        gray = np.asarray(Image.alpha_composite(paper, rgba).convert("L"), dtype=np.float64) / 255.0
    # transparent strokes on a transparent canvas would composite to blank paper: read the alpha channel then
    if mode in ("LA", "PA", "RGBA") and gray.max() - gray.min() < INK:
        gray = 1.0 - np.asarray(picture.convert("RGBA").getchannel("A"), dtype=np.float64) / 255.0
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = 1.0 - gray if np.median(border) > 0.5 else gray
    return check_ink(ink, name)


def check_ink(ink: np.ndarray, name: str = "image") -> np.ndarray:
    """The ink itself if it looks like one drawing on paper; ImageError for a blank or filled picture."""
    drawn = ink >= INK
    if drawn.sum() < MIN_INK_PIXELS:
        raise ImageError(f"{name}: the image is empty: draw or upload a digit")
    if drawn.mean() > MAX_INK_SHARE:
        raise ImageError(f"{name}: {drawn.mean():.0%} of the image is ink: a digit is a stroke on plain paper")
    return ink


def to_mnist(ink: np.ndarray) -> torch.Tensor:
    """A digit the way MNIST was made, (1, 28, 28) in [-1, 1], from ink (H, W) in [0, 1] of any size."""
    ink = np.asarray(ink, dtype=np.float64)
    rows, cols = np.nonzero(ink >= INK)
    if len(rows) == 0:
        raise ImageError("the image is empty: draw or upload a digit")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    crop = crop / crop.max()  # MNIST strokes reach full ink whatever the pen
    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # PIL sizes are (width, height)
    # LANCZOS anti-aliases the way NIST's digits were downsampled into grey levels
    patch = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS))
    patch = np.clip(patch, 0.0, 1.0)
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    top, left = _centred_offset(patch)
    canvas[top : top + patch.shape[0], left : left + patch.shape[1]] = patch
    return torch.from_numpy(canvas * 2 - 1).unsqueeze(0)


def _centred_offset(patch: np.ndarray) -> tuple[int, int]:
    """Where to put the patch's top-left corner so that its centre of mass lands on the field's centre."""
    mass = patch.sum()
    rows, cols = np.indices(patch.shape)
    centre = (IMAGE_SIZE - 1) / 2  # 13.5: between the two middle pixels
    offsets = []
    for axis, coordinates in enumerate((rows, cols)):
        mean = (patch * coordinates).sum() / mass if mass > 0 else (patch.shape[axis] - 1) / 2
        offset = int(math.floor(centre - mean + 0.5))
        offsets.append(min(max(offset, 0), IMAGE_SIZE - patch.shape[axis]))  # never pushed off the field
    return offsets[0], offsets[1]


def digit_from_png(data: bytes, name: str = "image") -> torch.Tensor:
    """Read, check and preprocess an uploaded or drawn picture: (1, 28, 28) in [-1, 1]."""
    return to_mnist(read_image(data, name))


def digits_from_npy(path: str | Path) -> torch.Tensor:
    """An array of digits as `gan sample` writes them, (N, 28, 28) in [0, 1], as (N, 1, 28, 28) in [-1, 1].

    Its header is checked before any data is read, and it is never unpickled (gan/lab/images_in.py)."""
    return torch.from_numpy(read_digit_array(Path(path)) * 2 - 1).unsqueeze(1)


# --- the judge's reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    labels: torch.Tensor  # (N,) the digit the judge reads
    confidences: torch.Tensor  # (N,) its softmax probability
    probabilities: torch.Tensor  # (N, 10)


@torch.inference_mode()
def judge_reading(judge: nn.Module, images: torch.Tensor) -> Reading:
    """What the digit judge reads in images (N, 1, 28, 28) in [-1, 1]."""
    probabilities = torch.softmax(judge(images.float()).float(), dim=1)
    confidences, labels = probabilities.max(1)
    return Reading(labels, confidences, probabilities)


# --- the discriminator's verdict ------------------------------------------------------------------------------


def load_discriminator(run: Run, epoch: int) -> tuple[nn.Module, Config]:
    """The discriminator of a saved epoch, in eval mode on the CPU, its weights frozen."""
    path = run.epoch_path(epoch)
    if not path.is_file():
        raise CheckpointError(f"run {run.name!r} has no saved epoch {epoch} (saved: {run.epochs() or 'none'})")
    state, config = load_state(path, run.config())  # refuses a checkpoint of another model than the run's
    D = build_discriminator(config)
    try:
        D.load_state_dict(state["D"])
    except (KeyError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise CheckpointError(f"{path}: weights do not fit the {config.preset} preset ({reason})") from None
    return D.eval().requires_grad_(False), config


def d_labels(D: nn.Module, labels: torch.Tensor | None, count: int) -> torch.Tensor | None:
    """The digits a conditional D is told (None for an unconditional D)."""
    if getattr(D, "num_classes", 0) == 0:
        return None
    if labels is None or len(labels) != count:
        raise ValueError(f"this discriminator is conditional: give the digit of each of the {count} images")
    return labels.long()


@torch.inference_mode()
def d_logits(D: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int) -> torch.Tensor:
    """D's logits (N,) for images judged in batches of `batch_size` of their own kind, as in training."""
    labels = d_labels(D, labels, len(images))
    out = []
    for start in range(0, len(images), batch_size):
        chunk = labels[start : start + batch_size] if labels is not None else None
        out.append(D(images[start : start + batch_size].float(), chunk).float())
    return torch.cat(out)


def real_companions(test: Dataset, count: int = COMPANIONS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch of real test digits (and their labels) to judge a single image among."""
    chosen = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:count]
    return test.images[chosen], test.labels[chosen]


def logits_among(
    D: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    companions: torch.Tensor,
    companion_labels: torch.Tensor | None,
) -> torch.Tensor:
    """D's logit (N,) for each image, judged as the first of a batch it shares with `companions`. Differentiable
    with respect to `images` (the caller decides about gradients)."""
    labels = d_labels(D, labels, len(images))
    others = d_labels(D, companion_labels, len(companions))
    logits = []
    for index in range(len(images)):
        batch = torch.cat([images[index : index + 1].float(), companions.float()])
        batch_labels = None if labels is None else torch.cat([labels[index : index + 1], others])
        logits.append(D(batch, batch_labels)[0])
    return torch.stack(logits).float()


def verdict_epochs(epochs: list[int], limit: int = MAX_VERDICT_EPOCHS) -> list[int]:
    """At most `limit` of a run's saved epochs, evenly spread, always with the first and the last."""
    if len(epochs) <= limit:
        return list(epochs)
    picks = np.linspace(0, len(epochs) - 1, limit).round().astype(int)
    return [epochs[index] for index in sorted(set(picks.tolist()))]


@dataclass(frozen=True)
class Verdicts:
    found: list[tuple[int, float]]  # (epoch, D's probability that the digit is real)
    skipped: list[tuple[int, str]]  # (epoch, why): a damaged epoch file is left out, never the whole list


def verdicts(
    run: Run,
    digit: torch.Tensor,
    label: int,
    test: Dataset,
    epochs: list[int] | None = None,
    limit: int = MAX_VERDICT_EPOCHS,
) -> Verdicts:
    """D's probability that `digit` (1, 28, 28) is real at each saved epoch (at most `limit` of them, spread
    evenly); a conditional D is told `label` (the digit the judge reads). An epoch whose file cannot be loaded is
    skipped with its one-line reason."""
    companions, companion_labels = real_companions(test)
    chosen = verdict_epochs(run.epochs() if epochs is None else epochs, limit)
    found, skipped = [], []
    for epoch in chosen:
        try:
            D, _ = load_discriminator(run, epoch)
        except CheckpointError as damaged:
            skipped.append((epoch, " ".join(str(damaged).split())))
            continue
        with torch.inference_mode():
            logit = logits_among(D, digit[None], torch.tensor([label]), companions, companion_labels)
        found.append((epoch, float(torch.sigmoid(logit)[0])))
    return Verdicts(found, skipped)


# --- where D pushes G -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    """The gradient of G's loss with respect to one image's pixels, turned into what D wants changed."""

    image: torch.Tensor  # (1, 28, 28) in [-1, 1]
    direction: torch.Tensor  # (28, 28): minus the gradient; > 0 where D wants more ink, < 0 where less
    moved: torch.Tensor  # (1, 28, 28): the image after a small step along `direction`
    before: float  # D's probability of "real" before the step
    after: float  # and after


def push(
    D: nn.Module,
    image: torch.Tensor,
    label: int | None,
    loss: str,
    companions: torch.Tensor,
    companion_labels: torch.Tensor | None = None,
    step: float = 0.5,
) -> Push:
    """Where D pushes an image: -dL_G/dx, L_G being G's loss (non-saturating bce or hinge) on this image, judged
    among `companions` (the epoch's other samples for a generated digit, real digits for a real one).

    `moved` takes one step along the direction, scaled so the most-changed pixel moves by `step` (of the range
    2 from background to full ink), clamped to [-1, 1]."""
    x = image.detach().float()[None].clone().requires_grad_(True)  # (1, 1, 28, 28)
    labels = None if label is None else torch.tensor([label])
    with torch.enable_grad():
        logit = logits_among(D, x, labels, companions, companion_labels)
        (gradient,) = torch.autograd.grad(generator_loss(loss, logit), x)
    direction = -gradient[0, 0]  # (28, 28)
    largest = float(direction.abs().max())
    moved = (x.detach() + step * direction / largest).clamp(-1, 1) if largest > 0 else x.detach()
    with torch.inference_mode():
        after = logits_among(D, moved, labels, companions, companion_labels)
    return Push(
        image.detach(), direction, moved[0], float(torch.sigmoid(logit.detach())[0]), float(torch.sigmoid(after)[0])
    )
