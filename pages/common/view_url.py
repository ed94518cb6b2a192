"""The view in the URL's query parameters: a copied link opens the same data, metric and buckets.

``?folder=examples/rollouts&metric=variance&mode=thresholds&t=0.1,0.3&names=easy,mid,hard`` — every run writes
the current view there (a drag included), and a session's first run reads it back. A link is data from
anyone: each value is checked as if typed, and one that doesn't pass is left out with a message; a folder
outside the allowed roots is refused as it is when typed.
"""

from __future__ import annotations

import math

import streamlit as st

import bucketing
from bucketing.metrics import METRICS
from bucketing.plan import check_names

from . import shared

MODES = ("count", "thresholds", "learnability")
MAX_TEXT = 4096  # characters of one parameter read; a longer one is not a view this app wrote
MAX_K, MAX_COUNT, MAX_THRESHOLDS = 1024, 10, 99  # as the pages' own inputs allow


def current() -> dict[str, str]:
    """The session's view as query parameters (the folder only when it isn't the upload folder)."""
    s = st.session_state
    view: dict[str, str] = {}
    source = s["source"]
    if source and not shared.is_upload(source.path):
        view["folder"] = str(source.path)
        view.update({key: value for key, value in (("scores", source.scores), ("group", source.group_by)) if value})
    view.update(metric=s["metric"], mode=s["mode"])
    if s["k"] != 1:
        view["k"] = str(s["k"])
    if s["pass_threshold"] != 0.5:
        view["pass"] = repr(float(s["pass_threshold"]))
    if s["mode"] == "count":
        view.update(n=str(s["num_buckets"]), ties=s["ties"])
    cuts = s["thresholds"].get(s["metric"])
    if s["mode"] == "thresholds" and cuts:
        view["t"] = ",".join(repr(float(cut)) for cut in cuts)
    names = s["names"].get(shared.names_key())
    if names:
        view["names"] = ",".join(names)
    return view


def publish() -> None:
    """Write the current view into the URL, if it changed (the browser replaces the address: no new run)."""
    view = current()
    if {key: st.query_params.get(key) for key in st.query_params} != view:
        st.query_params.from_dict(view)


def apply_once() -> None:
    """On a session's first run, take the view from the URL: each value checked, a bad one said and left out."""
    s = st.session_state
    if s["url_applied"]:
        return
    s["url_applied"] = True
    problems = apply({key: st.query_params.get(key, "") for key in st.query_params})
    for problem in problems:
        st.warning(f"From the link: {shared.shown(problem)}")


def apply(params: dict[str, str]) -> list[str]:
    """Set the session's view from ``params``; the problems with values left out, in words."""
    s = st.session_state
    problems: list[str] = []

    def take(key: str, parse, check, what: str):
        text = params.get(key)
        if text is None:
            return None
        try:
            value = parse(text[:MAX_TEXT])
            if check(value):
                return value
        except (ValueError, OverflowError):
            pass
        problems.append(f"{key}={text[:60]!r} is not {what}; left out")
        return None

    if "folder" in params:
        try:
            path = shared.allowed(params["folder"][:MAX_TEXT])
            shared.use_source(shared.open_source(path, params.get("scores") or None, params.get("group") or None))
        except bucketing.BucketingError as error:
            problems.append(str(error))
    metric = take("metric", str, METRICS.__contains__, "a metric")
    if metric:
        s["metric"] = metric
    mode = take("mode", str, MODES.__contains__, "one of " + ", ".join(MODES))
    if mode:
        s["mode"] = mode
    k = take("k", int, lambda v: 1 <= v <= MAX_K, f"a whole number from 1 to {MAX_K}")
    if k is not None:
        s["k"] = k
    threshold = take("pass", float, math.isfinite, "a number")
    if threshold is not None:
        s["pass_threshold"] = threshold
    count = take("n", int, lambda v: 2 <= v <= MAX_COUNT, f"a bucket count from 2 to {MAX_COUNT}")
    if count is not None:
        s["num_buckets"] = count
    ties = take("ties", str, ("keep", "split").__contains__, "keep or split")
    if ties:
        s["ties"] = ties
    cuts = take(
        "t",
        lambda text: sorted({float(part) for part in text.split(",")}),
        lambda v: 0 < len(v) <= MAX_THRESHOLDS and all(map(math.isfinite, v)),
        "a list of thresholds",
    )
    if cuts:
        s["thresholds"] = {**s["thresholds"], s["metric"]: cuts}
    names = take("names", lambda text: text.split(","), _valid_names, "a list of bucket names")
    if names:
        key = shared.names_key()
        if len(names) == key[2]:
            s["names"] = {**s["names"], key: names}
        else:
            problems.append(f"names: {len(names)} names for {key[2]} buckets; left out")
    return problems


def _valid_names(names: list[str]) -> bool:
    try:
        check_names(names)
    except bucketing.BucketingError:
        return False
    return True
