"""The Train page's experiment controls: change settings of the job while it runs or is paused, step one player at
a time while paused (with D's outputs, the losses and the samples before and after), start a failure recipe with
one click, and the diagnosis of what the charts show.

Widgets and layout only: the session does the work, gan/ computes every number. A button's callback sends its
request to the job and returns at once; while the request is on its way a small fragment looks at the job's
snapshot twice a second, and redraws the page when the job has answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st

from gan.config import CHANGEABLE, LOSSES, SETTINGS, ConfigError
from gan.images import enlarge_png
from gan.jobs.runner import RunError
from gan.jobs.session import Snapshot, Status, TrainingSession
from gan.lab.recipes import RECIPES
from gan.lab.stepthrough import STEP_NAMES, Measurement, StepThrough
from gan.scoring.diagnose import diagnose
from gan.store.checkpoints import CheckpointError
from gan.store.history import Player, Record
from gan.store.run import default_run_name
from views import common

REPLY_EVERY = 0.5  # seconds between looks for the job's reply to a request sent from the page
PENDING = "experiment_pending"  # the session-state key of the request the page waits on


@dataclass(frozen=True)
class Pending:
    """A request sent to the job, whose result the page waits to show: settings changes (taken once the run has
    `changes` changes in all) or a single step (shown once a step after `step` has been probed)."""

    run_name: str | None
    changes: int | None = None
    step: int | None = None

    def answered(self, snapshot: Snapshot) -> bool:
        """The job took the request, or can no longer take it (it ended, or another run is training)."""
        if snapshot.run_name != self.run_name or snapshot.status not in (Status.RUNNING, Status.PAUSED):
            return True
        if self.changes is not None:
            return len(snapshot.changes) >= self.changes
        shown = snapshot.step_through
        return shown is not None and self.step is not None and shown.after.step > self.step


def await_reply(session: TrainingSession) -> None:
    """While a request is on its way to the job: a note, looked at again every REPLY_EVERY seconds, and the whole
    page redrawn once the job has answered (the charts then mark a change; the step's before and after show)."""
    pending: Pending | None = st.session_state.get(PENDING)
    if pending is None:
        return
    if pending.answered(session.snapshot()):
        del st.session_state[PENDING]
        st.rerun()
    st.caption("Sent: the job takes it at its next step…")


def replies(session: TrainingSession) -> None:
    """Polls only while a request is pending; a button's callback only sends it and never waits."""
    if st.session_state.get(PENDING) is not None:
        st.fragment(await_reply, run_every=REPLY_EVERY)(session)


# --- settings that change mid-run -------------------------------------------------------------------------------


def fill_live_form(snapshot: Snapshot) -> None:
    """Show the job's current values; refilled when the run or its changes are not the ones the form shows."""
    state, config = st.session_state, snapshot.config
    shown_for = (snapshot.run_name, len(snapshot.changes))
    if state.get("live_for") == shown_for:
        return
    state["live_for"] = shown_for
    for field in CHANGEABLE:
        value = getattr(config, field)
        state[f"live_{field}"] = config.discriminator_steps if field == "d_steps" else value  # the number it takes


def apply_changes(session: TrainingSession) -> None:
    """Send every field whose value differs from the job's; all are checked before any is sent."""
    state, snapshot = st.session_state, session.snapshot()
    config = snapshot.config
    wanted = {field: state[f"live_{field}"] for field in CHANGEABLE}
    if wanted["d_steps"] == config.discriminator_steps:  # unchanged: a loss's own number stays its own
        wanted["d_steps"] = config.d_steps
    changed = {field: value for field, value in wanted.items() if value != getattr(config, field)}
    try:
        config.replace(**changed)
    except ConfigError as error:
        label = SETTINGS[error.field].label if error.field in SETTINGS else error.field
        state["live_error"] = f"**{label}**: {common.plain(error)}"
        return
    state["live_error"] = None
    sent = sum(session.change(field, value) for field, value in changed.items())
    if sent:
        state[PENDING] = Pending(snapshot.run_name, changes=len(snapshot.changes) + sent)


def live_settings(snapshot: Snapshot, session: TrainingSession) -> None:
    if snapshot.status not in (Status.RUNNING, Status.PAUSED) or snapshot.config is None:
        return
    fill_live_form(snapshot)
    with st.form("live_settings"):
        st.markdown("**Change while it trains**: from the next step, marked on the charts and kept with the run.")
        columns = st.columns(5)
        columns[0].number_input(SETTINGS["lr_g"].label, key="live_lr_g", step=1e-4, format="%.5f")
        columns[1].number_input(SETTINGS["lr_d"].label, key="live_lr_d", step=1e-4, format="%.5f")
        own = "Each loss has its own number (1, or 5 for wgan-gp) until one is set here."
        columns[2].number_input(SETTINGS["d_steps"].label, key="live_d_steps", step=1, min_value=1, help=own)
        columns[3].selectbox(
            SETTINGS["loss"].label,
            LOSSES,
            key="live_loss",
            help="saturating: the original minimax G loss; wgan-gp: a critic with a gradient penalty.",
        )
        columns[4].number_input(SETTINGS["ema_decay"].label, key="live_ema_decay", step=0.001, format="%.4f")
        st.form_submit_button(
            "Apply", key="live_apply", icon=":material/tune:", on_click=apply_changes, args=(session,)
        )
    if st.session_state.get("live_error"):
        st.error(st.session_state["live_error"])


# --- one player at a time ---------------------------------------------------------------------------------------


def take_step(session: TrainingSession, players: Player) -> None:
    snapshot = session.snapshot()
    if session.step(players):
        st.session_state[PENDING] = Pending(snapshot.run_name, step=snapshot.step)


def outputs_figure(before: Sequence[float], after: Sequence[float], title: str, scale: str) -> go.Figure:
    chart = go.Figure()
    # Beliefs on a fixed 0-to-1 axis, so that a step's shift reads at a glance; a critic's scores are unbounded.
    belief = scale != "critic score"
    bins = {"xbins": {"start": 0.0, "end": 1.0, "size": 0.025}} if belief else {"nbinsx": 30}
    for values, name, color in ((before, "before", "#7f7f7f"), (after, "after", "#9467bd")):
        chart.add_histogram(x=list(values), name=name, opacity=0.6, marker={"color": color}, **bins)
    chart.update_layout(
        barmode="overlay",
        title={"text": title, "font": {"size": 14}},
        height=220,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"title": scale, **({"range": [0, 1]} if belief else {})},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
    )
    return chart


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def before_and_after(shown: StepThrough) -> None:
    before, after = shown.before, shown.after
    st.markdown(f"**{shown.title}**, step {before.step} → {after.step}, on the same real digits and fixed-noise fakes:")
    columns = st.columns(4)
    columns[0].metric("D loss", f"{after.loss_d:.3f}", f"{after.loss_d - before.loss_d:+.3f}", delta_color="off")
    columns[1].metric("G loss", f"{after.loss_g:.3f}", f"{after.loss_g - before.loss_g:+.3f}", delta_color="off")
    columns[2].metric("mean D(x)", f"{mean(after.d_real):.3f}", f"{mean(after.d_real) - mean(before.d_real):+.3f}")
    columns[3].metric("mean D(G(z))", f"{mean(after.d_fake):.3f}", f"{mean(after.d_fake) - mean(before.d_fake):+.3f}")
    left, right = st.columns(2)
    left.plotly_chart(
        outputs_figure(before.d_real, after.d_real, "D(x) on 100 real digits", after.scale), key="step_real"
    )
    right.plotly_chart(
        outputs_figure(before.d_fake, after.d_fake, "D(G(z)) on the 100 fixed-noise fakes", after.scale),
        key="step_fake",
    )
    own_batch(shown)
    grids(before, after)


def own_batch(shown: StepThrough) -> None:
    """What the step optimised: D's scores on the real digits of its own batch, beside the fixed ones above."""
    own = shown.own
    if own is None or not own.after:
        return
    change = mean(own.after) - mean(own.before)
    st.metric(
        f"mean D(x) on the step's own {len(own.before)} real digits",
        f"{mean(own.after):.3f}",
        f"{change:+.3f}",
        help="The batch this step trained on: a D step raises D's scores on its real digits (and lowers its loss).",
    )
    lesson = shown.lesson()
    if lesson:
        st.info(lesson, icon=":material/school:")


def grids(before: Measurement, after: Measurement) -> None:
    left, right = st.columns(2)
    left.image(enlarge_png(before.grid_png, 2), caption=f"G's samples before (step {before.step})")
    right.image(enlarge_png(after.grid_png, 2), caption=f"after (step {after.step})")
    if before.grid_png == after.grid_png:
        st.caption("The samples are identical: a D step leaves G untouched.")


def step_through(snapshot: Snapshot, session: TrainingSession) -> None:
    if snapshot.status not in (Status.RUNNING, Status.PAUSED):
        return
    paused = snapshot.status == Status.PAUSED
    with st.container(horizontal=True):
        for players, name in STEP_NAMES.items():
            st.button(
                name,
                key=f"step_{players}",
                disabled=not paused,
                on_click=take_step,
                args=(session, players),
                help="Trains one step on the next batch; it counts as training (saved, resumed).",
            )
    if not paused:
        st.caption("Pause to step one player at a time and see what a single step does.")
    elif snapshot.step_through is not None and snapshot.step_through.after.step == snapshot.step:
        before_and_after(snapshot.step_through)


# --- failure recipes ----------------------------------------------------------------------------------------------


def start_recipe(session: TrainingSession, name: str) -> None:
    state = st.session_state
    run_name = default_run_name(name)
    try:
        started = session.start(RECIPES[name].config(), run_name)
    except (CheckpointError, RunError) as error:
        state["recipe_error"] = common.plain(error)
        return
    state["recipe_error"] = None if started else "A job is already running on this server. Stop it first."
    if started:
        state["run"] = run_name


def recipes(session: TrainingSession, active: bool) -> None:
    st.caption(
        "Each recipe starts a short run that reproduces a classic failure within a few minutes. Watch the charts "
        "and samples, then compare it with a healthy run on the Compare page."
    )
    for recipe in RECIPES.values():
        with st.container(border=True):
            st.button(
                recipe.title,
                key=f"recipe_{recipe.name}",
                icon=":material/science:",
                disabled=active,
                on_click=start_recipe,
                args=(session, recipe.name),
            )
            st.markdown(f"{recipe.what}  \n**Watch:** {recipe.watch}  \n**It teaches:** {recipe.teaches}")
    if st.session_state.get("recipe_error"):
        st.error(st.session_state["recipe_error"])


# --- diagnosis ----------------------------------------------------------------------------------------------------


def diagnosis(records: Iterable[Record]) -> None:
    findings = diagnose(list(records))
    if not findings:
        st.caption("Diagnosis: nothing alarming in the charts and scores so far.")
    for finding in findings:
        st.warning(f"{finding.title}: {finding.evidence} Try: {finding.suggestion}", icon=":material/troubleshoot:")
