"""The Trends page in a real browser: a run's steps charted, a cell of the changes matrix clicked, its rollouts."""

from __future__ import annotations

import pytest

from bucketing.steps import changes, load_steps
from examples.make_rollouts import make_run

from .browser_support import assert_no_error_shown, center, expect, go_to, settle

pytestmark = pytest.mark.browser


def test_a_run_s_trends_and_a_clicked_cell_s_rollouts(page, allowed_root):
    run = allowed_root / "run"
    make_run(run, prompts=80, steps=6, seed=4)
    page.get_by_role("textbox", name="Folder").fill(str(run))
    page.get_by_role("button", name="Load", exact=True).click()
    settle(page)
    go_to(page, "Trends")
    settle(page)
    assert_no_error_shown(page, "Trends on a run")
    charts = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    expect(charts).to_have_count(3)
    expect(charts.nth(0).locator(".heatmaplayer")).to_have_count(1)  # the metric per step
    expect(charts.nth(1).locator(".scatterlayer .trace")).to_have_count(3)  # solved, learnable, unsolved
    found = changes(load_steps(run), (1, 2), (5, 6))
    learned = found.named()["learned"]
    expect(page.get_by_text(f"{learned} learned", exact=False)).to_be_visible()

    cells = charts.nth(2).locator(".scatterlayer path.point")
    expect(cells).to_have_count(9)
    target = 1 * 3 + 2  # learnable -> solved, drawn row by row
    for _ in range(3):  # a click while the chart is still being redrawn is lost
        cell = cells.nth(target)
        cell.scroll_into_view_if_needed()
        x, y = center(cell.bounding_box())
        page.mouse.move(1, 1)
        page.mouse.move(x, y, steps=5)
        page.wait_for_timeout(150)
        page.mouse.click(x, y)
        settle(page)
        if "learnable_to_solved" in page.get_by_role("combobox", name="Rollouts of").input_value():
            break
    expect(page.get_by_role("combobox", name="Rollouts of")).to_have_value("learnable_to_solved")
    rollouts = int(found.groups(load_steps(run))[1].tolist().count(5))
    expect(page.get_by_text(f"{rollouts:,} rollouts", exact=False).first).to_be_visible()
