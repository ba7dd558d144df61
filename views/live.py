"""The Train page's live panel: the running job's header and buttons, its progress line and sample grid, and its
charts, redrawn by two fragments at their own paces while the job is active (unless the user turned the live view
off); when the job is idle nothing polls.

The job belongs to the process-wide TrainingSession: this panel only sends it commands and draws its snapshots.
"""

import time
from collections.abc import Callable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.errors import StreamlitInvalidLayoutContextError

from gan.ema import FIXED_SAMPLES
from gan.images import enlarge_png
from gan.jobs.session import Snapshot, Status
from gan.series import format_duration
from views import charts, common, experiment

# While a job runs, two fragments poll (unless the user switched the live view off). Every redraw costs CPU that a
# laptop takes from training: in the browser about 0.08 s for the progress line and the grid (much of it React
# re-rendering the whole page, hence the lazy expanders below) and 0.3 s for the two plotly charts; in the server
# about 0.035 s, the fresh grid included, and 0.13 s for the charts and the diagnosis. So the charts redraw least
# often. On a 2-core AVX2 CPU the quick start's small networks made the 5 s / 20 s paces cost 5.2% of training, hence
# 8 s / 30 s. Figures: bench/README.md, live view cost.
STATUS_EVERY = 8.0  # seconds: the progress line and the sample grid (the job draws a fresh grid at most this often)
STARTING_EVERY = 0.5  # ... until the job's first step
CHARTS_EVERY = 30.0  # the loss charts and the diagnosis
# The Timeline of a training run: a look at the job and the run's folder costs about a millisecond; a redraw for a new
# epoch (its D's-eye map and push maps computed, the whole page re-rendered) costs seconds of CPU, so it comes at most
# as often as the Train page's charts. Figures: bench/live_overhead.py.
FOLLOW_LOOK_EVERY = 5.0
FOLLOW_EVERY = CHARTS_EVERY
LIVE_CHART_POINTS = 500
LIVE_CHARTS = (
    (("loss_d", "loss_g"), "Losses", "live_losses"),
    (("d_real", "d_fake"), "What D believes", "live_beliefs"),
)
SCIENCE = ":material/science:"  # the icon of the experiment panels
# st.progress animates each change of its value: on a polling page that animation cost more than the rest of a redraw
STILL_PROGRESS_BAR = "<style>[data-testid='stProgress'] * { transition: none !important; }</style>"


def lazy_expander(label: str, key: str, expanded: bool = False, icon: str | None = None) -> DeltaGenerator:
    """An expander whose caller fills it only while it is open (`.open`). The live panel's every redraw re-renders
    the whole page in the browser, so a closed expander must not carry a form, an essay or a list of buttons."""
    return st.expander(label, expanded=expanded, icon=icon, key=key, on_change="rerun")


STATUS_BADGES = {
    Status.IDLE: ("Idle", "gray"),
    Status.STARTING: ("Starting", "blue"),
    Status.RUNNING: ("Training", "green"),
    Status.PAUSED: ("Paused", "orange"),
    Status.STOPPING: ("Stopping", "orange"),
    Status.FINISHED: ("Finished", "green"),
    Status.STOPPED: ("Stopped", "gray"),
    Status.FAILED: ("Failed", "red"),
}


def job_controls(snapshot: Snapshot) -> None:
    status, session = snapshot.status, common.get_session()
    with st.container(horizontal=True):
        label, color = STATUS_BADGES[status]
        st.badge(label, color=color)
        st.button("Pause", key="pause", icon=":material/pause:", disabled=not status.can_pause, on_click=session.pause)
        st.button(
            "Resume",
            key="resume",
            icon=":material/play_arrow:",
            disabled=not status.can_resume,
            on_click=session.resume,
        )
        st.button("Stop", key="stop", icon=":material/stop:", disabled=not status.can_stop, on_click=session.stop)
        if snapshot.active:
            st.toggle(
                "Live view",
                value=True,
                key="live_view",
                help=f"Redraw progress and samples every {STATUS_EVERY:.0f} s and the charts every "
                f"{CHARTS_EVERY:.0f} s. Each redraw takes a little CPU from training; off gives training all of it.",
            )


def job_progress(snapshot: Snapshot) -> None:
    text = (
        f"Epoch {snapshot.current_epoch} of {snapshot.epochs} · step {snapshot.step:,} of {snapshot.total_steps:,} · "
        f"elapsed {format_duration(snapshot.seconds)}"
    )
    if snapshot.status == Status.PAUSED:  # single steps taken while paused say nothing about the training speed
        text += " · paused"
    elif snapshot.active:
        text += f" · {snapshot.images_per_sec:,.0f} images/s · about {format_duration(snapshot.eta_seconds)} left"
    st.progress(snapshot.progress, text=text)


def job_header(snapshot: Snapshot) -> None:
    st.subheader(f"Run {snapshot.run_name}")
    job_controls(snapshot)
    if snapshot.error:
        st.error(common.plain(snapshot.error))


def job_status(
    drawn: Status, live: bool, progress_box: DeltaGenerator, samples_box: DeltaGenerator, first: bool = False
) -> None:
    """The progress line and the sample grid. When the job's status is no longer the one the page was drawn for
    (it started training, paused, resumed or ended, from any tab), the whole page is redrawn, buttons included; so
    is it when the page was drawn waiting for the `first` step and that step is taken (back to the usual pace).

    A fragment-only rerun may write outside the fragment only where the last full run's fragment wrote: both places
    are written first, on every path, and when the last full run was cut short before it got here (a newer rerun
    replaced it), Streamlit refuses the write and the whole page is redrawn instead."""
    try:
        progress, samples = progress_box.container(), samples_box.empty()
        snapshot = common.get_session().watch()  # this fragment shows the live samples: the job keeps them fresh
        with progress:  # first, so that the step reached shows while the page is redrawn (a second while training)
            job_progress_lines(snapshot, live)
        if snapshot.status != drawn or (first and snapshot.step > 0):
            st.rerun()
        if snapshot.samples_png and snapshot.status != Status.STARTING:
            rows = "row r shows digit r" if snapshot.config and snapshot.config.conditional else "same noise each time"
            caption = f"{FIXED_SAMPLES} samples from fixed noise ({rows})"
            samples.image(enlarge_png(snapshot.samples_png, 2), caption=caption)
    except StreamlitInvalidLayoutContextError:
        st.rerun()


def job_progress_lines(snapshot: Snapshot, live: bool) -> None:
    if snapshot.status == Status.STARTING:
        st.info("Loading MNIST and building the two networks…")
        return
    job_progress(snapshot)
    if snapshot.active and not live:
        st.caption(
            f"Live view is off: this is the job as of {time.strftime('%H:%M:%S')}, and training has the CPU to "
            "itself. Turn Live view on to follow it again."
        )
    if snapshot.status == Status.FINISHED:
        st.success(f"Done: {len(snapshot.saved_epochs)} epochs saved. Explore them on the Timeline page.")
        st.page_link("views/timeline.py", label="Open the timeline", icon=":material/timeline:")


def job_charts(live: bool) -> None:
    snapshot = common.get_session().snapshot()
    if snapshot.status == Status.STARTING:
        return
    if not snapshot.history:
        st.caption("The charts appear after the first steps.")
        return
    smoothing = st.slider(
        "Smoothing",
        0.0,
        0.99,
        0.6,
        0.01,
        key="smoothing",
        width=320,
        help="Exponential moving average of the curves, as in TensorBoard. 0 shows raw values.",
    )
    markers = charts.epoch_markers(snapshot.epoch_records)
    changes = charts.change_markers(snapshot.changes)
    records = snapshot.history
    for names, title, key in LIVE_CHARTS:
        figure = charts.metric_figure(
            records, names, title, smoothing, markers, points=LIVE_CHART_POINTS, changes=changes
        )
        st.plotly_chart(figure, key=key)
    if any(record.wasserstein is not None for record in records):
        critic = (("wasserstein",), common.CRITIC_TITLE)
        figure = charts.metric_figure(records, *critic, smoothing, markers, points=LIVE_CHART_POINTS, changes=changes)
        st.plotly_chart(figure, key="live_critic")
    caption = (
        "Dotted lines mark the ends of epochs, dashed purple lines the settings changed mid-run. D(x) high and "
        "D(G(z)) low means D is winning for now. A wgan-gp critic's scores are not beliefs: while it trains that "
        "chart pauses and a third shows the critic's D(x) - D(G(z)), which falls as G's digits get closer to real."
    )
    if live:
        caption += f" While training, charts refresh every {CHARTS_EVERY:.0f} s and samples every {STATUS_EVERY:.0f} s."
    st.caption(caption)
    experiment.diagnosis([*snapshot.history, *snapshot.epoch_records])


def job_panel(snapshot: Snapshot, centrepiece: Callable[[], None] | None = None) -> None:
    """The job's header and buttons (drawn with the page), its progress and samples (redrawn every STATUS_EVERY
    seconds while it is active) and its charts (every CHARTS_EVERY seconds); `centrepiece` draws between the
    progress and the charts (the overview graph)."""
    live = snapshot.active and st.session_state.get("live_view", True)
    st.html(STILL_PROGRESS_BAR)
    job_header(snapshot)
    if snapshot.status in (Status.RUNNING, Status.PAUSED):
        controls = lazy_expander("Experiment: change settings, step one player", "experiment_open", icon=SCIENCE)
        if controls.open:
            with controls:
                session = common.get_session()
                experiment.live_settings(snapshot, session)
                experiment.step_through(snapshot, session)
                experiment.replies(session)
    progress_box = st.container()
    if centrepiece is not None:
        centrepiece()
    charts, samples = st.columns([3, 2], gap="large")
    # until the first step is taken (a second or two after the click), poll every half second: it shows soon after
    first = snapshot.status == Status.STARTING or (snapshot.status == Status.RUNNING and snapshot.step == 0)
    every = STARTING_EVERY if first else STATUS_EVERY
    st.fragment(job_status, run_every=every if live else None)(snapshot.status, live, progress_box, samples, first)
    with charts:
        st.fragment(job_charts, run_every=CHARTS_EVERY if live else None)(live)
