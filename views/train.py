"""Train page: the settings of a new run, the controls of the running job, and its live charts and samples.

The job belongs to the process-wide TrainingSession; this page only sends it commands and draws its snapshots.
While a job is active two fragments redraw the live panel, each at its own pace, unless the user turned the live view
off; when idle nothing polls.
"""

import time

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from gan.config import QUICK_START, SETTINGS, Config, ConfigError, Setting
from gan.images import enlarge_png
from gan.jobs.runner import RunError, continue_target
from gan.jobs.session import Snapshot, Status
from gan.scoring.judge import judge_is_cached
from gan.series import format_duration
from gan.store.checkpoints import CheckpointError, RunInfo
from gan.train import FIXED_SAMPLES
from views import common, experiment

FORM_SETTINGS = tuple(setting for setting in SETTINGS.values() if setting.section)  # the preset has its own box
PRESET_NAMES = {
    "cdcgan": "cdcgan: convolutional, conditional (you choose the digit)",
    "dcgan": "dcgan: convolutional (Radford et al., 2015)",
    "classic": "classic: fully connected (Goodfellow et al., 2014)",
}

session = common.get_session()
# While a job runs, two fragments poll (unless the user switched the live view off). Every redraw costs CPU that a
# laptop takes from training: in the browser about 0.08 s for the progress line and the grid (much of it React
# re-rendering the whole page, hence the lazy expanders below) and 0.3 s for the two plotly charts; in the server
# about 0.035 s, the fresh grid included, and 0.13 s for the charts and the diagnosis. So the charts redraw least
# often. On a 2-core AVX2 CPU the quick start's small networks made the 5 s / 20 s paces cost 5.2% of training, hence
# 8 s / 30 s. Figures: bench/README.md, live view cost.
STATUS_EVERY = 8.0  # seconds: the progress line and the sample grid (the job draws a fresh grid at most this often)
CHARTS_EVERY = 30.0  # the loss charts and the diagnosis
LIVE_CHART_POINTS = 500
LIVE_CHARTS = (
    (("loss_d", "loss_g"), "Losses", "live_losses"),
    (("d_real", "d_fake"), "What D believes", "live_beliefs"),
)
SCIENCE = ":material/science:"  # the icon of the experiment panels
# st.progress animates each change of its value: on a polling page that animation cost more than the rest of a redraw
STILL_PROGRESS_BAR = "<style>[data-testid='stProgress'] * { transition: none !important; }</style>"

GAN_EXPLAINED = """
A **generative adversarial network** is two networks trained against each other:

* the **generator G** turns random noise **z** into an image, and never sees a real digit;
* the **discriminator D** looks at an image and says how likely it is to be a real MNIST digit.

Each step, D learns to tell the real digits from G's fakes, then G learns to fool the new D. Neither loss goes
to zero: they push against each other, and a healthy run keeps them in rough balance while the samples improve.

**How to read the charts.** *D loss* is how wrong the discriminator is; *G loss* is how wrong the generator is.
Watch for one collapsing to zero while the other climbs: that player has won and learning stalls.
*D(x)* is D's average belief that real digits are real, *D(G(z))* its belief that fakes are real;
at a perfect balance both sit at 0.5. Faint lines are the raw values, solid lines are smoothed (like TensorBoard).

**The sample grid** always draws the same 100 noise vectors, so changes you see are due to learning, not luck.
It comes from an *EMA* copy of G (a running average of its weights), which gives steadier pictures.
"""


# --- commands (run as button callbacks, before the page is drawn) ----------------------------------------------


def setting_label(field: str) -> str:
    """The form's name for a setting an error is about (a setting of the schema, or another field)."""
    return SETTINGS[field].label if field in SETTINGS else field


def fill_defaults() -> None:
    """Put the chosen preset's tuned settings into the form."""
    preset = st.session_state["cfg_preset"]
    config = Config.for_preset(preset)
    for setting in FORM_SETTINGS:
        st.session_state[f"cfg_{setting.name}"] = setting.to_form(getattr(config, setting.name))
    st.session_state["cfg_name"] = common.default_run_name(preset)


def start_job(config: Config, name: str, error_key: str) -> None:
    """Start a new run unless the name is bad or taken, or a job is already running; errors go to `error_key`."""
    state = st.session_state
    try:
        started = session.start(config, name)
    except ConfigError as error:  # e.g. settings that cannot fit in memory
        state[error_key] = f"**{setting_label(error.field)}**: {common.plain(error)}"
        return
    except (CheckpointError, RunError) as error:
        state[error_key] = f"**Run name**: {common.plain(error)}"
        return
    if not started:
        state[error_key] = "A job is already running on this server: there is one at a time. Stop it first."
        return
    state[error_key] = None
    state["run"] = name  # the sidebar follows the new run
    if "cfg_preset" in state:
        state["cfg_name"] = common.default_run_name(state["cfg_preset"])


def start_from_form() -> None:
    state = st.session_state
    values = {setting.name: setting.from_form(state[f"cfg_{setting.name}"]) for setting in FORM_SETTINGS}
    try:
        config = Config.for_preset(state["cfg_preset"], **values)
    except ConfigError as error:
        state["form_error"] = f"**{setting_label(error.field)}**: {common.plain(error)}"
        return
    start_job(config, str(state["cfg_name"]).strip(), "form_error")


def start_quick() -> None:
    """The quick start's preset, scored only when the digit judge is already built: nothing delays the first digits."""
    config = Config.for_preset(**QUICK_START, evaluate=judge_is_cached())
    start_job(config, common.default_run_name(f"first-{config.preset}"), "quick_error")


def continue_run(name: str) -> None:
    epochs = st.session_state[f"continue_epochs_{name}"]
    try:
        started = session.start(None, name, resume=True, epochs=epochs)
    except (CheckpointError, RunError, ConfigError) as error:  # e.g. a run name that is not allowed
        st.session_state["continue_error"] = common.plain(error)
        return
    st.session_state["continue_error"] = None if started else "A job is already running on this server. Stop it first."


# --- the live job ---------------------------------------------------------------------------------------------


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
    status = snapshot.status
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
        f"{snapshot.images_per_sec:,.0f} images/s · elapsed {format_duration(snapshot.seconds)}"
    )
    if snapshot.active:
        text += f" · about {format_duration(snapshot.eta_seconds)} left"
    st.progress(snapshot.progress, text=text)


def job_header(snapshot: Snapshot) -> None:
    st.subheader(f"Run {snapshot.run_name}")
    job_controls(snapshot)
    if snapshot.error:
        st.error(common.plain(snapshot.error))


def job_status(drawn: str, live: bool, progress_box: DeltaGenerator, samples_box: DeltaGenerator) -> None:
    """The progress line and the sample grid. When the job's status is no longer the one the page was drawn for
    (it started training, paused, resumed or ended, from any tab), the whole page is redrawn, buttons included."""
    snapshot = session.watch()  # this fragment shows the live samples: the job keeps them fresh while it polls
    if snapshot.status != drawn:
        st.rerun()
    with progress_box:
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
    if snapshot.samples_png:
        rows = "row r shows digit r" if snapshot.config and snapshot.config.conditional else "same noise each time"
        samples_box.image(
            enlarge_png(snapshot.samples_png, 2), caption=f"{FIXED_SAMPLES} samples from fixed noise ({rows})"
        )


def job_charts(live: bool) -> None:
    snapshot = session.snapshot()
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
    markers = common.epoch_markers(snapshot.epoch_records)
    changes = common.change_markers(snapshot.changes)
    records = snapshot.history
    for names, title, key in LIVE_CHARTS:
        figure = common.metric_figure(
            records, names, title, smoothing, markers, points=LIVE_CHART_POINTS, changes=changes
        )
        st.plotly_chart(figure, key=key)
    if any(record.wasserstein is not None for record in records):
        critic = (("wasserstein",), common.CRITIC_TITLE)
        figure = common.metric_figure(records, *critic, smoothing, markers, points=LIVE_CHART_POINTS, changes=changes)
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


def job_panel(snapshot: Snapshot) -> None:
    """The job's header and buttons (drawn with the page), its progress and samples (redrawn every STATUS_EVERY
    seconds while it is active) and its charts (every CHARTS_EVERY seconds)."""
    live = snapshot.active and st.session_state.get("live_view", True)
    st.html(STILL_PROGRESS_BAR)
    job_header(snapshot)
    if snapshot.status in (Status.RUNNING, Status.PAUSED):
        controls = lazy_expander("Experiment: change settings, step one player", "experiment_open", icon=SCIENCE)
        if controls.open:
            with controls:
                experiment.live_settings(snapshot, session)
                experiment.step_through(snapshot, session)
    progress_box = st.container()
    charts, samples = st.columns([3, 2], gap="large")
    st.fragment(job_status, run_every=STATUS_EVERY if live else None)(snapshot.status, live, progress_box, samples)
    with charts:
        st.fragment(job_charts, run_every=CHARTS_EVERY if live else None)(live)


# --- starting and continuing ----------------------------------------------------------------------------------


def first_minute() -> None:
    with st.container(border=True):
        st.markdown("#### No runs yet. Train your first GAN")
        st.markdown(
            "One click trains a small conditional GAN for ten short epochs with tuned settings. Within about a minute "
            "you will see the noise turn into digits, with the losses charted live."
        )
        st.button(
            "Train a digit generator",
            key="quick_start",
            type="primary",
            icon=":material/play_arrow:",
            on_click=start_quick,
        )
        if st.session_state.get("quick_error"):
            st.error(st.session_state["quick_error"])


def setting_widget(container: DeltaGenerator, setting: Setting) -> None:
    """The form's widget for a setting, from the schema: a checkbox, a choice or a number."""
    key, help = f"cfg_{setting.name}", setting.help[0].upper() + setting.help[1:] + "."
    if setting.kind is bool:
        container.checkbox(setting.label, key=key, help=help)
    elif setting.choices:
        container.selectbox(setting.label, setting.choices, key=key, help=help)
    elif setting.kind is float:
        container.number_input(setting.label, key=key, step=setting.step, format=f"%.{setting.digits}f", help=help)
    else:
        help += " 0 means all of them." if setting.optional else ""
        container.number_input(setting.label, key=key, step=int(setting.step), help=help)


def setting_widgets(settings: list[Setting], columns: int = 3) -> None:
    """Numbers and choices in columns, filled top to bottom; switches below them."""
    boxes = [setting for setting in settings if setting.kind is not bool]
    switches = [setting for setting in settings if setting.kind is bool]
    per_column = -(-len(boxes) // columns)
    for index, column in enumerate(st.columns(columns)):
        for setting in boxes[index * per_column : (index + 1) * per_column]:
            setting_widget(column, setting)
    for setting in switches:
        setting_widget(st, setting)


def settings_form(active: bool) -> None:
    if "cfg_preset" not in st.session_state:
        st.session_state["cfg_preset"] = "cdcgan"
        fill_defaults()
    preset = SETTINGS["preset"]
    st.selectbox(
        preset.label,
        preset.choices,
        key="cfg_preset",
        format_func=PRESET_NAMES.get,
        on_change=fill_defaults,
        help="Choosing a preset fills in its tuned settings.",
    )
    with st.form("settings", border=False):
        st.text_input("Run name", key="cfg_name", help="Letters, digits, '-', '_' and '.'; the folder of the run.")
        setting_widgets([setting for setting in FORM_SETTINGS if setting.section == "main"])
        with st.expander("Advanced"):
            setting_widgets([setting for setting in FORM_SETTINGS if setting.section == "advanced"])
        st.form_submit_button(
            "Start training",
            key="start",
            type="primary",
            icon=":material/play_arrow:",
            disabled=active,
            on_click=start_from_form,
        )
    if st.session_state.get("form_error"):
        st.error(st.session_state["form_error"])


def continue_panel(info: RunInfo | None, active: bool) -> None:
    """Train a stopped (or finished) run further, from its newest saved state."""
    snapshot = session.snapshot()
    if info is None or info.config is None or (active and snapshot.run_name == info.name):
        return
    just_stopped = snapshot.status in (Status.STOPPED, Status.FAILED) and snapshot.run_name == info.name
    with st.expander(f"Continue run **{common.plain(info.name)}**", expanded=just_stopped):
        last = info.epochs[-1] if info.epochs else 0
        target = continue_target(last, info.config.epochs)
        st.caption(f"Saved epochs: {last} of {info.config.epochs}. Training continues from the newest saved state.")
        st.number_input("Train until epoch", min_value=1, value=target, step=1, key=f"continue_epochs_{info.name}")
        st.button(
            "Continue this run",
            key="continue",
            icon=":material/resume:",
            disabled=active,
            on_click=continue_run,
            args=(info.name,),
        )
        if st.session_state.get("continue_error"):
            st.error(st.session_state["continue_error"])


# --- the page -------------------------------------------------------------------------------------------------


def lazy_expander(label: str, key: str, expanded: bool = False, icon: str | None = None) -> DeltaGenerator:
    """An expander whose caller fills it only while it is open (`.open`). The live panel's every redraw re-renders
    the whole page in the browser, so a closed expander must not carry a form, an essay or a list of buttons."""
    return st.expander(label, expanded=expanded, icon=icon, key=key, on_change="rerun")


def page() -> None:
    snapshot = session.snapshot()
    selected = st.session_state.get("selected_run")
    st.title("Train")
    explainer = lazy_expander(
        "What is a GAN, and how do I read this page?", "explainer_open", selected is None, icon=":material/school:"
    )
    if explainer.open:
        explainer.markdown(GAN_EXPLAINED)
    if selected is None and not snapshot.active:
        first_minute()
    if snapshot.status != Status.IDLE:
        job_panel(snapshot)
    settings = lazy_expander("Settings for a new run", "settings_open", selected is not None and not snapshot.active)
    if settings.open:
        with settings:
            settings_form(snapshot.active)
    continue_panel(selected, snapshot.active)
    recipes = lazy_expander("Failure recipes: reproduce a classic failure", "recipes_open", icon=SCIENCE)
    if recipes.open:
        with recipes:
            experiment.recipes(session, snapshot.active)


page()
