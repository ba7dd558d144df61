"""Per-class FID for conditional generators."""

from __future__ import annotations

import json

import pytest
import torch

from gan.data import load_mnist
from gan.models import ConvGenerator
from gan.scoring.judge import load_judge
from gan.scoring.metrics import EVAL_SAMPLES, Scores, generator_per_class_fid, per_class_fid, score_generator


@pytest.mark.slow
def test_real_digits_score_low_and_a_wrong_class_scores_high():
    judge = load_judge()
    train = load_mnist(split="train")
    images, labels = train.images[:3000], train.labels[:3000]
    honest = per_class_fid(images, labels, judge)
    assert len(honest) == 10 and all(value is not None for value in honest)
    lying = per_class_fid(images, (labels + 1) % 10, judge)  # every digit asked for is drawn as the next one
    assert all(wrong > 5 * right for wrong, right in zip(lying, honest, strict=True))


def test_a_digit_without_samples_has_no_score():
    judge = load_judge()
    train = load_mnist(split="train")
    ones = train.labels[:500] == 1
    scores = per_class_fid(train.images[:500][ones], train.labels[:500][ones], judge)
    assert scores[1] is not None and scores[0] is None and scores.count(None) == 9


def test_a_conditional_generators_scores_carry_per_class_fid_through_json():
    torch.manual_seed(0)
    G = ConvGenerator(latent_dim=8, width=4, num_classes=10).eval()
    scores = score_generator(G, load_judge(), count=200)
    assert scores.per_class_fid is not None and len(scores.per_class_fid) == 10
    assert Scores.from_dict(json.loads(json.dumps(scores.to_dict()))) == scores
    unconditional = score_generator(ConvGenerator(latent_dim=8, width=4).eval(), load_judge(), count=200)
    assert unconditional.per_class_fid is None


def test_an_epochs_per_digit_fid_is_what_the_inside_page_measures_for_its_weights():
    """The epoch's score reuses its samples' features; the Inside page, for epochs saved without per-digit FID,
    draws and measures them afresh: the two must agree exactly, or a run's old and new epochs would not compare."""
    torch.manual_seed(0)
    G, judge = ConvGenerator(latent_dim=8, width=4, num_classes=10).eval(), load_judge()
    assert score_generator(G, judge, count=EVAL_SAMPLES).per_class_fid == generator_per_class_fid(G, judge)
