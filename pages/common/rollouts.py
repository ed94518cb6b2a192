"""A few rollouts as people read them: the prompt, then each response with its score; found by a search, sorted by
a metric or at random, a page at a time (the Buckets and Compare previews)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import streamlit as st

import bucketing
from bucketing.metrics import METRICS
from bucketing.preview import Rollout, ordered, truth_of
from bucketing.search import Found, Query, search
from bucketing.wording import counted
from pages.common.shared import bound, number, rollouts, shown, store

PREVIEW_CHARS = 600
PAGE_SIZE = 5
ORDERS = {"random": "Random (seeded)", "hardest": "Hardest first", "easiest": "Easiest first"}


def browse(
    data: bucketing.Dataset,
    members: np.ndarray,
    metrics: dict[str, np.ndarray],
    sort_by: str,
    where: str,
    everywhere: str,
    full: bool,
    label: Callable[[int], str] | None = None,
) -> None:
    """The preview of ``members`` (rollout indices, ascending; ``where`` names them: "bucket `easy`"): a search
    (in them, or in all rollouts: ``everywhere`` names those), the order (by ``sort_by``'s values or random with
    a seed) and a page of PAGE_SIZE rollouts. ``label(row)`` starts a rollout's title (its bucket)."""
    s = st.session_state
    top = st.columns([4, 1, 1, 1])
    text = top[0].text_input(
        "Search prompts and responses",
        placeholder="a text, or a regular expression",
        max_chars=1000,
        **bound("preview_query"),
    )
    regex = top[1].toggle("Regex", help="A regular expression (Python's syntax)", **bound("preview_regex"))
    case = top[2].toggle("Match case", **bound("preview_case"))
    everything = top[3].toggle(f"In {everywhere}", **bound("preview_all"))
    second = st.columns([2, 1, 3])
    order = second[0].selectbox(
        "Order", list(ORDERS), format_func=ORDERS.get, help=f"Hardest / easiest by {sort_by}", **bound("preview_order")
    )
    seed = 0
    if order == "random":
        seed = int(second[1].number_input("Seed", min_value=0, max_value=2**32 - 1, step=1, **bound("preview_seed")))
    second[2].text_input(
        "Ground truth field",
        placeholder="detected: gts, reward_model.ground_truth, answer, label, …",
        max_chars=300,
        help="A field of the rollout's line, as a dotted path (reward_model.ground_truth); empty: the first of "
        "gts, reward_model.ground_truth, answer, label, ground_truth, target that the line has.",
        **bound("truth_field"),
    )

    rows = np.arange(len(data.scores)) if everything else np.asarray(members, dtype=np.int64)
    scope = everywhere if everything else where
    if text:
        found = found_rows(data, Query(text, regex=regex, ignore_case=not case), None if everything else rows)
        if found is None:
            return
        rows = found.rows
        st.caption(f"{counted(len(rows), 'rollout', ',')} in {shown(scope)} match{'es' if len(rows) == 1 else ''}.")
    elif not len(rows):
        st.caption(f"There are no rollouts in {shown(scope)}.")
        return
    if not len(rows):
        return
    values = metrics.get(sort_by)
    rows = ordered(rows, order, values, METRICS[sort_by].higher_is_easier, seed)

    pages = -(-len(rows) // PAGE_SIZE)
    context = (where, everything, text, regex, case, order, seed, len(rows))
    if s["preview_page_of"] != context:  # another list: back to its first page
        s["preview_page"], s["preview_page_of"] = 0, context
    s["preview_page"] = min(max(int(s["preview_page"]), 0), pages - 1)
    current = s["preview_page"]
    if pages > 1:
        nav = st.columns([1, 2, 1, 4])
        nav[0].button("Previous", icon=":material/chevron_left:", on_click=turn, args=(-1,), disabled=current == 0)
        nav[1].markdown(f"page **{current + 1}** of **{pages}** · {counted(len(rows), 'rollout', ',')}")
        nav[2].button("Next", icon=":material/chevron_right:", on_click=turn, args=(1,), disabled=current == pages - 1)
    show_rollouts(data, rows[current * PAGE_SIZE : (current + 1) * PAGE_SIZE], metrics, full, label)


def turn(step: int) -> None:
    st.session_state["preview_page"] += step


def found_rows(data: bucketing.Dataset, query: Query, rows: np.ndarray | None) -> Found | None:
    """The engine's search, kept per data, query and rollouts searched; a message and None when it fails."""
    scope = None if rows is None else hashlib.blake2b(np.ascontiguousarray(rows).tobytes(), digest_size=16).digest()
    key = ("search", st.session_state["source"], query, scope)
    try:
        with st.spinner("Searching…"):
            found = store().get(key, lambda: _search(data, query, rows), size=16)
    except bucketing.BucketingError as error:
        st.error(shown(error))
        return None
    if found.stopped:
        st.warning(shown(found.stopped))
    return found


def _search(data: bucketing.Dataset, query: Query, rows: np.ndarray | None) -> Found:
    try:
        return search(data, query, rows)
    except OSError as error:  # an input removed since the load
        raise bucketing.BucketingError(f"the input can't be read any more ({error.strerror}); load it again") from None


def show_rollouts(
    data: bucketing.Dataset,
    rows: np.ndarray,
    metrics: dict[str, np.ndarray],
    full: bool,
    label: Callable[[int], str] | None = None,
) -> None:
    """One expander per rollout, titled with where it is and its value of each metric in ``metrics``."""
    try:
        read = rollouts(data, rows)
    except bucketing.BucketingError as error:  # an input shortened or removed since the load
        st.error(f"The preview can't be read: {shown(error)}")
        return
    field = st.session_state["truth_field"].strip()
    for rollout, row in zip(read, rows):
        values = " · ".join(f"{metric} = {number(column[row])}" for metric, column in metrics.items())
        name = label(int(row)) if label else ""
        start = f"{shown(name)} · " if name else ""
        with st.expander(f"{start}{shown(rollout.where)} · {values} · {len(rollout.scores)} responses", expanded=False):
            show_rollout(rollout, field, full)


def show_rollout(rollout: Rollout, field: str, full: bool) -> None:
    """Group fields, ground truth, the prompt (message by message when it is a chat), each response and its score;
    every text from the data as it is (st.text: never markdown)."""
    if rollout.group:
        st.caption(
            "Grouped by "
            + " · ".join(
                f"{shown(name)} = {shown(clip(_value(value), False))}" for name, value in rollout.group.items()
            )
        )
    truth = truth_of(rollout, field)
    if truth:
        st.markdown(f"**Ground truth** · {shown(truth[0])}")
        st.text(clip(truth[1], full))
    elif field:
        st.caption(f"No field {shown(field)} in this rollout's line.")
    if rollout.prompt is None:
        st.code(clip(rollout.raw, full), language="json", wrap_lines=True)
        return
    st.markdown("**Prompt**")
    if rollout.messages:  # a chat: message by message, each under its role
        for role, content in rollout.messages:
            st.markdown(f"*{shown(role) or '(no role)'}*")
            st.text(clip(content, full))
    else:
        st.text(clip(rollout.prompt, full))
    responses = rollout.responses or []
    for i, score in enumerate(rollout.scores):
        st.markdown(f"**Response {i + 1}** · score `{score:g}`")
        st.text(clip(responses[i] if i < len(responses) else "", full))


def _value(value: object) -> str:
    """A group field's value as compact JSON text (a string as it is)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def clip(text: str, full: bool) -> str:
    return (
        text
        if full or len(text) <= PREVIEW_CHARS
        else text[:PREVIEW_CHARS] + f" … (+{len(text) - PREVIEW_CHARS:,} characters)"
    )
