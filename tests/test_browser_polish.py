"""What a new user tripped on (issue 19), in a real browser: the sidebar names the data loaded on this very run,
nothing is fetched from outside 127.0.0.1, and loading a big folder leaves the server's output clean."""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

import pytest

from examples.make_rollouts import make_rollouts
from pages.common.charts import contrast, nice_ticks

from .browser_support import (
    CHART,
    assert_no_error_shown,
    center,
    data_caption,
    drag_line,
    expect,
    go_to,
    new_tab,
    open_page,
    screenshot,
    settle,
    sizes,
    threshold_inputs,
    wait_until,
)
from .conftest import ROOT

pytestmark = pytest.mark.browser

PAGES = ["Data", "Distributions", "Buckets", "Compare", "Export", "Trends"]
STREAMLIT_NOISE = ("ScriptRunContext", "streamlit run", "Session state does not function")


@pytest.fixture
def tab(browser):
    """A fresh session, every URL it requests recorded in ``tab.requests``; opened by the test."""
    with new_tab(browser) as page:
        yield page


def load(page, folder) -> None:
    page.get_by_role("textbox", name="Folder").fill(str(folder))
    page.get_by_role("button", name="Load", exact=True).click()
    settle(page)


def test_the_sidebar_names_the_data_on_the_first_page_and_right_after_a_load(tab, server):
    open_page(tab, server, "Data")
    expect(data_caption(tab)).to_have_text("Data: rollouts · 12 files")  # the first page: the sample, at once
    load(tab, ROOT / "examples" / "formats")
    files = len([p for p in (ROOT / "examples" / "formats").rglob("*.jsonl")])
    expect(data_caption(tab)).to_have_text(f"Data: formats · {files} files")  # this run, not the next one


def test_no_page_fetches_anything_from_outside_this_server(tab, server):
    open_page(tab, server, "Data")
    for title in PAGES[1:]:
        go_to(tab, title)
        settle(tab)
    outside = [
        url
        for url in tab.requests
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).hostname != "127.0.0.1"
    ]
    assert tab.requests and not outside, outside


def test_loading_a_big_folder_prints_no_streamlit_warnings(tab, server, allowed_root):
    """Over 32 MB the load runs in worker processes; spawned in the server, they must not run the app again."""
    folder = allowed_root / "big"
    make_rollouts(folder, files=4, seed=3, size_bytes=40_000_000)
    open_page(tab, server, "Data")
    before = server.log.read_text(errors="replace")
    load(tab, folder)
    expect(tab.locator('[data-testid="stMetric"]').filter(has_text="Files")).to_contain_text("4")
    added = server.log.read_text(errors="replace")[len(before) :]
    assert not [line for line in added.splitlines() if any(noise in line for noise in STREAMLIT_NOISE)], added[:2000]


def css_color(text: str) -> str:
    """A computed CSS colour ("rgb(1, 2, 3)" or "rgba(1, 2, 3, 1)") as "rgb(1, 2, 3)"."""
    return "rgb({}, {}, {})".format(*re.findall(r"[\d.]+", text)[:3])


@pytest.mark.parametrize("width, scheme", [(1024, "light"), (1024, "dark"), (1440, "dark")])
def test_every_page_works_from_1024_px_in_both_themes(browser, server, width, scheme):
    """Screenshots of every page for review; on Buckets, every column of the table and the metric's whole name
    show, the threshold values are readable over the bars, the axis names the metric and ticks round values."""
    with new_tab(browser, width=width, height=900, scheme=scheme) as tab:
        open_page(tab, server, "Data")
        for title in PAGES:
            if title != "Data":
                go_to(tab, title)
            settle(tab)
            screenshot(tab, f"polish-{title.lower()}-{scheme}-{width}")
            assert_no_error_shown(tab, f"{title} at {width} px, {scheme}")
            if title != "Buckets":
                continue
            table = tab.locator('[data-testid="stDataFrame"] .dvn-scroller').first
            assert table.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the bucket table is cut off"
            metric = tab.get_by_role("combobox", name="Metric")
            assert metric.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), metric.input_value()
            pills = tab.locator(f"{CHART} g.td-line rect.td-pill")
            texts = tab.locator(f"{CHART} g.td-line text")
            assert pills.count() == texts.count() == 2
            for i in range(2):
                fill = css_color(pills.nth(i).evaluate("e => getComputedStyle(e).fill"))
                ink = css_color(texts.nth(i).evaluate("e => getComputedStyle(e).fill"))
                assert contrast(fill, ink) >= 4.5, (fill, ink)
            expect(tab.locator(f"{CHART} text.td-axis-title")).to_have_text("mean_reward (higher = easier)")
            ticks = [float(t) for t in tab.locator(f"{CHART} text.td-axis").all_text_contents()]
            assert ticks == nice_ticks(ticks[0], ticks[-1]) and len(ticks) >= 4, ticks


def test_a_line_dragged_on_a_log_axis_sends_the_value_under_it(browser, server):
    with new_tab(browser) as tab:
        open_page(tab, server, "Data")
        go_to(tab, "Buckets")
        metric = tab.get_by_role("combobox", name="Metric")
        metric.click()
        tab.get_by_role("option", name=re.compile(r"^inverse_mean")).click()
        settle(tab)
        expect(tab.locator(f"{CHART} text.td-axis-title")).to_have_text("inverse_mean (higher = harder), log scale")
        ticks = [
            (center(t.bounding_box())[0], math.log10(float(t.text_content())))
            for t in tab.locator(f"{CHART} text.td-axis").all()
        ]
        (x0, u0), (x1, u1) = min(ticks), max(ticks)
        start, _ = drag_line(tab, 0, 80)
        wait_until(lambda: threshold_inputs(tab), message="no thresholds after the drag")
        settle(tab)
        sent = threshold_inputs(tab)[0]
        expected = 10 ** (u0 + (start + 80 - x0) * (u1 - u0) / (x1 - x0))  # the value under the released line
        assert abs(math.log10(sent) - math.log10(expected)) < 0.05, (sent, expected)


def test_the_address_bar_carries_the_view_and_opens_it_in_a_new_session(browser, server):
    with new_tab(browser) as tab:
        open_page(tab, server, "Data")
        go_to(tab, "Buckets")
        settle(tab)
        drag_line(tab, 0, 60)  # a drag reruns only the Buckets fragment: the address must follow it too
        expect(tab).to_have_url(re.compile(r"mode=thresholds.*&t=[^&]+"))
        settle(tab)
        link, shown = tab.url, sizes(tab)
    with new_tab(browser) as other:
        other.goto(link)
        settle(other)
        expect(other.locator("h1").first).to_have_text("Buckets")
        wait_until(lambda: sizes(other) == shown, message=lambda: f"{sizes(other)} != {shown}")
