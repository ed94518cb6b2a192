"""Attacks on the parquet input, the training-set join (--train-set, --annotate) and the trainer recipes.

Each test is a finding (it failed before its fix) or a guard on a promise that held: every input row in one
output; bad input said in one line naming the file and what to do, never a traceback; a source changed after
its keys were read never sends rows where other rows' keys sent them; recipes keep paths quoted and on one line.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import bucketing
from bucketing import writer
from bucketing.errors import BucketingError
from bucketing.join import join
from bucketing.journal import JOURNAL, recover
from bucketing.outputs import TEMP_PREFIX
from bucketing.safedir import Folder

from .conftest import ROOT, one_line, run_cli, run_process
from .parquet_fixtures import rollout_rows, write_rows
from .test_attack_files import KILL_AT, every_file
from .test_join import make_rollouts, source_rows, write_parquet

JOIN = ("--join-on", "id=extra_info.index")


def damage(path: Path, group: int, column: str, skip: int = 20) -> Path:
    """Overwrite the bytes of one column chunk of row group ``group`` after its first ``skip`` bytes (the page
    header stays readable, the compressed data does not)."""
    meta = pq.ParquetFile(path).metadata
    data = bytearray(path.read_bytes())
    for index in range(meta.num_columns):
        chunk = meta.row_group(group).column(index)
        if chunk.path_in_schema == column:
            start = chunk.dictionary_page_offset or chunk.data_page_offset
            data[start + skip : start + chunk.total_compressed_size] = b"\xab" * (chunk.total_compressed_size - skip)
    path.write_bytes(bytes(data))
    return path


def no_temp_files(out: Path) -> bool:
    return not out.exists() or not [p for p in out.rglob("*") if p.name.startswith(TEMP_PREFIX)]


# --- 1. a training-set parquet file with a damaged row group -------------------------------------------------


@pytest.mark.parametrize("column", ["extra_info.index", "prompt.list.element.content"])
def test_a_damaged_row_group_in_the_source_is_one_line_naming_the_file_and_the_group(tmp_path, column):
    """Found: pyarrow's own error (two lines, no file name), exit 1 as for a disk error; the join column's
    damage shows when the keys are read, another column's only when the rows are written."""
    source = damage(write_parquet(tmp_path / "src.parquet", source_rows()), 1, column)
    rollouts = make_rollouts(tmp_path / "in", list(range(60)))
    result = run_cli("-i", rollouts, "-o", tmp_path / "out", "--train-set", source, *JOIN)
    assert result.returncode == 2 and one_line(result.stderr), result.stderr
    assert "src.parquet" in result.stderr and "row group 1" in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists() and no_temp_files(tmp_path / "out")


# --- 2. a source changed between the match and the export ------------------------------------------------------


def _rewrite(path: Path, rows: list[dict]) -> None:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=16)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))


CHANGES = {
    "fewer rows": lambda rows: rows[:40],  # parquet: 30 rows silently lost, the manifest counting them
    "more rows": lambda rows: rows + rows,  # parquet: pyarrow's ArrowInvalid traceback
    "reordered": lambda rows: rows[::-1],  # rows written into the buckets of other rows' keys (JSONL: cut lines)
    "another schema": lambda rows: [{"x": i, "pad": "y" * 50} for i in range(len(rows))],  # parquet: traceback
}


@pytest.mark.parametrize("kind", ["parquet", "jsonl"])
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_source_changed_after_its_keys_were_read_is_refused_before_writing(tmp_path, kind, change):
    rows = source_rows(70, duplicate=0)
    source = tmp_path / f"src.{kind}"
    _rewrite(source, rows)
    data = bucketing.load(make_rollouts(tmp_path / "in", list(range(60))), workers=1)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 3)
    joined = join(data, str(source), "id=extra_info.index")
    _rewrite(source, CHANGES[change](rows))
    out = tmp_path / "out"
    with pytest.raises(BucketingError, match=f"src.{kind} changed since"):
        bucketing.export(data, plan, out, join=joined)
    assert not (out / "manifest.json").exists() and no_temp_files(out)


def test_a_parquet_source_changed_behind_the_stat_check_is_still_caught(tmp_path, monkeypatch):
    """The size-and-time check can be fooled (a file rewritten within the clock's step, or its time set back):
    the writer counts the rows it reads against the rows it matched, and checks the schema."""
    rows = source_rows(70, duplicate=0)
    source = write_parquet(tmp_path / "src.parquet", rows)
    data = bucketing.load(make_rollouts(tmp_path / "in", list(range(60))), workers=1)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 3)
    joined = join(data, str(source), "id=extra_info.index")
    write_parquet(source, rows[:40])
    monkeypatch.setattr(writer, "check_unchanged_files", lambda *args: None)
    with pytest.raises(BucketingError, match="src.parquet changed since it was read"):
        bucketing.export(data, plan, tmp_path / "out", join=joined)
    assert no_temp_files(tmp_path / "out")


# --- 3. keys of every JSON type, numbers beyond a double ---------------------------------------------------------


def test_a_source_key_beyond_a_double_is_one_line_not_a_traceback(tmp_path):
    """Found: msgspec's ValidationError ("Number out of range") from the key of ``{"id": 1e400}``."""
    source = tmp_path / "src.jsonl"
    source.write_bytes(b'{"id": 1}\n{"id": 2}\n{"id": 1e400}\n')
    rollouts = make_rollouts(tmp_path / "in", [1, 2, 3])
    result = run_cli("-i", rollouts, "--dry-run", "--train-set", source, "--join-on", "id")
    assert result.returncode == 2 and one_line(result.stderr), result.stderr
    assert "src.jsonl:3" in result.stderr and "beyond a double" in result.stderr


def test_a_rollout_join_value_beyond_a_double_is_an_unmatched_rollout(tmp_path):
    rollouts = tmp_path / "in" / "r.jsonl"
    rollouts.parent.mkdir()
    rollouts.write_bytes(
        b'{"id": 1e400, "reward": [{"score": 0.3}]}\n{"id": 1, "reward": [{"score": 0.6}]}\n'
        b'{"id": 2, "reward": [{"score": 0.9}]}\n'
    )
    (tmp_path / "src.jsonl").write_bytes(b'{"id": 1}\n{"id": 2}\n')
    result = run_cli("-i", rollouts.parent, "--dry-run", "--train-set", tmp_path / "src.jsonl", "--join-on", "id")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "matched 2 of 3 rollouts" in result.stdout


def test_grouping_by_a_field_beyond_a_double_skips_the_line_with_its_reason(tmp_path):
    """Found: 1e400 and -1e400 were one group (both keyed as null), and the difficulty table (written by every
    export) decoded the value with msgspec: a traceback. Such a line is now skipped, saying why."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "r.jsonl").write_bytes(
        b'{"id": 1e400, "reward": [{"score": 0.3}]}\n{"id": -1e400, "reward": [{"score": 0.4}]}\n'
        b'{"id": 1, "reward": [{"score": 0.6}]}\n{"id": 2, "reward": [{"score": 0.9}]}\n'
    )
    out = tmp_path / "out"
    result = run_cli("-i", folder, "-o", out, "--group-by", "id", "--scores", "reward[].score", "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["totals"]["rollouts"] == 2 and manifest["totals"]["skipped"] == 2
    assert "beyond a double" in manifest["skipped_examples"]["missing group field"][0]
    assert (out / "_skipped.jsonl").read_bytes().count(b"e400") == 2
    assert pq.read_table(out / "difficulty.parquet").num_rows == 2


def test_annotating_a_line_that_holds_a_number_beyond_a_double_is_one_line(tmp_path):
    """Found: re-serialising ``{"id": 1, "big": 1e400}`` for --annotate raised msgspec's error: traceback."""
    source = tmp_path / "src.jsonl"
    source.write_bytes(b'{"id": 1, "big": 1e400}\n{"id": 2}\n')
    rollouts = make_rollouts(tmp_path / "in", [1, 2])
    out = tmp_path / "out"
    result = run_cli(
        "-i", rollouts, "-o", out, "-n", "2", "--train-set", source, "--join-on", "id", "--annotate", "difficulty"
    )
    assert result.returncode == 2 and one_line(result.stderr), result.stderr
    assert "src.jsonl:1" in result.stderr and "--annotate" in result.stderr
    assert not (out / "manifest.json").exists() and no_temp_files(out)


def test_a_null_join_value_in_a_jsonl_source_says_null_not_missing(tmp_path):
    """Found: ``{"id": null}`` was "has no field id (fields: id, ...)": a message contradicting itself."""
    source = tmp_path / "src.jsonl"
    source.write_bytes(b'{"id": 1}\n{"id": null, "x": 2}\n')
    result = run_cli("-i", make_rollouts(tmp_path / "in", [1]), "--dry-run", "--train-set", source, "--join-on", "id")
    assert result.returncode == 2 and one_line(result.stderr), result.stderr
    assert "src.jsonl:2" in result.stderr and "is null" in result.stderr


def test_keys_of_every_json_type_and_crlf_bom_blank_and_invalid_utf8_lines_lose_no_row(tmp_path):
    keys = [True, False, {"a": [1, {"b": None}]}, [1, "x"], "s" * 200_000, 1.5, 1e300, -0.0, 0, "é", 10**30]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "r.jsonl").write_text(
        "".join(json.dumps({"id": k, "reward": [{"score": i / 11}]}) + "\n" for i, k in enumerate(keys))
    )
    rows = [json.dumps({"id": k, "row": i}).encode() for i, k in enumerate(keys)]
    rows += [b'{"id": 1.0, "row": "one"}', b'{"id": "\xff\xfe not utf-8", "row": 99}', b'{"id": 7, "row": 7}']
    body = b"\xef\xbb\xbf" + rows[0] + b"\r\n" + b"\n".join(rows[1:5]) + b"\n\n   \n" + b"\n".join(rows[5:])
    (tmp_path / "src.jsonl").write_bytes(body)  # no newline at the end either
    out = tmp_path / "out"
    result = run_cli(
        "-i", folder, "-o", out, "-n", "2", "--train-set", tmp_path / "src.jsonl", "--join-on", "id", "--json"
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)["train_set"]
    assert record["source_rows"] == len(rows) and record["unmatched_rollouts"] == 0
    written = b"".join((out / f["file"]).read_bytes() for f in record["files"])
    assert sorted(written.splitlines()) == sorted(rows)  # BOM and \r dropped, as documented; no row lost


# --- 4. hostile parquet inputs ---------------------------------------------------------------------------------


def test_two_columns_of_one_name_are_refused_not_read_at_random(tmp_path):
    """Found: a rollout file with two ``reward`` columns (scores 1 and 0) was scored silently by the second."""
    folder = tmp_path / "in"
    folder.mkdir()
    twice = pa.Table.from_arrays(
        [pa.array([[{"score": 1.0}]] * 5), pa.array([[{"score": 0.0}]] * 5)], names=["reward", "reward"]
    )
    pq.write_table(twice, folder / "dup.parquet")
    result = run_cli("-i", folder / "dup.parquet", "-o", tmp_path / "out")
    assert result.returncode == 2 and one_line(result.stderr), result.stderr
    assert "dup.parquet" in result.stderr and "two columns are named reward" in result.stderr


def test_a_training_set_with_two_columns_of_one_name_is_refused(tmp_path):
    table = pa.Table.from_arrays([pa.array([0, 1, 2]), pa.array([2, 1, 0])], names=["id", "id"])
    pq.write_table(table, tmp_path / "src.parquet")
    result = run_cli(
        "-i", make_rollouts(tmp_path / "in", [0, 1, 2]), "--dry-run", "--train-set", tmp_path / "src.parquet",
        "--join-on", "id",
    )  # fmt: skip
    assert result.returncode == 2 and one_line(result.stderr), result.stderr
    assert "two columns named id" in result.stderr


def test_a_damaged_row_group_in_a_rollout_file_is_named_and_the_rest_bucketed(tmp_path):
    folder = tmp_path / "in"
    write_rows(folder / "good.parquet", rollout_rows(20))
    damage(
        write_rows(folder / "bad.parquet", rollout_rows(50, start=100), row_group_size=10),
        2,
        "reward.list.element.score",
    )
    result = run_cli("-i", folder, "-o", tmp_path / "out", "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    manifest = json.loads(result.stdout)
    assert [f["file"] for f in manifest["skipped_files"]] == ["bad.parquet"]
    assert "row group 2" in manifest["skipped_files"][0]["detail"]


@pytest.mark.slow
def test_a_thousand_tiny_parquet_files_under_an_open_file_limit_of_256(tmp_path):
    folder = tmp_path / "many"
    for i in range(1000):
        write_rows(folder / f"f{i:04d}.parquet", rollout_rows(1, seed=i, start=i))
    source = tmp_path / "src"
    for i in range(300):
        write_parquet(source / f"s{i:03d}.parquet", [{"key": f"p{i}", "n": i}])

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "bucketing", "-i", folder, "-o", out, "--train-set", source, "--join-on", "key"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(f["lines"] for f in manifest["files"]) == 1000
    assert sum(f["rows"] for f in manifest["train_set"]["files"]) == 300


# --- 5. training sets that point at the export itself ------------------------------------------------------------


@pytest.mark.parametrize("inside", ["train_set", "train_set/easy.parquet", "difficulty.parquet"])
def test_a_training_set_inside_the_output_folder_is_refused_in_one_line(tmp_path, inside):
    rollouts = make_rollouts(tmp_path / "in", list(range(60)))
    source = write_parquet(tmp_path / "src.parquet", source_rows())
    out = tmp_path / "out"
    assert run_cli("-i", rollouts, "-o", out, "--train-set", source, *JOIN).returncode == 0
    before = every_file(out)
    join_on = ("--join-on", "id=line") if inside == "difficulty.parquet" else JOIN
    result = run_cli("-i", rollouts, "-o", out, "--overwrite", "--train-set", out / inside, *join_on)
    assert result.returncode == 2 and one_line(result.stderr), result.stderr
    assert every_file(out) == before


# --- 6. a kill at every rename of a replacing export that writes train_set/ ----------------------------------------


@pytest.fixture(scope="module")
def train_exports(tmp_path_factory) -> tuple[Path, Path, dict, dict]:
    base = tmp_path_factory.mktemp("train-exports")
    rollouts = make_rollouts(base / "in", list(range(60)))
    source = write_parquet(base / "src.parquet", source_rows())
    made = []
    for flags in (("-n", "5", "--cumulative"), ("-n", "3")):
        out = base / f"ref{len(made)}"
        assert run_cli("-i", rollouts, "-o", out, "--train-set", source, *JOIN, *flags).returncode == 0
        made.append(every_file(out))
    return rollouts, source, made[0], made[1]


@pytest.mark.slow
@pytest.mark.parametrize("at", [1, 3, 5, 7, 9])  # 3 buckets, 4 training-set files, the table, the manifest
def test_a_kill_at_a_rename_of_an_export_with_a_training_set_leaves_old_or_new(tmp_path, train_exports, at):
    rollouts, source, old, new = train_exports
    out = tmp_path / "out"
    assert run_cli("-i", rollouts, "-o", out, "--train-set", source, *JOIN, "-n", "5", "--cumulative").returncode == 0
    plugin = tmp_path / "kill.py"
    plugin.write_text(KILL_AT.format(at=at))
    flags = ("--train-set", source, *JOIN, "-n", "3", "--overwrite")
    killed = run_process("-i", rollouts, "-o", out, *flags, "--plugin", plugin)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / JOURNAL).exists()
    with Folder.open(out) as folder:
        assert recover(folder, set())
    after = {name: body for name, body in every_file(out).items() if not name.split("/")[-1].startswith(TEMP_PREFIX)}
    assert after == new, sorted(set(after) ^ set(new))


# --- 7. recipes: paths that are hostile to shells, YAML and markdown ----------------------------------------------

HOSTILE = "o 'q\" $(touch pwned) `id` ${oc.env:HOME}\n```sh\nrm -rf ~\n```"


def test_a_recipe_keeps_a_hostile_folder_name_quoted_and_on_its_line(tmp_path):
    """Found: the recipe's text printed paths raw: a newline in the folder name started lines of its own (here a
    code block that is not the tool's)."""
    rollouts = make_rollouts(tmp_path / "in", list(range(60)))
    out = tmp_path / HOSTILE
    result = run_cli(
        "-i", rollouts, "-o", out, "--bucket-names", "yes", "null", "1e3", "--recipe", "verl,openrlhf,trl,nemo-rl,skyrl",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "pwned").exists() and not (ROOT / "pwned").exists()
    for trainer in ("verl", "openrlhf", "trl", "nemo-rl", "skyrl"):
        text = (out / f"recipe-{trainer}.md").read_text()
        prose = text.split("\n```")[0]  # the header: what is trained on, each path on its own line
        assert "rm -rf" in prose and "\nrm -rf ~" not in prose, trainer
        if trainer in ("verl", "openrlhf", "skyrl"):  # the shell command: the path one quoted word, not a command
            command = text.split("```sh\n", 1)[1].split("\n```\n")[0]
            words = shlex.split(command.replace("\\\n", " "), comments=False)
            spelled = str(out) if trainer == "openrlhf" else json.dumps(str(out))[1:-1]  # verl, skyrl: JSON lists
            assert any(spelled in word for word in words), trainer
            assert "-rf" not in words and "rm" not in words, trainer


def test_the_recipe_command_refuses_manifest_entries_outside_the_folder(tmp_path):
    rollouts = make_rollouts(tmp_path / "in", list(range(60)))
    out = tmp_path / "out"
    assert (
        run_cli(
            "-i", rollouts, "-o", out, "--train-set", write_parquet(tmp_path / "s.parquet", source_rows()), *JOIN
        ).returncode
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    for name in ("../secret.jsonl", "/etc/passwd.jsonl", "train_set/../../x.parquet", "recipe-x.md"):
        manifest["train_set"]["files"][0]["file"] = name
        (out / "manifest.json").write_text(json.dumps(manifest))
        result = run_process("recipe", "verl", out)
        assert result.returncode == 2 and one_line(result.stderr), (name, result.stderr)


def test_usage_errors_of_the_real_command_exit_2_in_one_line(tmp_path):
    for args in (
        ("recipe", "../recipe-x", tmp_path),
        ("-i", tmp_path, "--train-set", tmp_path / "x.parquet"),
        ("-i", tmp_path, "--annotate", "a.b"),
        ("-i", tmp_path, "--train-set", tmp_path, "--join-on", "a=@file"),
    ):
        result = run_process(*args)
        assert result.returncode == 2 and one_line(result.stderr), (args, result.stderr)
