"""The trainer: a few steps of each preset, determinism for a seed, R1 and augmentation, stop, pause and the time
budget, divergence, and the precision chosen for the hardware."""

import math
import threading

import pytest
import torch

import gan.device
from gan.control import Control
from gan.data import DEFAULT_DATA_DIR, Dataset, load_mnist
from gan.device import inference_bf16, use_bf16
from gan.losses import SHIFT, translate
from gan.train import Trainer, TrainingDiverged
from tests.conftest import tiny_config, wait_for


class ParkedControl(Control):
    """A Control that counts the loop's waits while paused: once the count grows, every step begun before the pause
    is done and reported, and the loop is parked until there is work."""

    def __init__(self) -> None:
        super().__init__()
        self.parked = 0

    def wait_for_work(self) -> None:
        if self.paused:
            self.parked += 1
        super().wait_for_work()


@pytest.fixture(scope="module")
def data():
    return load_mnist(DEFAULT_DATA_DIR, "train")


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{name}/{key}": value.clone()
        for name in ("G", "G_ema", "D")
        for key, value in getattr(trainer, name).state_dict().items()
    }


@pytest.mark.parametrize("preset", ["classic", "dcgan", "cdcgan"])
def test_a_few_steps_give_finite_losses_and_change_the_weights(preset, data):
    trainer = Trainer(tiny_config(preset), data)
    before = weights(trainer)
    steps = []
    assert trainer.run(on_step=steps.append) == "finished"
    assert len(steps) == 6 and trainer.epoch == 2
    assert all(math.isfinite(s.loss_d) and math.isfinite(s.loss_g) and 0 <= s.d_real <= 1 for s in steps)
    after = weights(trainer)
    changed = [key for key in before if key.endswith("weight") and not torch.equal(before[key], after[key])]
    assert any(key.startswith("G/") for key in changed) and any(key.startswith("D/") for key in changed)


def test_same_seed_same_weights_other_seed_other_weights(data):
    first, second, other = (Trainer(tiny_config(seed=seed), data) for seed in (3, 3, 4))
    for trainer in (first, second, other):
        trainer.run()
    a, b, c = weights(first), weights(second), weights(other)
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not all(torch.equal(a[key], c[key]) for key in a)


def test_the_r1_penalty_updates_d_every_16_steps_and_stays_deterministic(data):
    plain, first, second = (
        Trainer(tiny_config(r1_gamma=gamma, steps_per_epoch=17, epochs=1), data) for gamma in (0, 1, 1)
    )
    r1_updates = []
    real_update = first._regularise_d
    first._regularise_d = lambda *args: (r1_updates.append(first.step), real_update(*args))
    for trainer in (plain, first, second):
        trainer.run()
    assert r1_updates == [0, 16]
    a, b, c = weights(first), weights(second), weights(plain)
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not all(torch.equal(a[key], c[key]) for key in a if key.startswith("D/"))


def test_translate_moves_each_digit_whole_within_three_pixels_and_passes_gradients():
    images = torch.full((200, 1, 28, 28), -1.0)
    images[:, 0, 14, 14] = 1.0  # one lit pixel
    images.requires_grad_(True)
    moved = translate(images, torch.Generator().manual_seed(0))
    assert moved.shape == images.shape and (moved == 1.0).flatten(1).sum(1).eq(1).all()
    rows, cols = torch.nonzero(moved[:, 0] == 1.0)[:, 1:].T
    assert (rows - 14).abs().max() == SHIFT and (cols - 14).abs().max() == SHIFT
    assert len(set(zip(rows.tolist(), cols.tolist()))) == (2 * SHIFT + 1) ** 2  # every offset is drawn
    moved.sum().backward()
    assert images.grad[:, 0, 14, 14].eq(1).all()  # every moved pixel passes its gradient back


def test_an_augmented_run_trains_deterministically_and_differs_from_a_plain_one(data):
    plain, first, second = (
        Trainer(tiny_config(augment=augment), data) for augment in ("none", "translate", "translate")
    )
    for trainer in (plain, first, second):
        trainer.run()
    a, b, c = weights(first), weights(second), weights(plain)
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not all(torch.equal(a[key], c[key]) for key in a)


def test_stop_is_honoured_within_one_step(data):
    control = Control()
    trainer = Trainer(tiny_config(steps_per_epoch=50), data)
    outcome = trainer.run(control, on_step=lambda m: control.stop() if m.step == 4 else None)
    assert outcome == "stopped" and trainer.step == 4


def test_a_paused_loop_applies_changes_but_takes_no_step_until_resumed(data):
    control = ParkedControl()
    trainer = Trainer(tiny_config(steps_per_epoch=10), data)
    control.pause()
    worker = threading.Thread(target=trainer.run, args=(control,))
    worker.start()
    wait_for(lambda: control.parked == 1)
    control.change("lr_d", 0.002)  # wakes the loop: it applies the change and parks again, without a step
    wait_for(lambda: control.parked == 2)
    assert trainer.step == 0 and trainer.config.lr_d == 0.002 and worker.is_alive()
    control.resume()
    worker.join(30)
    assert trainer.finished and trainer.step == 20


def test_the_time_budget_ends_training_at_the_first_step_past_it(data):
    trainer, steps = Trainer(tiny_config(steps_per_epoch=1000, epochs=1000), data), []
    assert trainer.run(on_step=steps.append, max_seconds=0.2) == "time_budget"
    seconds_before_last = steps[-2].seconds if len(steps) > 1 else 0.0
    assert seconds_before_last < 0.2 <= steps[-1].seconds == trainer.seconds


def test_nan_loss_stops_training_before_the_step_is_applied(data):
    poisoned = Dataset(data.images[:64].clone(), data.labels[:64])
    poisoned.images[40:] = float("nan")  # batches 0-1 are clean; the first shuffled batch with a NaN image stops it
    trainer = Trainer(tiny_config("classic", steps_per_epoch=4, epochs=3), poisoned)
    with pytest.raises(TrainingDiverged, match="loss became nan.*lr_g, lr_d"):
        trainer.run()
    assert all(torch.isfinite(p).all() for p in trainer.D.parameters())


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_trains_in_bf16_only_where_the_hardware_computes_it(native, data, monkeypatch):
    """Emulated bf16 (an AVX2-only CPU) is over ten times slower than fp32: "auto" must not choose it there."""
    monkeypatch.setattr(gan.device, "native_bf16", lambda device: native)
    assert Trainer(tiny_config(), data).bf16 is native, "auto is the default"
    assert Trainer(tiny_config(precision="bf16"), data).bf16, "an explicit bf16 is honoured"
    assert not Trainer(tiny_config(precision="fp32"), data).bf16
    assert use_bf16("auto", torch.device("cpu")) is native
    assert inference_bf16("bf16") is native, "a bf16 run's samples are drawn in fp32 where bf16 would be emulated"
    assert not inference_bf16("fp32")


def test_whole_numbers_given_for_rates_train_as_floats(data):
    config = tiny_config(beta1=0, lr_g=1)  # as a hand-written config.json may hold them
    assert isinstance(config.beta1, float) and isinstance(config.lr_g, float)
    Trainer(config, data)  # Adam refuses betas of (0, 0.99)


@pytest.mark.parametrize(
    ("flags", "capability", "native"),
    [
        ("fpu avx2 avx512f avx512_bf16", "AVX512", True),
        ("fpu avx2 avx512f avx512_bf16", "AVX2", False),  # ATEN_CPU_CAPABILITY=avx2: a laptop CPU imitated
        ("fpu avx2 amx_bf16 amx_tile", "AVX512", True),
        ("fpu avx2", "AVX2", False),
        ("fp asimd bf16", "DEFAULT", True),  # Arm
    ],
)
def test_a_cpu_computes_bf16_when_it_has_the_instructions_and_may_use_them(flags, capability, native, monkeypatch):
    monkeypatch.setattr(gan.device.Path, "read_text", lambda self, errors=None: f"flags\t: {flags}\n")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    gan.device._cpu_computes_bf16.cache_clear()
    try:
        assert gan.device.native_bf16(torch.device("cpu")) is native
    finally:
        gan.device._cpu_computes_bf16.cache_clear()
