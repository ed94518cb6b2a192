"""End-to-end tests in a real browser: the app runs as a real server, chromium (driven by Playwright) uses it.

The first four tests are one user's journey in one browser session, in this order: look at the data,
drag a threshold on the Buckets page, switch pages and come back, export and check the files on disk
(and the equivalent command).  Screenshots of every page go to tests/screenshots/.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import subprocess
import sys

import pytest

import bucketing
from bucketing.metrics import METRICS
from bucketing.wording import counted

from .browser_support import (
    CHART,
    TIMEOUT_MS,
    app_text,
    assert_no_error_shown,
    assert_regions_match,
    axis_scale,
    center,
    drag_line,
    expect,
    export_done,
    go_to,
    line_labels,
    listening_addresses,
    mode_selected,
    new_tab,
    open_page,
    region_labels,
    screenshot,
    settle,
    sizes,
    streamlit_server,
    threshold_inputs,
    wait_until,
)
from .conftest import ROOT, SAMPLE

pytestmark = pytest.mark.browser

PAGES = ["Data", "Distributions", "Buckets", "Compare", "Export", "Trends"]
SAMPLE_ROLLOUTS = 240
DRAG_PX = -200  # leftwards, in screen pixels


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def journey() -> dict:
    """What earlier journey tests saw, for later ones to compare with."""
    return {}


def floats(labels: list[str]) -> list[float]:
    return [float(label) for label in labels]


def close(a: list[float], b: list[float], tolerance: float) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b))


# --- 1. data and distributions -----------------------------------------------------------


def test_data_and_distributions_pages_show_the_sample(page, server):
    go_to(page, "Data")
    rollouts = page.locator('[data-testid="stMetric"]').filter(has_text="Rollouts")
    expect(rollouts.locator('[data-testid="stMetricValue"]')).to_have_text(str(SAMPLE_ROLLOUTS))
    expect(page.get_by_role("textbox", name="Folder")).to_have_value(re.compile(r"examples/rollouts$"))
    chart = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    expect(chart).to_have_count(1)
    expect(chart).to_be_visible()
    expect(chart.locator("g.point").first).to_be_attached()  # bars drawn, not an empty frame
    assert_no_error_shown(page, "Data")
    screenshot(page, "1-data")

    go_to(page, "Distributions")
    charts = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    expect(charts).to_have_count(len(METRICS))
    assert len(METRICS) == 7
    for i in range(len(METRICS)):
        expect(charts.nth(i)).to_be_visible()
        expect(charts.nth(i).locator("g.point").first).to_be_attached()
    text = app_text(page)
    for name, metric in METRICS.items():
        assert f"{name} · {metric.direction}" in text, f"no '{name} · {metric.direction}' caption on Distributions"
    assert len(re.findall(r"higher = (?:easier|harder)", text)) == len(METRICS)
    assert_no_error_shown(page, "Distributions")
    screenshot(page, "2-distributions")


# --- 2. dragging thresholds --------------------------------------------------------------


def test_drag_a_threshold_with_the_mouse_and_add_one_by_double_click(page, journey):
    go_to(page, "Buckets")
    chart = page.locator(CHART)
    expect(chart).to_be_visible()
    expect(chart.locator('g[data-testid="threshold-line-0"]')).to_have_count(1)
    expect(chart.locator('g[data-testid="threshold-line-1"]')).to_have_count(1)
    assert chart.evaluate("el => el.getRootNode() instanceof ShadowRoot"), (
        "the chart is not in a v2 component's shadow root"
    )
    assert mode_selected(page) == "By bucket count"
    lines_before, regions_before, sizes_before = line_labels(page), region_labels(page), sizes(page)
    assert len(lines_before) == 2 and len(sizes_before) == 3, (lines_before, sizes_before)
    assert sum(sizes_before.values()) == SAMPLE_ROLLOUTS
    assert_regions_match(regions_before, sizes_before)
    screenshot(page, "3-buckets-before-drag")

    # Drag the upper line (index 1) 200 px to the left with the real mouse.
    origin, per_px = axis_scale(page)
    start_x, _ = drag_line(page, 1, DRAG_PX)
    expected = origin + (start_x + DRAG_PX) * per_px
    expect(page.get_by_role("radio", name="By thresholds")).to_be_checked(timeout=TIMEOUT_MS)
    wait_until(
        lambda: sizes(page) not in ({}, sizes_before), message=lambda: f"bucket sizes never changed: {sizes(page)}"
    )
    settle(page)
    expect(chart.locator("g.td-line")).to_have_count(2)
    assert mode_selected(page) == "By thresholds"

    lines_after, regions_after, sizes_after = line_labels(page), region_labels(page), sizes(page)
    assert lines_after[0] == lines_before[0], "the line that was not dragged moved"
    assert lines_after[1] != lines_before[1], f"the dragged line's label did not change: {lines_after}"
    new_value = float(lines_after[1])
    assert new_value < float(lines_before[1])
    assert abs(new_value - expected) <= 4 * per_px, f"dropped at ~{expected:.4g}, line says {new_value}"
    knob_x, _ = center(chart.locator('g[data-testid="threshold-line-1"] rect.td-knob').bounding_box())
    assert abs(knob_x - (start_x + DRAG_PX)) <= 4, "the redrawn line is not where it was dropped"
    # Python got the value: it drew the number inputs and recounted the buckets from it.
    assert close(threshold_inputs(page), floats(lines_after), 1e-9), (threshold_inputs(page), lines_after)
    assert regions_after != regions_before, f"region labels still {regions_after}"
    assert sum(sizes_after.values()) == SAMPLE_ROLLOUTS
    names = list(sizes_before)
    assert sizes_after[names[0]] > sizes_before[names[0]], (sizes_before, sizes_after)  # easiest bucket grew
    assert sizes_after[names[1]] < sizes_before[names[1]], (sizes_before, sizes_after)
    assert sizes_after[names[2]] == sizes_before[names[2]], (sizes_before, sizes_after)  # below line 0: untouched
    assert_regions_match(regions_after, sizes_after)
    assert_no_error_shown(page, "Buckets after a drag")
    screenshot(page, "4-buckets-after-drag")

    # Double-click right of the dragged line: one more line, one more bucket.
    box = chart.bounding_box()
    right_edge = box["x"] + box["width"] * 0.975
    x = (knob_x + right_edge) / 2
    y = box["y"] + box["height"] * 0.5
    page.mouse.dblclick(x, y)
    expect(chart.locator("g.td-line")).to_have_count(3, timeout=TIMEOUT_MS)
    wait_until(lambda: len(sizes(page)) == 4, message=lambda: f"no fourth bucket: {sizes(page)}")
    settle(page)
    lines_added = floats(line_labels(page))
    assert len(lines_added) == 3 and lines_added == sorted(lines_added)
    assert lines_added[:2] == floats(lines_after), f"the old lines moved: {lines_added}"
    assert abs(lines_added[2] - (origin + x * per_px)) <= 4 * per_px, (
        f"added at ~{origin + x * per_px:.4g}: {lines_added}"
    )
    assert close(threshold_inputs(page), lines_added, 1e-9), threshold_inputs(page)
    sizes_added = sizes(page)
    assert sum(sizes_added.values()) == SAMPLE_ROLLOUTS
    assert mode_selected(page) == "By thresholds"
    assert_no_error_shown(page, "Buckets after a double-click")
    screenshot(page, "5-buckets-after-double-click")
    journey.update(lines=lines_added, labels=line_labels(page), sizes=sizes_added, regions=region_labels(page))


# --- 3. state across pages ---------------------------------------------------------------


def test_dragged_thresholds_survive_a_page_switch(page, journey):
    if "lines" not in journey:  # run on its own: make thresholds by a drag first
        go_to(page, "Buckets")
        drag_line(page, 1, DRAG_PX)
        expect(page.get_by_role("radio", name="By thresholds")).to_be_checked(timeout=TIMEOUT_MS)
        wait_until(lambda: threshold_inputs(page) and sizes(page), message="no thresholds after a drag")
        settle(page)
        journey.update(
            lines=floats(line_labels(page)), labels=line_labels(page), sizes=sizes(page), regions=region_labels(page)
        )
    go_to(page, "Export")
    plan = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=re.compile(r"^Plan:")).inner_text()
    found = re.search(r", thresholds (.*?) — (.*?)\. Change it", plan)  # "Plan: metric, thresholds 0.3, 0.7 — names."
    assert found, f"the Export page's plan is not by thresholds: {plan!r}"
    shown = [float(v) for v in found.group(1).split(", ")]
    assert close(shown, journey["lines"], 1e-3 * max(1.0, *map(abs, journey["lines"]))), (plan, journey["lines"])
    assert len(found.group(2).split(", ")) == len(journey["sizes"]), plan

    go_to(page, "Buckets")
    expect(page.locator(CHART).locator("g.td-line")).to_have_count(len(journey["lines"]))
    assert line_labels(page) == journey["labels"]
    assert sizes(page) == journey["sizes"]
    assert region_labels(page) == journey["regions"]
    assert mode_selected(page) == "By thresholds"
    assert close(threshold_inputs(page), journey["lines"], 1e-9)
    assert_no_error_shown(page, "Buckets after a page switch")
    screenshot(page, "6-buckets-after-page-switch")


# --- 4. export ---------------------------------------------------------------------------


def sample_lines() -> list[bytes]:
    return sorted(line for f in sorted(SAMPLE.glob("*.jsonl")) for line in f.read_bytes().splitlines(keepends=True))


def test_export_writes_the_buckets_and_the_shown_command_makes_the_same_files(page, journey, allowed_root):
    out = allowed_root / "exported"
    go_to(page, "Export")
    folder = page.get_by_role("textbox", name="Output folder")
    folder.fill(str(out))
    folder.press("Enter")
    settle(page)
    expect(folder).to_have_value(str(out))
    export = page.get_by_role("button", name="Export", exact=True)
    expect(export).to_be_enabled()
    assert_no_error_shown(page, "Export before exporting")
    export.click()
    export_done(page, f"Wrote {SAMPLE_ROLLOUTS} rollouts to {out}", "7-export")

    # The files on disk.
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"]["rollouts"] == SAMPLE_ROLLOUTS
    written: list[bytes] = []
    for bucket in manifest["buckets"]:
        path = out / bucket["file"]
        assert path.is_file(), f"{bucket['file']} is in the manifest but not on disk"
        lines = path.read_bytes().splitlines(keepends=True)
        assert len(lines) == bucket["count"], f"{path.name}: {len(lines)} lines, manifest says {bucket['count']}"
        written += lines
    if manifest["skipped_file"]:
        written += (out / manifest["skipped_file"]).read_bytes().splitlines(keepends=True)
    listed = {b["file"] for b in manifest["buckets"]} | ({manifest["skipped_file"]} - {None})
    assert {p.name for p in out.glob("*.jsonl")} == listed, "files on disk that the manifest doesn't name"
    assert sorted(written) == sample_lines(), "the bucket files' lines are not exactly the sample's lines"
    if "sizes" in journey:  # what the Buckets page showed is what was written
        assert {b["name"]: b["count"] for b in manifest["buckets"]} == journey["sizes"]
        assert manifest["mode"] == "thresholds"
        assert close(manifest["cuts"], journey["lines"], 1e-9)

    # The command the page shows makes the same files.
    command = page.locator('[data-testid="stCode"] code').inner_text().strip()
    args = shlex.split(command)
    assert args[:3] == ["python", "-m", "bucketing"], command
    assert args[args.index("-o") + 1] == str(out), command
    again = allowed_root / "from-command"
    args[args.index("-o") + 1] = str(again)
    result = subprocess.run([sys.executable, *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    app_files = sorted(p.name for p in out.iterdir())
    assert sorted(p.name for p in again.iterdir()) == app_files
    for name in app_files:
        assert (again / name).read_bytes() == (out / name).read_bytes(), (
            f"{name} differs between the app and the command"
        )


# --- 5. secure defaults ------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_server(tmp_path_factory):
    """A server started like `streamlit run app.py` from the repo (no --server.address): only the repo's config
    applies. Its first page is opened by test_a_page_opened_directly_on_a_fresh_server_works."""
    folder = tmp_path_factory.mktemp("repo-config")
    with streamlit_server(folder / "server.log", [folder], address=None) as running:
        yield running


def test_repo_config_binds_the_server_to_localhost_only(repo_server):
    addresses = listening_addresses(repo_server.port)
    assert addresses, f"nothing listens on port {repo_server.port}"
    assert addresses == {ipaddress.ip_address("127.0.0.1")}, f"listening on {sorted(map(str, addresses))}"


# --- uploads and pages opened first ------------------------------------------------------


def test_uploaded_files_are_loaded(browser, server, tmp_path):
    import gzip

    good = b'{"prompt": "a", "reward": [{"score": 1}, {"score": 0}]}\n'
    (tmp_path / "one.jsonl").write_bytes(good * 3 + b"{broken\n")
    (tmp_path / "two.jsonl.gz").write_bytes(gzip.compress(good * 2))
    with new_tab(browser) as tab:
        open_page(tab, server, "Data")
        tab.get_by_text("Upload files instead").click()
        tab.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
            [str(tmp_path / "one.jsonl"), str(tmp_path / "two.jsonl.gz")]
        )
        tab.get_by_role("button", name="Load the uploaded files").click()
        rollouts = tab.locator('[data-testid="stMetric"]').filter(has_text="Rollouts")
        expect(rollouts.locator('[data-testid="stMetricValue"]')).to_have_text("5")
        skipped = tab.locator('[data-testid="stMetric"]').filter(has_text="Skipped")
        expect(skipped.locator('[data-testid="stMetricValue"]')).to_have_text("1")
        settle(tab)
        assert_no_error_shown(tab, "Data after an upload")
        screenshot(tab, "10-upload")


def test_a_page_opened_directly_on_a_fresh_server_works(browser, repo_server):
    """Each page the first one a session opens (by URL, as a bookmark or a reload would): Buckets the very first
    on the fresh server (nothing loaded or cached yet; by a shared link, whose view it shows), then each other
    page in a new session of its own."""
    with new_tab(browser) as tab:
        for title in ["Buckets", *(title for title in reversed(PAGES) if title != "Buckets")]:
            view = "?metric=variance&n=4" if title == "Buckets" else ""  # a shared link, the server's first page
            open_page(tab, repo_server, title, path=("" if title == "Data" else title.lower()) + view)
            if view:
                expect(tab.get_by_role("combobox", name="Metric")).to_have_value(re.compile("^variance"))
                expect(tab).to_have_url(re.compile(r"metric=variance.*n=4|n=4.*metric=variance"))
            text = app_text(tab)
            assert "Traceback" not in text and 'File "' not in text, f"{title} by URL shows a traceback:\n{text}"
            assert_no_error_shown(tab, f"/{title.lower()} opened first in a new session")
            screenshot(tab, f"9-direct-{title.lower()}")
            assert "Uncaught app execution" not in repo_server.log_tail(20_000), repo_server.log_tail()


def test_no_page_ever_shows_a_traceback(browser, repo_server):
    """Every page by the sidebar, on the server started with only the repo's config."""
    with new_tab(browser) as tab:
        open_page(tab, repo_server, "Data")
        for title in PAGES:
            go_to(tab, title)
            text = app_text(tab)
            assert "Traceback" not in text and 'File "' not in text, f"{title} shows a traceback:\n{text}"
            assert_no_error_shown(tab, title)
            screenshot(tab, f"8-fresh-{title.lower()}")
        assert "Uncaught app execution" not in repo_server.log_tail(20_000), repo_server.log_tail()


# --- 5. comparing two metrics ---------------------------------------------------------------


def test_clicking_a_compare_cell_previews_its_rollouts(page):
    go_to(page, "Compare")
    cells = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.locator(".scatterlayer path.point")
    expect(cells).to_have_count(9)  # 3 buckets of mean_reward × 3 of variance
    table = bucketing.load(SAMPLE).table()
    plans = {m: bucketing.percentile_plan(table[m], m, 3) for m in ("mean_reward", "variance")}
    ids = {m: plans[m].assign(table[m]) for m in plans}
    for row, col in [(2, 0), (0, 1)]:
        count = int(((ids["mean_reward"] == row) & (ids["variance"] == col)).sum())
        caption = (
            f"{counted(count, 'rollout', ',', ('is', 'are'))} "
            f"{plans['mean_reward'].names[row]} by mean_reward and "
            f"{plans['variance'].names[col]} by variance."
        )  # as shown: the names in code style
        for attempt in range(3):  # a click while the chart is still being redrawn after the last one is lost
            cell = cells.nth(row * 3 + col)
            cell.scroll_into_view_if_needed()
            x, y = center(cell.bounding_box())
            page.mouse.move(1, 1)  # Plotly picks the clicked point from its hover, which it throttles: a click
            page.mouse.move(x, y, steps=5)  # with no fresh hover on the cell selects the last point again
            page.wait_for_timeout(150)
            page.mouse.click(x, y)
            settle(page)
            try:
                wait_until(
                    lambda caption=caption: caption in app_text(page),
                    timeout=5 if attempt < 2 else 20,
                    message=lambda caption=caption: f"wanted {caption!r}; the page says: {app_text(page)[-600:]}",
                )
                break
            except AssertionError:
                if attempt == 2:
                    raise
        expect(page.locator('[data-testid="stExpander"]')).to_have_count(min(5, count))
    assert_no_error_shown(page, "Compare")
    screenshot(page, "5-compare")
