"""Pull the scores out of every line of a file (or a byte range of one), fast.

A good line costs one msgspec decode that keeps only the score path's fields.
A line that fails is looked at again, slowly, to name the reason it is bad.
"""

from __future__ import annotations

import codecs
import json
import re
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from . import scorepath as sp
from .joinkey import key_of_line, key_of_raw, scanned_keys
from .layout import SHORT_LINE, SMALL_LINE, Layout, Refused
from .sources import BOM, DEFAULT_MAX_LINE_BYTES, Block, InputFile, read_blocks

_REFUSED = (Refused, msgspec.DecodeError, msgspec.ValidationError, RecursionError)
# The largest score magnitude taken: beyond it a sum or a square of scores can overflow to inf (1e308 twice has no
# finite mean, +-1e308 no finite variance). Within it every metric is finite: squares stay below 4e200.
SCORE_LIMIT = 1e100
# A run of blank lines (only spaces, tabs and \r before each \n), skipped in one step: a file of nothing but
# newlines (200 MB from a 200 KB .gz) must not cost a Python loop turn per line
_BLANK_RUN = re.compile(rb"[ \t\r\n]*\n")
# Lines of a chunk whose join field turned out not to be a 64-bit integer before the scan reads it as raw JSON
# from the first decode on (a string key: one decode a line, not two)
RAW_KEYS_AFTER = 64
NO_KEYS, NO_KINDS = np.zeros((0, 2), dtype="<u8"), np.zeros(0, dtype=np.uint8)


@dataclass(frozen=True)
class Chunk:
    """A unit of scanning work: a whole file, or the lines starting in ``[start, stop)`` of one."""

    file: InputFile
    file_index: int
    layout: Layout
    start: int = 0
    stop: int | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    strict: bool = False
    join_on: str = ""  # a rollout field whose join key each good line's result carries (--join-on)

    @property
    def size(self) -> int:
        """Bytes of the stored file this chunk covers (what progress counts)."""
        return (self.file.size if self.stop is None else self.stop) - self.start


ROW_FIELDS = ("line", "offset", "length", "clean", "n")  # clean: the content is followed by exactly "\n"


@dataclass
class ChunkResult:
    """What a chunk holds: one row per good line, one entry per bad line.

    Line numbers are 1-based and relative to the chunk's first line; the loader
    shifts them by the lines of the chunks before it.
    """

    chunk: Chunk
    lines: int = 0
    blank: int = 0
    objects: int = 0  # lines that are JSON objects, good or not
    rows: array = field(default_factory=lambda: array("q"))  # per good line: ROW_FIELDS, flat
    scores: array = field(default_factory=lambda: array("d"))
    keys: bytearray = field(default_factory=bytearray)  # per good line, when grouped: its group key (layout.KEY_BYTES)
    join_read: bool = False  # the scan read the chunk's join field: per good line, a join key and its kind
    join_keys: np.ndarray = field(default_factory=lambda: NO_KEYS)  # (good lines, 2) uint64 (zeros: no key)
    join_kinds: np.ndarray = field(default_factory=lambda: NO_KINDS)  # a joinkey.KINDS code per good line (0: none)
    skipped: list[tuple[int, int, int, bool, str, str]] = field(
        default_factory=list
    )  # line, offset, length, clean, reason, detail
    stopped: bool = False  # --strict hit a bad line
    opens_document: bool = False  # the file's first non-blank line is a lone "[" or "{"
    closes_document: bool = False  # ... and its last one a lone "]" or "}"
    unreadable: str = ""  # why the file can't be read at all (a parquet file with a broken footer), else ""


def scan(chunk: Chunk, blocks: Iterator[Block] | None = None) -> ChunkResult:
    """Scan one chunk. Never raises for bad lines; records them (and stops at the first under strict).

    ``blocks``: the chunk's lines from elsewhere than its file's bytes (parquet rows as JSON lines).
    """
    layout, join_on = chunk.layout, chunk.join_on
    joined = layout.join_reader(join_on) if join_on else None  # None: the join reads its field back later
    # An integer join field is read as an int (no raw JSON to parse); a line with another value there, read again
    # by the raw reader, and after RAW_KEYS_AFTER such lines the raw reader alone
    typed = layout.join_reader(join_on, integer=True) if joined else None
    reader = typed or joined or layout.reader
    read_short = None if joined else layout.short_lines()  # the join key needs msgspec (see layout)
    in_file = layout.file_key(chunk.file.rel)  # --group-by @file,...: keys equal only within this file
    decode, extract, key_of, join_of = reader.decode, reader.scores, _within(reader.key, in_file), reader.join
    fallback = joined.decode if typed and joined else None
    fallbacks = 0
    result = ChunkResult(chunk, join_read=join_of is not None)
    rows, all_scores, keys, skipped = result.rows, result.scores, result.keys, result.skipped
    join_ints = array("q")  # per good line, its join key as an integer, but where join_others has the line
    join_others: list[tuple[int, bytes, int]] = []  # (good line, key, kind) of every other key (or none)
    limit = chunk.max_line_bytes
    short = min(limit, SHORT_LINE)  # lines up to this go to read_short ...
    small = SMALL_LINE  # ... unless they are this short: msgspec reads them faster (see layout)
    n = objects = blank = last_line = last_closer = 0
    if blocks is None:
        blocks = read_blocks(chunk.file, chunk.start, chunk.stop, limit)
    for block in blocks:
        if block.long_line:
            n += 1
            objects += 1  # not known; one huge line must not make the file look like non-JSONL
            skipped.append(
                (
                    n,
                    block.offset,
                    block.long_line,
                    block.long_line_clean,
                    sp.TOO_LONG,
                    _too_long(block.long_line, limit),
                )
            )
            if chunk.strict:
                break
            continue
        buf, pos, hi, base = block.buf, block.lo, block.hi, block.offset
        with memoryview(buf) as view:
            window_utf8 = None  # grouped: the whole window checked at once, when a line needs it (msgspec doesn't)
            window = view[pos:hi]
            while pos < hi:
                newline = buf.find(b"\n", pos, hi)
                end = newline if newline >= 0 else hi
                start, stop, pos = pos, end, end + 1
                n += 1
                if stop > start and buf[stop - 1] == 13:  # CRLF: the \r is not part of the line
                    stop -= 1
                if base + start == 0 and buf[start : start + 3] == BOM:
                    start += 3
                if stop == start or buf[start] != 123:  # not "{": blank, or a bracket, or bad
                    text = buf[start:stop].strip(b" \t\r")
                    if not text:
                        blank += 1
                        run = _BLANK_RUN.match(buf, pos, hi)  # the blank lines after this one, at C speed
                        if run:
                            more = buf.count(b"\n", pos, run.end())
                            n, blank, pos = n + more, blank + more, run.end()
                        continue
                    if text in (b"[", b"{") and not last_line and chunk.start == 0:
                        result.opens_document = True
                    elif text in (b"]", b"}"):
                        last_closer = n
                last_line = n
                line = view[start:stop]
                scores = key = join = None
                reason = ""
                try:
                    if read_short and small < stop - start <= short and buf[start] == 123:
                        scores = read_short(line)
                    elif stop - start <= limit:
                        if read_short and stop - start > small:  # a long line among simdjson's: check it alone
                            valid = is_utf8(line)
                        else:
                            if window_utf8 is None:
                                window_utf8 = is_utf8(window)
                            valid = window_utf8 or _decodes(line)
                        if valid:
                            try:
                                obj = decode(line)
                            except msgspec.ValidationError:
                                if fallback is None:
                                    raise
                                obj = fallback(line)  # the join field is not a 64-bit integer (or the line is bad)
                                fallbacks += 1
                                if fallbacks == RAW_KEYS_AFTER:
                                    decode, fallback = fallback, None
                            scores = extract(obj)
                            if scores and key_of is not None:
                                key = key_of(obj)
                            if join_of is not None:
                                join = join_of(obj)
                except _REFUSED:
                    scores = None
                except sp.BadScores as bad:  # the group field is missing
                    reason, detail = bad.reason, bad.detail
                if scores and not reason and not in_range(scores):
                    reason, detail = sp.NOT_FINITE, _out_of_range(scores)  # a score the metrics can't compute with
                if scores and not reason:  # the common case: a good line
                    objects += 1
                    rows.extend((n, base + start, stop - start, newline >= 0 and stop == end, len(scores)))
                    all_scores.extend(scores)
                    if key is not None:
                        keys += key
                    if join_of is not None:
                        if type(join) is int:
                            join_ints.append(join)
                        else:
                            join_others.append((len(join_ints), *key_of_raw(join, join_on)))
                            join_ints.append(0)
                    continue
                if stop - start > limit:
                    objects += 1
                    reason, detail = sp.TOO_LONG, _too_long(stop - start, limit)
                elif reason:
                    objects += 1
                else:
                    scores, key, reason, detail, is_object = second_look(bytes(line), layout, at_eof=newline < 0)
                    if key is not None and in_file is not None:
                        key = in_file(key)
                    objects += is_object
                    if scores and not in_range(scores):
                        reason, detail = sp.NOT_FINITE, _out_of_range(scores)
                        scores = None
                    if scores:  # fine after all (a duplicate key)
                        rows.extend((n, base + start, stop - start, newline >= 0 and stop == end, len(scores)))
                        all_scores.extend(scores)
                        if key is not None:
                            keys += key
                        if join_of is not None:
                            join_others.append((len(join_ints), *key_of_line(line, join_on)))
                            join_ints.append(0)
                        continue
                skipped.append((n, base + start, stop - start, newline >= 0 and stop == end, reason, detail))
                if chunk.strict:
                    result.stopped = True
                    break
        if result.stopped:
            break
    result.lines, result.objects, result.blank = n, objects, blank
    if join_of is not None:
        result.join_keys, result.join_kinds = scanned_keys(join_ints, join_others)
    result.closes_document = chunk.stop is None and last_closer > 0 and last_closer == last_line
    return result


def _within(key_of: Callable[[Any], bytes] | None, in_file: Callable[[bytes], bytes] | None):
    """The group key reader, made file-specific for ``@file`` layouts."""
    if key_of is None or in_file is None:
        return key_of
    return lambda obj: in_file(key_of(obj))


def _too_long(length: int, limit: int) -> str:
    return f"{length} bytes, more than --max-line-bytes {limit}"


def in_range(scores: list[float]) -> bool:
    """Every score within +-:data:`SCORE_LIMIT` (two C loops: a line's scores are few)."""
    return max(scores) <= SCORE_LIMIT and min(scores) >= -SCORE_LIMIT


def _out_of_range(scores: list[float]) -> str:
    """Which score is too large, e.g. "score 2 of 4 is 1e+308, beyond +-1e+100: too large to compute metrics with"."""
    i = next(i for i, s in enumerate(scores) if not -SCORE_LIMIT <= s <= SCORE_LIMIT)
    return (
        f"score {i + 1} of {len(scores)} is {float(scores[i]):g}, beyond +-{SCORE_LIMIT:g}: "
        "too large to compute metrics with"
    )


def second_look(
    raw: bytes, layout: Layout, at_eof: bool = False
) -> tuple[list[float] | None, bytes | None, str, str, bool]:
    """Look again, slowly, at a line the fast decoder refused: ``(scores, key, reason, detail, is_json_object)``.

    ``scores`` is set when the line is fine after all (a duplicate key whose last value is good,
    as in Python's json), with its group ``key`` when the layout groups lines; otherwise
    ``reason`` is one of :data:`scorepath.REASONS`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        unfinished = at_eof and raw.startswith(b"{")  # a file's unfinished last object still shows it is JSONL
        if at_eof and _decodes(raw, final=False):  # cut short inside a character
            return None, None, sp.TRUNCATED, "the file ends inside a UTF-8 character", unfinished
        return None, None, sp.INVALID_UTF8, f"bad byte at position {exc.start}", unfinished
    try:
        # parse_int=float: a 5000-digit integer becomes inf (reported as not finite), not a ValueError
        value = json.loads(text, parse_int=float)
    except RecursionError:
        return None, None, sp.TOO_DEEP, "more levels of [ ] and { } than the parser allows", False
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg.removesuffix(' at')} at column {exc.colno}"
        cut_short = at_eof and (exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"))
        return None, None, (sp.TRUNCATED if cut_short else sp.INVALID_JSON), detail, at_eof and text.startswith("{")
    except ValueError as exc:
        return None, None, sp.INVALID_JSON, str(exc), False
    if not isinstance(value, dict):
        return None, None, sp.NOT_OBJECT, f"the line is {sp.kind_of(value)}", False
    try:
        scores = layout.path.scores_of(value)
    except sp.BadScores as bad:
        return None, None, bad.reason, bad.detail, True
    # Python's parser is laxer than JSON (NaN, lone surrogates, any depth it can recurse): the line must
    # also pass msgspec, reading the fields the layout needs (so a 5000-digit number elsewhere is fine)
    try:
        layout.reader.decode(raw)
    except RecursionError:
        return None, None, sp.TOO_DEEP, "more levels of [ ] and { } than the parser allows", True
    except msgspec.ValidationError:
        pass  # valid JSON, its values judged above (a duplicate key whose first value is not a score list ...)
    except msgspec.DecodeError as exc:
        return None, None, sp.INVALID_JSON, str(exc).removeprefix("JSON is malformed: "), True
    key = None
    if layout.grouped:
        try:  # msgspec's numbers are those of the quick readers (json's here are all floats)
            reading = msgspec.json.decode(raw)
        except msgspec.DecodeError:  # a number too large for msgspec somewhere
            reading = value
        try:
            key = layout.key_of_value(reading)
        except sp.BadScores as bad:
            return None, None, bad.reason, bad.detail, True
    return scores, key, "", "", True  # valid JSON whose last duplicate key holds the scores


def _decodes(data, final: bool = True) -> bool:
    """Valid UTF-8 by Python's strict decoder (``final=False``: an incomplete character at the end is fine)."""
    try:
        codecs.utf_8_decode(data, "strict", final)
    except UnicodeDecodeError:
        return False
    return True


def is_utf8(data: memoryview) -> bool:
    """Whether ``data`` is valid UTF-8, without making a str of it (a line may be 64 MB)."""
    if not data:
        return True
    import pyarrow as pa  # here: only lines simdjson doesn't read need it, and it takes 25 ms to import

    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True
