"""A rollout line's join key (``--join-on``): the 16-byte hash of the field's canonical value, and its JSON type.

The load's scan reads it beside the scores (:meth:`bucketing.layout.Layout.join_reader` declares the field in the
line's msgspec struct); :mod:`bucketing.rolloutfields` reads it back the slow way for layouts that can't declare
it there.  Both give the key ``--group-by`` of the field gives (1 and 1.0 alike, object keys in any order), and
both go through :func:`key_of_raw`.  A line without the field (or with null, or too deep to compare) has no key:
its kind is :data:`NO_KEY` and its key all zeros.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from .layout import KEY_BYTES, field_reader, raw_key
from .scorepath import BadScores, parse_field

MISSING = msgspec.UNSET  # a field the line doesn't have (or has as null)
NO_KEY = 0  # the kind of a line without a key
KINDS = ("", "number", "string", "list", "object", "boolean")  # a key's JSON type by its code (0: no key)
_CODES = {ord('"'): 2, ord("["): 3, ord("{"): 4, ord("t"): 5, ord("f"): 5}
_NONE = bytes(KEY_BYTES)


def kind_code(first: int) -> int:
    """The JSON type code of a value by its first byte (see :data:`KINDS`)."""
    return _CODES.get(first, 1)


def key_of_raw(raw: Any, field: str) -> tuple[bytes, int]:
    """``(key, kind)`` of one field's raw JSON value (or MISSING): ``(zeros, NO_KEY)`` when it has no key."""
    if raw is MISSING:
        return _NONE, NO_KEY
    data = bytes(raw)
    try:
        key = raw_key(data, field)
    except BadScores:  # null, or too deep to compare
        return _NONE, NO_KEY
    return key, _CODES.get(data[0], 1)


def key_of_line(line: Any, field: str) -> tuple[bytes, int]:
    """``(key, kind)`` of a whole line (the slow path: a line the scan's quick reader refused, then accepted)."""
    try:
        try:
            (raw,) = _reader(field)(line)
        except msgspec.ValidationError:  # an object on the way is something else (a string): the field is missing
            (raw,) = field_values(msgspec.json.decode(line), (field,))
    except (msgspec.DecodeError, RecursionError):  # what the scan accepted only Python's json reads: no key
        return _NONE, NO_KEY
    return key_of_raw(raw, field)


@lru_cache(maxsize=8)
def _reader(field: str):
    return field_reader((field,))


def field_values(value: Any, fields: tuple[str, ...]) -> list[Any]:
    """Each field of an already-decoded line as raw JSON (or MISSING): the slow path of :func:`field_reader`."""
    found: list[Any] = []
    for field in fields:
        item = value
        for step in parse_field(field):
            item = item.get(step) if isinstance(item, dict) else None
        found.append(MISSING if item is None else msgspec.Raw(msgspec.json.encode(item)))
    return found
