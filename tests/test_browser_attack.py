"""Hostile names and links in a real browser: what the page shows is the text, nothing is fetched, nothing leaks.

A field named like a markdown image must not make the browser fetch its address; a folder name full of
markdown shows as typed in the sidebar; uploads of the same name are all kept and named "the uploaded
files"; a link inside an allowed folder to a file outside is passed over, and an export through a linked
cumulative/ folder is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .browser_support import (
    app_text,
    assert_no_error_shown,
    data_caption,
    expect,
    go_to,
    new_tab,
    open_page,
    settle,
)
from .conftest import rollout_line, write_lines

pytestmark = pytest.mark.browser

IMAGE = "![p](https://example.invalid/f.png)"
NASTY_DIR = "we`ird ![p](f.png) :smile: $x$ <b>"
SECRET = "the outside file's secret prompt"


@pytest.fixture
def tab(browser, server):
    """A fresh session on the Data page, with every URL the page requests recorded in ``tab.requests``."""
    with new_tab(browser) as page:
        open_page(page, server, "Data")
        yield page


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A folder the app may not use."""
    return tmp_path_factory.mktemp("outside").resolve()


def load(page, folder: Path) -> None:
    page.get_by_role("textbox", name="Folder").fill(str(folder))
    page.get_by_role("button", name="Load", exact=True).click()
    settle(page)


def metric_value(page, label: str):
    return page.locator('[data-testid="stMetric"]').filter(has_text=label).locator('[data-testid="stMetricValue"]')


def test_a_field_named_like_an_image_is_shown_and_never_fetched(tab, allowed_root):
    folder = allowed_root / "image-field"
    write_lines(folder / "a.jsonl", [(f'{{"{IMAGE}": 1, "other": "x"}}').encode()] * 3)
    load(tab, folder)
    error = tab.locator('[data-testid="stAlertContentError"]')
    expect(error).to_contain_text(IMAGE)
    assert error.locator("img").count() == 0
    tab.wait_for_timeout(500)
    assert not [url for url in tab.requests if "example.invalid" in url], tab.requests
    assert_no_error_shown(tab, "Data after a field named like an image")


def test_a_folder_named_with_markdown_shows_as_typed_in_the_sidebar(tab, allowed_root):
    folder = allowed_root / NASTY_DIR
    write_lines(folder / "a.jsonl", [rollout_line([1, 0])] * 3)
    load(tab, folder)
    expect(metric_value(tab, "Rollouts")).to_have_text("3")
    expect(data_caption(tab)).to_have_text(f"Data: {NASTY_DIR} · 1 file")  # at once, not after the next page
    sidebar = tab.locator('[data-testid="stSidebar"]')
    assert sidebar.locator("img, code, .katex, [data-testid='stIconMaterial'] + span").count() == 0
    assert "😄" not in sidebar.inner_text()


def test_uploads_of_the_same_name_are_all_loaded_and_called_the_uploaded_files(tab, tmp_path):
    for folder, count in (("s1", 10), ("s2", 7)):
        write_lines(tmp_path / folder / "rollouts.jsonl", [rollout_line([i % 2, 1]) for i in range(count)])
    tab.get_by_text("Upload files instead").click()
    tab.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        [str(tmp_path / "s1" / "rollouts.jsonl"), str(tmp_path / "s2" / "rollouts.jsonl")]
    )
    tab.get_by_role("button", name="Load the uploaded files").click()
    expect(metric_value(tab, "Rollouts")).to_have_text("17")
    expect(metric_value(tab, "Files")).to_have_text("2")
    expect(data_caption(tab)).to_have_text("Data: the uploaded files · 2 files")
    go_to(tab, "Distributions")
    expect(data_caption(tab)).to_have_text("Data: the uploaded files · 2 files")
    assert "bucketing-upload-" not in app_text(tab)


def test_a_link_to_a_file_outside_is_passed_over_and_never_shown(tab, allowed_root, outside):
    folder = allowed_root / "leaky"
    write_lines(folder / "own.jsonl", [rollout_line([i % 2, 1], prompt=f"own {i}") for i in range(4)])
    write_lines(outside / "secret.jsonl", [rollout_line([1, 1], prompt=SECRET)] * 6)
    (folder / "leak.jsonl").symlink_to(outside / "secret.jsonl")
    load(tab, folder)
    expect(metric_value(tab, "Files")).to_have_text("1")
    expect(metric_value(tab, "Rollouts")).to_have_text("4")
    expect(tab.locator('[data-testid="stAlertContentWarning"]').filter(has_text="leak.jsonl")).to_have_count(1)
    go_to(tab, "Buckets")
    for expander in tab.locator('[data-testid="stExpander"] summary').all():
        expander.click()
    settle(tab)
    assert "own " in tab.content()
    assert SECRET not in tab.content()
    assert_no_error_shown(tab, "Buckets with a leaking link")


def test_an_export_through_a_linked_cumulative_folder_is_refused(tab, allowed_root, outside):
    (outside / "cum").mkdir()
    out = allowed_root / "linked-out"
    out.mkdir()
    (out / "cumulative").symlink_to(outside / "cum", target_is_directory=True)
    go_to(tab, "Export")
    field = tab.get_by_role("textbox", name="Output folder")
    field.fill(str(out))
    field.press("Enter")
    settle(tab)
    tab.get_by_text("Cumulative stages too").click()
    settle(tab)
    replace = tab.get_by_text("Replace", exact=False)
    if replace.count():
        replace.first.click()
        settle(tab)
    tab.get_by_role("button", name="Export", exact=True).click()
    settle(tab)
    expect(tab.locator('[data-testid="stAlertContentError"]')).to_have_count(1)
    assert tab.locator('[data-testid="stAlertContentSuccess"]').count() == 0
    assert list((outside / "cum").iterdir()) == []
    assert_no_error_shown(tab, "Export through a link")
