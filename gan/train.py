"""The GAN step and the training loop: one D step and one G step per batch, nothing else.

The loop does no file or UI work. It reports through callbacks (`on_step`, `on_epoch_end`) and obeys a
`Control` (stop, pause) checked before every step, so a request takes effect within one step. All randomness
comes from seeded generators whose state is part of `state_dict()`, so a resumed run continues bit for bit.

Epochs, counted one way: `Trainer.epoch` and `StepMetrics.epoch` are the epochs completed before the step, which is
also the 0-based index of the epoch in progress; `on_epoch_end(epochs_done)`, saved epoch files and the history's
epoch records count completed epochs, from 1. A UI shows the epoch in progress as `epoch + 1`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan.config import Config
from gan.data import NUM_CLASSES, Dataset, batches, batches_per_epoch
from gan.models import build_discriminator, build_generator

FIXED_SAMPLES = 100  # a 10 x 10 grid; for conditional presets row r shows digit r
# Adam bounds each update, so a too-high learning rate rarely gives NaN: the logits grow without limit instead.
# A healthy GAN's losses stay below ~20; past this the run has exploded and will not recover.
EXPLODED_LOSS = 1e5


class DeviceUnavailable(RuntimeError):
    """The config asks for a device this machine does not have."""


class TrainingDiverged(RuntimeError):
    """The losses stopped being finite numbers; the weights of that step were not applied."""


@dataclass(frozen=True)
class StepMetrics:
    step: int  # global steps done, this one included
    epoch: int  # 0-based epoch this step belongs to
    batch: int  # batches done in this epoch, this one included
    loss_d: float
    loss_g: float
    d_real: float  # mean D(x): the discriminator's belief that real digits are real
    d_fake: float  # mean D(G(z)) before the G update
    grad_norm_d: float
    grad_norm_g: float
    images_per_sec: float
    seconds: float  # training seconds so far (pauses excluded)


class Control:
    """Thread-safe stop and pause requests, sent by a UI or a signal handler, read by the loop."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so that it can see the stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> None:
        self._running.wait()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("device=cuda was asked for, but no CUDA GPU is available; use device=auto or cpu")
    return torch.device(name)


def configure_threads() -> int:
    """Use every core this process may run on (containers often allow fewer than the machine has)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(cores)
    return cores


def fixed_noise(config: Config, count: int = FIXED_SAMPLES) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The run's fixed noise (and labels), a pure function of the seed, so every epoch's grid is comparable."""
    generator = torch.Generator().manual_seed(config.seed + 2)
    z = torch.randn(count, config.latent_dim, generator=generator)
    labels = torch.arange(count) // (count // NUM_CLASSES) % NUM_CLASSES if config.conditional else None
    return z, labels


def discriminator_loss(loss: str, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()
    # maximise log D(x) + log(1 - D(G(z))), written with softplus for stability
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def generator_loss(loss: str, logits_fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return -logits_fake.mean()
    # non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z)))
    return F.softplus(-logits_fake).mean()


class Trainer:
    """Owns G, D, the EMA copy of G, the optimisers, the noise generator and the position in training."""

    def __init__(self, config: Config, data: Dataset, device: torch.device | None = None):
        self.config = config
        self.device = device or resolve_device(config.device)
        self.data = Dataset(data.images.to(self.device), data.labels.to(self.device))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.G = build_generator(config).to(self.device)
            self.D = build_discriminator(config).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr_d, betas=betas)
        self.noise = torch.Generator().manual_seed(config.seed + 1)
        self.fixed_z, self.fixed_labels = fixed_noise(config)
        self.epoch = 0  # the epoch in progress (0-based); equals config.epochs when training is done
        self.batch = 0  # batches done in the epoch in progress
        self.step = 0
        self.images_seen = 0
        self.seconds = 0.0
        self._rate = 0.0

    @property
    def steps_per_epoch(self) -> int:
        return batches_per_epoch(len(self.data), self.config.batch_size, self.config.steps_per_epoch)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.epochs

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, real: torch.Tensor, labels: torch.Tensor) -> StepMetrics:
        started = time.perf_counter()
        loss_name = self.config.loss
        y = labels if self.config.conditional else None
        z = torch.randn(real.size(0), self.config.latent_dim, generator=self.noise).to(self.device)

        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        self.D.requires_grad_(True)
        with self._autocast():
            fake = self.G(z, y)
            logits_real = self.D(real, y).float()
            logits_fake = self.D(fake.detach(), y).float()
        loss_d = discriminator_loss(loss_name, logits_real, logits_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self._check_finite("D", loss_d)
        grad_norm_d = _grad_norm(self.D)
        self.opt_d.step()

        # (2) Update G: maximise log D(G(z)); D's weights are frozen so their gradients are not computed
        self.D.requires_grad_(False)
        with self._autocast():
            logits_gen = self.D(fake, y).float()
        loss_g = generator_loss(loss_name, logits_gen)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self._check_finite("G", loss_g)
        grad_norm_g = _grad_norm(self.G)
        self.opt_g.step()
        self._update_ema()

        self.step += 1
        self.batch += 1
        self.images_seen += real.size(0)
        elapsed = time.perf_counter() - started
        self.seconds += elapsed
        rate = real.size(0) / max(elapsed, 1e-9)
        self._rate = rate if self._rate == 0 else 0.9 * self._rate + 0.1 * rate
        return StepMetrics(
            step=self.step,
            epoch=self.epoch,
            batch=self.batch,
            loss_d=loss_d.item(),
            loss_g=loss_g.item(),
            d_real=torch.sigmoid(logits_real).mean().item(),
            d_fake=torch.sigmoid(logits_fake).mean().item(),
            grad_norm_d=grad_norm_d,
            grad_norm_g=grad_norm_g,
            images_per_sec=self._rate,
            seconds=self.seconds,
        )

    def _check_finite(self, network: str, loss: torch.Tensor) -> None:
        value = loss.item()
        if not math.isfinite(value) or abs(value) > EXPLODED_LOSS:
            raise TrainingDiverged(
                f"the {network} loss became {value:.4g} at step {self.step + 1} (epoch {self.epoch + 1}); "
                "training stopped before applying it. Lower the learning rates (lr_g, lr_d) or try loss=hinge."
            )

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up: early on, the average follows G closely instead of dragging in the random initial weights.
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        ema_params, params = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema_params, params, 1 - decay)
        for ema_buffer, buffer in zip(self.G_ema.buffers(), self.G.buffers()):
            ema_buffer.copy_(buffer)

    def run(
        self,
        control: Control | None = None,
        on_step: Callable[[StepMetrics], None] | None = None,
        on_epoch_end: Callable[[int], None] | None = None,
        max_seconds: float | None = None,
    ) -> str:
        """Train until the configured epochs are done ("finished"), a stop ("stopped") or the time budget
        ("time_budget"). `on_epoch_end(n)` is called with the number of epochs completed."""
        control = control or Control()
        self.G.train()
        self.D.train()
        while not self.finished:
            epoch_batches = batches(
                self.data, self.config.batch_size, self.config.seed, self.epoch, self.batch, self.config.steps_per_epoch
            )
            for real, labels in epoch_batches:
                control.wait_while_paused()
                if control.stop_requested:
                    return "stopped"
                if max_seconds is not None and self.seconds >= max_seconds:
                    return "time_budget"
                metrics = self.train_step(real, labels)
                if on_step:
                    on_step(metrics)
            self.epoch += 1
            self.batch = 0
            if on_epoch_end:
                on_epoch_end(self.epoch)
        return "finished"

    @torch.inference_mode()
    def sample_fixed(self) -> torch.Tensor:
        """The fixed noise drawn by the EMA generator, (100, 1, 28, 28) in [-1, 1], on the CPU."""
        z = self.fixed_z.to(self.device)
        labels = None if self.fixed_labels is None else self.fixed_labels.to(self.device)
        return self.G_ema(z, labels).float().cpu()

    def position(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "images_seen": self.images_seen,
            "seconds": self.seconds,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimiser moments, RNG state, position."""
        return {
            "G": self.G.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": {"noise": self.noise.get_state()},
            "position": self.position(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.noise.set_state(state["rng"]["noise"])
        position = state["position"]
        self.epoch, self.batch, self.step = int(position["epoch"]), int(position["batch"]), int(position["step"])
        self.images_seen, self.seconds = int(position["images_seen"]), float(position["seconds"])


def _grad_norm(module: nn.Module) -> float:
    grads = [parameter.grad for parameter in module.parameters() if parameter.grad is not None]
    return torch.nn.utils.get_total_norm(grads).item() if grads else 0.0
