"""The Trends page (AppTest): steps of a run loaded on the Data page, the per-step charts, the prompts that changed
between two step ranges, a cell's rollouts, and the changes written to a folder."""

from __future__ import annotations

import json

import numpy as np

from bucketing.steps import GROUPS, changes, compare_runs, load_steps, trends
from examples.make_rollouts import make_run, run_chances

from .app_support import go, load_folder, plain


def markdown(at) -> str:
    return "\n".join(plain(m.value) for m in at.markdown)


def test_the_trends_page_shows_a_run_s_steps_and_what_changed(app, tmp_path):
    run = tmp_path / "run"
    make_run(run, prompts=90, steps=6, seed=1)
    load_folder(app, run)
    go(app, "trends")
    text = markdown(app)
    data = load_steps(run)
    assert "**6** steps (1–6, from file names)" in text and f"{data.prompts} prompts by input" in text
    assert len(app.get("plotly_chart")) == 3  # per-step heatmap, shares, changes matrix
    found = changes(data, (1, 2), (5, 6))  # the first and last thirds, by default
    counts = found.named()
    assert f"**{counts['learned']}** learned · **{counts['forgotten']}** forgotten" in text
    app.selectbox(key="w_trend_cell").set_value("learnable_to_solved").run()
    assert not app.exception, app.exception
    groups, ids = found.groups(data)
    in_cell = int((ids == GROUPS.index("learnable_to_solved")).sum())
    assert in_cell > 0 and f"{in_cell:,} rollouts" in markdown(app) + "\n".join(c.value for c in app.caption)


def test_the_step_window_and_metric_change_the_rows(app, tmp_path):
    run = tmp_path / "run"
    make_run(run, prompts=60, steps=6, seed=2)
    load_folder(app, run)
    go(app, "trends")
    app.number_input(key="w_step_window").set_value(3).run()
    assert not app.exception, app.exception
    rows = trends(load_steps(run), "success_rate", window=3)
    assert [row["steps"] for row in rows] == [[0, 2], [3, 5], [6, 8]]  # windows start at multiples of 3
    figure = json.loads(app.get("plotly_chart")[1].proto.spec)
    assert [trace["x"] for trace in figure["data"]][0] == [0, 3, 6]  # one point per window


def test_a_folder_without_steps_says_how_to_name_them(app):
    go(app, "trends")  # the bundled sample: rollouts_0.jsonl ...
    assert not app.exception
    assert any("no step in the file's name" in plain(i.value) and "--step-field" in plain(i.value) for i in app.info)


def test_the_changes_are_written_to_a_folder(app, tmp_path):
    run = tmp_path / "run"
    make_run(run, prompts=60, steps=6, seed=3)
    load_folder(app, run)
    go(app, "trends")
    app.text_input(key="w_trend_out").set_value(str(tmp_path / "changes")).run()
    app.button[-1].click().run()
    assert not app.exception, app.exception
    manifest = json.loads((tmp_path / "changes" / "manifest.json").read_text())
    data = load_steps(run)
    assert manifest["changes"]["counts"] == changes(data, (1, 2), (5, 6)).named()
    written = b"".join(sorted((tmp_path / "changes" / e["file"]).read_bytes() for e in manifest["files"]))
    lines = sorted(line for path in run.iterdir() for line in path.read_bytes().splitlines(keepends=True))
    assert sorted(written.splitlines(keepends=True)) == lines  # every line once, byte-exact
    assert np.sum([e["lines"] for e in manifest["files"]]) == len(lines)


def test_another_run_compared_lists_the_prompts_solved_clearly_less_often(app, tmp_path):
    make_run(tmp_path / "weaker", prompts=100, steps=3, seed=2)
    planted = np.flatnonzero(run_chances(100, 3).min(axis=1) > 0.95)[:3].tolist()
    make_run(tmp_path / "stronger", prompts=100, steps=3, seed=5, inverted=planted)
    load_folder(app, tmp_path / "stronger")
    go(app, "trends")
    app.text_input(key="w_other_run").set_value(str(tmp_path / "weaker")).run()
    assert not app.exception, app.exception
    found = compare_runs(load_steps(tmp_path / "stronger"), load_steps(tmp_path / "weaker"))
    assert f"**{len(found.inverted)}** solved clearly less often" in markdown(app)
    table = app.dataframe[-1].value
    assert list(table["first line"]) == [row["where"] for row in found.inverted] and len(found.inverted) >= 3
    app.text_input(key="w_trend_out").set_value(str(tmp_path / "out")).run()
    app.button[-1].click().run()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["runs_compared"]["inverted"] == found.inverted
    assert "inverted.jsonl" in [e["file"] for e in manifest["files"]]


def test_another_run_outside_the_allowed_folders_is_refused(app, tmp_path):
    make_run(tmp_path / "run", prompts=30, steps=3, seed=1)
    load_folder(app, tmp_path / "run")
    go(app, "trends")
    app.text_input(key="w_other_run").set_value("/etc").run()
    assert not app.exception
    assert any("/etc" in e.value and "allowed" in e.value.lower() for e in app.error), [e.value for e in app.error]


def test_the_steps_shown_narrow_the_charts(app, tmp_path):
    run = tmp_path / "run"
    make_run(run, prompts=60, steps=6, seed=5)
    load_folder(app, run)
    go(app, "trends")
    app.select_slider(key="w_trend_shown").set_range(2, 4).run()
    assert not app.exception, app.exception
    heat, shares = (json.loads(chart.proto.spec) for chart in app.get("plotly_chart")[:2])
    assert heat["data"][0]["x"] == [2, 3, 4]
    assert shares["data"][0]["x"] == [2, 3, 4]
    rows = {row["step"]: row for row in trends(load_steps(run), "success_rate")}
    assert shares["data"][0]["y"] == [rows[step]["shares"]["solved"] for step in (2, 3, 4)]  # solved drawn first
