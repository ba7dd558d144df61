"""The GAN step and the training loop: per batch, `d_steps` D updates (usually 1) and one G update.

The loop does no file or UI work. It reports through callbacks (`on_step`, `on_epoch_end`, `on_change`) and obeys
a `Control` checked before every step: stop, pause, settings changed mid-run, and single steps of one player while
paused, so a request takes effect within one step. All randomness comes from seeded generators whose state is part
of `state_dict()`, as are the settings changed so far, so a resumed run continues bit for bit.

Losses and penalties live in `gan.losses`, the `Control` in `gan.control`, device and precision in `gan.device`.

Epochs, counted one way: `Trainer.epoch` and `StepRecord.epoch` are the epochs completed before the step, which is
also the 0-based index of the epoch in progress; `on_epoch_end(epochs_done)`, saved epoch files and the history's
epoch records count completed epochs, from 1. A UI shows the epoch in progress as `epoch + 1`.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import Any

import torch
from torch import nn

from gan.config import CHANGEABLE, Config, ConfigError, check_changeable
from gan.control import Control, NextStep, Outcome
from gan.data import Dataset, batches, batches_per_epoch
from gan.device import resolve_device, training_memory_format, use_bf16
from gan.ema import fixed_noise, update_average
from gan.losses import discriminator_loss, generator_loss, gradient_penalty, r1_penalty, translate
from gan.models import build_discriminator, build_generator
from gan.store.history import ChangeRecord, Player, StepRecord
from gan.substeps import ShownStep, StepClock, StepLosses, SubStep, SubStepResult, shown_step

# Adam bounds each update, so a too-high learning rate rarely gives NaN: the logits grow without limit instead.
# A healthy GAN's losses stay below ~20; past this the run has exploded and will not recover.
EXPLODED_LOSS = 1e5
GP_WEIGHT = 10.0  # lambda of the wgan-gp gradient penalty
# R1 is applied lazily (Karras et al., 2020): every R1_EVERY steps, scaled by R1_EVERY, in its own D update. The
# penalty changes slowly, so this costs a sixteenth of a double backward per step for the same effect.
R1_EVERY = 16
ChangeCallback = Callable[[ChangeRecord], None]


class TrainingDiverged(RuntimeError):
    """The losses stopped being finite numbers; the weights of that step were not applied."""


class Trainer:
    """Owns G, D, the EMA copy of G, the optimisers, the noise generator and the position in training."""

    def __init__(self, config: Config, data: Dataset, device: torch.device | None = None):
        self.config = config
        self.device = device or resolve_device(config.device)
        self.bf16 = use_bf16(config.precision, self.device)  # decided once: a run's precision never changes mid-run
        self.data = Dataset(data.images.to(self.device), data.labels.to(self.device))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            G, D = build_generator(config).to(self.device), build_discriminator(config).to(self.device)
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        layout = training_memory_format(self.device)
        self.G, self.D = G.to(memory_format=layout), D.to(memory_format=layout)
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
        self.shown: ShownStep | None = None  # the first samples of the latest step, for the overview graph

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

    def train_step(self, real: torch.Tensor, labels: torch.Tensor, players: Player = Player.BOTH) -> StepRecord:
        """One step on a batch: `d_steps` D updates (each with fresh noise) and one G update, or only D's part or
        G's part (`players`). The player not updated is still measured: its loss against the other."""
        return deque(self.substeps(real, labels, players), maxlen=1)[0].record

    def substeps(
        self, real: torch.Tensor, labels: torch.Tensor, players: Player = Player.BOTH
    ) -> Iterator[SubStepResult]:
        """The step of `train_step`, yielding what each numbered sub-step computed (gan.substeps): D1 to D5 (`d_steps`
        times when D updates), then G1 to G5, whose result holds the record. Slow motion stops at each yield."""
        clock = StepClock()
        y = labels if self.config.conditional else None
        players = Player(players)
        update_d, update_g = players.updates_d, players.updates_g
        last_d, scores, loss_d, grad_norm_d = yield from self._update_d(real, y, update_d, update_g, clock)
        # (2) Update G: maximise log D(G(z)) on D's last fakes; D's weights are frozen, their gradients not computed.
        self.D.requires_grad_(False)
        yield from clock.hand_out(SubStepResult(SubStep.G1, fake=last_d.fake))
        with self._autocast(), torch.set_grad_enabled(update_g):
            logits_gen = self.D(self._seen_by_d(last_d.fake), y).float()
        yield from clock.hand_out(SubStepResult(SubStep.G2, logits_fake=logits_gen))
        loss_g = generator_loss(self.config.loss, logits_gen)
        yield from clock.hand_out(SubStepResult(SubStep.G3, loss=loss_g))
        grad_norm_g = self._backward(self.G, self.opt_g, "G", loss_g) if update_g else 0.0
        yield from clock.hand_out(SubStepResult(SubStep.G4, grad_norm=grad_norm_g))
        if update_g:
            self.opt_g.step()
            self._update_ema()
        losses = StepLosses(loss_d, loss_g, scores.logits_real, scores.logits_fake, grad_norm_d, grad_norm_g)
        record = self._count_step(real.size(0), clock.seconds(), players, losses)
        self.shown = shown_step(record, self.config.loss, last_d, scores, y, real)
        yield SubStepResult(SubStep.G5, record=record)

    def _update_d(
        self, real: torch.Tensor, y: torch.Tensor | None, update_d: bool, update_g: bool, clock: StepClock
    ) -> Generator[SubStepResult, None, tuple[SubStepResult, SubStepResult, torch.Tensor, float]]:
        """(1) Update D: maximise log D(x) + log(1 - D(G(z))) (or the chosen loss), d_steps times. Returns the last
        D1 (noise, fakes in G's graph when G updates next) and D2 (D's outputs), D's loss and gradient norm."""
        loss_name = self.config.loss
        self.D.requires_grad_(update_d)
        # A D-only step leaves all of G as it was: its batch-norm statistics too, which drawing the fakes would move.
        g_buffers = None if update_g else [buffer.clone() for buffer in self.G.buffers()]
        repeats = self.config.discriminator_steps if update_d else 1
        for repeat in range(repeats):
            z = torch.randn(real.size(0), self.config.latent_dim, generator=self.noise).to(self.device)
            with self._autocast(), torch.set_grad_enabled(update_g):
                fake = self.G(z, y)
            yield from clock.hand_out(drawn := SubStepResult(SubStep.D1, repeat, z=z, fake=fake))
            with self._autocast(), torch.set_grad_enabled(update_d):
                seen_real, seen_fake = self._seen_by_d(real), self._seen_by_d(fake.detach())
                logits_real, logits_fake = self.D(seen_real, y).float(), self.D(seen_fake, y).float()
            scores = SubStepResult(SubStep.D2, repeat, None, None, seen_real, seen_fake, logits_real, logits_fake)
            yield from clock.hand_out(scores)
            loss_d = discriminator_loss(loss_name, logits_real, logits_fake)
            if loss_name == "wgan-gp" and update_d:
                mix = torch.rand(real.size(0), 1, 1, 1, generator=self.noise).to(self.device)
                loss_d = loss_d + GP_WEIGHT * gradient_penalty(self.D, real, fake.detach().float(), y, mix)
            yield from clock.hand_out(SubStepResult(SubStep.D3, repeat, loss=loss_d))
            grad_norm_d = self._backward(self.D, self.opt_d, "D", loss_d) if update_d else 0.0
            yield from clock.hand_out(SubStepResult(SubStep.D4, repeat, grad_norm=grad_norm_d))
            if update_d:
                self.opt_d.step()
                if repeat == repeats - 1 and self.config.r1_gamma > 0 and self.step % R1_EVERY == 0:
                    self._regularise_d(real, y)
            yield from clock.hand_out(SubStepResult(SubStep.D5, repeat))
        for buffer, saved in zip(self.G.buffers(), g_buffers or ()):
            buffer.copy_(saved)
        return drawn, scores, loss_d, grad_norm_d

    def _backward(self, model: nn.Module, optimiser: torch.optim.Optimizer, name: str, loss: torch.Tensor) -> float:
        """Gradients of `loss` for `model` (the update itself is the next sub-step); their norm."""
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self._check_finite(name, loss)
        return _grad_norm(model)

    def _seen_by_d(self, images: torch.Tensor) -> torch.Tensor:
        return translate(images, self.noise) if self.config.augment == "translate" else images

    def _regularise_d(self, real: torch.Tensor, y: torch.Tensor | None) -> None:
        """A lazy R1 update of D, in fp32: the penalty's double backward is where bf16's rounding would show."""
        penalty = 0.5 * self.config.r1_gamma * R1_EVERY * r1_penalty(self.D, real, y)
        self.opt_d.zero_grad(set_to_none=True)
        penalty.backward()
        self._check_finite("D", penalty)
        self.opt_d.step()

    def _count_step(self, images: int, elapsed: float, players: Player, losses: StepLosses) -> StepRecord:
        """Advance the step counters and the smoothed speed, and report the step."""
        self.step += 1
        self.batch += 1
        self.images_seen += images
        self.seconds += elapsed
        rate = images / max(elapsed, 1e-9)
        self._rate = rate if self._rate == 0 else 0.9 * self._rate + 0.1 * rate
        return StepRecord(
            step=self.step,
            epoch=self.epoch,
            batch=self.batch,
            **losses.measured(self.config.loss),
            images_per_sec=self._rate,
            seconds=self.seconds,
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
        on_step: Callable[[StepRecord], None] | None = None,
        on_epoch_end: Callable[[int], None] | None = None,
        max_seconds: float | None = None,
        on_change: ChangeCallback | None = None,
        before_requested_step: Callable[[Player], None] | None = None,
        slow_step: Callable[[torch.Tensor, torch.Tensor], StepRecord] | None = None,
    ) -> Outcome:
        """Train until the configured epochs are done, a stop is requested or the time budget is spent (see
        `Outcome`). `on_epoch_end(n)` is called with the number of epochs completed, `on_change` with each
        setting changed (requested through `control` or scheduled by the config's `set_at`), and
        `before_requested_step(players)` just before a step asked for through `control.step`; `slow_step(real,
        labels)` takes a step asked for in slow motion (`control.substep`, see gan.lab.slowmotion)."""
        control = control or Control()
        self.G.train()
        self.D.train()
        while not self.finished:
            epoch_batches = batches(
                self.data, self.config.batch_size, self.config.seed, self.epoch, self.batch, self.config.steps_per_epoch
            )
            for real, labels in epoch_batches:
                step = self._next_step(control, max_seconds, on_change)
                if isinstance(step, Outcome):
                    return step
                if step.requested and before_requested_step:
                    before_requested_step(step.players)
                if step.slow and slow_step:
                    metrics = slow_step(real, labels)
                elif step.players == Player.BOTH:
                    metrics = self.train_step(real, labels)
                else:
                    metrics = self.train_step(real, labels, step.players)
                if on_step:
                    on_step(metrics)
            self.epoch += 1
            self.batch = 0
            if on_epoch_end:
                on_epoch_end(self.epoch)
        return Outcome.FINISHED

    def _next_step(
        self, control: Control, max_seconds: float | None, on_change: ChangeCallback | None
    ) -> NextStep | Outcome:
        """Wait while paused, applying changes as they come: the next step, or why to end."""
        while True:
            control.wait_for_work()
            for field, value in control.take_changes():
                self._apply_change(field, value, on_change)
            for scheduled in self.schedule:
                if scheduled.step == self.step:
                    self._apply_change(scheduled.field, scheduled.value, on_change)
            if control.stop_requested:
                return Outcome.STOPPED
            if max_seconds is not None and self.seconds >= max_seconds:
                return Outcome.TIME_BUDGET
            if control.take_substep():
                return NextStep(Player.BOTH, requested=True, slow=True)
            players = control.take_step()
            if players is not None:
                return NextStep(players, requested=True)
            if not control.paused:
                return NextStep(Player.BOTH, requested=False)

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
        check_changeable(field, value)
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
