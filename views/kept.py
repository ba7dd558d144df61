"""Choices kept across page switches. Streamlit forgets the value of a widget whose page is left (its state is
dropped at the end of the first run that does not draw it); a value written back through `st.session_state` before
any widget is drawn is the user's own and survives, so the explorer's seed and digit, the chosen run and epochs are
as they were when the learner comes back."""

from __future__ import annotations

import re

import streamlit as st

# Widgets whose value can be set from the session state (no buttons, uploads, charts or components).
KEPT = re.compile(
    r"run|latent_(seed|digit|zoom|seed_a|seed_b|steps|method|digit_a|digit_b|interpolate_yours|direction_seed"
    r"|direction_digit|direction_\d+|direction_yours|neighbour_\d+|epoch_.+)|timeline_(epoch_.+|smoothing|losses"
    r"|beliefs|critic)|probe_epoch_.+|compare_(runs|axis|smoothing|epoch)"
)


def keep_choices() -> None:
    """Write each kept widget's value back as the user's own; call before any widget of the run is drawn."""
    state = st.session_state
    for key in list(state.keys()):
        if isinstance(key, str) and KEPT.fullmatch(key):
            try:
                state[key] = state[key]
            except Exception:  # a widget Streamlit will not let be set: it keeps Streamlit's own behaviour
                continue
