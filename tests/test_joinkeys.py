"""Join keys read by the load's own scan (``load(join_on=...)``) are those of a plain re-read of each rollout's
first line: the same 16-byte key, the same JSON type, "no key" for the same rollouts.

Two oracles: :func:`bucketing.join.read_keys` (the second pass over the files the join made before), byte for
byte; and plain Python: ``json.loads`` of the first line's bytes, the field walked, its value spelled canonically
by ``json.dumps`` (whole floats made ints, keys sorted): two rollouts' keys are equal exactly when those are.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bucketing
from bucketing.join import _sorted_keys, read_keys
from bucketing.joinkey import KINDS, NO_KEY, int_keys, raw_join_key, value_join_key
from bucketing.layout import KEY_BYTES
from bucketing.scorepath import parse_field
from bucketing.trainset import find_source, read_rows

SCORES = "reward[].score"


def python_key(value, field: str) -> tuple[str, str]:
    """The oracle: a decoded first line's value, spelled canonically, and its type ("", "" for no key)."""
    for step in parse_field(field):
        value = value.get(step) if isinstance(value, dict) else None
    if value is None:
        return "", ""
    kind = {str: "string", list: "list", dict: "object", bool: "boolean"}.get(type(value), "number")
    return json.dumps(integral(value), sort_keys=True, ensure_ascii=True), kind


def integral(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [integral(item) for item in value]
    if isinstance(value, dict):
        return {key: integral(item) for key, item in value.items()}
    return value


def first_lines(data: bucketing.Dataset) -> list[bytes]:
    rows = data.rollout_columns
    lines = []
    for file_id, offset, length in zip(rows["file_id"], rows["offset"], rows["length"]):
        with open(data.files[int(file_id)].path, "rb") as f:
            f.seek(int(offset))
            lines.append(f.read(int(length)))
    return lines


def check(data: bucketing.Dataset, field: str, oracle: list[tuple[str, str]] | None = None) -> None:
    """The scan's keys equal the re-read's, and the oracle's when given (one per rollout, in rollout order)."""
    assert data.join_on == field and data.join_keys is not None and data.join_kinds is not None
    keys, kinds = read_keys(data, field)
    assert data.join_keys.shape == (len(data.scores), 2) and data.join_keys.dtype == np.dtype("<u8")
    assert data.join_keys.tobytes() == keys.tobytes()
    assert data.join_kinds.tolist() == kinds.tolist()
    if oracle is not None:
        same_keys(data.join_keys, [spelling for spelling, _ in oracle])
        assert [KINDS[code] for code in data.join_kinds.tolist()] == [kind for _, kind in oracle]
    assert ((data.join_kinds == NO_KEY) == (data.join_keys == 0).all(axis=1)).all()


def same_keys(keys: np.ndarray, spellings: list[str]) -> None:
    """Keys equal exactly where the canonical spellings are (all zeros where there is none)."""
    by_key: dict[bytes, set[str]] = {}
    for key, spelling in zip(keys, spellings):
        by_key.setdefault(key.tobytes(), set()).add(spelling)
    assert all(len(spelling) == 1 for spelling in by_key.values())
    assert len(by_key) == len(set(spellings))
    assert all((key == bytes(KEY_BYTES)) == (spelling == {""}) for key, spelling in by_key.items())


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.sampled_from([0, 1, 1.0, 2.0, -0.0, 1e16, "1", "é", "\u2028", 'a"b', "a/b"])
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=6,
)
META = st.none() | st.just("a string") | st.dictionaries(st.sampled_from(["id", "x"]), JSON_VALUES, max_size=2)


def write_lines(path: Path, rows: list[dict], rng: random.Random) -> None:
    """JSONL in varied spellings: escaped or raw UTF-8, spaced or tight, now and then a key given twice."""
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            text = json.dumps(row, ensure_ascii=rng.random() < 0.5, separators=rng.choice([(",", ":"), (", ", ": ")]))
            if rng.random() < 0.1:  # "reward" given twice, the first not a score list: only the slow path takes it
                text = '{"reward": "not yet", ' + text[1:]
            f.write(text + "\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ids=st.lists(st.tuples(JSON_VALUES | st.just("absent"), META | st.just("absent")), min_size=1, max_size=12),
    field=st.sampled_from(["id", "meta.id", "meta"]),
    group=st.sampled_from([None, "p", "p,@file"]),
    seed=st.integers(0, 3),
)
def test_scan_keys_equal_a_re_read_of_each_first_line(tmp_path_factory, ids, field, group, seed):
    rng = random.Random(seed)
    folder = tmp_path_factory.mktemp("in")
    rows = []
    for i, (value, meta) in enumerate(ids):
        row: dict = {"p": f"q{i % 4}" if group else i, "reward": [{"score": rng.choice([0, 1])}]}
        if value != "absent":
            row["id"] = value
        if meta != "absent":
            row["meta"] = meta
        rows.append(row)
    write_lines(folder / "a.jsonl", rows[::2], rng)
    write_lines(folder / "b.jsonl", rows[1::2], rng)
    data = bucketing.load(folder, scores=SCORES, group_by=group, join_on=field, workers=1)
    check(data, field, [python_key(json.loads(line), field) for line in first_lines(data)])


@pytest.mark.parametrize(
    "group, field",
    [(None, "id"), ("p", "id"), ("p", "p"), ("meta.id", "meta.id"), ("p,meta.id", "meta.id"), (None, "meta.id")],
)
def test_grouped_jsonl_keys_are_each_rollout_s_first_line_s(tmp_path, group, field):
    """Several lines per rollout, their join values differing: the rollout's key is its first line's."""
    rows = [
        {
            "p": f"q{i % 5}",
            "id": [i, 1.0 * (i % 3)][i % 2],
            "meta": {"id": {"b": i % 2, "a": 1}},
            "reward": [{"score": 1}],
        }
        for i in range(40)
    ]
    write_lines(tmp_path / "r.jsonl", rows, random.Random(0))
    data = bucketing.load(tmp_path / "r.jsonl", scores=SCORES, group_by=group, join_on=field)
    check(data, field, [python_key(json.loads(line), field) for line in first_lines(data)])


@pytest.mark.parametrize("group, field", [("meta", "meta.id"), ("meta.id.a", "meta.id"), (None, "reward")])
def test_a_join_field_the_scan_cannot_declare_is_read_back_after_the_load(tmp_path, group, field):
    """It holds or lies inside a group field, or shares the scores' field: the keys come from a second pass."""
    rows = [{"meta": {"id": {"a": i % 3}}, "reward": [{"score": i % 2}]} for i in range(12)]
    write_lines(tmp_path / "r.jsonl", rows, random.Random(1))
    data = bucketing.load(tmp_path / "r.jsonl", scores=SCORES, group_by=group, join_on=field)
    assert data.join_keys is None
    keys, kinds = read_keys(data, field)
    oracle = [python_key(json.loads(line), field) for line in first_lines(data)]
    same_keys(keys, [spelling for spelling, _ in oracle])
    assert [KINDS[code] for code in kinds.tolist()] == [kind for _, kind in oracle]


@pytest.mark.parametrize("group", [None, "key"])
@pytest.mark.parametrize("field", ["extra_info.index", "key", "extra_info", "nope", "extra_info.nope"])
def test_parquet_scan_keys_equal_the_rows_values(tmp_path, group, field):
    """Parquet rows go through the line parser as JSON: their keys are those of the cells' values."""
    rows = [
        {
            "key": f"p{i % 7}",
            "reward": [{"score": float(i % 2)}],
            "extra_info": None if i == 3 else {"index": None if i == 5 else i * 3, "split": "train"},
        }
        for i in range(50)
    ]
    path = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=8)
    data = bucketing.load(path, scores=SCORES, group_by=group, join_on=field)
    table = pq.read_table(path).to_pylist()
    check(data, field, [python_key(table[int(row)], field) for row in data.rollout_columns["offset"]])
    if field == "extra_info.index":
        assert (data.join_kinds == NO_KEY).sum() == 2  # rows 3 and 5 (grouped: the first rows of p3 and p5)


def test_a_train_set_export_reads_the_rollouts_once(tmp_path, monkeypatch):
    """The command line asks the load for the join keys: no second pass over the rollouts."""
    from bucketing import join as join_module
    from bucketing.cli import main

    rows = [{"id": i, "reward": [{"score": i % 2}]} for i in range(20)]
    (tmp_path / "in").mkdir()
    write_lines(tmp_path / "in" / "r.jsonl", rows, random.Random(2))
    with open(tmp_path / "src.jsonl", "w") as f:
        f.writelines(json.dumps({"extra_info": {"index": float(i)}}) + "\n" for i in range(20))

    def no_second_pass(*args):
        raise AssertionError("the rollouts were read twice")

    monkeypatch.setattr(join_module, "rollout_fields", no_second_pass)
    code = main(
        ["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--train-set", str(tmp_path / "src.jsonl")]
        + ["--join-on", "id=extra_info.index", "--json", "--no-fsync"]
    )
    assert code in (0, None)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["train_set"]["matched_rollouts"] == 20


@settings(max_examples=300, deadline=None)
@given(number=st.integers(-(2**70), 2**70) | st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**63, 10**18, 10**19]))
def test_an_integer_has_one_key_however_it_is_spelled_or_stored(number):
    """Digits, a whole float's spelling, a Python int, an arrow integer column: one key (1 and 1.0 alike)."""
    key = raw_join_key(str(number).encode(), "id")
    assert value_join_key(number, "id") == key
    if abs(number) < 2**53:  # a float holds it exactly
        assert raw_join_key(str(number).encode() + b".0", "id") == key
        assert value_join_key(float(number), "id") == key
    if -(2**63) <= number < 2**63:
        assert int_keys(np.array([number], dtype=np.int64)).tobytes() == key
    assert raw_join_key(str(number + 1).encode(), "id") != key
    assert raw_join_key(json.dumps(str(number)).encode(), "id") != key  # "1" is not 1


@pytest.mark.parametrize(
    "kind, values",
    [
        (pa.int32(), [0, -5, 7, 2**31 - 1]),
        (pa.uint64(), [0, 5, 2**63 - 1]),
        (pa.uint64(), [0, 5, 2**63, 2**64 - 1]),  # beyond int64: per value
        (pa.float64(), [0.0, 1.0, 2.5, -3.0]),
        (pa.string(), ["a", "é", "\u2028", "1"]),
    ],
)
def test_a_source_column_s_keys_are_those_of_its_values_json(tmp_path, kind, values):
    path = tmp_path / "src.parquet"
    pq.write_table(
        pa.table({"extra_info": pa.array([{"index": v} for v in values], pa.struct([("index", kind)]))}), path
    )
    rows = read_rows(find_source(path), "extra_info.index")
    expected = b"".join(raw_join_key(json.dumps(value).encode(), "index") for value in values)
    assert rows.keys.tobytes() == expected


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=30))
def test_the_match_numbers_keys_equal_exactly_when_both_halves_are(pairs):
    """Keys are sorted by their first half alone unless two differ only in the second: numbering stays exact."""
    keys = np.array(pairs, dtype="<u8").reshape(-1, 2)
    order, starts = _sorted_keys(keys)
    number = np.empty(len(keys), dtype=np.int64)
    number[order] = np.cumsum(starts) - 1
    for i in range(len(keys)):
        for j in range(len(keys)):
            assert (number[i] == number[j]) == bool((keys[i] == keys[j]).all())


EDGE_VALUES = [
    "0", "-0", "1", "-1", "007x", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "-9223372036854775809", "100000000000000000000", "1.0", "1e2", "-2.0", "2.5", '"1"', '"7"', "true", "null",
    "[1]", '{"a": 1}', "absent",
]  # fmt: skip


@pytest.mark.parametrize("raw_after", [1, 3, 64])
@pytest.mark.parametrize("field", ["id", "meta.id"])
def test_integer_keys_read_as_ints_equal_those_read_as_raw_json(tmp_path, monkeypatch, raw_after, field):
    """The scan reads an integer join field as an int (no raw JSON), any other value as raw JSON (the line read
    again), and after RAW_KEYS_AFTER such lines every line as raw JSON: the keys are the same whichever way a
    line went, byte for byte the re-read's (which parses raw JSON alone), at the 64-bit edges too."""
    import importlib

    monkeypatch.setattr(importlib.import_module("bucketing.parse"), "RAW_KEYS_AFTER", raw_after)
    lines = []
    for i, value in enumerate(EDGE_VALUES * 2 + ["5", "-6", "12"] * 30):
        if value == "007x":
            value = str(7 + i)  # integers in between, so that both ways alternate
        inner = "" if value == "absent" else (f'"id": {value}, ' if field == "id" else f'"meta": {{"id": {value}}}, ')
        lines.append("{" + inner + f'"reward": [{{"score": {i % 2}}}]}}')
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    data = bucketing.load(tmp_path / "r.jsonl", scores=SCORES, join_on=field, workers=1)
    check(data, field, [python_key(json.loads(line), field) for line in first_lines(data)])
    assert data.join_kinds.tolist().count(KINDS.index("number")) > 100


def test_the_integer_reader_hands_over_ints_and_refuses_other_values():
    """What the scan's first decode sees: an int (64-bit), UNSET (no field), or a ValidationError (anything else)."""
    import msgspec

    from bucketing.layout import Layout

    reader = Layout.parse(SCORES).join_reader("meta.id", integer=True)
    assert reader is not None and reader.join is not None

    def join_of(inner: str):
        return reader.join(reader.decode(('{"reward": [{"score": 1}], ' + inner + "}").encode()))

    assert join_of('"meta": {"id": -9223372036854775808}') == -(2**63)
    assert join_of('"meta": {"id": 12}') == 12 and type(join_of('"meta": {"id": 12}')) is int
    assert join_of('"meta": {}') is msgspec.UNSET and join_of('"meta": null') is msgspec.UNSET
    for value in ("9223372036854775808", "1.0", '"1"', "null", "true", "[1]"):
        with pytest.raises(msgspec.ValidationError):
            join_of(f'"meta": {{"id": {value}}}')
    assert Layout.parse(SCORES, "id").join_reader("id", integer=True) is None  # a group field: raw JSON alone
    assert Layout.parse(SCORES, "id").join_reader("id") is not None


@pytest.mark.parametrize("kind", [pa.int8(), pa.int32(), pa.int64(), pa.uint16(), pa.uint64()])
def test_an_integer_column_s_values_are_read_from_its_buffer(kind):
    """What Array.to_numpy gives (without importing pandas), for slices and struct fields of slices too."""
    from bucketing.trainset import integer_values

    column = pa.array([3, 1, 4, 1, 5, 9, 2, 6], kind)
    struct = pa.StructArray.from_arrays([column], ["index"])
    for part in (column, column.slice(3, 4), column.slice(8), struct.slice(2, 5).field("index")):
        values = integer_values(part)
        assert values.tolist() == part.to_pylist() and values.dtype == part.to_numpy().dtype


def test_reading_a_parquet_source_s_integer_keys_does_not_import_pandas(tmp_path):
    """Array.to_numpy imports pandas (a quarter of a second): the source's keys are read without it."""
    import subprocess
    import sys

    path = tmp_path / "src.parquet"
    pq.write_table(pa.table({"extra_info": [{"index": i} for i in range(10)]}), path)
    code = (
        "import sys; from bucketing.trainset import find_source, read_rows; "
        f"rows = read_rows(find_source({str(path)!r}), 'extra_info.index'); "
        "assert rows.keys[:, 0].tolist() == list(range(10)); print('pandas' in sys.modules)"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert done.stdout.strip() == "False"


def sorted_numbers(keys: np.ndarray) -> np.ndarray:
    order, starts = _sorted_keys(keys)
    number = np.empty(len(keys), dtype=np.int64)
    number[order] = np.cumsum(starts) - 1
    return number


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from([0, 7, -3, -(2**63), 2**63 - 40, 2**40]),
    rollouts=st.lists(st.integers(0, 39), max_size=25),
    rows=st.lists(st.integers(0, 39), max_size=25),
    far=st.booleans(),
    digest=st.booleans(),
)
def test_integer_keys_numbered_without_a_sort_get_the_sort_s_numbers(base, rollouts, rows, far, digest):
    """Dense integer keys are numbered by their place in their span: the very numbers the sort gives (so which
    key is which, and the order of examples, don't depend on the path); sparse ones, and digests, are sorted."""
    from bucketing.join import _number_keys

    def keys(offsets: list[int]) -> np.ndarray:
        values = [max(min(base + offset, 2**63 - 1), -(2**63)) for offset in offsets]
        return int_keys(np.array(values, dtype=np.int64))

    ours, theirs = keys(rollouts), keys(rows)
    if far and len(theirs):  # one key far away: the span is too wide, the sort numbers them
        theirs[0, 0] ^= 1 << 62
    if digest and len(theirs):
        theirs[-1] = np.frombuffer(raw_join_key(b'"a string"', "id"), dtype="<u8")
    number, distinct = _number_keys(ours, theirs)
    both = np.concatenate([ours, theirs])
    assert number.tolist() == sorted_numbers(both).tolist()
    assert distinct == len({key.tobytes() for key in both})
