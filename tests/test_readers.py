"""The two quick readers agree: simdjson (lines up to SHORT_LINE) and msgspec (longer lines).

Every line of the hostile-input catalogue, trainers' dumps and group values that must or must
not match are loaded twice: as usual, and with SHORT_LINE = 0 so that every line goes through
msgspec.  Scores, group keys, line indexes and skip reasons must be the same.
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

import bucketing
from bucketing.layout import Layout
from examples.make_rollouts import make_rollouts

from .conftest import write_lines
from .test_bad_lines import ACCEPTED, SKIPPED
from .test_groups import DUMPS

parse_module = importlib.import_module("bucketing.parse")


def load_both(folder, monkeypatch, **options) -> tuple[bucketing.Dataset, bucketing.Dataset]:
    usual = bucketing.load(folder, workers=1, **options)
    with monkeypatch.context() as patch:
        patch.setattr(parse_module, "SHORT_LINE", 0)  # every line through msgspec
        long_lines = bucketing.load(folder, workers=1, **options)
    return usual, long_lines


def assert_same(a: bucketing.Dataset, b: bucketing.Dataset) -> None:
    assert a.line_columns.keys() == b.line_columns.keys()
    for name in a.line_columns:
        assert np.array_equal(a.line_columns[name], b.line_columns[name]), name
    assert np.array_equal(a.scores.flat, b.scores.flat) and np.array_equal(a.scores.counts, b.scores.counts)
    assert (a.keys is None) == (b.keys is None)
    if a.keys is not None:
        assert np.array_equal(a.keys, b.keys)
    assert a.skipped_lines == b.skipped_lines


@pytest.mark.parametrize("named", [False, True], ids=["detected", "named"])
def test_the_hostile_catalogue_reads_the_same_through_both_readers(tmp_path, monkeypatch, named):
    lines = [line for _, line, _ in ACCEPTED + SKIPPED if b"\n" not in line.rstrip(b"\r\n")]
    lines = [line for line in lines if line.startswith((b"{", b" ", b"\t")) or not line]
    for index, line in enumerate(lines):  # one file each: a bad first line must not change how others are read
        write_lines(tmp_path / f"{index:03d}.jsonl", [line, b'{"reward":[{"score":1}]}'])
    usual, long_lines = load_both(tmp_path, monkeypatch, scores="reward[].score" if named else None)
    assert_same(usual, long_lines)
    assert len(usual.skipped_lines) > 40 and usual.totals["rollouts"] > 70  # both kinds were read


@pytest.mark.parametrize("layout", list(DUMPS))
def test_trainer_dumps_read_the_same_through_both_readers(tmp_path, monkeypatch, layout):
    make_rollouts(tmp_path, rollouts=200, files=3, seed=7, layout=layout)
    scores, group_by, _ = DUMPS[layout]
    assert_same(*load_both(tmp_path, monkeypatch, scores=scores, group_by=group_by))


GROUP_VALUES = [b'"q"', b'"\\u00e9"', b'"\xc3\xa9"', b'"a\\/b"', b'"\\ud83d\\ude42"', b"12", b"12.0", b"-0.0",
                b"123456789012345678901", b"1e300", b'{"b": 1, "a": [1, 2.0]}', b'{"a": null}', b"true", b"[]",
                b"null", b'"x", "g": "dup"', b"[" * 600 + b"]" * 600]


def test_group_keys_are_the_same_through_both_readers(tmp_path, monkeypatch):
    lines = [b'{"g": ' + a + b', "score": ' + str(i % 3).encode() + b', "h": {"g": ' + b + b"}}"
             for i, (a, b) in enumerate(zip(GROUP_VALUES, GROUP_VALUES[3:] + GROUP_VALUES[:3]))]
    write_lines(tmp_path / "a.jsonl", lines)
    for group_by in ("g", "h.g", "g,h.g"):
        usual, long_lines = load_both(tmp_path, monkeypatch, scores="score", group_by=group_by)
        assert_same(usual, long_lines)
        assert usual.totals["rollouts"] >= len(GROUP_VALUES) // 2


def test_a_long_line_is_read_by_msgspec_and_a_short_one_by_simdjson(tmp_path, monkeypatch):
    """Each reader really reads its lines: the short-line reader is replaced by one that says 42."""
    short = json.dumps({"reward": [{"score": 1}]}).encode()
    long = json.dumps({"prompt": "x" * (1 << 20), "reward": [{"score": 0}]}).encode()
    write_lines(tmp_path / "a.jsonl", [short, long])
    monkeypatch.setattr(Layout, "short_lines", lambda self: lambda line: ([42.0], None))
    data = bucketing.load(tmp_path, workers=1, scores="reward[].score")
    assert data.scores.flat.tolist() == [42.0, 0.0]
