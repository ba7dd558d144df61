"""Diagnosis: name the classic GAN failures seen in a run's history and scores, each with what to try.

Pure functions of the history records (`{"kind": "step"|"epoch"|"change", ...}`, as saved in history.jsonl): no
files, no models. Each check looks at the recent part of the run (the last `RECENT` of its steps, at least
`MIN_STEPS` of them), so a run that recovered from an early imbalance is not blamed for it. The thresholds were
set on the failure recipes and the healthy presets (gan/lab/recipes.py): the recipes trip them, the presets do not.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gan.store.history import Player

RECENT = 0.3  # the share of the run's latest steps each check looks at
MIN_STEPS = 60  # fewer steps than this in that stretch: too early to tell
# D winning: median D(x) above, median D(G(z)) below. The recipes that fail this way measure 0.99 and 0.01 or
# beyond; the small classic GAN, imbalanced but drawing digits, 0.93 and 0.06.
D_SURE_REAL, D_SURE_FAKE = 0.95, 0.05
GRAD_FALL = 0.1  # vanishing gradients: G's recent gradient norm below this share of its norm early on ...
# ... and below this absolute size. Healthy runs measure 1 to 13; the saturating loss against a winning D 1e-9 to
# 1e-6; a D that wins with the non-saturating loss leaves G's gradient large (overpowered-d recipe: 11, down from
# 190 in its first steps), which is not vanishing however far it fell.
TINY_GRAD = 0.05
# Oscillation: the smoothed curve's spread around its straight-line trend (a loss that falls or rises steadily is not
# swinging), against its typical size. Healthy cdcgan and small classic runs measure 0.02 to 0.15 after their first
# 200 steps; the unstable recipe 0.2 to 0.7 (0.37 at its end); the overpowered-d recipe's spiking G loss 0.27 at
# its end.
SWING = 0.3
SWING_STEPS = 120  # ... judged on at least this many recent steps: the first steps' fast fall is no swing either
LOSS_SCALE = 0.25  # ... a size below which a loss counts as this, so a loss pinned near 0 is not called swinging
SMOOTHING = 0.9  # the EMA applied before judging swings, so that batch noise is not called oscillation
FEW_CLASSES, CROWDED_CLASS = 8, 0.3  # collapse across classes: digits covered below, or one digit above this share
DIGITS_FID = 300.0  # ... once G draws digits (FID below this) or after an earlier epoch covered 2 digits more
# Collapse within classes: recall or coverage below these, once FID is below SHARP_FID. Healthy runs there measure
# recall 0.29 to 0.84 and coverage 0.25 to 0.33 (real digits 0.93 and 0.81); a cdcgan with one noise number 0.00, 0.10.
LOW_RECALL, LOW_COVERAGE = 0.25, 0.15
# Recall and coverage measure variety only among samples close to real digits: rough, speckled digits lie far from
# every real one however varied they are (a varied, speckled small classic GAN: FID 216, recall 0.01; a healthy
# cdcgan at FID 176: recall 0.10, at 109: 0.39; the small classic GAN of the recipes at 2e-4 (SMALL_CLASSIC), varied
# digits at FID 145: recall 0.21). A cdcgan whose noise has one number (latent_dim 1): FID 79, recall 0.
SHARP_FID = 100.0
# The spread of 100 samples: the per-pixel standard deviation across them, averaged over the pixels, on [0, 1].
# 100 real test digits: 0.18; the small classic GAN drawing digits: 0.09; collapsed onto one image: 0.01.
REAL_SPREAD, IDENTICAL_SPREAD = 0.18, 0.045
NOISE_FID = 600.0  # samples still noise above this FID (uniform noise scores about 2,000, real digits about 1; blurry
# first digits of the small classic GAN about 400)


@dataclass(frozen=True)
class Finding:
    name: str  # d-winning, vanishing-gradients, oscillation, noise, identical-samples, collapse-across-classes, ...
    title: str
    evidence: str  # what was seen, with the numbers
    suggestion: str  # what to try

    def text(self) -> str:
        return f"{self.title}: {self.evidence} Try: {self.suggestion}"


def sample_spread(images: torch.Tensor) -> float:
    """How different a batch of samples (N, 1, 28, 28) in [-1, 1] are from each other (0: all identical)."""
    pixels = images.detach().float().add(1).mul(0.5).clamp(0, 1)
    return pixels.std(dim=0, unbiased=False).mean().item()


def steps_of(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Full training steps (step-throughs of one player excluded), in order."""
    return [r for r in history if r.get("kind", "step") == "step" and r.get("players", Player.BOTH) == Player.BOTH]


def epochs_of(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in history if r.get("kind") == "epoch"]


def recent(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest RECENT of the steps; empty when that is fewer than MIN_STEPS."""
    stretch = list(steps[len(steps) - max(MIN_STEPS, int(len(steps) * RECENT)) :])
    return stretch if len(stretch) >= MIN_STEPS else []


def values(records: Sequence[dict[str, Any]], name: str) -> list[float]:
    found = (record.get(name) for record in records)
    return [float(value) for value in found if isinstance(value, (int, float)) and math.isfinite(value)]


def smooth(series: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """An exponential moving average, debiased at the start."""
    smoothed, average = [], 0.0
    for count, value in enumerate(series, start=1):
        average = weight * average + (1 - weight) * value
        smoothed.append(average / (1 - weight**count))
    return smoothed


def d_winning(history: Sequence[dict[str, Any]]) -> Finding | None:
    stretch = recent(steps_of(history))
    real, fake = values(stretch, "d_real"), values(stretch, "d_fake")
    if len(real) < MIN_STEPS or len(fake) < MIN_STEPS:
        return None  # too early, or a wgan-gp critic, whose scores are not beliefs
    d_real, d_fake = statistics.median(real), statistics.median(fake)
    if d_real <= D_SURE_REAL or d_fake >= D_SURE_FAKE:
        return None
    return Finding(
        "d-winning",
        "D is winning",
        f"over the last {len(stretch)} steps D(x) is {d_real:.2f} and D(G(z)) {d_fake:.3f} (medians): D tells "
        "every fake from every real digit, so G learns little.",
        "slow D down (a lower D learning rate, 1 D step per G step) or speed G up "
        "(a higher G learning rate); the non-saturating bce or the hinge "
        "loss keep G's gradients alive meanwhile.",
    )


def vanishing_gradients(history: Sequence[dict[str, Any]]) -> Finding | None:
    steps = steps_of(history)
    stretch = recent(steps)
    late = values(stretch, "grad_norm_g")
    early = values(steps[: max(MIN_STEPS // 2, len(steps) // 10)], "grad_norm_g")
    if len(late) < MIN_STEPS or not early:
        return None
    late_norm, early_norm = statistics.median(late), max(early)
    if early_norm <= 0 or late_norm >= min(GRAD_FALL * early_norm, TINY_GRAD):
        return None
    fake = values(stretch, "d_fake")
    if fake and statistics.median(fake) >= D_SURE_FAKE:
        return None  # small gradients while D accepts the fakes: G sits where D wants it (see identical samples)
    return Finding(
        "vanishing-gradients",
        "G's gradients have vanished",
        f"G's gradient norm is {late_norm:.2g} over the last {len(stretch)} steps (median), down from {early_norm:.2g} "
        "early on: G barely moves.",
        "use the non-saturating loss (bce) rather than saturating, or hinge or wgan-gp; "
        "weaken D (a lower D learning rate).",
    )


def oscillation(history: Sequence[dict[str, Any]]) -> Finding | None:
    stretch = recent(steps_of(history))
    swings = {}
    for name in ("loss_d", "loss_g"):
        series = smooth(values(stretch, name))
        if len(series) < SWING_STEPS:
            return None
        typical = max(statistics.median(abs(value) for value in series), LOSS_SCALE)
        swings[name] = detrended_spread(series) / typical
    if max(swings.values()) <= SWING:
        return None
    name = max(swings, key=swings.get)
    return Finding(
        "oscillation",
        "The losses oscillate",
        f"over the last {len(stretch)} steps the smoothed {name.replace('_', ' ')} swings by "
        f"{swings[name]:.0%} of its typical size instead of settling.",
        "lower both learning rates (by 5-10x), or a lower Adam beta1 (0.5); an EMA generator smooths samples.",
    )


def detrended_spread(series: Sequence[float]) -> float:
    """The standard deviation of a series around its least-squares straight line."""
    positions = list(range(len(series)))
    slope, intercept = statistics.linear_regression(positions, series)
    return statistics.pstdev([value - (slope * x + intercept) for x, value in zip(positions, series)])


def latest_scores(history: Sequence[dict[str, Any]]) -> tuple[int, dict[str, Any]] | None:
    scored = [record for record in epochs_of(history) if record.get("scores")]
    return (scored[-1]["epoch"], scored[-1]["scores"]) if scored else None


def collapse_across_classes(history: Sequence[dict[str, Any]]) -> Finding | None:
    latest = latest_scores(history)
    if latest is None or not latest[1].get("histogram") or float(latest[1].get("fid", 0)) > NOISE_FID:
        return None  # which digit the judge reads in noise says nothing about collapse
    epoch, scores = latest
    histogram = [float(value) for value in scores["histogram"]]
    covered, top = int(scores.get("classes_covered", 10)), max(histogram)
    if covered >= FEW_CLASSES and top <= CROWDED_CLASS:
        return None
    # Early blobs are read as one digit or two: that is collapse only once G draws digits, or after it drew more
    # (two digits more, or more digits at a lower FID: the run got worse on both counts).
    fid = float(scores.get("fid", 0))
    earlier = [
        (int(r["scores"].get("classes_covered", 0)), float(r["scores"].get("fid", math.inf)))
        for r in epochs_of(history)
        if r.get("scores")
    ][:-1]
    drew_more = any(count >= covered + 2 or (count > covered and earlier_fid < fid) for count, earlier_fid in earlier)
    if fid > DIGITS_FID and not drew_more:
        return None
    crowded = ", ".join(str(digit) for digit, share in enumerate(histogram) if share > CROWDED_CLASS)
    return Finding(
        "collapse-across-classes",
        "Mode collapse across digits",
        f"at epoch {epoch} the samples cover {covered} of 10 digits"
        + (f" and {top:.0%} of them are read as {crowded}." if crowded else "."),
        "strengthen D relative to G (raise the D learning rate or lower the G learning rate), "
        "use a larger batch, or a conditional preset "
        "(cdcgan), whose D checks the digit it was told.",
    )


def collapse_within_classes(history: Sequence[dict[str, Any]]) -> Finding | None:
    latest = latest_scores(history)
    if latest is None:
        return None
    epoch, scores = latest
    if float(scores.get("fid", 0)) > SHARP_FID:
        return None  # samples far from every real digit have a low recall whatever their variety
    measured = {name: scores[name] for name in ("recall", "coverage") if isinstance(scores.get(name), (int, float))}
    limits = {"recall": LOW_RECALL, "coverage": LOW_COVERAGE}
    low = {name: value for name, value in measured.items() if value < limits[name]}
    if not low:
        return None
    described = " and ".join(f"{name} {value:.2f}" for name, value in low.items())
    return Finding(
        "collapse-within-classes",
        "Mode collapse within digits",
        f"at epoch {epoch} {described}: the samples cover only a narrow part of the real digits' variety, even "
        "where every digit appears.",
        "strengthen D relative to G, keep minibatch spread in D (dcgan, cdcgan), lower the G learning rate, "
        "or give G more "
        "noise to vary its digits with (a larger latent size).",
    )


def identical_samples(history: Sequence[dict[str, Any]]) -> Finding | None:
    spread = [record for record in epochs_of(history) if isinstance(record.get("spread"), (int, float))]
    if not spread or spread[-1]["spread"] >= IDENTICAL_SPREAD:
        return None
    record = spread[-1]
    return Finding(
        "identical-samples",
        "The samples are all alike",
        f"at epoch {record['epoch']} the fixed-noise samples differ by {record['spread']:.3f} (their spread; "
        f"real digits {REAL_SPREAD}): G draws nearly the same image whatever the noise, the extreme of mode collapse.",
        "if D(G(z)) is high, D has stopped pushing G around (raise the D learning rate); "
        "if it is near 0, G is stuck and has "
        "not left its start (see the other findings).",
    )


def still_noise(history: Sequence[dict[str, Any]]) -> Finding | None:
    latest = latest_scores(history)
    if latest is None:
        return None
    epoch, scores = latest
    fid = float(scores.get("fid", 0))
    if fid <= NOISE_FID:
        return None
    return Finding(
        "noise",
        "No digits yet",
        f"at epoch {epoch} FID is {fid:.0f} (uniform noise scores about 2,000, real digits about 1): the samples are "
        "not digits.",
        "if this persists past the first epochs, look at D(G(z)) and G's gradient: a D that wins outright (see "
        "above) leaves G nothing to learn from.",
    )


CHECKS = (
    d_winning,
    vanishing_gradients,
    oscillation,
    still_noise,
    identical_samples,
    collapse_across_classes,
    collapse_within_classes,
)


def diagnose(history: Iterable[Any]) -> list[Finding]:
    """Everything the checks see in a run's history (typed records or their dicts), most basic first; empty when
    nothing looks wrong."""
    records = [record.to_dict() if hasattr(record, "to_dict") else record for record in history]
    return [finding for check in CHECKS if (finding := check(records)) is not None]
