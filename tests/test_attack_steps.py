"""Attacks on difficulty over training steps (bucketing.steps, `bucketing trends`, `bucketing changes`, the Trends
page): each test fails on the code it was written against, for the reason its name gives."""

from __future__ import annotations

import json

import pytest

import bucketing
from bucketing.steps import load_steps, step_in_name, trends

from .app_support import load_folder
from .conftest import one_line, run_cli, write_lines


def verl(prompt="q", score=1.0, **extra) -> bytes:
    return json.dumps({"input": prompt, "output": "a", "score": score, **extra}).encode()


# --- the step in a file's name: the last number a pattern finds, not the last place its digits occur ---


@pytest.mark.parametrize(
    "path, step",
    [
        ("global_step_100/rollouts/1100.jsonl", 1100),  # "100" also occurs inside "1100", further right
        ("step_5/15.jsonl", 15),
        ("step_7/train_data_step17.jsonl", 17),
        ("step_2/completions_00012.parquet", 12),
    ],
)
def test_the_step_in_a_name_is_the_last_one_a_pattern_finds(path, step):
    assert step_in_name(path) == step


def test_a_step_folder_whose_digits_recur_in_the_file_s_step_does_not_move_its_rollouts(tmp_path):
    run = tmp_path / "run"
    write_lines(run / "step_5" / "15.jsonl", [verl(score=1.0, step=15)])
    write_lines(run / "step_5" / "16.jsonl", [verl(score=0.0, step=16)])
    by_name = [row["step"] for row in trends(load_steps(run), "success_rate")]
    assert by_name == [15, 16]
    # and the field agrees with the file's name: no error saying it doesn't
    result = run_cli("trends", "-i", run, "--step-field", "step")
    assert result.returncode == 0, result.stderr


# --- the per-step numbers are those of a plain bucketing: a boolean score is a skipped line there ---


def test_a_boolean_score_counts_in_no_step_as_it_counts_in_no_plain_bucketing(tmp_path):
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [verl(score=0.0), verl(score=True), verl(score=1.0)])
    write_lines(run / "2.jsonl", [verl(score=0.0)])
    alone = bucketing.load(run / "1.jsonl").table()
    assert alone["mean_reward"].tolist() == [0.5]  # the boolean line is skipped (score not a number)
    data = load_steps(run)
    assert len(data.dataset.skipped_lines) == 1
    rows = {row["step"]: row for row in trends(data, "mean_reward")}
    assert rows[1]["mean"] == pytest.approx(0.5)


def test_a_boolean_score_line_of_a_changes_export_is_in_skipped(tmp_path):
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [verl(score=0.0), verl(score=True)])
    write_lines(run / "2.jsonl", [verl(score=0.0)])
    result = run_cli("changes", "-i", run, "--from", "1", "--to", "2", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "_skipped.jsonl").read_bytes() == verl(score=True) + b"\n"


# --- huge steps: a one-line error or the right rows, never a traceback ---


def test_a_file_name_with_a_step_beyond_64_bits_is_a_one_line_error(tmp_path):
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [verl()])
    write_lines(run / "99999999999999999999999.jsonl", [verl()])
    result = run_cli("trends", "-i", run)
    assert result.returncode == 2 and one_line(result.stderr), result.stderr
    assert "99999999999999999999999.jsonl" in result.stderr


def test_a_file_name_step_as_large_as_a_field_may_not_hold_is_refused_too(tmp_path):
    run = tmp_path / "run"  # 2**62 in a name: the field refuses steps beyond 2**53; the name ran into an overflow
    write_lines(run / "1.jsonl", [verl(f"q{i}", 0.0) for i in range(3)])
    write_lines(run / f"{2**62}.jsonl", [verl(f"q{i}", 1.0) for i in range(3)])
    result = run_cli("trends", "-i", run)
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == 0:
        assert "4611686018427387904" in result.stdout
    else:
        assert result.returncode == 2 and one_line(result.stderr)


def test_the_largest_step_a_field_may_hold_gives_the_right_rows_with_many_prompts(tmp_path):
    big = 2**53  # accepted (MAX_STEP); step * prompts overflowed int64 in units()
    write_lines(
        tmp_path / "run" / "a.jsonl",
        [verl(f"q{i}", 1.0, step=big) for i in range(1100)] + [verl(f"q{i}", 0.0, step=1) for i in range(1100)],
    )
    data = load_steps(tmp_path / "run", step_field="step")
    rows = trends(data, "success_rate")
    assert [(row["step"], row["prompts"], row["mean"]) for row in rows] == [(1, 1100, 0.0), (big, 1100, 1.0)]


def test_a_huge_step_window_is_a_one_line_error_or_one_row(tmp_path):
    write_lines(tmp_path / "run" / "1.jsonl", [verl()])
    write_lines(tmp_path / "run" / "2.jsonl", [verl(score=0.0)])
    result = run_cli("trends", "-i", tmp_path / "run", "--step-window", "99999999999999999999")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0 or (result.returncode == 2 and one_line(result.stderr))


def test_the_trends_page_says_a_huge_step_plainly(app, tmp_path):
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [verl()])
    write_lines(run / "99999999999999999999999.jsonl", [verl()])
    load_folder(app, run)
    app.switch_page("pages/trends.py").run()
    assert not app.exception, [e.stack_trace[-1:] for e in app.exception]


# --- bad lines: trends and changes say how many they left out ---


def test_trends_say_that_lines_were_skipped(tmp_path):
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [verl(), b"not json", verl(score="x")])
    write_lines(run / "2.jsonl", [verl(score=0.0)])
    result = run_cli("trends", "-i", run)
    assert result.returncode == 0, result.stderr
    assert "skipped" in (result.stdout + result.stderr).lower()
    printed = json.loads(run_cli("trends", "-i", run, "--json").stdout)
    assert any("skip" in key for key in printed), printed.keys()  # a count scripts can check


def test_changes_say_that_lines_were_skipped(tmp_path):
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [verl(), b"not json"])
    write_lines(run / "2.jsonl", [verl(score=0.0)])
    result = run_cli("changes", "-i", run, "--from", "1", "--to", "2")
    assert result.returncode == 0, result.stderr
    assert "skipped" in (result.stdout + result.stderr).lower()


# --- two runs: the export may not land in either run ---


def test_two_runs_compared_refuse_an_output_inside_the_second_run(tmp_path):
    for name in ("first", "second"):
        write_lines(tmp_path / name / "1.jsonl", [verl()])
        write_lines(tmp_path / name / "2.jsonl", [verl(score=0.0)])
    out = tmp_path / "second" / "out"
    result = run_cli("changes", "-i", tmp_path / "first", "-i", tmp_path / "second", "-o", out)
    assert result.returncode == 2 and one_line(result.stderr), result.stdout
    assert "inside the input" in result.stderr
    assert not out.exists()


# --- the README's rules, whatever the layout ---


def test_a_null_step_field_of_one_line_per_prompt_is_skipped_as_the_readme_says(tmp_path):
    run = tmp_path / "run" / "a.jsonl"
    write_lines(
        run,
        [
            json.dumps({"prompt": "q", "scores": [1, 0], "step": 1}).encode(),
            json.dumps({"prompt": "r", "scores": [1, 0], "step": None}).encode(),
            json.dumps({"prompt": "q", "scores": [1, 1], "step": 2}).encode(),
        ],
    )
    data = load_steps(run.parent, step_field="step")  # README: "missing or null is skipped"
    assert data.step.tolist() == [1, 2] and len(data.dataset.skipped_lines) == 1


def test_a_prompt_at_one_step_is_one_rollout_whether_the_step_is_in_the_name_or_the_field(tmp_path):
    run = tmp_path / "run"  # two dumps of step 3 (two workers, or a .jsonl beside its .jsonl.gz)
    write_lines(run / "a" / "3.jsonl", [verl(score=1.0, step=3)])
    write_lines(run / "b" / "3.jsonl", [verl(score=0.0, step=3)])
    by_name = trends(load_steps(run), "success_rate")
    by_field = trends(load_steps(run, step_field="step"), "success_rate")
    assert by_field[0]["rollouts"] == 1
    assert by_name == by_field


def test_review_findings_are_one_line_errors(tmp_path):
    """A step field no line has (one line per prompt), a step of 5000 digits, a range with no step in it."""
    one = write_lines(tmp_path / "one" / "a.jsonl", [json.dumps({"prompt": "q", "scores": [1]}).encode()])
    result = run_cli("trends", "-i", one.parent, "--step-field", "stepp")
    assert result.returncode == 2 and one_line(result.stderr) and "no line has the step field" in result.stderr
    long = write_lines(
        tmp_path / "long" / "1.jsonl",
        [verl(step=1), b'{"input": "q", "output": "a", "score": 1, "step": ' + b"9" * 5000 + b"}"],
    )
    result = run_cli("trends", "-i", long.parent, "--step-field", "step")
    assert result.returncode == 2 and one_line(result.stderr) and "beyond" in result.stderr
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [verl(step=1)])
    write_lines(run / "2.jsonl", [verl(step=2)])
    result = run_cli("changes", "-i", run, "--from", "1", "--to", "100-200")
    assert result.returncode == 2 and one_line(result.stderr) and "no rollout at these steps" in result.stderr


def test_two_runs_with_prompts_named_by_different_fields_are_refused(tmp_path):
    write_lines(tmp_path / "a" / "1.jsonl", [verl(step=1)])
    write_lines(
        tmp_path / "b" / "1.jsonl",
        [json.dumps({"input_prompt": "q", "output_response": "a", "score": 1.0}).encode()],
    )
    result = run_cli("changes", "-i", tmp_path / "a", "-i", tmp_path / "b")
    assert result.returncode == 2 and one_line(result.stderr) and "different fields" in result.stderr


def test_an_output_holding_the_second_run_never_loses_its_files(tmp_path):
    first, out = tmp_path / "first", tmp_path / "out"
    write_lines(first / "1.jsonl", [verl(step=1)])
    write_lines(out / "train" / "1.jsonl", [verl(step=1)])  # the second run, inside the output folder
    (out / "manifest.json").write_text(json.dumps({"files": [{"file": "train/1.jsonl"}]}))  # planted
    result = run_cli("changes", "-i", first, "-i", out / "train", "-o", out, "--overwrite")
    assert (out / "train" / "1.jsonl").exists(), result.stderr
