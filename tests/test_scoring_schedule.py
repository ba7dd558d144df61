import threading

import pytest
import torch

import gan.jobs.runner
from gan.jobs.runner import prepare_trainer, train_run
from gan.jobs.scoring import EpochScorer, ScoringFailed
from gan.models import build_generator
from gan.scoring.metrics import score_generator
from gan.store.history import EpochRecord
from gan.store.run import Run, load_generator
from tests.conftest import tiny_config, wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(epoch: int) -> EpochRecord:
    return EpochRecord(epoch, step=epoch * 3, seconds=float(epoch))


def generator() -> torch.nn.Module:
    return build_generator(tiny_config()).eval()


@pytest.mark.slow
def test_a_runs_recorded_scores_are_the_inline_scores_of_its_saved_epochs(root):
    """Epoch 1 is scored while epoch 2 trains on; each record still holds the scores of its own epoch's weights."""
    run = Run.at("scored", root)
    with run.lock():
        train_run(run, prepare_trainer(run, tiny_config(epochs=2, steps_per_epoch=5, evaluate=True)))
    records = run.history().epochs
    assert [record.epoch for record in records] == [1, 2]
    for record in records:
        G, _, _ = load_generator(run, record.epoch)
        assert record.scores == score_generator(G)
    assert records[0].scores != records[1].scores, "the two epochs' weights differ"


def test_an_unscored_run_hands_each_epoch_back_at_once():
    scorer = EpochScorer(generator(), None)
    assert not scorer.submit(record(1), last=True)
    assert scorer.ready() == [record(1)]


def test_training_goes_on_while_an_epoch_is_scored():
    release, scoring = threading.Event(), threading.Event()

    def slow_score(G):
        scoring.set()
        release.wait(60)
        return "scores"

    scorer = EpochScorer(generator(), slow_score, share=1.0)
    scorer.submit(record(1))
    wait_for(scoring.is_set)
    scorer.submit(record(2))  # the worker is busy: epoch 2 is saved unscored, in its turn
    assert scorer.ready() == [], "epoch 1's record waits for its scores, and epoch 2's for epoch 1's"
    release.set()
    assert [(r.epoch, r.scores) for r in scorer.finish()] == [(1, "scores"), (2, None)]


def test_epochs_are_scored_within_the_share_and_the_last_always():
    clock = FakeClock()

    def score(G):  # each score takes 5 s of the clock
        clock.now += 5
        return f"scored at {clock.now:.0f}"

    scorer = EpochScorer(generator(), score, share=0.1, clock=clock)
    records = []
    for epoch in range(1, 21):  # an epoch every 10 s; scoring may take 10% of the time so far
        clock.now = 10.0 * epoch
        scorer.submit(record(epoch), last=epoch == 20)
        wait_for(lambda: scorer.idle)
        records += scorer.ready()
    records += scorer.finish()
    assert [r.epoch for r in records] == list(range(1, 21))
    # epoch 1: free; then 5 s spent + 5 s for this score + 5 s for the last's: within 10% from 150 s on (epoch 15,
    # whose score ends at 155 s); then 10 + 10 s from 200 s on: only the last, always scored
    assert [r.epoch for r in records if r.scores] == [1, 15, 20]
    assert clock.now == 205 and 15 / 205 < 0.1, "the scores took under a tenth of the time"
    assert [r.score_seconds for r in records if r.scores] == [5, 5, 5], "each scored epoch says how long it took"
    assert all(r.score_seconds is None for r in records if not r.scores)


def test_a_failed_score_fails_on_the_training_thread():
    def broken(G):
        raise ValueError("judge file damaged")

    scorer = EpochScorer(generator(), broken, share=1.0)
    scorer.submit(record(1))
    wait_for(lambda: scorer.idle)
    with pytest.raises(ScoringFailed, match="judge file damaged"):
        scorer.ready()
    assert not scorer.submit(record(2), last=True), "nothing is scored after a failure"
    assert [(r.epoch, r.scores) for r in scorer.ready() + scorer.finish()] == [(1, None), (2, None)]


def test_a_failed_score_fails_the_run_with_its_epochs_saved_and_recorded(root, monkeypatch):
    def broken(G):
        raise ValueError("judge file damaged")

    monkeypatch.setattr(gan.jobs.runner, "score_generator", broken)
    run = Run.at("broken", root)
    with run.lock(), pytest.raises(ScoringFailed, match="judge file damaged"):
        train_run(run, prepare_trainer(run, tiny_config(epochs=2, evaluate=True, checkpoint_every=1)))
    assert 1 in run.epochs()
    assert [record.epoch for record in run.history().epochs] == run.epochs()
    assert all(record.scores is None for record in run.history().epochs)


def test_finish_gives_up_after_its_timeout_and_keeps_the_epoch_unscored():
    release = threading.Event()
    scorer = EpochScorer(generator(), lambda G: release.wait(60) and "late", share=1.0)
    scorer.submit(record(1), last=True)
    assert [(r.epoch, r.scores) for r in scorer.finish(timeout=0.05)] == [(1, None)]
    release.set()


def test_no_scoring_thread_is_left_waiting_between_scores():
    """A live thread that has run PyTorch's parallel operations slows the training thread's even while it waits:
    the worker ends once it has nothing to score, and the next score starts another."""
    scorer = EpochScorer(generator(), lambda G: "scores", share=1.0)
    scorer.submit(record(1))
    first = scorer.thread
    wait_for(lambda: not first.is_alive())
    assert scorer.submit(record(2)), "the worker is idle and scoring has taken no time yet"
    wait_for(lambda: scorer.idle)
    assert scorer.thread is not first
    assert [(r.epoch, r.scores) for r in scorer.ready() + scorer.finish()] == [(1, "scores"), (2, "scores")]


def test_every_epoch_submitted_in_a_burst_is_scored_in_order():
    """Epochs that must be scored arrive while workers score, end and start: none is lost or scored twice."""
    scorer = EpochScorer(generator(), lambda G: "scores")
    for epoch in range(1, 101):
        assert scorer.submit(record(epoch), last=True)
    records = scorer.ready() + scorer.finish(timeout=60)
    assert [(r.epoch, r.scores) for r in records] == [(epoch, "scores") for epoch in range(1, 101)]
