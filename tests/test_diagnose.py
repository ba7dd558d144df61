"""The diagnosis on made-up histories: each check names what it is built for, and stays quiet on a healthy run."""

import math
import random

import pytest
import torch

from gan.data import load_mnist
from gan.scoring.diagnose import MIN_STEPS, diagnose, sample_spread
from gan.scoring.judge import load_judges
from gan.scoring.metrics import evaluate_images

STEPS = 400


def history(**curves) -> list[dict]:
    """Step records whose fields follow the given functions of the step (defaults: a healthy, noisy balance)."""
    rng = random.Random(0)
    defaults = {
        "loss_d": lambda s: 1.2 + rng.uniform(-0.3, 0.3),
        "loss_g": lambda s: 0.9 + rng.uniform(-0.3, 0.3),
        "d_real": lambda s: 0.6 + rng.uniform(-0.1, 0.1),
        "d_fake": lambda s: 0.4 + rng.uniform(-0.1, 0.1),
        "grad_norm_g": lambda s: 2.0 + rng.uniform(-0.5, 0.5),
    }
    defaults.update(curves)
    return [{"kind": "step", "step": s, **{name: f(s) for name, f in defaults.items()}} for s in range(1, STEPS + 1)]


def epoch(histogram, **scores) -> dict:
    covered = sum(share >= 0.01 for share in histogram)
    values = {"fid": 20.0, "mean_confidence": 0.9, "histogram": histogram, "classes_covered": covered, **scores}
    return {"kind": "epoch", "epoch": 3, "step": STEPS, "seconds": 60.0, "scores": values}


BALANCED = [0.1] * 10


def names(records) -> list[str]:
    return [finding.name for finding in diagnose(records)]


def test_a_healthy_run_has_no_findings():
    assert names([*history(), epoch(BALANCED, recall=0.6)]) == []


def test_too_short_a_run_is_not_judged():
    winning = history(d_real=lambda s: 0.99, d_fake=lambda s: 0.01)[: MIN_STEPS - 1]
    assert names(winning) == []


def test_d_winning_for_the_latest_stretch():
    assert names(history(d_real=lambda s: 0.99, d_fake=lambda s: 0.01)) == ["d-winning"]
    recovered = history(d_real=lambda s: 0.99 if s < 200 else 0.6, d_fake=lambda s: 0.01 if s < 200 else 0.4)
    assert names(recovered) == [], "an early imbalance that ended is not blamed"


def test_a_critic_has_no_beliefs_to_judge():
    critic = history(d_real=lambda s: None, d_fake=lambda s: None)
    assert names(critic) == []


def test_vanishing_gradients():
    found = diagnose(history(grad_norm_g=lambda s: 5.0 if s < 40 else 0.01, d_fake=lambda s: 0.001))
    assert [finding.name for finding in found] == ["vanishing-gradients"]
    assert "0.01" in found[0].evidence and "bce" in found[0].suggestion
    accepted = history(grad_norm_g=lambda s: 5.0 if s < 40 else 0.01, d_fake=lambda s: 0.8)
    assert names(accepted) == [], "G at rest where D accepts its fakes is not starved of gradient"
    fallen = history(grad_norm_g=lambda s: 190.0 if s < 40 else 11.0, d_real=lambda s: 0.999, d_fake=lambda s: 0.003)
    assert names(fallen) == ["d-winning"], "a large gradient that fell from a larger one has not vanished"


def test_oscillation_is_swinging_not_noise():
    assert names(history(loss_g=lambda s: 1.0 + 2.0 * math.sin(s / 15))) == ["oscillation"]
    noisy = random.Random(1)
    assert names(history(loss_g=lambda s: 1.0 + noisy.uniform(-0.5, 0.5))) == []
    assert names(history(loss_g=lambda s: 4.0 - s / 100)) == [], "a loss falling steadily is not swinging"


def test_collapse_across_classes_names_the_crowded_digit():
    found = diagnose([*history(), epoch([0.0, 0.7, 0.3, 0, 0, 0, 0, 0, 0, 0])])
    assert [finding.name for finding in found] == ["collapse-across-classes"]
    assert "2 of 10 digits" in found[0].evidence and "read as 1" in found[0].evidence


def test_early_blobs_read_as_one_digit_are_not_collapse_until_more_were_drawn():
    blobs = [0.0] * 8 + [0.96, 0.04]
    assert names([*history(), epoch(blobs, fid=580.0)]) == []
    earlier = {**epoch(BALANCED, fid=400.0), "epoch": 2}
    assert names([*history(), earlier, epoch(blobs, fid=580.0)]) == ["collapse-across-classes"]
    five, four = ([0.2] * 5 + [0.0] * 5, [0.0] * 6 + [0.1, 0.1, 0.2, 0.6])
    worse = [*history(), {**epoch(five, fid=337.0), "epoch": 2}, epoch(four, fid=440.0)]
    assert names(worse) == ["collapse-across-classes"], "fewer digits at a higher FID than before: collapsing"
    better = [*history(), {**epoch(five, fid=500.0), "epoch": 2}, epoch(four, fid=440.0)]
    assert names(better) == [], "one digit fewer while the samples improve is the blobs' early noise"


def test_collapse_within_classes_from_recall_or_coverage():
    assert names([*history(), epoch(BALANCED, recall=0.1)]) == ["collapse-within-classes"]
    assert names([*history(), epoch(BALANCED, coverage=0.05)]) == ["collapse-within-classes"]
    assert names([*history(), epoch(BALANCED)]) == [], "without those scores, nothing is claimed"


def test_rough_digits_are_not_called_collapse_within_classes():
    """Samples far from every real digit reach few of them, however varied: their recall says nothing yet."""
    assert names([*history(), epoch(BALANCED, fid=145.0, recall=0.01, coverage=0.1)]) == []
    assert names([*history(), epoch(BALANCED, fid=79.0, recall=0.01, coverage=0.1)]) == ["collapse-within-classes"]


def test_noise_is_not_called_collapse():
    """The judge reads noise as some digit or other: a histogram of noise says nothing about collapse."""
    assert names([*history(), epoch([1.0] + [0.0] * 9, fid=850.0)]) == ["noise"]


def test_a_loss_pinned_near_zero_is_not_oscillating():
    assert names(history(loss_d=lambda s: 1e-6 * (1 + math.sin(s)), grad_norm_g=lambda s: 1.0)) == []


def test_step_throughs_are_left_out():
    stepped = [{**record, "players": "d"} if record["step"] > 200 else record for record in history()]
    for record in stepped[200:]:
        record.update(d_real=0.99, d_fake=0.01)
    assert names(stepped) == []


def test_identical_samples_from_the_spread():
    images = torch.zeros(100, 1, 28, 28)
    assert sample_spread(images) == 0.0
    images[::2] = 1.0  # half white, half grey: every pixel's deviation is 0.25
    assert sample_spread(images) == pytest.approx(0.25)
    record = {"kind": "epoch", "epoch": 4, "step": STEPS, "seconds": 9.0, "spread": 0.01}
    found = diagnose([*history(), record])
    assert [finding.name for finding in found] == ["identical-samples"] and "0.010" in found[0].evidence
    assert names([*history(), {**record, "spread": 0.1}]) == []


def test_collapse_within_classes_on_real_digits_scored_by_the_judge():
    """Ten real training digits, one per class, each drawn 100 times (a G collapsed within every class) against
    1,000 different real digits: the judge's recall tells them apart and the diagnosis follows it."""
    train, judge = load_mnist(split="train"), load_judges().first
    one_each = torch.cat([torch.nonzero(train.labels == digit)[:1, 0] for digit in range(10)]).repeat_interleave(100)
    collapsed = evaluate_images(train.images[one_each], judge, train.labels[one_each]).to_dict()
    varied = evaluate_images(train.images[:1000], judge, train.labels[:1000]).to_dict()
    assert "collapse-within-classes" in names([*history(), {**epoch(BALANCED), "scores": collapsed}])
    assert names([*history(), {**epoch(BALANCED), "scores": varied}]) == []
