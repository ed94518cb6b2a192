"""The two quick readers agree: simdjson (lines between SMALL_LINE and SHORT_LINE) and msgspec (the others).

Every line of the hostile-input catalogue, generated rollouts and score paths of every shape
are loaded three times: as usual, with SMALL_LINE = 0 so that every line up to SHORT_LINE goes through
simdjson, and with SHORT_LINE = 0 so that every line goes through msgspec.
Scores, line indexes and skip reasons must be the same.  (Layouts that group lines are read
by msgspec alone; tests/test_groups.py covers them.)
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

import bucketing
from bucketing.layout import SMALL_LINE, Layout
from examples.make_rollouts import make_rollouts

from .conftest import write_lines
from .test_bad_lines import ACCEPTED, SKIPPED

parse_module = importlib.import_module("bucketing.parse")


def load_both(folder, monkeypatch, **options) -> tuple[bucketing.Dataset, bucketing.Dataset]:
    """The data read by simdjson wherever it can, and by msgspec alone (the usual read checked against both)."""
    usual = bucketing.load(folder, workers=1, **options)
    with monkeypatch.context() as patch:
        patch.setattr(parse_module, "SMALL_LINE", 0)  # every line up to SHORT_LINE through simdjson
        simdjson_lines = bucketing.load(folder, workers=1, **options)
    with monkeypatch.context() as patch:
        patch.setattr(parse_module, "SHORT_LINE", 0)  # every line through msgspec
        msgspec_lines = bucketing.load(folder, workers=1, **options)
    assert_same(usual, msgspec_lines)
    return simdjson_lines, msgspec_lines


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


def test_generated_rollouts_read_the_same_through_both_readers(tmp_path, monkeypatch):
    make_rollouts(tmp_path, rollouts=300, files=3, seed=7)
    assert_same(*load_both(tmp_path, monkeypatch))


SHAPES = {  # score path: lines (good and bad) for its shape
    "rewards[]": [
        b'{"rewards": [1, 0.5, -2]}',
        b'{"rewards": [true, 1]}',
        b'{"rewards": []}',
        b'{"rewards": 1}',
        b'{"rewards": [1, "1"]}',
        b'{"rewards": [[1]]}',
        b'{"rewards": [1], "rewards": [0]}',
    ],
    "score": [
        b'{"score": 1}',
        b'{"score": 2.5e-3}',
        b'{"score": true}',
        b'{"score": null}',
        b'{"score": [1]}',
        b'{"score": 18446744073709551615}',
        b'{"score": 184467440737095516150}',
        b'{"x": 1}',
    ],
    "a.b[].c[]": [
        b'{"a": {"b": [{"c": [1, 2]}, {"c": [3]}]}}',
        b'{"a": {"b": [{"c": []}]}}',
        b'{"a": {"b": [{"c": [1]}, {"d": [1]}]}}',
        b'{"a": {"b": {"c": [1]}}}',
        b'{"a": null}',
        b'{"a": {"b": [{"c": [1]}], "b": [{"c": [2]}]}}',
        b'{"a": {"b": [{"c": [false]}]}}',
    ],
}


@pytest.mark.parametrize("path", list(SHAPES))
def test_score_paths_of_every_shape_read_the_same_through_both_readers(tmp_path, monkeypatch, path):
    write_lines(tmp_path / "a.jsonl", SHAPES[path])
    usual, long_lines = load_both(tmp_path, monkeypatch, scores=path)
    assert_same(usual, long_lines)
    assert usual.totals["rollouts"] >= 2 and usual.skipped_lines


def test_layouts_that_group_lines_are_read_by_msgspec():
    """Their key hashes the group values' raw JSON, which simdjson doesn't hand over."""
    assert Layout.parse("score", "input").short_lines() is None
    assert Layout.parse("score").short_lines() is not None


def test_short_and_long_lines_are_read_by_msgspec_and_the_others_by_simdjson(tmp_path, monkeypatch):
    """Each reader really reads its lines: the simdjson reader is replaced by one that says 42."""
    short = json.dumps({"reward": [{"score": 1}]}).encode()
    small = json.dumps({"prompt": "x" * (SMALL_LINE - 100), "reward": [{"score": 2}]}).encode()
    middle = json.dumps({"prompt": "x" * SMALL_LINE, "reward": [{"score": 3}]}).encode()
    long = json.dumps({"prompt": "x" * (1 << 20), "reward": [{"score": 0}]}).encode()
    write_lines(tmp_path / "a.jsonl", [short, small, middle, long])
    monkeypatch.setattr(Layout, "short_lines", lambda self: lambda line: [42.0])
    data = bucketing.load(tmp_path, workers=1, scores="reward[].score")
    assert data.scores.flat.tolist() == [1.0, 2.0, 42.0, 0.0]
