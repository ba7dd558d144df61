"""GAN Studio: watch a GAN learn to draw MNIST digits. Run with `streamlit run app.py`.

This file is the frame: page setup, the sidebar's run picker and the pages (views/train.py, views/timeline.py,
views/latent.py, views/compare.py, views/probe.py). The training itself lives in `gan/`. The pages folder is
deliberately not called `pages/`: Streamlit would then serve a deep link such as /timeline as an old-style page,
without this frame.
"""

import sys
from pathlib import Path

import streamlit as st

# A shipped icon: a Material icon as the page icon would be fetched from a font server, which fails offline.
ICON = Path(__file__).resolve().parent / "views" / "icon.png"
st.set_page_config(page_title="GAN Studio", page_icon=str(ICON), layout="wide")
# Streamlit leaves 6rem above the page under its top bar; on a 720-pixel laptop screen that pushes the sample grids
# below the fold, so the pages start closer to the navigation.
st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }</style>")

pages = [
    st.Page("views/train.py", title="Train", icon=":material/model_training:", default=True),
    st.Page("views/timeline.py", title="Timeline", icon=":material/timeline:"),
    st.Page("views/latent.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("views/probe.py", title="Your digit", icon=":material/gesture:"),
]
page = st.navigation(pages, position="top")
# A fresh server's first page loads pandas, PyTorch and the project (seconds on a laptop): the navigation, the page's
# title and a note show at once, then the page replaces them. Every later page and rerun finds them loaded.
loading = st.empty()
if not hasattr(sys.modules.get("views.common"), "run_picker"):  # not loaded yet, or another session is loading it
    with loading.container():
        st.title(page.title)
        st.info(
            "Starting GAN Studio: loading PyTorch, once per server (a few seconds)…", icon=":material/hourglass_top:"
        )
# Imported whole before any page runs: plotly looks pandas up in sys.modules without importing it, so a chart drawn
# while another session's thread is still importing pandas would find it half-made (AttributeError). Every session's
# script runs this line before its page, and Python's import lock holds it until pandas is complete.
import pandas  # noqa: E402, F401

from views import kept, links  # noqa: E402
from views.common import run_picker  # noqa: E402

loading.empty()
linked = links.open_link({links.page_name(item.url_path): item for item in pages})  # once per browser session
if linked is not None and linked.url_path != page.url_path:
    st.switch_page(linked)
kept.keep_choices()  # before any widget: the seed, digit, run and epochs survive page switches
st.sidebar.title("GAN Studio")
selected = run_picker()
st.session_state["selected_run"] = selected
links.show_notice()
links.begin(links.page_name(page.url_path), selected.name if selected else None)
page.run()
