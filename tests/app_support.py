"""AppTest helpers the app's test modules share: open the app, switch pages, load a folder, drag, read
what a page shows."""

from __future__ import annotations

import functools
import html
import os
import re

from streamlit.components.v2 import manifest_scanner
from streamlit.testing.v1 import AppTest

from bucketing.roots import ENV

from .conftest import ROOT

APP = str(ROOT / "app.py")

# Every AppTest scans the metadata of every installed package for Streamlit components: about 0.4 s, most of a
# short app test's time. The installed packages don't change during a run (and the app uses none): scan once.
manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def plain(markdown: str) -> str:
    """What a markdown body shows once its backslash escapes and character references are undone (names
    from the data are escaped by pages.common.text.literal)."""
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown))


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def load_folder(at: AppTest, folder, scores: str = "", group_by: str = "") -> AppTest:
    go(at, "data")
    at.text_input(key="w_folder").set_value(str(folder))
    at.text_input(key="w_scores").set_value(scores)
    at.text_input(key="w_group").set_value(group_by)
    at.button[0].click().run()  # the form's Load button
    assert not at.exception, at.exception
    return at


def bucket_rows(at: AppTest) -> list[dict]:
    return at.dataframe[0].value.to_dict("records")


def drag(at: AppTest, values: list[float], seq: int = 1) -> AppTest:
    """What the threshold chart sends when the user releases a dragged line."""
    at.session_state["threshold_drag"] = {"thresholds": {"values": values, "seq": seq}}
    at.run()
    assert not at.exception, at.exception
    return at


def open_app(monkeypatch, *extra_roots) -> AppTest:
    """The app on the bundled sample, run from the clone's root, with ``extra_roots`` allowed too."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(ENV, os.pathsep.join(str(root) for root in extra_roots))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    return at
