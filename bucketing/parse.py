"""Pull the scores out of every line of a file (or a byte range of one), fast.

A good line costs one msgspec decode that keeps only the score path's fields.
A line that fails is looked at again, slowly, to name the reason it is bad.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field

import msgspec
import numpy as np
import pyarrow as pa

from . import scorepath as sp
from .errors import BadLineError
from .sources import DEFAULT_MAX_LINE_BYTES, InputFile, display, read_blocks

BOM = b"\xef\xbb\xbf"
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


@dataclass(frozen=True)
class Chunk:
    """A unit of scanning work: a whole file, or the lines starting in ``[start, stop)`` of one."""

    file: InputFile
    file_index: int
    score_path: str
    start: int = 0
    stop: int | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    strict: bool = False


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
    bytes_read: int = 0
    line: array = field(default_factory=lambda: array("q"))
    offset: array = field(default_factory=lambda: array("q"))
    length: array = field(default_factory=lambda: array("q"))
    clean: array = field(default_factory=lambda: array("b"))  # content is followed by exactly b"\n"
    count: array = field(default_factory=lambda: array("q"))
    scores: array = field(default_factory=lambda: array("d"))
    skipped: list[tuple[int, int, int, bool, str, str]] = field(default_factory=list)  # line, offset, length, clean, reason, detail
    stopped: bool = False  # --strict hit a bad line


def scan(chunk: Chunk) -> ChunkResult:
    """Scan one chunk. Never raises for bad lines; records them (and stops first one under strict)."""
    path = sp.ScorePath(chunk.score_path)
    decode, extract = path.decoder.decode, path.extract
    result = ChunkResult(chunk)
    rows_line, rows_offset, rows_length, rows_clean = result.line, result.offset, result.length, result.clean
    rows_count, rows_scores = result.count, result.scores
    limit = chunk.max_line_bytes
    n = 0
    for block in read_blocks(chunk.file, chunk.start, chunk.stop, limit):
        if block.long_line:
            n += 1
            result.skipped.append((n, block.offset, block.long_line, block.long_line_ends_with_newline, sp.TOO_LONG,
                                   f"{block.long_line} bytes, more than --max-line-bytes {limit}"))
            result.objects += 1  # not known; don't let one huge line make the file look like non-JSONL
            if chunk.strict:
                break
            continue
        buf, pos, hi, base = block.buf, block.lo, block.hi, block.offset
        with memoryview(buf) as view:
            all_utf8 = is_utf8(view[pos:hi])
            while pos < hi:
                newline = buf.find(b"\n", pos, hi)
                end = newline if newline >= 0 else hi
                start, stop, pos = pos, end, end + 1
                n += 1
                if stop > start and buf[stop - 1] == 13:  # CRLF: the \r is not part of the line
                    stop -= 1
                if base + start == 0 and buf.startswith(BOM, start, stop):
                    start += 3
                if stop == start or (buf[start] != 123 and not buf[start:stop].strip(b" \t\r")):  # 123 = "{"
                    result.blank += 1
                    continue
                clean = newline >= 0 and stop == end
                line = view[start:stop]
                reason = None
                if stop - start > limit:
                    reason, detail = sp.TOO_LONG, f"{stop - start} bytes, more than --max-line-bytes {limit}"
                    result.objects += 1
                elif not all_utf8 and (utf8_error := _utf8_error(line)):
                    reason, detail = sp.INVALID_UTF8, utf8_error
                else:
                    try:
                        scores = extract(decode(line))
                    except _DECODE_ERRORS:
                        reason, detail, is_object = classify(bytes(line), path, at_eof=newline < 0)
                        result.objects += is_object
                    else:
                        result.objects += 1
                        if not scores:
                            reason, detail = sp.EMPTY, f"{path.text} is empty"
                        else:
                            rows_line.append(n)
                            rows_offset.append(base + start)
                            rows_length.append(stop - start)
                            rows_clean.append(clean)
                            rows_count.append(len(scores))
                            rows_scores.extend(scores)
                            continue
                result.skipped.append((n, base + start, stop - start, clean, reason, detail))
                if chunk.strict:
                    result.stopped = True
                    break
        result.bytes_read = base + hi - chunk.start
        if result.stopped:
            break
    result.lines = n
    return result


def classify(raw: bytes, path: sp.ScorePath, at_eof: bool = False) -> tuple[str, str, bool]:
    """Why a line failed the fast decode: ``(reason, detail, is_json_object)``.

    ``reason`` is always one of :data:`scorepath.REASONS`.
    """
    if utf8_error := _utf8_error(memoryview(raw)):
        return sp.INVALID_UTF8, utf8_error, False
    try:
        text = raw.decode("utf-8")
        # parse_int=float: a 5000-digit integer becomes inf (reported as not finite), not a ValueError
        value = json.loads(text, parse_int=float)
    except RecursionError:
        return sp.TOO_DEEP, "more levels of [ ] and { } than the parser allows", False
    except ValueError as exc:
        detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return (sp.TRUNCATED if at_eof else sp.INVALID_JSON), detail, False
    if not isinstance(value, dict):
        return sp.NOT_OBJECT, f"the line is {sp.kind_of(value)}", False
    try:
        path.scores_of(value)
    except sp.BadScores as bad:
        return bad.reason, bad.detail, True
    # Python's parser is laxer than JSON (NaN, lone surrogates, any depth it can recurse):
    try:
        msgspec.json.decode(raw)
    except RecursionError:
        return sp.TOO_DEEP, "more levels of [ ] and { } than the parser allows", True
    except msgspec.DecodeError as exc:
        return sp.INVALID_JSON, str(exc).removeprefix("JSON is malformed: "), True
    return sp.INVALID_JSON, "rejected by the JSON decoder", True


def is_utf8(data: memoryview) -> bool:
    """Whether ``data`` is valid UTF-8; Arrow's validator runs at GB/s where ``str(data, "utf-8")`` doesn't."""
    if not data:
        return True
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int32))
    try:
        pa.StringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _utf8_error(data: memoryview) -> str | None:
    """Where ``data`` stops being UTF-8, or None when it is valid."""
    try:
        str(data, "utf-8")
    except UnicodeDecodeError as exc:
        return f"bad byte at position {exc.start}"
    return None


def bad_line_error(file: InputFile, line: int, reason: str, detail: str) -> BadLineError:
    return BadLineError(f"{display(file.rel)}:{line}", reason, detail)
