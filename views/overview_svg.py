"""The overview graph as one self-contained SVG string, drawn left to right from one step's real tensors: noise z into
G, G's fakes and this step's real digits into D, D's predictions into the two losses, and the two gradient loops
drawn as GAN Lab draws them (D's above the graph, G's below it, through D and the fakes' push maps into G).

A pure function of an `OverviewFrame`: no Streamlit, no network (the pictures are data: URIs), so the page shows it
offline and tests read it as text. Every node is a `<g data-node=KEY>` with a hover `<title>`; clicking one (it is
focusable) shows its longer help in the panel at the bottom, by CSS alone. Nodes named in `lit` are drawn at full
strength and the rest dimmed; the root carries `data-step`, `data-steps-done`, `data-substep` and `data-lit`.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from views.overview_pictures import digit_uri, noise_uri, push_uri, verdict_color

if TYPE_CHECKING:
    from gan.lab.overview import NetworkBox, OverviewFrame

WIDTH, HEIGHT = 1200, 650
NODES = ("noise", "generator", "fakes", "reals", "discriminator", "predictions", "loss_d", "loss_g", "grad_d", "grad_g")
DIMMED = 0.22  # opacity of the parts a sub-step does not use
FORWARD, D_LOOP, G_LOOP = "#9a9a9a", "#4f86f7", "#b04fc8"  # GAN Lab's grey forward arrows, blue and purple loops
COLUMNS, GAP = 4, 6  # image grids: four to a row


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Moment:
    """What the graph is showing now: in slow motion, a sub-step ("D2"), its heading and the nodes it lights."""

    steps_done: int  # the run's step counter; in slow motion one behind the step shown until its last sub-step
    substep: str = ""
    label: str = ""  # e.g. "D2 of 10: D scores the reals and the fakes"
    lit: tuple[str, ...] = NODES


BOXES = {
    "noise": Box(12, 245, 146, 150),
    "generator": Box(180, 222, 150, 196),
    "fakes": Box(352, 245, 200, 150),
    "reals": Box(352, 65, 200, 150),
    "discriminator": Box(588, 65, 170, 330),
    "predictions": Box(792, 52, 200, 356),
    "loss_d": Box(1018, 115, 172, 104),
    "loss_g": Box(1018, 290, 172, 104),
}
REAL_Y, FAKE_Y = 140, 320  # the middles of the two rows
# Forward arrows (grey) and the predictions' way into the losses (in their loop's colour): lit when both ends are.
EDGES = (
    ("noise", "generator", f"M158,{FAKE_Y} L180,{FAKE_Y}", FORWARD),
    ("generator", "fakes", f"M330,{FAKE_Y} L352,{FAKE_Y}", FORWARD),
    ("reals", "discriminator", f"M552,{REAL_Y} L588,{REAL_Y}", FORWARD),
    ("fakes", "discriminator", f"M552,{FAKE_Y} L588,{FAKE_Y}", FORWARD),
    ("discriminator", "predictions", f"M758,{REAL_Y} L792,{REAL_Y}", FORWARD),
    ("discriminator", "predictions", f"M758,{FAKE_Y} L792,{FAKE_Y}", FORWARD),
    ("predictions", "loss_d", f"M992,{REAL_Y} C1005,{REAL_Y} 1004,167 1018,167", D_LOOP),
    ("predictions", "loss_d", f"M992,{FAKE_Y} C1004,{FAKE_Y} 1004,190 1018,190", D_LOOP),
    ("predictions", "loss_g", f"M992,{FAKE_Y + 8} C1004,{FAKE_Y + 8} 1004,342 1018,342", G_LOOP),
)
D_LOOP_PATH = "M1104,115 L1104,48 a8,8 0 0 0 -8,-8 L681,40 a8,8 0 0 0 -8,8 L673,65"
G_LOOP_PATH = "M1104,394 L1104,432 a8,8 0 0 1 -8,8 L263,440 a8,8 0 0 1 -8,-8 L255,418"
FORMULAS = {  # D's loss and G's loss, as gan/losses.py defines them
    "bce": ("-log D(x) - log(1 - D(G(z)))", "-log D(G(z))  (non-saturating)"),
    "saturating": ("-log D(x) - log(1 - D(G(z)))", "log(1 - D(G(z)))  (minimax)"),
    "hinge": ("max(0,1-D(x)) + max(0,1+D(G(z)))", "-D(G(z))"),
    "lsgan": ("(D(x)-1)²/2 + D(G(z))²/2", "(D(G(z))-1)²/2"),
    "wgan-gp": ("D(G(z)) - D(x) + 10·penalty", "-D(G(z))"),
}
STYLE = """<style>
svg.ov .ov-node { cursor: pointer; outline: none; }
svg.ov .ov-node:focus .ov-box { stroke: #222; stroke-width: 2.5; }
svg.ov .ov-help { display: none; }
svg.ov:has(.ov-node:focus) #ov-help-default { display: none; }
svg.ov image { image-rendering: pixelated; }
%s
</style>"""


# --- small pieces -------------------------------------------------------------------------------------------------


def text(
    x: float, y: float, words: str, size: float = 12, weight: str = "normal", anchor: str = "start", fill: str = "#222"
) -> str:
    return (
        f'<text x="{x:g}" y="{y:g}" font-size="{size}" font-weight="{weight}" text-anchor="{anchor}" fill="{fill}">'
        f"{html.escape(words)}</text>"
    )


def picture(uri: str, x: float, y: float, size: float, height: float | None = None) -> str:
    return (
        f'<image href="{uri}" x="{x:g}" y="{y:g}" width="{size}" height="{height or size}" preserveAspectRatio="none"/>'
    )


def grid_positions(count: int, x: float, y: float, size: float, row_height: float | None = None) -> list[tuple]:
    step_y = (row_height or size) + GAP
    return [(x + (i % COLUMNS) * (size + GAP), y + (i // COLUMNS) * step_y) for i in range(count)]


def verdict_fractions(frame: OverviewFrame) -> tuple[list[float], list[float], tuple[float, float]]:
    """Where each real's and fake's verdict sits on the colour scale, and the scale's ends. Beliefs run from 0 to 1;
    a critic's scores have no fixed range, so its scale runs from the lowest to the highest score shown."""
    scores = [*frame.d_real, *frame.d_fake]
    low, high = (min(scores), max(scores)) if frame.critic and scores else (0.0, 1.0)
    spread = high - low or 1.0
    return [(s - low) / spread for s in frame.d_real], [(s - low) / spread for s in frame.d_fake], (low, high)


def node(key: str, lit: bool, hover: str, body: str, box: Box | None = None) -> str:
    outline = ""
    if box:
        outline = f'<rect class="ov-box" x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="8" fill="#fff" '
        outline += 'stroke="#c8c8c8" stroke-width="1.5"/>'
    return (
        f'<g id="ov-{key}" class="ov-node" data-node="{key}" data-lit="{str(lit).lower()}" '
        f'opacity="{1 if lit else DIMMED}" tabindex="0"><title>{html.escape(hover)}</title>{outline}{body}</g>'
    )


# --- the nodes ----------------------------------------------------------------------------------------------------


def noise_body(frame: OverviewFrame) -> str:
    box = BOXES["noise"]
    parts = [text(box.x + 10, box.y + 20, "Noise z", 14, "bold")]
    parts.append(text(box.x + 10, box.y + 34, f"{frame.z.shape[1]} numbers each", 10))
    for i, z in enumerate(frame.z):
        y = box.y + 44 + i * 13
        parts.append(picture(noise_uri(z), box.x + 10, y, 100, 9))
        if frame.digits is not None:
            parts.append(text(box.x + 116, y + 9, f"→ {frame.digits[i]}", 10))
    return "".join(parts)


def network_body(network: NetworkBox, key: str, extra: Sequence[str]) -> str:
    box = BOXES[key]
    cx = box.x + box.w / 2
    parts = [text(cx, box.y + 22, network.name, 14, "bold", "middle")]
    for i, shape in enumerate(network.shapes):
        parts.append(text(cx, box.y + 44 + i * 17, ("" if i == 0 else "↓ ") + shape, 12, anchor="middle"))
    y = box.y + 52 + len(network.shapes) * 17
    for line in (f"{network.parameters:,} parameters", f"learning rate {network.learning_rate:g}", *extra):
        parts.append(text(cx, y, line, 11, anchor="middle"))
        y += 16
    return "".join(parts)


def samples_body(images: torch.Tensor, key: str, title: str, subtitle: str) -> str:
    box = BOXES[key]
    parts = [text(box.x + 10, box.y + 18, title, 14, "bold"), text(box.x + 10, box.y + 31, subtitle, 10)]
    positions = grid_positions(len(images), box.x + 11, box.y + 40, 40)
    parts += [picture(digit_uri(image), x, y, 40) for image, (x, y) in zip(images, positions, strict=False)]
    return "".join(parts)


def verdict_row(
    images: torch.Tensor, scores: Sequence[float], fractions: Sequence[float], y: float, critic: bool
) -> str:
    parts = []
    for image, score, fraction, (x, top) in zip(
        images, scores, fractions, grid_positions(len(images), BOXES["predictions"].x + 14, y, 36, 52), strict=False
    ):
        color = verdict_color(fraction)
        parts.append(f'<rect x="{x - 3}" y="{top - 3}" width="42" height="42" rx="3" fill="{color}"/>')
        parts.append(picture(digit_uri(image), x, top, 36))
        parts.append(text(x + 18, top + 51, f"{score:+.2f}" if critic else f"{score:.2f}", 11, anchor="middle"))
    return "".join(parts)


def legend(low: float, high: float, critic: bool, x: float, y: float) -> str:
    stops = "".join(f'<stop offset="{t / 4}" stop-color="{verdict_color(t / 4)}"/>' for t in range(5))
    ends = (f"{low:+.2f} (lowest)", f"{high:+.2f} (highest)") if critic else ("0: fake", "1: real")
    return (
        f'<defs><linearGradient id="ov-scale">{stops}</linearGradient></defs>'
        f'<rect x="{x}" y="{y}" width="172" height="9" rx="2" fill="url(#ov-scale)"/>'
        + text(x, y + 21, ends[0], 10)
        + text(x + 172, y + 21, ends[1], 10, anchor="end")
    )


def predictions_body(frame: OverviewFrame) -> str:
    box = BOXES["predictions"]
    real_fractions, fake_fractions, (low, high) = verdict_fractions(frame)
    what = "critic scores" if frame.critic else "P(real)"
    parts = [
        text(box.x + 10, box.y + 18, f"D's verdicts: {what}", 14, "bold"),
        text(box.x + 10, box.y + 32, "on the real digits", 10),
        verdict_row(frame.reals, frame.d_real, real_fractions, box.y + 42, frame.critic),
        legend(low, high, frame.critic, box.x + 14, box.y + 166),
        text(box.x + 10, box.y + 212, "on the fakes", 10),
        verdict_row(frame.fakes, frame.d_fake, fake_fractions, box.y + 222, frame.critic),
    ]
    return "".join(parts)


def loss_body(key: str, title: str, value: float, formula: str) -> str:
    box = BOXES[key]
    cx = box.x + box.w / 2
    return (
        text(cx, box.y + 22, title, 14, "bold", "middle")
        + text(cx, box.y + 54, f"{value:.3f}", 24, "bold", "middle")
        + text(cx, box.y + 76, formula, 9.5, anchor="middle")
    )


def loop_body(path: str, color: str, label: str, x: float, y: float, anchor: str = "middle") -> str:
    return (
        f'<path d="{path}" fill="none" stroke="{color}" stroke-width="4" stroke-dasharray="10,3" '
        f'marker-end="url(#ov-head-{color[1:]})"/>' + text(x, y, label, 12, "bold", anchor, color)
    )


def d_loop_body(frame: OverviewFrame) -> str:
    return loop_body(D_LOOP_PATH, D_LOOP, f"D's gradients, norm {frame.grad_norm_d:.3g}", 888, 17) + text(
        888, 32, "D learns from its verdicts on both rows", 11, anchor="middle", fill=D_LOOP
    )


def g_loop_body(frame: OverviewFrame) -> str:
    lines = ("back through D (frozen) into G: G learns only", "from D's verdict on its fakes")
    return (
        loop_body(G_LOOP_PATH, G_LOOP, f"G's gradients, norm {frame.grad_norm_g:.3g}", 700, 462)
        + "".join(text(700, 477 + 14 * i, line, 11, anchor="middle", fill=G_LOOP) for i, line in enumerate(lines))
        + push_body(frame)
    )


def reading_key() -> str:
    """How to read the arrows, in the empty corner above G."""
    rows = ((FORWARD, "6,3", "forward: noise, images, verdicts"), (D_LOOP, "10,3", "D's loop: how D learns"))
    rows += ((G_LOOP, "10,3", "G's loop: how G learns"),)
    parts = [text(20, 86, "How to read it", 12, "bold")]
    for i, (color, dashes, words) in enumerate(rows):
        y = 106 + 20 * i
        parts.append(
            f'<path d="M20,{y} L60,{y}" stroke="{color}" stroke-width="3" stroke-dasharray="{dashes}" fill="none"/>'
        )
        parts.append(text(68, y + 4, words, 11))
    parts.append(text(20, 178, "Dimmed parts are not used by the sub-step.", 10, fill="#666"))
    return "".join(parts)


def push_body(frame: OverviewFrame) -> str:
    fakes = BOXES["fakes"]
    positions = grid_positions(len(frame.push), fakes.x + 11, 456, 40)
    parts = [picture(push_uri(direction), x, y, 40) for direction, (x, y) in zip(frame.push, positions, strict=False)]
    bottom = positions[-1][1] + 56 if positions else 470
    parts.append(text(fakes.x + 10, bottom, "Where D pushes each fake's pixels:", 10))
    parts.append(text(fakes.x + 10, bottom + 13, "red more ink, blue less", 10))
    return "".join(parts)


# --- the whole graph ----------------------------------------------------------------------------------------------


def arrowheads() -> str:
    return (
        "<defs>"
        + "".join(
            f'<marker id="ov-head-{color[1:]}" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="4" markerHeight="4" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>'
            for color in (FORWARD, D_LOOP, G_LOOP)
        )
        + "</defs>"
    )


def edges(lit: Collection[str]) -> str:
    parts = []
    for start, end, path, color in EDGES:
        shown = 1 if start in lit and end in lit else DIMMED
        width, dashes = (2, "6,3") if color == FORWARD else (2.5, "none")
        parts.append(
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{width}" stroke-dasharray="{dashes}" '
            f'opacity="{shown}" marker-end="url(#ov-head-{color[1:]})"/>'
        )
    return "".join(parts)


def node_bodies(frame: OverviewFrame) -> dict[str, tuple[str, Box | None]]:
    d_formula, g_formula = FORMULAS.get(frame.loss, ("", ""))
    d_extra = (f"{frame.d_steps} D step{'s' if frame.d_steps != 1 else ''} per G step", "sees real and fake digits")
    return {
        "noise": (noise_body(frame), BOXES["noise"]),
        "generator": (network_body(frame.generator, "generator", ("never sees a real digit",)), BOXES["generator"]),
        "fakes": (samples_body(frame.fakes, "fakes", "Fake digits", "G(z), drawn this step"), BOXES["fakes"]),
        "reals": (samples_body(frame.reals, "reals", "Real digits", "from this step's batch"), BOXES["reals"]),
        "discriminator": (network_body(frame.discriminator, "discriminator", d_extra), BOXES["discriminator"]),
        "predictions": (predictions_body(frame), BOXES["predictions"]),
        "loss_d": (loss_body("loss_d", f"D loss · {frame.loss}", frame.loss_d, d_formula), BOXES["loss_d"]),
        "loss_g": (loss_body("loss_g", f"G loss · {frame.loss}", frame.loss_g, g_formula), BOXES["loss_g"]),
        "grad_d": (d_loop_body(frame), None),
        "grad_g": (g_loop_body(frame), None),
    }


def help_panel(help_text: Mapping[str, str]) -> str:
    top = HEIGHT - 62
    parts = [f'<rect x="12" y="{top}" width="{WIDTH - 24}" height="54" rx="6" fill="#f6f6f6" stroke="#ddd"/>']
    default = "Hover over a part of the graph for what it is; click it to keep its note here."
    notes = {"default": default, **{key: help_text.get(key, "") for key in NODES}}
    for key, note in notes.items():
        lines = textwrap.wrap(note, 190)[:3]
        spans = "".join(
            f'<tspan x="24" dy="{0 if i == 0 else 15}">{html.escape(line)}</tspan>' for i, line in enumerate(lines)
        )
        hidden = "" if key == "default" else ' class="ov-help"'
        parts.append(
            f'<text id="ov-help-{key}"{hidden} x="24" y="{top + 18}" font-size="12" fill="#222">{spans}</text>'
        )
    return "".join(parts)


def overview_svg(frame: OverviewFrame, help_text: Mapping[str, str], moment: Moment | None = None) -> str:
    """The graph of one step, as HTML (a <style> and an <svg>), every node lit unless a `moment` says otherwise."""
    moment = moment or Moment(steps_done=frame.step)
    lit = set(moment.lit)
    shown_help = "\n".join(f"svg.ov:has(#ov-{key}:focus) #ov-help-{key} {{ display: inline; }}" for key in NODES)
    heading = f"Step {frame.step:,}" + (f" · {moment.label}" if moment.label else "")
    parts = [
        STYLE % shown_help,
        f'<svg class="ov" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" font-family="system-ui, sans-serif" '
        f'data-step="{frame.step}" data-steps-done="{moment.steps_done}" data-substep="{moment.substep}" '
        f'data-lit="{" ".join(sorted(lit))}" role="img" aria-label="The GAN as one graph">',
        arrowheads(),
        text(12, 30, heading, 16, "bold"),
        reading_key(),
        edges(lit),
    ]
    bodies = node_bodies(frame)
    parts += [node(key, key in lit, help_text.get(key, ""), *bodies[key]) for key in NODES]
    parts += [help_panel(help_text), "</svg>"]
    return "".join(parts)
