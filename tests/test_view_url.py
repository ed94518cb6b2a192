"""A shareable view (issue 19): the page's state in the URL's query parameters; a copied link opens the same view,
and a link is checked as typed input is."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from bucketing.roots import ENV

from .app_support import APP, bucket_rows, drag, go, plain
from .conftest import ROOT, SAMPLE, rollout_line, write_lines


def opened_with(monkeypatch, params: dict[str, str], *roots) -> AppTest:
    """A new session (a browser opening the link) with these query parameters."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(ENV, ":".join(str(root) for root in roots))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception, at.exception
    return at


def warnings(at) -> list[str]:
    return [plain(w.value) for w in at.warning] + [plain(e.value) for e in at.error]


def test_a_copied_link_opens_the_same_data_metric_thresholds_and_names(app, monkeypatch, tmp_path):
    write_lines(tmp_path / "data" / "a.jsonl", [rollout_line([i % 3 / 2, (i % 5) / 4]) for i in range(40)])
    go(app, "data")
    app.text_input(key="w_folder").set_value(str(tmp_path / "data"))
    app.button[0].click().run()
    go(app, "buckets")
    app.selectbox(key="w_metric").set_value("variance").run()
    drag(app, [0.02, 0.1])
    app.session_state["names"] = {("variance", "thresholds", 3): ["calm", "mixed", "wild"]}
    app.run()
    link = dict(app.query_params)
    assert link["folder"] == str((tmp_path / "data").resolve()) and link["metric"] == "variance"
    assert link["mode"] == "thresholds" and link["t"] == "0.02,0.1" and link["names"] == "calm,mixed,wild"

    other = opened_with(monkeypatch, link, tmp_path)
    go(other, "buckets")
    assert bucket_rows(other) == bucket_rows(app)
    assert [r["name"] for r in bucket_rows(other)] == ["calm", "mixed", "wild"]
    assert dict(other.query_params) == link  # and it keeps saying the same


def test_a_drag_updates_the_link(app):
    go(app, "buckets")
    drag(app, [0.3, 0.8])
    assert app.query_params["t"] == "0.3,0.8" and app.query_params["mode"] == "thresholds"
    drag(app, [0.25], seq=2)
    assert app.query_params["t"] == "0.25"


@pytest.mark.parametrize("folder", ["/", "../..", "/etc"])
def test_a_folder_outside_the_allowed_roots_in_a_link_is_refused_as_when_typed(monkeypatch, tmp_path, folder):
    at = opened_with(monkeypatch, {"folder": folder, "metric": "variance"}, tmp_path)
    assert any("outside the folders this app may use" in text for text in warnings(at)), warnings(at)
    assert at.session_state["source"] is None or at.session_state["source"].path == SAMPLE.resolve()
    assert at.session_state["metric"] == "variance"  # the rest of the link still applies


def test_bad_values_in_a_link_are_left_out_and_said(monkeypatch, tmp_path):
    params = {"metric": "rm -rf", "k": "0", "pass": "nan", "n": "1000", "mode": "evil", "t": "1,x", "names": "../a,b"}
    at = opened_with(monkeypatch, params, tmp_path)
    said = " ".join(warnings(at))
    for key in params:
        assert f"{key}=" in said, (key, said)
    s = at.session_state
    assert (s["metric"], s["k"], s["pass_threshold"], s["num_buckets"], s["mode"]) == (
        "mean_reward",
        1,
        0.5,
        3,
        "count",
    )
    assert not at.exception


def test_a_link_is_read_once_per_session(monkeypatch, tmp_path):
    at = opened_with(monkeypatch, {"metric": "variance"}, tmp_path)
    go(at, "buckets")
    at.selectbox(key="w_metric").set_value("max_reward").run()
    at.run()
    assert at.session_state["metric"] == "max_reward"  # the link's metric doesn't come back on later runs
