"""Train page: the settings of a new run, the controls of the running job, and its live charts and samples.

The page script only lays the sections out: the forms are in views/train_form.py, the live panel in views/live.py,
the experiment controls in views/experiment.py.
"""

import streamlit as st

from gan.jobs.session import Status
from views import common, experiment, live, overview, train_form

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


def page() -> None:
    snapshot = common.get_session().snapshot()
    selected = st.session_state.get("selected_run")
    first_visit = selected is None or selected.shipped  # no run of one's own yet (the picker shows them first)
    st.title("Train")
    explainer = live.lazy_expander(
        "What is a GAN, and how do I read this page?", "explainer_open", first_visit, icon=":material/school:"
    )
    if explainer.open:
        explainer.markdown(GAN_EXPLAINED)
    if first_visit and not snapshot.active:
        train_form.first_minute()
    if snapshot.status != Status.IDLE:  # the graph sits between the job's progress and its charts
        live.job_panel(snapshot, centrepiece=lambda: overview.section(selected, snapshot))
    else:
        overview.section(selected, snapshot)
    settings = live.lazy_expander("Settings for a new run", "settings_open", not first_visit and not snapshot.active)
    if settings.open:
        with settings:
            train_form.settings_form(snapshot.active)
    train_form.continue_panel(selected, snapshot)
    recipes = live.lazy_expander("Failure recipes: reproduce a classic failure", "recipes_open", icon=live.SCIENCE)
    if recipes.open:
        with recipes:
            experiment.recipes(common.get_session(), snapshot.active)


page()
