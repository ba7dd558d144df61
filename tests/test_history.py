"""A run's history file: records parsed only when whole and well-typed, bad lines skipped and counted, and the last
step and the epochs read without the whole file."""

from __future__ import annotations

import json

import pytest

from gan.store.history import (
    EpochRecord,
    Player,
    StepRecord,
    last_step_record,
    parse_record,
    read_epoch_records,
    read_history,
)
from gan.store.listing import list_runs
from tests.conftest import DEEP


def test_a_deeply_nested_history_line_is_skipped_and_counted(good):
    with open(good.path / "history.jsonl", "a") as handle:
        handle.write(DEEP + "\n")
    history = good.history()
    assert history.skipped == 1 and len(history.steps) == 6
    assert list_runs()[0].error is None


@pytest.mark.parametrize(
    "line",
    [{"kind": "step"}, {"kind": "epoch"}, {"kind": "step", "step": "5"}, [1, 2], {"kind": "epoch", "epoch": 1.5}],
)
def test_a_malformed_history_record_is_rejected(line):
    assert parse_record(line) is None


def test_a_step_record_with_nan_is_rejected():
    record = StepRecord(1, 0, 1, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 10.0, 1.0).to_dict()
    assert parse_record(record) == StepRecord(**{k: v for k, v in record.items() if k != "kind"})
    assert parse_record({**record, "loss_d": float("nan")}) is None
    assert parse_record({**record, "players": "g"}).players is Player.G
    assert parse_record({**record, "players": "x"}) is None, "players are d, g or dg"


def test_a_history_without_step_numbers_does_not_break_runs_or_the_timeline_data(root, good, cli):
    with open(good.path / "history.jsonl", "a") as handle:
        handle.write('{"kind": "step"}\n{"kind": "epoch"}\n')
    code, out, _ = cli("runs")
    assert code == 0 and "good" in out
    assert good.last_step().step == 6 and [record.epoch for record in good.epoch_records()] == [1, 2]


def test_the_last_step_and_the_epochs_are_read_without_the_whole_history(tmp_path):
    path = tmp_path / "history.jsonl"
    lines = []
    for step in range(1, 3001):
        lines.append(json.dumps(StepRecord(step, step // 10, step % 10, 0.1, 0.2, 0.3, 0.4, 1, 1, 5, step).to_dict()))
        if step % 10 == 0:
            lines.append(json.dumps(EpochRecord(step // 10, step, float(step)).to_dict()))
    path.write_text("\n".join(lines) + '\n{"kind": "step", "step": 3001}\n{"torn')
    assert last_step_record(path).step == 3000
    assert [record.epoch for record in read_epoch_records(path)] == list(range(1, 301))
    history = read_history(path)
    assert history.skipped == 2 and history.steps[-1] == last_step_record(path)


SAVED_SCORES = {  # as the first scored runs wrote them, before the second judge and the neighbour scores
    **{"fid": 42.5, "classifier_score": 7.1, "histogram": [0.1] * 10, "classes_covered": 9},
    **{"mean_confidence": 0.8, "label_agreement": None, "warnings": ["digit 1 is rare"]},
}


def test_an_epochs_scores_come_back_typed_and_old_runs_scores_still_load():
    record = parse_record({"kind": "epoch", "epoch": 1, "step": 3, "seconds": 1.5, "scores": SAVED_SCORES})
    scores = record.scores
    assert scores.fid == 42.5 and scores.histogram == (0.1,) * 10 and scores.warnings == ("digit 1 is rare",)
    assert scores.fid_second is None and scores.per_class_fid is None, "fields added later read as not measured"
    assert parse_record(json.loads(json.dumps(record.to_dict()))) == record, "written as it is read"


@pytest.mark.parametrize(
    "damage",
    [
        {"fid": "42"},
        {"fid": True},
        {"histogram": [0.1] * 9},
        {"classes_covered": 11},
        {"warnings": "rare"},
        {"recall": [0.5]},
        {"per_class_fid": [1.0] * 10 + [2.0]},
        {"per_class_fid": ["x"] * 10},
    ],
)
def test_damaged_scores_read_as_none_and_the_epoch_stays(damage):
    record = parse_record({"kind": "epoch", "epoch": 1, "step": 3, "seconds": 1.5, "scores": SAVED_SCORES | damage})
    assert isinstance(record, EpochRecord) and record.epoch == 1 and record.scores is None


@pytest.mark.parametrize("took", [2.5, -1.0, "2.5", float("nan"), None])
def test_a_scores_time_is_kept_and_a_bad_one_reads_as_unknown(took):
    line = {"kind": "epoch", "epoch": 1, "step": 3, "seconds": 1.5, "scores": SAVED_SCORES, "score_seconds": took}
    record = parse_record(json.loads(json.dumps(line)))
    assert record.scores is not None, "the epoch and its scores stay"
    assert record.score_seconds == (2.5 if took == 2.5 else None)
    assert parse_record(json.loads(json.dumps(record.to_dict()))) == record, "written as it is read"


@pytest.mark.parametrize("missing", ["fid", "histogram", "classes_covered", "warnings"])
def test_scores_missing_a_field_every_version_wrote_read_as_none(missing):
    kept = {key: value for key, value in SAVED_SCORES.items() if key != missing}
    assert parse_record({"kind": "epoch", "epoch": 1, "step": 3, "seconds": 1.5, "scores": kept}).scores is None
