"""Links that reproduce a view: the page, the run, the epoch, and the latent explorer's seed and digit live in the
URL's query parameters (`st.query_params`), kept up to date as the user moves, so a copied link opens the same view.

A link is untrusted. Each value is checked against what exists here (a listed run, one of its saved epochs, a seed
in range, a digit 0-9) before it touches any widget; a bad one falls back to the default with a short notice that
names the parameter, never its value, and nothing in a link can raise.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage as Page

from gan.numbers import NumberError, whole_number
from gan.store.listing import list_all_runs

KEYS = ("page", "run", "epoch", "seed", "digit")  # the order they appear in a link
PAGE_KEYS = {"timeline": ("epoch",), "latent": ("epoch", "seed", "digit")}  # what else each page keeps
MAX_SEED = 2**31 - 1
MAX_TEXT = 64  # characters; no good value is longer
APPLIED = "link_applied"  # session state: the link of this browser session was read
NOTICE = "link_notice"


@dataclass(frozen=True)
class View:
    """What a link asks for, every value already checked (None: not asked for, or not usable)."""

    page: str | None = None
    run: str | None = None
    epoch: int | None = None
    seed: int | None = None
    digit: int | str | None = None  # 0-9, or "all"


def _whole(text: str, high: int) -> int | None:
    """A whole number from 0 to `high` in a link, read as every number from text is (gan/numbers.py), or None."""
    try:
        value = whole_number(text)
    except NumberError:
        return None
    return value if 0 <= value <= high else None


def read_view(
    params: Mapping[str, str], pages: Collection[str], runs: Mapping[str, Sequence[int]], default_run: str | None
) -> tuple[View, list[str]]:
    """The view a link's parameters ask for, and the names of those that cannot be used here. `pages` are the app's
    page names, `runs` maps each listed run to its saved epochs; an epoch is checked against the link's run, else
    the run shown by default."""
    given = {key: str(params[key]) for key in KEYS if key in params}
    bad = [key for key, value in given.items() if len(value) > MAX_TEXT]
    given = {key: value for key, value in given.items() if key not in bad}
    page = given.get("page")
    if page is not None and page not in pages:
        bad.append("page")
        page = None
    run = given.get("run")
    if run is not None and run not in runs:
        bad.append("run")
        run = None
    epoch = None
    if "epoch" in given:
        epoch = _whole(given["epoch"], 10**7)
        if epoch is None or epoch not in runs.get(run or default_run or "", ()):
            bad.append("epoch")
            epoch = None
    seed = _whole(given["seed"], MAX_SEED) if "seed" in given else None
    if "seed" in given and seed is None:
        bad.append("seed")
    digit: int | str | None = None
    if "digit" in given:
        digit = "all" if given["digit"] == "all" else _whole(given["digit"], 9)
        if digit is None:
            bad.append("digit")
    return View(page, run, epoch, seed, digit), sorted(set(bad), key=KEYS.index)


def notice(bad: Sequence[str]) -> str:
    named = " and ".join(f"*{key}*" for key in bad)
    return f"This link's {named} {'does' if len(bad) == 1 else 'do'} not fit anything here, so the default is shown."


def open_link(pages: Mapping[str, Page]) -> Page | None:
    """Once per browser session, before any widget is drawn: put the link's view into the widgets' state. `pages`
    are the app's, by name; returns the one the link asks for (None: the one in the address)."""
    state = st.session_state
    if state.get(APPLIED):
        return None
    state[APPLIED] = True
    listed = list_all_runs()
    own = [info.name for info in listed if not info.shipped]
    runs = {info.name: info.epochs for info in listed if info.config is not None}
    default_run = (own or [info.name for info in listed] or [None])[0]  # as the run picker chooses
    try:
        params = {key: st.query_params[key] for key in KEYS if key in st.query_params}
    except Exception:  # a query string Streamlit itself cannot read: the default view
        params = {}
    view, bad = read_view(params, pages, runs, default_run)
    if bad:
        state[NOTICE] = notice(bad)
    run = view.run or default_run
    if view.run is not None:
        state["run"] = view.run
    if view.epoch is not None and run is not None:
        state[f"timeline_epoch_{run}"] = view.epoch
        state[f"latent_epoch_{run}"] = view.epoch
    if view.seed is not None:
        state["latent_seed"] = view.seed
    if view.digit is not None:
        state["latent_digit"] = view.digit
    return pages[view.page] if view.page else None


def show_notice() -> None:
    """The notice about a link's unusable values, once."""
    message = st.session_state.pop(NOTICE, None)
    if message:
        st.warning(message, icon=":material/link_off:")


def page_name(url_path: str) -> str:
    return url_path or "train"


def begin(page: str, run: str | None) -> None:
    """The address of this page and run, without the parts other pages keep; the page keeps its own with `keep`."""
    for key in KEYS[2:]:
        if key not in PAGE_KEYS.get(page, ()):
            st.query_params.pop(key, None)
    keep(page=page, run=run)


def keep(**values: int | str | None) -> None:
    """Put the page's epoch, seed or digit in the address (None leaves it out)."""
    for key, value in values.items():
        if value is None:
            st.query_params.pop(key, None)
        elif st.query_params.get(key) != str(value):
            st.query_params[key] = str(value)
