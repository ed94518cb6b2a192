"""The Buckets page in a real browser (issue 15): the names table shows the names in force after a refused
rename, typed names survive a double-click on the chart, and every region of the chart has a readable label.

One browser tab (one session) for the module, in file order.
"""

from __future__ import annotations

import pytest

from .browser_support import (
    CHART,
    assert_no_error_shown,
    go_to,
    region_labels,
    screenshot,
    settle,
    sizes,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("on_buckets")]

ROW_PX = 35  # the data editor's header and row height


@pytest.fixture(scope="module")
def on_buckets(page):  # noqa: F811
    go_to(page, "Buckets")


def names_table(page):
    return page.locator('[data-testid="stDataFrame"]').first


def table_names(page) -> list[str]:
    """The name column as the grid shows it (its accessible cells: seven columns a row)."""
    return names_table(page).locator('[role="gridcell"]').all_text_contents()[::7]


def errors(page) -> list[str]:
    return page.locator('[data-testid="stAlertContentError"]').all_inner_texts()


def type_name(page, row: int, name: str) -> None:
    """Type ``name`` into row ``row``'s name cell as a user does: select the cell, Enter, type, Enter."""
    wait_until(lambda: len(table_names(page)) > row, message=lambda: f"no row {row}: {table_names(page)}")
    editor = page.locator("textarea.gdg-input")  # the grid's cell editor

    def open_editor() -> bool:
        if editor.count():
            page.keyboard.press("Escape")
        grid = names_table(page)
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        y = box["y"] + ROW_PX * (row + 1) + ROW_PX / 2
        page.mouse.click(box["x"] + 150, y)  # the range cell beside it (read-only): the name cell is then unselected
        page.mouse.click(box["x"] + 40, y)  # selects it (a click on a selected cell would open its editor)
        page.keyboard.press("Enter")  # opens the editor on the cell's name
        page.wait_for_timeout(150)
        return editor.count() == 1 and editor.input_value() == table_names(page)[row]

    wait_until(open_editor, message=lambda: f"no editor on row {row} of {table_names(page)}")
    editor.fill(name)
    page.keyboard.press("Enter")
    wait_until(lambda: editor.count() == 0, message="the cell editor stays open")
    settle(page)


def labels_overlap(page) -> list[tuple[str, str]]:
    boxes = [
        (label.text_content(), label.bounding_box()) for label in page.locator(f"{CHART} text.td-region-label").all()
    ]
    return [
        (a, b)
        for i, (a, p) in enumerate(boxes)
        for b, q in boxes[i + 1 :]
        if p["x"] < q["x"] + q["width"]
        and q["x"] < p["x"] + p["width"]
        and p["y"] < q["y"] + q["height"]
        and q["y"] < p["y"] + p["height"]
    ]


def every_region_labelled(page) -> None:
    """Wait until the chart has one label per bucket, each saying the bucket's size (the chart is drawn by its
    own script once the page is there)."""
    wanted = lambda: sorted(f"{n} ({c:,})" for n, c in sizes(page).items())  # noqa: E731
    wait_until(
        lambda: sizes(page) and sorted(region_labels(page)) == wanted(),
        message=lambda: f"region labels {region_labels(page)}, sizes {sizes(page)}",
    )


def test_every_region_has_a_label_that_overlaps_no_other(page):
    every_region_labelled(page)
    assert "hard (89)" in region_labels(page)  # 89 rollouts at 0: a region a few pixels wide
    outside = page.locator(f"{CHART} text.td-outside")
    assert outside.count() >= 1
    chart = page.locator(CHART).bounding_box()
    for label in outside.all():
        box = label.bounding_box()
        assert chart["x"] <= box["x"] and box["x"] + box["width"] <= chart["x"] + chart["width"], label.text_content()
    assert not labels_overlap(page)
    page.get_by_text("Learnability preset", exact=True).click()
    wait_until(lambda: "solved" in sizes(page), message=lambda: f"no preset: {sizes(page)}")
    settle(page)
    every_region_labelled(page)
    assert not labels_overlap(page)
    assert_no_error_shown(page, "Buckets, learnability preset")
    screenshot(page, "buckets-preset-labels")
    page.get_by_text("By bucket count", exact=True).click()
    wait_until(lambda: "easy" in sizes(page), message=lambda: f"not back to the count: {sizes(page)}")
    settle(page)


def test_a_refused_name_is_taken_back_in_the_table(page):
    wait_until(lambda: table_names(page) == ["easy", "medium", "hard"], message=lambda: str(table_names(page)))
    type_name(page, 0, "warmup")
    wait_until(lambda: "warmup" in sizes(page), message=lambda: f"not renamed: {sizes(page)}")
    wait_until(lambda: table_names(page) == ["warmup", "medium", "hard"], message=lambda: str(table_names(page)))
    for bad, message in [("../evil", "is not allowed"), ("WARMUP", "the same file name")]:
        type_name(page, 1, bad)
        wait_until(lambda: any(message in e for e in errors(page)), message=lambda: f"no error: {errors(page)}")
        wait_until(
            lambda: table_names(page) == ["warmup", "medium", "hard"],  # a new table: drawn afresh
            message=lambda: f"the table shows {table_names(page)} after {bad!r} was refused",
        )
        wait_until(lambda: list(sizes(page)) == ["warmup", "medium", "hard"], message=lambda: str(sizes(page)))
    screenshot(page, "buckets-refused-name")


def test_typed_names_survive_a_double_click_on_the_chart(page):
    type_name(page, 2, "floor")
    wait_until(lambda: "floor" in sizes(page), message=lambda: f"not renamed: {sizes(page)}")
    settle(page)
    every_region_labelled(page)  # the chart is drawn anew with the new name: a double-click now is not lost
    chart = page.locator(CHART)
    box = chart.bounding_box()
    page.mouse.dblclick(box["x"] + box["width"] * 0.93, box["y"] + box["height"] * 0.6)  # inside warmup, the easiest
    wait_until(lambda: len(sizes(page)) == 4, message=lambda: f"no fourth bucket: {sizes(page)}")
    settle(page)
    names = list(sizes(page))
    assert sorted(names) == ["bucket_0", "floor", "medium", "warmup"], names
    assert names[2:] == ["medium", "floor"]
    wait_until(lambda: sorted(table_names(page)) == sorted(names), message=lambda: str(table_names(page)))
    every_region_labelled(page)
    assert not labels_overlap(page)
    assert_no_error_shown(page, "Buckets after a double-click")
    screenshot(page, "buckets-names-after-double-click")
