"""What a new user tripped on (issue 19), through AppTest: after an upload the Folder field stops naming the
folder loaded before, and the Export page's command says the data came from an upload."""

from __future__ import annotations

import csv
import io
import json
import math
import shlex

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import bucketing
from bucketing.plan import bucket_table
from bucketing.summary import histogram
from pages.common.charts import DARK_TEXT, LIGHT_TEXT, buckets_csv, contrast, drag_data, nice_ticks, readable_text

from .app_support import bucket_rows, go, load_folder
from .conftest import SAMPLE, rollout_line, write_lines


def upload_and_load(at, files: list[tuple[str, bytes]]):
    go(at, "data")
    at.file_uploader[0].set_value([(name, body, "application/octet-stream") for name, body in files]).run()
    next(b for b in at.button if b.label == "Load the uploaded files").click().run()
    assert not at.exception, at.exception
    return at


def test_after_an_upload_the_folder_field_no_longer_names_the_folder_loaded_before(app):
    assert app.text_input(key="w_folder").value.endswith("examples/rollouts")
    upload_and_load(app, [("a.jsonl", b"".join(rollout_line([i % 2, 1]) + b"\n" for i in range(6)))])
    assert app.text_input(key="w_folder").value == ""
    assert next(m.value for m in app.metric if m.label == "Rollouts") == "6"


def test_an_export_of_uploaded_files_shows_a_command_for_the_user_s_own_folder(app, tmp_path):
    upload_and_load(app, [("a.jsonl", b"".join(rollout_line([i % 2, 1]) + b"\n" for i in range(6)))])
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    next(b for b in app.button if b.label == "Export").click().run()
    assert not app.exception and any("Wrote 6 rollouts" in s.value for s in app.success)
    command = shlex.split(app.code[0].value)
    assert command[command.index("-i") + 1] == "YOUR_FOLDER"
    assert str(app.session_state["upload_dir"]) not in app.code[0].value
    assert any("uploaded files" in c.value and "YOUR_FOLDER" in c.value for c in app.caption)


# --- charts readable in both themes -----------------------------------------------------------------------------


def plotly_specs(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def sizes_chart(at) -> dict:
    """What the Buckets page's sizes chart (an SVG component, pages.common.sizes_chart) was sent."""
    drawn = [json.loads(chart.proto.json) for chart in at.get("bidi_component")]
    return next(data for data in drawn if data.get("file_name", "").endswith("-bucket-sizes"))


@pytest.mark.parametrize("count", [2, 5, 10])
def test_every_count_in_the_compare_matrix_contrasts_with_its_square(app, count):
    go(app, "compare")
    app.slider[0].set_value(count).run()
    spec = next(spec for spec in plotly_specs(app) if spec["data"][0]["type"] == "scatter")
    fills = [shape["fillcolor"] for shape in spec["layout"]["shapes"]]  # one square per cell, in point order
    texts = spec["data"][0]["textfont"]["color"]
    assert len(fills) == len(texts) == count * count and len(set(fills)) > 1
    worst = min(contrast(fill, text) for fill, text in zip(fills, texts))
    assert worst >= 4.5, worst  # WCAG AA for text, on the square's own colour (the same in light and dark)


def test_contrast_is_the_wcag_ratio():
    assert contrast("#ffffff", "#000000") == pytest.approx(21)
    assert contrast("rgb(119, 119, 119)", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert readable_text(["#08306b", "rgb(247, 251, 255)"]) == [LIGHT_TEXT, DARK_TEXT]


def test_count_axes_tick_only_whole_numbers(app, tmp_path):
    """Three rollouts of 2, 3 and 4 responses: no tick at 3.5 responses or 0.5 rollouts."""
    write_lines(tmp_path / "few" / "a.jsonl", [rollout_line([1] * n) for n in (2, 3, 4)])
    load_folder(app, tmp_path / "few")
    responses = next(
        spec for spec in plotly_specs(app) if spec["layout"]["xaxis"].get("title", {}).get("text") == "responses"
    )
    for axis in (responses["layout"]["xaxis"], responses["layout"]["yaxis"]):
        assert axis["tickformat"] == ",d" and axis["dtick"] == 1
    go(app, "buckets")
    ticks = sizes_chart(app)["ticks"]
    assert [t["at"] for t in ticks] == [0, 1, 2, 3] and [t["label"] for t in ticks] == ["0", "1", "2", "3"]


def test_each_skipped_line_example_has_a_row_of_its_own(app, tmp_path):
    write_lines(tmp_path / "bad" / "a.jsonl", [rollout_line([1]), b"{oops", b"{oops", b'{"reward": []}'])
    load_folder(app, tmp_path / "bad")
    table = app.dataframe[-1].value
    assert list(zip(table["reason"], table["example"].str.split(":").str[:2].str.join(":"))) == [
        ("invalid JSON", "a.jsonl:2"),
        ("invalid JSON", "a.jsonl:3"),
        ("empty scores", "a.jsonl:4"),
    ]


# --- the threshold chart: round ticks, the metric named under the axis ------------------------------------------


@given(
    lo=st.floats(-1e6, 1e6, allow_nan=False),
    span=st.floats(1e-6, 1e6, allow_nan=False),
)
def test_ticks_are_round_evenly_spaced_and_inside_the_range(lo, span):
    assume(span > abs(lo) * 1e-8)  # narrower than that, a float can't tell the ticks apart
    hi = lo + span
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 11 and all(lo - span * 1e-9 <= t <= hi + span * 1e-9 for t in ticks)
    step = float(f"{ticks[1] - ticks[0]:.6g}")
    assert all(math.isclose(b - a, step, rel_tol=1e-6) for a, b in zip(ticks, ticks[1:])), ticks
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5)), (ticks, mantissa)
    assert all(math.isclose(t / step, round(t / step), abs_tol=1e-6) for t in ticks)  # multiples of the step


def test_the_threshold_chart_names_its_metric_and_direction():
    data = bucketing.load(SAMPLE)
    values = np.sort(data.values("variance"))
    plan = bucketing.percentile_plan(values, "variance", 3)
    drawn = drag_data(histogram(values), plan, bucket_table(plan, values))
    assert drawn["axis_title"] == "variance (higher = harder)"
    assert [t["at"] for t in drawn["ticks"]] == nice_ticks(*drawn["domain"]) and not drawn["log"]


# --- a log axis where the values span orders of magnitude -------------------------------------------------------


def test_positive_values_spanning_orders_of_magnitude_get_bins_of_equal_ratio():
    values = np.sort(np.random.default_rng(1).lognormal(0, 4, 5000))
    bars = histogram(values)
    assert bars.log and not bars.exact and bars.counts.sum() == len(values)
    ratios = bars.right / bars.left
    assert np.allclose(ratios, ratios[0]) and bars.left[0] == values[0] and bars.right[-1] == values[-1]
    for linear in (np.linspace(1, 999, 500), np.linspace(0, 1e6, 500), np.linspace(-1e6, -1, 500)):
        assert not histogram(linear).log  # under 1000 times; or not all positive


def test_inverse_mean_is_drawn_on_a_log_axis_and_the_page_says_so(app):
    go(app, "distributions")
    spec = next(
        s for s in plotly_specs(app) if s["layout"].get("xaxis", {}).get("title", {}).get("text") == "log scale"
    )
    labels = spec["layout"]["xaxis"]["ticktext"]
    assert labels[0] == "1" and labels[-1] == "1e6", labels  # 0.8 .. 1e6 in the sample
    assert spec["layout"]["xaxis"]["tickvals"] == list(range(len(labels)))
    assert sum("log scale: the values span 6 orders of magnitude" in c.value for c in app.caption) == 1


def test_the_threshold_chart_of_a_wide_metric_is_in_log_units():
    values = np.sort(bucketing.load(SAMPLE).values("inverse_mean"))
    plan = bucketing.threshold_plan("inverse_mean", [10, 1000])
    drawn = drag_data(histogram(values), plan, bucket_table(plan, values))
    assert drawn["log"] and drawn["axis_title"].endswith(", log scale")
    cuts = sorted({r["from"] for r in drawn["regions"]} | {r["to"] for r in drawn["regions"]})
    assert np.allclose(cuts[1:-1], [1, 3])  # log10 of the thresholds; the ends are the domain's
    assert [t["label"] for t in drawn["ticks"]] == ["1", "10", "100", "1000", "1e4", "1e5", "1e6"]


# --- downloads: every chart as an image, the bucket table as CSV ------------------------------------------------


def test_every_plotly_chart_downloads_as_a_named_png(app):
    names = set()
    for page in ("data", "distributions", "buckets", "compare"):
        go(app, page)
        for chart in app.get("plotly_chart"):
            config = json.loads(chart.proto.config)
            options = config["toImageButtonOptions"]
            assert options["format"] == "png" and options["scale"] == 2 and not config["displaylogo"]
            names.add(options["filename"])
    assert {"responses-per-rollout", "mean_reward-histogram"} <= names
    go(app, "buckets")
    assert sizes_chart(app)["file_name"] == "mean_reward-bucket-sizes"  # its own SVG / PNG buttons (test_browser_drag)
    assert {"mean_reward-by-variance-buckets", "mean_reward-by-variance-values"} <= names


def test_the_bucket_table_downloads_as_the_csv_of_what_is_shown(app):
    go(app, "buckets")
    assert any(b.proto.label == "Download the table (CSV)" for b in app.get("download_button"))
    table = bucket_rows(app)
    rows = list(csv.DictReader(io.StringIO(buckets_csv(pd.DataFrame(table)))))
    assert [r["name"] for r in rows] == [t["name"] for t in table]
    assert [int(r["count"]) for r in rows] == [t["count"] for t in table]
    assert [float(r["max"]) for r in rows] == [t["max"] for t in table]  # full precision, not the shown 4 digits
