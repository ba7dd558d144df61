"""The Train page's forms: the quick start of a first run, the settings of a new run (drawn from the settings
schema) and the continuation of a saved run; their buttons send the commands to the process-wide TrainingSession.
"""

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from gan.config import SETTINGS, Config, ConfigError, Setting
from gan.demo import copy_for_training
from gan.jobs.runner import RunError, continue_target
from gan.jobs.session import Snapshot, Status
from gan.presets import QUICK_START
from gan.scoring.judge import judge_is_cached
from gan.store.checkpoints import CheckpointError
from gan.store.listing import RunInfo
from gan.store.run import Run, default_run_name
from gan.store.shipped import is_shipped
from views import common

FORM_SETTINGS = tuple(setting for setting in SETTINGS.values() if setting.section)  # the preset has its own box
PRESET_NAMES = {
    "cdcgan": "cdcgan: convolutional, conditional (you choose the digit)",
    "dcgan": "dcgan: convolutional (Radford et al., 2015)",
    "classic": "classic: fully connected (Goodfellow et al., 2014)",
}


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
    st.session_state["cfg_name"] = default_run_name(preset)


def start_job(config: Config, name: str, error_key: str) -> None:
    """Start a new run unless the name is bad or taken, or a job is already running; errors go to `error_key`."""
    state = st.session_state
    try:
        started = common.get_session().start(config, name)
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
        state["cfg_name"] = default_run_name(state["cfg_preset"])


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
    start_job(config, default_run_name(f"first-{config.preset}"), "quick_error")


def continue_run(name: str) -> None:
    epochs = st.session_state[f"continue_epochs_{name}"]
    session = common.get_session()
    try:
        run = Run.at(name)
        if is_shipped(run.path) and not session.snapshot().active:  # read-only: train a copy of it instead
            name = copy_for_training(run).name
            st.session_state["run"] = name  # the sidebar follows the copy
        started = session.start(None, name, resume=True, epochs=epochs)
    except (CheckpointError, RunError, ConfigError) as error:  # e.g. a run name that is not allowed
        st.session_state["continue_error"] = common.plain(error)
        return
    st.session_state["continue_error"] = None if started else "A job is already running on this server. Stop it first."


# --- starting and continuing ----------------------------------------------------------------------------------


def first_minute() -> None:
    with st.container(border=True):
        st.markdown("#### Train your own GAN")
        st.markdown(
            "One click trains a small conditional GAN for ten short epochs with tuned settings. Within about a minute "
            "you will see the noise turn into digits, with the losses charted live. Until then, every page shows the "
            "demo run that ships with GAN Studio (chosen in the sidebar)."
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


def continue_panel(info: RunInfo | None, snapshot: Snapshot) -> None:
    """Train a stopped (or finished) run further, from its newest saved state."""
    active = snapshot.active
    if info is None or info.config is None or (active and snapshot.run_name == info.name):
        return
    just_stopped = snapshot.status in (Status.STOPPED, Status.FAILED) and snapshot.run_name == info.name
    with st.expander(f"Continue run **{common.plain(info.name)}**", expanded=just_stopped):
        last = info.epochs[-1] if info.epochs else 0
        target = continue_target(last, info.config.epochs)
        st.caption(f"Saved epochs: {last} of {info.config.epochs}. Training continues from the newest saved state.")
        if info.shipped:
            st.caption("This run ships with GAN Studio and is read-only: Continue trains a copy of it, under a name of "
                       "its own in the checkpoints folder. G starts from its averaged copy, Adam afresh.")  # fmt: skip
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
