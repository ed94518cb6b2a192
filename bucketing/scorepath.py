"""Where a line's scores live: ``reward[].score``, ``rewards[]``, ``score`` ...

A score path is dot-separated field names; ``[]`` after a name means "a list:
take every element".  This module parses paths, walks parsed JSON values
slowly to name what is wrong with a line, and names the reasons a line is
skipped; :mod:`bucketing.layout` builds the fast decoder.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

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
MISSING_GROUP = "missing group field"
REASONS = (INVALID_UTF8, INVALID_JSON, TRUNCATED, TOO_DEEP, NOT_OBJECT, MISSING, NOT_LIST, EMPTY,
           NOT_NUMBER, NOT_FINITE, TOO_LONG, MISSING_GROUP)


class BadScores(Exception):
    """A decoded line whose scores are missing or unusable."""

    def __init__(self, reason: str, detail: str):
        super().__init__(reason, detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class ScorePath:
    text: str
    booleans: bool = False  # true/false are scores 1/0 (only when the user named the path)

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
        return [_number(value, where.rstrip("."), self.booleans) for value, where in items]


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
