"""Shared pieces of the pages: the one training session, the run picker, cached loads and image helpers
(the charts are in views/charts.py).

Everything here is presentation; the work is done by `gan/`.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path

import streamlit as st
import torch
from PIL import Image

from gan.config import Config
from gan.data import DEFAULT_DATA_DIR, Dataset, load_mnist
from gan.images import png_bytes
from gan.jobs.session import Status, TrainingSession
from gan.jobs.warmup import start_warm_up
from gan.lab.latent import Directions, principal_directions, typical_distance
from gan.store.history import History
from gan.store.listing import RunInfo, list_all_runs, root_problem
from gan.store.run import Run, default_root, load_generator

COLORS = {"loss_d": "#1f77b4", "loss_g": "#ff7f0e", "d_real": "#2ca02c", "d_fake": "#d62728", "wasserstein": "#8c564b"}
CHANGE_COLOR = "#9467bd"  # lines where a setting changed mid-run
LABELS = {
    "loss_d": "D loss",
    "loss_g": "G loss",
    "d_real": "D(x): real judged real",
    "d_fake": "D(G(z)): fake judged real",
    "wasserstein": "critic's D(x) - D(G(z))",
}
CRITIC_TITLE = "wgan-gp critic: its estimate of the distance to the real digits"
CHART_POINTS = 3000  # thin long histories before plotting; the browser need not draw 50,000 points
HIGHLIGHT = "#7f7f7f"  # the chosen epoch's line
STOP_WAIT = 10.0  # seconds to let a released job save its state and end


# --- the process-wide job and the run picker ------------------------------------------------------------------


def release_session(session: TrainingSession) -> None:
    """Streamlit dropped the session (e.g. "Clear caches"): stop its job, so that no thread trains unseen and the
    next session cannot start a second job beside it."""
    session.stop(wait=STOP_WAIT)


@st.cache_resource(on_release=release_session)
def get_session() -> TrainingSession:
    """One trainer for the whole server: every tab and every refresh attaches to the same job. Made with the first
    page, it also starts loading what a first training step needs, while the page is read (gan.jobs.warmup)."""
    start_warm_up()
    return TrainingSession()


def no_runs() -> None:
    """What a page that shows a run says when there is none yet."""
    st.info("No runs yet. Start one on the Train page.")
    st.page_link("views/train.py", label="Go to Train", icon=":material/model_training:")


def plain(text: object) -> str:
    """Untrusted text (run names, reasons, anything read from a file) for Streamlit's Markdown elements: every
    ASCII punctuation mark backslash-escaped (CommonMark), so no link, image, emphasis, colour or emoji code is
    ever rendered; newlines become spaces."""
    return "".join("\\" + char if char in string.punctuation else char for char in " ".join(str(text).split()))


def run_summary(info: RunInfo, live: bool, paused: bool = False) -> str:
    if info.config is None:
        return f":red[Unreadable:] {plain(info.error)}"
    if live:  # the sidebar is not redrawn while training, so no counts that would go stale
        state = ":orange[Paused]" if paused else ":green[Training now]"
        return f"{state} · {info.config.preset}, {info.config.epochs} epochs"
    saved = f"{info.config.preset} · {len(info.epochs)} of {info.config.epochs} epochs saved"
    if stopped_mid_epoch(info):
        saved += f" · stopped at step {info.last_record.step:,}, saved: Continue resumes it"
    return saved + (" · shipped with GAN Studio, read-only: Continue trains a copy" if info.shipped else "")


def stopped_mid_epoch(info: RunInfo) -> bool:
    """Steps were taken after the last saved epoch (a stop saves them to resume from, not as an epoch)."""
    last = info.last_record
    return last is not None and last.epoch >= (info.epochs[-1] if info.epochs else 0)


def run_label(info: RunInfo) -> str:
    if info.shipped:
        return f"{info.name} (demo)"
    return info.name if info.config else f"{info.name} (unreadable)"


def run_picker() -> RunInfo | None:
    """The sidebar's run selector (shared by every page); returns the chosen run, or None when there are none.

    Options are labelled by name only, so a label never changes under the user while a run grows; the details
    of the chosen run go in a caption below it.
    """
    runs = list_all_runs()
    snapshot = get_session().snapshot()
    live = snapshot.run_name if snapshot.active else None
    if live:  # its folder may be half-written at this moment: describe it from the job instead
        listed = [info for info in runs if info.name == live and info.config is not None]
        runs = [info for info in runs if info.name != live]
        job = listed[0] if listed else RunInfo(live, default_root() / live, snapshot.config, (), None, None)
        runs.insert(sum(info.shipped for info in runs), job)  # first after the shipped runs
    st.sidebar.header("Runs")
    if snapshot.error:
        st.sidebar.error(f"The training job of run **{plain(snapshot.run_name)}** needs attention: see the Train page.")
    problem = root_problem()  # e.g. the folder of runs is a file: say so, not "no runs yet"
    if problem:
        st.sidebar.error(plain(problem))
    if not runs:
        st.sidebar.caption("No runs yet. Start one on the Train page.")
        return None
    names = [info.name for info in runs]
    if st.session_state.get("run") not in names:  # the job's run, else the newest of one's own, else the demo
        own = [info.name for info in runs if not info.shipped]
        st.session_state["run"] = live if live in names else (own or names)[0]
    by_name = {info.name: info for info in runs}
    chosen = st.sidebar.selectbox(
        "Run",
        names,
        key="run",
        format_func=lambda name: run_label(by_name[name]),
        help=f"The demo runs shipped with GAN Studio (read-only), then the folders in {plain(default_root())}, "
        "newest first.",
    )
    st.sidebar.caption(run_summary(by_name[chosen], chosen == live, snapshot.status == Status.PAUSED))
    return by_name[chosen]


def show_unusable(info: RunInfo) -> bool:
    """Explain why a run cannot be shown yet; returns True when the page should stop there."""
    if info.config is None:
        st.error(f"Run **{plain(info.name)}** is unreadable: {plain(info.error)}")
        return True
    if not info.epochs:
        stopped = f" It stopped at step {info.last_record.step:,}, saved: Continue on the Train page resumes it."
        st.info(
            f"Run **{plain(info.name)}** has no saved epochs yet: the first is saved at the end of epoch 1."
            + (stopped if stopped_mid_epoch(info) else "")
        )
        return True
    if info.error:  # e.g. the newest epoch file is damaged; the others may still be fine
        st.warning(f"Run **{plain(info.name)}**: {plain(info.error)}")
    return False


# --- cached loads (keys include file times, so a rewritten file is read afresh) --------------------------------


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(max_entries=8, show_spinner=False)  # shared, not copied: callers only read it
def run_history(path: str, stamp: tuple[int, float]) -> History:
    return Run(Path(path)).history()


def history_of(run: Run) -> History:
    """The run's history, parsed once per (size, time) of its file: a rerun with no new lines reads nothing."""
    file = run.path / "history.jsonl"
    try:
        stat = file.stat()
        stamp = (stat.st_size, stat.st_mtime)
    except OSError:
        stamp = (0, 0.0)
    return run_history(str(run.path), stamp)


@st.cache_resource(max_entries=4, show_spinner="Loading the generator…")
def cached_generator(path: str, epoch: int, stamp: float) -> tuple[torch.nn.Module, Config, int]:
    return load_generator(Run(Path(path)), epoch)


def generator_for(run: Run, epoch: int) -> tuple[torch.nn.Module, Config, int]:
    """The EMA generator of a saved epoch, loaded once per (run, epoch, file time)."""
    return cached_generator(str(run.path), epoch, mtime(run.epoch_path(epoch)))


@st.cache_resource(max_entries=4, show_spinner="Finding the main directions of variation…")
def cached_directions(path: str, epoch: int, stamp: float, count: int) -> Directions:
    G, _, _ = cached_generator(path, epoch, stamp)
    return principal_directions(G, count=count)


@st.cache_resource(show_spinner="Loading MNIST…")
def mnist_splits() -> tuple[Dataset, Dataset]:
    return load_mnist(DEFAULT_DATA_DIR, "train"), load_mnist(DEFAULT_DATA_DIR, "test")


@st.cache_data(show_spinner="Measuring how far real digits are from each other…")
def real_typical_distance() -> float:
    train, test = mnist_splits()
    return typical_distance(train, test)


# --- images ---------------------------------------------------------------------------------------------------


def download(label: str, data: bytes | Callable[[], bytes], file_name: str, key: str) -> None:
    """A download button; `data` may be a function, called only when the button is clicked."""
    mime = {".gif": "image/gif", ".html": "text/html"}.get(Path(file_name).suffix, "image/png")
    st.download_button(
        label, data, file_name=file_name, mime=mime, key=key, on_click="ignore", icon=":material/download:"
    )


def picture_with_download(picture: Image.Image, caption: str, file_name: str, key: str) -> None:
    """Show a picture at its own size (a zoom control chooses the size) with a PNG download under it."""
    data = png_bytes(picture)
    st.image(data, caption=caption)
    download("Download PNG", data, file_name, key)
