"""A third digit judge, kept aside: the benchmarks report FID on it beside the two shipped judges, and nothing is
ever tuned against it (recipes, presets and defaults are chosen on the shipped judges only).

Built unlike both shipped judges: no pooling and no batch norm (three strided convolutions with ELU), a 96-d
feature layer, trained on digits randomly rotated, scaled and shifted (not only shifted), with SGD and Nesterov
momentum, label smoothing and a cosine schedule. Deterministic for its seed on one CPU thread; trained once (a
minute or two) and kept in the cache folder (`<repo>/.cache/third_judge/`, or `$GAN_STUDIO_CACHE/third_judge/`),
never shipped. Its fits of the real test digits are cached like any judge's (gan.scoring.real_stats).

    python bench/third_judge.py                         # train or load it: its accuracy and floor
    python bench/third_judge.py --run NAME [--epoch N]  # a saved run's FID on all three judges
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan.data import DEFAULT_DATA_DIR, NUM_CLASSES, batches, batches_per_epoch, cache_dir, load_mnist  # noqa: E402
from gan.scoring.metrics import EVAL_SAMPLES, FeatureStats, feature_stats, frechet_distance  # noqa: E402
from gan.scoring.real_stats import real_fits  # noqa: E402
from gan.store.files import atomic_write  # noqa: E402

NAME, SEED, EPOCHS, BATCH, LR = "third", 3, 3, 128, 0.05
EVAL_BATCH = 1000


class StridedJudge(nn.Module):
    """conv5x5/2 (32), conv3x3/2 (64), conv3x3/2 (128), ELU, no pooling or normalisation; 96 features, 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, 2, 2), nn.ELU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ELU(), nn.Conv2d(64, 128, 3, 2, 1)
        )  # (N, 1, 28, 28) -> (N, 128, 4, 4)
        self.head = nn.Sequential(nn.ELU(), nn.Flatten(), nn.Linear(128 * 16, 96), nn.ELU())
        self.out = nn.Linear(96, NUM_CLASSES)
        self.metadata: dict[str, str] = {"name": NAME}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (N, 96)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def random_affine(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate by up to 12 degrees, scale by 0.9 to 1.1 and shift by up to 2 pixels, each image its own draw."""
    angle, scale, shift_x, shift_y = torch.rand(4, len(images), generator=generator) * 2 - 1
    angle, scale = angle * math.radians(12), 1 + 0.1 * scale
    shift_x, shift_y = shift_x * 2 / 14, shift_y * 2 / 14  # pixels in grid units (28 pixels span 2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale  # where each output pixel samples the input
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images + 1, grid, align_corners=False) - 1  # outside the digit: background (-1)


def train(data_dir: str | Path = DEFAULT_DATA_DIR) -> StridedJudge:
    data = load_mnist(data_dir, "train")
    steps = batches_per_epoch(len(data), BATCH)
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(1)  # one thread: the same operation order, so the same weights on the same CPU
        try:
            torch.manual_seed(SEED)
            judge = StridedJudge()
            optimizer = torch.optim.SGD(judge.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=5e-4)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS * steps)
            generator = torch.Generator().manual_seed(SEED)
            for epoch in range(EPOCHS):
                for images, labels in batches(data, BATCH, SEED, epoch):
                    loss = F.cross_entropy(judge(random_affine(images, generator)), labels, label_smoothing=0.1)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
        finally:
            torch.set_num_threads(threads)
    return judge.eval().requires_grad_(False)


def path() -> Path:
    return cache_dir() / "third_judge" / f"{NAME}.safetensors"


def load_third_judge() -> StridedJudge:
    """The cached third judge, trained (and cached) the first time."""
    judge = StridedJudge()
    try:
        with safe_open(path(), framework="pt") as file:
            metadata, tensors = file.metadata() or {}, {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118
        judge.load_state_dict(tensors)
        judge.metadata.update(metadata)
        return judge.eval().requires_grad_(False)
    except Exception:  # absent or unreadable: trained now
        started = time.perf_counter()
        print(f"training the third judge (once; kept in {path()}) ...", flush=True)
        judge = train()
        judge.metadata["accuracy"] = f"{accuracy(judge):.4f}"
        atomic_write(path(), safetensors_bytes(judge.state_dict(), metadata=judge.metadata))
        print(f"  {time.perf_counter() - started:.0f} s, test accuracy {judge.metadata['accuracy']}", flush=True)
        return judge


def features(judge: StridedJudge, images: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat(
            [judge.features(images[i : i + EVAL_BATCH].float()) for i in range(0, len(images), EVAL_BATCH)]
        )


def accuracy(judge: StridedJudge) -> float:
    test = load_mnist(DEFAULT_DATA_DIR, "test")
    with torch.inference_mode():
        logits = judge.out(features(judge, test.images))
    return (logits.argmax(1) == test.labels).double().mean().item()


def third_fid(judge: StridedJudge, images: torch.Tensor) -> float:
    """FID of generated images (N, 1, 28, 28) in [-1, 1] against the 10,000 test digits, on the third judge."""
    real = real_fits(judge, features).overall
    fake = feature_stats(features(judge, images).double())
    return frechet_distance(fake, FeatureStats(real.mean, real.cov, real.count))


def third_floor(judge: StridedJudge) -> float:
    """The third judge's FID of 2,000 real training digits, chosen as for the shipped judges' floor."""
    train_set = load_mnist(DEFAULT_DATA_DIR, "train")
    chosen = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))[:EVAL_SAMPLES]
    return third_fid(judge, train_set.images[chosen])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a saved run: its epochs' FID on all three judges")
    parser.add_argument("--epoch", type=int, help="default: every saved epoch")
    parser.add_argument("--root", type=Path, help="folder of run folders")
    args = parser.parse_args()
    judge = load_third_judge()
    floor = third_floor(judge)
    print(f"third judge: test accuracy {judge.metadata.get('accuracy', '?')}, floor FID {floor:.3f}")
    if not args.run:
        return
    from gan.lab.latent import sample
    from gan.scoring.metrics import EVAL_SEED, score_generator
    from gan.store.run import Run, load_generator

    run = Run.at(args.run, args.root)
    for epoch in [args.epoch] if args.epoch else run.epochs():
        G, _, _ = load_generator(run, epoch)
        scores, (images, _) = score_generator(G), sample(G, EVAL_SAMPLES, EVAL_SEED)
        third = third_fid(judge, images)
        print(
            f"epoch {epoch}: FID {scores.fid:.2f} / {scores.fid_second:.3f} (shipped judges), "
            f"{third:.3f} ({third / floor:.2f}x its floor) on the third"
        )


if __name__ == "__main__":
    main()
