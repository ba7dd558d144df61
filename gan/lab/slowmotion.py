"""Slow motion: one training step walked through in its numbered sub-steps, each with its real values.

`SlowMotion` drives the trainer's own step (`Trainer.substeps`, the generator that `train_step` runs through)
one sub-step at a time, so after the last one the weights, the noise generator's state and the step's record are
exactly those of a step taken without stopping. Between sub-steps it measures what a learner wants to see (D's
scores after its update, G's samples after its update) without drawing training randomness and without moving
G's batch-norm statistics. `slow_step` is the hook `Trainer.run` calls for a step asked for in slow motion; the
app and the CLI both take their values from `SlowMotion`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gan.lab.overview import SHOWN, OverviewFrame, frame_of, next_batch, push_maps, scores
from gan.store.history import StepRecord
from gan.substeps import ShownStep, SubStep, SubStepResult
from gan.train import Trainer

__all__ = ["SUBSTEP_TEXT", "HIGHLIGHT", "SlowMotion", "SubStep", "SubStepView", "slow_step"]

SUBSTEP_TEXT: dict[SubStep, tuple[str, str]] = {
    SubStep.D1: ("G draws fakes from noise", "G turns a batch of fresh noise vectors into fake digits."),
    SubStep.D2: (
        "D scores the reals and the fakes",
        "D looks at this step's real digits and G's fakes and scores how real each looks.",
    ),
    SubStep.D3: ("D's loss", "D's scores become its loss: low when the reals score high and the fakes low."),
    SubStep.D4: ("D's gradients", "The loss flows back into D: for each weight, the way that lowers D's loss."),
    SubStep.D5: ("D is updated", "D's weights take one step along their gradients; it scores the same images again."),
    SubStep.G1: ("G draws fakes", "G's update uses the same fakes as D's last sub-step, still linked to G's weights."),
    SubStep.G2: ("D scores the fakes only", "The updated D scores the fakes; real digits play no part in G's step."),
    SubStep.G3: ("G's loss", "D's scores on the fakes become G's loss: low when D believes them."),
    SubStep.G4: (
        "The gradients flow back through D into G",
        "G's loss flows back through D, whose weights stay frozen, and on into G's weights.",
    ),
    SubStep.G5: ("G is updated", "G's weights take one step; the same noise now gives new samples."),
}
# The graph's nodes (keys of overview.NODE_HELP) lit at each sub-step; the rest is dimmed.
HIGHLIGHT: dict[SubStep, tuple[str, ...]] = {
    SubStep.D1: ("noise", "generator", "fakes"),
    SubStep.D2: ("fakes", "reals", "discriminator", "predictions"),
    SubStep.D3: ("predictions", "loss_d"),
    SubStep.D4: ("loss_d", "grad_d"),
    SubStep.D5: ("grad_d", "discriminator", "predictions"),
    SubStep.G1: ("noise", "generator", "fakes"),
    SubStep.G2: ("fakes", "discriminator", "predictions"),
    SubStep.G3: ("predictions", "loss_g"),
    SubStep.G4: ("loss_g", "grad_g", "discriminator", "generator"),
    SubStep.G5: ("grad_g", "generator", "fakes"),
}
NAN = math.nan
# How each value is named when written out (the CLI's lines, the page's captions)
VALUE_NAMES = {
    "samples": "fakes",
    "d_real": "D(x)",
    "d_fake": "D(G(z))",
    "loss_d": "D's loss",
    "loss_g": "G's loss",
    "grad_norm_d": "D's gradient norm",
    "grad_norm_g": "G's gradient norm",
    "pixels_changed": "mean pixel change",
    "step": "step",
}


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class SubStepView:
    """One sub-step as shown: its title and sentence, its values, the nodes it lights, and the graph as of now."""

    substep: SubStep
    repeat: int  # which of D's `d_steps` updates (0 for G's sub-steps)
    title: str
    text: str
    values: dict[str, float]  # e.g. d_real, d_fake (means over the batch), loss_d, grad_norm_d, ..._before/_after
    highlight: tuple[str, ...]
    # The graph's numbers as of this sub-step: those not computed yet are the previous step's; from G2 to G4 the
    # fakes' scores are those G's loss is taken on (the updated D's); at G5 the step as recorded.
    frame: OverviewFrame
    # D5: D's scores (2, k) before and after its update, row 0 the reals, row 1 the fakes;
    # G5: G's samples (k, 1, 28, 28) before and after its update, from the same noise. Else None.
    before_after: tuple[torch.Tensor, torch.Tensor] | None
    step: int  # the trainer's step counter now: it advances by one at G5
    index: int = 0  # 1-based position of this sub-step in the step
    total: int = 10  # sub-steps in the step: 5 * d_steps + 5

    @property
    def summary(self) -> str:
        """The values in words, e.g. "D(x) 0.4895 -> 0.5029, D(G(z)) 0.4884 -> 0.4803" (D's means before and after)."""
        parts = []
        for key, value in self.values.items():
            if key.endswith("_before"):
                name = key.removesuffix("_before")
                parts.append(f"{VALUE_NAMES[name]} {value:.4f} -> {self.values[name + '_after']:.4f}")
            elif key in ("samples", "step"):
                parts.append(f"{VALUE_NAMES[key]} {int(value)}")
            elif not key.endswith("_after"):
                parts.append(f"{VALUE_NAMES[key]} {value:.4f}")
        return ", ".join(parts)

    @property
    def done(self) -> bool:
        """The step's last sub-step: the step is counted and recorded."""
        return self.index == self.total

    @property
    def label(self) -> str:
        """E.g. "D2", or with several D steps "D2 (2/3)"."""
        d_steps = self.total // 5 - 1
        if self.substep.player == "G" or d_steps == 1:
            return self.substep.value
        return f"{self.substep.value} ({self.repeat + 1}/{d_steps})"


class SlowMotion:
    """One training step of `trainer`, on `real`/`labels` (default: the batch the loop would take next), one
    sub-step per `next()`. `finish()` completes the step without stopping and returns its record."""

    def __init__(
        self,
        trainer: Trainer,
        real: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        count: int = SHOWN,
    ):
        if real is None:
            real, labels = next_batch(trainer)
        self.trainer, self.real, self.count = trainer, real, count
        self.labels = labels if trainer.config.conditional else None
        self.total = 5 * trainer.config.discriminator_steps + 5
        self.taken = 0
        self.record: StepRecord | None = None
        self._steps = trainer.substeps(real, labels)
        self._shown = self._first_shown()
        self._push: torch.Tensor | None = None
        self._z: torch.Tensor | None = None  # the noise and the fakes of the latest D1, full batch
        self._fake: torch.Tensor | None = None
        self._scores: SubStepResult | None = None  # the latest D2
        self._g_scores: torch.Tensor | None = None  # G2's logits

    @property
    def done(self) -> bool:
        return self.record is not None

    def next(self) -> SubStepView:
        """Take the next sub-step and show it."""
        if self.done:
            raise RuntimeError("the step is complete: start a new SlowMotion for the next one")
        result = next(self._steps)
        self.taken += 1
        if result.record is not None:
            self.record = result.record
            self._steps.close()
        return self._view(result)

    def finish(self) -> StepRecord:
        """The rest of the step without stopping, as the training loop takes it; the step's record."""
        for result in self._steps:
            if result.record is not None:
                self.record = result.record
        assert self.record is not None, "a step always ends with G5"
        return self.record

    # --- what each sub-step shows ---

    def _first_shown(self) -> ShownStep:
        """The graph before the step's first sub-step: the previous step's numbers, this step's reals."""
        trainer, k = self.trainer, self.count
        previous = trainer.shown
        record = StepRecord(trainer.step, trainer.epoch, trainer.batch, NAN, NAN, None, None, NAN, NAN, 0.0, 0.0)
        if previous is None:
            blank = torch.full((k,), NAN)
            latent = torch.zeros(k, trainer.config.latent_dim)
            fake = torch.zeros(k, 1, 28, 28)
            previous = ShownStep(record, trainer.config.loss, latent, None, fake, fake, blank, blank)
        step_record = dataclasses.replace(previous.record, step=trainer.step + 1)
        labels = None if self.labels is None else self.labels[:k].detach().cpu()
        return dataclasses.replace(
            previous,
            record=step_record,
            loss=trainer.config.loss,
            real=self.real[:k].detach().float().cpu(),
            labels=labels if labels is not None else previous.labels,
        )

    def _view(self, result: SubStepResult) -> SubStepView:
        substep = result.substep
        values, before_after = self._measure(result)
        if self.record is not None:  # G5: the step as recorded, as the live graph shows it from now on
            self._keep(record=self.record, logits_fake=_cpu(self._scores.logits_fake[: self.count]))
        frame = frame_of(self.trainer, self._shown, self.count, self._push_map(substep))
        title, text = SUBSTEP_TEXT[substep]
        return SubStepView(
            substep,
            result.repeat,
            title,
            text,
            values,
            HIGHLIGHT[substep],
            frame,
            before_after,
            self.trainer.step,
            self.taken,
            self.total,
        )

    def _push_map(self, substep: SubStep) -> torch.Tensor:
        """Where D pushes the shown fakes: recomputed when the fakes or D change (D1, D5), else the last one."""
        if self._push is None or substep in (SubStep.D1, SubStep.D5):
            fakes = self._shown.fake[: self.count]
            labels = None if self._shown.labels is None else self._shown.labels[: self.count]
            self._push = push_maps(self.trainer.D, fakes, labels, self._shown.loss)
        return self._push

    def _keep(self, **changes: object) -> None:
        self._shown = dataclasses.replace(self._shown, **changes)

    def _record(self, **changes: object) -> None:
        self._keep(record=dataclasses.replace(self._shown.record, **changes))

    def _measure(self, result: SubStepResult) -> tuple[dict[str, float], tuple[torch.Tensor, torch.Tensor] | None]:
        """The sub-step's values and before/after tensors; keeps the graph's numbers up to date."""
        k, loss, substep = self.count, self.trainer.config.loss, result.substep
        if substep == SubStep.D1:
            self._z, self._fake = result.z, result.fake.detach()
            self._keep(z=_cpu(result.z[:k]), fake=_cpu(result.fake[:k]))
        if substep in (SubStep.D1, SubStep.G1):
            return {"samples": float(len(result.fake))}, None
        if substep == SubStep.D2:
            self._scores = result
            self._keep(logits_real=_cpu(result.logits_real[:k]), logits_fake=_cpu(result.logits_fake[:k]))
            return _means(loss, result.logits_real, result.logits_fake), None
        if substep == SubStep.G2:
            self._g_scores = result.logits_fake
            self._keep(logits_fake=_cpu(result.logits_fake[:k]))
            return {"d_fake": _mean(loss, result.logits_fake)}, None
        if substep in (SubStep.D3, SubStep.G3):
            name = "loss_d" if substep == SubStep.D3 else "loss_g"
            self._record(**{name: result.loss.item()})
            return {name: result.loss.item()}, None
        if substep in (SubStep.D4, SubStep.G4):
            name = "grad_norm_d" if substep == SubStep.D4 else "grad_norm_g"
            self._record(**{name: result.grad_norm})
            return {name: result.grad_norm}, None
        if substep == SubStep.D5:
            return self._d_after()
        return self._g_after()

    @torch.no_grad()
    def _d_after(self) -> tuple[dict[str, float], tuple[torch.Tensor, torch.Tensor]]:
        """D's scores on the very images it saw in D2, before and after its update."""
        trainer, scored, loss, k = self.trainer, self._scores, self.trainer.config.loss, self.count
        with trainer._autocast():
            real_after = trainer.D(scored.seen_real, self.labels).float()
            fake_after = trainer.D(scored.seen_fake, self.labels).float()
        before = _means(loss, scored.logits_real, scored.logits_fake)
        after = _means(loss, real_after, fake_after)
        values = {
            f"{name}_{when}": value
            for when, means in (("before", before), ("after", after))
            for name, value in means.items()
        }
        shown_before = torch.stack([scores(loss, scored.logits_real[:k]), scores(loss, scored.logits_fake[:k])])
        shown_after = torch.stack([scores(loss, real_after[:k]), scores(loss, fake_after[:k])])
        return values, (shown_before.detach().cpu(), shown_after.cpu())

    @torch.no_grad()
    def _g_after(self) -> tuple[dict[str, float], tuple[torch.Tensor, torch.Tensor]]:
        """G's samples from the same noise before and after its update, drawn as in training (batch statistics)
        with G's batch-norm statistics put back; D's (updated) belief in both."""
        trainer, loss, k = self.trainer, self.trainer.config.loss, self.count
        z = self._z
        kept = [buffer.clone() for buffer in trainer.G.buffers()]
        try:
            with trainer._autocast():
                fake_after = trainer.G(z, self.labels).float()
        finally:
            for buffer, saved in zip(trainer.G.buffers(), kept):
                buffer.copy_(saved)
        with trainer._autocast():
            after = trainer.D(fake_after, self.labels).float()
        before = self._g_scores
        values = {
            "d_fake_before": _mean(loss, before),
            "d_fake_after": _mean(loss, after),
            "pixels_changed": (fake_after - self._fake.float()).abs().mean().item(),
            "step": float(self.record.step),
        }
        return values, (self._fake[:k].detach().float().cpu(), fake_after[:k].cpu())


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().float().cpu().clone()


def _mean(loss: str, logits: torch.Tensor) -> float:
    return scores(loss, logits.detach()).mean().item()


def _means(loss: str, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> dict[str, float]:
    return {"d_real": _mean(loss, logits_real), "d_fake": _mean(loss, logits_fake)}


def slow_step(
    trainer: Trainer,
    real: torch.Tensor,
    labels: torch.Tensor,
    show: Callable[[SubStepView], None],
    wait: Callable[[], bool] | None = None,
) -> StepRecord:
    """A step in slow motion, as `Trainer.run`'s hook: each sub-step's view goes to `show`. `wait()`, when given,
    blocks until the next sub-step is wanted and returns False to complete the step at once (a Resume or a
    Stop); without it every sub-step is shown in turn."""
    motion = SlowMotion(trainer, real, labels)
    show(motion.next())
    while not motion.done and (wait is None or wait()):
        show(motion.next())
    return motion.finish()
