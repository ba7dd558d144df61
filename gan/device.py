"""Where training runs and in what precision: the device asked for, whether it computes bf16 natively (read from
Linux's /proc/cpuinfo flags on a CPU), and how many CPU threads to use."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch


class DeviceUnavailable(RuntimeError):
    """The config asks for a device this machine does not have."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("device=cuda was asked for, but no CUDA GPU is available; use device=auto or cpu")
    return torch.device(name)


@functools.cache
def _cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic: x86's AVX512-BF16 or AMX, Arm's BF16 (Linux's /proc/cpuinfo flags).
    Elsewhere (no such file, e.g. macOS) the answer is no, and training stays in fp32: the safe side. On x86 the
    flags count only while PyTorch's kernels may use AVX-512: `ATEN_CPU_CAPABILITY=avx2` (with
    `ONEDNN_MAX_CPU_ISA=AVX2`, a laptop-class CPU imitated on a faster one) leaves bf16 emulated, as on that laptop."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text(errors="replace").split())
    except OSError:
        return False
    if flags & {"avx512_bf16", "amx_bf16"}:
        return torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return "bf16" in flags


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bf16 natively. Without it (most laptop CPUs: x86 with AVX2 only) PyTorch emulates
    bf16 and a convolutional training step runs over ten times slower than in fp32; with it bf16 is about 1.3x
    faster (the figures: bench/README.md, "Throughput")."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and _cpu_computes_bf16()


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether training runs under bf16 autocast: "auto" where the device computes bf16 natively, else as asked."""
    return native_bf16(device) if precision == "auto" else precision == "bf16"


def inference_bf16(precision: str) -> bool:
    """Whether a saved run's networks (loaded on the CPU) draw samples and maps under bf16 autocast: where the CPU
    computes bf16 and the run did not ask for fp32. Emulated bf16 would only be slower; fp32 draws the same digits."""
    return precision != "fp32" and native_bf16(torch.device("cpu"))


def training_memory_format(device: torch.device) -> torch.memory_format:
    """How the training copies of G and D lay out their convolution weights. On a CPU channels-last lets oneDNN
    skip reordering them at every call: 12% more images a second for the default preset and 20% for the quick
    start on a 2-core AVX2 CPU. The copies that draw samples and score stay in the standard layout, so a saved
    epoch draws, from its file, exactly the pixels it drew while training."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def configure_threads() -> int:
    """Use every core this process may run on (containers often allow fewer than the machine has)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(cores)
    return cores
