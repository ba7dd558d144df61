"""The Train page's overview graph: the selected run's G and D as one picture, drawn from one step's real tensors.

While the job trains, the graph is redrawn at the live view's pace (not at all with Live view off). While it is
paused, slow motion walks through one training step in numbered sub-steps ("Next sub-step"), each lighting its
part of the graph and showing its values; after the last one the run has taken exactly one step. A run without a
job shows the graph of its latest saved epoch. Settings shown in the graph (the learning rates, the loss) can be
changed from here while the job runs or is paused, through the same session command as the Experiment panel.

Widgets and layout only: gan/lab/overview.py and gan/lab/slowmotion.py compute every number, and
views/overview_svg.py draws the picture.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from gan.config import LOSSES, ConfigError
from gan.images import enlarge_png, grid_png
from gan.jobs.session import Snapshot, Status, TrainingSession
from gan.lab.overview import NODE_HELP, overview_from_run
from gan.lab.slowmotion import VALUE_NAMES, SubStepView
from gan.store.checkpoints import CheckpointError
from gan.store.listing import RunInfo
from gan.store.run import Run
from views import common, live
from views.overview_svg import Moment, overview_svg

SHOWN = 8  # samples of each kind in the graph
REPLY_EVERY = 0.2  # seconds between looks for the job's answer to a request (a sub-step takes it milliseconds)
AWAITING = "overview_awaiting"  # the session-state key of the request the page waits on
SUBSTEP_WAIT = 1.0  # seconds a "Next sub-step" click waits for the job before leaving it to the fragment
SETTINGS = {"lr_g": "G learning rate", "lr_d": "D learning rate", "loss": "Loss"}
INTRO = (
    "One training step as a graph: noise **z** becomes G's fakes; D judges them beside real digits; its verdicts "
    "make the two losses; the **blue** loop is how D learns (from both rows), the **purple** loop how G learns (only "
    "from D's verdict on its fakes, back through D). Hover over a part for what it is, click it to keep its note."
)


def show(svg: str) -> None:
    """Markdown, not st.html: st.html's sanitiser keeps HTML tags only and drops the whole SVG. The SVG is one line
    of our own markup (every text in it escaped), so Markdown passes it through as one raw HTML block."""
    st.markdown(svg, unsafe_allow_html=True)


# --- the graph of a saved run ---------------------------------------------------------------------------------------


@st.cache_data(max_entries=8, show_spinner="Drawing the graph of the run's latest state…")
def saved_graph(path: str, epochs: tuple[int, ...], stamp: float) -> str:
    """The graph of a run's latest saved state; drawn once per (run, saved epochs, time of its mid-epoch file)."""
    frame = overview_from_run(Run(Path(path)), count=SHOWN)
    return overview_svg(frame, NODE_HELP)


def saved_overview(info: RunInfo) -> None:
    if info.config is None or not info.epochs:
        return  # the page's other sections say why
    st.subheader("The GAN as one graph", divider="gray")
    st.caption(INTRO + " Drawn from the run's latest saved state: the step it would take next, taken on a copy.")
    try:
        show(saved_graph(str(info.path), tuple(info.epochs), common.mtime(Run(info.path).latest_path)))
    except (CheckpointError, ValueError, OSError) as error:
        st.warning(f"The graph cannot be drawn from run **{common.plain(info.name)}**: {common.plain(error)}")


# --- requests to the job: sent by a callback that returns at once, answered in a small polling fragment -------------


@dataclass(frozen=True)
class Awaiting:
    """A request sent from the graph: settings changes (taken once the run has `changes` changes in all) or a
    sub-step (taken once the job shows another sub-step than `shown`)."""

    run_name: str | None
    changes: int | None = None
    shown: SubStepView | None = None

    def answered(self, snapshot: Snapshot) -> bool:
        if snapshot.run_name != self.run_name or snapshot.status not in (Status.RUNNING, Status.PAUSED):
            return True  # the job can no longer take it
        if self.changes is not None:
            return len(snapshot.changes) >= self.changes
        return snapshot.slow_motion is not self.shown


def await_reply(session: TrainingSession) -> None:
    awaiting: Awaiting | None = st.session_state.get(AWAITING)
    if awaiting is None:
        return
    if awaiting.answered(session.snapshot()):
        del st.session_state[AWAITING]
        st.rerun()
    st.caption("Sent: the job takes it now…")


def replies(session: TrainingSession) -> None:
    """Polls only while a request is on its way."""
    if st.session_state.get(AWAITING) is not None:
        st.fragment(await_reply, run_every=REPLY_EVERY)(session)


# --- settings changed from the graph --------------------------------------------------------------------------------


def fill_settings(snapshot: Snapshot) -> None:
    """Show the job's current values; refilled when the run or its changes are not the ones shown."""
    state, shown_for = st.session_state, (snapshot.run_name, len(snapshot.changes))
    if state.get("overview_settings_for") != shown_for:
        state["overview_settings_for"] = shown_for
        for field in SETTINGS:
            state[f"overview_{field}"] = getattr(snapshot.config, field)


def change_setting(session: TrainingSession, field: str) -> None:
    state, snapshot = st.session_state, session.snapshot()
    try:
        sent = session.change(field, state[f"overview_{field}"])
    except ConfigError as error:
        state["overview_error"] = f"**{SETTINGS[field]}**: {common.plain(error)}"
        return
    state["overview_error"] = None
    if sent:
        state[AWAITING] = Awaiting(snapshot.run_name, changes=len(snapshot.changes) + 1)


def settings(snapshot: Snapshot, session: TrainingSession) -> None:
    fill_settings(snapshot)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        for field in ("lr_g", "lr_d"):
            st.number_input(
                SETTINGS[field],
                key=f"overview_{field}",
                step=1e-4,
                format="%.5f",
                width=170,
                on_change=change_setting,
                args=(session, field),
            )
        st.selectbox(
            SETTINGS["loss"],
            LOSSES,
            key="overview_loss",
            width=170,
            on_change=change_setting,
            args=(session, "loss"),
            help="saturating: the original minimax G loss; wgan-gp: a critic with a gradient penalty.",
        )
        st.caption("Changes apply from the next step, are marked on the charts and kept with the run.")
    if st.session_state.get("overview_error"):
        st.error(st.session_state["overview_error"])


# --- live, while training -------------------------------------------------------------------------------------------


def live_graph() -> None:
    frame = common.get_session().overview(count=SHOWN)
    if frame is None:
        st.caption("The graph appears after the first step.")
        return
    show(overview_svg(frame, NODE_HELP))


# --- slow motion, while paused ------------------------------------------------------------------------------------

COUNTS = ("samples", "step")  # values shown as whole numbers


def substep_label(view: SubStepView) -> str:
    """E.g. "D2 of 10"; with several D steps per G step, "7 of 20: D2 (2/3)"."""
    return (
        f"{view.label} of {view.total}"
        if view.label == view.substep.value
        else f"{view.index} of {view.total}: {view.label}"
    )


def next_substep(session: TrainingSession) -> None:
    """A sub-step takes the job milliseconds, so the callback waits up to SUBSTEP_WAIT for it: the page is then
    redrawn once, with the sub-step lit. Only a slower answer is left to the polling fragment (a second redraw)."""
    snapshot = session.snapshot()
    if not session.substep():
        return
    awaiting = Awaiting(snapshot.run_name, shown=snapshot.slow_motion)
    deadline = time.monotonic() + SUBSTEP_WAIT
    while not awaiting.answered(session.snapshot()):
        if time.monotonic() > deadline:
            st.session_state[AWAITING] = awaiting
            return
        time.sleep(0.01)


def substep_values(view: SubStepView) -> None:
    """Each value as a metric; a value measured before and after (D5, G5) as one metric with its change."""
    values = view.values
    with st.container(horizontal=True):
        for name, value in values.items():
            if name.endswith("_before"):
                continue
            base = name.removesuffix("_after")
            label = VALUE_NAMES.get(base, base) + (" after" if name.endswith("_after") else "")
            before = values.get(f"{base}_before")
            shown = f"{value:,.0f}" if base in COUNTS else f"{value:.4g}"
            change = None if before is None else f"{value - before:+.4g}"
            st.metric(label, shown, change, delta_color="off", border=True, width=200)


def before_and_after(view: SubStepView) -> None:
    """D5: D's scores on the shown images before and after its update; G5: G's samples from the same noise."""
    if view.before_after is None:
        return
    before, after = view.before_after
    if view.substep.value == "G5":
        left, right = st.columns(2)
        left.image(enlarge_png(grid_png(before, nrow=len(before)), 2), caption="G's samples before its update")
        right.image(enlarge_png(grid_png(after, nrow=len(after)), 2), caption="after, from the same noise")
        return
    rows = {"reals, before": before[0], "reals, after": after[0], "fakes, before": before[1], "fakes, after": after[1]}
    table = {name: [round(float(score), 3) for score in scores] for name, scores in rows.items()}
    st.dataframe(table, hide_index=False, width="content")


def slow_motion(snapshot: Snapshot, session: TrainingSession) -> None:
    view = snapshot.slow_motion
    current = view if view is not None and view.step == snapshot.step else None
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button(
            "Next sub-step",
            key="slowmo_next",
            icon=":material/slow_motion_video:",
            on_click=next_substep,
            args=(session,),
            help="Takes the next of the step's numbered parts; after the last one the run has trained exactly one "
            "step, saved and resumed like any other.",
        )
        if current is None:
            st.caption("Slow motion: take the next training step one part at a time, each lit on the graph.")
        else:
            st.markdown(f"**{substep_label(current)}: {current.title}.** {current.text}")
    if current is None:
        frame = session.overview(count=SHOWN)
        if frame is not None:
            show(overview_svg(frame, NODE_HELP, Moment(steps_done=snapshot.step)))
        return
    substep_values(current)
    before_and_after(current)
    label = f"{substep_label(current)}: {current.title}"
    moment = Moment(current.step, current.substep.value, label, current.highlight)
    show(overview_svg(current.frame, NODE_HELP, moment))


# --- the section ----------------------------------------------------------------------------------------------------


def section(selected: RunInfo | None, snapshot: Snapshot) -> None:
    """The overview graph of the job (live while training, slow motion while paused) or of the selected run."""
    session = common.get_session()
    if snapshot.status in (Status.RUNNING, Status.PAUSED):
        st.subheader("The GAN as one graph", divider="gray")
        st.caption(INTRO)
        if snapshot.status == Status.PAUSED:
            slow_motion(snapshot, session)
        else:
            live_on = st.session_state.get("live_view", True)
            st.fragment(live_graph, run_every=live.STATUS_EVERY if live_on else None)()
        settings(snapshot, session)
        replies(session)
    elif selected is not None and not snapshot.active:
        saved_overview(selected)
