"""Training throughput per preset and batch size: images/s, seconds per epoch, and achieved GFLOP/s against
a matrix-multiply peak measured in the same run.

    python bench/throughput.py                      # every preset at its default and a few other batch sizes
    python bench/throughput.py --preset classic --batch-sizes 128 512 --repeats 5
    python bench/throughput.py --device cuda --batch-sizes 64 512 2048   # on an NVIDIA GPU

FLOPs are counted by torch.utils.flop_counter over one real training step (G forward and backward, D on real
and fake, forward and backward), so the figure follows the models as they change.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan.config import PRESETS, Config  # noqa: E402
from gan.data import load_mnist  # noqa: E402
from gan.device import configure_threads, resolve_device, use_bf16  # noqa: E402
from gan.train import Trainer  # noqa: E402


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that a clock read after it times that work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device, repeats: int = 5) -> float:
    """GFLOP/s of a large square matrix multiply: the most this machine does for that precision."""
    size = 8192 if device.type == "cuda" else 2048
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    a @ b  # warm-up
    timings = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        a @ b
        synchronize(device)
        timings.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(timings) / 1e9


def flops_per_image(trainer: Trainer) -> float:
    """FLOPs of an ordinary step: the first step is also a lazy R1 step (every 16th), whose double backward the
    counter cannot follow, so the count starts at the second."""
    real, labels = trainer.data.images[: trainer.config.batch_size], trainer.data.labels[: trainer.config.batch_size]
    trainer.train_step(real, labels)
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(real, labels)
    return counter.get_total_flops() / trainer.config.batch_size


def measure(config: Config, data, steps: int, repeats: int) -> dict[str, float]:
    trainer = Trainer(config, data)
    flops = flops_per_image(trainer)
    real, labels = trainer.data.images[: config.batch_size], trainer.data.labels[: config.batch_size]  # on its device
    for _ in range(3):  # warm-up: allocator, oneDNN's or cuDNN's kernel selection
        trainer.train_step(real, labels)
    rates = []
    for _ in range(repeats):
        synchronize(trainer.device)
        started = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(real, labels)
        synchronize(trainer.device)
        rates.append(steps * config.batch_size / (time.perf_counter() - started))
    rate = statistics.median(rates)
    return {
        "images_per_sec": rate,
        "seconds_per_epoch": len(data) / rate,
        "gflops": flops * rate / 1e9,
        "mflop": flops / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, nargs="*", default=list(PRESETS))
    parser.add_argument("--batch-sizes", type=int, nargs="*", help="default: the preset's default, 64 and 512")
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        nargs="*",
        help="default: the preset's own (auto: bf16 where this machine computes it)",
    )
    parser.add_argument("--steps", type=int, default=20, help="steps per timed repetition")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()

    threads = configure_threads()
    device = resolve_device(args.device)
    data = load_mnist()
    own = {
        preset: "bf16" if use_bf16(Config.for_preset(preset).precision, device) else "fp32" for preset in args.preset
    }
    runs = {preset: args.precision or [own[preset]] for preset in args.preset}  # "auto" as this machine reads it
    # only the precisions timed: an emulated bf16 matmul (a CPU without bf16) takes minutes
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    chosen = sorted({p for precisions in runs.values() for p in precisions})
    peaks = {name: matmul_peak(dtypes[name], device) for name in chosen}
    measured = ", ".join(f"{name} {peak:,.0f} GFLOP/s" for name, peak in peaks.items())
    where = (
        f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
        if device.type == "cuda"
        else f"{threads} threads, {torch.backends.cpu.get_cpu_capability()}"
    )
    print(f"torch {torch.__version__}, {where}; matmul peak {measured} (median of 5)")
    print(
        f"{'preset':<8} {'precision':<9} {'batch':>5} {'MFLOP/img':>9} {'images/s':>9} {'s/epoch':>8} "
        f"{'GFLOP/s':>8} {'of peak':>7}"
    )
    for preset in args.preset:
        default = Config.for_preset(preset)
        for precision in runs[preset]:
            for batch_size in args.batch_sizes or sorted({default.batch_size, 64, 512}):
                config = default.replace(batch_size=batch_size, precision=precision, evaluate=False, device=args.device)
                result = measure(config, data, args.steps, args.repeats)
                marker = "*" if batch_size == default.batch_size and precision == own[preset] else " "
                print(
                    f"{preset:<8} {precision:<9} {batch_size:>5}{marker}{result['mflop']:>9.1f} "
                    f"{result['images_per_sec']:>9,.0f} {result['seconds_per_epoch']:>8.1f} "
                    f"{result['gflops']:>8.1f} {result['gflops'] / peaks[precision]:>7.0%}"
                )
    print("* the preset's default; median of", args.repeats, "repetitions of", args.steps, "steps")


if __name__ == "__main__":
    main()
