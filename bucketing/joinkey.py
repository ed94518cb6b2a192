"""Join keys (``--join-on``): 16 bytes per value, equal exactly when the values' canonical JSON is; and a type code.

Values compare as ``--group-by`` compares them (1 and 1.0 alike, object keys in any order, "1" and 1 not).  A
value whose canonical spelling is an integer in the 64-bit range (an index, the usual join key) is kept as
itself: its 8 bytes and the tag :data:`INT_TAG` -- so a parquet integer column needs no Python call per value
(:func:`int_keys`).  Any other value is kept as the 16-byte BLAKE2b digest of its canonical spelling; a digest
whose second half happens to be the tag has a bit flipped, so no digest is ever an integer's key.

The load's scan reads a rollout's key beside its scores (:meth:`bucketing.layout.Layout.join_reader` declares
the field in the line's msgspec struct): as a 64-bit integer where it is one, kept in an array of integers that
becomes the keys at once (:func:`scanned_keys`), else as raw JSON; :mod:`bucketing.join` reads it back the slow
way for layouts that can't declare it there.  A line without the field (or with null, or too deep to compare) has no key: its kind is
:data:`NO_KEY` and its key all zeros.
"""

from __future__ import annotations

import hashlib
from array import array
from functools import lru_cache
from typing import Any

import msgspec
import numpy as np

from .layout import KEY_BYTES, canonical_raw, canonical_value, field_reader
from .scorepath import BadScores, group_path, walk

MISSING = msgspec.UNSET  # a field the line doesn't have (or has as null)
NO_KEY = 0  # the kind of a line without a key
KINDS = ("", "number", "string", "list", "object", "boolean")  # a key's JSON type by its code (0: no key)
INT_TAG = 0x746E692D6E696F6A  # b"join-int" read as a little-endian uint64: the second half of an integer's key
_TAG = INT_TAG.to_bytes(8, "little")
_CODES = {ord('"'): 2, ord("["): 3, ord("{"): 4, ord("t"): 5, ord("f"): 5}
_NONE = bytes(KEY_BYTES)
_LOW, _HIGH = -(1 << 63), 1 << 63


def kind_code(first: int) -> int:
    """The JSON type code of a value by its first byte (see :data:`KINDS`)."""
    return _CODES.get(first, 1)


def key_of_canonical(canonical: bytes) -> bytes:
    """The join key of a canonical JSON spelling (see the module's doc)."""
    if canonical[:1] in b"-0123456789" and canonical.lstrip(b"-").isdigit():  # an integer: JSON spells it one way
        number = int(canonical)
        if _LOW <= number < _HIGH:
            return number.to_bytes(8, "little", signed=True) + _TAG
    digest = hashlib.blake2b(canonical, digest_size=KEY_BYTES).digest()
    return digest if digest[8:] != _TAG else bytes([digest[0] ^ 1]) + digest[1:]


def raw_join_key(raw: Any, field: str) -> bytes:
    """The join key of one field's raw JSON value; raises :class:`BadScores` for a missing or null value, or one
    too deep to compare."""
    data = bytes(raw)
    if data.isdigit() and len(data) < 19 and (data[0] != 48 or len(data) == 1):  # the common index: no parsing
        return int(data).to_bytes(8, "little") + _TAG
    return key_of_canonical(canonical_raw(data, field))


def value_join_key(value: Any, field: str) -> bytes:
    """The join key of a value already in Python (a parquet cell); raises :class:`BadScores` like the above."""
    if type(value) is int and _LOW <= value < _HIGH:
        return value.to_bytes(8, "little", signed=True) + _TAG
    return key_of_canonical(canonical_value(value, field))


def int_keys(values: np.ndarray) -> np.ndarray:
    """The join keys (rows, 2) of integers (any numpy integer type; uint64 at most 2**63 - 1), vectorised."""
    keys = np.empty((len(values), 2), dtype="<u8")
    keys[:, 0] = values.astype(np.int64).view(np.uint64)
    keys[:, 1] = INT_TAG
    return keys


def scanned_keys(integers: array, others: list[tuple[int, bytes, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The join keys and kinds of a scan's lines (see :func:`bucketing.parse.scan`): ``integers`` holds each line's
    key as an integer, but where ``others`` has ``(line, key, kind)`` for it (another value, or none)."""
    keys = int_keys(np.frombuffer(integers, dtype=np.int64))
    kinds = np.full(len(integers), KINDS.index("number"), dtype=np.uint8)
    if others:
        lines, other_keys, other_kinds = zip(*others)
        at = np.array(lines, dtype=np.int64)
        keys[at] = np.frombuffer(b"".join(other_keys), dtype="<u8").reshape(-1, 2)
        kinds[at] = other_kinds
    return keys, kinds


def key_of_raw(raw: Any, field: str) -> tuple[bytes, int]:
    """``(key, kind)`` of one field's raw JSON value (or MISSING): ``(zeros, NO_KEY)`` when it has no key."""
    if raw is MISSING:
        return _NONE, NO_KEY
    try:
        key = raw_join_key(raw, field)
    except BadScores:  # null, or too deep to compare
        return _NONE, NO_KEY
    return key, _CODES.get(memoryview(raw)[0], 1)


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
        item = walk(value, group_path(field))
        found.append(MISSING if item is None else msgspec.Raw(msgspec.json.encode(item)))
    return found
