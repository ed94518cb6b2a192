"""Rollout Bucketer: the Streamlit app. ``streamlit run app.py`` opens it on the bundled sample."""

import streamlit as st

from pages.common.shared import configure_page, init_state, source_name
from pages.common.text import literal

configure_page()
init_state()

page = st.navigation(
    [
        st.Page("pages/data.py", title="Data", icon=":material/folder_open:", default=True),
        st.Page("pages/distributions.py", title="Distributions", icon=":material/bar_chart:"),
        st.Page("pages/buckets.py", title="Buckets", icon=":material/view_column:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/grid_view:"),
        st.Page("pages/export.py", title="Export", icon=":material/save:"),
    ]
)
with st.sidebar:
    source = st.session_state["source"]
    if source:
        st.caption(f"Data: {literal(source_name(source))} · {len(source.fingerprint)} files")
    st.caption("Rollout Bucketer — split RL rollouts into difficulty buckets.")
page.run()
