"""How a line is read: where its scores are, and which of its fields say what rollout it belongs to.

By default one line is one rollout.  With group fields (``--group-by input``) every
line whose values of those fields are equal belongs to the same rollout, across
files, as in trainers' dumps of one line per response.  A line's group is kept as
a 16-byte hash of its values, never as text.

Two quick readers pull a line's scores (and group key), both skipping everything
else in C: :meth:`Layout.short_lines` with simdjson, which checks UTF-8 as it
goes (10-25 % faster than msgspec plus a separate UTF-8 check on long lines), for
lines between SMALL_LINE and SHORT_LINE of layouts that don't group; and
:attr:`Layout.reader`, a msgspec type that declares only the score path and the
group fields, for the others (on short lines msgspec's decode into typed structs
costs less Python per line than simdjson's; simdjson needs a few times a line's
size in memory, msgspec none).  A line that a quick
reader refuses goes to :func:`bucketing.parse.second_look`, which names the reason
or accepts it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from types import GenericAlias
from typing import Annotated, Any

import msgspec
import simdjson

from .errors import BucketingError
from .scorepath import (
    EACH,
    MISSING_GROUP,
    TOO_DEEP,
    BadScores,
    ScorePath,
    Step,
    group_path,
    group_path_text,
    parse_field,
    split_outside_keys,
    walk,
)

KEY_BYTES = 16  # one group key per line: a BLAKE2b digest of the group fields' values
FILE = "@file"  # a group "field" that is the file a line is in: lines group only within one file
SHORT_LINE = 1 << 20  # longer lines are read by msgspec (see above)
# Lines up to this are read by msgspec even where simdjson could: its per-line Python is the smaller part of a short
# line's cost (a 200-byte line 4.2 us against 7 us, a 2 KB one 6.6 against 10; even at 20 KB, faster beyond)
SMALL_LINE = 16 << 10
_CANONICAL = msgspec.json.Encoder(order="sorted")
_UNSET = msgspec.UNSET
# A join field declared as this hands over a 64-bit integer as itself (no raw JSON to parse); any other value
# (a string, 1.0, a larger integer, null) fails the line's typed decode, and the scan reads it again with Raw
INT64 = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]


def parse_group_by(text: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"step,input"`` or ``["step", "input"]`` -> ``("step", "input")``; None or ``[]`` -> ``()``."""
    if text is None or (not text and not isinstance(text, str)):
        return ()
    items = [text] if isinstance(text, str) else list(text)
    parts = [part.strip() for item in items for part in split_outside_keys(item, ",")]
    if not any(parts):
        raise BucketingError(f"--group-by {text!r} names no field: give one or more, e.g. input or step,input")
    fields = tuple(part if part == FILE else group_path_text(group_path(part)) for part in parts if part)
    if len(set(fields)) < len(fields):
        raise BucketingError(f"--group-by names a field twice: {','.join(fields)}")
    return fields


@dataclass(frozen=True)
class Layout:
    """Where the scores are, which fields group lines into rollouts, and whether booleans count as 1/0."""

    scores: str  # a score path, e.g. "reward[].score"
    group_by: tuple[str, ...] = ()
    booleans: bool = False  # true/false score 1/0: only when the user named the score path
    name: str = ""  # the known layout it was detected as, e.g. "verl dump"

    @classmethod
    def parse(cls, scores: str, group_by=None, *, booleans: bool = False, name: str = "") -> Layout:
        layout = cls(ScorePath.parse(scores).text, parse_group_by(group_by), booleans, name)
        layout.reader  # noqa: B018  (refuses a group field that runs into the score path, now)
        return layout

    @property
    def path(self) -> ScorePath:
        return ScorePath(self.scores, self.booleans)

    @property
    def grouped(self) -> bool:
        return bool(self.group_by)

    @property
    def fields(self) -> tuple[str, ...]:
        """The group fields read from a line (``@file`` is not one)."""
        return tuple(field for field in self.group_by if field != FILE)

    def file_key(self, rel: str) -> Callable[[bytes], bytes] | None:
        """With ``@file``: turns a line's group key into one that is equal only within file ``rel``."""
        if FILE not in self.group_by:
            return None
        name = rel.encode("utf-8", "surrogatepass")
        return lambda key: _digest([name, key])

    def short_lines(self) -> Callable[[Any], list[float | int]] | None:
        """A new reader of short lines, ``read(line) -> scores``, with its own parser (one per scan).

        Scores come as Python numbers (ints stay ints: the scan stores them as floats).
        Raises :class:`Refused` for anything it can't vouch for: invalid JSON or UTF-8, a field
        the path needs given twice, scores that aren't a non-empty list of numbers ...
        None for a grouping layout: its key hashes the group values' raw JSON, which only
        msgspec hands over (simdjson makes a str of a prompt to encode it again: 40 % slower).
        """
        if self.grouped or not _plain(self.path):
            return None
        parse = simdjson.Parser().parse
        steps = _listed(self.path.steps)
        field = steps[0][0]
        scores_of = _walker(steps, self.booleans)

        def read(line: Any) -> list[float | int]:
            try:
                document = parse(line)
                if type(document) is not simdjson.Object or list(document.keys()).count(field) != 1:
                    raise Refused  # missing, or given twice: simdjson would take the first, Python's json the last
                value = _python(document[field])
            except (ValueError, RuntimeError):  # invalid JSON or UTF-8, too deep, an integer beyond 64 bits
                raise Refused from None
            finally:
                document = None  # noqa: F841  (the parser can't parse again while a part of its document lives)
            return scores_of(value)

        return read

    @property
    def reader(self) -> LineReader:
        reader = _reader(self.scores, self.group_by, self.booleans)  # cached: layouts travel to worker processes
        assert reader is not None  # only a join field can't be declared
        return reader

    def join_reader(self, field: str, integer: bool = False) -> LineReader | None:
        """The reader that also hands over the raw JSON of the join field ``field`` (:attr:`LineReader.join`);
        None when the line's struct can't declare it beside the others (it is, or lies inside, a top-level field
        of the scores, or it holds or lies inside a group field): the join then reads it back after the load.

        ``integer``: the field declared as a 64-bit integer instead (:data:`INT64`), handed over as an int; a
        line whose field holds anything else fails this reader's decode (ValidationError). None also when the
        field is a group field (its key needs the raw JSON)."""
        return _reader(self.scores, self.group_by, self.booleans, field, integer)

    def flags(self) -> list[str]:
        """The command-line flags that select this layout."""
        return ["--scores", self.scores] + (["--group-by", ",".join(self.group_by)] if self.group_by else [])

    def describe(self) -> str:
        """One line for people: what a rollout is and where its scores are."""
        within = " in the same file" if FILE in self.group_by else ""
        unit = (
            f"lines with equal {', '.join(self.fields)}{within}"
            if self.fields
            else "the lines of one file"
            if self.group_by
            else "one line"
        )
        known = f"{self.name}: " if self.name else ""
        return f"{known}one rollout = {unit}; scores at {self.scores}"

    def group_values(self, value: Any, rel: str) -> dict[str, Any]:
        """What a line of file ``rel`` is grouped by: each group field's value (None where it has none)."""
        found: dict[str, Any] = {}
        for field in self.group_by:
            if field == FILE:
                found[field] = rel
                continue
            found[field] = walk(value, group_path(field))
        return found

    def key_of_value(self, value: dict) -> bytes:
        """The group key of an already-parsed line (the slow path); raises :class:`BadScores`."""
        parts = []
        for field in self.fields:
            item = walk(value, group_path(field))
            if item is None:
                raise BadScores(MISSING_GROUP, f"no field {field}, or it is null")
            parts.append(_canonical(item, field))
        return _digest(parts)


class Refused(Exception):
    """The short-line reader can't vouch for a line: look at it again, slowly."""


def _python(value: Any) -> Any:
    if type(value) is simdjson.Array:
        return value.as_list()
    if type(value) is simdjson.Object:
        return value.as_dict()
    return value


def _walker(steps: tuple[tuple[str, bool], ...], booleans: bool) -> Callable[[Any], list[float | int]]:
    """The first field's value -> its scores along the rest of the path; raises :class:`Refused` for anything
    unusual (the second look names it)."""
    numbers = frozenset((float, int, bool) if booleans else (float, int))

    def checked(scores: list) -> list[float | int]:
        if not scores or not set(map(type, scores)) <= numbers:
            raise Refused
        return scores

    first_is_list, rest = steps[0][1], steps[1:]
    if first_is_list and len(rest) == 1 and not rest[0][1]:  # the common "reward[].score" shape
        inner = rest[0][0]

        def field_of_each(items: Any) -> list[float | int]:
            if type(items) is not list:
                raise Refused
            try:
                return checked([item[inner] for item in items])
            except (KeyError, TypeError):  # an item without the field, or not an object
                raise Refused from None

        return field_of_each

    def scores_of(value: Any) -> list[float | int]:
        items = [value]
        for index, (field, is_list) in enumerate(steps):
            if index:  # the first field was taken by the reader
                if not all(type(item) is dict and field in item for item in items):
                    raise Refused
                items = [item[field] for item in items]
            if is_list:
                if not all(type(item) is list and item for item in items):
                    raise Refused
                items = [element for item in items for element in item]
        return checked(items)

    return scores_of


@dataclass(frozen=True)
class LineReader:
    """The fast path: ``decode(line)`` then ``scores(obj)`` and ``key(obj)`` (None when not grouped); ``join(obj)``:
    the raw JSON of the join field (an int, declared as one), or UNSET (None unless made by
    :meth:`Layout.join_reader`)."""

    decode: Callable[[Any], Any]
    scores: Callable[[Any], list]
    key: Callable[[Any], bytes] | None
    join: Callable[[Any], Any] | None = None


def _plain(path: ScorePath) -> bool:
    """One path of fields and ``[]``: the shape the typed readers below declare (no index, no sum)."""
    return path.single and all(op in (None, EACH) for _, op in path.steps)


def _listed(steps: tuple[Step, ...]) -> tuple[tuple[str, bool], ...]:
    """A plain path's steps as ``(field, is_list)``."""
    return tuple((key, op == EACH) for key, op in steps)


@lru_cache(maxsize=32)
def _reader(
    scores: str, group_by: tuple[str, ...], booleans: bool, join_on: str = "", integer: bool = False
) -> LineReader | None:
    path = ScorePath(scores, booleans)
    firsts = list(dict.fromkeys(steps[0][0] for _, steps in path.terms))  # the top-level fields the scores need
    grouped, group_by = bool(group_by), tuple(field for field in group_by if field != FILE)
    groups: dict[int, tuple] = {i: group_path(field) for i, field in enumerate(group_by)}
    for field, group_steps in zip(group_by, groups.values()):
        if group_steps[0] in firsts:
            raise BucketingError(
                f"--group-by {field} and the scores at {scores} share the field {group_steps[0]}; "
                "group by a field outside the scores"
            )
    join = None
    if join_on:
        join = _join_path(groups, parse_field(join_on), firsts)
        if join is None or (integer and join in groups):
            return None
        groups.setdefault(join, parse_field(join_on))
    fields, rename, reach = _group_fields(groups, 0, {join: INT64} if integer and join is not None else {})
    if _plain(path):
        steps = _listed(path.steps)
        score_type = _score_type(steps[1:], bool | float if booleans else float)
        fields.insert(0, ("s", _list_of(score_type) if steps[0][1] else score_type))
        rename["s"] = steps[0][0]
        extract = _extractor(steps)
    else:  # an index or a sum: the fields the scores need, raw, walked once decoded
        for i, first in enumerate(firsts):
            fields.insert(i, (f"t{i}", msgspec.Raw, _UNSET))
            rename[f"t{i}"] = first
        extract = _raw_extractor(path, firsts)
    line_type = msgspec.defstruct("_Line", fields, rename=rename)
    key = _key_function([(field, reach[i]) for i, field in enumerate(group_by)]) if grouped else None
    join_raw = None if join is None else _raw_getter(reach[join])
    return LineReader(msgspec.json.Decoder(line_type).decode, extract, key, join_raw)


def _join_path(groups: dict[int, tuple], steps: tuple[str, ...], firsts: list[str]) -> int | None:
    """Which of the struct's field paths the join field is: a group field's own, or a new one; None when it
    can't be declared (it shares a top-level field with the scores, or holds or lies inside a group field)."""
    if steps[0] in firsts:
        return None
    for i, group in groups.items():
        if group == steps:
            return i
        shorter = min(len(group), len(steps))
        if group[:shorter] == steps[:shorter]:
            return None
    return len(groups)


def _raw_getter(attributes: tuple[str | int, ...]) -> Callable[[Any], Any]:
    """``obj -> raw JSON`` along the struct's attributes, UNSET where the field or an object on the way is missing
    (or null): what :func:`field_reader` hands over for the field."""
    if len(attributes) == 1 and isinstance(attributes[0], str):
        return attrgetter(attributes[0])  # in C: no Python call per line
    return lambda obj: _along(obj, attributes)


def _along(obj: Any, attributes: tuple[str | int, ...]) -> Any:
    """The raw value along the struct's attributes (an int: a list's index), UNSET where a field, an object on
    the way or the index is missing (or null)."""
    item = obj
    for attribute in attributes:
        if item is None or item is _UNSET:
            return _UNSET
        if isinstance(attribute, int):
            item = item[attribute] if -len(item) <= attribute < len(item) else _UNSET
        else:
            item = getattr(item, attribute)
    return _UNSET if item is None else item


def _raw_extractor(path: ScorePath, firsts: list[str]) -> Callable[[Any], list]:
    """``obj -> [scores]`` for a path with an index or a sum of paths, from the raw top-level fields."""
    attributes = [f"t{i}" for i in range(len(firsts))]

    def extract(obj: Any) -> list:
        value = {}
        for first, attribute in zip(firsts, attributes):
            raw = getattr(obj, attribute)
            if raw is _UNSET:
                raise Refused
            value[first] = msgspec.json.decode(raw)
        try:
            return path.scores_of(value)
        except BadScores:
            raise Refused from None

    return extract


def _score_type(steps: tuple[tuple[str, bool], ...], score: Any) -> Any:
    """Nested structs, one per step below the first, each holding only the next step as attribute ``s``."""
    kind = score
    for depth, (field, is_list) in enumerate(reversed(steps)):
        kind = msgspec.defstruct(f"_Score{depth}", [("s", _list_of(kind) if is_list else kind)], rename={"s": field})
    return kind


def _list_of(kind: Any) -> Any:
    """``list[kind]`` for a type made at run time (a msgspec struct), spelled so that a type checker reads a call."""
    return GenericAlias(list, kind)


def _group_fields(
    paths: dict[int, tuple[str | int, ...]], depth: int, types: dict[int, Any] | None = None
) -> tuple[list, dict, dict[int, tuple[str | int, ...]]]:
    """Struct fields for the group paths at one level: ``g{i}`` raw JSON (or of type ``types[i]``), ``o{j}``
    objects on the way.

    Returns the fields, their renames to the JSON names, and per group field the attributes that reach it.
    All default to UNSET: a line without them is a bad line with a reason, not a decode error.
    """
    fields: list[tuple] = []
    rename: dict[str, str] = {}
    reach: dict[int, tuple[str | int, ...]] = {}
    nested: dict[str, dict[int, tuple[str | int, ...]]] = {}
    for i, steps in paths.items():
        first = str(steps[0])  # a path's first step is a key (an index only ends one)
        if len(steps) == 2 and isinstance(steps[1], int):  # a list, and the index of the value: content[0]
            fields.append((f"g{i}", list[msgspec.Raw] | None, _UNSET))
            rename[f"g{i}"], reach[i] = first, (f"g{i}", steps[1])
        elif len(steps) == 1:
            fields.append((f"g{i}", (types or {}).get(i, msgspec.Raw), _UNSET))
            rename[f"g{i}"], reach[i] = first, (f"g{i}",)
        else:
            nested.setdefault(first, {})[i] = steps[1:]
    for j, (name, inner) in enumerate(nested.items()):
        if name in rename.values():
            raise BucketingError(f"--group-by names both {name} and a field inside it; choose one")
        sub_fields, sub_rename, sub_reach = _group_fields(inner, depth + 1, types)
        sub = msgspec.defstruct(f"_Group{depth}_{j}", sub_fields, rename=sub_rename)
        fields.append((f"o{j}", sub | None, _UNSET))
        rename[f"o{j}"] = name
        reach.update({i: (f"o{j}", *attributes) for i, attributes in sub_reach.items()})
    return fields, rename, reach


def _key_function(getters: list[tuple[str, tuple[str | int, ...]]]) -> Callable[[Any], bytes]:
    if not getters:  # @file alone: every line of a file is one rollout
        return lambda obj: _digest([])
    field, path = getters[0]
    if len(getters) == 1 and len(path) == 1 and isinstance(path[0], str):  # one top-level field: no loops
        attribute = path[0]

        def one_field_key(obj: Any) -> bytes:
            return _digest([_canonical_raw(getattr(obj, attribute), field)])

        return one_field_key

    def key(obj: Any) -> bytes:
        return _digest([_canonical_raw(_along(obj, attributes), field) for field, attributes in getters])

    return key


# escapes that msgspec's encoder also writes, and only so: a string that uses no others is canonical
_NOT_CANONICAL = (b"\\u", b"\\/")


def _canonical_raw(raw: Any, field: str) -> bytes:
    """The canonical spelling of a raw JSON value (see :func:`_canonical`); raises for a missing or null one."""
    if raw is _UNSET or raw is None:  # None: a sub-object on the way is null
        raise BadScores(MISSING_GROUP, f"no field {field}")
    raw = bytes(raw)
    if raw[:1] == b'"' and _NOT_CANONICAL[0] not in raw and _NOT_CANONICAL[1] not in raw:
        return raw  # the common case, and the cheap one
    if raw.isdigit() and (raw[:1] != b"0" or raw == b"0"):
        return raw  # a non-negative integer (an index, the usual join key): JSON spells it one way
    if raw == b"null":
        raise BadScores(MISSING_GROUP, f"{field} is null")
    try:
        value = msgspec.json.decode(raw)
    except msgspec.ValidationError:  # a number beyond a double's range (1e400): no value to compare
        raise BadScores(MISSING_GROUP, f"{field} holds a number beyond a double's range") from None
    return _canonical(value, field)


def _canonical(value: Any, field: str) -> bytes:
    """One spelling per JSON value: object keys sorted, 12 and 12.0 alike, "\\u00e9" and "é" alike."""
    try:
        return _CANONICAL.encode(_integral(value))
    except RecursionError:
        raise BadScores(TOO_DEEP, f"{field} has more levels of [ ] and {{ }} than can be compared") from None


def _integral(value: Any) -> Any:
    """``value`` with every float that is a whole number made an int, at any depth."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value


def _digest(parts: list[bytes]) -> bytes:
    if len(parts) == 1:
        return hashlib.blake2b(parts[0], digest_size=KEY_BYTES).digest()
    digest = hashlib.blake2b(digest_size=KEY_BYTES)
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.digest()


def _extractor(steps: tuple[tuple[str, bool], ...]) -> Callable[[Any], list]:
    """Builds ``obj -> [scores]`` for the structs of :func:`_score_type` (the score path is attribute ``s``)."""
    if len(steps) == 1:
        return (lambda obj: obj.s) if steps[0][1] else (lambda obj: [obj.s])
    if steps == ((steps[0][0], True), (steps[1][0], False)):  # the common "reward[].score" shape
        return lambda obj: [item.s for item in obj.s]
    inner = _extractor(steps[1:])
    if steps[0][1]:
        return lambda obj: [score for item in obj.s for score in inner(item)]
    return lambda obj: inner(obj.s)


def field_reader(fields: tuple[str, ...]) -> Callable[[Any], list[Any]]:
    """``read(line) -> [raw JSON of each field, or UNSET]``: only those fields decoded (msgspec skips the rest in C).

    Raises msgspec's errors for a line that is not a JSON object.  What :func:`canonical_raw` spells as
    ``--group-by`` of the same field does (the join of a training set reads its keys with it).
    """
    fields_, rename, reach = _group_fields({i: group_path(field) for i, field in enumerate(fields)}, 0)
    decode = msgspec.json.Decoder(msgspec.defstruct("_Fields", fields_, rename=rename)).decode
    paths = [reach[i] for i in range(len(fields))]

    def read(line: Any) -> list[Any]:
        obj = decode(line)
        return [_along(obj, attributes) for attributes in paths]

    return read


def canonical_raw(raw: Any, field: str) -> bytes:
    """The canonical JSON spelling of one field's raw JSON value (what its ``--group-by`` key hashes); raises
    :class:`BadScores` for a missing or null value, or one too deep to compare."""
    return _canonical_raw(raw, field)


def canonical_value(value: Any, field: str) -> bytes:
    """The canonical JSON spelling of a value already in Python (a parquet cell): the one its JSON spelling gets."""
    return _canonical(value, field)
