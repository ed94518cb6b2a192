"""Find rollouts by their text: those whose prompt or responses contain a text, or match a regular expression.

A search reads the input files as they are, one pass over each (a compressed file is decompressed once, a
parquet file read a row group at a time), and looks in the texts the preview shows, decoded from JSON
(``\\n``, ``\\u00e9`` and ``\\"`` are the characters they stand for): :func:`bucketing.preview.search_texts`.
A grouped rollout is found when any of its lines is.

A plain text is first looked for in a line's raw bytes, which is much cheaper than decoding the line; a line
is decoded only when the text is there, or when the line has an escape that stands for one of the text's
characters (the only way the decoded text can hold it when the raw bytes don't: every searched text is one
JSON string of the line, whole). So the shortcut never misses a line.

Every search has a time budget: past it the search stops and says how far it got. A regular expression is
checked by Python's ``re`` and run by the ``regex`` module, whose matching stops at the budget too (a
pattern such as ``(a+)+$`` can take longer than the age of the universe on one line; ``re`` can't be stopped).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .dataset import Dataset
from .errors import BucketingError
from .parquet_read import is_parquet, rows_at
from .preview import search_texts
from .sources import InputFile, read_blocks
from .wording import counted

BUDGET = 20.0  # seconds a search may take before it stops with what it found so far
MAX_QUERY = 1000  # characters of a query
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_UNICODE_ESCAPE = re.compile(rb"\\u([0-9a-fA-F]{4})")
# The only characters beyond ASCII that match an ASCII letter when case is ignored (re.IGNORECASE): İ ı K ſ.
_FOLDS_TO_ASCII = {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}


@dataclass(frozen=True)
class Query:
    """What to look for: ``text`` as it is, or a regular expression (Python's syntax); any case or exact case."""

    text: str
    regex: bool = False
    ignore_case: bool = True


@dataclass(frozen=True)
class Found:
    """The rollouts found (ascending indices), how many rollouts were looked at, and why the search stopped early
    (None when it went through all of them)."""

    rows: np.ndarray
    searched: int
    total: int
    stopped: str | None = None


class _Timeout(Exception):
    pass


class Matcher:
    """A query made ready: whether a text matches, and whether a raw line may (never False for one that does)."""

    def __init__(self, query: Query, deadline: float):
        if not query.text:
            raise BucketingError("nothing to search for: type a text")
        if len(query.text) > MAX_QUERY:
            raise BucketingError(f"the search is too long ({len(query.text):,} characters; at most {MAX_QUERY:,})")
        self.deadline = deadline
        flags = re.IGNORECASE if query.ignore_case else 0
        if query.regex:
            try:
                re.compile(query.text, flags)
            except re.error as error:
                where = f" at position {error.pos}" if error.pos is not None else ""
                raise BucketingError(f"not a regular expression: {error.msg}{where}") from None
            except (OverflowError, RecursionError, ValueError) as error:
                raise BucketingError(f"not a regular expression: {error}") from None
            self.text_matches = self._regex(query.text, query.ignore_case)
            self.may_match: Callable[[bytes], bool] = lambda raw: True
            return
        needle = query.text
        if query.ignore_case:
            pattern = re.compile(re.escape(needle), re.IGNORECASE)
            self.text_matches = lambda text: pattern.search(text) is not None
        else:
            self.text_matches = lambda text: needle in text
        self.may_match = self._prefilter(needle, pattern if query.ignore_case else None)

    def _regex(self, text: str, ignore_case: bool) -> Callable[[str], bool]:
        try:
            import regex  # type: ignore[import-untyped]
        except ImportError:  # the budget then holds between texts only
            plain = re.compile(text, re.IGNORECASE if ignore_case else 0)
            return lambda value: plain.search(value) is not None
        try:
            compiled = regex.compile(text, regex.V0 | (regex.IGNORECASE if ignore_case else 0))
        except (regex.error, OverflowError, RecursionError, ValueError):  # taken by re only: run by re
            plain = re.compile(text, re.IGNORECASE if ignore_case else 0)
            return lambda value: plain.search(value) is not None

        def matches(value: str) -> bool:
            try:
                return compiled.search(value, timeout=max(self.deadline - time.monotonic(), 0.001)) is not None
            except TimeoutError:
                raise _Timeout() from None

        return matches

    @staticmethod
    def _prefilter(needle: str, pattern: re.Pattern | None) -> Callable[[bytes], bool]:
        """Whether a raw line may hold ``needle`` once decoded: it holds it as it is, or it has an escape of a
        character that matches one of the needle's (any case when ``pattern``)."""
        chars = re.compile("[" + "".join(re.escape(c) for c in set(needle)) + "]", pattern.flags if pattern else 0)
        simple = [re.escape(code.encode()) for code, char in _SIMPLE_ESCAPES.items() if chars.match(char)]
        simple_escape = re.compile(rb"\\[" + b"".join(simple) + rb"]") if simple else None
        encoded = needle.encode("utf-8", "surrogatepass")
        lower = needle.lower().encode() if needle.isascii() else None
        odd = [c.encode() for letter in set(needle.lower()) for c in _FOLDS_TO_ASCII.get(letter, "")]

        def unicode_escape(raw: bytes) -> bool:
            if b"\\u" not in raw:
                return False
            for code in set(_UNICODE_ESCAPE.findall(raw)):
                value = int(code, 16)
                if 0xD800 <= value < 0xE000 or chars.match(chr(value)):  # (a surrogate: half of any character)
                    return True
            return False

        def may_match(raw: bytes) -> bool:
            if pattern is None:
                if encoded in raw:
                    return True
            elif lower is not None and not any(c in raw for c in odd):  # ASCII only can match: compared as bytes
                if lower in raw.lower():
                    return True
            elif pattern.search(raw.decode("utf-8", "replace")):
                return True
            return bool(simple_escape and simple_escape.search(raw)) or unicode_escape(raw)

        return may_match

    def line_matches(self, raw: bytes) -> bool:
        if not self.may_match(raw):
            return False
        try:
            value = json.loads(raw.decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            return False
        return any(self.text_matches(text) for text in search_texts(value))


def search(
    dataset: Dataset, query: Query, rows: np.ndarray | None = None, budget: float = BUDGET, clock=time.monotonic
) -> Found:
    """The rollouts (of ``rows``, ascending; all when None) whose prompt or responses match ``query``.

    A bad regular expression raises :class:`BucketingError` (one line); so does an input that can't be read
    any more. Past ``budget`` seconds the search stops: ``Found.stopped`` says how far it got.
    """
    start = clock()
    matcher = Matcher(query, start + budget)
    columns = dataset.line_columns
    total = len(dataset.scores) if rows is None else len(rows)
    wanted = np.ones(len(columns["rollout"]), dtype=bool)
    if rows is not None:
        wanted = np.isin(columns["rollout"], np.asarray(rows, dtype=np.int64))
    hits = np.zeros(len(dataset.scores), dtype=bool)
    seen = np.zeros(len(dataset.scores), dtype=bool)
    stopped = None
    file_ids = columns["file_id"]
    for file_id, file in enumerate(dataset.files):
        lines = np.flatnonzero(wanted & (file_ids == file_id))
        if not len(lines):
            continue
        lines = lines[np.argsort(columns["offset"][lines], kind="stable")]
        try:
            for done, (line, raw) in enumerate(_lines(file, lines, columns)):
                rollout = int(columns["rollout"][line])
                if not hits[rollout] and matcher.line_matches(raw):
                    hits[rollout] = True
                seen[rollout] = True
                if done % 64 == 0 and clock() > matcher.deadline:
                    raise _Timeout()
        except _Timeout:
            stopped = f"stopped after {budget:g} s"
            break
    found = np.flatnonzero(hits)
    searched = int(seen.sum()) if rows is None else int(seen[np.asarray(rows, dtype=np.int64)].sum())
    if stopped:
        stopped = (
            f"The search {stopped}: it looked at {counted(searched, 'rollout', ',')} of {total:,}. "
            "Make it narrower (a bucket, a plainer expression)."
        )
    return Found(found, searched, total, stopped)


def _lines(file: InputFile, lines: np.ndarray, columns: dict[str, np.ndarray]) -> Iterator[tuple[int, bytes]]:
    """``(line index, raw bytes)`` of good lines ``lines`` of one file (ascending offsets), in one pass."""
    offsets = columns["offset"][lines]
    lengths = columns["length"][lines]
    if is_parquet(file):  # a row's offset is its number
        yield from zip(lines.tolist(), rows_at(file, offsets.tolist()))
        return
    position = 0  # into lines
    for block in read_blocks(file):
        if block.long_line or position == len(lines):
            if position == len(lines):
                return
            continue
        end = block.offset + block.hi
        stop = int(np.searchsorted(offsets, end, side="left"))
        view = block.buf
        for k in range(position, stop):
            lo = int(offsets[k]) - block.offset
            yield int(lines[k]), bytes(view[lo : lo + int(lengths[k])])
        position = stop
