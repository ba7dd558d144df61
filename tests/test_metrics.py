"""The digit judge and its scores. The judge is trained once per test session, into the session's own cache."""

from __future__ import annotations

import json
import re
import shutil
import threading

import numpy as np
import pytest
import torch

from gan.data import load_mnist
from gan.metrics import (
    NOISE_KEY,
    REAL_KEY,
    Judge,
    JudgeError,
    Scores,
    classifier_score,
    collapse_warnings,
    evaluate_images,
    fid,
    judge_accuracy,
    judge_path,
    load_judge,
    reference_scores,
    save_judge,
)

REAL_FID_BOUND = 2.0  # measured: 0.9 for the first 5,000 train images vs the test set (noise: ~2,060)


@pytest.fixture(scope="session")
def judge() -> Judge:
    return load_judge()


@pytest.fixture(scope="session")
def train():
    return load_mnist(split="train")


@pytest.mark.slow
def test_judge_reaches_99_percent(judge):
    assert judge_accuracy(judge) >= 0.99


@pytest.mark.slow
def test_fid_of_real_images_is_near_zero_and_far_below_noise(judge, train):
    real = evaluate_images(train.images[:5000], judge)
    noise = evaluate_images(torch.rand(5000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1, judge)
    assert real.fid < REAL_FID_BOUND
    assert noise.fid > 100 * real.fid
    assert real.classes_covered == 10 and real.warnings == ()


@pytest.mark.slow
def test_single_digit_generator_is_flagged_as_collapsed(judge, train):
    threes = train.images[train.labels == 3][:2000]
    scores = evaluate_images(threes, judge)
    assert scores.classes_covered == 1
    assert "digit 3 is over-represented" in " ".join(scores.warnings)
    for digit in (0, 1, 2, 4, 5, 6, 7, 8, 9):
        assert any(warning.startswith(f"digit {digit} is missing") for warning in scores.warnings)
    assert scores.classifier_score < 1.5


@pytest.mark.slow
def test_label_agreement_on_real_test_images(judge):
    test = load_mnist(split="test")
    scores = evaluate_images(test.images, judge, requested_labels=test.labels)
    assert scores.label_agreement >= 0.99
    assert evaluate_images(test.images[:100], judge).label_agreement is None


@pytest.mark.slow
def test_scores_are_deterministic(judge, train):
    images, labels = train.images[:1000], train.labels[:1000]
    assert evaluate_images(images, judge, labels) == evaluate_images(images, judge, labels)
    assert reference_scores(judge, n=500, seed=3) == reference_scores(judge, n=500, seed=3)


@pytest.mark.slow
def test_reference_scores_span_floor_to_ceiling(judge):
    scores = reference_scores(judge, n=1000)
    assert scores[REAL_KEY].fid < scores[NOISE_KEY].fid
    assert scores[REAL_KEY].label_agreement >= 0.98
    assert scores[REAL_KEY].classifier_score > 9


@pytest.mark.slow
def test_scores_round_trip_through_json(judge, train):
    scores = evaluate_images(train.images[:200], judge, train.labels[:200])
    assert Scores.from_dict(json.loads(json.dumps(scores.to_dict()))) == scores


@pytest.mark.slow
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


def test_corrupt_cache_file_is_reported_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path))
    path = judge_path()
    assert path == tmp_path.resolve() / "judge" / "judge.safetensors"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage, not a safetensors file" * 10)
    with pytest.raises(JudgeError, match=re.escape(str(path))):
        load_judge(retrain_if_missing=False)


@pytest.mark.slow
def test_truncated_cache_file_is_reported(judge, tmp_path):
    path = judge_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(judge_path().read_bytes()[:5000])
    with pytest.raises(JudgeError, match="cannot load"):
        load_judge(tmp_path, retrain_if_missing=False)


def test_wrong_shapes_and_missing_file_are_reported(tmp_path):
    with pytest.raises(JudgeError, match="not found"):
        load_judge(tmp_path, retrain_if_missing=False)
    save_judge(Judge(width=8), judge_path(tmp_path))
    with pytest.raises(JudgeError, match="size mismatch"):
        load_judge(tmp_path, retrain_if_missing=False)


@pytest.mark.slow
def test_valid_copy_loads_once_and_matches(judge, tmp_path):
    path = judge_path(tmp_path)
    path.parent.mkdir(parents=True)
    shutil.copyfile(judge_path(), path)
    loaded = []
    threads = [threading.Thread(target=lambda: loaded.append(load_judge(tmp_path, False))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 4 and all(copy is loaded[0] for copy in loaded)
    assert float(loaded[0].metadata["accuracy"]) >= 0.99
    images = load_mnist(split="test").images[:64]
    with torch.inference_mode():
        assert torch.equal(loaded[0](images), judge(images))


@pytest.mark.slow
def test_each_epoch_is_scored_into_the_history_and_shown_by_eval(judge, root, capsys):
    from gan.__main__ import main
    from gan.checkpoints import Run
    from gan.runner import prepare_trainer, train_run
    from tests.conftest import tiny_config

    run = Run.at("scored")
    train_run(run, prepare_trainer(run, tiny_config(evaluate=True)))
    records = run.history().epochs
    scores = [Scores.from_dict(record.scores) for record in records]
    assert len(scores) == 2 and all(s.label_agreement is not None and s.fid > 0 for s in scores)
    assert main(["eval", "--run", "scored"]) == 0
    printed = capsys.readouterr().out
    score_rows = [line for line in printed.splitlines() if line.startswith("epoch 2")]  # then per-digit FID
    assert f"{scores[1].fid:>8.2f}" in score_rows[0] and "real train vs test" in printed
    assert "diagnosis:" in printed, "the scores end with the diagnosis of the run"
