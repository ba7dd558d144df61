"""The digit judges' networks: two independent MNIST classifiers used only to score generated digits, never to
train a GAN, with their training recipes and the features and logits the scores are computed from.

- `convnet` (the first judge): conv16-pool-conv32-pool-conv64-pool and a 128-d feature layer. Every score
  (FID, classifier score, class histogram, precision/recall/density/coverage) is measured on it.
- `resnet` (the second judge): a small residual network with global average pooling (48-d features), its own
  seed and stronger augmentation. Built differently, it notices different flaws: FID is reported on both.

Both train deterministically on a CPU; `gan.scoring.judge` ships, caches and loads their weights.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from gan.data import DEFAULT_DATA_DIR, IMAGE_SIZE, NUM_CLASSES, batches, batches_per_epoch, load_mnist

TRAINING_THREADS = 1  # one thread: the same operation order, so the same bytes on the same CPU, whatever its cores
EVAL_BATCH = 1000


# -----------------------------------------------------------------------------
# the two architectures


class Judge(nn.Module):
    """A classifier of (N, 1, 28, 28) images in [-1, 1]: `features` (N, D) for the distances, then 10 logits."""

    feature_dim: int

    def __init__(self) -> None:
        super().__init__()
        self.metadata: dict[str, str] = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))  # (N, 10)


class ConvJudge(Judge):
    """conv16-pool-conv32-pool-conv64-pool, a 128-d feature layer, 10 logits."""

    def __init__(self, width: int = 16, feature_dim: int = 128):
        super().__init__()
        self.feature_dim = feature_dim
        channels = [1, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            # pool before ReLU: the same function (both are monotone), with a quarter of the ReLU work
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.MaxPool2d(2), nn.ReLU()]
        self.body = nn.Sequential(*layers)  # (N, 1, 28, 28) -> (N, 4w, 3, 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * 9, feature_dim), nn.ReLU())
        self.out = nn.Linear(feature_dim, NUM_CLASSES)
        # channels-last convolutions are about 30% faster on CPU
        self.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.body(x))  # (N, feature_dim)

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(h)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut (a strided 1x1 convolution when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNetJudge(Judge):
    """A 5x5 stride-2 stem (w x 14 x 14), a residual block, a strided one (2w x 7 x 7), another, global average
    pooling to 2w = 48 features, 10 logits. Average pooling and residual paths: a different view from ConvJudge's."""

    def __init__(self, width: int = 24):
        super().__init__()
        self.feature_dim = 2 * width
        self.stem = nn.Sequential(nn.Conv2d(1, width, 5, 2, 2, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.blocks = nn.Sequential(
            ResidualBlock(width, width), ResidualBlock(width, 2 * width, stride=2), ResidualBlock(2 * width, 2 * width)
        )
        self.out = nn.Linear(2 * width, NUM_CLASSES)
        self.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return self.blocks(self.stem(x)).mean(dim=(2, 3))  # (N, 2w)

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(h)


@dataclass(frozen=True)
class JudgeSpec:
    """How one judge is built and trained, and the SHA-256 of its shipped weights."""

    name: str
    build: Callable[[], Judge]
    seed: int
    epochs: int
    shift: int  # random translation of the training digits, in pixels
    sha256: str
    lr: float = 3e-3
    batch_size: int = 256

    @property
    def file_name(self) -> str:
        return f"{self.name}.safetensors"


FIRST, SECOND = "convnet", "resnet"
SPECS: dict[str, JudgeSpec] = {
    FIRST: JudgeSpec(
        FIRST,
        ConvJudge,
        seed=0,
        epochs=3,
        shift=1,
        sha256="c3b097532d2b3528eab9823ab4b4639784b054d44bb275714dfeda6fb9e9c2a3",
    ),
    SECOND: JudgeSpec(
        SECOND,
        ResNetJudge,
        seed=1,
        epochs=2,
        shift=2,
        sha256="3492c0827e4b74cdfaedd48a8acd0983eee9c1032b10af4f4ecb5fe6ce37959b",
    ),
}


def random_shift(images: torch.Tensor, generator: torch.Generator, pixels: int = 1) -> torch.Tensor:
    """Translate each image by up to `pixels` in x and y, filling with background (-1)."""
    n, side = len(images), IMAGE_SIZE + 2 * pixels
    padded = F.pad(images, (pixels,) * 4, value=-1.0).view(n, side * side)  # (N, (28 + 2p)^2)
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, n, 1), generator=generator)
    steps = torch.arange(IMAGE_SIZE)
    window = (steps[:, None] * side + steps[None, :]).view(1, -1)  # (1, 784): the unshifted crop
    # one flat gather is ~20x faster than indexing with row and column tensors
    return padded.gather(1, window + dy * side + dx).view(n, 1, IMAGE_SIZE, IMAGE_SIZE)


def train_judge(
    spec: JudgeSpec | str = FIRST, data_dir: str | Path = DEFAULT_DATA_DIR, steps_per_epoch: int | None = None
) -> Judge:
    """Train a judge on the MNIST training set (Adam, one-cycle, random shifts); the same bytes on the same CPU.

    `steps_per_epoch` caps the batches (for tests). The first judge takes about 30 s on two CPU cores (99.3% test
    accuracy), the second about a minute.
    """
    spec = SPECS[spec] if isinstance(spec, str) else spec
    data = load_mnist(data_dir, "train")
    steps = batches_per_epoch(len(data), spec.batch_size, steps_per_epoch)
    threads = torch.get_num_threads()
    # fork the RNG so seeding the judge does not change the caller's random stream
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(TRAINING_THREADS)
        try:
            torch.manual_seed(spec.seed)
            judge = spec.build()
            optimizer = torch.optim.Adam(judge.parameters())
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, spec.lr, total_steps=spec.epochs * steps)
            generator = torch.Generator().manual_seed(spec.seed)
            judge.train()
            for epoch in range(spec.epochs):
                for images, labels in batches(data, spec.batch_size, spec.seed, epoch, limit=steps):
                    loss = F.cross_entropy(judge(random_shift(images, generator, spec.shift)), labels)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
        finally:
            torch.set_num_threads(threads)
    judge.metadata = {"name": spec.name, "seed": str(spec.seed), "epochs": str(spec.epochs)}
    return judge.eval().requires_grad_(False)


def judge_outputs(judge: Judge, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) as float64 and logits (N, 10) as float32, both on the CPU, in batches of EVAL_BATCH."""
    model = on_device(judge, images.device)
    features, logits = [], []
    with torch.inference_mode():
        for start in range(0, len(images), EVAL_BATCH):
            h = model.features(images[start : start + EVAL_BATCH].float())
            features.append(h.cpu())
            logits.append(model.classify(h).cpu())
    return torch.cat(features).double(), torch.cat(logits).float()


def judge_accuracy(judge: Judge, data_dir: str | Path = DEFAULT_DATA_DIR) -> float:
    """Fraction of the 10,000 test images the judge classifies correctly."""
    data = load_mnist(data_dir, "test")
    _, logits = judge_outputs(judge, data.images)
    return (logits.argmax(1) == data.labels).double().mean().item()


_DEVICE_LOCK = threading.Lock()
_DEVICE_COPIES: weakref.WeakKeyDictionary[Judge, dict[torch.device, Judge]] = weakref.WeakKeyDictionary()


def on_device(judge: Judge, device: torch.device) -> Judge:
    """The judge itself if already on `device`, else a cached copy there (the shared judge is never moved)."""
    if next(judge.parameters()).device == device:
        return judge
    with _DEVICE_LOCK:
        copies = _DEVICE_COPIES.setdefault(judge, {})
        if device not in copies:
            copies[device] = copy.deepcopy(judge).to(device)
        return copies[device]
