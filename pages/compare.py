"""Compare: two metrics side by side — where their buckets agree, where they don't, and what is in between."""

import numpy as np
import streamlit as st

import bucketing
from bucketing.metrics import METRICS
from bucketing.wording import counted
from pages.common import shared
from pages.common.charts import cells_figure, density_figure, download
from pages.common.rollouts import browse

data = shared.open_page(
    "Compare",
    "How two metrics bucket the same rollouts: how many are `easy` by one and `hard` by the other. "
    "Click a cell to see its rollouts.",
)
s = st.session_state
names = list(METRICS)
if s["compare_count"] is None:
    s["compare_count"] = s["num_buckets"]

top = st.columns([2, 2, 1])
metric_a = top[0].selectbox("Rows", names, format_func=shared.metric_label, **shared.bound("compare_a"))
metric_b = top[1].selectbox("Columns", names, format_func=shared.metric_label, **shared.bound("compare_b"))
count = top[2].slider("Buckets each", 2, 10, **shared.bound("compare_count"))

values_a, _ = shared.column(data, metric_a)
values_b, _ = shared.column(data, metric_b)
try:
    plan_a, plan_b = shared.count_plan(data, metric_a, count), shared.count_plan(data, metric_b, count)
except bucketing.BucketingError as error:
    st.error(shared.shown(error))
    st.stop()
crossed = shared.comparison(data, metric_a, metric_b, count)
cells = crossed.cells
st.markdown(
    f"Equal-size buckets of each metric ({s['ties']} ties). **{crossed.agreement:.0%}** of the rollouts get "
    f"the same difficulty rank from both; rank correlation of the values **{crossed.rank_correlation:.2f}**."
)

left, right = st.columns(2)
with left:
    st.subheader("Buckets by both")
    figure = cells_figure(cells, plan_a.names, plan_b.names, metric_a, metric_b)
    event = st.plotly_chart(
        figure,
        key="compare_cells",
        on_select="rerun",
        selection_mode="points",
        config=download(f"{metric_a}-by-{metric_b}-buckets"),
    )
with right:
    st.subheader("Values by both")
    heat = density_figure(crossed, metric_a, metric_b)
    st.plotly_chart(heat, key="compare_density", config=download(f"{metric_a}-by-{metric_b}-values"))

# A click on a cell chooses it below (only a new click: the chart keeps reporting the last one).
points = (event.selection.points if event and event.selection else []) or []
clicked = (metric_a, metric_b, count, int(points[0]["point_index"])) if points else None
if clicked and clicked != s["compare_clicked"]:
    s["compare_clicked"] = clicked
    row_index, col_index = divmod(clicked[-1], count)  # cells are drawn row by row
    s["w_compare_row"], s["w_compare_col"] = plan_a.names[row_index], plan_b.names[col_index]
if s.get("w_compare_row") not in plan_a.names or s.get("w_compare_col") not in plan_b.names:
    s["w_compare_row"], s["w_compare_col"] = plan_a.names[0], plan_b.names[-1]  # the most surprising corner

st.subheader("Rollouts in a cell")
pick = st.columns([2, 2, 1])
row = pick[0].selectbox(f"{metric_a} bucket", plan_a.names, key="w_compare_row")
col = pick[1].selectbox(f"{metric_b} bucket", plan_b.names, key="w_compare_col")
full = pick[2].toggle("Show full texts", key="compare_full")
row_index, col_index = plan_a.names.index(row), plan_b.names.index(col)
inside = (crossed.ids_a == row_index) & (crossed.ids_b == col_index)
in_cell = int(cells[row_index, col_index])
st.caption(
    f"{counted(in_cell, 'rollout', ',', ('is', 'are'))} `{row}` by {metric_a} and `{col}` by {metric_b}."
)  # (bucket names are plain names: letters, digits, ".", "_", "-")
browse(
    data,
    np.flatnonzero(inside),
    {metric_a: values_a, metric_b: values_b},
    metric_a,
    f"the cell {row} × {col}",
    "all rollouts",
    full,
)
