"""--train-set / --join-on: every source row goes where the rollouts with its key went, nothing lost.

The oracle is plain Python over the raw files: the rollout bucket files say which prompt went where; the
source rows are read with pyarrow (parquet) or split on b"\\n" (JSONL).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import run_cli

PROMPTS = 60


def make_rollouts(folder: Path, ids: list, seed: int = 0, per_step: bool = False) -> Path:
    """One line per prompt (two per prompt, at steps 1 and 2, with ``per_step``): ``id`` names its source row."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "r.jsonl", "w") as f:
        for step in (1, 2) if per_step else (1,):
            for i in ids:
                scores = [rng.choice([0, 0.5, 1]) for _ in range(4)]
                f.write(
                    json.dumps({"id": i, "step": step, "prompt": f"q{i}", "reward": [{"score": s} for s in scores]})
                    + "\n"
                )
    return folder


def source_rows(count: int = PROMPTS + 10, duplicate: int = 3) -> list[dict]:
    """verl-style rows: extra_info.index = the rollouts' id; ids past PROMPTS have no rollout; row 0's id twice."""
    rows = [
        {
            "data_source": "gsm8k",
            "prompt": [{"role": "user", "content": f"q{i} ünï"}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(i)},
            "extra_info": {"index": i, "split": "train"},
        }
        for i in range(count)
    ]
    return rows + [dict(rows[0], data_source="again")] * duplicate


def write_parquet(path: Path, rows: list[dict], row_group_size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:  # a CRLF line and spacing json.dumps would not write: bytes must survive
        for number, row in enumerate(rows):
            f.write(json.dumps(row, indent=None, separators=(", ", ":")) + ("\r\n" if number == 5 else "\n"))
    return path


def export(tmp_path: Path, source: Path, *flags, rollouts: Path | None = None) -> tuple[int, dict, str]:
    rollouts = rollouts or make_rollouts(tmp_path / "in", list(range(PROMPTS)))
    out = tmp_path / "out"
    result = run_cli(
        "-i", rollouts, "-o", out, "--train-set", source, "--join-on", "id=extra_info.index", "--json", *flags
    )
    manifest = json.loads(result.stdout) if result.returncode == 0 else {}
    return result.returncode, manifest, result.stderr


def rollout_places(out: Path, manifest: dict) -> dict[tuple[str, bool], set]:
    """(file, cumulative?) of every rollout file -> the ids in it, read from the bucket files."""
    return {
        entry["file"]: {json.loads(line)["id"] for line in (out / entry["file"]).read_text().splitlines()}
        for entry in manifest["files"]
    }


def expected_rows(rows: list, ids_of_file: dict[str, set], entry: dict, key) -> list:
    """The source rows a training-set file should hold, in source order."""
    rollout_file = entry["file"].removeprefix("train_set/").rsplit(".", 1)[0] + ".jsonl"
    if not entry["buckets"]:
        scored = set().union(*(ids for name, ids in ids_of_file.items() if "/" not in name))
        return [row for row in rows if key(row) not in scored]
    return [row for row in rows if key(row) in ids_of_file[rollout_file]]


@pytest.mark.parametrize("flags", [(), ("--cumulative",), ("--val-fraction", "0.3", "--cumulative")])
def test_parquet_rows_follow_their_rollouts_value_for_value_with_the_source_schema(tmp_path, flags):
    rows = source_rows()
    source = write_parquet(tmp_path / "src" / "train.parquet", rows)
    code, manifest, stderr = export(tmp_path, source, *flags)
    assert code == 0, stderr
    out = tmp_path / "out"
    ids_of_file = rollout_places(out, manifest)
    schema = pq.read_schema(source)
    written = manifest["train_set"]["files"]
    assert {e["file"] for e in written} == {f"train_set/{e['file'][:-6]}.parquet" for e in manifest["files"]} | {
        "train_set/_unscored.parquet"
    }
    for entry in written:
        table = pq.read_table(out / entry["file"])
        assert table.schema.equals(schema), entry["file"]
        got = table.to_pylist()
        assert got == expected_rows(rows, ids_of_file, entry, lambda r: r["extra_info"]["index"]), entry["file"]
        assert entry["rows"] == len(got)
    # nothing lost: every source row in exactly one file that is not a stage (nor, with a split, an "all" part)
    split = "--val-fraction" in flags
    parts = [e for e in written if not e["cumulative"] and (e["part"] != "all" or not split or not e["buckets"])]
    together = Counter(json.dumps(r, sort_keys=True) for e in parts for r in pq.read_table(out / e["file"]).to_pylist())
    assert together == Counter(json.dumps(r, sort_keys=True) for r in rows)
    record = manifest["train_set"]
    assert record["format"] == "parquet" and record["join_on"] == {"rollout": "id", "source": "extra_info.index"}
    assert (record["source_rows"], record["unscored_rows"], record["duplicate_keys"]) == (len(rows), 10, 1)
    assert (record["matched_rollouts"], record["unmatched_rollouts"]) == (PROMPTS, 0)


def test_a_prompt_s_source_rows_are_on_the_side_of_its_rollouts(tmp_path):
    source = write_parquet(tmp_path / "src.parquet", source_rows())
    code, manifest, stderr = export(tmp_path, source, "--val-fraction", "0.4")
    assert code == 0, stderr
    ids_of_file = rollout_places(tmp_path / "out", manifest)
    val = set().union(*(ids for name, ids in ids_of_file.items() if name.startswith("val/")))
    train = set().union(*(ids for name, ids in ids_of_file.items() if name.startswith("train/")))
    for entry in manifest["train_set"]["files"]:
        ids = {r["extra_info"]["index"] for r in pq.read_table(tmp_path / "out" / entry["file"]).to_pylist()}
        if entry["part"] == "val":
            assert ids <= val
        elif entry["part"] == "train":
            assert ids <= train


def test_a_jsonl_source_is_copied_byte_for_byte(tmp_path):
    rows = source_rows()
    source = write_jsonl(tmp_path / "src" / "train.jsonl", rows)
    code, manifest, stderr = export(tmp_path, tmp_path / "src", "--cumulative")
    assert code == 0, stderr
    lines = source.read_bytes().splitlines(keepends=True)
    ids_of_file = rollout_places(tmp_path / "out", manifest)
    for entry in manifest["train_set"]["files"]:
        want = expected_rows(lines, ids_of_file, entry, lambda line: json.loads(line)["extra_info"]["index"])
        want = [line.replace(b"\r\n", b"\n") for line in want]  # a CRLF line loses its \r, as rollout lines do
        assert (tmp_path / "out" / entry["file"]).read_bytes() == b"".join(want), entry["file"]


def test_rollouts_without_a_source_row_are_counted_shown_and_fail_under_strict(tmp_path):
    source = write_parquet(tmp_path / "src.parquet", source_rows(count=PROMPTS - 5, duplicate=0))
    code, manifest, stderr = export(tmp_path, source)
    assert code == 0, stderr
    assert manifest["train_set"]["unmatched_rollouts"] == 5 and manifest["train_set"]["unscored_rows"] == 0
    assert "5 rollouts without a source row" in stderr and "r.jsonl:56" in stderr
    code, _, stderr = export(tmp_path, source, "--strict", "--overwrite")
    last = stderr.strip().splitlines()[-1]
    assert code == 1 and last.startswith("error: r.jsonl:56: no training-set row has this rollout's id")


def test_a_dry_run_prints_the_match_rate_and_writes_nothing(tmp_path):
    source = write_parquet(tmp_path / "src.parquet", source_rows())
    rollouts = make_rollouts(tmp_path / "in", list(range(PROMPTS)))
    result = run_cli("-i", rollouts, "--dry-run", "--train-set", source, "--join-on", "id=extra_info.index")
    assert result.returncode == 0, result.stderr
    assert (
        f"matched {PROMPTS} of {PROMPTS} rollouts (100.0%); {PROMPTS + 3} of {PROMPTS + 13} source rows (86.3%)"
        in result.stdout
    )
    assert (
        "1 key held by several source rows" in result.stdout
        and "src.parquet row 0, src.parquet row 70, src.parquet row 71 and 1 more" in result.stdout
    )
    assert not (tmp_path / "out").exists()


def test_keys_compare_as_grouping_compares_them_1_and_1_0_alike(tmp_path):
    rows = [dict(row, extra_info={"index": float(row["extra_info"]["index"])}) for row in source_rows(duplicate=0)]
    source = write_jsonl(tmp_path / "src.jsonl", rows)
    code, manifest, stderr = export(tmp_path, source)
    assert code == 0, stderr
    assert manifest["train_set"]["matched_rollouts"] == PROMPTS


def test_a_key_whose_rollouts_sit_in_two_buckets_is_refused_and_group_by_resolves_it(tmp_path):
    rollouts = make_rollouts(tmp_path / "in", list(range(PROMPTS)), per_step=True)
    source = write_parquet(tmp_path / "src.parquet", source_rows())
    code, _, stderr = export(tmp_path, source, rollouts=rollouts)
    assert code == 2 and "different buckets" in stderr and "--group-by id" in stderr and "r.jsonl:" in stderr
    code, manifest, stderr = export(tmp_path, source, "--group-by", "id", rollouts=rollouts)
    assert code == 0, stderr
    assert manifest["train_set"]["matched_rollouts"] == PROMPTS


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing field parquet", "src.parquet: extra_info has no field nope (index, split)"),
        ("missing column parquet", "src.parquet has no column nope (columns: data_source, prompt"),
        ("missing field jsonl", "src.jsonl:1 has no field nope (fields: data_source, prompt"),
        ("neither", "is neither a parquet nor a JSONL file"),
        ("broken footer", "src.parquet: broken parquet file"),
        ("type mismatch", "the rollouts' values are of type number, the source's of type string"),
        ("not jsonl", "src.jsonl:2: not a JSON object"),
        ("mixed folder", "holds both parquet and JSONL files"),
        ("no join-on", "--train-set needs --join-on"),
    ],
)
def test_bad_training_sets_get_one_line_and_exit_2(tmp_path, case, message):
    rows = source_rows(duplicate=0)
    join_on = {"missing field parquet": "id=extra_info.nope", "missing column parquet": "id=nope"}.get(
        case, "id=nope" if case == "missing field jsonl" else "id=extra_info.index"
    )
    if case in ("missing field parquet", "missing column parquet"):
        source = write_parquet(tmp_path / "src.parquet", rows)
    elif case == "neither":
        source = tmp_path / "src.csv"
        source.write_text("a,b\n")
    elif case == "broken footer":
        source = tmp_path / "src.parquet"
        source.write_bytes(b"PAR1 not really")
    elif case == "type mismatch":
        source = write_parquet(
            tmp_path / "src.parquet", [dict(r, extra_info={"index": str(i)}) for i, r in enumerate(rows)]
        )
    elif case == "not jsonl":
        source = tmp_path / "src.jsonl"
        source.write_text('{"extra_info": {"index": 1}}\n[1, 2]\n')
    elif case == "mixed folder":
        write_parquet(tmp_path / "src" / "a.parquet", rows)
        source = write_jsonl(tmp_path / "src" / "b.jsonl", rows).parent
    else:
        source = write_jsonl(tmp_path / "src.jsonl", rows)
    rollouts = make_rollouts(tmp_path / "in", list(range(PROMPTS)))
    flags = ["--train-set", str(source)] + ([] if case == "no join-on" else ["--join-on", join_on])
    result = run_cli("-i", rollouts, "-o", tmp_path / "out", *flags)
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning")]
    assert result.returncode == 2 and len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_a_broken_parquet_file_in_a_folder_is_skipped_and_named(tmp_path):
    write_parquet(tmp_path / "src" / "a.parquet", source_rows(duplicate=0))
    (tmp_path / "src" / "b.parquet").write_bytes(b"PAR1 broken")
    code, manifest, stderr = export(tmp_path, tmp_path / "src")
    assert code == 0, stderr
    assert "b.parquet: broken parquet file" in stderr
    assert [f["file"] for f in manifest["train_set"]["skipped_files"]] == ["b.parquet"]


def test_overwrite_replaces_an_export_with_a_training_set_whole(tmp_path):
    source = write_parquet(tmp_path / "src.parquet", source_rows())
    code, _, stderr = export(tmp_path, source, "-n", "3", "--cumulative", "--bucket-names", "a", "b", "c")
    assert code == 0, stderr
    code, _, stderr = export(tmp_path, source, "-n", "3")
    assert code == 2 and "--overwrite" in stderr
    code, manifest, stderr = export(tmp_path, source, "-n", "2", "--overwrite")
    assert code == 0, stderr
    left = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert left == sorted(
        ["difficulty.parquet", "bucket_0.jsonl", "bucket_1.jsonl", "manifest.json", "train_set"]
        + [f"train_set/{name}.parquet" for name in ("bucket_0", "bucket_1", "_unscored")]
    )


@pytest.mark.parametrize("trainer", ["verl", "trl", "nemo-rl", "openrlhf", "skyrl"])
def test_a_recipe_of_a_joined_export_trains_on_the_training_set_rows_easiest_first(tmp_path, trainer):
    source = write_parquet(tmp_path / "src" / "train.parquet", source_rows())
    code, manifest, err = export(tmp_path, source, "-n", "3", "--cumulative", "--recipe", trainer)
    assert code == 0, err
    recipe = (tmp_path / "out" / f"recipe-{trainer}.md").read_text()
    assert "these files are rollouts" not in recipe
    stages = [f["file"] for f in manifest["train_set"]["files"] if f["cumulative"]]
    assert stages == [f"train_set/cumulative/{name}.parquet" for name in ("easy", "medium", "hard")]
    places = [recipe.index(str((tmp_path / "out" / stage).resolve())) for stage in stages]
    assert places == sorted(places)  # named easiest first
    assert "_unscored" not in recipe and "/cumulative/easy.jsonl" not in recipe  # source rows, not rollouts


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_run_turns_transparent_huge_pages_off_for_itself_and_its_workers():
    """A run's first touches of fresh memory clear 4 KB pages, not 2 MB ones (see cli.no_huge_pages)."""
    code = (
        "import ctypes, os; from bucketing.cli import no_huge_pages; no_huge_pages(); "
        "pid = os.fork()\n"
        "if pid == 0: os._exit(ctypes.CDLL(None).prctl(42, 0, 0, 0, 0))\n"  # PR_GET_THP_DISABLE, in a child
        "print(ctypes.CDLL(None).prctl(42, 0, 0, 0, 0), os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert done.stdout.split() == ["1", "1"]
