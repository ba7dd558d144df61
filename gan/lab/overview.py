"""The overview graph's data: the GAN as one system, drawn from a run's real tensors.

Noise z goes into G; G's fakes and the batch's real digits go into D; D's scores turn into two losses; D's
gradients flow back into D, G's back through D into G. `overview_frame` reads the shown samples of the trainer's
latest step (the small copy `Trainer.shown` it keeps after every step) and adds where D pushes each shown fake
(the push map of `gan.lab.probe`); `overview_from_run` builds a frame for a saved run with no live trainer. The
networks' boxes name their layers' output shapes, measured by a forward pass on the meta device (no memory, no
change to the run's modules).

Call `overview_frame` on the thread that trains (or with training stopped): the push map runs the trainer's D.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import torch
from torch import nn

from gan.config import Config
from gan.data import DEFAULT_DATA_DIR, IMAGE_SIZE, batches, load_mnist
from gan.lab.probe import push
from gan.losses import d_belief
from gan.models import build_discriminator, build_generator, count_parameters
from gan.store.checkpoints import CheckpointError, load_state, printable
from gan.store.run import Run
from gan.store.shipped import is_shipped, start_from_weights
from gan.substeps import ShownStep
from gan.train import Trainer

SHOWN = 8  # samples the graph shows by default
# Layers with no output of their own in the chain: a reshape, and the label embeddings (a side input)
NOT_IN_CHAIN = (nn.Flatten, nn.Embedding)

NODE_HELP: dict[str, str] = {
    "noise": "Random vectors z, one per sample, drawn fresh every step: the only input G ever gets. For the "
    "conditional preset the digit asked for goes in beside it. Nearby vectors give similar digits.",
    "generator": "G turns each noise vector into a 28x28 image. It never sees a real digit: it learns only from "
    "D's verdict on its fakes, through the gradient that flows back through D.",
    "fakes": "G's images this step. Early on they are blobs; watch them sharpen into strokes, and watch for "
    "every sample looking alike (mode collapse). The push map shows where D wants each one's ink moved.",
    "reals": "Digits from this step's batch of MNIST. Only D sees them; G learns what digits look like solely "
    "through D's verdicts.",
    "discriminator": "D scores each image: how real it looks. It sees both the real digits and G's fakes, and "
    "learns to tell them apart. If it wins too easily, G stops learning.",
    "predictions": "D's score for each image, from fake to real. A healthy game keeps them away from the ends: "
    "reals near the top and fakes near the bottom, every step, means D has won and G's gradient fades.",
    "loss_d": "How wrong D is about this batch: low when it scores reals high and fakes low. D's loss near zero "
    "is a warning: D is certain, and its verdict no longer tells G which way to improve.",
    "loss_g": "How little D believes G's fakes: G lowers it by making D score them as real. A G loss that climbs "
    "while D's falls to zero means D is winning and G is starved of gradient.",
    "grad_d": "D's loop: both predictions -> D's loss -> gradients back into D's weights. Its norm says how hard "
    "D is pushed this step; a norm near zero means D has nothing left to learn from this batch.",
    "grad_g": "G's loop: the fakes' predictions -> G's loss -> gradients back through D (frozen) into G. The push "
    "map shows them on the pixels: where D wants more ink (one colour) and less (the other). When D saturates "
    "they vanish, which is why D's loss at zero starves G.",
}


@dataclass(frozen=True)
class NetworkBox:
    name: str  # "Generator" or "Discriminator"
    shapes: tuple[str, ...]  # the input, then each layer's output shape, e.g. ("z 74", "96x7x7", ..., "1x28x28")
    parameters: int
    learning_rate: float


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class OverviewFrame:
    """One step as the graph draws it: its first `k` samples and what the step measured."""

    step: int  # the step these tensors come from (counted from 1)
    loss: str  # the loss in force at that step
    critic: bool  # True for wgan-gp: D's outputs are critic scores, not probabilities
    z: torch.Tensor  # (k, latent_dim), CPU float
    digits: tuple[int, ...] | None  # the digit asked for, conditional preset only
    fakes: torch.Tensor  # (k, 1, 28, 28) in [-1, 1]
    reals: torch.Tensor  # (k, 1, 28, 28) in [-1, 1]
    d_fake: tuple[float, ...]  # D's probability that each image is real (0 to 1), or its critic score
    d_real: tuple[float, ...]
    loss_d: float
    loss_g: float
    grad_norm_d: float
    grad_norm_g: float
    push: torch.Tensor  # (k, 1, 28, 28): where D pushes each fake, minus the gradient of G's loss (> 0: more ink)
    generator: NetworkBox
    discriminator: NetworkBox
    d_steps: int  # D updates per G update


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape) or "1"


def _chain(model: nn.Module, *inputs: torch.Tensor) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """The input shape of the model's first layer and the output shapes along its layers (batch dimension left
    out), each new shape once; a flat vector reshaped into as many numbers shows as the shape it becomes."""
    seen: list[tuple[int, ...]] = []
    first_input: list[tuple[int, ...]] = []

    def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if not first_input:
            first_input.append(tuple(args[0].shape[1:]))
        seen.append(tuple(output.shape[1:]))

    leaves = [leaf for leaf in model.modules() if not list(leaf.children()) and not isinstance(leaf, NOT_IN_CHAIN)]
    hooks = [leaf.register_forward_hook(record) for leaf in leaves]
    try:
        seen.append(tuple(model(*inputs).shape[1:]))  # the model's own output comes last (hooks run first)
    finally:
        for hook in hooks:
            hook.remove()
    chain: list[tuple[int, ...]] = []
    for shape in (shape or (1,) for shape in seen):
        if chain and chain[-1] == shape:
            continue
        if chain and len(chain[-1]) == 1 and len(shape) > 1 and math.prod(shape) == chain[-1][0]:
            chain[-1] = shape  # a reshape, not a layer
            continue
        chain.append(shape)
    return first_input[0], chain


@functools.lru_cache(maxsize=16)
def network_shapes(config: Config) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The shapes in G's and D's boxes, from the preset's own modules built on the meta device."""
    with torch.device("meta"):
        G, D = build_generator(config).eval(), build_discriminator(config).eval()
        z = torch.zeros(2, config.latent_dim)
        y = torch.zeros(2, dtype=torch.long) if config.conditional else None
        image = torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE)
        g_input, g_chain = _chain(G, z, y)
        _, d_chain = _chain(D, image, y)
    generator = (f"z {_shape_text(g_input)}", *map(_shape_text, g_chain))
    return generator, (_shape_text(tuple(image.shape[1:])), *map(_shape_text, d_chain))


def network_boxes(trainer: Trainer) -> tuple[NetworkBox, NetworkBox]:
    config = trainer.config
    g_shapes, d_shapes = network_shapes(config)
    return (
        NetworkBox("Generator", g_shapes, count_parameters(trainer.G), config.lr_g),
        NetworkBox("Discriminator", d_shapes, count_parameters(trainer.D), config.lr_d),
    )


def scores(loss: str, logits: torch.Tensor) -> torch.Tensor:
    """D's outputs as shown: beliefs that images are real (0 to 1), or the critic's scores for wgan-gp."""
    belief = d_belief(loss, logits)
    return logits if belief is None else belief


def push_maps(D: nn.Module, fakes: torch.Tensor, labels: torch.Tensor | None, loss: str) -> torch.Tensor:
    """Where D pushes each fake (k, 1, 28, 28): minus the gradient of G's loss on its pixels, each fake judged
    among the other shown fakes (D compares a batch's spread). Leaves D's weights and gradients untouched; computed
    on the CPU (a copy of D when it is elsewhere)."""
    D, fakes = _cpu_copy(D), fakes.detach().float().cpu()
    labels = None if labels is None else labels.cpu()
    maps = []
    for index in range(len(fakes)):
        others = torch.cat([fakes[:index], fakes[index + 1 :]])
        label = None if labels is None else int(labels[index])
        other_labels = None if labels is None else torch.cat([labels[:index], labels[index + 1 :]])
        maps.append(push(D, fakes[index], label, loss, others, other_labels).direction)
    return torch.stack(maps).unsqueeze(1) if maps else torch.zeros_like(fakes)


def frame_of(
    trainer: Trainer, shown: ShownStep, count: int = SHOWN, push_map: torch.Tensor | None = None
) -> OverviewFrame:
    """The frame of a kept step: its first `count` samples, the push map computed now with the trainer's D
    (unless given), and the networks' boxes as they are now."""
    k = min(count, len(shown.fake))
    fakes, labels, loss = shown.fake[:k].cpu(), None if shown.labels is None else shown.labels[:k].cpu(), shown.loss
    record = shown.record
    generator, discriminator = network_boxes(trainer)
    if push_map is None:
        push_map = push_maps(trainer.D, fakes, labels, loss)
    return OverviewFrame(
        step=record.step,
        loss=loss,
        critic=loss == "wgan-gp",
        z=shown.z[:k].cpu(),
        digits=None if labels is None else tuple(labels.tolist()),
        fakes=fakes,
        reals=shown.real[:k].cpu(),
        d_fake=tuple(scores(loss, shown.logits_fake[:k]).cpu().tolist()),
        d_real=tuple(scores(loss, shown.logits_real[:k]).cpu().tolist()),
        loss_d=record.loss_d,
        loss_g=record.loss_g,
        grad_norm_d=record.grad_norm_d,
        grad_norm_g=record.grad_norm_g,
        push=push_map[:k],
        generator=generator,
        discriminator=discriminator,
        d_steps=trainer.config.discriminator_steps,
    )


def _cpu_copy(D: nn.Module) -> nn.Module:
    """D on the CPU for the push map: the module itself when it is there, else a copy."""
    if next(D.parameters()).device.type == "cpu":
        return D
    return copy.deepcopy(D).cpu()


def next_batch(trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch (images, labels) the training loop would take its next step on."""
    config, epoch, batch = trainer.config, trainer.epoch, trainer.batch
    if batch >= trainer.steps_per_epoch:  # an epoch just ended: the loop moves to the next one
        epoch, batch = epoch + 1, 0
    return next(batches(trainer.data, config.batch_size, config.seed, epoch, batch, config.steps_per_epoch))


def twin(trainer: Trainer) -> Trainer:
    """A trainer in the same state (weights, optimisers, noise, position, settings) sharing only the data, so
    that stepping it leaves the original as it was."""
    copied = Trainer(trainer.config, trainer.data, trainer.device)
    copied.load_state_dict(copy.deepcopy(trainer.state_dict()))  # Adam would otherwise share its moments
    return copied


def overview_frame(trainer: Trainer, count: int = SHOWN) -> OverviewFrame:
    """The graph of the trainer's latest step. Before its first step, of the step it would take next, taken by
    a twin so that the trainer itself does not move."""
    if trainer.shown is not None:
        return frame_of(trainer, trainer.shown, count)
    measured = twin(trainer)
    measured.train_step(*next_batch(measured))
    return frame_of(measured, measured.shown, count)


def overview_from_run(run: Run, epoch: int | None = None, count: int = SHOWN) -> OverviewFrame:
    """The graph of a saved run with no live trainer: from the state of `epoch` (default: the newest state), the
    next step is taken on a trainer of its own and nothing is saved. Raises CheckpointError for a damaged run."""
    config = run.config()
    if epoch is None and is_shipped(run.path):  # its epochs hold weights only: the newest of them
        epoch = (run.epochs() or [None])[-1]
    if epoch is None:
        state = run.resume_state()
    else:
        if not run.epoch_path(epoch).is_file():
            raise CheckpointError(f"run {run.name!r} has no saved epoch {epoch} (saved: {run.epochs() or 'none'})")
        state, _ = load_state(run.epoch_path(epoch), config)
    trainer = Trainer(config, load_mnist(DEFAULT_DATA_DIR), torch.device("cpu"))
    if state is not None:
        try:
            if "opt_g" in state:
                trainer.load_state_dict(state)
            else:  # a shipped run's epoch (gan.store.shipped)
                start_from_weights(trainer, state)
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            reason = printable(" ".join(str(error).split()), 200)
            raise CheckpointError(f"run {run.name!r}: the saved state does not fit its config ({reason})") from None
    trainer.train_step(*next_batch(trainer))
    return frame_of(trainer, trainer.shown, count)
