"""What a new user tripped on (issue 19), in a real browser: the sidebar names the data loaded on this very run,
nothing is fetched from outside 127.0.0.1, and loading a big folder leaves the server's output clean."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from examples.make_rollouts import make_rollouts

from .browser_support import data_caption, expect, go_to, new_tab, open_page, settle
from .conftest import ROOT

pytestmark = pytest.mark.browser

PAGES = ["Data", "Distributions", "Buckets", "Compare", "Export"]
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
