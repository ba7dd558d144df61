"""Latent space page: what a saved generator does with its noise. Samples by seed (and digit), interpolations
between two seeds, sliders along the main directions of variation, and the nearest real training digits to a
sample, measured against how far real digits are from each other."""

import random

import streamlit as st
import torch

from gan.config import Config
from gan.images import grid_image, ping_pong_gif, png_bytes
from gan.lab.latent import (
    copy_verdict,
    digit_grid,
    direction_atlas,
    generate,
    interpolate,
    interpolate_codes,
    move_along,
    nearest_real,
    noise,
    sample,
)
from gan.models import Generator
from gan.store.listing import RunInfo
from gan.store.run import Run
from views import common, links

DIRECTIONS = 5
DIRECTION_RANGE = 3.0  # standard deviations of the noise
ATLAS_STEPS = 7
NEIGHBOURS = 6
VERDICTS = {"copy": st.warning, "close": st.info, "novel": st.success}


def new_seed() -> None:
    st.session_state["latent_seed"] = random.randrange(10_000)


def strip_caption(
    seed_a: object, seed_b: int, digit_a: int | None, digit_b: int | None, method: str, yours: bool
) -> str:
    """E.g. "seed 1 (a 1) → seed 2 (a 7), spherical"."""
    start = f"{'' if yours else 'seed '}{seed_a}" + ("" if digit_a is None else f" (a {digit_a})")
    return f"{start} → seed {seed_b}" + ("" if digit_b is None else f" (a {digit_b})") + f", {method}"


def digit_labels(digit: int | None) -> torch.Tensor | None:
    return None if digit is None else torch.tensor([digit])


def your_digit(G: Generator, run_name: str) -> tuple[torch.Tensor, int | None] | None:
    """The code (1, latent_dim) and digit found for the user's digit on the Your digit page, if it belongs to
    this run and fits this generator."""
    start = st.session_state.get("latent_start")
    if not start or start.get("run") != run_name or len(start.get("z", ())) != G.latent_dim:
        return None
    return torch.tensor([start["z"]], dtype=torch.float32), start.get("digit")


def forget_your_digit() -> None:
    st.session_state.pop("latent_start", None)


# --- sections -------------------------------------------------------------------------------------------------


def samples(G: Generator, config: Config, file_stem: str, zoom: int) -> torch.Tensor:
    """A grid of samples for a seed; returns the images, numbered from 1 for the neighbour search."""
    st.subheader("Samples")
    st.session_state.setdefault("latent_seed", 0)
    st.session_state.setdefault("latent_digit", "all")  # or a link's digit (views/links.py)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="latent_seed", width=160)
        st.button("New seed", key="latent_new_seed", icon=":material/casino:", on_click=new_seed)
        digit = None
        if config.conditional:
            digit = st.segmented_control("Digit", ["all", *range(10)], key="latent_digit", required=True)
    seed = int(st.session_state["latent_seed"])
    links.keep(seed=seed, digit=digit)
    if config.conditional and digit == "all":
        images = digit_grid(G, styles=10, seed=seed)
        text = "Row r is digit r. Each column shares one noise vector: its style stays while the digit changes."
    elif config.conditional:
        images, _ = sample(G, 50, seed, digit)
        text = f"50 samples for seed {seed}, all asked to be a {digit}"
    else:
        images, _ = sample(G, 100, seed)
        text = f"100 samples for seed {seed}"
    common.picture_with_download(
        grid_image(images, nrow=10, scale=zoom), text, f"{file_stem}-seed-{seed}.png", "latent_samples_png"
    )
    return images


def interpolation(G: Generator, config: Config, file_stem: str, zoom: int, start: tuple | None = None) -> None:
    st.subheader("Interpolate between two seeds")
    st.caption(
        "Walk in a straight line (or along the sphere where Gaussian noise lives) from one noise vector to "
        "another. Smooth changes mean the generator has learned a continuous space, not a lookup table."
    )
    columns = st.columns(6 if config.conditional else 4, vertical_alignment="bottom")
    seed_a = columns[0].number_input("From seed", min_value=0, value=1, step=1, key="latent_seed_a")
    seed_b = columns[1].number_input("To seed", min_value=0, value=2, step=1, key="latent_seed_b")
    steps = columns[2].slider("Steps", 2, 24, 10, key="latent_steps")
    method = columns[3].radio(
        "Path",
        ["spherical", "linear"],
        key="latent_method",
        horizontal=True,
        help="Spherical keeps the noise at a typical length; linear midpoints are too short.",
    )
    digit_a = digit_b = None
    if config.conditional:
        digit_a = columns[4].selectbox("From digit", range(10), index=1, key="latent_digit_a")
        digit_b = columns[5].selectbox("To digit", range(10), index=7, key="latent_digit_b")
    from_yours = start is not None and st.toggle("Start from your digit", True, key="latent_interpolate_yours")
    if from_yours:
        digit_a = start[1]
        b = noise(G.latent_dim, 1, int(seed_b))
        strip = interpolate_codes(G, start[0], b, steps, method == "spherical", digit_a, digit_b)
        seed_a = "your digit"
    else:
        strip = interpolate(G, int(seed_a), int(seed_b), steps, method == "spherical", digit_a, digit_b)
    stem = f"{file_stem}-{str(seed_a).replace(' ', '-')}-to-{seed_b}"
    picture = grid_image(strip, nrow=steps, scale=zoom)
    st.image(png_bytes(picture), caption=strip_caption(seed_a, seed_b, digit_a, digit_b, method, from_yours))
    with st.container(horizontal=True):
        common.download("Download PNG", png_bytes(picture), f"{stem}.png", "latent_strip_png")
        common.download("Download GIF", lambda: ping_pong_gif(strip), f"{stem}.gif", "latent_strip_gif")


def directions(
    G: Generator, config: Config, run: Run, epoch: int, file_stem: str, zoom: int, start: tuple | None = None
) -> None:
    st.subheader("Main directions of variation")
    st.caption(
        "Principal directions of the generator's first-layer features (GANSpace), mapped back to noise. "
        "Moving along one usually changes one visible property: slant, thickness, width, or the digit."
    )
    found = common.cached_directions(str(run.path), epoch, common.mtime(run.epoch_path(epoch)), DIRECTIONS)
    digit = None
    sliders, picture_column = st.columns([2, 1], gap="large")
    with sliders:
        with st.container(horizontal=True, vertical_alignment="bottom"):
            seed = st.number_input("Seed of the sample", min_value=0, value=0, step=1, key="latent_direction_seed")
            if config.conditional:
                digit = st.segmented_control(
                    "Digit of the sample", range(10), default=3, key="latent_direction_digit", required=True
                )
        amounts = [
            st.slider(
                f"Direction {index + 1} ({share:.0%} of the variance)",
                -DIRECTION_RANGE,
                DIRECTION_RANGE,
                0.0,
                0.25,
                key=f"latent_direction_{index}",
            )
            for index, share in enumerate(found.explained)
        ]
    z = noise(G.latent_dim, 1, int(seed))  # (1, latent_dim): the first sample of the seed
    if start is not None and st.toggle("Move your digit", True, key="latent_direction_yours"):
        z, digit, seed = start[0], start[1], "your digit"
    moved = generate(G, move_along(z, found, amounts), digit_labels(digit))
    with picture_column:
        common.picture_with_download(
            grid_image(moved, nrow=1, scale=8),
            f"{'' if seed == 'your digit' else 'seed '}{seed} moved by the sliders",
            f"{file_stem}-moved.png",
            "latent_moved_png",
        )
    atlas = direction_atlas(G, z, found, digit, steps=ATLAS_STEPS, extent=DIRECTION_RANGE)
    with st.expander("See every direction at once"):
        common.picture_with_download(
            grid_image(atlas, nrow=ATLAS_STEPS, scale=zoom),
            "Row i: direction i, from −3 to +3 standard deviations",
            f"{file_stem}-directions.png",
            "latent_atlas_png",
        )


def neighbours(images: torch.Tensor, file_stem: str) -> None:
    st.subheader("Is it copying? Nearest real digits")
    st.caption(
        "A generator that memorised its training set would draw digits almost identical to real ones. Here "
        "a sample is compared, pixel by pixel, with all 60,000 training digits."
    )
    number = st.number_input(
        "Sample number",
        min_value=1,
        max_value=len(images),
        value=1,
        step=1,
        key=f"latent_neighbour_{len(images)}",
        width=200,
        help="Which sample of the grid above, counting along its rows from 1.",
    )
    query = images[int(number) - 1 : int(number)]
    train, _ = common.mnist_splits()
    found = nearest_real(query, train, k=NEIGHBOURS)
    typical = common.real_typical_distance()
    distances = found.distances[0].tolist()
    pictures = [grid_image(query, nrow=1, scale=3)] + [
        grid_image(image[None], nrow=1, scale=3) for image in found.images[0]
    ]
    st.image(pictures, caption=[f"sample {number}"] + [f"distance {distance:.2f}" for distance in distances])
    verdict = copy_verdict(distances[0], typical)
    yardstick = f"Real unseen (test) digits are typically {typical:.2f} from their nearest training digit."
    verdicts = {
        "copy": f"Very close to a training digit ({verdict.distance:.2f}): this sample may be a copy.",
        "close": f"Closer to a training digit ({verdict.distance:.2f}) than usual, but not a copy.",
        "novel": f"Not a copy: its nearest training digit is {verdict.distance:.2f} away.",
    }
    VERDICTS[verdict.level](f"{verdicts[verdict.level]} {yardstick}")
    row = grid_image(torch.cat([query, found.images[0]]), nrow=NEIGHBOURS + 1, scale=3)
    common.download("Download PNG", png_bytes(row), f"{file_stem}-neighbours.png", "latent_neighbours_png")


def samples_and_neighbours(G: Generator, config: Config, file_stem: str, zoom: int) -> None:
    neighbours(samples(G, config, file_stem, zoom), file_stem)


# --- the page -------------------------------------------------------------------------------------------------


def page() -> None:
    st.title("Latent space")
    st.caption("The generator maps a noise vector z (the *latent* code) to a digit. Explore what it learned.")
    info: RunInfo | None = st.session_state.get("selected_run")
    if info is None:
        common.no_runs()
        return
    if common.show_unusable(info):
        return
    run = Run(info.path)
    epochs = run.epochs()
    with st.container(horizontal=True, vertical_alignment="bottom"):
        epoch = st.selectbox(
            "Epoch",
            epochs[::-1],
            key=f"latent_epoch_{info.name}",
            width=160,
            help="The generator as saved after this epoch (its EMA copy).",
        )
        links.keep(epoch=epoch)
        zoom = st.segmented_control(
            "Zoom", [1, 2, 3, 4], default=2, format_func=lambda zoom: f"{zoom}×", key="latent_zoom", required=True
        )
    try:
        G, config, epoch = common.generator_for(run, epoch)
    except Exception as error:  # a damaged checkpoint of any kind: say why, never a traceback
        st.error(f"Cannot load epoch {epoch} of run **{common.plain(info.name)}**: {common.plain(error)}")
        return
    stem = f"{info.name}-epoch-{epoch:04d}"
    start = your_digit(G, info.name)
    if start is not None:
        with st.container(horizontal=True, vertical_alignment="center"):
            digit = "" if start[1] is None else f" (drawn as a {start[1]})"
            st.success(f"Starting from your digit{digit}: the code found for it on the Your digit page.")
            st.button("Forget it", key="latent_forget_yours", on_click=forget_your_digit)
    # each section is a fragment: moving a slider redraws its own section, not the whole page
    st.fragment(samples_and_neighbours)(G, config, stem, zoom)
    st.fragment(interpolation)(G, config, stem, zoom, start)
    st.fragment(directions)(G, config, run, epoch, stem, zoom, start)


page()
