"""Real rollout folders (issue 16): score keys of any spelling, sums of reward keys, grouping within a file,
the two more layouts detected, and the group in the table and the preview."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bucketing
from bucketing import cli
from bucketing.errors import BucketingError
from bucketing.layout import Layout, parse_group_by
from bucketing.preview import preview
from bucketing.scorepath import MAX_INDEX, UNEVEN, ScorePath

from .conftest import ROOT, one_line, output_lines, write_lines

FORMATS = ROOT / "examples" / "formats"


def load_lines(tmp_path, records: list[dict], **flags) -> bucketing.Dataset:
    write_lines(tmp_path / "in" / "a.jsonl", [json.dumps(r, ensure_ascii=False).encode() for r in records])
    return bucketing.load(tmp_path / "in", workers=1, **flags)


# --- score paths that reach any key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, record, scores",
    [
        ('["mean/reward"]', {"mean/reward": 0.25}, [0.25]),
        ('reward["rewards.format"]', {"reward": {"rewards.format": 1}}, [1.0]),
        ('["reward accuracy"][]', {"reward accuracy": [1, 0]}, [1.0, 0.0]),
        ('["0_reward"]', {"0_reward": 0.5}, [0.5]),
        ('["réussite"]', {"réussite": 1}, [1.0]),
        ("rewards[0]", {"rewards": [0.75, 0.0]}, [0.75]),
        ("rewards[-1]", {"rewards": [0.75, 0.0]}, [0.0]),
        ("turns[1].score", {"turns": [{"score": 0}, {"score": 0.5}]}, [0.5]),
        ('results[]["pass@1"]', {"results": [{"pass@1": 1}, {"pass@1": 0}]}, [1.0, 0.0]),
    ],
)
def test_a_quoted_key_or_an_index_reaches_the_scores_fast_and_slow(tmp_path, path, record, scores):
    first = next(iter(record))
    twice = ("{" + json.dumps(first) + ': "no", ' + json.dumps(record)[1:]).encode()  # the fast readers refuse it:
    write_lines(tmp_path / "in" / "a.jsonl", [json.dumps(record).encode(), twice])  # the slow look takes the last
    data = bucketing.load(tmp_path / "in", scores=path, workers=1)
    assert data.scores.flat.tolist() == scores * 2 and data.totals["skipped"] == 0
    assert ScorePath.parse(path).text == path  # written back the way it was given
    assert ScorePath(path).scores_of(record) == scores


@pytest.mark.parametrize(
    "path, problem",
    [
        ('["mean/reward"', "closed with ]"),
        ('["mean/reward]', "JSON string"),
        ('[""]', "an empty key"),
        (f"rewards[{MAX_INDEX + 1}]", f"beyond {MAX_INDEX}"),
        ("rewards[99999999999]", "brackets hold"),
        ("rewards[0][1]", "list inside a list"),
        ("0_reward", "expected a field name"),
        ("a +", "expected a field name"),
        ("a b", "unexpected 'b'"),
    ],
)
def test_a_bad_path_is_one_line_showing_the_syntax(tmp_path, capsys, path, problem):
    write_lines(tmp_path / "in" / "a.jsonl", [b'{"a": 1}'])
    assert cli.main(["-i", str(tmp_path / "in"), "--dry-run", "--scores", path]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and problem in err and 'e.g. reward[].score, rewards[0], ["mean/reward"]' in err


def test_an_index_past_the_end_is_a_line_skipped_with_its_reason(tmp_path):
    data = load_lines(tmp_path, [{"rewards": [1, 0]}, {"rewards": [1]}, {"rewards": 3}], scores="rewards[1]")
    assert data.scores.flat.tolist() == [0.0]
    assert data.skipped_summary["missing scores"]["count"] == 1 and data.skipped_summary["scores not a list"]


# --- several reward keys ------------------------------------------------------------------------------------------


def test_several_score_paths_add_up_per_response(tmp_path):
    records = [{"correct": 1, "format": 0.5}, {"correct": 0, "format": 1}]
    data = load_lines(tmp_path, records, scores="correct + format")
    assert data.scores.flat.tolist() == [1.5, 1.0]


def test_score_weights_make_a_weighted_sum_and_the_manifest_says_so(tmp_path, capsys):
    write_lines(
        tmp_path / "in" / "a.jsonl",
        [json.dumps({"correct": c, "format": f}).encode() for c, f in [(1, 1), (0, 1), (1, 0)]],
    )
    code = cli.main(
        [
            "-i",
            str(tmp_path / "in"),
            "--dry-run",
            "--json",
            "--scores",
            "correct",
            "format",
            "--score-weights",
            "0.75",
            "0.25",
        ]
    )
    assert code == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["params"]["scores"] == "0.75 * correct + 0.25 * format"
    data = bucketing.load(tmp_path / "in", scores=manifest["params"]["scores"], workers=1)  # replays
    assert data.scores.flat.tolist() == [1.0, 0.25, 0.75]


def test_list_paths_add_elementwise_and_uneven_lists_are_a_reason(tmp_path):
    data = load_lines(tmp_path, [{"a": [1, 0], "b": [1, 1]}, {"a": [1], "b": [1, 0]}], scores="a[] + b[]")
    assert data.scores.flat.tolist() == [2.0, 1.0]
    assert data.skipped_summary[UNEVEN]["count"] == 1


@pytest.mark.parametrize(
    "flags, problem",
    [
        (["--scores", "a", "b", "--score-weights", "1"], "1 weights for 2 score paths"),
        (["--score-weights", "1", "2"], "--score-weights needs --scores"),
        (["--scores", "0.5 * a", "b", "--score-weights", "1", "2"], "either in --scores"),
        (["--scores", "a", "--score-weights", "inf"], "finite"),
    ],
)
def test_weights_that_do_not_fit_are_refused_before_reading(tmp_path, capsys, flags, problem):
    assert cli.main(["-i", str(tmp_path / "missing"), "--dry-run", *flags]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and problem in err


# --- grouping within a file ---------------------------------------------------------------------------------------


def verifiers_runs(folder):
    folder.mkdir(parents=True)
    for name in ("verifiers_results_run0.jsonl", "verifiers_results_run1.jsonl"):
        (folder / name).write_bytes((FORMATS / name).read_bytes())
    return folder


def test_at_file_keeps_the_equal_ids_of_two_files_apart(tmp_path):
    folder = verifiers_runs(tmp_path / "runs")
    within = bucketing.load(folder, scores="reward", group_by="@file,example_id", workers=1)
    across = bucketing.load(folder, scores="reward", group_by="example_id", workers=1)
    assert len(within.scores) == 6 and len(across.scores) == 3  # 3 questions per run's file
    table = within.table()
    assert table.groupby("file", observed=True)["group_key"].nunique().tolist() == [3, 3]
    assert set(table["group_key"][table["file"] == table["file"].iloc[0]]).isdisjoint(
        table["group_key"][table["file"] != table["file"].iloc[0]]
    )


def test_at_file_grouping_writes_every_line_once(tmp_path):
    folder = verifiers_runs(tmp_path / "runs")
    assert cli.main(["-i", str(folder), "-o", str(tmp_path / "out"), "-n", "2"]) == 0  # detected: @file,example_id
    written = sorted(line for lines in output_lines(tmp_path / "out").values() for line in lines)
    assert written == sorted(line for f in sorted(folder.iterdir()) for line in f.read_bytes().splitlines(True))


def test_group_by_parses_quoted_keys_and_the_file():
    assert parse_group_by('@file,["task id"],extra_info.index') == ("@file", '["task id"]', "extra_info.index")
    assert parse_group_by('["a,b"]') == ('["a,b"]',)
    assert parse_group_by("content[0]") == ("content[0]",) and parse_group_by('a["b c"][-1]') == ('a["b c"][-1]',)
    for bad in ("prompt[]", "a[0].b", "a[0][1]"):
        with pytest.raises(BucketingError, match=r"\[N\] only at its end|one \[\] or \[N\] per field"):
            parse_group_by(bad)
    assert (
        Layout.parse("score", "@file,example_id")
        .describe()
        .startswith("one rollout = lines with equal example_id in the same file")
    )


# --- detection -------------------------------------------------------------------------------------------------------


def test_nemo_gym_rollouts_without_a_task_index_group_by_the_prompt(tmp_path):
    lines = [json.loads(line) for line in (FORMATS / "nemo_gym_rollouts.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("_ng_task_index")
    data = load_lines(tmp_path, lines)
    assert data.layout.name == "NeMo-Gym rollouts without a task index"
    assert data.layout.group_by == ("responses_create_params.input",)
    assert len(data.scores) == 3


def test_the_detection_error_lists_the_fields_of_each_file(tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [b'{"question": "q", "grade": "A"}'])
    write_lines(tmp_path / "in" / "b.jsonl", [b'{"task": "t", "verdict": "pass"}'])
    with pytest.raises(BucketingError) as caught:
        bucketing.load(tmp_path / "in", workers=1)
    message = str(caught.value)
    assert "fields seen in a.jsonl: grade, question; in b.jsonl: task, verdict" in message


# --- the group in the table and the preview ----------------------------------------------------------------------------


def test_the_table_has_the_group_key_and_the_preview_its_fields(tmp_path):
    data = load_lines(
        tmp_path,
        [
            {"input": "p1", "output": "a", "score": 1},
            {"input": "p2", "output": "b", "score": 0},
            {"input": "p1", "output": "c", "score": 0},
        ],
    )
    assert data.layout.group_by == ("input",)
    table = data.table()
    assert table["group_key"].nunique() == 2 and np.issubdtype(table["group_key"].dtype, np.unsignedinteger)
    assert [r.group for r in preview(data, [0, 1])] == [{"input": "p1"}, {"input": "p2"}]
    plain = load_lines(tmp_path / "plain", [{"reward": [{"score": 1}]}])
    assert "group_key" not in plain.table() and preview(plain, [0])[0].group is None
