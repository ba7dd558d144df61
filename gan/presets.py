"""The presets: the model families a run can be, what each trains best with on a CPU, and the quick start.

A preset's values are defaults: `Config.for_preset` starts from them and any setting given explicitly wins.
"""

from __future__ import annotations

from typing import Any

PRESETS = ("classic", "dcgan", "cdcgan")  # an MLP GAN, a DCGAN, and the DCGAN told which digit to draw
DEFAULT_PRESET = "cdcgan"

# What each preset trains best with on a CPU, chosen with bench/quality.py: the runs behind each value, with their
# figures, are in bench/README.md ("Time to quality"). Anything given explicitly wins; the default preset's values
# are Config's own defaults (Adam's betas 0 / 0.99, R1 0.1, width 24, learning rates 1e-3: recognisable digits in
# 20 s instead of 30-40 s, and at 5 minutes level or ahead of 5e-4 on all three judges, two seeds on a bf16 CPU).
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "classic": {
        "latent_dim": 100,
        "width": 256,
        "batch_size": 128,
        "lr_g": 5e-4,
        "lr_d": 5e-4,
        "g_norm": "batch",
        "d_spread": "minibatch",
        "beta1": 0.5,
        "beta2": 0.999,
    },
    # the cdcgan's recipe at width 16, with the learning rates it was measured with
    "dcgan": {"latent_dim": 64, "width": 16, "batch_size": 64, "lr_g": 5e-4, "lr_d": 5e-4},
    "cdcgan": {"latent_dim": 64, "width": 24, "batch_size": 64, "lr_g": 1e-3, "lr_d": 1e-3},
}
# Short epochs (12,800 images) so that the timeline fills while a newcomer watches; width 8, the first digits soonest
# (bench/README.md, "cdcgan widths"); and fp32 even where bf16 is native: convolutions this narrow gain less from
# bf16 than its conversions cost, and on a 2-core bf16 CPU fp32 brings recognisable digits after 17-18 s of wall
# time instead of 21-22 s, in two seeds (bench/README.md, "a bf16 CPU again").
QUICK_START: dict[str, Any] = {
    "preset": "cdcgan",
    "epochs": 10,
    "steps_per_epoch": 200,
    "width": 8,
    "precision": "fp32",
}
