"""The CUDA path, on a machine with a CUDA GPU (skipped elsewhere); bench/gpu.py times it."""

import math

import pytest
import torch

from gan.jobs.runner import prepare_trainer, train_run
from gan.lab.slowmotion import SlowMotion
from gan.scoring.metrics import score_generator
from gan.store.run import Run, load_generator
from tests.conftest import tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_a_run_trains_on_the_gpu_and_is_scored_beside_it(root):
    run = Run.at("gpu", root)
    with run.lock():
        trainer = prepare_trainer(run, tiny_config(device="cuda", evaluate=True))
        train_run(run, trainer)
    assert all(parameter.is_cuda for parameter in trainer.G.parameters())
    last = run.history().epochs[-1]
    assert last.scores is not None and math.isfinite(last.scores.fid)
    on_cpu = score_generator(load_generator(run)[0])  # the saved epoch, scored on the CPU as `gan eval` does
    assert last.scores.fid == pytest.approx(on_cpu.fid, rel=1e-3)


def test_a_step_in_slow_motion_on_the_gpu(root):
    run = Run.at("gpu", root)
    with run.lock():
        trainer = prepare_trainer(run, tiny_config(device="cuda"))
    motion = SlowMotion(trainer)
    while not motion.done:
        motion.next()
    assert trainer.step == 1 and all(torch.isfinite(p).all() for p in trainer.G.parameters())
