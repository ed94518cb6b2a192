"""The Buckets page keeps its word (issue 15): names survive added and removed thresholds, a refused rename
leaves the table, the caption fits the mode, every region of the chart has its label, and the engine's
warnings, ranges and notes are shown."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import bucketing
from bucketing.plan import plan_warnings
from bucketing.summary import histogram
from pages.common.charts import FRAME, drag_data, label_width
from pages.common.shared import carried_names, fresh_name

from .app_support import bucket_rows, drag, go, load_folder, plain
from .conftest import SAMPLE, rollout_line, write_lines

# --- names survive added and removed thresholds -------------------------------------------------


def rename(at, names: dict[int, str]):
    """What the names table sends when the user types ``names`` (row -> name) into it."""
    key = at.data_editor[0].key
    at.session_state[key] = {
        "edited_rows": {row: {"name": name} for row, name in names.items()},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception, at.exception
    return at


def rows(at) -> list[tuple[str, int, str]]:
    """(name, count, range) of every bucket, easiest first."""
    return [(r["name"], r["count"], r["range"]) for r in bucket_rows(at)]


def names(at) -> list[str]:
    return [r["name"] for r in bucket_rows(at)]


def button(at, label: str, index: int = 0):
    return [b for b in at.button if b.label == label][index]


def thresholds(at) -> list[float]:
    return list(at.session_state["thresholds"]["mean_reward"])


def by_thresholds_named(at, typed: list[str]):
    go(at, "buckets")
    at.radio(key="w_mode").set_value("thresholds").run()
    rename(at, dict(enumerate(typed)))
    assert names(at) == typed
    return at


def test_adding_a_threshold_keeps_every_name_and_names_only_the_new_bucket(app):
    by_thresholds_named(app, ["warmup", "core", "stretch"])
    before = {name: count for name, count, _ in rows(app)}
    cuts = thresholds(app)
    button(app, "Add threshold").click().run()
    after = rows(app)
    assert len(after) == 4 and names(app).count("bucket_0") == 1
    assert {"warmup", "core", "stretch"} <= set(names(app))
    new_cut = next(c for c in thresholds(app) if c not in cuts)
    # The bucket the new cut fell in is now two, side by side: the part with more rollouts kept its name.
    at = names(app).index("bucket_0")
    split = next(name for name, count in before.items() if count != dict((n, c) for n, c, _ in after)[name])
    neighbours = {after[i][0] for i in (at - 1, at + 1) if 0 <= i < len(after)}
    assert split in neighbours
    kept, new = (dict((n, c) for n, c, _ in after)[n] for n in (split, "bucket_0"))
    assert kept + new == before[split] and kept >= new
    assert all(count == dict((n, c) for n, c, _ in after)[name] for name, count in before.items() if name != split)
    assert any(f"{new_cut:g}" in r for _, _, r in after)


def test_removing_the_added_threshold_gives_back_the_names_and_sizes(app):
    by_thresholds_named(app, ["warmup", "core", "stretch"])
    before = rows(app)
    cuts = thresholds(app)
    button(app, "Add threshold").click().run()
    added = thresholds(app).index(next(c for c in thresholds(app) if c not in cuts))
    button(app, "Remove", added).click().run()
    assert thresholds(app) == cuts
    assert rows(app) == before


def test_removing_a_threshold_merges_two_buckets_under_the_larger_one_s_name(app):
    by_thresholds_named(app, ["warmup", "core", "stretch"])
    drag(app, [0.2, 0.5, 0.8], seq=11)  # a fourth bucket, by double-click
    assert len(names(app)) == 4
    rename(app, {3: "tail"})
    counts = {name: count for name, count, _ in rows(app)}
    order = names(app)  # mean_reward: easiest = highest values, so the cut 0.2 lies between the two hardest
    lower, upper = order[3], order[2]  # <= 0.2, and 0.2 < v <= 0.5
    button(app, "Remove", 0).click().run()
    assert thresholds(app) == [0.5, 0.8]
    larger = max((upper, lower), key=lambda n: (counts[n], n == upper))  # as many: the easier one's name
    assert names(app) == [order[0], order[1], larger]
    assert dict((n, c) for n, c, _ in rows(app))[larger] == counts[lower] + counts[upper]


def test_a_double_click_or_a_drag_in_count_mode_keeps_the_names_typed_there(app):
    go(app, "buckets")
    rename(app, {0: "warmup", 2: "stretch"})
    assert names(app) == ["warmup", "medium", "stretch"]
    plan_cuts = json.loads(app.get("bidi_component")[0].proto.json)["lines"]
    drag(app, [plan_cuts[0], plan_cuts[1] - 0.05], seq=21)  # a line moved: the same three buckets
    assert app.session_state["mode"] == "thresholds" and names(app) == ["warmup", "medium", "stretch"]
    drag(app, [plan_cuts[0], plan_cuts[1] - 0.05, 0.95], seq=22)  # a line added by double-click, in warmup
    assert names(app)[2:] == ["medium", "stretch"] and sorted(names(app)[:2]) == ["bucket_0", "warmup"]


def test_a_new_bucket_s_name_is_one_nobody_has(app):
    by_thresholds_named(app, ["bucket_0", "BUCKET_1", "bucket_3"])
    button(app, "Add threshold").click().run()
    assert sorted(names(app)) == sorted(["bucket_0", "BUCKET_1", "bucket_3", "bucket_2"])


def test_fresh_name_skips_names_in_use_ignoring_case():
    assert fresh_name([]) == "bucket_0"
    assert fresh_name(["easy", "Bucket_0", "bucket_2"]) == "bucket_1"
    assert fresh_name([f"bucket_{i}" for i in range(100)]) == "bucket_100"


def plan(metric: str, cuts: list[float], easiest_first: list[str]) -> bucketing.Plan:
    return bucketing.threshold_plan(metric, cuts).renamed(easiest_first)


@pytest.mark.parametrize("metric, keeper", [("mean_reward", "(0.35, inf)"), ("variance", "(0.25, 0.35]")])
def test_a_split_into_equal_parts_leaves_the_name_with_the_easier_part(metric, keeper):
    ordered = np.array([0.1, 0.2, 0.3, 0.4])
    old = plan(metric, [0.25], ["top", "bottom"] if metric == "mean_reward" else ["bottom", "top"])
    new = bucketing.threshold_plan(metric, [0.25, 0.35])
    named = dict(zip([(b.lower, b.upper) for b in new.buckets], carried_names(old, new, ordered)))
    key = {"(0.35, inf)": (0.35, None), "(0.25, 0.35]": (0.25, 0.35)}
    assert named[key[keeper]] == "top" and named[(None, 0.25)] == "bottom"
    assert "bucket_0" in named.values()


@pytest.mark.parametrize("metric", ["mean_reward", "variance"])
def test_a_split_leaves_the_name_with_the_larger_part_whichever_is_easier(metric):
    ordered = np.array([0.1, 0.2, 0.3, 0.4, 0.45])
    old = plan(metric, [0.25], ["top", "bottom"] if metric == "mean_reward" else ["bottom", "top"])
    new = bucketing.threshold_plan(metric, [0.25, 0.32])
    named = dict(zip([(b.lower, b.upper) for b in new.buckets], carried_names(old, new, ordered)))
    assert named == {(None, 0.25): "bottom", (0.25, 0.32): "bucket_0", (0.32, None): "top"}


@pytest.mark.parametrize("metric, merged", [("mean_reward", "b"), ("variance", "a")])
def test_a_merge_takes_the_larger_name_and_the_easier_on_equal_sizes(metric, merged):
    ordered = np.array([0.1, 0.3, 0.5, 0.6, 0.7])  # by interval of cuts 0.2, 0.4: 1, 1, 3
    names_by_interval = ["a", "b", "c"]
    old = bucketing.threshold_plan(metric, [0.2, 0.4], names_by_interval)
    new = bucketing.threshold_plan(metric, [0.4])  # a (1) and b (1) merge: equal, the easier wins
    named = dict(zip([(b.lower, b.upper) for b in new.buckets], carried_names(old, new, ordered)))
    assert named == {(None, 0.4): merged, (0.4, None): "c"}
    new = bucketing.threshold_plan(metric, [0.2])  # b (1) and c (3) merge: c is larger
    named = dict(zip([(b.lower, b.upper) for b in new.buckets], carried_names(old, new, ordered)))
    assert named == {(None, 0.2): "a", (0.2, None): "c"}


# --- a refused rename leaves the table ----------------------------------------------------------


def pending_edits(at) -> list:
    """Every edit the names tables still hold (a table's edits are shown over its data in the browser)."""
    held = []
    for key, value in at.session_state.items():
        if key.startswith("names_") and isinstance(value, dict):
            held += list((value.get("edited_rows") or {}).values())
    return held


@pytest.mark.parametrize("bad, message", [("../evil", "is not allowed"), ("WARMUP", "the same file name")])
def test_a_refused_rename_leaves_the_table_which_shows_the_names_in_force(app, bad, message):
    go(app, "buckets")
    rename(app, {0: "warmup"})
    first = app.data_editor[0].key
    rename(app, {0: "warmup", 1: bad})
    assert any(message in e.value and "the old names are kept" in e.value for e in app.error), app.error
    assert names(app) == ["warmup", "medium", "hard"]
    assert app.data_editor[0].key != first  # a new table: the browser drops what was typed into the old one
    assert {"name": bad} not in pending_edits(app)
    rename(app, {1: "core"})  # the new table takes edits as the old one did
    assert names(app) == ["warmup", "core", "hard"] and not app.error


# --- the caption says what the lines are --------------------------------------------------------


def chart_caption(at) -> str:
    return next(c.value for c in at.caption if "line" in c.value)


def test_the_caption_under_the_chart_matches_the_mode(app):
    go(app, "buckets")
    assert "cut points of equal-size buckets (as equal as ties kept together allow)" in chart_caption(app)
    app.radio(key="w_ties").set_value("split").run()
    assert "cut points of equal-size buckets;" in chart_caption(app)
    app.radio(key="w_mode").set_value("thresholds").run()
    assert chart_caption(app).startswith("Drag a red line to move a threshold, double-click the chart to add one")
    app.radio(key="w_mode").set_value("learnability").run()
    caption = chart_caption(app)
    assert caption.startswith("solved / learnable / unsolved by success rate at the pass threshold 0.5")
    assert "equal-size" not in caption
    go(app, "distributions")
    app.number_input(key="w_pass_threshold").set_value(1.0).run()
    go(app, "buckets")
    assert "at the pass threshold 1:" in chart_caption(app)


# --- every region has its label -----------------------------------------------------------------


def assert_every_region_labelled(data: dict, counts: dict[str, int]) -> None:
    """Each region's label is drawn inside it where it fits, else above the chart, never over another."""
    assert sorted(r["label"] for r in data["regions"]) == sorted(f"{n} ({c:,})" for n, c in counts.items())
    lo, hi = data["domain"]
    width = FRAME["width"] - FRAME["left"] - FRAME["right"]
    x = lambda v: FRAME["left"] + (min(hi, max(lo, v)) - lo) / (hi - lo) * width  # noqa: E731
    rows: dict[int, list[tuple[float, float]]] = {}
    for region in data["regions"]:
        w = label_width(region["label"])
        if region["inside"]:
            assert x(region["to"]) - x(region["from"]) >= w, region
        else:
            assert region["at"] - w / 2 >= 0 and region["at"] + w / 2 <= FRAME["width"], region
            assert 0 <= region["row"] < data["label_rows"], region
            rows.setdefault(region["row"], []).append((region["at"] - w / 2, region["at"] + w / 2))
    for spans in rows.values():
        spans.sort()
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), spans


def test_a_region_too_narrow_for_its_label_gets_it_above_the_chart():
    values = np.array([0.0] * 89 + list(np.linspace(0.05, 1.25, 151)))  # the sample's 'hard' region: 89 at 0
    ordered = np.sort(values)
    plan = bucketing.threshold_plan("mean_reward", [0.0, 0.73]).renamed(["easy", "medium", "hard"])
    table = bucketing.bucket_table(plan, ordered)
    data = drag_data(histogram(ordered), plan, table)
    by_label = {r["label"].split(" ")[0]: r for r in data["regions"]}
    assert by_label["hard"]["inside"] is False and data["label_rows"] == 1
    assert by_label["hard"]["at"] < 150  # near its region, at the left edge
    assert by_label["easy"]["inside"] and by_label["medium"]["inside"]
    assert_every_region_labelled(data, dict(zip(table["name"], table["count"])))


def test_many_narrow_regions_stack_their_labels_in_rows_without_overlap():
    ordered = np.sort(np.r_[np.linspace(0, 0.1, 50), np.linspace(0.9, 1, 50)])
    cuts = [0.01 * i for i in range(1, 10)] + [0.5]
    plan = bucketing.threshold_plan("mean_reward", cuts)
    table = bucketing.bucket_table(plan, ordered)
    data = drag_data(histogram(ordered), plan, table)
    assert data["label_rows"] > 1
    assert sum(not r["inside"] for r in data["regions"]) >= 9
    assert_every_region_labelled(data, dict(zip(table["name"], table["count"])))


def test_a_region_outside_the_data_is_labelled_too():
    ordered = np.linspace(0, 1, 40)
    plan = bucketing.threshold_plan("mean_reward", [0.5, 1.5])  # (1.5, inf) lies right of the chart
    table = bucketing.bucket_table(plan, ordered)
    data = drag_data(histogram(ordered), plan, table)
    assert_every_region_labelled(data, dict(zip(table["name"], table["count"])))
    assert any(not r["inside"] and r["label"].endswith("(0)") for r in data["regions"])


@pytest.mark.parametrize("mode", ["count", "learnability"])
def test_the_page_sends_a_label_for_every_bucket(app, mode):
    go(app, "buckets")
    app.radio(key="w_mode").set_value(mode).run()
    data = json.loads(app.get("bidi_component")[0].proto.json)
    counts = {r["name"]: r["count"] for r in bucket_rows(app)}
    assert_every_region_labelled(data, counts)
    assert not all(r["inside"] for r in data["regions"])  # the sample's ties at 0 (and 1) make narrow regions


# --- the engine's warnings, ranges and notes ----------------------------------------------------


def warnings_shown(at) -> list[str]:
    return [plain(w.value) for w in at.warning]


def test_all_equal_values_warn_and_say_why_the_end_buckets_are_empty(app, tmp_path):
    write_lines(tmp_path / "same" / "a.jsonl", [rollout_line([1, 1]) for _ in range(5)])
    load_folder(app, tmp_path / "same")
    go(app, "buckets")
    ordered = np.ones(5)
    plan = bucketing.percentile_plan(ordered, "mean_reward", 3)
    assert warnings_shown(app) == plan_warnings(plan, ordered) != []
    assert any(
        "only 1 distinct value for 3 buckets" in w and "easy and hard are empty" in w for w in warnings_shown(app)
    ), warnings_shown(app)
    rows = bucket_rows(app)
    assert [r["count"] for r in rows] == [0, 5, 0]  # a single value: the middle bucket
    assert [r["note"] for r in rows] == [
        "empty: only 1 distinct value for 3 buckets",
        "",
        "empty: only 1 distinct value for 3 buckets",
    ]
    assert [r["range"] for r in rows] == plan.ranges()


def test_a_value_holding_more_than_a_bucket_s_share_is_named(app):
    go(app, "buckets")
    app.slider(key="w_num_buckets").set_value(5).run()
    values = bucketing.load(SAMPLE).table()["mean_reward"].to_numpy()
    ordered = np.sort(values)
    expected = plan_warnings(bucketing.percentile_plan(values, "mean_reward", 5), ordered)
    assert warnings_shown(app) == expected
    assert any(
        w.startswith("89 of 240 rollouts (37%) have mean_reward = 0, more than one bucket's share")
        for w in warnings_shown(app)
    ), warnings_shown(app)
    assert "note" not in bucket_rows(app)[0]  # no bucket is empty: no note column


def test_the_range_column_is_true_for_split_ties(app):
    go(app, "buckets")
    app.selectbox(key="w_metric").set_value("variance").run()
    app.radio(key="w_ties").set_value("split").run()
    values = bucketing.load(SAMPLE).table()["variance"].to_numpy()
    plan = bucketing.percentile_plan(values, "variance", 3, ties="split")
    ranges = [r["range"] for r in bucket_rows(app)]
    assert ranges == plan.ranges()
    assert not any(re.search(r"(\S+) < variance <= \1(?:,|$)", r) for r in ranges), ranges  # never an empty interval
    assert any("tied" in r and "input order" in r for r in ranges), ranges


def test_an_empty_threshold_bucket_is_warned_once_with_its_note(app):
    go(app, "buckets")
    drag(app, [0.3, 1.5])
    shown = warnings_shown(app)
    empty = [w for w in shown if "is empty" in w]
    assert len(empty) == 1 and "no rollout has mean_reward > 1.5; move or remove a threshold" in empty[0], shown
    assert not any(w.startswith("Empty bucket") for w in shown)  # the page's own warning is gone
    notes = [r["note"] for r in bucket_rows(app)]
    assert notes == ["empty: no rollout has mean_reward > 1.5", "", ""]
