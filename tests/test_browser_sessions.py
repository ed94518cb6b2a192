"""Five users on one server at the same time: each browser session keeps its own data, metric and thresholds.

One streamlit server, five browser contexts (five Streamlit sessions). Every session loads a different
folder, picks a different metric on the Buckets page and drags a threshold line with the real mouse.
The steps are interleaved (step 1 in all five, then step 2 in all five, ...) so the sessions' script
runs overlap on the server, which shares loaded data between sessions (pages/common/shared.py's store).
Screenshots go to tests/screenshots/sessions-*.png.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import bucketing
from bucketing.metrics import METRICS
from bucketing.plan import bucket_table
from examples.make_rollouts import make_rollouts

from .browser_support import (
    CHART,
    TIMEOUT_MS,
    app_text,
    assert_no_error_shown,
    assert_regions_match,
    drag_line,
    expect,
    mode_selected,
    new_tab,
    region_labels,
    screenshot,
    settle,
    sizes,
    threshold_inputs,
    wait_until,
)

pytestmark = pytest.mark.browser

# One per session: a different metric and a different number of rollouts.
PLANS = [("mean_reward", 30), ("variance", 41), ("success_rate", 52), ("max_reward", 63), ("min_reward", 74)]
DRAG_PX = 60  # rightwards, in screen pixels


@dataclass
class Session:
    index: int
    metric: str
    folder: Path
    rollouts: int  # what the engine counts in ``folder``
    page: object = None
    notes: dict = field(default_factory=dict)

    @property
    def option(self) -> str:
        """How the Metric selectbox shows the metric."""
        return f"{self.metric} ({METRICS[self.metric].direction})"

    def where(self, step: str) -> str:
        return f"session {self.index} ({self.folder.name}, {self.metric}) {step}"


def rollouts_metric(page):
    return page.locator('[data-testid="stMetric"]').filter(has_text="Rollouts").locator('[data-testid="stMetricValue"]')


def metric_box(page):
    return page.get_by_role("combobox", name="Metric")


def heading(page, title: str) -> None:
    expect(page.locator("h1").first).to_have_text(title, timeout=TIMEOUT_MS)


def engine_counts(session: Session, cuts: list[float]) -> dict[str, int]:
    """Bucket name -> count for these thresholds on this session's folder, by the engine (the app's default names)."""
    values = np.sort(bucketing.load(session.folder).table()[session.metric].to_numpy())
    plan = bucketing.threshold_plan(session.metric, cuts)
    plan = plan.renamed(bucketing.default_names(len(plan.buckets)))
    table = bucket_table(plan, values)
    return dict(zip(table["name"], (int(c) for c in table["count"])))


@pytest.fixture(scope="module")
def folders(allowed_root) -> list[tuple[Path, int]]:
    """Five small folders under the allowed root, each with its own rollout count (by the engine)."""
    made = []
    for i, (_, rollouts) in enumerate(PLANS):
        folder = allowed_root / f"data{i}"
        make_rollouts(folder, rollouts=rollouts, files=2, seed=i)
        made.append((folder, bucketing.load(folder).totals["rollouts"]))
    assert len({count for _, count in made}) == len(made), "the folders must differ in size"
    return made


@pytest.fixture
def sessions(folders) -> list[Session]:
    made = [Session(i, metric, folder, count) for i, ((metric, _), (folder, count)) in enumerate(zip(PLANS, folders))]
    assert len({s.metric for s in made}) == len(made)
    return made


def load_folder(page, folder: Path) -> None:
    """Type the folder into the Data page's form and press Load (no wait)."""
    page.get_by_role("textbox", name="Folder").fill(str(folder))
    page.get_by_role("button", name="Load", exact=True).click()


def go(page, title: str) -> None:
    """Click a sidebar link (no wait: the caller waits, after starting the same step in every session)."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()


def in_turn(sessions: list[Session]) -> Iterator[Session]:
    """Each session, its tab brought to the front first: the tabs share one window (new_tab) and a tab behind the
    others draws late. Every step still starts in all five before any is checked, so their scripts run together."""
    for session in sessions:
        session.page.bring_to_front()
        yield session


def test_five_sessions_at_once_each_keep_their_own_data_metric_and_thresholds(browser, server, sessions):
    log_before = server.log.read_text(errors="replace")
    with contextlib.ExitStack() as tabs:  # every wait is bounded (TIMEOUT_MS): a hang fails, a slow machine doesn't
        for s in sessions:
            s.page = tabs.enter_context(new_tab(browser))

        # 1. Open the app in all five (the Data page, on the bundled sample).
        for s in in_turn(sessions):
            s.page.goto(server.url)
        for s in in_turn(sessions):
            settle(s.page)
            heading(s.page, "Data")
            expect(rollouts_metric(s.page)).to_have_text("240")

        # 2. Each loads its own folder: typed on its first visit, it is the one loaded (a new session's first Load
        # once reloaded the sample instead: the box's widget changed identity under it).
        for s in in_turn(sessions):
            load_folder(s.page, s.folder)
        for s in in_turn(sessions):
            expect(rollouts_metric(s.page)).to_have_text(f"{s.rollouts:,}", timeout=TIMEOUT_MS)
            settle(s.page)
            assert_no_error_shown(s.page, s.where("after loading its folder"))

        # 3. All go to the Buckets page.
        for s in in_turn(sessions):
            go(s.page, "Buckets")
        for s in in_turn(sessions):
            heading(s.page, "Buckets")
            settle(s.page)
            expect(s.page.locator(CHART)).to_be_visible()
            assert mode_selected(s.page) == "By bucket count"

        # 4. Each picks its own metric.
        for s in in_turn(sessions):
            box = s.page.locator('[data-testid="stSelectbox"]').filter(has=metric_box(s.page))
            box.get_by_role("button", name="Open").click()
            s.page.get_by_role("option", name=s.option, exact=True).click()
        for s in in_turn(sessions):
            expect(metric_box(s.page)).to_have_value(s.option)
            settle(s.page)
            expect(s.page.locator(f'{CHART} g[data-testid="threshold-line-0"]')).to_have_count(1)
            before = sizes(s.page)
            assert sum(before.values()) == s.rollouts, s.where(f"by count: {before}")

        # 5. Each drags its first threshold line with the mouse.
        for s in in_turn(sessions):
            drag_line(s.page, 0, DRAG_PX)
        for s in in_turn(sessions):
            expect(s.page.get_by_role("radio", name="By thresholds")).to_be_checked(timeout=TIMEOUT_MS)
            wait_until(
                lambda: threshold_inputs(s.page) and sizes(s.page),
                message=lambda: s.where("drew no thresholds after the drag"),
            )
            settle(s.page)

        # 6. Each session shows its own state.
        for s in in_turn(sessions):
            page = s.page
            expect(metric_box(page)).to_have_value(s.option)
            assert mode_selected(page) == "By thresholds", s.where("is not by thresholds")
            cuts = threshold_inputs(page)
            counts = sizes(page)
            assert sum(counts.values()) == s.rollouts, s.where(f"sizes {counts}")
            assert counts == engine_counts(s, cuts), s.where(f"thresholds {cuts}: sizes {counts}")
            labels = region_labels(page)
            assert_regions_match(labels, counts)
            assert len(labels) == len(counts), s.where(f"region labels {labels} for sizes {counts}")
            labelled = sum(int(re.search(r"\(([\d,]+)\)$", label).group(1).replace(",", "")) for label in labels)
            assert labelled == s.rollouts, s.where(f"region labels {labels}")
            assert_no_error_shown(page, s.where("after the drag"))
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0, s.where(
                f"shows an error:\n{app_text(page)[:2000]}"
            )
            screenshot(page, f"sessions-{s.index}-{s.metric}")

        # 7. Back on the Data page, each still has its own folder.
        for s in in_turn(sessions):
            go(s.page, "Data")
        for s in in_turn(sessions):
            heading(s.page, "Data")
            expect(rollouts_metric(s.page)).to_have_text(f"{s.rollouts:,}")
            expect(s.page.get_by_role("textbox", name="Folder")).to_have_value(str(s.folder))
            settle(s.page)
            assert_no_error_shown(s.page, s.where("back on the Data page"))
    log = server.log.read_text(errors="replace")[len(log_before) :]
    assert "Traceback" not in log and "Uncaught" not in log, log
