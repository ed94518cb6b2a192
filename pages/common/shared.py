"""What every page shares: the loaded data, the settings, the current plan.

State lives in ``st.session_state`` under plain (non-widget) keys, every one declared
in DEFAULTS below, so it survives page switches; widgets are seeded from it and write
back to it (their own keys are declared in WIDGET_KEYS).
Loaded data sits in one process-wide store (``st.cache_resource``), keyed by
the input's path, score path and every file's size and mtime, and is shared
read-only between sessions.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors
import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

import bucketing
from bucketing.metrics import METRICS
from bucketing.preview import Rollout, preview
from bucketing.roots import allowed_roots, resolve_allowed, start_folder
from bucketing.sources import display, find_inputs, leave_out
from bucketing.steps import Changes, RunComparison, StepBins, StepData, changes, compare_runs, load_steps, per_step
from bucketing.summary import Comparison, Histogram, compare, histogram
from bucketing.wording import counted

from .text import literal

# Every key the pages keep in st.session_state, with its default: init_state() puts any that is missing in place at
# the start of every run, so a page reads them plainly (s["cuts_version"]) and no default is written twice.
DEFAULTS: dict[str, Any] = {
    # the data
    "source": None,  # the loaded data (a Source); None until a page first needs data, then the bundled sample
    "upload_dir": None,  # this session's folder of uploaded files (a str), made on its first upload
    "scores_text": "",  # Data: what "Scores at", "Group lines by" and "Leave out files" held at the last load
    "group_text": "",
    "exclude_text": "",
    # settings, shared by the pages (a widget drawn with bound() has the key "w_" + the setting's)
    "k": 1,
    "pass_threshold": 0.5,
    "metric": "mean_reward",
    "mode": "count",  # or "thresholds", "learnability"
    "num_buckets": 3,
    "ties": "keep",
    "thresholds": {},  # metric -> list of cut values
    "names": {},  # plan shape -> names, easiest first
    "out_dir": "bucketed",
    "prefix": "",
    "order": "input",
    "cumulative": False,
    "split": False,
    "val_fraction": 0.1,
    "seed": 0,
    "train_set": "",  # Export: the training-set source typed (a file or folder under the allowed roots); "" for none
    "join_rollout": "",  # Export: the rollout field that names a source row (extra_info.index)
    "join_source": "",  # Export: the source's field, when it is named otherwise ("": the same)
    "annotate": "",  # Export: the field --annotate adds to every matched source row ("": none)
    "recipes": [],  # Export: the trainers whose recipe the export writes (bucketing.recipes.TRAINERS)
    "compare_a": "mean_reward",
    "compare_b": "variance",
    "compare_count": None,  # None: the bucket count of the Buckets page
    "step_field": "",  # Trends: the field that holds a line's step; "": the step in each file's name
    "trend_metric": "success_rate",  # Trends: the metric per step
    "step_window": 1,  # Trends: steps pooled into one row
    "trend_shown": None,  # Trends: the steps the charts show, (first, last); None: all of the run's
    "trend_from": None,  # Trends: the early step range, (first, last); None: the first third of the steps
    "trend_to": None,  # Trends: the late step range; None: the last third
    "trend_out": "changes",  # Trends: the folder the changes are written to
    "other_run": "",  # Trends: another run's folder to compare this one with ("": none)
    # the previews (Buckets, Compare): search, order, page, ground truth
    "preview_query": "",  # the text (or regular expression) searched for in prompts and responses; "": no search
    "preview_regex": False,  # the query is a regular expression
    "preview_case": False,  # match case
    "preview_all": False,  # search (and list) every rollout, not only the bucket's or the cell's
    "preview_order": "random",  # or "hardest", "easiest" (by the page's metric)
    "preview_seed": 0,  # the random order's seed (0: the order the preview always had)
    "truth_field": "",  # the ground truth's field, a dotted path; "": detected
    "preview_page": 0,  # the page of the preview shown, from 0
    "preview_page_of": None,  # what that page is of (bucket, search, order): another list starts at its first page
    # what a page keeps between its runs
    "drag_seq": None,  # Buckets: the sequence number of the last drag taken in (the chart repeats it)
    "preview_plan": None,  # Buckets: the plan the preview shows (plan_key), None when it shows none
    "metric_before_preset": None,  # Buckets: the metric chosen before the learnability preset, back when it is left
    "cuts_version": 0,  # Buckets: counts threshold changes; in the keys of the threshold inputs, to show new values
    "names_table": 0,  # Buckets: counts refused renames and new thresholds; in the names table's key, to redraw it
    "compare_clicked": None,  # Compare: the last cell clicked, (metric_a, metric_b, count, index): a new click counts
    "trend_clicked": None,  # Trends: the last cell clicked, (from range, to range, index): a new click counts
    "last_export": None,  # Export: the last export's folder, manifest, command and recipes, shown until the next one
    "url_applied": False,  # the view in the link this session was opened with has been taken (view_url)
}
# Widget keys: the widget's own state, which Streamlit drops after a run on a page that doesn't draw the widget;
# so no defaults here: a page seeds a widget's key before drawing it where it needs to.
WIDGET_KEYS = {
    "w_folder": "Data: the folder typed (seeded with the loaded folder, or the bundled sample)",
    "w_scores": "Data: Scores at (seeded from scores_text)",
    "w_group": "Data: Group lines by (seeded from group_text)",
    "w_exclude": "Data: Leave out files (seeded from exclude_text)",
    "w_mode": "Buckets: the mode radio, bound to mode",
    "threshold_drag": "Buckets: what the drag chart sent, {'thresholds': {'values': [...], 'seq': n}}",
    "preview_bucket": "Buckets: the bucket previewed",
    "preview_full": "Buckets: show full texts",
    "compare_cells": "Compare: the cell clicked on the chart",
    "w_compare_row": "Compare: the bucket by the row metric whose rollouts are shown",
    "w_compare_col": "Compare: the bucket by the column metric whose rollouts are shown",
    "compare_full": "Compare: show full texts",
    "confirm_overwrite": "Export: replace the files already there",
    "buckets": "Buckets: the fragment that a drag or a setting reruns alone (st.fragment's key)",
    "preview": "Buckets: the preview's fragment, rerun alone once the chart is drawn (st.rerun('preview'))",
    "sizes": "Buckets: the sizes chart (an inline SVG element)",
    "trend_cells": "Trends: the cell clicked on the changes matrix",
    "w_trend_cell": "Trends: the cell whose rollouts are shown",
    "trend_overwrite": "Trends: replace the files already there",
    "w_trend_shown": "Trends: the charts' step range slider (drawn with trend_shown as its value)",
    "w_trend_from": "Trends: the early step range's slider (drawn with trend_from as its value)",
    "w_trend_to": "Trends: the late step range's slider (drawn with trend_to as its value)",
}
# Widget keys made on the fly, by their prefix.
WIDGET_PREFIXES = {
    "w_cut_": "Buckets: a threshold's number input, w_cut_{cuts_version}_{i}",
    "rm_": "Buckets: a threshold's Remove button, rm_{cuts_version}_{i}",
    "names_": "Buckets: the names table, names_{metric}_{mode}_{count} (+ _{names_table} once redrawn)",
}
STORE_SIZE = 3  # datasets kept in memory at once (all sessions together)
NAME_MAX, PATH_MAX = 255, 4096  # Linux's limits for one name and for a whole path, in bytes
UPLOADED = "the uploaded files"  # how messages name the session's upload folder (never its temporary path)


@dataclass(frozen=True)
class Source:
    path: Path
    scores: str | None  # None: the layout is detected
    fingerprint: tuple  # (rel, size, mtime) of every input file
    group_by: str | None = None  # e.g. "step,input"; None: detected (or one line = one rollout with scores)
    exclude: tuple[str, ...] = ()  # globs of files left out, as --exclude takes them


class _Store:
    """A small LRU of loaded datasets and derived metric columns, shared by all sessions."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: tuple, make: Callable[[], Any], size: int = STORE_SIZE):
        """The value for ``key``, made once; keeps at most ``size`` values of the same kind (``key[0]``)."""
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()  # outside the lock: a long load must not block other sessions
        with self.lock:
            self.items[key] = value
            same_kind = [k for k in self.items if k[0] == key[0]]
            for oldest in same_kind[: max(len(same_kind) - size, 0)]:
                del self.items[oldest]
        return value


@st.cache_resource
def store() -> _Store:
    return _Store()


def open_page(title: str, caption: str) -> bucketing.Dataset:
    """Start a page that needs the data: header, then the session's data (the page stops without it)."""
    page_header(title, caption)
    data = ensure_data()
    if data is None:
        st.stop()
    return data


def page_header(title: str, caption: str) -> None:
    start_page()
    st.title(title)
    st.caption(caption)


def start_page() -> None:
    """First call of every page: set up the state, even when app.py did not run first.

    A folder named pages/ beside app.py makes Streamlit start in its old multipage mode, where a
    page opened first on a fresh server (a bookmark, a reload) runs alone, without app.py; the
    mode ends for good once app.py's st.navigation runs. Ending it here sends the next run
    through app.py (a rerun now would drop the click that started this one).
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        configure_page()  # app.py did not run: give this one run the app's look
        init_state()
        from . import view_url  # (it imports this module)

        view_url.apply_once()  # ... and take a shared link's view, as app.py would have
    init_state()


ICON = Path(__file__).with_name("icon.svg")  # served by this server: a material icon would come from Google's font host


def configure_page() -> None:
    st.set_page_config(page_title="Rollout Bucketer", page_icon=str(ICON), layout="wide")


def init_state() -> None:
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if isinstance(value, (dict, list)) else value


def bind(widget_key: str, state_key: str) -> None:
    """Set a widget from its state key before it is drawn; pass ``save`` as its on_change to write back.

    The state key is the truth: widget state is dropped on pages that don't draw the widget, and code
    (a drag, a button) may change the state key between runs.
    """
    st.session_state[widget_key] = st.session_state[state_key]


def save(widget_key: str, state_key: str) -> None:
    st.session_state[state_key] = st.session_state[widget_key]


def bound(state_key: str) -> dict:
    """A widget's arguments for a setting kept in ``state_key`` (its widget key is ``w_`` + it): bound before it
    is drawn (see :func:`bind`), saved back on change. ``st.slider(..., **bound("k"))``."""
    widget_key = f"w_{state_key}"
    bind(widget_key, state_key)
    return {"key": widget_key, "on_change": save, "args": (widget_key, state_key)}


def metric_label(name: str) -> str:
    """How a metric is offered in a list: its name and which way is easier."""
    return f"{name} ({METRICS[name].direction})"


# --- folders -------------------------------------------------------------------------------


def upload_dir() -> Path:
    """This session's own folder for uploaded files, made on its first upload; removed when the server stops."""
    if st.session_state.get("upload_dir") is None:  # (.get: also called outside a page's run)
        folder = tempfile.mkdtemp(prefix="bucketing-upload-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        st.session_state["upload_dir"] = folder
    return Path(st.session_state["upload_dir"])


def is_upload(path: Path) -> bool:
    """Whether ``path`` is this session's folder of uploaded files."""
    uploads = st.session_state.get("upload_dir")
    return uploads is not None and Path(path) in (Path(uploads), Path(uploads).resolve())


def data_caption() -> str:
    """The sidebar's line about the loaded data ("Data: rollouts · 12 files"), as literal text; "" before a load."""
    source = st.session_state["source"]
    return f"Data: {literal(source_name(source))} · {counted(len(source.fingerprint), 'file')}" if source else ""


def source_name(source: Source) -> str:
    """How a page names the loaded data: the folder's name, or "the uploaded files"."""
    return UPLOADED if is_upload(source.path) else source.path.name


def shown(message: object) -> str:
    """An engine message (or a name) as markdown that shows it literally, the upload folder as "the uploaded files"."""
    text = str(message)
    uploads = st.session_state.get("upload_dir")
    if uploads:
        for folder in {str(Path(uploads).resolve()), str(uploads)}:
            text = text.replace(folder, UPLOADED)
    return literal(text)


def roots() -> list[Path]:
    uploads = st.session_state.get("upload_dir")  # only a session that uploaded has one
    return allowed_roots(extra=[Path(uploads)] if uploads else [])


def allowed(text: str) -> Path:
    """The real path of a folder the user typed, if the app may use it (else BucketingError)."""
    path = resolve_allowed(text, roots())
    check_length(path, text)
    return path


def check_length(path: Path, typed: str) -> None:
    """Refuse a path the file system can't hold (a name over NAME_MAX bytes, the whole over PATH_MAX).

    Checked here, on the text, because the system's own error comes late and in many forms: a
    missing folder on the way hides it, and ``Path.exists`` raises it rather than saying False.
    """
    encoded = os.fsencode(path)
    if len(encoded) >= PATH_MAX or any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        shown_text = typed.strip()
        shown_text = shown_text if len(shown_text) <= 60 else shown_text[:60] + "…"
        raise bucketing.BucketingError(
            f"{display(shown_text)} is too long a path (a name may have at most {NAME_MAX} "
            f"bytes, a path {PATH_MAX - 1}); choose a shorter one"
        )


def start_text() -> str:
    """The folder the app opens on (the bundled sample, or ``bucketing app DIR``'s), relative to the working
    directory where possible."""
    folder = start_folder()
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


# --- data ----------------------------------------------------------------------------------


class SessionGone(Exception):
    """This session's browser went away: its work stops, as nobody is left to see the result."""


def session_alive(session_id: str | None) -> bool:
    """Whether the session is still connected to a browser (True where no server runs, e.g. a bare script)."""
    if session_id is None or not Runtime.exists():
        return True
    return bool(Runtime.instance().is_active_session(session_id))


def this_session() -> str | None:
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx else None


def stop_when_gone(progress: Callable[[int, int], None] | None = None) -> Callable[[int, int], None]:
    """A progress callback that raises :class:`SessionGone` once this session's browser has gone.

    A load or export runs on the session's script thread to its end even after the tab closed (a big
    .gz for minutes); the engine reports progress between pieces of work, and that is where it stops.
    """
    session = this_session()  # now, on the script thread: the engine may report from elsewhere

    def report(done: int, total: int) -> None:
        if not session_alive(session):
            raise SessionGone()
        if progress:
            progress(done, total)

    return report


def open_source(path: Path, scores: str | None, group_by: str | None = None, exclude: tuple[str, ...] = ()) -> Source:
    found, _ = find_inputs(path, roots())  # a link to a file outside the allowed folders is passed over
    files, _ = leave_out(found, exclude)  # (an excluded file's change doesn't make the data stale)
    return Source(
        path, scores or None, tuple((f.rel, f.size, f.mtime_ns) for f in files), group_by or None, tuple(exclude)
    )


def load(source: Source, progress: Callable[[int, int], None] | None = None) -> bucketing.Dataset:
    return store().get(
        ("dataset", source),
        lambda: bucketing.load(  # roots: no file through a link leading out
            source.path,
            scores=source.scores,
            group_by=source.group_by,
            progress=progress,
            roots=roots(),
            exclude=source.exclude,
            cache=True,  # a folder reopened after a restart, or grown by a step: only new or changed files read
        ),
    )


def step_data(source: Source, step_field: str) -> StepData:
    """The session's data again with one rollout per prompt and step (:func:`bucketing.steps.load_steps`), kept."""
    return store().get(
        ("steps", source, step_field),
        lambda: load_steps(
            source.path,
            step_field=step_field or None,
            scores=source.scores,
            group_by=source.group_by,
            roots=roots(),
            exclude=source.exclude,
            cache=True,
        ),
    )


def step_trends(source: Source, step_field: str, metric: str, window: int) -> tuple[list[dict], StepBins]:
    """Trends' rows and binned values of the session's run (a rerun of the page computes neither again)."""
    run, settings = step_data(source, step_field), params()
    return store().get(
        ("trends", source, step_field, metric, settings, window),
        lambda: per_step(run, metric, settings, window),
        size=8,
    )


def step_changes(source: Source, step_field: str, before: tuple[int, int], after: tuple[int, int]) -> Changes:
    """Trends' changes between two step ranges, kept (a click on a cell or a preview's page computes nothing)."""
    run, settings = step_data(source, step_field), params()
    return store().get(
        ("changes", source, step_field, before, after, settings), lambda: changes(run, before, after, settings), size=8
    )


def runs_compared(source: Source, other: Source, step_field: str) -> RunComparison:
    """The session's run against another, kept."""
    run, theirs, settings = step_data(source, step_field), step_data(other, step_field), params()
    return store().get(
        ("compared", source, other, step_field, settings), lambda: compare_runs(run, theirs, None, None, settings)
    )


def globs(text: str) -> tuple[str, ...]:
    """The exclude globs typed in a text area: one per line, blank lines dropped, spaces at the ends too."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def use_source(source: Source) -> None:
    st.session_state["source"] = source


def dataset() -> bucketing.Dataset | None:
    """The session's loaded data (loading it again, without progress, if the store let it go)."""
    source = st.session_state["source"]
    return load(source, stop_when_gone()) if source else None


def ensure_data() -> bucketing.Dataset | None:
    """The session's data; on a first visit, the start folder (the bundled sample, or ``bucketing app DIR``'s).

    Shows a message and returns None on failure."""
    if st.session_state["source"] is None:
        try:
            use_source(open_source(start_folder(), None))
        except bucketing.BucketingError as error:
            st.error(shown(error))
            return None
    try:
        return dataset()
    except SessionGone:
        st.stop()
    except bucketing.BucketingError as error:
        st.error(f"The data can't be read any more: {shown(error)}. Load it again on the Data page.")
        return None


def params() -> bucketing.Params:
    return bucketing.Params(k=int(st.session_state["k"]), pass_threshold=float(st.session_state["pass_threshold"]))


def table(data: bucketing.Dataset) -> pd.DataFrame:
    """The metric table of the session's data for the current params (shared, read-only)."""
    key = ("table", st.session_state["source"], params())
    return store().get(key, lambda: data.table(params()), size=6)


def column(data: bucketing.Dataset, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """A metric's values in row order, and sorted ascending."""

    def make():
        values = table(data)[metric].to_numpy()
        return values, np.sort(values)

    return store().get(("column", st.session_state["source"], params(), metric), make, size=16)


def bars(data: bucketing.Dataset, metric: str) -> Histogram:
    """A metric's histogram, made once per data, params and metric (a drag redraws it without recounting)."""
    key = ("bars", st.session_state["source"], params(), metric)
    return store().get(key, lambda: histogram(column(data, metric)[1]), size=16)


def rollouts(data: bucketing.Dataset, rows: np.ndarray) -> list[Rollout]:
    """Rollouts read back for a preview, kept: a drag reruns the page, and re-reading lines from a
    large .gz means decompressing up to them again."""
    key = ("preview", st.session_state["source"], data.layout, tuple(int(r) for r in rows))  # (Trends: by step)
    return store().get(key, lambda: _preview(data, rows), size=32)


def _preview(data: bucketing.Dataset, rows: np.ndarray) -> list[Rollout]:
    """The engine's preview; a file that went away since the load is a BucketingError like a shortened one."""
    try:
        return preview(data, rows)
    except OSError as error:
        where = f" {display(error.filename)}" if error.filename else ""
        raise bucketing.BucketingError(
            f"input{where} can't be read any more: {error.strerror}; load it again"
        ) from None


# --- the plan ------------------------------------------------------------------------------


def names_key() -> tuple:
    s = st.session_state
    if s["mode"] == "learnability":
        return (s["metric"], s["mode"], 3)
    count = s["num_buckets"] if s["mode"] == "count" else len(s["thresholds"].get(s["metric"], [])) + 1
    return (s["metric"], s["mode"], count)


def fresh_name(taken: list[str]) -> str:
    """``bucket_N`` with the smallest N no name in ``taken`` has (ignoring case, as file names)."""
    used = {name.lower() for name in taken}
    return next(f"bucket_{n}" for n in range(len(used) + 1) if f"bucket_{n}" not in used)


def carried_names(old: bucketing.Plan, new: bucketing.Plan, ordered: np.ndarray) -> list[str]:
    """Names for the buckets of ``new`` (easiest first) that keep those of ``old`` where its buckets still exist.

    Both plans cut the same metric, whose values sorted ascending are ``ordered``. As many buckets: each
    keeps the name at its place (a line moved). One cut added: the bucket it falls in is split, and the
    part with more rollouts keeps the name (the easier part when both hold as many). One cut removed:
    the two buckets beside it merge under the name of the one that held more rollouts (the easier one
    when both held as many). Otherwise a bucket keeps a name only where its range is unchanged. A bucket
    left without a name gets ``bucket_N`` with an N no other name has.
    """
    before, after = list(old.cuts), list(new.cuts)
    olds = sorted(old.buckets, key=lambda b: b.interval)
    news = sorted(new.buckets, key=lambda b: b.interval)
    added = [c for c in after if c not in before]
    removed = [c for c in before if c not in after]
    names: list[str | None]
    if len(news) == len(olds):
        names = [b.name for b in olds]
    elif len(news) == len(olds) + 1 and len(added) == 1 and not removed:
        split = after.index(added[0])  # old interval `split` is now new intervals `split` and `split + 1`
        sizes = np.diff(new.edges(ordered))
        keeper = max((split, split + 1), key=lambda i: (sizes[i], -news[i].rank))
        names = [b.name for b in olds]
        names.insert(split + (keeper == split), None)
    elif len(news) == len(olds) - 1 and len(removed) == 1 and not added:
        gone = before.index(removed[0])  # old intervals `gone` and `gone + 1` are now new interval `gone`
        sizes = np.diff(old.edges(ordered))
        keeper = max((gone, gone + 1), key=lambda i: (sizes[i], -olds[i].rank))
        names = [b.name for b in olds]
        names[gone : gone + 2] = [names[keeper]]
    else:
        kept = {(b.lower, b.upper): b.name for b in olds}
        names = [kept.get((b.lower, b.upper)) for b in news]
    easiest_first = [names[b.interval] for b in new.buckets]
    for i, name in enumerate(easiest_first):
        if name is None:
            easiest_first[i] = fresh_name([n for n in easiest_first if n])
    return easiest_first


def count_plan(data: bucketing.Dataset, metric: str, count: int) -> bucketing.Plan:
    """Equal-size buckets of one metric (the session's ties policy), made once per data and settings."""
    s = st.session_state
    key = ("count_plan", s["source"], params(), metric, count, s["ties"])
    return store().get(
        key,
        lambda: bucketing.percentile_plan(column(data, metric)[0], metric, count, ties=s["ties"], params=params()),
        size=16,
    )


def assigned(data: bucketing.Dataset, plan: bucketing.Plan) -> np.ndarray:
    """Each rollout's bucket under ``plan``, kept: a page reruns on every click, the plan mostly stays."""
    key = ("assigned", st.session_state["source"], plan)
    return store().get(key, lambda: plan.assign(column(data, plan.metric)[0]), size=8)


def comparison(data: bucketing.Dataset, metric_a: str, metric_b: str, count: int) -> Comparison:
    """The Compare page's numbers, worked out by the engine once per data, metrics and settings."""
    s = st.session_state
    key = ("comparison", s["source"], params(), metric_a, metric_b, count, s["ties"])
    return store().get(
        key,
        lambda: compare(
            column(data, metric_a)[0],
            column(data, metric_b)[0],
            count_plan(data, metric_a, count),
            count_plan(data, metric_b, count),
        ),
        size=4,
    )


def current_plan(data: bucketing.Dataset) -> bucketing.Plan:
    """The plan the Buckets page describes, built by the engine (raises BucketingError for bad settings)."""
    s = st.session_state
    if s["mode"] == "learnability":
        plan = bucketing.learnability_plan(params())
    elif s["mode"] == "thresholds" and s["thresholds"].get(s["metric"]):
        plan = bucketing.threshold_plan(s["metric"], s["thresholds"][s["metric"]], params=params())
    else:
        plan = count_plan(data, s["metric"], s["num_buckets"])
    names = s["names"].get(names_key())
    if not names and plan.mode == "thresholds" and not plan.preset:  # friendlier than the CLI's bucket_0..
        names = bucketing.default_names(len(plan.buckets))
    return plan.renamed(names) if names else plan


def plan_key(plan: bucketing.Plan) -> str:
    """A short name of ``plan`` on the session's data, the same for the same plan (within this server's process)."""
    return format(hash((st.session_state["source"], plan)) & 0xFFFF_FFFF_FFFF_FFFF, "016x")


def full_run() -> bool:
    """Whether this run is the whole page's (every fragment on it runs), not that of some fragments alone."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx is None or not ctx.fragment_ids_this_run


def bucket_colors(count: int) -> list[str]:
    """One colour per difficulty rank: green (easiest) to red (hardest)."""
    if count == 1:
        return ["#4c9f70"]
    return plotly.colors.sample_colorscale("RdYlGn", [1 - i / (count - 1) * 0.9 - 0.05 for i in range(count)])


def number(value: float) -> str:
    """Readable number: 0.75, 1.25, 3.3e-05."""
    return "–" if value is None or np.isnan(value) else f"{value:.4g}"
