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
# No R1 and no batch spread in D, as the recipes were measured (both work against the failures they show).
SMALL_CLASSIC = {
    "preset": "classic",
    "r1_gamma": 0.0,
    "d_spread": "none",
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
            what="Once G draws rough digits, D almost stops learning: at step 1,200 its learning rate drops from "
            "2e-4 to 1e-5, while G keeps 1e-3. G is now a hundred times faster than D. It learns to turn every "
            "noise vector into the few images D likes best.",
            watch="After the marked change, the varied rough digits turn into a few shapes, then mostly one. The "
            "number of digits drawn falls to one or two. D(G(z)) rises and G's loss falls, as if G were winning. "
            "There is no EMA here, so the grid shows G itself.",
            teaches="D keeps changing its mind, and that is what pushes G to draw every digit. A G much faster than "
            "its D collapses onto D's favourites. A calm or falling G loss does not mean a good generator.",
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
            what="G uses the original minimax loss, log(1 - D(G(z))), against a D that learns faster. Once D "
            "rejects every fake, that loss is flat, so G's gradient is close to zero.",
            watch="D(G(z)) drops to about 0 in the first steps, G's gradient norm falls, and the samples stay noise.",
            teaches="This is why GANs train G to maximise log D(G(z)) instead (the bce loss). Both losses aim at the "
            "same balance, but this one gives G strong gradients exactly when G is losing.",
            settings={**SMALL_CLASSIC, "loss": "saturating", "lr_d": 1e-3, "lr_g": 1e-4, "d_steps": 2},
        ),
        Recipe(
            name="overpowered-d",
            title="Overpowered discriminator",
            what="D takes five steps at a high learning rate for every small G step, so D always wins.",
            watch="From the first steps D(x) stays near 1 and D(G(z)) near 0. D's loss and gradient are near 0: it "
            "has nothing left to learn. G's loss stays high. G's gradient is not small (about ten times a healthy "
            "run's), but its steps are 100 times smaller than D's and never catch up. The samples stay noise.",
            teaches="A GAN is a balance. A D that always wins only tells G about its latest whim, not the way to "
            "digits, so D should be no stronger than it needs to be. A winning D alone does not take away G's "
            "gradient: that also needs the saturating loss (see the vanishing-gradients recipe).",
            settings={**SMALL_CLASSIC, "d_steps": 5, "lr_d": 2e-3, "lr_g": 2e-5, "epochs": 10},
        ),
        Recipe(
            name="unstable",
            title="Unstable training",
            what="Both learning rates are five times the small classic GAN's 2e-4, with more momentum (Adam's beta1 "
            "0.9 instead of 0.5). Each player overshoots the other.",
            watch="The losses, D(x) and D(G(z)) swing and spike instead of settling. The samples jump from one kind "
            "of blob to another instead of sharpening into digits. After thirty epochs they are still rough and "
            "show only a few digits; with 2e-4 and beta1 0.5 every digit appears.",
            teaches="GANs need small steps. Each player chases a moving target, and large steps make them circle "
            "the balance instead of reaching it.",
            settings={**SMALL_CLASSIC, "lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.9},
        ),
        Recipe(
            name="checkerboard",
            title="Checkerboard artefacts",
            what="G doubles the image size at each layer by spreading every pixel over a 5x5 patch two pixels "
            "apart (a transposed convolution). The patches overlap unevenly: neighbouring pixels get 3 and 2 "
            "contributions. So the samples carry a regular grid of dots.",
            watch="A grid of dots over the blobs that are becoming digits, in every epoch (five short epochs, no "
            "EMA). The same run with --upsample nearest draws smooth blobs. Trained longer, G learns to hide the "
            "grid within a few hundred steps.",
            teaches="This is why generators resize first and then convolve, or use a patch size the step divides "
            "(4 with a step of 2, as the other presets do: a fainter grid at first).",
            settings={**_CONV, "g_kernel": 5, "ema_decay": 0.0, "steps_per_epoch": 20, "epochs": 5},
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError("recipe", name, f"one of {', '.join(RECIPES)}")
    return RECIPES[name]
