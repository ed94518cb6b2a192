"""Where a line's scores live: ``reward[].score``, ``rewards[]``, ``["mean/reward"]``, ``a + 0.5 * b`` ...

A score path is field names joined by ``.``; a key that is not a plain name is written as
a JSON string in brackets (``["mean/reward"]``, ``reward["rewards.format"]``); after a
field, ``[]`` means "a list: take every element" and ``[N]`` "element N of a list"
(``[-1]``: the last).  Several paths joined by ``+``, each with an optional weight
(``0.7 * accuracy + 0.3 * format``), make a response's score the weighted sum of theirs.
This module parses paths, walks parsed JSON values slowly to name what is wrong with a
line, and names the reasons a line is skipped; :mod:`bucketing.layout` builds the fast decoder.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from .errors import BucketingError

DEFAULT = "reward[].score"
EACH = "[]"  # a step's list operation: every element (an int: that element)
MAX_INDEX = 1_000_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"\[(-?\d{1,8})\]")
_WEIGHT = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*")
SYNTAX = (
    "field names joined by '.', a key of any other characters as a JSON string in brackets, [] after "
    "a list for every element or [N] for one, and + between paths to add them (with an optional weight), "
    'e.g. reward[].score, rewards[0], ["mean/reward"], reward["rewards.format"] or 0.7 * a + 0.3 * b'
)

Step = tuple[str, str | int | None]  # (key, None | EACH | index)

# Reasons a line is skipped; messages and the manifest count lines per reason.
INVALID_UTF8 = "invalid UTF-8"
INVALID_JSON = "invalid JSON"
TRUNCATED = "truncated last line"
TOO_DEEP = "nesting too deep"
NOT_OBJECT = "not a JSON object"
MISSING = "missing scores"
NOT_LIST = "scores not a list"
EMPTY = "empty scores"
NOT_NUMBER = "score not a number"
NOT_FINITE = "score not finite"
TOO_LONG = "line too long"
MISSING_GROUP = "missing group field"
UNEVEN = "score lists of different lengths"
REASONS = (
    INVALID_UTF8,
    INVALID_JSON,
    TRUNCATED,
    TOO_DEEP,
    NOT_OBJECT,
    MISSING,
    NOT_LIST,
    EMPTY,
    NOT_NUMBER,
    NOT_FINITE,
    TOO_LONG,
    MISSING_GROUP,
    UNEVEN,
)


class BadScores(Exception):
    """A decoded line whose scores are missing or unusable."""

    def __init__(self, reason: str, detail: str):
        super().__init__(reason, detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class ScorePath:
    """A score path, or a weighted sum of several (``text`` in the form :meth:`parse` gives)."""

    text: str
    booleans: bool = False  # true/false are scores 1/0 (only when the user named the path)

    @classmethod
    def parse(cls, text: str, weights: list[float] | None = None, what: str = "--scores") -> ScorePath:
        """Check ``text`` and spell it one way; ``weights`` multiply its paths (for --score-weights)."""
        terms = _parse_terms(text.strip(), what)
        if weights is not None:
            if len(weights) != len(terms):
                raise BucketingError(f"--score-weights gives {len(weights)} weights for {len(terms)} score paths")
            if any(weight != 1 for weight, _ in terms):
                raise BucketingError("give the weights either in --scores (0.7 * a) or with --score-weights, not both")
            terms = tuple((float(w), steps) for w, (_, steps) in zip(weights, terms))
        for weight, _ in terms:
            if not math.isfinite(weight) or abs(weight) > 1e6:
                raise BucketingError(f"score weight {weight!r} must be a finite number between -1e6 and 1e6")
        return cls(" + ".join(_term_text(weight, steps) for weight, steps in terms))

    @cached_property
    def terms(self) -> tuple[tuple[float, tuple[Step, ...]], ...]:
        """``(weight, steps)`` per path added."""
        return tuple(_parse_terms(self.text, "--scores"))

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps of a single path: ``(key, None | EACH | index)`` each."""
        if len(self.terms) != 1 or self.terms[0][0] != 1:
            raise ValueError(f"{self.text} is a sum of score paths")
        return self.terms[0][1]

    @property
    def single(self) -> bool:
        return len(self.terms) == 1 and self.terms[0][0] == 1

    def scores_of(self, value: Any) -> list[float]:
        """The scores of an already-parsed JSON value; raises :class:`BadScores`."""
        found = [(weight, steps, _walk(value, steps, self.booleans)) for weight, steps in self.terms]
        if len(found) == 1 and found[0][0] == 1:
            return found[0][2]
        lengths = {len(scores) for _, _, scores in found}
        if len(lengths) > 1:
            detail = ", ".join(f"{path_text(steps)} has {len(scores)}" for _, steps, scores in found)
            raise BadScores(UNEVEN, detail)
        return [math.fsum(weight * scores[i] for weight, _, scores in found) for i in range(lengths.pop())]


def path_text(steps: tuple[Step, ...]) -> str:
    """``steps`` written as a path: ``reward[].score``, ``["mean/reward"]``, ``rewards[0]``."""
    text = ""
    for key, op in steps:
        text = _child(text, key) + ("" if op is None else EACH if op == EACH else f"[{op}]")
    return text


def _child(where: str, key: str) -> str:
    """The path of field ``key`` of the value at path ``where`` ("" for the line)."""
    if _NAME.fullmatch(key):
        return f"{where}.{key}" if where else key
    return f"{where}[{json.dumps(key, ensure_ascii=False)}]"


def _term_text(weight: float, steps: tuple[Step, ...]) -> str:
    return path_text(steps) if weight == 1 else f"{weight!r} * {path_text(steps)}"


@lru_cache(maxsize=64)
def _parse_terms(text: str, what: str) -> tuple[tuple[float, tuple[Step, ...]], ...]:
    """``text`` -> ``((weight, steps), ...)``; raises :class:`BucketingError` showing the syntax."""
    terms, pos = [], 0
    while True:
        weight = 1.0
        match = _WEIGHT.match(text, pos)
        if match:
            weight, pos = float(match.group(1)), match.end()
        steps, pos = _parse_path(text, pos, what)
        terms.append((weight, steps))
        rest = text[pos:].lstrip()
        if not rest:
            return tuple(terms)
        if not rest.startswith("+"):
            raise _bad(text, what, f"unexpected {rest[:20]!r}")
        pos = len(text) - len(rest) + 1
        while pos < len(text) and text[pos] == " ":
            pos += 1


def _parse_path(text: str, pos: int, what: str) -> tuple[tuple[Step, ...], int]:
    steps: list[Step] = []
    while True:
        if text.startswith('["', pos):
            try:
                key, end = json.JSONDecoder().raw_decode(text, pos + 1)
            except ValueError:
                raise _bad(text, what, 'a quoted key must be a JSON string, closed with "]') from None
            if not text.startswith("]", end):
                raise _bad(text, what, "a quoted key must be closed with ]")
            pos = end + 1
            if not key:
                raise _bad(text, what, "an empty key")
        else:
            name = _NAME.match(text, pos + (1 if steps and text.startswith(".", pos) else 0))
            if not name or (steps and not text.startswith(".", pos)):
                raise _bad(
                    text, what, "expected a field name" + (f" at {text[pos : pos + 20]!r}" if text[pos:] else "")
                )
            key, pos = name.group(), name.end()
        op: str | int | None = None
        if text.startswith(EACH, pos):
            op, pos = EACH, pos + 2
        else:
            index = _INDEX.match(text, pos)
            if index:
                op, pos = int(index.group(1)), index.end()
                if abs(op) > MAX_INDEX:
                    raise _bad(text, what, f"index {op} is beyond {MAX_INDEX}")
        steps.append((key, op))
        if text.startswith("[", pos) and not text.startswith('["', pos):
            raise _bad(
                text,
                what,
                "one [] or [N] per field (a list inside a list is not supported)"
                if op is not None
                else "brackets hold nothing, a whole number or a quoted key",
            )
        if not (text.startswith(".", pos) or text.startswith('["', pos)):
            return tuple(steps), pos


def parse_field(text: str, what: str = "--group-by") -> tuple[str, ...]:
    """The keys of a field path (``extra_info.index``, ``["task id"]``), for grouping: no [] or [N]."""
    steps, pos = _parse_path(text, 0, what)
    if pos != len(text):
        raise _bad(text, what, f"unexpected {text[pos : pos + 20]!r}")
    if any(op is not None for _, op in steps):
        raise BucketingError(f"{what} {text[:200]!r} is not a field: a field to group by can't take [] or [N]")
    return tuple(key for key, _ in steps)


def group_path(text: str, what: str = "--group-by") -> tuple[str | int, ...]:
    """The keys of a field to group by, and a list index at its end when given (``content[0]`` -> ``("content",
    0)``, ``messages[-1]``): the first message of a chat, where a dump keeps no prompt of its own."""
    steps, pos = _parse_path(text, 0, what)
    if pos != len(text):
        raise _bad(text, what, f"unexpected {text[pos : pos + 20]!r}")
    *inner, (last, op) = steps
    if any(step_op is not None for _, step_op in inner) or op == EACH:
        raise BucketingError(
            f"{what} {text[:200]!r} is not a field: a field to group by takes no [] and [N] only at its end "
            "(content[0])"
        )
    keys: tuple[str | int, ...] = (*(key for key, _ in inner), last)
    return keys if op is None else (*keys, int(op))


def group_path_text(path: tuple[str | int, ...]) -> str:
    """A group path written back: ``content[0]``, ``extra_info.index``."""
    index = path[-1] if isinstance(path[-1], int) else None
    keys = path[:-1] if index is not None else path
    return path_text(tuple((str(key), None) for key in keys[:-1]) + ((str(keys[-1]), index),))


def walk(value: Any, path: tuple[str | int, ...]) -> Any:
    """The value at ``path`` in a decoded line: None where a key or the index is missing (or on the way)."""
    item = value
    for step in path:
        if isinstance(step, int):
            item = item[step] if isinstance(item, list) and -len(item) <= step < len(item) else None
        else:
            item = item.get(step) if isinstance(item, dict) else None
    return item


def split_outside_keys(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` where it is not inside a quoted key (``a,["b,c"]`` -> ``a``, ``["b,c"]``)."""
    parts, start, pos = [], 0, 0
    while pos < len(text):
        if text.startswith('["', pos):
            try:
                _, pos = json.JSONDecoder().raw_decode(text, pos + 1)
            except ValueError:
                break  # the path's own parser says what is wrong
            continue
        if text.startswith(separator, pos):
            parts.append(text[start:pos])
            start = pos = pos + len(separator)
            continue
        pos += 1
    return parts + [text[start:]]


def _bad(text: str, what: str, problem: str) -> BucketingError:
    return BucketingError(f"{what} {text[:200]!r} is not a score path ({problem}): use {SYNTAX}")


def _walk(value: Any, steps: tuple[Step, ...], booleans: bool) -> list[float]:
    """The numbers at ``steps`` in ``value``, each named in a :class:`BadScores` if it is not one."""
    items: list[tuple[Any, str]] = [(value, "")]
    for key, op in steps:
        found: list[tuple[Any, str]] = []
        for item, where in items:
            name = _child(where, key)
            if not isinstance(item, dict):
                reason = NOT_OBJECT if not where else MISSING
                raise BadScores(reason, f"{where or 'the line'} is not an object")
            if key not in item:
                raise BadScores(MISSING, f"no field {name}")
            child = item[key]
            if op is None:
                found.append((child, name))
            elif not isinstance(child, list):
                raise BadScores(NOT_LIST, f"{name} is {kind_of(child)}, not a list")
            elif isinstance(op, str):  # EACH, the one list operation that is not an index
                if not child:
                    raise BadScores(EMPTY, f"{name} is an empty list")
                found.extend((element, f"{name}[{i}]") for i, element in enumerate(child))
            elif not -len(child) <= op < len(child):
                raise BadScores(MISSING, f"{name} has {len(child)} elements, no [{op}]")
            else:
                found.append((child[op], f"{name}[{op}]"))
        items = found
    return [_number(value, where, booleans) for value, where in items]


def _number(value: Any, where: str, booleans: bool = False) -> float:
    if isinstance(value, bool) and booleans:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadScores(NOT_NUMBER, f"{where} is {kind_of(value)}")
    number = float(value)
    if math.isnan(number):
        raise BadScores(NOT_FINITE, f"{where} is NaN")
    if math.isinf(number):
        raise BadScores(NOT_FINITE, f"{where} is infinite or too large for a 64-bit float")
    return number


def kind_of(value: Any) -> str:
    """ "a string", "null", "a list" ... for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a number"
