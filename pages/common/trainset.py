"""The Export page's training set: the source checked against the allowed roots, matched to the rollouts once.

The match (:func:`bucketing.join.join`) reads every key of the source and the join field of every rollout's
first line: it is kept in the shared store per data, source files (path, size, mtime of each) and fields, so
that a rerun of the page (a click, a visit to another page and back) reads nothing again. A source that can't
be matched is kept too, as its one-line message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import streamlit as st

import bucketing
from bucketing.join import Join, check_join_flags, join
from bucketing.preview import read_lines
from bucketing.sources import find_inputs
from bucketing.trainset import FORMATS
from bucketing.wording import counted

from . import shared
from .text import literal

FIELD_LINES = 20  # the first lines whose fields are offered as join fields
FIELD_DEPTH = 3  # extra_info.index is two deep; deeper paths are typed
MAX_FIELDS = 40
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a key a field path names without quoting


def join_on(rollout_field: str, source_field: str) -> str:
    """``--join-on``'s value: the rollout field, and ``=SOURCE_FIELD`` when the source names it otherwise."""
    rollout_field, source_field = rollout_field.strip(), source_field.strip()
    return f"{rollout_field}={source_field}" if source_field and source_field != rollout_field else rollout_field


def source_path(text: str) -> Path:
    """The real path of the source typed, if the app may read it (else BucketingError), as the Data page checks."""
    return shared.allowed(text)


def matched(data: bucketing.Dataset, path: Path, on: str, annotate: str | None) -> Join:
    """The training set at ``path`` matched to the session's rollouts on ``on`` (BucketingError if it can't be)."""
    check_join_flags(str(path), on, annotate)
    files, _ = find_inputs(path, shared.roots(), tuple(FORMATS))  # stat only: what makes the match stale
    fingerprint = tuple((f.rel, f.size, f.mtime_ns) for f in files)
    key = ("join", st.session_state["source"], str(path), fingerprint, on)
    outcome = shared.store().get(key, lambda: _match(data, path, on), size=2)
    if isinstance(outcome, str):
        raise bucketing.BucketingError(outcome)
    return outcome


def _match(data: bucketing.Dataset, path: Path, on: str) -> Join | str:
    try:
        return join(data, str(path), on, roots=shared.roots())
    except bucketing.BucketingError as error:
        return str(error)
    except OSError as error:  # a file that went away, or can't be read, meanwhile
        return f"{path} can't be read: {error.strerror}"


def line_fields(data: bucketing.Dataset) -> list[str]:
    """The field paths (``extra_info.index``) seen in the data's first lines: what a join field can be."""
    key = ("line_fields", st.session_state["source"])
    return shared.store().get(key, lambda: _line_fields(data), size=4)


def _line_fields(data: bucketing.Dataset) -> list[str]:
    count = min(FIELD_LINES, len(data.line_columns["file_id"]))
    try:
        lines = read_lines(data, list(range(count)))
    except (OSError, bucketing.BucketingError):
        return []
    found: dict[str, None] = {}
    for line in lines:
        try:
            _paths(msgspec.json.decode(line), "", found)
        except (msgspec.DecodeError, RecursionError):
            continue
    return list(found)[:MAX_FIELDS]


def _paths(value: Any, prefix: str, found: dict[str, None], depth: int = 0) -> None:
    if not isinstance(value, dict) or depth == FIELD_DEPTH:
        return
    for name, item in value.items():
        if not isinstance(name, str) or not _PLAIN.fullmatch(name):
            continue
        path = prefix + name
        if isinstance(item, dict):
            _paths(item, path + ".", found, depth + 1)
        elif item is not None:
            found[path] = None


def show_match(found: Join, data: bucketing.Dataset) -> None:
    """The match rate, before anything is written: the engine's counts, then a few rollouts without a source row
    and keys several source rows hold (what ``--dry-run`` prints)."""
    counts = found.counts()
    rate = st.columns(4)
    rate[0].metric("Matched rollouts", f"{counts['matched_rollouts']:,} of {counts['rollouts']:,}")
    rate[1].metric("Matched source rows", f"{counts['matched_rows']:,} of {counts['source_rows']:,}")
    rate[2].metric("Unscored source rows", f"{counts['unscored_rows']:,}", help="No rollout has their key.")
    rate[3].metric(
        "Duplicate keys", f"{counts['duplicate_keys']:,}", help="Keys several source rows hold: each follows it."
    )
    st.caption(
        f"{found.source.format} source, {counted(len(found.source.files), 'file')}, joined on "
        f"{literal(found.rollout_field)} = {literal(found.source_field)}: "
        f"{_share(counts['matched_rollouts'], counts['rollouts'])} of the rollouts and "
        f"{_share(counts['matched_rows'], counts['source_rows'])} of the source rows matched."
    )
    for warning in found.source.warnings:
        st.warning(shared.shown(warning))
    if counts["unmatched_rollouts"]:
        _examples(
            f"{counted(counts['unmatched_rollouts'], 'rollout')} without a source row, e.g.:",
            found.unmatched_examples(data),
        )
    if counts["duplicate_keys"]:
        _examples(
            f"{counted(counts['duplicate_keys'], 'key')} held by several source rows (each follows it), e.g.:",
            found.duplicate_examples(),
        )


def _examples(title: str, examples: list[str]) -> None:
    st.markdown(title + "\n" + "".join(f"\n- {shared.shown(example)}" for example in examples))


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"
