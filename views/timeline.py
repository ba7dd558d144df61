"""Timeline page: one epoch slider drives a run's sample grid, a marker on its charts and that epoch's scores.

Also: play the progression, download it as an animated GIF, and compare two epochs side by side.

A run that is training right now changes on disk only at the end of each epoch (its grid, its checkpoint and its
history lines are all written then). So while it trains, one small fragment looks at the job and lists the run's
folder every few seconds, and redraws the page when the job ends or, at most every 30 s (views/live.py's paces),
when a new epoch is saved. Everything heavy on the page (the D's-eye map, the push maps) is cached by (run, epoch),
so a redraw computes the newest epoch's alone; it still costs seconds of CPU (server and browser) that a 2-core
laptop takes from training, hence the slower pace for new epochs than for the job's end.
"""

import re
import time
from collections.abc import Sequence
from functools import partial

import streamlit as st
from PIL import Image

from gan.images import enlarge
from gan.share.report import report_bytes
from gan.store.grids import grid_bytes, grid_picture, progression
from gan.store.history import ChangeRecord, EpochRecord, History
from gan.store.listing import RunInfo
from gan.store.run import Run
from views import charts, common, experiment, inside, links, live

UNSURE = 0.6  # below this mean confidence of the judge, the samples are not clear digits yet
PLAY_FRAMES = 40  # at most this many epochs in the in-page animation
PLAY_SECONDS = 0.35


def epoch_records(history: History) -> dict[int, EpochRecord]:
    return {record.epoch: record for record in history.epochs}


def enlarged(run: Run, epoch: int, scale: int = 2) -> Image.Image | None:
    picture = grid_picture(run, epoch)
    return None if picture is None else enlarge(picture, scale)


# --- widgets --------------------------------------------------------------------------------------------------


def epoch_slider(name: str, epochs: list[int]) -> int:
    """The chosen epoch. Left at the newest epoch, the slider follows new epochs as a live run saves them."""
    key, newest_key = f"timeline_epoch_{name}", f"timeline_newest_{name}"
    state = st.session_state
    if state.get(f"timeline_next_{name}") in epochs:  # Play's next frame: the slider moves, and all with it
        state[key] = state.pop(f"timeline_next_{name}")
    elif state.get(key) not in epochs or state.get(key) == state.get(newest_key):
        state[key] = epochs[-1]
    state[newest_key] = epochs[-1]
    if len(epochs) == 1:
        st.caption(f"Only epoch {epochs[0]} is saved so far.")
        return epochs[0]
    return st.select_slider("Epoch", epochs, key=key, help="Drag to travel through training; the charts mark it.")


def start_play(name: str, epochs: list[int]) -> None:
    """Play from the first saved epoch to the last, at most PLAY_FRAMES of them: each frame is the whole page at
    that epoch (the slider, the grid, the charts' marker, the scores and the map move together)."""
    stride = max(1, -(-len(epochs) // PLAY_FRAMES))
    frames = epochs[::stride] + ([epochs[-1]] if (len(epochs) - 1) % stride else [])
    st.session_state[f"timeline_playing_{name}"] = frames[1:]
    st.session_state[f"timeline_next_{name}"] = frames[0]


def stop_play(name: str) -> None:
    st.session_state.pop(f"timeline_playing_{name}", None)


def next_frame(name: str, started: float) -> None:
    """After a frame is drawn: wait out the frame's time, then draw the next one (none left: Play ends)."""
    frames = st.session_state.get(f"timeline_playing_{name}")
    if frames is None:
        return
    if not frames:
        stop_play(name)
        st.rerun()
    time.sleep(max(0.0, PLAY_SECONDS - (time.perf_counter() - started)))
    st.session_state[f"timeline_playing_{name}"] = frames[1:]
    st.session_state[f"timeline_next_{name}"] = frames[0]
    st.rerun()


def score_text(value: float | None, digits: int = 2) -> str:
    """A score, or a dash where it was not measured."""
    return "–" if value is None else f"{value:.{digits}f}"


def show_scores(record: EpochRecord | None, conditional: bool) -> None:
    scores = record.scores if record else None
    if not scores:
        st.caption("No scores for this epoch. Tick *Score each epoch with the digit judge* when starting a run.")
        return
    columns = st.columns(5 if conditional else 4)
    columns[0].metric(
        "FID",
        score_text(scores.fid, 1),
        help="Fréchet distance between the judge's features "
        "of real and generated digits. Lower is better; real vs real is near 0.",
    )
    columns[1].metric(
        "Classifier score",
        score_text(scores.classifier_score),
        help="Like the Inception Score, from 1 to 10: high when samples are confident digits of every kind.",
    )
    columns[2].metric(
        "Digits covered",
        f"{scores.classes_covered} of 10",
        help="How many of the ten digits appear among the samples; fewer suggests mode collapse.",
    )
    columns[3].metric(
        "Judge's confidence",
        score_text(scores.mean_confidence),
        help="The digit judge's average confidence in its reading of a sample (0 to 1).",
    )
    if conditional:
        columns[4].metric(
            "Label agreement",
            score_text(scores.label_agreement),
            help="Share of samples the judge reads as the digit that was asked for.",
        )
    st.plotly_chart(charts.scores_figure(scores.histogram), key="timeline_histogram")
    balance = digit_balance(scores.warnings)
    if balance and scores.mean_confidence < UNSURE:  # noise read as digits: a reading, not a finding
        st.info(
            f"The judge is unsure of these samples ({scores.mean_confidence:.0%} confident on average): they "
            f"are not clear digits yet, so the balance of digits says little. {balance}"
        )
    elif balance:
        st.warning(balance)


def digit_balance(warnings: Sequence[str]) -> str:
    """All the metric's digit warnings in one line, every digit named: "Missing: 0, 1, 2. Over-represented: 8."."""
    named: dict[str, list[str]] = {}
    for warning in warnings:
        found = re.fullmatch(r"digit (\d) is ([a-z-]+) .*", warning)
        if found:
            named.setdefault(found[2], []).append(found[1])
    parts = [f"{kind.capitalize()}: {', '.join(digits)}." for kind, digits in named.items()]
    return " ".join(parts) + " Expected: about 10% of samples each." if parts else ""


def scores_over_time(records: dict[int, EpochRecord], epoch: int) -> None:
    scored = [(number, record.scores) for number, record in sorted(records.items()) if record.scores]
    if len(scored) < 2:
        return
    figure = charts.fid_figure([number for number, _ in scored], [scores.fid for _, scores in scored], epoch)
    st.plotly_chart(figure, key="timeline_fid")


def compare(run: Run, name: str, epochs: list[int]) -> None:
    if len(epochs) < 2:
        return
    st.subheader("Compare two epochs")
    first, second = st.select_slider(
        "Epochs to compare", epochs, value=(epochs[0], epochs[-1]), key=f"timeline_compare_{name}"
    )
    for column, epoch in zip(st.columns(2), (first, second), strict=False):
        picture = enlarged(run, epoch)
        if picture is not None:
            column.image(picture, caption=f"Epoch {epoch}")


# --- the page -------------------------------------------------------------------------------------------------


def run_charts(history: History, record: EpochRecord | None, epoch: int) -> None:
    steps = history.steps
    if history.skipped:
        st.caption(f"{history.skipped} damaged lines of the history were skipped.")
    if not steps:
        st.caption("No steps logged for this run.")
        return
    highlight = charts.Marker(record.step, f"epoch {epoch}") if record else None
    changes = charts.change_markers([entry for entry in history if isinstance(entry, ChangeRecord)])
    smoothing = st.slider(
        "Smoothing", 0.0, 0.99, 0.6, 0.01, key="timeline_smoothing", width=320, help="Exponential moving average."
    )
    st.plotly_chart(
        charts.metric_figure(steps, ("loss_d", "loss_g"), "Losses", smoothing, highlight=highlight, changes=changes),
        key="timeline_losses",
    )
    st.plotly_chart(
        charts.metric_figure(
            steps, ("d_real", "d_fake"), "What D believes", smoothing, highlight=highlight, changes=changes
        ),
        key="timeline_beliefs",
    )
    if any(entry.wasserstein is not None for entry in steps):
        st.plotly_chart(
            charts.metric_figure(
                steps, ("wasserstein",), common.CRITIC_TITLE, smoothing, highlight=highlight, changes=changes
            ),
            key="timeline_critic",
        )


def follow(run: Run, shown: list[int], drawn_at: float) -> None:
    """While the run trains: the whole page is redrawn when the job ends (which stops this polling) or, once the
    page is FOLLOW_EVERY seconds old (at once while it shows no epoch), when a new epoch is saved (the slider, left
    at the newest epoch, follows it). Between those, nothing on the page changes."""
    snapshot = common.get_session().snapshot()
    if not (snapshot.active and snapshot.run_name == run.name):
        st.rerun()
    due = not shown or time.monotonic() - drawn_at >= live.FOLLOW_EVERY
    if due and run.epochs_with_grids() != shown:
        st.rerun()


def timeline(info: RunInfo, run: Run, epochs: list[int], training: bool) -> None:
    """Everything under the title, for the run's saved epochs."""
    name = info.name
    started = time.perf_counter()
    if not epochs:
        st.info(f"Run **{common.plain(name)}** has no saved epochs yet: the first is saved at the end of epoch 1.")
        return
    history = common.history_of(run)
    records = epoch_records(history)
    epoch = epoch_slider(name, epochs)
    links.keep(epoch=epoch)
    with st.container(horizontal=True):
        if f"timeline_playing_{name}" in st.session_state:
            st.button("Stop", key="timeline_stop", icon=":material/stop:", on_click=stop_play, args=(name,))
        else:
            st.button(
                "Play",
                key="timeline_play",
                icon=":material/play_arrow:",
                help="Move the slider from the first saved epoch to the last: the grid, the charts' marker, the "
                "scores and the discriminator's map below follow it.",
                on_click=start_play,
                args=(name, epochs),
            )
        gif = partial(progression, run, epochs)  # the GIF is made only when the button is clicked
        common.download("Download the progression (GIF)", gif, f"{name}-progression.gif", "timeline_gif")
        report = partial(report_bytes, run)  # one HTML file that opens offline: charts, grids, scores, settings
        common.download("Download a report (HTML)", report, f"{name}-report.html", "timeline_report")
    grid_column, chart_column = st.columns([2, 3], gap="large")
    with grid_column:
        slot = st.empty()
        picture = enlarged(run, epoch)
        if picture is None:
            st.caption(f"The grid of epoch {epoch} cannot be read.")
        else:
            slot.image(picture, caption=f"Epoch {epoch}: the same 100 noise vectors every epoch")
            common.download(
                "Download PNG", grid_bytes(run, epoch) or b"", f"{name}-epoch-{epoch:04d}.png", "timeline_png"
            )
    with chart_column:
        run_charts(history, records.get(epoch), epoch)
    st.subheader(f"Scores at epoch {epoch}")
    show_scores(records.get(epoch), info.config.conditional)
    st.subheader("Diagnosis")
    experiment.diagnosis(history)
    scores_over_time(records, epoch)
    inside.look_inside(run, name, epoch, info.config.conditional, records, training)
    compare(run, name, epochs)
    next_frame(name, started)


def page() -> None:
    st.title("Timeline")
    st.caption(
        "Every epoch of a run is saved with its sample grid. Pick an epoch to see how far the generator "
        "had come, and where that moment sits on the loss curves."
    )
    info: RunInfo | None = st.session_state.get("selected_run")
    if info is None:
        common.no_runs()
        return
    snapshot = common.get_session().snapshot()
    training = snapshot.active and snapshot.run_name == info.name
    if not training and common.show_unusable(info):
        return
    run = Run(info.path)
    epochs = run.epochs_with_grids()  # one listing of the folder, not a look per epoch
    if training:
        st.caption(f"This run is training now: new epochs appear here as they are saved, at most every "
                   f"{live.FOLLOW_EVERY:.0f} s (each redraw takes CPU from training).")  # fmt: skip
        st.fragment(follow, run_every=live.FOLLOW_LOOK_EVERY)(run, epochs, time.monotonic())
    timeline(info, run, epochs, training)


page()
