"""Load a directory of rollouts: files -> line index + scores, and the per-rollout metric table."""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing
import os
import signal
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .detect import detect_layout
from .errors import BadLineError, BucketingError, bad_line_text
from .layout import KEY_BYTES, Layout, parse_group_by
from .metrics import Params, Scores, compute_all, get_metric, k_exceeds_n
from .parquet_read import NOT_PARQUET, is_parquet
from .parquet_scan import scan_chunk
from .parse import NO_KEYS, NO_KINDS, ROW_FIELDS, Chunk, ChunkResult
from .scancache import cached_results, store_results
from .sources import (
    DEFAULT_MAX_LINE_BYTES,
    InputFile,
    display,
    find_inputs,
    is_uri,
    leave_out,
    line_start_at_or_after,
)

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported only where a DataFrame is asked for (the app, the library's table()): the
# command line never needs it, and importing it costs a quarter of a second.

PARALLEL_MIN_BYTES = 32 << 20  # below this, starting worker processes costs more than it saves
CHUNK_BYTES = 64 << 20  # large plain files are scanned in ranges of about this size

Progress = Callable[[int, int], None]  # (bytes done, bytes in all); (0, total) first, once the read can start


SKIPPED_FIELDS = ("file_id", "line", "offset", "length", "clean", "reason", "detail")
# The reason of every line of a file that is not JSONL at all (a pretty-printed document, a binary file): in a
# folder such a file is skipped whole and the run goes on; a single input file like it stops the run.
NOT_JSONL = "file is not JSONL"


@dataclass
class Dataset:
    """What a load found: the input files, its good lines, one row per rollout, every score, the skipped lines.

    A rollout is one line, or with a grouping layout all the lines of one group. The engine works
    on the numpy columns; ``lines``, ``rows``, ``skipped`` and ``table()`` are pandas views made
    on first use (the command line never needs pandas, and starts faster without it).
    """

    root: Path | str  # a str for a URI
    files: list[InputFile]
    line_columns: dict[str, np.ndarray]  # per good line: file_id, line, offset, length, n, clean, rollout
    rollout_columns: dict[str, np.ndarray]  # per rollout: its first line's columns, n = all its scores
    scores: Scores  # per rollout
    skipped_lines: list[tuple]  # per bad line, in input order: SKIPPED_FIELDS
    layout: Layout
    detected: bool  # the layout was guessed, not given
    file_lines: list[int]
    file_blank: list[int]
    warnings: list[str] = field(default_factory=list)
    keys: np.ndarray | None = None  # grouped: each rollout's group key, as two uint64 columns
    excluded: list[str] = field(default_factory=list)  # files left out by an exclude glob, relative to the input
    skipped_files: list[dict] = field(default_factory=list)  # files not JSONL at all: file, reason, detail, lines
    join_on: str = ""  # the rollout field the scan read join keys of (load(join_on=...)), "" for none
    join_keys: np.ndarray | None = None  # per rollout, of its first line: the join key, as two uint64 columns
    join_kinds: np.ndarray | None = None  # per rollout: the key's joinkey.KINDS code, 0 (NO_KEY) for none

    @property
    def score_path(self) -> str:
        return self.layout.scores

    @cached_property
    def lines(self) -> pd.DataFrame:
        """One row per good line (``line_columns``; ``clean``: followed by exactly "\\n")."""
        import pandas as pd

        return pd.DataFrame(self.line_columns)

    @cached_property
    def rows(self) -> pd.DataFrame:
        """One row per rollout (``rollout_columns``); ungrouped, the same frame as ``lines``."""
        import pandas as pd

        return self.lines if self.rollout_columns is self.line_columns else pd.DataFrame(self.rollout_columns)

    @cached_property
    def skipped(self) -> pd.DataFrame:
        """One row per bad line: SKIPPED_FIELDS."""
        import pandas as pd

        return pd.DataFrame(self.skipped_lines, columns=list(SKIPPED_FIELDS))

    def skipped_column(self, name: str) -> np.ndarray:
        """One numeric column of the bad lines (file_id, line, offset, length, clean)."""
        index = SKIPPED_FIELDS.index(name)
        return np.array([bad[index] for bad in self.skipped_lines], dtype=np.int64)

    def lines_per_rollout(self) -> np.ndarray:
        return np.bincount(self.line_columns["rollout"], minlength=len(self.scores))

    def lines_of(self, rollout: int) -> np.ndarray:
        """Indices into ``lines`` of one rollout's lines, in input order."""
        if not self.layout.grouped:
            return np.array([rollout])
        order, starts = self._lines_by_rollout
        return order[starts[rollout] : starts[rollout + 1]]

    @cached_property
    def _lines_by_rollout(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.line_columns["rollout"], kind="stable")
        return order, np.concatenate([[0], np.cumsum(self.lines_per_rollout())])

    def values(self, metric: str, params: Params = Params()) -> np.ndarray:
        """One metric's value per rollout."""
        return np.asarray(get_metric(metric).compute(self.scores, params), dtype=np.float64)

    def table(self, params: Params = Params()) -> pd.DataFrame:
        """One row per rollout: file, line, offset, length (of its first line), n, lines, and every metric.

        Grouped data also get ``group_key``: a 64-bit number equal for the lines of one group (one prompt);
        :func:`bucketing.preview.preview` reads a row's group field values back.
        """
        import pandas as pd

        names = file_labels(self.files)
        columns = self.rollout_columns
        table = pd.DataFrame(
            {
                "file": pd.Categorical.from_codes(columns["file_id"], categories=names),
                "line": columns["line"],
                "offset": columns["offset"],
                "length": columns["length"],
                "n": self.scores.counts,
                "lines": self.lines_per_rollout(),
            }
        )
        if (
            self.keys is not None
        ):  # which prompt: equal for the rollouts of one group (preview.preview shows its fields)
            table["group_key"] = self.keys[:, 0]
        for name, values in compute_all(self.scores, params).items():
            table[name] = values
        return table

    def where(self, file_id: int, line: int) -> str:
        return f"{display(self.files[file_id].rel)}:{line}"

    def k_exceeds_n(self, params: Params) -> int:
        return k_exceeds_n(self.scores, params)

    @property
    def totals(self) -> dict:
        return {
            "files": len(self.files),
            "lines": int(sum(self.file_lines)),
            "rollouts": len(self.scores),
            "rollout_lines": len(self.line_columns["rollout"]),
            "blank": int(sum(self.file_blank)),
            "skipped": len(self.skipped_lines),
        }

    @cached_property
    def skipped_summary(self) -> dict[str, dict]:
        """:meth:`skipped_reasons` with five examples each, counted once."""
        return self.skipped_reasons()

    def skipped_reasons(self, examples: int = 5) -> dict[str, dict]:
        """Per reason, most frequent first: count and up to ``examples`` "file:line: reason (detail)" strings,
        taken from as many files as there are (each file's first bad line, then each file's second, ...)."""
        counts: dict[str, int] = {}
        firsts: dict[str, dict[int, list[tuple]]] = {}  # per reason, per file: its first ``examples`` bad lines
        for file_id, line, _, _, _, reason, detail in self.skipped_lines:
            reason = str(reason)
            counts[reason] = counts.get(reason, 0) + 1
            of_file = firsts.setdefault(reason, {}).setdefault(file_id, [])
            if len(of_file) < examples:
                of_file.append((file_id, line, detail))
        return {
            reason: {
                "count": count,
                "examples": [
                    bad_line_text(self.where(file_id, line), reason, detail)
                    for file_id, line, detail in round_robin(firsts[reason], examples)
                ],
            }
            for reason, count in sorted(counts.items(), key=lambda item: -item[1])
        }

    def inputs(self) -> list[dict]:
        return [
            {"path": display(f.rel), "bytes": f.size, "lines": lines} for f, lines in zip(self.files, self.file_lines)
        ]


def round_robin(lists: dict[int, list], limit: int) -> list:
    """Up to ``limit`` items: the first of every list in turn, then the second of every list, ..."""
    taken: list = []
    depth = 0
    while len(taken) < limit and any(len(items) > depth for items in lists.values()):
        taken += [items[depth] for items in lists.values() if len(items) > depth][: limit - len(taken)]
        depth += 1
    return taken


def file_labels(files: list[InputFile]) -> list[str]:
    """Printable, distinct names of the files (two odd names can print alike; the second gets a " #2")."""
    labels: list[str] = []
    for file in files:
        label, number = display(file.rel), 1
        while label in labels:
            number += 1
            label = f"{display(file.rel)} #{number}"
        labels.append(label)
    return labels


def load(
    input_path: str | os.PathLike,
    *,
    scores: str | None = None,
    group_by: str | list[str] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    strict: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    roots: list[Path] | None = None,
    exclude: list[str] | tuple[str, ...] = (),
    join_on: str = "",
    layout: Layout | None = None,
    cache: bool = False,
) -> Dataset:
    """Read every input file under ``input_path`` once and index its lines and scores.

    ``scores`` is the score path (see :mod:`bucketing.scorepath`); ``group_by``
    names fields whose equal values make lines one rollout (``"input"``,
    ``"step,input"``).  Without ``scores`` the layout is detected from the first
    lines (see :mod:`bucketing.detect`).  Bad lines are skipped with a reason
    (``strict=True``: the first one raises :class:`BadLineError`).  Files are
    scanned in parallel when there is enough data (``workers``: default, one
    per core).  ``roots``: read only files whose real path lies in one of these folders (the app's
    allowed roots); others are passed over with a warning.  ``exclude``: globs of files to leave out,
    matched against the path relative to ``input_path`` (see :func:`bucketing.sources.excluded`).
    ``join_on``: a rollout field (``id``, ``extra_info.index``) whose join key the scan reads too, per rollout
    from its first line (``join_keys``, ``join_kinds``; see :mod:`bucketing.joinkey`), for a training-set join.
    ``layout``: a layout settled already (instead of ``scores`` and ``group_by``), e.g. a detected one changed.
    ``cache``: files unchanged since an earlier load with the cache are not read again (:mod:`bucketing.scancache`).

    In a folder, a file that is not JSONL at all (a pretty-printed document, a binary file) is
    skipped whole: every line of it under :data:`NOT_JSONL`, the file named in ``skipped_files``.
    A single input file like it raises :class:`BucketingError`.
    """
    reading = prepare_load(
        input_path,
        scores=scores,
        group_by=group_by,
        max_line_bytes=max_line_bytes,
        strict=strict,
        roots=roots,
        exclude=exclude,
        join_on=join_on,
        layout=layout,
    )
    return reading.finish(run_chunks(reading.chunks, workers, progress, strict, cache))


@dataclass
class Reading:
    """What a load will read, before reading it: the files, the layout, the chunks (any engine scans these)."""

    root: Path | str
    files: list[InputFile]
    warnings: list[str]
    layout: Layout
    detected: bool
    chunks: list[Chunk]
    strict: bool
    single_file: bool = False  # the input is one file, not a folder
    excluded: list[str] = field(default_factory=list)  # files left out by an exclude glob, relative to the input

    def finish(self, results: list[ChunkResult]) -> Dataset:
        """The dataset from the chunks' results (in chunk order), checked; files that are not JSONL skipped whole."""
        odd = {} if self.strict else not_jsonl_files(self.files, results)  # strict: their first bad line stops it
        broken = unreadable_files(self.files, results)  # parquet files pyarrow can't read: no line to stop at
        if broken and (self.strict or self.single_file):
            raise BucketingError(next(iter(broken.values())).message)
        odd.update(broken)
        if odd and self.single_file:
            raise BucketingError(next(iter(odd.values())).message)
        results = [skip_whole(r, odd[r.chunk.file_index]) if r.chunk.file_index in odd else r for r in results]
        dataset = assemble(self.root, self.files, results, self.layout, self.detected, self.warnings)
        dataset.excluded = self.excluded
        dataset.skipped_files = [bad.record(results) for bad in odd.values()]
        check_dataset(dataset, list(odd.values()), self.strict)
        return dataset


def prepare_load(
    input_path: str | os.PathLike,
    *,
    scores: str | None = None,
    group_by=None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    strict: bool = False,
    roots: list[Path] | None = None,
    exclude: list[str] | tuple[str, ...] = (),
    join_on: str = "",
    layout: Layout | None = None,
) -> Reading:
    """Find the files, leave out the excluded ones, settle the layout (given, or detected from the first lines)
    and cut the chunks."""
    found, warnings = find_inputs(input_path, roots)
    files, left_out = leave_out(found, exclude)
    if not files:
        why = f" (all {len(left_out)} found are left out by the exclude globs)" if left_out else ""
        raise BucketingError(f"no *.jsonl, *.jsonl.gz, *.jsonl.zst or *.parquet files under {display(input_path)}{why}")
    # Scores named by the user: booleans there count as 1/0.
    detected = layout is None and scores is None
    if layout is None:
        layout = (
            Layout.parse(scores, group_by, booleans=True) if scores else detect_layout(files, parse_group_by(group_by))
        )
    root = input_path if is_uri(input_path) else Path(input_path)
    chunks = make_chunks(files, layout, max_line_bytes, strict, join_on)
    return Reading(
        root,
        files,
        warnings,
        layout,
        detected,
        chunks,
        strict,
        single_file=one_file(input_path, found),
        excluded=[display(file.rel) for file in left_out],
    )


def one_file(input_path: str | os.PathLike, files: list[InputFile]) -> bool:
    """Whether the input named one file rather than a folder (its one input file is the input itself)."""
    if len(files) != 1:
        return False
    return files[0].uri == input_path if is_uri(input_path) else files[0].path == Path(input_path)


def make_chunks(
    files: list[InputFile], layout: Layout, max_line_bytes: int, strict: bool, join_on: str = ""
) -> list[Chunk]:
    """One chunk per file; plain files larger than CHUNK_BYTES are cut at line starts."""
    chunks = []
    for index, file in enumerate(files):
        starts = [0]
        if file.compression is None and not is_parquet(file):  # a parquet file is one chunk, read by row groups
            for nominal in range(CHUNK_BYTES, file.size, CHUNK_BYTES):
                start = line_start_at_or_after(file, nominal)
                if starts[-1] < start < file.size:
                    starts.append(start)
        stops: list[int | None] = [*starts[1:], None]
        chunks += [Chunk(file, index, layout, a, b, max_line_bytes, strict, join_on) for a, b in zip(starts, stops)]
    return chunks


def run_chunks(
    chunks: list[Chunk], workers: int | None, progress: Progress | None, strict: bool, cache: bool = False
) -> list[ChunkResult]:
    """Scan chunks in order (in worker processes when worthwhile); stop early under strict. ``cache``: take the
    results of unchanged files from the scan cache (:mod:`bucketing.scancache`), and keep the new ones there."""
    known, states = cached_results(chunks) if cache else ({}, {})
    todo = [i for i in range(len(chunks)) if i not in known]
    started_ns, to_store = time.time_ns(), []
    sizes = [c.size for c in chunks]
    total, done = sum(sizes), sum(sizes[i] for i in known)
    if workers is None:
        workers = (os.cpu_count() or 1) if total - done >= PARALLEL_MIN_BYTES else 1
    workers = max(1, min(workers, len(todo)))
    results: list[ChunkResult] = []
    outcomes: Iterator[ChunkResult]
    if progress:
        progress(done, total)
    if workers == 1:
        outcomes = (scan_chunk(chunks[i]) for i in todo)
        pool = None
    else:
        pool = ProcessPoolExecutor(
            workers, mp_context=_process_context(), initializer=_start_worker, initargs=(os.getpid(),)
        )
        futures = [pool.submit(scan_chunk, chunks[i]) for i in todo]
        outcomes = (future.result() for future in futures)
    try:
        scanned = iter(outcomes)
        for i in range(len(chunks)):
            if i in known:
                result = known[i]
            else:
                result = next(scanned)
                done += sizes[i]
                if i in states:
                    to_store.append((result, states[i]))
            results.append(result)
            if progress:
                progress(done, total)
            if strict and result.stopped:
                break
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    if to_store:
        store_results(to_store, started_ns)
    return results


def _start_worker(parent: int) -> None:
    """Workers ignore Ctrl-C (the parent stops them, and says so once) and die with their parent.

    Without the second part a killed parent would leave its workers waiting forever on a queue
    they themselves hold open.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _process_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe (one thread: the CLI, scripts), spawn inside a threaded server like the app."""
    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")


def assemble(
    root: Path | str,
    files: list[InputFile],
    results: list[ChunkResult],
    layout: Layout,
    detected: bool,
    warnings: list[str],
) -> Dataset:
    """Join the chunks' results into one dataset, with line numbers counted per file and lines grouped."""
    file_lines = [0] * len(files)
    file_blank = [0] * len(files)
    parts, skipped = [], []
    for result in results:
        index = result.chunk.file_index
        first_line = file_lines[index]
        file_lines[index] += result.lines
        file_blank[index] += result.blank
        fields = np.frombuffer(result.rows, dtype=np.int64).reshape(-1, len(ROW_FIELDS))
        part = dict(zip(ROW_FIELDS, fields.T))
        part["line"] = part["line"] + first_line
        part["file_id"] = np.full(len(fields), index, dtype=np.int32)
        parts.append(part)
        skipped += [(index, line + first_line, *rest) for line, *rest in result.skipped]
    columns = {key: np.concatenate([p[key] for p in parts]) for key in ("file_id", "line", "offset", "length", "n")}
    columns["clean"] = np.concatenate([p["clean"] for p in parts]).astype(bool)
    flat = np.concatenate([np.frombuffer(r.scores, dtype=np.float64) for r in results])
    count = len(columns["n"])
    keys = None
    firsts = None
    if layout.grouped:
        all_keys = b"".join(r.keys for r in results)
        rollout, firsts = group_lines(all_keys, count)
        keys = np.frombuffer(all_keys, dtype="<u8").reshape(count, KEY_BYTES // 8)[firsts]
        scores = scores_by_rollout(Scores(flat, columns["n"].copy()), rollout)
        lines = {**columns, "rollout": rollout}
        rows = {key: column[firsts] for key, column in columns.items()}
        rows["n"] = scores.counts
    else:
        lines = rows = {**columns, "rollout": np.arange(count)}
        scores = Scores(flat, columns["n"].copy())
    dataset = Dataset(
        root, files, lines, rows, scores, skipped, layout, detected, file_lines, file_blank, warnings, keys
    )
    if results and all(r.join_read for r in results):  # every chunk read the join field (see parse.scan)
        dataset.join_on = results[0].chunk.join_on
        join_keys = np.concatenate([r.join_keys for r in results]) if len(results) > 1 else results[0].join_keys
        join_kinds = np.concatenate([r.join_kinds for r in results]) if len(results) > 1 else results[0].join_kinds
        dataset.join_keys, dataset.join_kinds = (
            (join_keys, join_kinds) if firsts is None else (join_keys[firsts], join_kinds[firsts])
        )
    return dataset


def group_lines(keys: bytes, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Rollout of every line (rollouts numbered in the order of their first lines), and each rollout's first line."""
    pairs = np.frombuffer(keys, dtype="<u8").reshape(count, KEY_BYTES // 8)
    order = np.lexsort(pairs.T[::-1])  # stable: a group's lines stay in input order
    ordered = pairs[order]
    starts = np.ones(count, dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    firsts = order[starts]  # the first line of each group, groups in key order
    renumber = np.empty(len(firsts), dtype=np.int64)
    renumber[np.argsort(firsts)] = np.arange(len(firsts))
    rollout = np.empty(count, dtype=np.int64)
    rollout[order] = renumber[np.cumsum(starts) - 1]
    return rollout, np.sort(firsts)


def scores_by_rollout(per_line: Scores, rollout: np.ndarray) -> Scores:
    """Every line's scores, gathered so that each rollout's are contiguous (its lines in input order)."""
    order = np.argsort(rollout, kind="stable")
    counts = per_line.counts[order]
    placed = np.cumsum(counts) - counts  # where each line's scores start in the result
    gather = np.repeat(per_line.starts[order] - placed, counts) + np.arange(int(counts.sum()))
    totals = np.bincount(rollout, weights=per_line.counts).astype(np.int64)
    return Scores(per_line.flat[gather], totals)


@dataclass(frozen=True)
class NotJsonl:
    """A file that is not JSONL at all, and why."""

    file: InputFile
    file_index: int
    why: str  # e.g. "no line is a JSON object; line 1: invalid JSON"
    message: str  # the one-line error when it is the only input
    reason: str = NOT_JSONL  # or NOT_PARQUET

    def record(self, results: list[ChunkResult]) -> dict:
        """Its entry in the manifest's ``skipped_files``: file, reason, detail and the lines skipped."""
        lines = sum(len(r.skipped) for r in results if r.chunk.file_index == self.file_index)
        return {"file": display(self.file.rel), "reason": self.reason, "detail": self.why, "lines": lines}


LONE_BRACKETS = "it starts and ends with a lone bracket, like a pretty-printed JSON document"


def not_jsonl_files(files: list[InputFile], results: list[ChunkResult]) -> dict[int, NotJsonl]:
    """The files that are not JSONL at all, by index: a lone bracket first and last (a pretty-printed document),
    or not one JSON object among lines that are not blank (a binary file, placeholder text, UTF-16)."""
    lines, blank, objects = [0] * len(files), [0] * len(files), [0] * len(files)
    opens, closes = [False] * len(files), [False] * len(files)
    first_bad: dict[int, tuple[int, str]] = {}  # per file: its first bad line's number and reason
    for result in results:
        index = result.chunk.file_index
        if result.skipped and index not in first_bad:
            first_bad[index] = (lines[index] + result.skipped[0][0], result.skipped[0][4])
        lines[index] += result.lines
        blank[index] += result.blank
        objects[index] += result.objects
        opens[index] = opens[index] or result.opens_document
        closes[index] = closes[index] or result.closes_document
    found = {}
    for index, file in enumerate(files):
        name = display(file.rel)
        if opens[index] and closes[index]:
            found[index] = NotJsonl(
                file,
                index,
                LONE_BRACKETS,
                f"{name} is not JSONL: {LONE_BRACKETS}; write one JSON object per line (e.g. jq -c '.[]')",
            )
        elif lines[index] > blank[index] and objects[index] == 0:
            line, reason = first_bad[index]
            found[index] = NotJsonl(
                file,
                index,
                f"no line is a JSON object; line {line}: {reason}",
                f"{name} is not JSONL (one JSON object per line): line {line}: {reason}; "
                "is it a pretty-printed JSON document or a binary file? Convert or remove it",
            )
    return found


def unreadable_files(files: list[InputFile], results: list[ChunkResult]) -> dict[int, NotJsonl]:
    """The parquet files pyarrow can't read (not parquet, a broken footer, a damaged row group), by index."""
    found = {}
    for result in results:
        index = result.chunk.file_index
        if result.unreadable and index not in found:
            name = display(files[index].rel)
            found[index] = NotJsonl(
                files[index],
                index,
                result.unreadable,
                f"{name} can't be read as parquet ({result.unreadable}); repair, convert or remove it",
                NOT_PARQUET,
            )
    return found


def skip_whole(result: ChunkResult, bad: NotJsonl) -> ChunkResult:
    """The chunk's result with every line that is not blank skipped (good ones too), under NOT_JSONL, in order."""
    rows = np.frombuffer(result.rows, dtype=np.int64).reshape(-1, len(ROW_FIELDS))
    places = [(int(line), int(offset), int(length), bool(clean)) for line, offset, length, clean, _ in rows]
    places += [(line, offset, length, clean) for line, offset, length, clean, _, _ in result.skipped]
    skipped = [(*place, bad.reason, bad.why) for place in sorted(places)]
    return dataclasses.replace(
        result,
        rows=array("q"),
        scores=array("d"),
        keys=bytearray(),
        join_keys=NO_KEYS,
        join_kinds=NO_KINDS,
        skipped=skipped,
    )


def check_dataset(dataset: Dataset, odd: list[NotJsonl], strict: bool) -> None:
    """Refuse inputs that can't be bucketed: a bad line under strict, no rollouts (no file that is JSONL)."""
    skipped = dataset.skipped_lines
    if strict and skipped:
        file_id, line, _, _, _, reason, detail = skipped[0]
        raise BadLineError(dataset.where(file_id, line), reason, detail)
    if len(dataset.scores) == 0:
        if odd and len(odd) == len(dataset.files):
            others = f" (and the {len(odd) - 1} other files are not JSONL either)" if len(odd) > 1 else ""
            raise BucketingError(odd[0].message + others)
        hint = ""
        telling = [bad for bad in skipped if bad[5] != NOT_JSONL] or skipped  # a line's own reason says more
        if telling:
            file_id, line, _, _, _, reason, detail = telling[0]
            hint = "; e.g. " + bad_line_text(dataset.where(file_id, line), reason, detail)
        raise BucketingError(f"no rollouts with scores at {dataset.score_path}{hint}; check --scores")
