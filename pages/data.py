"""Data: choose a folder of rollouts (or upload files), load it, see what is in it."""

import shlex

import pandas as pd
import streamlit as st

import bucketing
from bucketing.wording import counted, human_bytes
from pages.common import shared
from pages.common.charts import counts_figure, download
from pages.common.text import literal
from pages.common.uploads import READ, save_uploads

shared.page_header(
    "Data",
    "Point the app at a folder of rollout JSONL files (`*.jsonl`, `*.jsonl.gz`, `*.jsonl.zst`, "
    "searched recursively), or upload files.",
)


def load_folder(path_text: str, scores: str, group_by: str, exclude: str) -> None:
    """Check the folder is allowed, load it with a progress bar, make it the session's data."""
    try:
        source = shared.open_source(
            shared.allowed(path_text), scores.strip() or None, group_by.strip() or None, shared.globs(exclude)
        )
        bar = st.progress(0.0, text="Reading…")
        files = len(source.fingerprint)
        data = shared.load(
            source,
            shared.stop_when_gone(
                lambda done, total: bar.progress(
                    min(done / max(total, 1), 1.0),
                    text=f"Reading {files:,} files: {human_bytes(done)} of {human_bytes(total)}",
                )
            ),
        )
        bar.empty()
    except shared.SessionGone:
        st.stop()  # nobody is left to see the data: drop it
    except bucketing.BucketingError as error:
        st.error(shared.shown(error))
        return
    shared.use_source(source)
    st.session_state["scores_text"], st.session_state["group_text"] = scores, group_by
    st.session_state["exclude_text"] = exclude
    st.toast(f"Loaded {counted(len(data.rows), 'rollout', ',')}")


def load_uploads(uploads: list) -> None:
    """Copy the uploads into the session's upload folder (bounded), say which are not read, load the folder."""
    folder = shared.upload_dir()
    session = shared.this_session()
    try:
        ignored = save_uploads(uploads, folder, alive=lambda: shared.session_alive(session))
    except shared.SessionGone:
        st.stop()
    except bucketing.BucketingError as error:
        st.error(shared.shown(error))
        return
    if ignored:
        st.warning(f"Not loaded, as only {' and '.join(READ)} files are read: {literal(', '.join(ignored))}")
    load_folder(
        str(folder), st.session_state["scores_text"], st.session_state["group_text"], st.session_state["exclude_text"]
    )


def forget_folder() -> None:
    """Empty the Folder field before the page is drawn again: the data about to load is the uploaded files."""
    st.session_state["w_folder"] = ""


current = st.session_state["source"]
# Keyed, and seeded only when missing: a widget whose default changed between runs would lose what was typed.
if "w_folder" not in st.session_state:
    # (never the temporary folder of uploaded files)
    st.session_state["w_folder"] = (
        ("" if shared.is_upload(current.path) else str(current.path)) if current else shared.start_text()
    )
for key, saved in (("w_scores", "scores_text"), ("w_group", "group_text"), ("w_exclude", "exclude_text")):
    if key not in st.session_state:
        st.session_state[key] = st.session_state[saved]
with st.form("source_form"):
    left, middle, right = st.columns([3, 1, 1])
    path_text = left.text_input(
        "Folder",
        key="w_folder",
        help="A folder under the allowed roots: the folder the app was started in, "
        "the bundled sample, the folder given to `bucketing app`, or one listed in "
        "BUCKETING_ALLOWED_ROOTS.",
    )
    scores_text = middle.text_input(
        "Scores at",
        key="w_scores",
        placeholder="detected",
        help="e.g. reward[].score, rewards[], score; true/false count as 1/0 here",
    )
    group_text = right.text_input(
        "Group lines by",
        key="w_group",
        placeholder="detected",
        help="Fields whose equal values make lines one rollout (one prompt), across "
        "files: input for verl dumps, step,input per step. Empty, with scores "
        "given: one line = one rollout.",
    )
    exclude_text = st.text_area(
        "Leave out files",
        key="w_exclude",
        height=68,
        placeholder="drafts/*\n*.tmp.jsonl",
        help="Globs, one per line, matched against each file's path inside the folder "
        "(as `--exclude`): `*` matches any characters, `/` included, so "
        "`*.tmp.jsonl` leaves such files out at any depth; a glob that matches a "
        "folder (`drafts`) leaves out everything in it.",
    )
    if st.form_submit_button("Load", type="primary"):
        load_folder(path_text, scores_text, group_text, exclude_text)

with st.expander("Upload files instead"):
    uploads = st.file_uploader(
        "Rollout files", type=["jsonl", "gz"], accept_multiple_files=True, label_visibility="collapsed"
    )
    if uploads and st.button("Load the uploaded files", on_click=forget_folder):
        load_uploads(uploads)

data = shared.ensure_data()
if data is None:
    st.stop()

totals = data.totals
cols = st.columns(5)
cols[0].metric("Files", f"{totals['files']:,}")
cols[1].metric(
    "Rollouts",
    f"{totals['rollouts']:,}",
    help=f"grouped from {totals['rollout_lines']:,} lines" if data.layout.grouped else None,
)
cols[2].metric("Lines", f"{totals['lines']:,}")
cols[3].metric("Skipped", f"{totals['skipped']:,}")
cols[4].metric("Blank", f"{totals['blank']:,}")
layout = data.layout
how = "detected from the first lines" if data.detected else "as you set it"
st.markdown(
    f"**Layout** ({how}): {literal(layout.describe())} — as flags {literal(shlex.join(layout.flags()))}",
    help="Change it with Scores at / Group lines by above and Load again.",
)
for warning in data.warnings:
    st.warning(shared.shown(warning))

left, right = st.columns(2)
with left:
    st.subheader("Responses per rollout")
    st.plotly_chart(
        counts_figure(data.rows["n"].to_numpy(), "responses"), key="responses", config=download("responses-per-rollout")
    )
    if layout.grouped:
        st.caption(
            f"{totals['rollout_lines']:,} lines grouped into {totals['rollouts']:,} rollouts by "
            f"{literal(', '.join(layout.group_by))}: a rollout's responses are all its lines' scores."
        )
with right:
    st.subheader("Files")
    st.dataframe(
        pd.DataFrame(data.inputs()),
        hide_index=True,
        height=260,
        column_config={"bytes": st.column_config.NumberColumn("bytes", format="%d")},
    )
    if data.excluded:
        st.caption(f"{counted(len(data.excluded), 'file', ',')} left out by the globs under Leave out files:")
        st.dataframe(pd.DataFrame({"left out": data.excluded}), hide_index=True, key="excluded")

st.subheader("Skipped lines")
if data.skipped_files:
    st.warning(
        f"{counted(len(data.skipped_files), 'file', ',')} not JSONL: every line of them goes to "
        "`_skipped.jsonl` on export. Convert them, or leave them out above."
    )
    st.dataframe(pd.DataFrame(data.skipped_files)[["file", "detail", "lines"]], hide_index=True, key="skipped_files")
reasons = data.skipped_summary
if not reasons:
    st.success("No bad lines: every non-blank line has scores.")
else:
    st.warning(f"{counted(totals['skipped'], 'line', ',')} can't be used; they go to `_skipped.jsonl` on export.")
    st.dataframe(  # a row per example: several in one cell were cut off after the first
        pd.DataFrame(
            [
                {"reason": reason, "lines": info["count"], "example": example}
                for reason, info in reasons.items()
                for example in info["examples"] or [""]
            ]
        ),
        hide_index=True,
        column_config={"example": st.column_config.TextColumn("example", width="large")},
    )
