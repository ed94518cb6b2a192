"""Rollout Bucketer: the Streamlit app. ``streamlit run app.py`` opens it on the bundled sample."""

# Streamlit runs this file as __main__ on every rerun. The loader's worker processes (spawned: the server has
# threads) import the main script again, as __mp_main__: they need none of the app, nor Streamlit.
if __name__ == "__main__":
    import streamlit as st

    from pages.common import view_url
    from pages.common.shared import configure_page, data_caption, init_state

    configure_page()
    init_state()
    view_url.apply_once()  # a shared link's view, on the session's first run
    page = st.navigation(
        [
            st.Page("pages/data.py", title="Data", icon=":material/folder_open:", default=True),
            st.Page("pages/distributions.py", title="Distributions", icon=":material/bar_chart:"),
            st.Page("pages/buckets.py", title="Buckets", icon=":material/view_column:"),
            st.Page("pages/compare.py", title="Compare", icon=":material/grid_view:"),
            st.Page("pages/export.py", title="Export", icon=":material/save:"),
            st.Page("pages/trends.py", title="Trends", icon=":material/trending_up:"),
        ]
    )
    with st.sidebar:
        data_slot = st.empty()  # filled again after the page: a load on this run shows at once, not one run later
        data_slot.caption(data_caption())
        st.caption("Rollout Bucketer — split RL rollouts into difficulty buckets.")
    page.run()
    data_slot.caption(data_caption())
    view_url.publish()  # the view as it is now, in the address bar: copy the link to share it
