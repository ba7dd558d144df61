"""The anatomy of one training step, shared by the trainer and slow motion.

A step is ten numbered sub-steps (D's five repeated `d_steps` times, then G's five). `Trainer.substeps` yields a
`SubStepResult` after each, with the tensors it produced; normal training runs it through, slow motion stops at
every yield, so both take the very same step. `StepClock` counts only the trainer's own time, not the pauses
between yields. `ShownStep` is the small copy of a step's first samples that the trainer keeps for the overview
graph: a slice and a clone, microseconds a step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import torch

from gan.losses import d_belief
from gan.store.history import StepRecord

SHOWN_SAMPLES = 16  # samples of each step kept for the overview graph (it shows 8 by default)


class SubStep(str, Enum):
    D1 = "D1"  # G draws fakes from noise
    D2 = "D2"  # D scores the reals and the fakes
    D3 = "D3"  # D's loss
    D4 = "D4"  # D's gradients
    D5 = "D5"  # D is updated
    G1 = "G1"  # G draws fakes (the fakes of D's last sub-step, in G's graph)
    G2 = "G2"  # D scores the fakes only
    G3 = "G3"  # G's loss
    G4 = "G4"  # the gradients flow back through D into G
    G5 = "G5"  # G is updated; the step is counted

    @property
    def player(self) -> str:
        """Whose part of the step this is: "D" or "G"."""
        return self.value[0]

    @property
    def number(self) -> int:
        return int(self.value[1])


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class SubStepResult:
    """What one sub-step produced. The tensors are the step's own (some in autograd graphs): read, never change."""

    substep: SubStep
    repeat: int = 0  # which of D's `d_steps` updates (0 for G's sub-steps)
    z: torch.Tensor | None = None  # D1: the noise (B, latent_dim)
    fake: torch.Tensor | None = None  # D1 and G1: G(z) (B, 1, 28, 28)
    seen_real: torch.Tensor | None = None  # D2: the batches as D saw them (shifted when augmented)
    seen_fake: torch.Tensor | None = None
    logits_real: torch.Tensor | None = None  # D2: D's raw outputs (B,)
    logits_fake: torch.Tensor | None = None  # D2, and G2: D's outputs on the fakes that G's loss is taken on
    loss: torch.Tensor | None = None  # D3: D's loss; G3: G's loss
    grad_norm: float | None = None  # D4, G4: the gradient norm (0 when that player is not updated)
    record: StepRecord | None = None  # G5: the step's record, the step counted


@dataclass(frozen=True)
class StepLosses:
    """What one step measured, as tensors where it is still to be read off (`.item()` once, at the end)."""

    loss_d: torch.Tensor
    loss_g: torch.Tensor
    logits_real: torch.Tensor
    logits_fake: torch.Tensor
    grad_norm_d: float
    grad_norm_g: float

    def measured(self, loss: str) -> dict[str, float | None]:
        """The step record's measured fields: the losses, gradient norms, and D's mean beliefs that the real and
        the fake batch are real (for wgan-gp, whose critic gives no beliefs, the Wasserstein estimate instead)."""
        belief_real, belief_fake = d_belief(loss, self.logits_real), d_belief(loss, self.logits_fake)
        critic = self.logits_real.mean() - self.logits_fake.mean() if loss == "wgan-gp" else None
        return {
            "loss_d": self.loss_d.item(),
            "loss_g": self.loss_g.item(),
            "d_real": None if belief_real is None else belief_real.mean().item(),
            "d_fake": None if belief_fake is None else belief_fake.mean().item(),
            "grad_norm_d": self.grad_norm_d,
            "grad_norm_g": self.grad_norm_g,
            "wasserstein": None if critic is None else critic.item(),
        }


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class ShownStep:
    """The first samples of a step and D's outputs on them, with the step's record: what the overview draws."""

    record: StepRecord
    loss: str  # the loss in force at this step
    z: torch.Tensor  # (k, latent_dim)
    labels: torch.Tensor | None  # (k,) the digits asked for, conditional presets only
    fake: torch.Tensor  # (k, 1, 28, 28) in [-1, 1], float
    real: torch.Tensor  # (k, 1, 28, 28)
    logits_real: torch.Tensor  # (k,) D's outputs in the step's last D sub-step
    logits_fake: torch.Tensor


def shown_step(
    record: StepRecord,
    loss: str,
    last_d: SubStepResult,
    scores: SubStepResult,
    labels: torch.Tensor | None,
    real: torch.Tensor,
    count: int = SHOWN_SAMPLES,
) -> ShownStep:
    """Keep the first `count` samples of a step: `last_d` is the last D1 (noise, fakes), `scores` the last D2."""

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        return tensor[:count].detach().float().clone()

    return ShownStep(
        record=record,
        loss=loss,
        z=keep(last_d.z),
        labels=None if labels is None else labels[:count].clone(),
        fake=keep(last_d.fake),
        real=keep(real),
        logits_real=keep(scores.logits_real),
        logits_fake=keep(scores.logits_fake),
    )


class StepClock:
    """Seconds spent inside a step, leaving out the time it waits at its yields (slow motion, between clicks)."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self._since = time.perf_counter()

    def seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self._since

    def hand_out(self, result: SubStepResult) -> Iterator[SubStepResult]:
        """Yield `result` with the clock stopped (use as `yield from clock.hand_out(result)`)."""
        self.elapsed += time.perf_counter() - self._since
        yield result
        self._since = time.perf_counter()
