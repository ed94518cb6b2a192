"""Parquet input and output: rows read by row group through the line parser, bucketed, written value for value
with the input's schema (see bucketing/parquet_read.py, parquet_scan.py, parquet_write.py)."""

from __future__ import annotations

import json
import math
import random
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bucketing
from bucketing.errors import BucketingError
from bucketing.outputs import TEMP_PREFIX
from bucketing.preview import preview

from .app_support import go, load_folder
from .conftest import rollout_line, run_cli, write_lines
from .parquet_fixtures import (
    BAD_ROWS,
    ROLLOUT_SCHEMA,
    rollout_rows,
    write_broken,
    write_rows,
    write_trl_log,
)


def canonical(row: dict) -> str:
    """A row as comparable text (NaN equal to NaN, unlike the floats themselves)."""
    return json.dumps(row, sort_keys=True, allow_nan=True)


def rows_of(path: Path) -> Counter:
    return Counter(canonical(row) for row in pq.read_table(path).to_pylist())


def mean_score(row: dict) -> float:
    scores = [item["score"] for item in row["reward"]]
    return sum(scores) / len(scores)


def bucket_of(value: float, buckets: list[dict]) -> str:
    """The oracle: the bucket whose range ``lower < v <= upper`` holds ``value``."""
    for bucket in buckets:
        lower, upper = bucket["lower"], bucket["upper"]
        if (lower is None or value > lower) and (upper is None or value <= upper):
            return bucket["name"]
    raise AssertionError(f"no bucket holds {value}")


def is_good(row: dict) -> bool:
    scores = row["reward"]
    return bool(scores) and all(isinstance(s["score"], float) and math.isfinite(s["score"]) for s in scores)


def exported(folder: Path, out: Path, *flags) -> dict:
    """``python -m bucketing -i folder -o out FLAGS``, which must succeed; its manifest."""
    result = run_cli("-i", folder, "-o", out, *flags)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture
def parquet_folder(tmp_path) -> tuple[Path, list[dict]]:
    """Two parquet files of many small row groups, with a bad row of each kind among the good ones."""
    rows_a = rollout_rows(150, seed=1) + [BAD_ROWS["empty scores"], BAD_ROWS["score not finite"]]
    rows_b = [BAD_ROWS["scores not a list"]] + rollout_rows(90, seed=2, start=500) + [BAD_ROWS["score not a number"]]
    folder = tmp_path / "in"
    write_rows(folder / "part_1.parquet", rows_a, row_group_size=16)
    write_rows(folder / "part_2.parquet", rows_b, row_group_size=7)
    return folder, rows_a + rows_b


def test_each_bucket_holds_its_rows_value_for_value_with_the_input_schema(parquet_folder, tmp_path):
    folder, rows = parquet_folder
    out = tmp_path / "out"
    manifest = exported(folder, out, "-n", "3")
    expected: dict[str, Counter] = {bucket["name"]: Counter() for bucket in manifest["buckets"]}
    for row in filter(is_good, rows):
        expected[bucket_of(mean_score(row), manifest["buckets"])][canonical(row)] += 1
    for bucket in manifest["buckets"]:
        assert bucket["file"] == f"{bucket['name']}.parquet"
        assert pq.read_schema(out / bucket["file"]).equals(ROLLOUT_SCHEMA)
        assert rows_of(out / bucket["file"]) == expected[bucket["name"]]
    assert not list(out.glob("*.jsonl"))  # parquet input only: parquet outputs only
    assert {f["format"] for f in manifest["files"]} == {"parquet"}
    assert [f["lines"] for f in manifest["files"] if f["buckets"]] == [b["count"] for b in manifest["buckets"]]


def test_bad_rows_go_to_skipped_parquet_with_their_reasons_and_row_numbers(parquet_folder, tmp_path):
    folder, rows = parquet_folder
    out = tmp_path / "out"
    manifest = exported(folder, out, "-n", "2")
    assert manifest["skipped_file"] == "_skipped.parquet"
    assert rows_of(out / "_skipped.parquet") == Counter(canonical(row) for row in rows if not is_good(row))
    assert manifest["skipped"] == dict.fromkeys(BAD_ROWS, 1)
    examples = [text for texts in manifest["skipped_examples"].values() for text in texts]
    assert "part_1.parquet:151: empty scores (reward is an empty list)" in examples
    assert "part_2.parquet:1: scores not a list (reward is null, not a list)" in examples
    assert "part_1.parquet:152: score not finite (reward[0].score is NaN)" in examples


def rollout_parquets(out: Path) -> list[Path]:
    """The parquet files of rollouts an export wrote at the top of ``out`` (not the difficulty table)."""
    return [path for path in out.glob("*.parquet") if path.name != "difficulty.parquet"]


def test_mixed_jsonl_and_parquet_give_both_kinds_of_file_per_bucket(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    rows = rollout_rows(40, seed=3)
    write_rows(folder / "a.parquet", rows)
    lines = [rollout_line([i % 2, (i // 2) % 2], key=f"j{i}") for i in range(30)] + [b"not json"]
    write_lines(folder / "b.jsonl", lines)
    manifest = exported(folder, out, "-n", "2")
    for bucket in manifest["buckets"]:
        assert bucket["file"].endswith(".jsonl") and bucket["parquet_file"].endswith(".parquet")
        assert pq.read_schema(out / bucket["parquet_file"]).equals(ROLLOUT_SCHEMA)
    written_lines = Counter(line for path in out.glob("*.jsonl") for line in path.read_bytes().splitlines())
    assert written_lines == Counter(lines)  # byte for byte, the bad one in _skipped.jsonl
    written_rows = sum((rows_of(path) for path in rollout_parquets(out)), Counter())
    assert written_rows == Counter(map(canonical, rows))
    by_file = {f["file"]: f for f in manifest["files"]}
    assert (
        sum(by_file[b["file"]]["rollouts"] + by_file[b["parquet_file"]]["rollouts"] for b in manifest["buckets"]) == 70
    )
    assert by_file["_skipped.jsonl"]["lines"] == 1 and "_skipped.parquet" not in by_file


def test_stages_and_the_split_hold_each_row_on_exactly_one_side(parquet_folder, tmp_path):
    folder, rows = parquet_folder
    out = tmp_path / "out"
    manifest = exported(folder, out, "-n", "3", "--cumulative", "--val-fraction", "0.25", "--seed", "7")
    names = [bucket["name"] for bucket in manifest["buckets"]]
    stage = Counter()
    for name in names:
        bucket, train, val = (rows_of(out / part / f"{name}.parquet") for part in ("", "train", "val"))
        assert train + val == bucket and not set(train) & set(val)
        assert round(0.25 * sum(bucket.values())) == sum(val.values())
        stage += bucket
        assert rows_of(out / "cumulative" / f"{name}.parquet") == stage
        for part in ("train", "val"):
            expected = sum(
                (rows_of(out / part / f"{earlier}.parquet") for earlier in names[: names.index(name) + 1]), Counter()
            )
            assert rows_of(out / part / "cumulative" / f"{name}.parquet") == expected
    assert "parquet row" in manifest["split"]["by"]
    # By content: the same rows in another order and other files give the same validation rows
    shuffled = [row for row in rows]
    random.Random(5).shuffle(shuffled)
    write_rows(tmp_path / "again" / "one.parquet", shuffled, row_group_size=33)
    again = tmp_path / "out2"
    result = run_cli("-i", tmp_path / "again", "-o", again, "-n", "3", "--val-fraction", "0.25", "--seed", "7")
    assert result.returncode == 0, result.stderr
    for name in names:
        assert rows_of(again / "val" / f"{name}.parquet") == rows_of(out / "val" / f"{name}.parquet")


def test_difficulty_order_puts_the_easiest_rows_first(parquet_folder, tmp_path):
    folder, _ = parquet_folder
    out = tmp_path / "out"
    assert run_cli("-i", folder, "-o", out, "-n", "2", "--order", "difficulty").returncode == 0
    for path in out.glob("bucket_*.parquet"):
        means = [mean_score(row) for row in pq.read_table(path).to_pylist()]
        assert means == sorted(means, reverse=True)


def test_a_trl_completions_log_is_detected_and_grouped_by_prompt(tmp_path):
    folder = write_trl_log(tmp_path / "run", steps=4, prompts=5, generations=3)
    out = tmp_path / "out"
    result = run_cli("-i", tmp_path / "run", "-o", out, "-n", "2")
    assert result.returncode == 0, result.stderr
    assert "Detected layout: TRL completions (scores: the sum of 2 reward columns)" in result.stdout
    assert "--scores 'accuracy_reward + format_reward' --group-by prompt" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    rows = [row for path in sorted(folder.glob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    by_prompt: dict[str, list[float]] = {}
    for row in rows:  # the oracle: a prompt's responses over every step, scored by the sum of the rewards
        by_prompt.setdefault(row["prompt"], []).append(row["accuracy_reward"] + row["format_reward"])
    assert manifest["totals"]["rollouts"] == 5 and manifest["totals"]["rollout_lines"] == 60
    for bucket in manifest["buckets"]:
        written = pq.read_table(out / bucket["file"]).to_pylist()
        prompts = {row["prompt"] for row in written}
        assert all(
            bucket_of(sum(by_prompt[p]) / len(by_prompt[p]), manifest["buckets"]) == bucket["name"] for p in prompts
        )
        assert len(written) == sum(len(by_prompt[p]) for p in prompts)  # every row of its prompts, all steps
        assert pq.read_schema(out / bucket["file"]).equals(pq.read_schema(next(folder.glob("*.parquet"))))
    data = bucketing.load(tmp_path / "run")
    assert data.layout.group_by == ("prompt",) and "advantage" not in data.layout.scores


def test_a_broken_parquet_file_is_skipped_and_named_in_one_line(tmp_path):
    folder = tmp_path / "in"
    write_rows(folder / "good.parquet", rollout_rows(20))
    write_broken(folder / "cut.parquet")
    (folder / "text.parquet").write_text("id,score\n1,0.5\n")
    out = tmp_path / "out"
    result = run_cli("-i", folder, "-o", out, "-n", "2")
    assert result.returncode == 0, result.stderr
    assert "Not readable as parquet (2 files):" in result.stdout
    assert "  cut.parquet: Parquet magic bytes not found in footer" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(f["file"], f["reason"]) for f in manifest["skipped_files"]] == [
        ("cut.parquet", "file is not parquet"),
        ("text.parquet", "file is not parquet"),
    ]
    alone = run_cli("-i", folder / "cut.parquet", "-o", tmp_path / "out2")
    assert alone.returncode == 2 and "Traceback" not in alone.stderr
    error = alone.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: cut.parquet can't be read as parquet (")
    assert run_cli("-i", folder, "-o", tmp_path / "out3", "--strict").returncode == 2


def test_different_schemas_stop_the_export_in_one_line_naming_both_files(tmp_path):
    folder = tmp_path / "in"
    write_rows(folder / "a.parquet", rollout_rows(10))
    other = pa.Table.from_pylist(rollout_rows(10, start=50)).append_column("note", pa.array(["x"] * 10))
    pq.write_table(other, folder / "b.parquet")
    result = run_cli("-i", folder, "-o", tmp_path / "out", "-n", "2")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: a.parquet and b.parquet have different schemas (column note only in the second); "
        "parquet outputs need one schema: convert them, or leave one out with --exclude"
    )
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_reading_takes_one_row_group_at_a_time_and_only_the_columns_needed(tmp_path, monkeypatch):
    path = write_rows(tmp_path / "in" / "many.parquet", rollout_rows(500), row_group_size=10)
    reads: list[tuple[int, tuple | None]] = []
    real = pq.ParquetFile.read_row_group

    def recording(self, index, columns=None, **kwargs):
        reads.append((index, tuple(columns) if columns is not None else None))
        return real(self, index, columns=columns, **kwargs)

    def whole(*args, **kwargs):
        raise AssertionError("a whole file was read")

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", recording)
    monkeypatch.setattr(pq.ParquetFile, "read", whole)
    monkeypatch.setattr(pq, "read_table", whole)
    data = bucketing.load(tmp_path / "in", scores="reward[].score")
    assert len(data.scores) == 500
    assert reads == [(index, ("reward",)) for index in range(50)]  # each once, in order, the scores' column only
    reads.clear()
    values = data.values("mean_reward")
    bucketing.export(data, bucketing.percentile_plan(values, "mean_reward", 3), tmp_path / "out", values=values)
    per_group = Counter(index for index, _ in reads)  # at most once per output file (3 buckets), all columns
    assert set(per_group) == set(range(50)) and max(per_group.values()) <= 3
    assert {columns for _, columns in reads} == {None}
    assert sum(pq.read_metadata(p).num_rows for p in rollout_parquets(tmp_path / "out")) == 500
    assert pq.read_metadata(path).num_row_groups == 50


def test_the_preview_reads_a_row_back_whole(parquet_folder):
    folder, rows = parquet_folder
    data = bucketing.load(folder)
    [shown] = preview(data, [3])
    assert shown.where == "part_1.parquet:4"
    assert json.loads(shown.raw) == rows[3]  # every column, not only those the scores needed
    assert shown.prompt == "user: question 3 ünïcode\nline two"


def test_the_ray_engine_refuses_parquet_input_in_one_line(parquet_folder, tmp_path):
    pytest.importorskip("ray")
    folder, _ = parquet_folder
    result = run_cli("-i", folder, "-o", tmp_path / "out", "--engine", "ray")
    assert result.returncode == 2
    assert "--engine ray reads JSONL only, and part_1.parquet is parquet; use --engine local" in result.stderr


def test_app_loads_a_parquet_folder_and_previews_a_row(app, tmp_path):
    write_trl_log(tmp_path / "run", steps=2, prompts=4, generations=2)
    load_folder(app, tmp_path / "run")
    shown = " ".join(str(m.value) for m in app.markdown) + " ".join(str(c.value) for c in app.caption)
    assert "TRL completions" in shown
    go(app, "buckets")
    texts = [t.value for t in app.text]
    assert any(text.startswith("Solve problem") for text in texts)  # the prompt column of a row
    assert any(text.startswith("answer ") for text in texts)  # its completion, as a response


# --- the nothing-lost property over parquet input ---

GOOD_ROW = st.builds(
    lambda key, scores: {
        "key": key,
        "prompt": [],
        "reward": [{"score": s} for s in scores],
        "extra_info": {"index": 0, "split": key},
    },
    st.text(max_size=8),
    st.lists(st.sampled_from([0.0, 1.0, 0.5, 1.25, -0.5]), min_size=1, max_size=5),
)
ROW = st.one_of(GOOD_ROW, GOOD_ROW, GOOD_ROW, st.sampled_from(list(BAD_ROWS.values())))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(st.tuples(st.lists(ROW, max_size=30), st.integers(1, 8)), min_size=1, max_size=3),
    jsonl=st.lists(st.sampled_from([rollout_line([1, 0]), rollout_line([0.5]), b'{"reward": []}']), max_size=5),
    buckets=st.integers(1, 4),
    order=st.sampled_from(["input", "difficulty"]),
    split=st.sampled_from([None, 0.3]),
)
def test_every_row_lands_exactly_once_value_for_value(files, jsonl, buckets, order, split):
    files = [
        (rows + [{"key": "first", "prompt": [], "reward": [{"score": 1.0}], "extra_info": None}], size)
        for rows, size in files
    ]
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "in", Path(tmp) / "out"
        for index, (rows, size) in enumerate(files):
            write_rows(source / f"part_{index}.parquet", rows, row_group_size=size)
        if jsonl:
            write_lines(source / "lines.jsonl", jsonl)
        data = bucketing.load(source, scores="reward[].score")  # the first rows may all be bad: nothing to detect
        values = data.values("mean_reward")
        plan = bucketing.percentile_plan(values, "mean_reward", buckets)
        manifest = bucketing.export(data, plan, out, values=values, order=order, val_fraction=split, cumulative=True)
        expected = Counter(canonical(row) for rows, _ in files for row in rows)
        top = [f for f in manifest["files"] if f["part"] == "all" and not f["cumulative"] and f["format"] == "parquet"]
        written = sum((rows_of(out / f["file"]) for f in top), Counter())
        assert written == expected
        for f in manifest["files"]:
            if f["format"] == "parquet":
                assert pq.read_schema(out / f["file"]).equals(ROLLOUT_SCHEMA)
                assert pq.read_metadata(out / f["file"]).num_rows == f["lines"]
        if split:
            for f in top:
                if f["buckets"]:
                    halves = rows_of(out / "train" / f["file"]) + rows_of(out / "val" / f["file"])
                    assert halves == rows_of(out / f["file"])
        lines = Counter(line for path in out.glob("*.jsonl") for line in path.read_bytes().splitlines())
        assert lines == Counter(jsonl)
        assert manifest["totals"]["rollouts"] + manifest["totals"]["skipped"] == sum(expected.values()) + len(jsonl)
        assert not [p for p in out.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_a_parquet_input_changed_after_loading_is_a_one_line_error(parquet_folder, tmp_path):
    folder, _ = parquet_folder
    data = bucketing.load(folder)
    (folder / "part_2.parquet").write_bytes(b"gone")
    values = data.values("mean_reward")
    with pytest.raises(BucketingError, match="^part_2.parquet changed since it was loaded; load the input again$"):
        bucketing.export(data, bucketing.percentile_plan(values, "mean_reward", 2), tmp_path / "out", values=values)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_bucket_named_like_the_difficulty_table_is_refused_in_one_line(tmp_path):
    write_rows(tmp_path / "in" / "a.parquet", rollout_rows(20, seed=5))
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "2", "--bucket-names", "difficulty", "rest")
    assert result.returncode == 2 and "two outputs would be named difficulty.parquet" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out" / "manifest.json").exists()
    assert (
        run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "2", "--bucket-names", "hard", "rest").returncode
        == 0
    )
