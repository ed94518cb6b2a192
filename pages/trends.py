"""Trends: difficulty over a training run's steps — the metric per step, the learnability shares, the prompts
learned and forgotten between two step ranges (previewed and exported)."""

from dataclasses import replace

import numpy as np
import streamlit as st

import bucketing
from bucketing.metrics import METRICS
from bucketing.sources import display
from bucketing.steps import CLASSES, GROUPS
from bucketing.wording import counted
from bucketing.writer import write_groups
from pages.common import shared
from pages.common.charts import cells_figure, download
from pages.common.rollouts import browse
from pages.common.text import literal
from pages.common.trend_charts import shares_figure, step_heatmap


def step_range(where, label: str, state_key: str, steps: list[int], default: tuple[int, int]) -> tuple[int, int]:
    """A range slider over the run's steps, kept in ``state_key``; ``default`` for a run it doesn't fit.

    ``value=`` makes it a range (a slider's range comes from its value, not from the state)."""
    s, widget_key = st.session_state, f"w_{state_key}"
    if s[state_key] is None or not set(s[state_key]) <= set(steps):  # a new run
        s[state_key] = default
        s.pop(widget_key, None)
    value = where.select_slider(
        label, steps, value=s[state_key], key=widget_key, on_change=shared.save, args=(widget_key, state_key)
    )
    return value[0], value[1]


def _start(row: dict) -> int:
    return row["step"] if "step" in row else row["steps"][0]


shared.page_header(
    "Trends",
    "How difficulty moves while the model trains: one rollout per prompt and step, the step from each file's "
    "name (12.jsonl, train_data_step12.jsonl, completions_00012.parquet) or from a field.",
)
if shared.ensure_data() is None:
    st.stop()
s = st.session_state

top = st.columns([2, 2, 1])
top[0].text_input(
    "Step field", placeholder="empty: the step in each file's name", max_chars=300, **shared.bound("step_field")
)
metric = top[1].selectbox("Metric", list(METRICS), format_func=shared.metric_label, **shared.bound("trend_metric"))
window = int(top[2].number_input("Steps per row", min_value=1, max_value=1_000_000, **shared.bound("step_window")))
try:
    run = shared.step_data(s["source"], s["step_field"])
except bucketing.BucketingError as error:
    st.info(f"No steps here: {shared.shown(error)}")
    st.stop()
params = shared.params()
steps = run.steps().tolist()
st.markdown(
    f"**{len(steps)}** steps ({steps[0]}–{steps[-1]}, from {literal(run.step_source)}) · "
    f"{counted(run.prompts, 'prompt')} by {literal(', '.join(run.prompt_fields))} · "
    f"{counted(len(run.step), 'rollout')} (a prompt at one step)"
)
if len(steps) < 2:
    st.info("One step only: nothing moves yet. A run's folder holds one file per step.")
    st.stop()

first, last = step_range(st, "Steps shown", "trend_shown", steps, (steps[0], steps[-1]))
every_row, bins = shared.step_trends(s["source"], s["step_field"], metric, window)
rows = [row for row in every_row if first <= _start(row) + window - 1 and _start(row) <= last]
shown = (bins.steps + window - 1 >= first) & (bins.steps <= last)
left, right = st.columns(2)
with left:
    st.subheader(f"{metric} per step")
    figure = step_heatmap(replace(bins, steps=bins.steps[shown], counts=bins.counts[shown]), metric)
    st.plotly_chart(figure, config=download(f"{metric}-by-step"))
with right:
    st.subheader("Solved, learnable, unsolved")
    st.plotly_chart(shares_figure(rows), config=download("learnability-by-step"))
    st.caption(f"At pass threshold {params.pass_threshold:g}: solved = every response passes, unsolved = none.")

st.subheader("Prompts that changed")
third = max(1, len(steps) // 3)
pick = st.columns(2)
before = step_range(pick[0], "From steps", "trend_from", steps, (steps[0], steps[third - 1]))
after = step_range(pick[1], "To steps", "trend_to", steps, (steps[-third], steps[-1]))
try:
    found = shared.step_changes(s["source"], s["step_field"], before, after)
except bucketing.BucketingError as error:
    st.warning(shared.shown(error))
    st.stop()
counts = found.named()
st.markdown(
    f"**{counts['learned']}** learned · **{counts['forgotten']}** forgotten · {counts['still_unsolved']} still "
    f"unsolved · {counts['always_solved']} always solved · of {counted(int(found.matrix.sum()), 'prompt')} "
    "seen in both ranges. Click a cell to see its rollouts."
)
event = st.plotly_chart(
    cells_figure(found.matrix, list(CLASSES), list(CLASSES), "from", "to"),
    key="trend_cells",
    on_select="rerun",
    selection_mode="points",
    config=download("learnability-changes"),
)
points = (event.selection.points if event and event.selection else []) or []
clicked = (tuple(before), tuple(after), int(points[0]["point_index"])) if points else None
if clicked and clicked != s["trend_clicked"]:
    s["trend_clicked"] = clicked
    s["w_trend_cell"] = GROUPS[clicked[-1]]  # cells are drawn row by row, as GROUPS lists them
groups, ids = found.groups(run)
cell = st.selectbox("Rollouts of", groups, key="w_trend_cell")
members = np.flatnonzero(ids == groups.index(cell))
values = run.dataset.values(metric, params)
browse(run.dataset, members, {metric: values}, metric, f"`{cell}`", "all rollouts", False)

st.subheader("Another run")
st.caption(
    "The same prompts in another run (another model, a later evaluation), joined by their key: the first "
    "(this) run's class against the other's over all their steps, and the prompts this run solves clearly less "
    "often (95 % intervals apart) — a stronger model failing what a weaker one solves: often a wrong answer key."
)
other_folder = st.text_input("Other run's folder", max_chars=4096, **shared.bound("other_run"))
compared = None
if other_folder:
    try:
        other_source = shared.open_source(shared.allowed(other_folder), s["source"].scores)
        other = shared.step_data(other_source, s["step_field"])
        compared = shared.runs_compared(s["source"], other_source, s["step_field"])
    except bucketing.BucketingError as error:
        st.error(shared.shown(error))
if compared is not None:
    st.markdown(
        f"{counted(compared.shared, 'prompt')} in both runs · **{len(compared.inverted)}** solved clearly less "
        "often here than there"
    )
    left, right = st.columns(2)
    left.plotly_chart(
        cells_figure(compared.matrix, list(CLASSES), list(CLASSES), "this run", "other run"),
        key="runs_cells",
        config=download("learnability-two-runs"),
    )
    right.dataframe(
        [
            {
                "first line": row["where"],
                "passed here": f"{row['reference']['passed']}/{row['reference']['responses']}",
                "passed there": f"{row['other']['passed']}/{row['other']['responses']}",
            }
            for row in compared.inverted
        ],
        hide_index=True,
    )

st.subheader("Export the changes")
st.caption(
    "Each cell's rollouts to a file of its own (unsolved_to_solved.jsonl: the prompts learned), unpaired.jsonl, "
    "outside.jsonl and a manifest — every line byte-exact, as `bucketing changes -o` writes. With another run: "
    "this run's rollouts by the cell across runs, inverted.jsonl for the prompts solved clearly less often."
)
where = st.columns([3, 1])
folder = where[0].text_input("Folder", max_chars=4096, **shared.bound("trend_out"))
overwrite = where[1].checkbox("Replace files there", key="trend_overwrite")
if st.button("Write", type="primary"):
    try:
        out = shared.allowed(folder)
        if compared is None:
            record = {"changes": {"from": list(before), "to": list(after), "counts": counts}}
        else:
            groups, ids = compared.groups(run)
            record = {"runs_compared": {"other": str(other.dataset.root), "inverted": compared.inverted}}
        record["pass_threshold"] = params.pass_threshold
        others = () if compared is None else (other.dataset,)  # the output stays out of both runs' files
        manifest = write_groups(
            run.dataset, groups, ids, out, record, overwrite=overwrite, roots=shared.roots(), others=others
        )
    except (bucketing.BucketingError, OSError) as error:
        st.error(shared.shown(error))
    else:
        st.success(f"Wrote {counted(len(manifest['files']), 'file')} and manifest.json to {literal(display(out))}.")
