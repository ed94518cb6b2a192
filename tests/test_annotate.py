"""difficulty.parquet beside every manifest, and the difficulty field --annotate adds to training-set rows."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq

import bucketing

from .conftest import SAMPLE, run_cli
from .test_join import PROMPTS, export, make_rollouts, source_rows, write_jsonl, write_parquet


def test_the_difficulty_table_is_dataset_table_with_the_plan_s_buckets(tmp_path):
    data = bucketing.load(SAMPLE)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 3)
    manifest = bucketing.export(data, plan, tmp_path / "out")
    assert manifest["difficulty_table"] == "difficulty.parquet"
    written = pq.read_table(tmp_path / "out" / "difficulty.parquet").to_pydict()
    table = data.table()
    for column in ("line", "n", "lines", *bucketing.METRICS):
        assert np.array_equal(np.asarray(written[column]), table[column].to_numpy()), column
    assert written["file"] == [str(name) for name in table["file"]]
    assert written["bucket"] == [plan.names[i] for i in plan.assign(table["mean_reward"])]
    assert written["difficulty_rank"] == plan.assign(table["mean_reward"]).tolist()


def test_grouped_rollouts_carry_their_group_values(tmp_path):
    rollouts = make_rollouts(tmp_path / "in", list(range(PROMPTS)), per_step=True)
    result = run_cli("-i", rollouts, "-o", tmp_path / "out", "--group-by", "id")
    assert result.returncode == 0, result.stderr
    written = pq.read_table(tmp_path / "out" / "difficulty.parquet").to_pydict()
    assert written["id"] == list(range(PROMPTS)) and set(written["n"]) == {8}


def test_annotated_parquet_rows_get_a_struct_field_and_keep_the_rest_of_the_schema(tmp_path):
    rows = source_rows()
    source = write_parquet(tmp_path / "src.parquet", rows)
    code, manifest, stderr = export(tmp_path, source, "--annotate", "extra_info.difficulty")
    assert code == 0, stderr
    table = pq.read_table(tmp_path / "out" / "difficulty.parquet").to_pylist()
    by_id = {json.loads(line)["id"]: line for line in (tmp_path / "in" / "r.jsonl").read_text().splitlines()}
    assert len(by_id) == len(table)
    schema = pq.read_schema(source)
    for entry in manifest["train_set"]["files"]:
        written = pq.read_table(tmp_path / "out" / entry["file"])
        extra = written.schema.field("extra_info").type
        assert [f.name for f in extra] == ["index", "split", "difficulty"]
        index = schema.get_field_index("extra_info")
        assert written.schema.remove(index).equals(schema.remove(index))
        for row in written.to_pylist():
            note = row["extra_info"].pop("difficulty")
            if not entry["buckets"]:
                assert note is None
                continue
            scores = [r["score"] for r in json.loads(by_id[row["extra_info"]["index"]])["reward"]]
            assert note["n"] == len(scores) and note["mean_reward"] == np.mean(scores)
            assert note["pass_rate"] == np.mean([s >= 0.5 for s in scores])
            assert note["bucket"] in entry["buckets"] and note["metric"] == "mean_reward"
    untouched = pq.read_table(tmp_path / "out" / "train_set" / "_unscored.parquet").to_pylist()
    assert [r["extra_info"]["index"] for r in untouched] == list(range(PROMPTS, PROMPTS + 10))


def test_annotated_jsonl_rewrites_only_the_lines_that_get_the_field(tmp_path):
    source = write_jsonl(tmp_path / "src.jsonl", source_rows())
    code, manifest, stderr = export(tmp_path, source, "--annotate", "difficulty")
    assert code == 0, stderr
    lines = source.read_bytes().replace(b"\r\n", b"\n").splitlines(keepends=True)
    unscored = (tmp_path / "out" / "train_set" / "_unscored.jsonl").read_bytes()
    assert unscored == b"".join(line for line in lines if json.loads(line)["extra_info"]["index"] >= PROMPTS)
    original = {json.dumps(json.loads(line), sort_keys=True) for line in lines}
    for entry in manifest["train_set"]["files"]:
        for line in (tmp_path / "out" / entry["file"]).read_text().splitlines():
            row = json.loads(line)
            if entry["buckets"]:
                assert row.pop("difficulty")["bucket"] in entry["buckets"]
            assert json.dumps(row, sort_keys=True) in original


def test_annotate_may_not_overwrite_the_join_field(tmp_path):
    source = write_parquet(tmp_path / "src.parquet", source_rows())
    code, _, stderr = export(tmp_path, source, "--annotate", "extra_info")
    assert code == 2 and "would overwrite the join field extra_info.index" in stderr
