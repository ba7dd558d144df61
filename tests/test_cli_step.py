"""`python -m gan step --run NAME`: one step of a saved run in slow motion, saved like any step; refused with one
line, and nothing written, for a run that is missing, damaged, held by another job, or finished."""

import shutil
from pathlib import Path

import pytest

from gan.store.checkpoints import load_state
from gan.store.run import Run
from gan.substeps import SubStep
from tests.conftest import assert_same_weights
from tests.test_slowmotion import one_step, same_record, saved_run


def files(run: Run) -> dict[Path, bytes]:
    """The run's files and their bytes (the lock file aside: it names whoever holds the run)."""
    return {path: path.read_bytes() for path in sorted(run.path.iterdir()) if path.is_file() and path.name != ".lock"}


def assert_refused(cli, name: str, words: str) -> None:
    code, out, err = cli("step", "--run", name)
    assert code == 1 and out == "" and words in err and err.count("\n") == 1


@pytest.mark.slow
def test_a_step_prints_its_ten_sub_steps_and_saves_what_one_of_each_saves(root, cli):
    saved_run(root, "base", steps=4)
    for name in ("stepped", "plain"):
        shutil.copytree(root / "base", root / name)
    code, out, err = cli("step", "--run", "stepped")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("run stepped: step 5 in slow motion") and "saved run stepped at step 5" in lines[-1]
    numbered = lines[1:-1]
    assert [line.split()[:2] for line in numbered] == [[str(n), s.value] for n, s in enumerate(SubStep, start=1)]
    assert "D(x)" in numbered[4] and "->" in numbered[4], "D's scores before and after its update"
    assert "D's loss" in numbered[2] and "G's gradient norm" in numbered[8] and numbered[9].endswith("step 5")
    one_step(Run.at("plain", root), slow=False)
    stepped, plain = (Run.at(name, root) for name in ("stepped", "plain"))
    assert_same_weights(load_state(plain.latest_path)[0], load_state(stepped.latest_path)[0])
    assert all(same_record(one, other) for one, other in zip(stepped.history().steps, plain.history().steps))
    assert [record.step for record in stepped.history().steps] == [1, 2, 3, 4, 5]


def test_a_missing_run_is_refused(root, cli):
    assert_refused(cli, "nowhere", "there is no run 'nowhere'")


def test_a_finished_run_is_refused_and_left_alone(good, cli):
    before = files(good)
    assert_refused(cli, "good", "is finished")
    assert files(good) == before


def test_a_damaged_run_is_refused_and_left_alone(root, cli):
    run = saved_run(root, "damaged", steps=2)
    run.latest_path.write_bytes(b"\x00" * 64)
    before = files(run)
    assert_refused(cli, "damaged", "cannot be resumed")
    assert files(run) == before


def test_a_run_another_job_holds_is_refused_and_left_alone(root, cli):
    run = saved_run(root, "held", steps=2)
    before = files(run)
    with run.lock():
        assert_refused(cli, "held", "is being trained by")
    assert files(run) == before
