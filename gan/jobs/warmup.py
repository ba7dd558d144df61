"""Work done ahead that a run's first training step would otherwise do: loading the MNIST training set, running the
networks forwards and backwards once (PyTorch prepares its convolution kernels for a shape the first time it meets
it: most of a first step's time on a CPU) and importing PyTorch's compiler package (torch.optim imports it when
the first optimiser is made, about two CPU-seconds). The app warms up for the quick start while its first page is
read. `python -m gan train` does not: its first step comes 2.9 s after the process starts, and a warm-up there
(its kernels prepared while the first thread builds the trainer) made it 0.04 to 0.1 s later, the two threads
preparing the same kernels on two cores at once.

Nothing here draws a random number: the networks are built on the meta device, given zero weights, and thrown
away, so a job building its own trainer at the same time (its weights drawn from the seeded global generator)
gets exactly the weights it would get alone. A warm-up that fails costs nothing: the job does the same work itself,
and reports its own errors.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import threading

import torch

from gan.config import Config
from gan.data import load_mnist
from gan.device import resolve_device, training_memory_format, use_bf16
from gan.losses import r1_penalty
from gan.models import build_discriminator, build_generator
from gan.presets import QUICK_START

EXIT_WAIT = 60.0  # seconds the interpreter's exit waits for a warm-up under way
_lock = threading.Lock()
_started = False
_done = threading.Event()


def warm_up(config: Config | None = None) -> None:
    """Run a first step's networks (the quick start's by default) once, and import what its optimisers need."""
    config = config or Config.for_preset(**QUICK_START)
    real = load_mnist().images[: config.batch_size]
    device = resolve_device(config.device)
    with torch.device("meta"):  # no weights drawn: the global random generator is left alone
        G, D = build_generator(config), build_discriminator(config)
    G, D = G.to_empty(device=device), D.to_empty(device=device)
    for tensor in (*G.state_dict().values(), *D.state_dict().values()):
        tensor.zero_()
    layout = training_memory_format(device)  # the kernels prepared are those of the trainer's layout
    G, D = G.to(memory_format=layout), D.to(memory_format=layout)
    z = torch.zeros(config.batch_size, config.latent_dim, device=device)
    y = torch.zeros(config.batch_size, dtype=torch.long, device=device) if config.conditional else None
    bf16 = use_bf16(config.precision, device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        fake = G(z, y)
        loss = D(real.to(device), y).float().mean() + D(fake, y).float().mean()
    loss.backward()
    if config.r1_gamma > 0:  # the step's R1 penalty, a double backward, in fp32 as the trainer takes it
        r1_penalty(D, real.to(device), y).backward()
    importlib.import_module("torch._dynamo")  # what torch.optim imports at its first optimiser: last, so that a
    # trainer being built meanwhile imports it while this thread's kernels are prepared, both cores busy


def start_warm_up() -> None:
    """Warm up for the quick start, once per process, on a background thread."""
    global _started
    with _lock:
        if _started:
            return
        _started = True
    thread = threading.Thread(target=_quietly, name="gan-warm-up", daemon=True)
    thread.start()
    # A daemon thread stopped by the interpreter's exit inside PyTorch aborts the process ("terminate called without
    # an active exception"): the server stopped by Ctrl-C or SIGTERM lets the warm-up end first (seconds).
    atexit.register(thread.join, EXIT_WAIT)


def wait_until_warm(timeout: float | None = None) -> bool:
    """Wait for the warm-up started by `start_warm_up` to end (for benchmarks); False if it has not, in time."""
    return _done.wait(timeout)


def _quietly() -> None:
    try:
        with contextlib.suppress(Exception):
            warm_up()
    finally:
        _done.set()
