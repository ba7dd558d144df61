"""Quality scores: FID on both judges, precision/recall/density/coverage, classifier score, collapse warnings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan.data import load_mnist
from gan.scoring.judge import Judges, load_judges
from gan.scoring.metrics import (
    NOISE_KEY,
    REAL_KEY,
    Scores,
    classifier_score,
    collapse_warnings,
    evaluate_images,
    fid,
    precision_recall_density_coverage,
    reference_scores,
)

REAL_FID_BOUND = 2.0  # measured: 1.3 for the first 3,000 train images vs the test set (1.0 for 5,000; noise: ~1,860)


@pytest.fixture(scope="session")
def judges() -> Judges:
    return load_judges()


@pytest.fixture(scope="session")
def judge(judges):
    return judges.first


@pytest.fixture(scope="session")
def train():
    return load_mnist(split="train")


@pytest.mark.slow
def test_fid_of_real_images_is_near_zero_and_far_below_noise(judge, train):
    real = evaluate_images(train.images[:3000], judge)
    noise = evaluate_images(torch.rand(3000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1, judge)
    assert real.fid < REAL_FID_BOUND
    assert noise.fid > 100 * real.fid
    assert real.classes_covered == 10 and real.warnings == ()


def test_single_digit_generator_is_flagged_as_collapsed(judge, train):
    threes = train.images[train.labels == 3][:2000]
    scores = evaluate_images(threes, judge)
    assert scores.classes_covered == 1
    assert "digit 3 is over-represented" in " ".join(scores.warnings)
    for digit in (0, 1, 2, 4, 5, 6, 7, 8, 9):
        assert any(warning.startswith(f"digit {digit} is missing") for warning in scores.warnings)
    assert scores.classifier_score < 1.5


@pytest.mark.slow
def test_label_agreement_is_the_share_of_images_read_as_their_label(judge):
    test = load_mnist(split="test")
    images, labels = test.images[:2000], test.labels[:2000]  # the judge's accuracy on all of them: test_judge.py
    scores = evaluate_images(images, judge, requested_labels=labels)
    assert scores.label_agreement == pytest.approx((judge(images).argmax(1) == labels).double().mean().item())
    assert scores.label_agreement >= 0.99
    assert evaluate_images(test.images[:100], judge).label_agreement is None


@pytest.mark.slow
def test_scores_are_deterministic(judge, train):
    images, labels = train.images[:1000], train.labels[:1000]
    assert evaluate_images(images, judge, labels) == evaluate_images(images, judge, labels)
    assert reference_scores(judge, n=500, seed=3) == reference_scores(judge, n=500, seed=3)


@pytest.mark.slow
def test_reference_scores_span_floor_to_ceiling_on_both_judges(judges):
    scores = reference_scores(judges, n=1000)
    assert scores[REAL_KEY].fid < scores[NOISE_KEY].fid
    assert scores[REAL_KEY].fid_second < scores[NOISE_KEY].fid_second
    assert scores[REAL_KEY].precision > 0.5 and scores[NOISE_KEY].precision < 0.05
    assert scores[REAL_KEY].coverage > 0.5 and scores[NOISE_KEY].coverage < 0.05
    assert scores[REAL_KEY].label_agreement >= 0.98
    assert scores[REAL_KEY].classifier_score > 9


def test_scores_round_trip_through_json(judges, train):
    scores = evaluate_images(train.images[:200], judges, train.labels[:200])
    assert scores.fid_second is not None and scores.density is not None
    assert Scores.from_dict(json.loads(json.dumps(scores.to_dict()))) == scores


def test_scores_saved_before_the_second_judge_still_load():
    saved = {"fid": 42.5, "classifier_score": 7.1, "histogram": [0.1] * 10, "classes_covered": 10,
             "mean_confidence": 0.8, "label_agreement": None, "warnings": []}  # fmt: skip
    scores = Scores.from_dict(saved)
    assert scores.fid == 42.5 and scores.fid_second is None and scores.precision is None and scores.coverage is None


def test_only_the_first_judge_gives_no_second_fid(judge, train):
    scores = evaluate_images(train.images[:200], judge)
    assert scores.fid_second is None and scores.precision is not None


def test_prdc_of_identical_sets():
    features = np.random.default_rng(0).normal(size=(500, 16))
    scores = precision_recall_density_coverage(features, features, k=5)
    assert scores.precision == scores.recall == scores.coverage == 1.0
    # each real ball holds its own centre and its k neighbours: (k + 1) / k per sample
    assert scores.density == pytest.approx(6 / 5)


def test_prdc_of_two_samples_of_one_distribution_is_near_one():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    scores = precision_recall_density_coverage(real, fake, k=5)
    assert scores.precision > 0.9 and scores.recall > 0.9 and scores.coverage > 0.9
    assert scores.density == pytest.approx(1.0, abs=0.1)


def test_prdc_of_disjoint_sets_is_zero():
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 100.0
    scores = precision_recall_density_coverage(real, fake, k=5)
    assert (scores.precision, scores.recall, scores.density, scores.coverage) == (0.0, 0.0, 0.0, 0.0)


def test_prdc_tells_a_narrow_generator_by_recall_and_coverage():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(2000, 8))
    narrow = rng.normal(size=(2000, 8)) * 0.3  # every sample realistic, a fraction of the variety
    scores = precision_recall_density_coverage(real, narrow, k=5)
    assert scores.precision > 0.9
    assert scores.recall < 0.5 and scores.coverage < 0.5


def test_prdc_rejects_too_few_points_and_mismatched_features():
    with pytest.raises(ValueError, match="k=5"):
        precision_recall_density_coverage(np.zeros((5, 3)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="feature sizes"):
        precision_recall_density_coverage(np.ones((10, 3)), np.ones((10, 4)))


def test_evaluate_rejects_wrong_shapes(judge):
    with pytest.raises(ValueError, match="shape"):
        evaluate_images(torch.zeros(10, 28, 28), judge)
    with pytest.raises(ValueError, match="requested_labels"):
        evaluate_images(torch.zeros(10, 1, 28, 28), judge, requested_labels=torch.zeros(3, dtype=torch.long))


def test_fid_of_gaussians_matches_closed_form():
    features = np.random.default_rng(0).normal(size=(20000, 4))
    assert fid(features, features) == pytest.approx(0.0, abs=1e-6)
    # same covariance, means 2 apart in each of 4 dimensions: ||mu_a - mu_b||^2 = 16
    assert fid(features, features + 2.0) == pytest.approx(16.0, abs=1e-6)


def test_fid_survives_singular_covariances():
    collapsed = np.zeros((100, 8))  # every sample identical: a rank-0 covariance
    spread = np.random.default_rng(0).normal(size=(100, 8))
    assert np.isfinite(fid(collapsed, spread))


def test_classifier_score_range():
    assert classifier_score(torch.zeros(100, 10)) == pytest.approx(1.0)
    confident_and_balanced = torch.eye(10).repeat(10, 1) * 100
    assert classifier_score(confident_and_balanced) == pytest.approx(10.0, rel=1e-6)


def test_collapse_warnings_name_missing_and_dominant_digits():
    histogram = [0.004, 0.41, 0.02] + [0.566 / 7] * 7
    warnings = collapse_warnings(histogram)
    assert warnings == [
        "digit 0 is missing (0.4% of samples, expected ~10%)",
        "digit 1 is over-represented (41% of samples, expected ~10%)",
        "digit 2 is rare (2.0% of samples, expected ~10%)",
    ]
    assert collapse_warnings([0.1] * 10) == []


@pytest.mark.slow
def test_each_epoch_is_scored_into_the_history_and_shown_by_eval(judge, root, capsys):
    from gan.__main__ import main
    from gan.jobs.runner import prepare_trainer, train_run
    from gan.store.run import Run
    from tests.conftest import tiny_config

    run = Run.at("scored")
    train_run(run, prepare_trainer(run, tiny_config(evaluate=True)))
    records = run.history().epochs
    scores = [record.scores for record in records]
    assert len(scores) == 2 and all(s.label_agreement is not None and s.fid > 0 for s in scores)
    assert all(s.fid_second > 0 and 0 <= s.precision <= 1 and 0 <= s.coverage <= 1 for s in scores)
    assert main(["eval", "--run", "scored"]) == 0
    printed = capsys.readouterr().out
    score_rows = [line for line in printed.splitlines() if line.startswith("epoch 2")]  # then per-digit FID
    assert f"{scores[1].fid:>8.2f}" in score_rows[0] and "real train vs test" in printed
    assert "diagnosis:" in printed, "the scores end with the diagnosis of the run"
