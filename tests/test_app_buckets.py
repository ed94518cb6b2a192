"""The Buckets page keeps its word (issue 15): every region of the chart has its label."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bucketing
from bucketing.summary import histogram
from pages.common.charts import FRAME, drag_data, label_width

from .test_app import app, bucket_rows, go  # noqa: F401 (app is a fixture)


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
            assert 0 <= region["at"] - w / 2 and region["at"] + w / 2 <= FRAME["width"], region
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
    data = drag_data(histogram(ordered), ordered, plan, table)
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
    data = drag_data(histogram(ordered), ordered, plan, table)
    assert data["label_rows"] > 1
    assert sum(not r["inside"] for r in data["regions"]) >= 9
    assert_every_region_labelled(data, dict(zip(table["name"], table["count"])))


def test_a_region_outside_the_data_is_labelled_too():
    ordered = np.linspace(0, 1, 40)
    plan = bucketing.threshold_plan("mean_reward", [0.5, 1.5])  # (1.5, inf) lies right of the chart
    table = bucketing.bucket_table(plan, ordered)
    data = drag_data(histogram(ordered), ordered, plan, table)
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
