"""The Buckets page in a real browser, after issue 19's speed-up: a drag reruns the buckets' fragment, then the
preview's in a run of its own, never the whole page; the preview still follows the plan; both SVG charts download as
SVG and PNG files.

One browser tab (one session) for the module, in file order.
"""

from __future__ import annotations

import re

import pytest

from .browser_support import (
    CHART,
    TIMEOUT_MS,
    app_text,
    assert_no_error_shown,
    drag_line,
    expect,
    go_to,
    settle,
    sizes,
    wait_until,
)

pytestmark = pytest.mark.browser

PAGE_LINE = re.compile(r"page 1 of (\d+) · ([\d,]+) rollouts?")


@pytest.fixture(scope="module")
def runs(page):
    """How each script run of the tab's session ended, in order: "page" (a whole run), "fragment" (a fragment's
    alone) or "replaced" (by another run before it drew anything), read from the server's messages (protobuf
    ForwardMsgs on the websocket)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    ended: list[str] = []
    names = {
        ForwardMsg.FINISHED_SUCCESSFULLY: "page",
        ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY: "fragment",
        ForwardMsg.FINISHED_EARLY_FOR_RERUN: "replaced",  # e.g. by the rerun a callback asks for (st.rerun("preview"))
    }

    def received(payload) -> None:
        if isinstance(payload, str):
            return
        msg = ForwardMsg.FromString(payload)
        if msg.WhichOneof("type") == "script_finished":
            ended.append(names.get(msg.script_finished, str(msg.script_finished)))

    page.on("websocket", lambda socket: socket.on("framereceived", received))
    page.reload()  # the websocket opened after the listener: every message seen
    settle(page)
    go_to(page, "Buckets")
    return ended


def previewed(page) -> int:
    """How many rollouts the preview pages through (its "page 1 of N · X rollouts" line)."""
    found = PAGE_LINE.search(app_text(page))
    assert found, f"no preview page line: {app_text(page)[-800:]}"
    return int(found.group(2).replace(",", ""))


def test_a_drag_reruns_the_buckets_then_the_preview_never_the_whole_page(page, runs):
    expect(page.locator(CHART)).to_be_visible()
    before = sizes(page)
    name = next(iter(before))  # the bucket previewed at first: the easiest
    assert previewed(page) == before[name], (name, before)
    runs.clear()

    drag_line(page, 1, -200)  # the upper line, leftwards: the easiest bucket grows
    wait_until(lambda: sizes(page) not in ({}, before), message=lambda: f"sizes never changed: {sizes(page)}")
    after = sizes(page)
    assert after[name] != before[name], (before, after)
    wait_until(
        lambda: PAGE_LINE.search(app_text(page)) and previewed(page) == after[name],
        message=lambda: f"the preview still pages through {previewed(page)} rollouts, the bucket has {after[name]}",
    )
    settle(page)
    # The buckets' fragment; then the chart's request for the preview, whose callback replaces that run by the preview's
    # fragment alone.
    assert runs == ["fragment", "replaced", "fragment"], f"a drag ran {runs}: wanted two fragments, never the page"
    assert_no_error_shown(page, "Buckets after a drag")

    runs.clear()  # the preview's own widgets rerun the preview alone
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text(re.compile(r"page 2 of \d+"))).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    assert runs == ["fragment"], runs


@pytest.mark.parametrize(
    ("chart", "prefix", "name"),
    [
        (CHART, "threshold", "mean_reward-thresholds"),
        ('svg[data-testid="bucket-sizes"]', "sizes", "mean_reward-bucket-sizes"),
    ],
)
@pytest.mark.parametrize("kind", ["svg", "png"])
def test_each_svg_chart_downloads_as_a_file(page, tmp_path, chart, prefix, name, kind):
    expect(page.locator(chart)).to_be_visible()
    button = page.get_by_test_id(f"{prefix}-download-{kind}")
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        button.click()
    assert download.value.suggested_filename == f"{name}.{kind}"
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    body = saved.read_bytes()
    if kind == "png":
        assert body.startswith(b"\x89PNG\r\n\x1a\n") and len(body) > 2000, body[:16]
    else:
        text = body.decode()
        assert text.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in text, text[:200]
        assert ("threshold-line-0" if prefix == "threshold" else 'class="bs-bar"') in text
        assert "fill:" in text  # styles inlined: it looks the same opened anywhere
