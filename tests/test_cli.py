"""The command line, as the original user guide and the README use it."""

from __future__ import annotations

import importlib
import io
import json
import shlex
import shutil
import statistics

import pytest

from bucketing.metrics import Params
from bucketing.progress import ProgressBar
from bucketing.wording import counted

from .conftest import (
    ROOT,
    metric_definitions,
    modules_imported_by_cli,
    one_line,
    output_lines,
    rollout_line,
    run_cli,
    run_process,
    sample_scores,
    write_lines,
)

SCRIPT = "bucket_rollouts_by_difficulty.py"
FORMATS = ROOT / "examples" / "formats"

GUIDE_COMMANDS = [
    (["-m", "mean_reward", "-n", "3"], ["easy", "medium", "hard"]),
    (["-m", "pass_at_k", "-n", "5"], ["very_easy", "easy", "medium", "hard", "very_hard"]),
    (["-n", "10", "--bucket-names", *[f"level_{i}" for i in range(10)]], [f"level_{i}" for i in range(10)]),
    (["--bucket-names", "beginner", "intermediate", "expert"], ["beginner", "intermediate", "expert"]),
    (["-m", "mean_reward", "--thresholds", "0.3", "0.7"], ["bucket_0", "bucket_1", "bucket_2"]),
    (["--thresholds", "0.3", "0.7", "--bucket-names", "low", "medium", "high"], ["low", "medium", "high"]),
    (["-m", "mean_reward", "-n", "3", "--prefix", "mean_"], ["mean_easy", "mean_medium", "mean_hard"]),
    (["-m", "variance", "-n", "3"], ["easy", "medium", "hard"]),
] + [
    (["-m", metric, "-n", "3"], ["easy", "medium", "hard"])
    for metric in ["max_reward", "min_reward", "success_rate", "inverse_mean"]
]


@pytest.mark.parametrize("flags, files", GUIDE_COMMANDS)
def test_the_guide_commands_run_unchanged(sample_dir, tmp_path, flags, files):
    result = run_cli("-i", sample_dir, "-o", tmp_path / "out", *flags, script=SCRIPT)  # the script, run in-process
    assert result.returncode == 0, result.stderr
    written = sorted(p.stem for p in (tmp_path / "out").glob("*.jsonl"))
    assert written == sorted(files)
    manifest_name = "mean_manifest.json" if "--prefix" in flags else "manifest.json"
    assert (tmp_path / "out" / manifest_name).exists()
    for name in files:
        assert "Saved " in result.stdout and f"{name}.jsonl" in result.stdout
    assert "Bucket statistics" in result.stdout and "Difficulty percentiles" in result.stdout


def test_module_and_script_are_the_same_command(sample_dir, tmp_path):
    """The two real entry points, each in its own process."""
    a = run_process("-i", sample_dir, "-o", tmp_path / "a", "-m", "variance", "-n", "4", entry=(SCRIPT,))
    b = run_process("-i", sample_dir, "-o", tmp_path / "b", "-m", "variance", "-n", "4")
    assert a.returncode == b.returncode == 0
    assert output_lines(tmp_path / "a") == output_lines(tmp_path / "b")
    assert a.stdout.replace(str(tmp_path / "a"), "OUT") == b.stdout.replace(str(tmp_path / "b"), "OUT")


def test_help_names_the_command_as_it_was_typed():
    """What the real entry points call themselves, each in its own process."""
    assert run_process("--help").stdout.startswith("usage: python -m bucketing [-h] [--version] -i INPUT_DIR")
    assert run_process("--help", entry=(SCRIPT,)).stdout.startswith("usage: bucket_rollouts_by_difficulty.py [-h]")
    wrong = run_process("-i", "x", "-m", "foo")
    assert wrong.stderr.startswith("python -m bucketing: error: argument -m/--metric: invalid choice: 'foo'")


def test_summary_names_each_bucket_with_its_range(sample_dir, tmp_path):
    result = run_cli("-i", sample_dir, "-o", tmp_path / "out", "--thresholds", "0.3", "0.7")
    lines = result.stdout.splitlines()
    assert any("bucket_2" in line and "mean_reward > 0.7" in line for line in lines)
    assert any("bucket_0" in line and "mean_reward <= 0.3" in line for line in lines)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for bucket in manifest["buckets"]:
        assert f"Saved {counted(bucket['count'], 'rollout')} to {tmp_path / 'out' / bucket['file']}" in result.stdout


def test_json_prints_the_manifest(sample_dir, tmp_path):
    result = run_cli("-i", sample_dir, "-o", tmp_path / "out", "--json", "-m", "pass_at_k", "--k", "4")
    assert result.returncode == 0
    printed = json.loads(result.stdout)  # stdout is exactly one JSON object
    assert printed == json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert printed["params"]["k"] == 4 and printed["metric"] == "pass_at_k"
    assert "Bucket statistics" in result.stderr  # the human summary moves to stderr


def test_dry_run_writes_nothing(sample_dir, tmp_path):
    result = run_cli("-i", sample_dir, "-o", tmp_path / "out", "--dry-run", "-n", "4")
    assert result.returncode == 0
    assert "Bucket statistics" in result.stdout and "nothing was written" in result.stdout
    assert not (tmp_path / "out").exists()
    assert run_cli("-i", sample_dir, "--dry-run", "--json").returncode == 0  # -o is optional then


def test_a_dry_run_shows_every_metric_s_spread(sample_dir, tmp_path):
    plugin = tmp_path / "broken.py"
    plugin.write_text(
        "import bucketing\nbucketing.register_metric('broken_metric', lambda s: 1 / 0, higher_is_easier=True)\n"
    )
    result = run_cli("-i", sample_dir, "--dry-run", "--pass-threshold", "1", "--k", "2", "--plugin", plugin)
    assert result.returncode == 0, result.stderr
    rows = {
        line.split()[0]: line.split()
        for line in result.stdout.splitlines()
        if line.startswith("  ") and len(line.split()) >= 5
    }
    assert list(rows)[-8:] == [
        "mean_reward",
        "max_reward",
        "min_reward",
        "variance",
        "pass_at_k",
        "success_rate",
        "inverse_mean",
        "broken_metric",
    ]
    assert "failed: ZeroDivisionError" in " ".join(rows["broken_metric"])  # a plugin's bug on its row, not a crash
    defined = [metric_definitions(row, Params(k=2, pass_threshold=1)) for row in sample_scores()]
    oracle = {name: [row[name] for row in defined] for name in defined[0]}
    for name, values in oracle.items():
        shown = [float(number) for number in rows[name][-4:]]  # min, median, mean, max
        expected = [min(values), statistics.median(values), statistics.fmean(values), max(values)]
        assert shown == pytest.approx(expected, rel=1e-3, abs=1e-9), name
    assert "Every metric" not in run_cli("-i", sample_dir, "-o", tmp_path / "out").stdout


def test_from_manifest_applies_the_saved_cut_points(sample_dir, tmp_path):
    first = run_cli(
        "-i",
        sample_dir,
        "-o",
        tmp_path / "first",
        "-m",
        "success_rate",
        "--pass-threshold",
        "1",
        "-n",
        "3",
        "--bucket-names",
        "a",
        "b",
        "c",
        "--json",
    )
    saved = json.loads(first.stdout)
    other = tmp_path / "next_step"
    write_lines(other / "x.jsonl", [rollout_line(s) for s in ([1, 1], [0, 0], [1, 0, 0, 0], [1.0, 1.0, 0.0])])
    second = run_cli(
        "-i", other, "-o", tmp_path / "second", "--from-manifest", tmp_path / "first" / "manifest.json", "--json"
    )
    assert second.returncode == 0, second.stderr
    applied = json.loads(second.stdout)
    assert applied["cuts"] == saved["cuts"] and applied["metric"] == "success_rate"
    assert applied["params"]["pass_threshold"] == 1
    assert [b["name"] for b in applied["buckets"]] == ["a", "b", "c"]
    cuts = saved["cuts"]
    for bucket in applied["buckets"]:
        for line in (tmp_path / "second" / bucket["file"]).read_bytes().splitlines():
            scores = [r["score"] for r in json.loads(line)["reward"]]
            value = sum(s >= 1 for s in scores) / len(scores)
            assert (bucket["lower"] is None or value > bucket["lower"]) and (
                bucket["upper"] is None or value <= bucket["upper"]
            )
    assert cuts  # the saved plan really had cut points


def test_strict_stops_at_the_first_bad_line(tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1]), b"{oops", rollout_line([0]), b"[]"])
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "--strict")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "a.jsonl:2: invalid JSON" in result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_lines_are_summarised_with_examples(tmp_path):
    lines = [rollout_line([1])] + [b'{"reward": []}'] * 7 + [b"{bad"]
    write_lines(tmp_path / "in" / "a.jsonl", lines)
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out")
    assert result.returncode == 0
    assert "empty scores: 7" in result.stdout and "invalid JSON: 1" in result.stdout
    assert result.stdout.count(": empty scores (") == 5  # up to five examples per reason
    assert "a.jsonl:2: empty scores" in result.stdout and "a.jsonl:9: invalid JSON" in result.stdout
    skipped = (tmp_path / "out" / "_skipped.jsonl").read_bytes()
    assert skipped == b"\n".join(lines[1:]) + b"\n"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["-m", "hardness"], "invalid choice"),
        (["-n", "3", "--bucket-names", "a", "b"], "2 bucket names given for 3 buckets"),
        (["--thresholds", "0.5", "--bucket-names", "a", "b", "c"], "3 bucket names given for 2 buckets"),
        (["-n", "0"], "at least 1"),
        (["--thresholds", "0.3", "--ties", "split"], "--ties split"),
        (["--bucket-names", "a", "b", "_c"], "'_c' is not allowed"),
        (["--bucket-names", "easy", "EASY", "x"], "same file name ignoring case"),
        (["--prefix", "../up"], "prefix '../up' is not allowed"),
        (["--k", "0", "-m", "pass_at_k"], "--k must be"),
        (["--scores", "reward[.score"], "is not a score path"),
        (["--from-manifest", "/nonexistent.json"], "can't read manifest"),
        (["--order", "random"], "invalid choice"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(sample_dir, tmp_path, flags, message):
    result = run_cli("-i", sample_dir, "-o", tmp_path / "out", *flags)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dry-run", "-n", "0"], "-n/--num-buckets must be at least 1, not 0"),
        (["--dry-run", "--k", "0"], "--k must be a whole number >= 1, not 0"),
        (["--dry-run", "--pass-threshold", "nan"], "--pass-threshold must be a finite number"),
        (["--dry-run", "--bucket-names", "a", "b"], "2 bucket names given for 3 buckets"),
        (["--dry-run", "--bucket-names", "a", "A", "b"], "are the same file name ignoring case"),
        (["--dry-run", "--thresholds", "0.5", "0.5"], "--thresholds must be distinct"),
        (["--dry-run", "--thresholds", "0.5", "--bucket-names", "a"], "1 bucket names given for 2 buckets"),
        (["--dry-run", "--preset", "learnability", "--bucket-names", "a", "b"], "2 names given for 3 buckets"),
        (["-o", "{input}/out"], "is inside the input directory"),
        (["-o", "{earlier}"], "manifest.json already exists; pass --overwrite to replace it"),
    ],
)
def test_plan_and_output_mistakes_are_reported_before_reading(
    sample_dir, tmp_path, monkeypatch, capsys, flags, message
):
    """A mistyped flag on a 100 GB input must not cost the read of it."""
    if "{earlier}" in flags:
        assert run_cli("-i", sample_dir, "-o", tmp_path / "earlier").returncode == 0
    cli = importlib.import_module("bucketing.cli")
    monkeypatch.setattr(cli, "load", lambda *a, **k: pytest.fail("the input was read"))
    flags = [flag.format(input=sample_dir, earlier=tmp_path / "earlier") for flag in flags]
    assert cli.main(["-i", str(sample_dir), *flags]) == 2
    out, err = capsys.readouterr()
    assert message in err and one_line(err) and out == ""


def test_missing_output_dir_and_missing_input_are_errors(tmp_path):
    (tmp_path / "in").mkdir()
    assert run_cli("-i", tmp_path / "in").returncode == 2
    empty = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out")
    assert empty.returncode == 2 and "no *.jsonl" in empty.stderr
    missing = run_cli("-i", tmp_path / "nope", "-o", tmp_path / "out")
    assert missing.returncode == 2 and "nope" in missing.stderr and "Traceback" not in missing.stderr


def test_from_manifest_refuses_plan_flags(sample_dir, tmp_path):
    run_cli("-i", sample_dir, "-o", tmp_path / "a")
    result = run_cli(
        "-i", sample_dir, "-o", tmp_path / "b", "--from-manifest", tmp_path / "a" / "manifest.json", "-n", "5"
    )
    assert result.returncode == 2 and "drop -n" in result.stderr


def test_existing_output_is_refused_then_overwritten(sample_dir, tmp_path):
    assert run_cli("-i", sample_dir, "-o", tmp_path / "out").returncode == 0
    before = (tmp_path / "out" / "easy.jsonl").read_bytes()
    again = run_cli("-i", sample_dir, "-o", tmp_path / "out", "-m", "variance")
    assert again.returncode == 2 and "manifest.json already exists" in again.stderr and "--overwrite" in again.stderr
    assert (tmp_path / "out" / "easy.jsonl").read_bytes() == before
    assert run_cli("-i", sample_dir, "-o", tmp_path / "out", "-m", "variance", "--overwrite").returncode == 0
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["metric"] == "variance"


def test_output_inside_input_is_refused(tmp_path, sample_dir):
    shutil.copytree(sample_dir, tmp_path / "in")
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "in" / "out")
    assert result.returncode == 2 and "inside the input" in result.stderr
    assert not (tmp_path / "in" / "out").exists()


@pytest.mark.parametrize(
    "layout, flags, scores, group_by, rollouts",
    [
        ("rewards_list_layout.jsonl", [], "rewards[]", [], 2),
        ("seed_layout.jsonl", [], "reward[].score", [], 3),
        ("skyrl_dump.jsonl", [], "score", ["input_prompt"], 1),
        ("verl_rollout_dump_12.jsonl", [], "score", ["input"], 2),
        ("rewards_list_layout.jsonl", ["--scores", "rewards[]"], "rewards[]", [], 2),
        ("verl_rollout_dump_12.jsonl", ["--scores", "score"], "score", [], 8),  # named scores: one line, one rollout
        ("verl_rollout_dump_12.jsonl", ["--group-by", "step,input"], "score", ["step", "input"], 2),
        ("nemo_gym_rollouts.jsonl", [], "reward", ["_ng_task_index"], 3),
        ("verifiers_results_run0.jsonl", [], "reward", ["@file", "example_id"], 3),
        ("slash_keys_layout.jsonl", ["--scores", '["rewards/accuracy"][]'], '["rewards/accuracy"][]', [], 3),
        (
            "verifiers_results_run0.jsonl",
            ["--scores", "correct_answer_reward_func", "format_reward_func", "--group-by", "@file,example_id"],
            "correct_answer_reward_func + format_reward_func",
            ["@file", "example_id"],
            3,
        ),
    ],
)
def test_layouts_are_detected_or_given(tmp_path, layout, flags, scores, group_by, rollouts):
    (tmp_path / "in").mkdir()
    shutil.copy(FORMATS / layout, tmp_path / "in")
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "2", "--json", *flags)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["params"]["scores"] == scores and manifest["params"]["group_by"] == group_by
    assert manifest["params"]["scores_detected"] == ("--scores" not in flags)
    assert manifest["totals"]["skipped"] == 0 and manifest["totals"]["rollouts"] == rollouts
    lines = (FORMATS / layout).read_bytes().count(b"\n")
    assert manifest["totals"]["rollout_lines"] == sum(b["lines"] for b in manifest["buckets"]) == lines
    if not flags:  # what was detected, and the flags that say it
        equivalent = shlex.join(["--scores", scores] + (["--group-by", ",".join(group_by)] if group_by else []))
        assert "Detected layout: " in result.stderr and f"(as flags: {equivalent})" in result.stderr
    assert sorted(sum(output_lines(tmp_path / "out").values(), [])) == sorted(
        (FORMATS / layout).read_bytes().splitlines(keepends=True)
    )


def test_undetectable_layout_is_refused_with_the_fields_seen(tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [b'{"question": "q", "grade": "A"}'] * 3)
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "can't tell where the scores are" in result.stderr and "grade, question" in result.stderr


def test_a_plugin_metric_is_a_metric_choice(sample_dir, tmp_path):
    plugin = tmp_path / "my_metrics.py"
    plugin.write_text(
        "import bucketing\n"
        "bucketing.register_metric('spread', lambda s: float(s.max() - s.min()), higher_is_easier=False)\n"
    )
    assert "spread" in run_cli("--plugin", plugin, "--help").stdout
    result = run_cli("-i", sample_dir, "-o", tmp_path / "out", "--plugin", plugin, "-m", "spread", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["direction"] == "higher = harder"


def test_a_plugin_that_fails_to_load_is_a_one_line_error(sample_dir, tmp_path):
    plugin = tmp_path / "wrong.py"
    plugin.write_text("import bucketing\nbucketing.register_metric('x', lambda s: 0.0)\n")  # no higher_is_easier
    result = run_cli("-i", sample_dir, "--dry-run", "--plugin", plugin)
    assert result.returncode == 2 and one_line(result.stderr)
    assert "--plugin" in result.stderr and "TypeError" in result.stderr


def test_k_larger_than_some_n_is_reported(tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1, 0]), rollout_line([1, 0, 0, 0, 0, 0])])
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-m", "pass_at_k", "--k", "4", "-n", "2")
    assert "1 rollout has fewer than k=4 responses" in result.stdout
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1, 0]), rollout_line([1]), rollout_line([1, 0, 0, 0, 0])])
    result = run_cli("-i", tmp_path / "in", "--dry-run", "-m", "pass_at_k", "--k", "4", "-n", "2")
    assert "2 rollouts have fewer than k=4 responses" in result.stdout


def test_counts_of_one_read_as_one(tmp_path):
    write_lines(
        tmp_path / "in" / "a.jsonl",
        [b'{"input": "p", "output": "a", "score": 1}', b'{"input": "p", "output": "b", "score": 0}', b"{bad"],
    )
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1")
    assert result.returncode == 0, result.stderr
    for text in (
        "Found 1 JSONL file in",
        "Loaded 1 rollout (grouped from 2 lines) from 3 lines",
        "Saved 1 rollout (2 lines) to",
        "Saved 1 skipped line to",
        " 1 rollout   100.0%",
    ):
        assert text in result.stdout, text


def test_progress_bar_draws_only_on_a_terminal_after_the_delay():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    bar = ProgressBar("Reading", stream=screen, delay=0)
    bar(50, 100)
    bar.close()
    assert "Reading [" in screen.getvalue() and "50%" in screen.getvalue() and screen.getvalue().endswith("\n")
    pipe = io.StringIO()
    quiet = ProgressBar("Reading", stream=pipe, delay=0)
    quiet(50, 100)
    quiet.close()
    assert pipe.getvalue() == ""


def test_the_command_line_never_imports_pandas(sample_dir, tmp_path):
    """A quarter of a second of every run: the engine works on numpy columns; DataFrames are for the app."""
    imported = modules_imported_by_cli(
        "-i", sample_dir, "-o", tmp_path / "out", "--cumulative", "--val-fraction", "0.2", "--json"
    )
    assert "numpy" in imported and "pandas" not in imported


# --- the banner: only for a run that can start ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_input, extra, message",
    [
        (lambda root: root.mkdir(), [], "no *.jsonl"),  # a folder without input files
        (lambda root: write_lines(root / "a.jsonl", [rollout_line([1])]), ["--scores", "reward[]."], "--scores"),
    ],
    ids=["no-files", "bad-score-path"],
)
def test_a_run_that_cannot_start_prints_only_its_one_line_error(tmp_path, make_input, extra, message):
    make_input(tmp_path / "in")
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", *extra)
    assert result.returncode == 2 and "Bucketing by" not in result.stdout + result.stderr
    assert one_line(result.stderr) and message in result.stderr, result.stderr


def test_a_run_prints_its_banner_once_before_what_it_found(tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1]), rollout_line([0])])
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "2")
    assert result.returncode == 0 and result.stdout.count("Bucketing by mean_reward") == 1
    assert result.stdout.index("Bucketing by") < result.stdout.index("Found 1 JSONL file")
