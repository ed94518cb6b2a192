"""Real rollout folders: a file that is not JSONL is skipped whole, files are left out with --exclude."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import bucketing
from bucketing.command_line import command_line
from bucketing.dataset import NOT_JSONL
from bucketing.sources import excluded

from .conftest import rollout_line, run_cli, write_lines

PLACEHOLDERS = b"<PLACEHOLDER ROW>\n<PLACEHOLDER ROW>\n\n<PLACEHOLDER ROW>\n"
PRETTY = (
    json.dumps(
        [{"prompt": "x", "reward": [{"score": 1}]}, {"prompt": "y", "reward": [{"score": 0}]}], indent=2
    ).encode()
    + b"\n"
)  # its lines include '{"score": 1}': objects, but not JSONL


def odd_folder(root: Path) -> dict[str, bytes]:
    """Good files with two files that are not JSONL among them (and a bad line in a good one); name -> bytes."""
    files = {
        "a.jsonl": b"\n".join(rollout_line([i % 2, 1]) for i in range(6)) + b"\n",
        "b_placeholder.jsonl": PLACEHOLDERS,
        "c.jsonl": b"\n".join(rollout_line([0.5, i / 4]) for i in range(5)) + b"\n{oops\n",
        "d/pretty.jsonl": PRETTY,
        "e.jsonl": rollout_line([1]) + b"\n" + b"{oops\n" * 3,
    }
    for name, body in files.items():
        write_lines(root / name, [body], final_newline=False)
    return files


def non_blank(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if line.strip()]


def output_lines(out: Path) -> Counter:
    return Counter(line for path in out.glob("*.jsonl") for line in path.read_bytes().splitlines())


def test_a_folder_goes_past_two_files_that_are_not_jsonl(tmp_path):
    files = odd_folder(tmp_path / "in")
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Not JSONL, every line skipped (2 files):" in proc.stdout
    assert "  b_placeholder.jsonl: no line is a JSON object; line 1: invalid JSON (3 lines)" in proc.stdout
    assert "  d/pretty.jsonl: it starts and ends with a lone bracket" in proc.stdout
    # nothing lost: every non-blank line once, byte-identical; theirs all in _skipped.jsonl, in input order
    assert output_lines(tmp_path / "out") == Counter(line for body in files.values() for line in non_blank(body))
    skipped = (tmp_path / "out" / "_skipped.jsonl").read_bytes().splitlines()
    assert [line for line in skipped if line != b"{oops"] == non_blank(PLACEHOLDERS) + non_blank(PRETTY)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert [(f["file"], f["reason"], f["lines"]) for f in manifest["skipped_files"]] == [
        ("b_placeholder.jsonl", NOT_JSONL, 3),
        ("d/pretty.jsonl", NOT_JSONL, len(non_blank(PRETTY))),
    ]
    assert manifest["skipped"] == {NOT_JSONL: 3 + len(non_blank(PRETTY)), "invalid JSON": 4}
    assert manifest["totals"]["rollouts"] == 12 and manifest["excluded"] == []


def test_under_strict_a_file_that_is_not_jsonl_stops_the_run(tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1, 0])])
    (tmp_path / "in" / "b.jsonl").write_bytes(PLACEHOLDERS)
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "--strict")
    assert proc.returncode == 1 and proc.stderr.startswith("error: b.jsonl:1: invalid JSON")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_a_single_input_file_that_is_not_jsonl_still_stops_the_run(tmp_path):
    odd_folder(tmp_path / "in")
    proc = run_cli("-i", tmp_path / "in" / "b_placeholder.jsonl", "-o", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: b_placeholder.jsonl is not JSONL (one JSON object per line): line 1: invalid JSON; "
        "is it a pretty-printed JSON document or a binary file? Convert or remove it\n"
    )
    with pytest.raises(bucketing.BucketingError, match=r"^pretty\.jsonl is not JSONL: it starts and ends"):
        bucketing.load(tmp_path / "in" / "d" / "pretty.jsonl")


def test_a_folder_of_files_that_are_all_not_jsonl_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(PLACEHOLDERS)
    (tmp_path / "in" / "b.jsonl").write_bytes(PRETTY)
    with pytest.raises(bucketing.BucketingError, match=r"^a\.jsonl is not JSONL .*\(and the 1 other files are not "):
        bucketing.load(tmp_path / "in")


def test_examples_come_from_as_many_files_as_there_are(tmp_path):
    odd_folder(tmp_path / "in")
    data = bucketing.load(tmp_path / "in")
    examples = data.skipped_reasons()
    assert [e.split(":")[0] for e in examples["invalid JSON"]["examples"]] == [
        "c.jsonl",
        "e.jsonl",
        "e.jsonl",
        "e.jsonl",
    ]
    assert [e.split(":", 2)[:2] for e in examples[NOT_JSONL]["examples"]] == [
        ["b_placeholder.jsonl", "1"],
        ["d/pretty.jsonl", "1"],
        ["b_placeholder.jsonl", "2"],
        ["d/pretty.jsonl", "2"],
        ["b_placeholder.jsonl", "4"],
    ]
    assert examples[NOT_JSONL]["examples"][0] == (
        "b_placeholder.jsonl:1: file is not JSONL (no line is a JSON object; line 1: invalid JSON)"
    )
    assert [e.split(":")[0] for e in data.skipped_reasons(2)["invalid JSON"]["examples"]] == ["c.jsonl", "e.jsonl"]


# --- --exclude ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "glob", "left_out"),
    [
        ("drafts/a.jsonl", "drafts/*", True),
        ("drafts/x/a.jsonl", "drafts/*", True),  # * matches / too
        ("drafts/x/a.jsonl", "drafts", True),  # a folder: everything below it
        ("drafts/x/a.jsonl", "./drafts/", True),
        ("x/a.tmp.jsonl", "*.tmp.jsonl", True),
        ("a.tmp.jsonl", "*.tmp.jsonl", True),
        ("my_drafts/a.jsonl", "drafts", False),
        ("Drafts/a.jsonl", "drafts/*", False),  # case-sensitive
        ("a.jsonl", "a", False),
        ("part_1.jsonl", "part_[0-4].jsonl", True),
    ],
)
def test_what_an_exclude_glob_matches(rel, glob, left_out):
    assert excluded(rel, [glob.removeprefix("./").rstrip("/")]) == left_out


def drafts_folder(root: Path) -> None:
    write_lines(root / "a.jsonl", [rollout_line([1, 0]), rollout_line([1, 1])])
    write_lines(root / "drafts" / "old.jsonl", [rollout_line([0])])
    write_lines(root / "drafts" / "deep" / "older.jsonl", [b"<PLACEHOLDER ROW>"])
    write_lines(root / "b" / "c.tmp.jsonl", [rollout_line([0.5])])


def test_exclude_on_the_command_line(tmp_path):
    drafts_folder(tmp_path / "in")
    proc = run_cli(
        "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1", "--exclude", "drafts/*", "--exclude", "*.tmp.jsonl"
    )
    assert proc.returncode == 0, proc.stderr
    assert "Found 1 JSONL file in " in proc.stdout and "; 3 files left out by --exclude" in proc.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["excluded"] == ["b/c.tmp.jsonl", "drafts/deep/older.jsonl", "drafts/old.jsonl"]
    assert [i["path"] for i in manifest["inputs"]] == ["a.jsonl"] and manifest["totals"]["rollouts"] == 2
    assert manifest["skipped_files"] == [] and manifest["skipped_file"] is None


def test_exclude_in_the_library(tmp_path):
    drafts_folder(tmp_path / "in")
    data = bucketing.load(tmp_path / "in", exclude=["drafts"])
    assert [f.rel for f in data.files] == ["a.jsonl", "b/c.tmp.jsonl"]
    assert data.excluded == ["drafts/deep/older.jsonl", "drafts/old.jsonl"]
    assert bucketing.load(tmp_path / "in").totals["skipped"] == 1  # without it, the placeholder file is read


def test_exclude_leaving_nothing_or_empty_is_refused(tmp_path):
    drafts_folder(tmp_path / "in")
    proc = run_cli("-i", tmp_path / "in", "--dry-run", "--exclude", "*")
    assert proc.returncode == 2 and proc.stderr.endswith("(all 4 found are left out by the exclude globs)\n")
    proc = run_cli("-i", tmp_path / "in", "--dry-run", "--exclude", "")
    assert proc.returncode == 2 and proc.stderr.startswith("error: exclude glob '' matches no file")
    assert proc.stderr.count("\n") == 1


def test_the_equivalent_command_line_leaves_out_the_same_files(tmp_path):
    drafts_folder(tmp_path / "in")
    data = bucketing.load(tmp_path / "in", exclude=["drafts/*", "*.tmp.jsonl"])
    plan = bucketing.percentile_plan(data.table()["mean_reward"], "mean_reward", 1)
    command = command_line(str(tmp_path / "in"), str(tmp_path / "out"), plan, exclude=["drafts/*", "*.tmp.jsonl"])
    assert " --exclude 'drafts/*' --exclude '*.tmp.jsonl' " in command
    assert command_line(str(tmp_path / "in"), str(tmp_path / "out"), plan).count("--exclude") == 0
