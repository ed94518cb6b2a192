"""Grouped layouts (issue #6): ``--group-by FIELD[,FIELD...]`` makes every line with equal values of
those fields one rollout, across files, as in trainers' dumps of one line per response.

Expected values are computed here from the raw lines with ``json.loads`` (an oracle written from
the specification), never copied from what the code printed:

* a rollout is the set of good lines with equal group values (compared as JSON values), numbered
  in the order of their first lines (files in natural order, then line);
* its scores are the scores of its lines, in input order;
* on export every line of a rollout goes, byte-identical, to the rollout's bucket; every input line
  lands in exactly one output file;
* a line without a group field (or with ``null`` there) is skipped as ``missing group field``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bucketing
from bucketing import dataset
from bucketing import scorepath as sp
from bucketing.dataset import group_lines, scores_by_rollout
from bucketing.layout import KEY_BYTES, Layout
from bucketing.metrics import Scores
from bucketing.parse import ROW_FIELDS, Chunk, scan
from bucketing.preview import preview
from examples.make_rollouts import make_rollouts

from .conftest import one_line, output_lines, run_cli, write_lines

# layout name -> (score field, group field, the name detection gives it)
DUMPS = {
    "verl": ("score", "input", "verl dump"),
    "skyrl": ("score", "input_prompt", "SkyRL dump"),
    "nemo": ("rewards", "content[0]", "NeMo-RL dump"),  # idx numbers lines; the prompt is the first message
}


# ----------------------------------------------------------------------------------------------
# helpers: the oracle
# ----------------------------------------------------------------------------------------------


def jline(**fields) -> bytes:
    """One JSON line (no newline), non-ASCII kept as UTF-8."""
    return json.dumps(fields, ensure_ascii=False).encode()


def canonical(value) -> str:
    """A JSON value's identity for grouping, independent of its spelling (numbers: 12 == 12.0)."""

    def normal(v):
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            return int(v) if float(v).is_integer() else float(v)
        if isinstance(v, list):
            return [normal(x) for x in v]
        return {k: normal(x) for k, x in v.items()}

    return json.dumps(normal(value), sort_keys=True, ensure_ascii=False)


def field_value(obj: dict, field: str):
    """``obj[field]``, or for ``name[N]`` the N-th item of ``obj[name]``."""
    name, _, index = field.partition("[")
    return obj[name][int(index.rstrip("]"))] if index else obj[name]


def oracle_groups(paths: list[Path], group_fields: tuple[str, ...], score_field: str) -> dict[str, dict]:
    """Group key -> {"lines": [(path, line number, raw bytes)], "scores": [...]}, in order of first line."""
    groups: dict[str, dict] = {}
    for path in paths:
        for number, raw in enumerate(path.read_bytes().split(b"\n")[:-1], start=1):
            obj = json.loads(raw)
            key = canonical([field_value(obj, field) for field in group_fields])
            group = groups.setdefault(key, {"lines": [], "scores": []})
            group["lines"].append((path, number, raw))
            group["scores"].append(float(obj[score_field]))
    return groups


def rollout_scores(data, rollout: int) -> list[float]:
    start = int(data.scores.starts[rollout])
    return data.scores.flat[start : start + int(data.scores.counts[rollout])].tolist()


def read_out(out: Path, name: str) -> list[bytes]:
    return (out / name).read_bytes().splitlines(keepends=True)


# ----------------------------------------------------------------------------------------------
# 1. generated trainer dumps, at size
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(DUMPS))
def test_generated_dumps_are_detected_and_grouped_like_the_oracle(tmp_path, monkeypatch, layout):
    score_field, group_field, name = DUMPS[layout]
    paths = make_rollouts(tmp_path / "in", rollouts=300, files=4, seed=11, layout=layout)
    data = bucketing.load(tmp_path / "in", workers=1)

    assert (data.layout.scores, data.layout.group_by, data.layout.name) == (score_field, (group_field,), name)
    assert data.detected is True and data.layout.grouped
    assert [f.path.name for f in data.files] == [p.name for p in paths]  # natural order = step order

    groups = oracle_groups(paths, (group_field,), score_field)
    keys = list(groups)
    lines_in_all = sum(len(g["lines"]) for g in groups.values())
    assert len(data.rows) == len(groups) == data.totals["rollouts"]
    assert len(data.lines) == lines_in_all == data.totals["rollout_lines"] == data.totals["lines"]
    assert data.totals["skipped"] == 0
    assert any(len({p for p, _, _ in g["lines"]}) > 1 for g in groups.values())  # groups do span files

    # every line's rollout is its group's rank of first appearance
    rank = {key: r for r, key in enumerate(keys)}
    by_position = {}
    for key, group in groups.items():
        for path, number, _ in group["lines"]:
            by_position[(path.name, number)] = rank[key]
    names = [f.path.name for f in data.files]
    lines = data.lines
    actual = {(names[f], int(ln)): int(r) for f, ln, r in zip(lines["file_id"], lines["line"], lines["rollout"])}
    assert actual == by_position

    # each rollout's scores are its lines' scores in input order; its row is its first line
    table = data.table()
    for r, key in enumerate(keys):
        assert rollout_scores(data, r) == groups[key]["scores"]
        first_path, first_line, _ = groups[key]["lines"][0]
        row = data.rows.iloc[r]
        assert (names[int(row["file_id"])], int(row["line"])) == (first_path.name, first_line)
        assert table["lines"].iat[r] == len(groups[key]["lines"])
        assert table["n"].iat[r] == len(groups[key]["scores"])
    means = np.array([np.mean(groups[key]["scores"]) for key in keys])
    np.testing.assert_allclose(table["mean_reward"].to_numpy(), means, rtol=1e-12, atol=1e-12)

    # several chunks per file, read by two processes: the same dataset
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 16 << 10)
    monkeypatch.setattr(dataset, "PARALLEL_MIN_BYTES", 1)
    chunks = dataset.make_chunks(data.files, data.layout, 1 << 20, False)
    assert len(chunks) >= 3 * len(paths)
    for workers in (2, None):  # None: one per core, as PARALLEL_MIN_BYTES is now passed
        parallel = bucketing.load(tmp_path / "in", workers=workers)
        pd.testing.assert_frame_equal(parallel.lines, data.lines)
        pd.testing.assert_frame_equal(parallel.rows, data.rows)
        np.testing.assert_array_equal(parallel.scores.flat, data.scores.flat)
        np.testing.assert_array_equal(parallel.scores.counts, data.scores.counts)
        pd.testing.assert_frame_equal(parallel.table(), table)
        assert parallel.layout == data.layout and parallel.totals == data.totals


# ----------------------------------------------------------------------------------------------
# 2. a group split across files, on export
# ----------------------------------------------------------------------------------------------

# "2.jsonl" sorts before "10.jsonl" in natural order, after it in byte order.
SPLIT_FILES = {
    "2.jsonl": [
        b'{"input": "A \xc3\xa9", "output": "a1", "score": 1}',
        b'{"input":"B","output":"b1","score":0}',
        b'{"input": "C", "output": "c1",   "score": 1.0}',
        b'{"input": "A \\u00e9", "output": "a2", "score": 1}',
        b'{"input": "D", "output": "d1", "score": 0.0}',  # D ties with B (mean 0): their lines interleave
    ],
    "10.jsonl": [
        b'{"input": "B", "output": "b2", "score": 0}',
        b'{"output": "a3", "input": "A \xc3\xa9", "score": 0}',
        b'{"input": "C", "output": "c2", "score": 1}',
        b'{"input": "D", "output": "d2", "score": 0}',
        b'{"input": "E", "output": "e1", "score": 0.75}',
    ],
}


def write_split(tmp_path: Path) -> list[Path]:
    return [write_lines(tmp_path / "in" / name, lines) for name, lines in SPLIT_FILES.items()]


def input_positions(paths: list[Path]) -> dict[bytes, tuple[int, int]]:
    """Line bytes (with "\\n") -> (file rank in natural order, line index); the lines here are distinct."""
    positions = {}
    for rank, path in enumerate(paths):
        for index, line in enumerate(path.read_bytes().splitlines(keepends=True)):
            positions[line] = (rank, index)
    return positions


def test_a_group_split_across_files_is_one_rollout_with_all_its_scores(tmp_path):
    paths = write_split(tmp_path)
    data = bucketing.load(tmp_path / "in", scores="score", group_by="input")
    groups = oracle_groups(paths, ("input",), "score")
    assert len(data.rows) == len(groups) == 5
    first = next(iter(groups))
    assert len({p for p, _, _ in groups[first]["lines"]}) == 2
    assert rollout_scores(data, 0) == groups[first]["scores"] == [1.0, 1.0, 0.0]
    assert [rollout_scores(data, r) for r in range(len(groups))] == [g["scores"] for g in groups.values()]
    of_first = data.lines.iloc[data.lines_of(0)]
    names = [f.path.name for f in data.files]
    assert [(names[f], int(n)) for f, n in zip(of_first["file_id"], of_first["line"])] == [
        (p.name, n) for p, n, _ in groups[first]["lines"]
    ]


@pytest.mark.parametrize("order", ["input", "difficulty"])
def test_export_keeps_each_group_in_one_bucket_byte_identical(tmp_path, order):
    paths = write_split(tmp_path)
    out = tmp_path / "out"
    result = run_cli(
        "-i", tmp_path / "in", "-o", out, "--scores", "score", "--group-by", "input", "-n", "2", "--order", order
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    written = output_lines(out)
    assert set(written) == {b["file"] for b in manifest["buckets"]}  # no _skipped.jsonl

    # every input line exactly once, byte-identical
    inputs = [line for p in paths for line in p.read_bytes().splitlines(keepends=True)]
    assert Counter(line for lines in written.values() for line in lines) == Counter(inputs)

    groups = oracle_groups(paths, ("input",), "score")
    key_of = {raw + b"\n": key for key, g in groups.items() for _, _, raw in g["lines"]}
    mean = {key: float(np.mean(g["scores"])) for key, g in groups.items()}
    first = {key: i for i, key in enumerate(groups)}
    bucket_of = {}
    for bucket in manifest["buckets"]:
        for line in read_out(out, bucket["file"]):
            assert bucket_of.setdefault(key_of[line], bucket["name"]) == bucket["name"]  # a group in one file
    assert set(bucket_of) == set(groups)
    assert bucket_of[canonical(["B"])] == bucket_of[canonical(["D"])]  # tied means: one bucket, lines interleaved
    ranked = [[mean[k] for k in groups if bucket_of[k] == b["name"]] for b in manifest["buckets"]]
    for easier, harder in itertools.pairwise(ranked):  # buckets easiest first
        if easier and harder:
            assert min(easier) > max(harder)

    positions = input_positions(paths)
    for bucket in manifest["buckets"]:
        lines = read_out(out, bucket["file"])
        if order == "input":  # files in natural order (2 before 10), then offset
            expected = sorted(lines, key=positions.__getitem__)
        else:  # rollouts easiest first (ties: first line first), each one's lines together, in input order
            keys = sorted({key_of[line] for line in lines}, key=lambda k: (-mean[k], first[k]))
            expected = [raw + b"\n" for k in keys for _, _, raw in groups[k]["lines"]]
        assert lines == expected


def test_order_input_puts_file_2_before_file_10(tmp_path):
    write_split(tmp_path)
    result = run_cli(
        "-i", tmp_path / "in", "-o", tmp_path / "out", "--scores", "score", "--group-by", "input", "--thresholds", "2"
    )  # everything in one bucket
    assert result.returncode == 0, result.stderr
    lines = read_out(tmp_path / "out", "bucket_0.jsonl")
    expected = [line + b"\n" for line in SPLIT_FILES["2.jsonl"] + SPLIT_FILES["10.jsonl"]]
    assert lines == expected


# ----------------------------------------------------------------------------------------------
# 3. score types inside one group
# ----------------------------------------------------------------------------------------------


def test_a_group_mixes_int_and_float_scores(tmp_path):
    raw = [
        b'{"input": "q", "score": 1}',
        b'{"input": "q", "score": 1.0}',
        b'{"input": "q", "score": 0.5}',
        b'{"input": "q", "score": 0}',
        b'{"input": "q", "score": -0.0}',
        b'{"input": "q", "score": 1e0}',
    ]
    write_lines(tmp_path / "in" / "a.jsonl", raw)
    expected = [float(json.loads(line)["score"]) for line in raw]
    for scores in ("score", None):  # named or detected
        data = bucketing.load(tmp_path / "in", scores=scores, group_by="input")
        assert len(data.rows) == 1 and data.totals["skipped"] == 0
        assert rollout_scores(data, 0) == expected
        assert data.table()["mean_reward"].iat[0] == pytest.approx(sum(expected) / len(expected))


def test_booleans_count_as_1_and_0_only_for_a_named_score_path(tmp_path):
    raw = [
        b'{"input": "q", "output": "a", "score": 1, "acc": true}',
        b'{"input": "q", "output": "b", "score": 0, "acc": false}',
        b'{"input": "q", "output": "c", "score": true, "acc": 1}',
        b'{"input": "q", "output": "d", "score": 0.5, "acc": 0.5}',
        b'{"input": "q", "output": "e", "score": 0, "score": 1, "acc": "x", "acc": true}',
    ]  # read slowly
    write_lines(tmp_path / "in" / "a.jsonl", raw)

    named = bucketing.load(tmp_path / "in", scores="acc", group_by="input")
    assert len(named.rows) == 1 and named.totals["skipped"] == 0
    assert rollout_scores(named, 0) == [1.0, 0.0, 1.0, 0.5, 1.0]
    assert named.detected is False and named.layout.booleans

    named_score = bucketing.load(tmp_path / "in", scores="score", group_by="input")
    assert rollout_scores(named_score, 0) == [1.0, 0.0, 1.0, 0.5, 1.0]

    for group_by in (None, "input"):  # detected: the verl layout, or only the score path
        detected = bucketing.load(tmp_path / "in", group_by=group_by)
        assert detected.detected and detected.layout.scores == "score" and detected.layout.group_by == ("input",)
        assert rollout_scores(detected, 0) == [1.0, 0.0, 0.5, 1.0]
        assert detected.skipped["reason"].tolist() == [sp.NOT_NUMBER]
        assert detected.skipped["line"].tolist() == [3]
        assert "boolean" in detected.skipped["detail"].iat[0]


# ----------------------------------------------------------------------------------------------
# 4. a missing group field
# ----------------------------------------------------------------------------------------------

GOOD_1 = b'{"input": "q", "extra": {"uid": 7}, "score": 1}'
GOOD_2 = b'{"input": "q", "extra": {"uid": 7}, "score": 0}'
MISSING_CASES = {  # line -> (the field it lacks for --group-by input / --group-by extra.uid)
    b'{"extra": {"uid": 7}, "score": 1}': ("input", None),
    b'{"input": null, "extra": {"uid": 7}, "score": 1}': ("input", None),
    b'{"input": "q", "score": 1}': (None, "extra.uid"),
    b'{"input": "q", "extra": null, "score": 1}': (None, "extra.uid"),
    b'{"input": "q", "extra": 5, "score": 1}': (None, "extra.uid"),
    b'{"input": "q", "extra": "uid", "score": 1}': (None, "extra.uid"),
    b'{"input": "q", "extra": [{"uid": 7}], "score": 1}': (None, "extra.uid"),
    b'{"input": "q", "extra": {}, "score": 1}': (None, "extra.uid"),
    b'{"input": "q", "extra": {"uid": null}, "score": 1}': (None, "extra.uid"),
}


@pytest.mark.parametrize("field", ["input", "extra.uid"])
def test_a_line_without_its_group_field_is_skipped_with_the_reason(tmp_path, field):
    column = 0 if field == "input" else 1
    bad = [line for line, lacks in MISSING_CASES.items() if lacks[column]]
    lines = [GOOD_1, *bad, GOOD_2]
    write_lines(tmp_path / "in" / "a.jsonl", lines)
    data = bucketing.load(tmp_path / "in", scores="score", group_by=field)

    assert len(data.rows) == 1 and rollout_scores(data, 0) == [1.0, 0.0]
    assert data.skipped["reason"].tolist() == [sp.MISSING_GROUP] * len(bad)
    assert data.skipped["line"].tolist() == list(range(2, 2 + len(bad)))
    assert all(field in detail for detail in data.skipped["detail"])
    examples = data.skipped_reasons()[sp.MISSING_GROUP]["examples"]
    assert examples[0].startswith("a.jsonl:2: missing group field (") and field in examples[0]

    with pytest.raises(bucketing.BadLineError) as raised:
        bucketing.load(tmp_path / "in", scores="score", group_by=field, strict=True)
    assert raised.value.where == "a.jsonl:2" and raised.value.reason == sp.MISSING_GROUP
    assert "a.jsonl:2" in str(raised.value) and field in str(raised.value)

    out = tmp_path / "out"
    result = run_cli("-i", tmp_path / "in", "-o", out, "--scores", "score", "--group-by", field, "-n", "2")
    assert result.returncode == 0, result.stderr
    assert read_out(out, "_skipped.jsonl") == [line + b"\n" for line in bad]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["skipped"] == {sp.MISSING_GROUP: len(bad)}
    assert manifest["totals"]["rollout_lines"] == 2

    strict = run_cli(
        "-i", tmp_path / "in", "-o", tmp_path / "strict", "--scores", "score", "--group-by", field, "--strict"
    )
    assert strict.returncode == 1 and one_line(strict.stderr)
    assert "a.jsonl:2: missing group field" in strict.stderr


def test_missing_group_fields_are_found_in_every_chunk_and_process(tmp_path, monkeypatch):
    bad = list(MISSING_CASES)
    lines = [GOOD_1 if i % 2 else GOOD_2 for i in range(400)]
    for i, line in enumerate(bad):
        lines[37 * i + 5] = line
    write_lines(tmp_path / "in" / "a.jsonl", lines)
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 2 << 10)
    one = bucketing.load(tmp_path / "in", scores="score", group_by="input,extra.uid", workers=1)
    two = bucketing.load(tmp_path / "in", scores="score", group_by="input,extra.uid", workers=2)
    assert one.skipped["line"].tolist() == [37 * i + 6 for i in range(len(bad))]
    assert set(one.skipped["reason"]) == {sp.MISSING_GROUP}
    pd.testing.assert_frame_equal(one.skipped, two.skipped)
    pd.testing.assert_frame_equal(one.lines, two.lines)
    assert len(one.rows) == 1 and one.scores.counts.tolist() == [400 - len(bad)]


# ----------------------------------------------------------------------------------------------
# 5. values, not spellings
# ----------------------------------------------------------------------------------------------


def rollouts_of(tmp_path: Path, lines: list[bytes], group_by="g", name="x") -> list[int]:
    folder = tmp_path / name
    write_lines(folder / "a.jsonl", lines)
    data = bucketing.load(folder, scores="score", group_by=group_by)
    assert data.totals["skipped"] == 0
    return data.lines["rollout"].tolist()


@pytest.mark.parametrize(
    "a, b, same",
    [
        (b'"\xc3\xa9"', b'"\\u00e9"', True),
        (b'"\\u00e9"', b'"\\u00E9"', True),
        (b'"a/b"', b'"a\\/b"', True),
        (b'"\xf0\x9f\x99\x82"', b'"\\ud83d\\ude42"', True),  # a surrogate pair
        (b'"\\b\\f\\t\\n\\r"', b'"\\u0008\\u000c\\u0009\\u000A\\u000d"', True),
        (b'"\\"\\\\"', b'"\\u0022\\u005c"', True),
        (b'"\x7f\xe2\x80\xa8"', b'"\\u007f\\u2028"', True),
        (b"12", b"12.0", True),
        (b"12", b"1.2e1", True),
        (b"0", b"-0.0", True),
        (b'{"a": 1, "b": "x"}', b'{"b":"x","a":1}', True),
        (b'{"a": {"c": 1, "d": 2}}', b'{"a": {"d": 2, "c": 1}}', True),
        (b'[1, "x"]', b'[1,"x"]', True),
        (b'"1"', b"1", False),
        (b"1", b"true", False),
        (b'"a"', b'"A"', False),
        (b"[1, 2]", b"[2, 1]", False),
        (b'{"a": 1}', b'{"a": 1, "b": 1}', False),
        (b'"x"', b'["x"]', False),
        (b"12", b"12.5", False),
    ],
)
def test_group_values_are_compared_as_json_values(tmp_path, a, b, same):
    lines = [b'{"g": ' + a + b', "score": 1}', b'{"score": 0, "g": ' + b + b"}"]
    assert rollouts_of(tmp_path, lines) == ([0, 0] if same else [0, 1])
    assert (canonical(json.loads(lines[0])["g"]) == canonical(json.loads(lines[1])["g"])) == same  # the oracle agrees


@pytest.mark.parametrize(
    "a, b",
    [
        (b"[12]", b"[12.0]"),
        (b'{"id": 3}', b'{"id": 3.0}'),
        (b'{"id": [1, 2]}', b'{"id": [1.0, 2]}'),
    ],
)
def test_nested_numbers_are_compared_as_values_too(tmp_path, a, b):
    """12 and 12.0 are one JSON value inside a list or an object, as they are at the top."""
    lines = [b'{"g": ' + a + b', "score": 1}', b'{"g": ' + b + b', "score": 0}']
    assert canonical(json.loads(lines[0])["g"]) == canonical(json.loads(lines[1])["g"])
    assert rollouts_of(tmp_path, lines) == [0, 0]


@pytest.mark.parametrize("value", [b'"q"', b'"\\u00e9"', b"7", b"[1]", b'{"a": 1}', b"123456789012345678901"])
def test_a_line_with_a_duplicate_key_joins_the_same_group(tmp_path, value):
    """A line the fast decoder refuses (its first "score" is a string, the last a number) is read again
    slowly; it must get the same group as the same value on an ordinary line."""
    lines = [b'{"g": ' + value + b', "score": 1}', b'{"score": "x", "score": 0, "g": ' + value + b"}"]
    assert rollouts_of(tmp_path, lines) == [0, 0]


def test_group_by_step_and_input_separates_the_steps(tmp_path):
    lines = [
        jline(input="q", step=1, score=1),
        jline(input="q", step=2, score=0),
        jline(input="q", step=1.0, score=0.5),
        jline(input="r", step=1, score=1),
    ]
    assert rollouts_of(tmp_path, lines, "input", "a") == [0, 0, 0, 1]
    assert rollouts_of(tmp_path, lines, "step,input", "b") == [0, 1, 0, 2]
    assert rollouts_of(tmp_path, lines, ["step", "input"], "c") == [0, 1, 0, 2]
    assert rollouts_of(tmp_path, lines, "input,step", "d") == [0, 1, 0, 2]
    data = bucketing.load(tmp_path / "b", scores="score", group_by="step, input")
    assert data.layout.group_by == ("step", "input")
    assert [rollout_scores(data, r) for r in range(3)] == [[1.0, 0.5], [0.0], [1.0]]


def test_group_fields_are_not_concatenated_ambiguously(tmp_path):
    lines = [
        jline(a="x,y", b="z", score=1),
        jline(a="x", b="y,z", score=0),
        jline(a="xy", b="", score=0),
        jline(a="x", b="y", score=0),
        jline(a=1, b=23, score=0),
        jline(a=12, b=3, score=0),
        jline(a=[1], b=[2], score=0),
        jline(a=[1, 2], b=[], score=0),
    ]
    assert rollouts_of(tmp_path, lines, "a,b") == list(range(len(lines)))


def test_groups_span_files_in_subfolders_and_compressed_files(tmp_path):
    import gzip

    root = tmp_path / "in"
    write_lines(root / "a.jsonl", [jline(input="q", score=1), jline(input="r", score=0)])
    (root / "sub").mkdir()
    (root / "sub" / "b.jsonl.gz").write_bytes(
        gzip.compress(jline(input="r", score=1) + b"\n" + jline(input="q", score=0) + b"\n")
    )
    data = bucketing.load(root, scores="score", group_by="input")
    assert len(data.rows) == 2
    assert [rollout_scores(data, r) for r in range(2)] == [[1.0, 0.0], [0.0, 1.0]]


# ----------------------------------------------------------------------------------------------
# 6. the manifest
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, layout_name, detected",
    [
        ([], "verl dump", True),
        (["--scores", "score", "--group-by", "input"], None, False),
        (["--group-by", "input"], None, True),
    ],
)
def test_manifest_counts_rollouts_and_lines_per_bucket(tmp_path, flags, layout_name, detected):
    paths = make_rollouts(tmp_path / "in", rollouts=60, files=3, seed=5, layout="verl")
    bad = jline(output="no prompt", score=1)
    with open(paths[1], "ab") as f:
        f.write(bad + b"\n")
    out = tmp_path / "out"
    result = run_cli("-i", tmp_path / "in", "-o", out, "-n", "3", "--json", *flags)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest == json.loads((out / "manifest.json").read_text())
    params = manifest["params"]
    assert params["group_by"] == ["input"] and params["scores"] == "score"
    assert params["layout"] == layout_name and params["scores_detected"] is detected

    good = [line for p in paths for line in p.read_bytes().splitlines() if line != bad]
    prompts = {canonical(json.loads(line)["input"]) for line in good}
    assert manifest["totals"]["rollout_lines"] == len(good)
    assert manifest["totals"]["rollouts"] == len(prompts)
    assert manifest["totals"]["lines"] == len(good) + 1 and manifest["totals"]["skipped"] == 1
    assert manifest["skipped"] == {sp.MISSING_GROUP: 1}
    assert read_out(out, "_skipped.jsonl") == [bad + b"\n"]
    for bucket in manifest["buckets"]:
        lines = read_out(out, bucket["file"])
        assert bucket["lines"] == len(lines)
        assert bucket["count"] == len({canonical(json.loads(line)["input"]) for line in lines})
    assert sum(b["lines"] for b in manifest["buckets"]) == len(good)
    assert sum(b["count"] for b in manifest["buckets"]) == len(prompts)
    assert "grouped from" in result.stderr  # the human summary


# ----------------------------------------------------------------------------------------------
# 7. detection and bad flags
# ----------------------------------------------------------------------------------------------


def test_one_score_per_line_without_a_prompt_field_is_refused(tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [jline(question="q", uid=3, score=1), jline(question="q", uid=3, score=0)])
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out")
    assert result.returncode == 2 and one_line(result.stderr)
    assert "question, score, uid" in result.stderr and "--group-by" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "line, scores",
    [
        (jline(question="q", score=1), "score"),
        (jline(question="q", reward=1), "reward"),
        (jline(question="q", rewards=[1, 0]), "rewards[]"),
        (jline(question="q", reward=[{"score": 1}, {"score": 0}]), "reward[].score"),
    ],
)
def test_group_by_alone_detects_the_score_path(tmp_path, line, scores):
    write_lines(tmp_path / "in" / "a.jsonl", [line, line.replace(b'"q"', b'"r"'), line])
    data = bucketing.load(tmp_path / "in", group_by="question")
    assert data.detected and data.layout.scores == scores and data.layout.group_by == ("question",)
    assert data.lines["rollout"].tolist() == [0, 1, 0]
    result = run_cli("-i", tmp_path / "in", "--dry-run", "--json", "--group-by", "question")
    assert result.returncode == 0, result.stderr
    params = json.loads(result.stdout)["params"]
    assert params["scores"] == scores and params["group_by"] == ["question"] and params["scores_detected"] is True


@pytest.mark.parametrize(
    "flags",
    [
        ["--group-by", "a b"],
        ["--scores", "score", "--group-by", "a b"],
        ["--group-by", "x,x"],
        ["--scores", "score", "--group-by", "x,x"],
        ["--scores", "score", "--group-by", "input,x,input"],
        ["--scores", "score", "--group-by", "a..b"],
        ["--scores", "score", "--group-by", ".a"],
        ["--scores", "score", "--group-by", "a[]"],
        ["--scores", "score", "--group-by", "1a"],
        ["--scores", "reward[].score", "--group-by", "reward"],
        ["--scores", "reward[].score", "--group-by", "reward.x"],
        ["--scores", "score", "--group-by", "score"],
        ["--scores", "score", "--group-by", "a.b,a"],
        ["--scores", "score", "--group-by", "a,a.b"],
        ["--group-by", "reward"],  # detection lands on reward[].score
        ["--scores", "score", "--group-by", ""],
        ["--scores", "score", "--group-by", " , "],
    ],
)
def test_bad_group_by_values_are_one_line_errors(tmp_path, flags):
    write_lines(
        tmp_path / "in" / "a.jsonl",
        [
            jline(input="q", score=1, a={"b": 1}, x=1, reward=[{"score": 1}]),
            jline(input="q", score=0, a={"b": 1}, x=1, reward=[{"score": 0}]),
        ],
    )
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", *flags)
    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr) and result.stderr.startswith("error: ")
    assert "group-by" in result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_group_by_values_raise_bucketing_errors_in_the_library(tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [jline(input="q", score=1, reward=[{"score": 1}])])
    for scores, group_by in [
        ("score", "a b"),
        ("score", "x,x"),
        ("reward[].score", "reward"),
        (None, "a b"),
        ("score", ["input", "input"]),
    ]:
        with pytest.raises(bucketing.BucketingError):
            bucketing.load(tmp_path / "in", scores=scores, group_by=group_by)


# ----------------------------------------------------------------------------------------------
# 8. memory: 16 bytes of key per line, no group text kept
# ----------------------------------------------------------------------------------------------


def test_a_grouped_scan_keeps_16_bytes_of_key_per_good_line(tmp_path):
    marker = "PROMPT-TEXT-7f3a9c"
    lines = [jline(input=f"{marker} {i % 7} " + "and more words " * 30, score=i % 2) for i in range(50)]
    lines[10] = jline(score=1)  # missing group field: no key
    lines[20] = b"not json"
    path = write_lines(tmp_path / "in" / "a.jsonl", lines)
    file = bucketing.load(tmp_path / "in", scores="score").files[0]

    result = scan(Chunk(file, 0, Layout.parse("score", "input")))
    good = len(result.rows) // len(ROW_FIELDS)
    assert good == 48 and len(result.skipped) == 2
    assert KEY_BYTES == 16 and len(result.keys) == 16 * good
    assert len(scan(Chunk(file, 0, Layout.parse("score"))).keys) == 0  # not grouped: no keys

    data = bucketing.load(tmp_path / "in", scores="score", group_by="input")
    assert len(data.rows) == 7
    for frame in (data.lines, data.rows):
        assert all(kind.kind in "iub" for kind in frame.dtypes), frame.dtypes
    assert path.read_bytes().count(marker.encode()) == 48  # (so the check below could fail)
    assert marker.encode() not in pickle.dumps(data)
    assert b"and more words" not in pickle.dumps(data)


# ----------------------------------------------------------------------------------------------
# 9. group_lines and scores_by_rollout
# ----------------------------------------------------------------------------------------------

ENCODINGS = {
    "hash": lambda label: hashlib.blake2b(str(label).encode(), digest_size=16).digest(),
    "low bytes": lambda label: label.to_bytes(16, "little"),  # keys differ in the first 8 bytes only
    "high bytes": lambda label: label.to_bytes(16, "big"),  # ... in the last 8 bytes only
    "both halves": lambda label: (label % 2).to_bytes(8, "big") + (label // 2).to_bytes(8, "big"),
}


@settings(max_examples=300, deadline=None)
@given(
    labels=st.lists(st.integers(0, 6), min_size=1, max_size=40),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    counts=st.lists(st.integers(1, 3), min_size=40, max_size=40),
)
def test_group_lines_and_scores_by_rollout_follow_the_labels(labels, encoding, counts):
    encode = ENCODINGS[encoding]
    keys = b"".join(encode(label) for label in labels)
    rollout, firsts = group_lines(keys, len(labels))

    order = list(dict.fromkeys(labels))  # labels in order of first appearance
    assert rollout.tolist() == [order.index(label) for label in labels]
    assert firsts.tolist() == [labels.index(label) for label in order]

    counts = counts[: len(labels)]
    per_line = [[100.0 * i + j for j in range(c)] for i, c in enumerate(counts)]
    flat = np.array([s for scores in per_line for s in scores])
    gathered = scores_by_rollout(Scores(flat, np.array(counts, dtype=np.int64)), rollout)
    expected = [[s for i, label in enumerate(labels) if label == lab for s in per_line[i]] for lab in order]
    assert gathered.counts.tolist() == [len(e) for e in expected]
    assert gathered.flat.tolist() == [s for e in expected for s in e]


def test_group_lines_of_no_lines():
    rollout, firsts = group_lines(b"", 0)
    assert len(rollout) == 0 and len(firsts) == 0


# ----------------------------------------------------------------------------------------------
# 10. preview
# ----------------------------------------------------------------------------------------------


def test_preview_of_a_grouped_rollout_shows_the_prompt_once_and_each_response(tmp_path):
    paths = write_split(tmp_path)
    data = bucketing.load(tmp_path / "in", group_by="input")
    assert data.layout.scores == "score"
    groups = oracle_groups(paths, ("input",), "score")
    for r, group in enumerate(groups.values()):
        (shown,) = preview(data, [r])
        objs = [json.loads(raw) for _, _, raw in group["lines"]]
        assert shown.prompt == objs[0]["input"]
        assert shown.responses == [obj["output"] for obj in objs]
        assert shown.scores == group["scores"]
        path, number, _ = group["lines"][0]
        more = len(group["lines"]) - 1
        assert shown.where == f"{path.name}:{number}" + (f" + {more} more lines" if more else "")
        assert shown.raw.split("\n") == [raw.decode() for _, _, raw in group["lines"]]
    (first,) = preview(data, [0], max_lines=2)  # only the first lines are shown; where counts all
    assert first.responses == ["a1", "a2"] and first.scores == [1.0, 1.0]
    assert first.where == "2.jsonl:1 + 2 more lines"


def test_preview_of_a_nemo_conversation_gives_the_assistant_turns(tmp_path):
    def nemo(idx, question, answer, reward):
        return jline(
            content=[{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            rewards=reward,
            idx=idx,
            generation_lengths=len(answer),
        )

    question = "What is 6*7?"
    write_lines(
        tmp_path / "in" / "train_data_step1.jsonl", [nemo(4, question, "42", 1), nemo(5, "Name a colour.", "red", 1)]
    )
    write_lines(
        tmp_path / "in" / "train_data_step2.jsonl", [nemo(4, question, "41", 0), nemo(4, question, "forty-two", 0.5)]
    )
    data = bucketing.load(tmp_path / "in")
    assert data.layout.name == "NeMo-RL dump" and data.layout.group_by == ("content[0]",)
    shown, other = preview(data, [0, 1])
    assert question in shown.prompt and "42" not in shown.prompt
    assert shown.responses == ["42", "41", "forty-two"] and shown.scores == [1.0, 0.0, 0.5]
    assert shown.where == "train_data_step1.jsonl:1 + 2 more lines"
    assert other.responses == ["red"] and other.scores == [1.0] and other.where == "train_data_step1.jsonl:2"


def test_preview_of_the_generated_dumps(tmp_path):
    for layout, (score_field, group_field, _) in DUMPS.items():
        paths = make_rollouts(tmp_path / layout, rollouts=20, files=2, seed=3, layout=layout)
        data = bucketing.load(tmp_path / layout)
        groups = oracle_groups(paths, (group_field,), score_field)
        rows = list(range(len(groups)))
        for shown, group in zip(preview(data, rows), groups.values()):
            assert shown.scores == group["scores"][:32]
            assert shown.responses is not None and len(shown.responses) == min(len(group["lines"]), 32)


def test_from_manifest_reuses_the_layout_that_was_set(tmp_path):
    """The next step's dump is grouped as the saved run was, without repeating --scores / --group-by."""
    for step in (1, 2):
        write_lines(
            tmp_path / f"step{step}" / "a.jsonl",
            [
                jline(q="x", step=step, ok=True),
                jline(q="x", step=step, ok=False),
                jline(q="y", step=step, ok=True),
                jline(q="y", step=step, ok=True),
            ],
        )
    first = run_cli("-i", tmp_path / "step1", "-o", tmp_path / "out1", "-n", "2", "--scores", "ok", "--group-by", "q")
    assert first.returncode == 0, first.stderr
    again = run_cli(
        "-i",
        tmp_path / "step2",
        "-o",
        tmp_path / "out2",
        "--json",
        "--from-manifest",
        tmp_path / "out1" / "manifest.json",
    )
    assert again.returncode == 0, again.stderr
    manifest = json.loads(again.stdout)
    assert manifest["params"]["scores"] == "ok" and manifest["params"]["group_by"] == ["q"]
    assert manifest["totals"]["rollouts"] == 2 and [b["count"] for b in manifest["buckets"]] == [1, 1]


@pytest.mark.parametrize("where", ["g", "h.g"])
def test_a_group_value_too_deep_to_compare_is_a_skipped_line_not_a_crash(tmp_path, where):
    """Valid JSON (600 levels), but comparing it would exhaust Python's recursion: it used to crash the run."""
    deep = b"[" * 600 + b"]" * 600
    value = (lambda v: v) if where == "g" else (lambda v: b'{"g": ' + v + b"}")
    top = where.split(".")[0].encode()
    write_lines(
        tmp_path / "in" / "a.jsonl",
        [b'{"' + top + b'": ' + value(deep) + b', "score": 1}', b'{"' + top + b'": ' + value(b"1") + b', "score": 0}'],
    )
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "--scores", "score", "--group-by", where)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["skipped"] == {"nesting too deep": 1} and manifest["totals"]["rollouts"] == 1


def test_a_group_field_may_end_with_a_list_index(tmp_path):
    lines = [
        jline(content=["q1", "a"], rewards=1.0),
        jline(content=["q1", "b"], rewards=0.0),
        jline(content=["q2", "c"], rewards=1.0),
        jline(content="not a list", rewards=1.0),  # no first message: skipped, as a line without its group field
        jline(content=[], rewards=1.0),  # likewise
        jline(content=[["q1"], "d"], rewards=1.0),  # another value: a group of its own
    ]
    write_lines(tmp_path / "in" / "a.jsonl", lines)
    data = bucketing.load(tmp_path / "in", scores="rewards", group_by="content[0]")
    assert [rollout_scores(data, r) for r in range(len(data.scores))] == [[1.0, 0.0], [1.0], [1.0]]
    assert [bad[1] for bad in data.skipped_lines] == [4, 5] and {bad[5] for bad in data.skipped_lines} == {
        "missing group field"
    }
    last = bucketing.load(tmp_path / "in", scores="rewards", group_by="content[-1]")
    assert len(last.scores) == 4  # a, b, c, d: each its own
