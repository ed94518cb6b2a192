"""Where a line's scores live: ``reward[].score``, ``rewards[]``, ``score`` ...

A score path is dot-separated field names; ``[]`` after a name means "a list:
take every element".  From a path we build a msgspec type that declares only
those fields, so the decoder skips everything else in C, and a function that
pulls the floats out of the decoded object.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Callable

import msgspec

from .errors import BucketingError

DEFAULT = "reward[].score"
_STEP = r"[A-Za-z_][A-Za-z0-9_\-]*(?:\[\])?"
_PATTERN = re.compile(rf"^{_STEP}(?:\.{_STEP})*$")

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
REASONS = (INVALID_UTF8, INVALID_JSON, TRUNCATED, TOO_DEEP, NOT_OBJECT, MISSING, NOT_LIST, EMPTY,
           NOT_NUMBER, NOT_FINITE, TOO_LONG)


class BadScores(Exception):
    """A decoded line whose scores are missing or unusable."""

    def __init__(self, reason: str, detail: str):
        super().__init__(reason, detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class ScorePath:
    text: str

    @classmethod
    def parse(cls, text: str) -> "ScorePath":
        text = text.strip()
        if not _PATTERN.match(text):
            raise BucketingError(
                f"--scores {text!r} is not a score path: use field names joined by '.', "
                "with [] after a list, e.g. reward[].score, rewards[] or score"
            )
        return cls(text)

    @property
    def steps(self) -> tuple[tuple[str, bool], ...]:
        """``(field, is_list)`` for each dot-separated part."""
        return tuple((part.removesuffix("[]"), part.endswith("[]")) for part in self.text.split("."))

    @cached_property
    def decoder(self) -> msgspec.json.Decoder:
        return _decoder(self.text)

    @cached_property
    def extract(self) -> Callable[[Any], list[float]]:
        """Function from a decoded object to its list of scores."""
        return _extractor(self.steps)

    def scores_of(self, value: Any) -> list[float]:
        """The scores of an already-parsed JSON value; raises :class:`BadScores`."""
        items: list[tuple[Any, str]] = [(value, "")]
        for field, is_list in self.steps:
            found: list[tuple[Any, str]] = []
            for item, where in items:
                if not isinstance(item, dict):
                    reason = NOT_OBJECT if not where else MISSING
                    raise BadScores(reason, f"{where.rstrip('.') or 'the line'} is not an object")
                if field not in item:
                    raise BadScores(MISSING, f"no field {where}{field}")
                child = item[field]
                if not is_list:
                    found.append((child, f"{where}{field}."))
                elif not isinstance(child, list):
                    raise BadScores(NOT_LIST, f"{where}{field} is {kind_of(child)}, not a list")
                elif not child:
                    raise BadScores(EMPTY, f"{where}{field} is an empty list")
                else:
                    found.extend((element, f"{where}{field}[{i}].") for i, element in enumerate(child))
            items = found
        return [_number(value, where.rstrip(".")) for value, where in items]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadScores(NOT_NUMBER, f"{where} is {kind_of(value)}")
    number = float(value)
    if math.isnan(number):
        raise BadScores(NOT_FINITE, f"{where} is NaN")
    if math.isinf(number):
        raise BadScores(NOT_FINITE, f"{where} is infinite or too large for a 64-bit float")
    return number


def kind_of(value: Any) -> str:
    """"a string", "null", "a list" ... for messages."""
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


@lru_cache(maxsize=32)
def _decoder(text: str) -> msgspec.json.Decoder:
    """A decoder for the minimal type that holds only the score path's fields."""
    kind: Any = float
    for depth, (field, is_list) in enumerate(reversed(ScorePath(text).steps)):
        if is_list:
            kind = list[kind]
        kind = msgspec.defstruct(f"_Level{depth}", [("v", kind)], rename={"v": field})
    return msgspec.json.Decoder(kind)


def _extractor(steps: tuple[tuple[str, bool], ...]) -> Callable[[Any], list[float]]:
    """Builds ``obj -> [scores]`` for the structs of :func:`_decoder` (fields are all named ``v``)."""
    if len(steps) == 1:
        return (lambda obj: obj.v) if steps[0][1] else (lambda obj: [obj.v])
    if steps == ((steps[0][0], True), (steps[1][0], False)):  # the common "reward[].score" shape
        return lambda obj: [item.v for item in obj.v]
    inner = _extractor(steps[1:])
    if steps[0][1]:
        return lambda obj: [score for item in obj.v for score in inner(item)]
    return lambda obj: inner(obj.v)
