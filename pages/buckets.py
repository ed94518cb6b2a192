"""Buckets: choose a metric and a bucket count, or drag thresholds on its histogram; preview each bucket.

Two fragments: the buckets (settings, the chart, the table, the sizes) and the preview. A drag, or any setting, reruns
the first alone: its result is on screen before the preview, which the chart then asks for in a run of its own (see
pages.common.threshold_drag). The preview's own widgets rerun the preview alone.
"""

import numpy as np
import streamlit as st

import bucketing
from bucketing.metrics import METRICS
from bucketing.plan import bucket_table, check_names, plan_warnings
from pages.common import shared, view_url
from pages.common.charts import buckets_csv, drag_data, sizes_data
from pages.common.rollouts import browse
from pages.common.sizes_chart import sizes_chart
from pages.common.threshold_drag import threshold_drag

MODES = {"count": "By bucket count", "thresholds": "By thresholds", "learnability": "Learnability preset"}

data = shared.open_page(
    "Buckets",
    "Split the rollouts by one metric: equal-size buckets, or thresholds you drag on the histogram. "
    "Buckets are listed easiest first.",
)
s = st.session_state


def set_thresholds(values, metric: str, ordered: np.ndarray) -> None:
    """Store a new threshold list (sorted, distinct) and refresh the number inputs; the buckets that are
    still there keep their names (see shared.carried_names), except a preset's."""
    try:
        old = shared.current_plan(data)
    except bucketing.BucketingError:
        old = None
    s["thresholds"][metric] = sorted({float(v) for v in values})
    s["cuts_version"] += 1
    s["mode"] = "thresholds"
    s["metric_before_preset"] = None  # a drag away from the preset keeps its metric
    new_names_table()
    if old is None or old.preset or old.metric != metric:
        return
    try:
        new = bucketing.threshold_plan(metric, s["thresholds"][metric])
    except bucketing.BucketingError:
        return  # e.g. too many: the page says so
    s["names"][shared.names_key()] = shared.carried_names(old, new, ordered)


def typed_threshold(metric: str, index: int, ordered: np.ndarray) -> None:
    values = list(s["thresholds"][metric])
    typed = s[f"w_cut_{s['cuts_version']}_{index}"]
    if typed in values[:index] + values[index + 1 :]:
        st.toast(f"There is a threshold at {shared.number(typed)} already; the two became one.")
    values[index] = typed
    set_thresholds(values, metric, ordered)


def remove_threshold(metric: str, index: int, ordered: np.ndarray) -> None:
    set_thresholds([v for i, v in enumerate(s["thresholds"][metric]) if i != index], metric, ordered)


def add_threshold(metric: str, ordered: np.ndarray) -> None:
    """A new cut that halves the largest bucket that still has two different values."""
    cuts = s["thresholds"][metric]
    bounds = bucketing.threshold_plan(metric, cuts).edges(ordered)
    parts = [ordered[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a and ordered[a] != ordered[b - 1]]
    if not parts:
        st.toast("Every bucket holds a single value already: there is nothing left to split.")
        return
    part = max(parts, key=len)
    middle = part[len(part) // 2]
    new = middle if middle < part[-1] else part[part < part[-1]][-1]
    set_thresholds([*cuts, float(new)], metric, ordered)


def choose_mode() -> None:
    """The preset is a plan on success_rate; leaving it brings back the metric chosen before it."""
    before = s["mode"]
    shared.save("w_mode", "mode")
    if s["mode"] == "learnability" and before != "learnability":
        s["metric_before_preset"], s["metric"] = s["metric"], "success_rate"
    elif before == "learnability" and s["mode"] != "learnability":
        s["metric"], s["metric_before_preset"] = s["metric_before_preset"] or s["metric"], None


def names_editor_key() -> str:
    """The names table's key. It changes (a new table, with no edit pending, showing the names in force)
    when a rename is refused and when the thresholds change (the rows may be other buckets then)."""
    metric, mode, count = shared.names_key()
    version = s["names_table"]
    return f"names_{metric}_{mode}_{count}" + (f"_{version}" if version else "")


def new_names_table() -> None:
    s["names_table"] += 1


def apply_pending_edits(data: bucketing.Dataset) -> None:
    """Take in what the browser sent since the last run: a dragged threshold, names typed in the table.

    Both arrive as widget state before this run starts, so handling them first lets every widget
    below be drawn from the new state in this same run.
    """
    drag = s.get("threshold_drag") or {}
    sent = drag.get("thresholds") if hasattr(drag, "get") else None
    if sent and sent.get("seq") != s["drag_seq"]:
        s["drag_seq"] = sent["seq"]
        set_thresholds(sent["values"], s["metric"], shared.column(data, s["metric"])[1])
    edits = (s.get(names_editor_key()) or {}).get("edited_rows") or {}
    if not edits:
        return
    try:
        names = shared.current_plan(data).names
    except bucketing.BucketingError:
        return
    for row, change in edits.items():
        if "name" in change and 0 <= int(row) < len(names):
            names[int(row)] = str(change["name"] or "").strip()
    try:
        check_names(names)
    except bucketing.BucketingError as error:
        st.error(f"{shared.shown(error)}; the old names are kept.")
        new_names_table()  # the table drops the refused name: it shows the names in force
        return
    s["names"][shared.names_key()] = names


@st.fragment(key="buckets")
def editor() -> None:
    apply_pending_edits(data)
    top = st.columns(2) + st.columns([3, 1, 2])  # two rows: at 1024 px wide the metric's name fits whole
    shared.bind("w_mode", "mode")
    top[1].radio(
        "Buckets",
        list(MODES),
        format_func=MODES.get,
        key="w_mode",
        horizontal=True,
        on_change=choose_mode,
        help="Learnability: solved (every response passes), learnable (some "
        "do), unsolved (none do), by success rate at the pass threshold — the filter RL trainers use.",
    )
    top[0].selectbox(
        "Metric",
        list(METRICS),
        format_func=shared.metric_label,
        disabled=s["mode"] == "learnability",
        **shared.bound("metric"),
    )
    metric = s["metric"]
    _, ordered = shared.column(data, metric)
    if s["mode"] == "count":
        top[2].slider("How many", 2, 10, **shared.bound("num_buckets"))
        top[3].radio(
            "Ties",
            ["keep", "split"],
            help="keep: equal values share a bucket. split: exactly equal sizes.",
            **shared.bound("ties"),
        )
    elif s["mode"] == "learnability":
        top[2].markdown(f"Pass threshold **{shared.number(s['pass_threshold'])}** (set on Distributions)")
    elif not s["thresholds"].get(metric):  # start from the count mode's cut points
        s["thresholds"][metric] = sorted(set(shared.count_plan(data, metric, s["num_buckets"]).cuts))

    try:
        plan = shared.current_plan(data)
    except bucketing.BucketingError as error:
        st.error(shared.shown(error))
        if s["preview_plan"] is not None and not shared.full_run():
            st.rerun()  # the preview of the last good plan would stay: the whole page, without it
        return
    buckets = bucket_table(plan, ordered)
    view_url.publish()  # a drag reruns only this fragment, not app.py, which publishes after a whole run

    st.caption(chart_caption(plan))
    drawn = shared.plan_key(plan)
    threshold_drag(
        key="threshold_drag",
        lines=list(plan.cuts),
        plan_key=drawn,
        preview_key=drawn if shared.full_run() else s["preview_plan"],  # a whole run draws the preview next
        on_drawn=lambda: st.rerun("preview"),  # the preview alone, not this fragment again
        **drag_data(shared.bars(data, metric), plan, buckets),
    )

    if s["mode"] == "thresholds":
        threshold_inputs(metric, ordered)
    explain(plan, ordered)

    # The table on a row of its own, as wide as its columns (beside the sizes chart they were cut off at 1024 px).
    shown = buckets.assign(range=plan.ranges())
    columns = ["name", "range", "count", "share", "min", "max", "difficulty_rank"]
    columns += ["note"] if buckets["note"].any() else []  # why a bucket is empty
    st.data_editor(
        shown[columns],
        key=names_editor_key(),
        width="content",
        hide_index=True,
        disabled=columns[1:],
        column_config={
            "name": st.column_config.TextColumn("name ✎", help="Click to rename; names become file names"),
            "share": st.column_config.NumberColumn(format="percent"),
            "min": st.column_config.NumberColumn(format="%.4g"),
            "max": st.column_config.NumberColumn(format="%.4g"),
            "difficulty_rank": st.column_config.NumberColumn("rank", help="0 = easiest"),
        },
    )
    sizes_chart(key="sizes", **sizes_data(buckets, plan.metric))
    st.download_button(
        "Download the table (CSV)",
        data=buckets_csv(shown[columns]),
        file_name=f"{plan.metric}-buckets.csv",
        mime="text/csv",
        on_click="ignore",
    )


def chart_caption(plan: bucketing.Plan) -> str:
    """What the lines on the chart are, in the page's mode."""
    if plan.preset == "learnability":
        return (
            f"solved / learnable / unsolved by success rate at the pass threshold "
            f"{shared.number(plan.params.pass_threshold)}: every response passes / some do / none does. The "
            "lines are at 0 and just below 1; drag one (or double-click) to set thresholds yourself."
        )
    if plan.mode == "thresholds":
        return "Drag a red line to move a threshold, double-click the chart to add one."
    kept = " (as equal as ties kept together allow)" if plan.ties == "keep" else ""
    return (
        f"The lines are the cut points of equal-size buckets{kept}; drag one (or double-click) to set thresholds "
        "yourself."
    )


def threshold_inputs(metric: str, ordered: np.ndarray) -> None:
    cuts = s["thresholds"][metric]
    version = s["cuts_version"]
    columns = st.columns(min(len(cuts), 5) + 1)
    for i, cut in enumerate(cuts):
        with columns[i % 5]:
            key = f"w_cut_{version}_{i}"
            if key not in s:
                s[key] = float(cut)
            st.number_input(
                f"Threshold {i + 1}",
                key=key,
                format="%.6g",
                step=None,
                on_change=typed_threshold,
                args=(metric, i, ordered),
            )
            st.button(
                "Remove",
                key=f"rm_{version}_{i}",
                on_click=remove_threshold,
                args=(metric, i, ordered),
                disabled=len(cuts) == 1,
            )
    columns[-1].button("Add threshold", icon=":material/add:", on_click=add_threshold, args=(metric, ordered))


def explain(plan: bucketing.Plan, ordered: np.ndarray) -> None:
    """Say plainly when the plan does something surprising: the engine's warnings, and thresholds off the data."""
    outside = [c for c in plan.cuts if c < ordered[0] or c >= ordered[-1]]
    if ordered[0] == ordered[-1]:
        st.info(f"Every rollout has the same {plan.metric} ({shared.number(ordered[0])}): one bucket takes everything.")
    elif plan.mode == "thresholds" and outside:
        st.warning(
            f"Threshold {', '.join(shared.number(c) for c in outside)} lies outside the data "
            f"({shared.number(ordered[0])} … {shared.number(ordered[-1])})."
        )
    for warning in plan_warnings(plan, ordered):  # few distinct values, a big tie, an empty bucket: with a way out
        st.warning(shared.shown(warning))


@st.fragment(key="preview")
def preview() -> None:
    """The preview of the plan the chart shows (none while the settings make no plan)."""
    try:
        plan = shared.current_plan(data)
    except bucketing.BucketingError:
        s["preview_plan"] = None
        return  # the buckets fragment says why
    s["preview_plan"] = shared.plan_key(plan)
    preview_section(plan, shared.column(data, plan.metric)[0])


def preview_section(plan: bucketing.Plan, values: np.ndarray) -> None:
    st.subheader("Preview")
    left, right = st.columns([2, 1])
    name = left.selectbox("Bucket", plan.names, key="preview_bucket")
    full = right.toggle("Show full texts", key="preview_full")
    ids = shared.assigned(data, plan)
    members = np.flatnonzero(ids == plan.names.index(name))
    browse(
        data,
        members,
        {plan.metric: values},
        plan.metric,
        f"bucket {name}",
        "all buckets",
        full,
        label=lambda row: plan.names[ids[row]] if s["preview_all"] else "",
    )


editor()
preview()
