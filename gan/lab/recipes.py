"""Failure recipes: settings that reproduce a classic GAN failure within a few minutes on a laptop CPU.

Each recipe is a named set of config values with a short explanation of what to watch and what it teaches; the
CLI (`python -m gan train --recipe NAME`) and the app's recipe buttons both start runs from here. Every recipe
was run and scored, and its grid looked at: the figures are in the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gan.config import Config, ConfigError


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    what: str  # what goes wrong, in one sentence
    watch: str  # what to look at on the charts and samples
    teaches: str
    settings: dict[str, Any] = field(default_factory=dict)  # Config.for_preset arguments, the preset included

    def config(self, **overrides: Any) -> Config:
        """The recipe's config; explicit overrides (None means 'not given') win."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return Config.for_preset(**{**self.settings, **given})

    @property
    def explanation(self) -> str:
        return f"{self.title}: {self.what} Watch: {self.watch} It teaches: {self.teaches}"


# Small networks and short epochs: each recipe fails within its first minutes on a laptop CPU (and its epochs,
# each saved with a grid and scores, come every few seconds); the failures do not depend on the size.
# The conv recipe keeps the dcgan preset's earlier Adam betas and no R1, the settings its failure was measured with.
_CONV = {"preset": "dcgan", "width": 16, "batch_size": 64, "beta1": 0.5, "beta2": 0.999, "r1_gamma": 0.0}
# The small classic GAN at the rates it trains well with (10 epochs: FID 145, every digit); the recipes start from it.
# No R1, as the recipes were measured.
SMALL_CLASSIC = {
    "preset": "classic",
    "r1_gamma": 0.0,
    "width": 64,
    "latent_dim": 32,
    "batch_size": 64,
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "steps_per_epoch": 400,
    "epochs": 30,
}

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            name="mode-collapse",
            title="Mode collapse",
            what="once G draws rough digits, D nearly stops learning (its learning rate drops from 2e-4 to 1e-5 at "
            "step 1,200, a scheduled change, while G keeps 1e-3): G, a hundred times faster than the D it plays "
            "against, maps every noise vector to the few images D likes best at the moment.",
            watch="after the marked change, the grid turning from varied rough digits into a few shapes repeated "
            "within two or three epochs, then mostly one, and the digits covered falling to one or two; D(G(z)) "
            "rises and G's loss falls as if G were winning. No EMA, so the grid is the raw G's.",
            teaches="it is D's constant adaptation that pushes G to cover every digit: a G much faster than its D "
            "collapses onto D's favourites, and calm or falling G losses do not mean a good generator.",
            settings={
                **SMALL_CLASSIC,
                "lr_g": 1e-3,
                "lr_d": 2e-4,
                "ema_decay": 0.0,
                "set_at": ("1200:lr_d=0.00001",),
                "epochs": 8,
            },  # fmt: skip
        ),
        Recipe(
            name="vanishing-gradients",
            title="Vanishing gradients",
            what="the original minimax G loss, log(1 - D(G(z))), against a D that learns faster: once D rejects the "
            "fakes, the loss is flat and G's gradient is near zero.",
            watch="D(G(z)) dropping to about 0 within the first steps, G's gradient norm falling, and the samples "
            "staying noise.",
            teaches="why practical GANs train G to maximise log D(G(z)) instead (the bce loss): same fixed point, "
            "strong gradients exactly when G is losing.",
            settings={**SMALL_CLASSIC, "loss": "saturating", "lr_d": 1e-3, "lr_g": 1e-4, "d_steps": 2},
        ),
        Recipe(
            name="overpowered-d",
            title="Overpowered discriminator",
            what="D takes five steps at a high learning rate for every small G step, so it always wins.",
            watch="D(x) pinned near 1 and D(G(z)) near 0 from the first steps, D's loss and gradient near 0 (it has "
            "nothing left to learn) and G's loss high; G's gradient norm is not tiny but about ten times a healthy "
            "run's (the non-saturating loss is steepest when G loses), yet its steps, 100 times smaller than D's, "
            "never catch up, and the samples stay noise.",
            teaches="a GAN is a balance: a D that always wins gives G only the direction of D's latest whim, not a "
            "way to digits, so D is kept no stronger than it needs to be. A winning D alone does not starve G of "
            "gradient: that takes the saturating loss as well (see vanishing-gradients).",
            settings={**SMALL_CLASSIC, "d_steps": 5, "lr_d": 2e-3, "lr_g": 2e-5, "epochs": 10},
        ),
        Recipe(
            name="unstable",
            title="Unstable training",
            what="learning rates five times the small classic GAN's 2e-4, with Adam's usual momentum (beta1 0.9, where "
            "the classic GAN uses 0.5): each player overshoots the other.",
            watch="the losses, D(x) and D(G(z)) swinging and spiking instead of settling, and the samples jumping "
            "from one kind of blob or noise to another from epoch to epoch instead of sharpening into digits: after "
            "thirty epochs they are still rough, crowded onto a few digits, where 2e-4 and beta1 0.5 "
            "draw every digit.",
            teaches="GANs need small steps: the two players chase a moving target, and large steps make them orbit "
            "the balance instead of reaching it.",
            settings={**SMALL_CLASSIC, "lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.9},
        ),
        Recipe(
            name="checkerboard",
            title="Checkerboard artefacts",
            what="G doubles its resolution with stride-2 transposed convolutions of a 5x5 kernel, which the stride "
            "does not divide: along each axis neighbouring output pixels receive 3 and 2 kernel taps, so the "
            "samples carry a regular grid of dots.",
            watch="the grid over the blobs that are becoming digits, in every epoch's samples (five epochs of 20 "
            "steps, so the Timeline shows each; no EMA, so the grid is the raw G's); the same run with --upsample "
            "nearest draws smooth blobs. Trained on, G learns to hide the grid within a few hundred steps.",
            teaches="why generators use resize-then-convolve or kernels divisible by the stride (4 with stride 2, as "
            "in the other presets: fainter, though any transposed convolution starts with some grid).",
            settings={**_CONV, "g_kernel": 5, "ema_decay": 0.0, "steps_per_epoch": 20, "epochs": 5},
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError("recipe", name, f"one of {', '.join(RECIPES)}")
    return RECIPES[name]
