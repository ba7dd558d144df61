"""The GAN step and the training loop: per batch, `d_steps` D updates (usually 1) and one G update; the losses.

The loop does no file or UI work. It reports through callbacks (`on_step`, `on_epoch_end`, `on_change`) and obeys
a `Control` checked before every step: stop, pause, settings changed mid-run, and single steps of one player while
paused, so a request takes effect within one step. All randomness comes from seeded generators whose state is part
of `state_dict()`, as are the settings changed so far, so a resumed run continues bit for bit.

Losses, on D's raw outputs (logits), D minimising `discriminator_loss` and G minimising `generator_loss`:

- bce:        D: -log D(x) - log(1 - D(G(z)));  G: -log D(G(z)) (non-saturating: strong gradients when D wins)
- saturating: D as bce;  G: log(1 - D(G(z))), the original minimax objective, whose gradient vanishes when D wins
- hinge:      D: max(0, 1 - D(x)) + max(0, 1 + D(G(z)));  G: -D(G(z))
- lsgan:      D: (D(x) - 1)^2 / 2 + D(G(z))^2 / 2;  G: (D(G(z)) - 1)^2 / 2 (Mao et al., 2017)
- wgan-gp:    D is a critic: D(G(z)) - D(x) + 10 (|grad D(x_mix)| - 1)^2;  G: -D(G(z)) (Gulrajani et al., 2017)

Epochs, counted one way: `Trainer.epoch` and `StepMetrics.epoch` are the epochs completed before the step, which is
also the 0-based index of the epoch in progress; `on_epoch_end(epochs_done)`, saved epoch files and the history's
epoch records count completed epochs, from 1. A UI shows the epoch in progress as `epoch + 1`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan.config import CHANGEABLE, Config, ConfigError
from gan.data import NUM_CLASSES, Dataset, batches, batches_per_epoch
from gan.models import build_discriminator, build_generator
from gan.store.history import ChangeRecord

FIXED_SAMPLES = 100  # a 10 x 10 grid; for conditional presets row r shows digit r
# Adam bounds each update, so a too-high learning rate rarely gives NaN: the logits grow without limit instead.
# A healthy GAN's losses stay below ~20; past this the run has exploded and will not recover.
EXPLODED_LOSS = 1e5
GP_WEIGHT = 10.0  # lambda of the wgan-gp gradient penalty
# R1 is applied lazily (Karras et al., 2020): every R1_EVERY steps, scaled by R1_EVERY, in its own D update. The
# penalty changes slowly, so this costs a sixteenth of a double backward per step for the same effect.
R1_EVERY = 16
SHIFT = 3  # pixels of the translate augmentation, an eighth of the image (Zhao et al., 2020)
PLAYERS = ("dg", "d", "g")  # a full step, D's part only, G's part only
ChangeCallback = Callable[[ChangeRecord], None]


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
    # Mean D(x) and D(G(z)) (before the G update) as beliefs that an image is real, from 0 to 1: the sigmoid of the
    # logit, or for lsgan the output itself (its targets are 1 and 0). None for wgan-gp, whose critic scores are
    # not probabilities: its `wasserstein` estimate, mean D(x) - mean D(G(z)), is recorded instead.
    d_real: float | None
    d_fake: float | None
    grad_norm_d: float  # 0 when D was not updated (a G-only step)
    grad_norm_g: float  # 0 when G was not updated (a D-only step)
    images_per_sec: float
    seconds: float  # training seconds so far (pauses excluded)
    wasserstein: float | None = None
    players: str = "dg"  # which players this step updated: "dg", or "d" / "g" for a step-through


@dataclass(frozen=True)
class StepLosses:
    """What one step measured, as tensors where it is still to be read off (`.item()` once, at the end)."""

    loss_d: torch.Tensor
    loss_g: torch.Tensor
    logits_real: torch.Tensor
    logits_fake: torch.Tensor
    grad_norm_d: float
    grad_norm_g: float


class Control:
    """Thread-safe requests, sent by a UI or a signal handler, read by the loop before each step: stop, pause and
    resume, settings to change, and single steps of one player (taken even while paused)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._work = threading.Condition()
        self._changes: deque[tuple[str, Any]] = deque()
        self._steps: deque[str] = deque()

    def _wake(self) -> None:
        with self._work:
            self._work.notify_all()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so that it can see the stop
        self._wake()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()
        self._wake()

    def change(self, field: str, value: Any) -> None:
        """Ask for a setting to change before the next step (applied at once if paused); checked by the caller."""
        if field not in CHANGEABLE:
            raise ConfigError(field, value, f"not a setting that can change mid-run; those are {', '.join(CHANGEABLE)}")
        with self._work:
            self._changes.append((field, value))
            self._work.notify_all()

    def step(self, players: str) -> None:
        """Ask for one step of `players` ("d", "g" or "dg") on the next batch; meant for a paused loop."""
        if players not in PLAYERS:
            raise ValueError(f"players={players!r} is not allowed: one of {', '.join(PLAYERS)}")
        with self._work:
            self._steps.append(players)
            self._work.notify_all()

    def take_changes(self) -> list[tuple[str, Any]]:
        with self._work:
            changes = list(self._changes)
            self._changes.clear()
            return changes

    def take_step(self) -> str | None:
        with self._work:
            return self._steps.popleft() if self._steps else None

    @property
    def pending_steps(self) -> int:
        with self._work:
            return len(self._steps)

    def wait_for_work(self) -> None:
        """Block while paused with nothing to do: return on resume, stop, a change or a step request."""
        with self._work:
            self._work.wait_for(lambda: self._running.is_set() or bool(self._changes) or bool(self._steps))

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


@functools.cache
def _cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic: x86's AVX512-BF16 or AMX, Arm's BF16 (Linux's /proc/cpuinfo flags).
    Elsewhere (no such file, e.g. macOS) the answer is no, and training stays in fp32: the safe side."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text(errors="replace").split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bf16 natively. Without it (most laptop CPUs: x86 with AVX2 only) PyTorch emulates
    bf16 and a convolutional training step runs over ten times slower than in fp32 (measured: 25 against 296
    images/s for cdcgan on a 2-core AVX2 EPYC); with it bf16 is about 1.3x faster than fp32."""
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
    """D's loss on its raw outputs; for wgan-gp without the gradient penalty (see `gradient_penalty`)."""
    if loss == "hinge":
        return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()
    if loss == "lsgan":
        return 0.5 * (logits_real - 1).square().mean() + 0.5 * logits_fake.square().mean()
    if loss == "wgan-gp":
        return logits_fake.mean() - logits_real.mean()
    # bce and saturating: maximise log D(x) + log(1 - D(G(z))), written with softplus for stability
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def generator_loss(loss: str, logits_fake: torch.Tensor) -> torch.Tensor:
    if loss in ("hinge", "wgan-gp"):
        return -logits_fake.mean()
    if loss == "lsgan":
        return 0.5 * (logits_fake - 1).square().mean()
    if loss == "saturating":
        # minimise log(1 - D(G(z))) = -softplus(logit): its gradient, -D(G(z)), vanishes as D rejects the fakes
        return -F.softplus(logits_fake).mean()
    # non-saturating: maximise log D(G(z)) rather than minimise log(1 - D(G(z)))
    return F.softplus(-logits_fake).mean()


def gradient_penalty(
    D: nn.Module, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None, mix: torch.Tensor
) -> torch.Tensor:
    """Mean (|grad_x D(x)| - 1)^2 at x = mix * real + (1 - mix) * fake, with `mix` (B, 1, 1, 1) in [0, 1]."""
    mixed = (mix * real + (1 - mix) * fake).requires_grad_(True)
    scores = D(mixed, y).float()
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)  # (B, 1, 28, 28)
    norms = (grad.flatten(1).square().sum(1) + 1e-12).sqrt()  # the epsilon keeps the norm differentiable at 0
    return (norms - 1).square().mean()


def r1_penalty(D: nn.Module, real: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Mean |grad_x D(x)|^2 on real images (Mescheder et al., 2018): D is pushed to be flat where the data is, so
    it cannot keep sharpening its boundary on the real digits and G's updates stop overshooting."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real, y).float().sum(), real, create_graph=True)
    return grad.flatten(1).square().sum(1).mean()


def translate(images: torch.Tensor, generator: torch.Generator, shift: int = SHIFT) -> torch.Tensor:
    """Each image moved by its own random whole-pixel offset in [-shift, shift] both ways, the uncovered border
    filled with the background (-1). Differentiable, so G learns through it: D cannot memorise where strokes sit,
    and G gains nothing by drawing shifted digits, since D sees real digits shifted alike (Zhao et al., 2020)."""
    count, _, height, width = images.shape
    offsets = torch.randint(-shift, shift + 1, (2, count, 1, 1), generator=generator).to(images.device)
    padded = F.pad(images, (shift, shift, shift, shift), value=-1.0)
    rows = torch.arange(height, device=images.device).view(1, height, 1) + shift + offsets[0]
    cols = torch.arange(width, device=images.device).view(1, 1, width) + shift + offsets[1]
    index = torch.arange(count, device=images.device).view(count, 1, 1)
    return padded[index, 0, rows, cols].unsqueeze(1)


def d_belief(loss: str, logits: torch.Tensor) -> torch.Tensor | None:
    """D's outputs as beliefs that images are real (0 to 1), for charts; None for a wgan-gp critic."""
    if loss == "wgan-gp":
        return None
    if loss == "lsgan":
        return logits  # its targets are 1 (real) and 0 (fake): the output reads as a belief already
    return torch.sigmoid(logits)


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """Move an exponential moving average of `model` towards it after update `step` (0-based); buffers are copied.
    Warm-up: early on, the average follows the model closely instead of dragging in the random initial weights."""
    decay = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(list(average.parameters()), list(model.parameters()), 1 - decay)
    for kept, buffer in zip(average.buffers(), model.buffers()):
        kept.copy_(buffer)


class Trainer:
    """Owns G, D, the EMA copy of G, the optimisers, the noise generator and the position in training."""

    def __init__(self, config: Config, data: Dataset, device: torch.device | None = None):
        self.config = config
        self.device = device or resolve_device(config.device)
        self.bf16 = use_bf16(config.precision, self.device)  # decided once: a run's precision never changes mid-run
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
        self.schedule = config.scheduled_changes
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
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, real: torch.Tensor, labels: torch.Tensor, players: str = "dg") -> StepMetrics:
        """One step on a batch: `d_steps` D updates (each with fresh noise) and one G update, or only D's part
        ("d") or G's part ("g"). The player not updated is still measured: its loss against the other."""
        started = time.perf_counter()
        y = labels if self.config.conditional else None
        update_d, update_g = "d" in players, "g" in players
        fake, logits_real, logits_fake, loss_d, grad_norm_d = self._update_d(real, y, update_d, update_g)
        loss_g, grad_norm_g = self._update_g(fake, y, update_g)
        losses = StepLosses(loss_d, loss_g, logits_real, logits_fake, grad_norm_d, grad_norm_g)
        return self._count_step(real.size(0), time.perf_counter() - started, players, losses)

    def _update_d(
        self, real: torch.Tensor, y: torch.Tensor | None, update_d: bool, update_g: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """(1) Update D: maximise log D(x) + log(1 - D(G(z))) (or the chosen loss), d_steps times. Returns the last
        fakes (in G's graph when G updates next), D's logits on the real and fake batch, D's loss and gradient norm."""
        loss_name, grad_norm_d = self.config.loss, 0.0
        self.D.requires_grad_(update_d)
        # A D-only step leaves all of G as it was: its batch-norm statistics too, which drawing the fakes would move.
        g_buffers = None if update_g else [buffer.clone() for buffer in self.G.buffers()]
        for _ in range(self.config.discriminator_steps if update_d else 1):
            z = torch.randn(real.size(0), self.config.latent_dim, generator=self.noise).to(self.device)
            with self._autocast(), torch.set_grad_enabled(update_g):
                fake = self.G(z, y)
            with self._autocast(), torch.set_grad_enabled(update_d):
                logits_real = self.D(self._seen_by_d(real), y).float()
                logits_fake = self.D(self._seen_by_d(fake.detach()), y).float()
            loss_d = discriminator_loss(loss_name, logits_real, logits_fake)
            if loss_name == "wgan-gp" and update_d:
                mix = torch.rand(real.size(0), 1, 1, 1, generator=self.noise).to(self.device)
                loss_d = loss_d + GP_WEIGHT * gradient_penalty(self.D, real, fake.detach().float(), y, mix)
            if update_d:
                self.opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                self._check_finite("D", loss_d)
                grad_norm_d = _grad_norm(self.D)
                self.opt_d.step()
        if update_d and self.config.r1_gamma > 0 and self.step % R1_EVERY == 0:
            self._regularise_d(real, y)
        if g_buffers is not None:
            for buffer, saved in zip(self.G.buffers(), g_buffers):
                buffer.copy_(saved)
        return fake, logits_real, logits_fake, loss_d, grad_norm_d

    def _seen_by_d(self, images: torch.Tensor) -> torch.Tensor:
        return translate(images, self.noise) if self.config.augment == "translate" else images

    def _regularise_d(self, real: torch.Tensor, y: torch.Tensor | None) -> None:
        """A lazy R1 update of D, in fp32: the penalty's double backward is where bf16's rounding would show."""
        penalty = 0.5 * self.config.r1_gamma * R1_EVERY * r1_penalty(self.D, real, y)
        self.opt_d.zero_grad(set_to_none=True)
        penalty.backward()
        self._check_finite("D", penalty)
        self.opt_d.step()

    def _update_g(self, fake: torch.Tensor, y: torch.Tensor | None, update_g: bool) -> tuple[torch.Tensor, float]:
        """(2) Update G: maximise log D(G(z)); D's weights are frozen so their gradients are not computed."""
        self.D.requires_grad_(False)
        with self._autocast(), torch.set_grad_enabled(update_g):
            logits_gen = self.D(self._seen_by_d(fake), y).float()
        loss_g = generator_loss(self.config.loss, logits_gen)
        if not update_g:
            return loss_g, 0.0
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self._check_finite("G", loss_g)
        grad_norm_g = _grad_norm(self.G)
        self.opt_g.step()
        self._update_ema()
        return loss_g, grad_norm_g

    def _count_step(self, images: int, elapsed: float, players: str, losses: StepLosses) -> StepMetrics:
        """Advance the step counters and the smoothed speed, and report the step."""
        self.step += 1
        self.batch += 1
        self.images_seen += images
        self.seconds += elapsed
        rate = images / max(elapsed, 1e-9)
        self._rate = rate if self._rate == 0 else 0.9 * self._rate + 0.1 * rate
        loss_name = self.config.loss
        belief_real, belief_fake = d_belief(loss_name, losses.logits_real), d_belief(loss_name, losses.logits_fake)
        critic = losses.logits_real.mean() - losses.logits_fake.mean() if loss_name == "wgan-gp" else None
        return StepMetrics(
            step=self.step,
            epoch=self.epoch,
            batch=self.batch,
            loss_d=losses.loss_d.item(),
            loss_g=losses.loss_g.item(),
            d_real=None if belief_real is None else belief_real.mean().item(),
            d_fake=None if belief_fake is None else belief_fake.mean().item(),
            grad_norm_d=losses.grad_norm_d,
            grad_norm_g=losses.grad_norm_g,
            images_per_sec=self._rate,
            seconds=self.seconds,
            wasserstein=critic.item() if critic is not None else None,
            players=players,
        )

    def _check_finite(self, network: str, loss: torch.Tensor) -> None:
        value = loss.item()
        if not math.isfinite(value) or abs(value) > EXPLODED_LOSS:
            raise TrainingDiverged(
                f"the {network} loss became {value:.4g} at step {self.step + 1} (epoch {self.epoch + 1}); "
                "training stopped before applying it. Lower the learning rates (lr_g, lr_d) or try loss=hinge."
            )

    def _update_ema(self) -> None:  # after each G update
        update_average(self.G_ema, self.G, self.config.ema_decay, self.step)

    def run(
        self,
        control: Control | None = None,
        on_step: Callable[[StepMetrics], None] | None = None,
        on_epoch_end: Callable[[int], None] | None = None,
        max_seconds: float | None = None,
        on_change: ChangeCallback | None = None,
        before_requested_step: Callable[[str], None] | None = None,
    ) -> str:
        """Train until the configured epochs are done ("finished"), a stop ("stopped") or the time budget
        ("time_budget"). `on_epoch_end(n)` is called with the number of epochs completed, `on_change` with each
        setting changed (requested through `control` or scheduled by the config's `set_at`), and
        `before_requested_step(players)` just before a step asked for through `control.step`."""
        control = control or Control()
        self.G.train()
        self.D.train()
        while not self.finished:
            epoch_batches = batches(
                self.data, self.config.batch_size, self.config.seed, self.epoch, self.batch, self.config.steps_per_epoch
            )
            for real, labels in epoch_batches:
                players, requested = self._next_step(control, max_seconds, on_change)
                if players in ("stopped", "time_budget"):
                    return players
                if requested and before_requested_step:
                    before_requested_step(players)
                full = players == "dg"
                metrics = self.train_step(real, labels) if full else self.train_step(real, labels, players)
                if on_step:
                    on_step(metrics)
            self.epoch += 1
            self.batch = 0
            if on_epoch_end:
                on_epoch_end(self.epoch)
        return "finished"

    def _next_step(
        self, control: Control, max_seconds: float | None, on_change: ChangeCallback | None
    ) -> tuple[str, bool]:
        """Wait while paused, applying changes as they come; the players of the next step and whether it was
        requested through `control.step`, or why to end."""
        while True:
            control.wait_for_work()
            for field, value in control.take_changes():
                self._apply_change(field, value, on_change)
            for scheduled in self.schedule:
                if scheduled.step == self.step:
                    self._apply_change(scheduled.field, scheduled.value, on_change)
            if control.stop_requested:
                return "stopped", False
            if max_seconds is not None and self.seconds >= max_seconds:
                return "time_budget", False
            players = control.take_step()
            if players is not None:
                return players, True
            if not control.paused:
                return "dg", False

    def _apply_change(self, field: str, value: Any, on_change: ChangeCallback | None) -> ChangeRecord | None:
        """Set a changeable setting for the steps to come; a value equal to the current one changes nothing
        (so a scheduled change met again after a resume is not recorded twice)."""
        old = getattr(self.config, field)
        if old == value and type(old) is type(value):
            return None
        try:
            self.config = self.config.replace(**{field: value})
        except ConfigError:
            return None  # callers check values before asking; a bad one must not end the run
        self._sync_settings()
        change = ChangeRecord(self.step, field, old, value)
        if on_change:
            on_change(change)
        return change

    def apply_change(self, field: str, value: Any) -> ChangeRecord | None:
        """Change a setting now, between steps (the loop is not running): for scripts and tests."""
        if field not in CHANGEABLE:
            raise ConfigError(field, value, f"not a setting that can change mid-run; those are {', '.join(CHANGEABLE)}")
        self.config.replace(**{field: value})  # raises on a bad value
        return self._apply_change(field, value, None)

    def _sync_settings(self) -> None:
        for group in self.opt_g.param_groups:
            group["lr"] = self.config.lr_g
        for group in self.opt_d.param_groups:
            group["lr"] = self.config.lr_d

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
            "settings": self.config.changeable(),  # as changed mid-run so far
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
        settings = state.get("settings") or {}  # absent from checkpoints written before settings could change
        self.config = self.config.replace(**{name: settings[name] for name in CHANGEABLE if name in settings})
        self._sync_settings()


def _grad_norm(module: nn.Module) -> float:
    grads = [parameter.grad for parameter in module.parameters() if parameter.grad is not None]
    return torch.nn.utils.get_total_norm(grads).item() if grads else 0.0
