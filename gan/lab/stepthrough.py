"""Stepping through training one player at a time: what D and G look like just before and after a single step.

`measure` looks at the trainer without changing anything in it (no training randomness drawn, G's batch-norm
statistics untouched): D's outputs on a fixed set of real digits and on G's fakes from the run's fixed noise, the
two losses on them, and the fixed-noise grid drawn by G itself (not the EMA copy, which one step barely moves).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gan.images import grid_png
from gan.losses import d_belief, discriminator_loss, generator_loss
from gan.store.history import Player
from gan.train import Trainer

MEASURED_SEED_OFFSET = 3  # the measured real digits: a pure function of the run's seed, never the training noise
STEP_NAMES = {Player.D: "One D step", Player.G: "One G step", Player.BOTH: "One of each"}


@dataclass(frozen=True)
class Measurement:
    """D and G at one step, on the same real digits and fixed-noise fakes every time."""

    step: int
    loss: str  # the loss in force, which decides what the outputs mean
    d_real: tuple[float, ...]  # D's belief (0 to 1) for each measured real digit, or its critic score for wgan-gp
    d_fake: tuple[float, ...]  # the same for each fake from the fixed noise
    loss_d: float  # on the measured digits and fakes (without wgan-gp's gradient penalty)
    loss_g: float
    grid_png: bytes

    @property
    def scale(self) -> str:
        return "critic score" if self.loss == "wgan-gp" else "belief that the image is real"


@dataclass(frozen=True)
class StepThrough:
    """One step-through: the players stepped, and the trainer measured just before and just after."""

    players: Player
    before: Measurement
    after: Measurement
    own: OwnBatch | None = None  # D on the step's own real digits, the batch it trained on

    @property
    def title(self) -> str:
        return STEP_NAMES[Player(self.players)]

    def lesson(self) -> str | None:
        """In words, when a D step moved D's mean score on its own batch and on the fixed digits apart."""
        if self.own is None or Player(self.players) == Player.G:
            return None
        own = mean(self.own.after) - mean(self.own.before)
        fixed = mean(self.after.d_real) - mean(self.before.d_real)
        if own * fixed >= 0:
            return None
        return (
            f"On the {len(self.own.before)} real digits of its own batch, D's mean score moved by {own:+.3f}: the "
            f"step did what it optimises there. On the {len(self.before.d_real)} fixed digits it moved by "
            f"{fixed:+.3f}: one step on one small batch does not make D better everywhere; with a large learning rate "
            "(or Adam's beta1 at 0) each step overshoots, so D's scores swing from step to step."
        )


@dataclass(frozen=True)
class OwnBatch:
    """D's score for each real digit of the batch a requested step trains on, just before and just after it."""

    before: tuple[float, ...]
    after: tuple[float, ...] = ()


def mean(values: tuple[float, ...]) -> float:
    return sum(values) / max(1, len(values))


@torch.no_grad()
def own_scores(trainer: Trainer, real: torch.Tensor, labels: torch.Tensor) -> tuple[float, ...]:
    """D's score for each of the step's own real digits (as `measure` scores the fixed ones)."""
    logits = trainer.D(real, labels if trainer.config.conditional else None).float()
    shown = d_belief(trainer.config.loss, logits)
    return tuple((logits if shown is None else shown).cpu().tolist())


def measured_batch(trainer: Trainer, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The real digits every measurement of this run uses."""
    generator = torch.Generator().manual_seed(trainer.config.seed + MEASURED_SEED_OFFSET)
    chosen = torch.randperm(len(trainer.data), generator=generator)[:count].to(trainer.data.labels.device)
    return trainer.data.images[chosen], trainer.data.labels[chosen]


@torch.no_grad()
def measure(trainer: Trainer) -> Measurement:
    """D and G as they are now, on a fixed batch; nothing in the trainer changes."""
    loss = trainer.config.loss
    z = trainer.fixed_z.to(trainer.device)
    fake_labels = None if trainer.fixed_labels is None else trainer.fixed_labels.to(trainer.device)
    real, labels = measured_batch(trainer, len(z))
    was_training = trainer.G.training
    trainer.G.eval()  # batch-norm running statistics, and no update of them
    try:
        fake = trainer.G(z, fake_labels).float()
    finally:
        trainer.G.train(was_training)
    conditional = trainer.config.conditional
    logits_real = trainer.D(real, labels if conditional else None).float()
    logits_fake = trainer.D(fake, fake_labels if conditional else None).float()
    shown_real, shown_fake = d_belief(loss, logits_real), d_belief(loss, logits_fake)
    return Measurement(
        step=trainer.step,
        loss=loss,
        d_real=tuple((logits_real if shown_real is None else shown_real).cpu().tolist()),
        d_fake=tuple((logits_fake if shown_fake is None else shown_fake).cpu().tolist()),
        loss_d=discriminator_loss(loss, logits_real, logits_fake).item(),
        loss_g=generator_loss(loss, logits_fake).item(),
        grid_png=grid_png(fake.cpu()),
    )
