"""Difficulty over training steps (bucketing.steps, `bucketing trends`, `bucketing changes`): per-step numbers
against a plain bucketing of each step's lines alone, transitions against an oracle written from the raw lines."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import bucketing
from bucketing import BucketingError
from bucketing.metrics import Params
from bucketing.steps import CLASSES, changes, compare_runs, load_steps, step_in_name, trends
from examples.make_rollouts import make_run, run_chances

from .conftest import one_line, run_cli, write_lines


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    make_run(folder / "verl", prompts=120, steps=7, layout="verl", seed=3)
    make_run(folder / "trl", prompts=80, steps=5, layout="trl", seed=4)
    make_run(folder / "nemo", prompts=60, steps=4, layout="nemo", seed=5)
    return folder


def step_files(run: Path) -> dict[int, Path]:
    return {step_in_name(str(p.relative_to(run))): p for p in run.rglob("*") if p.is_file()}


def learnability_class(rate: float) -> str:
    return "unsolved" if rate <= 0 else "solved" if rate >= 1 else "learnable"


@pytest.mark.parametrize(
    "layout, step_field", [("verl", None), ("verl", "step"), ("trl", None), ("trl", "step"), ("nemo", None)]
)
@pytest.mark.parametrize("metric", ["mean_reward", "success_rate", "variance"])
def test_each_step_s_numbers_are_those_of_its_lines_bucketed_alone(runs, layout, step_field, metric):
    run = runs / layout
    data = load_steps(run, step_field=step_field)
    rows = {row["step"]: row for row in trends(data, metric)}
    files = step_files(run)
    assert sorted(rows) == sorted(files)
    for step, path in files.items():
        alone = bucketing.load(path, scores=data.dataset.layout.scores, group_by=data.prompt_fields).table()
        values = alone[metric].to_numpy()
        row = rows[step]
        assert row["prompts"] == len(alone)
        assert list(row["quantiles"].values()) == pytest.approx(np.quantile(values, [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]))
        classes = [learnability_class(rate) for rate in alone["success_rate"]]
        assert row["shares"] == pytest.approx({name: classes.count(name) / len(classes) for name in CLASSES})


def verl_oracle(run: Path, steps: range) -> dict[str, str]:
    """Each prompt's class over these steps, from the raw lines (one line per response)."""
    passed, seen = defaultdict(int), defaultdict(int)
    for step in steps:
        for line in (run / f"{step}.jsonl").read_text().splitlines():
            record = json.loads(line)
            seen[record["input"]] += 1
            passed[record["input"]] += record["score"] >= 0.5
    return {prompt: learnability_class(passed[prompt] / seen[prompt]) for prompt in seen}


def test_prompts_that_changed_class_are_counted_as_the_raw_lines_say(runs):
    run = runs / "verl"
    found = changes(load_steps(run), (1, 3), (5, 7))
    before, after = verl_oracle(run, range(1, 4)), verl_oracle(run, range(5, 8))
    expected = np.zeros((3, 3), dtype=int)
    for prompt in before.keys() & after.keys():
        expected[CLASSES.index(before[prompt]), CLASSES.index(after[prompt])] += 1
    assert (found.matrix == expected).all()
    assert found.named()["learned"] == expected[0, 2] + expected[1, 2] > 0
    assert found.named()["forgotten"] == expected[2, 0] + expected[2, 1]
    assert int((found.prompt_from >= 0).sum()) == len(before) and int((found.prompt_to >= 0).sum()) == len(after)


def test_a_window_pools_a_prompt_s_rollouts_over_its_steps(runs):
    run = runs / "verl"
    data = load_steps(run)
    rows = trends(data, "success_rate", Params(), window=4)
    assert [row["steps"] for row in rows] == [[0, 3], [4, 7]]
    classes = verl_oracle(run, range(4, 8))
    assert rows[1]["prompts"] == len(classes)
    named = list(classes.values())
    assert list(rows[1]["shares"].values()) == pytest.approx([named.count(name) / len(named) for name in CLASSES])


@pytest.mark.parametrize(
    "path, step",
    [
        ("12.jsonl", 12),
        ("rollouts/7.jsonl.gz", 7),
        ("train_data_step40.jsonl", 40),
        ("logs/exp_003/val_data_step5.jsonl", 5),
        ("completions/completions_00012.parquet", 12),
        ("dumped_evals/global_step_30_evals/gsm8k.jsonl", 30),
        ("step_9/rollouts.jsonl", 9),
        ("rollouts_0.jsonl", None),
        ("exp_003/data.jsonl", None),
    ],
)
def test_the_step_in_a_trainer_s_file_name(path, step):
    assert step_in_name(path) == step


def verl_line(step, prompt="q", score=1.0, **extra) -> bytes:
    return json.dumps({"input": prompt, "output": "a", "score": score, "step": step, **extra}).encode()


@pytest.mark.parametrize(
    "lines, name, message",
    [
        ([verl_line(2), verl_line("two")], "2.jsonl", 'the step field step is "two", not an integer'),
        ([verl_line(2), verl_line(2.5)], "2.jsonl", "is 2.5, not an integer"),
        ([verl_line(3)], "2.jsonl", "the step field step says 3 but the file's name says 2"),
    ],
)
def test_a_step_field_missing_not_an_integer_or_against_the_name_is_a_one_line_error(tmp_path, lines, name, message):
    write_lines(tmp_path / "run" / name, lines)
    with pytest.raises(BucketingError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_steps(tmp_path / "run", step_field="step")
    result = run_cli("trends", "-i", tmp_path / "run", "--step-field", "step")
    assert result.returncode == 2 and one_line(result.stderr) and message in result.stderr


def test_a_line_without_its_step_is_skipped_with_the_reason(tmp_path):
    write_lines(tmp_path / "run" / "2.jsonl", [verl_line(2), verl_line(None), verl_line(2, score=0.0)])
    data = load_steps(tmp_path / "run", step_field="step")
    assert data.step.tolist() == [2] and data.dataset.scores.counts.tolist() == [2]
    assert data.dataset.skipped_lines[0][1] == 2 and "group" in data.dataset.skipped_lines[0][5]


def test_files_without_a_step_in_their_names_need_the_step_field(tmp_path):
    write_lines(tmp_path / "run" / "a.jsonl", [verl_line(1)])
    result = run_cli("trends", "-i", tmp_path / "run")
    assert result.returncode == 2 and one_line(result.stderr)
    assert "a.jsonl: no step in the file's name" in result.stderr and "--step-field" in result.stderr
    assert run_cli("trends", "-i", tmp_path / "run", "--step-field", "step").returncode == 0


def test_trends_on_the_command_line_print_what_the_library_computes(runs):
    run = runs / "trl"
    result = run_cli("trends", "-i", run, "-m", "success_rate", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["rows"] == trends(load_steps(run), "success_rate")
    assert printed["steps_from"] == "file names" and printed["prompt_fields"] == ["prompt"]
    prompts_per_step = [len(set(pq.read_table(path).column("prompt").to_pylist())) for path in run.rglob("*.parquet")]
    assert printed["rollouts"] == sum(row["rollouts"] for row in printed["rows"]) == sum(prompts_per_step)
    table = run_cli("trends", "-i", run)
    assert table.returncode == 0 and "unsolved  learnable  solved" in table.stdout
    assert len(table.stdout.strip().splitlines()) == 3 + len(printed["rows"])  # title, blank, header


def test_changes_on_the_command_line(runs):
    run = runs / "verl"
    result = run_cli("changes", "-i", run, "--from", "1-3", "--to", "5-7", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    found = changes(load_steps(run), (1, 3), (5, 7))
    assert printed["counts"] == found.named()
    assert [[printed["matrix"][a][b] for b in CLASSES] for a in CLASSES] == found.matrix.tolist()
    table = run_cli("changes", "-i", run, "--from", "1-3", "--to", "5-7")
    assert f"learned: {found.named()['learned']}" in table.stdout
    for bad, message in [(["--from", "3-1"], "ends before it starts"), (["--from", "1-5"], "overlap")]:
        refused = run_cli("changes", "-i", run, "--to", "5-7", *bad)
        assert refused.returncode == 2 and one_line(refused.stderr) and message in refused.stderr


@pytest.mark.parametrize("layout", ["verl", "trl"])
def test_a_changes_export_puts_every_line_in_the_file_of_its_prompt_s_cell(runs, tmp_path, layout):
    run = runs / layout
    result = run_cli("changes", "-i", run, "--from", "1-2", "--to", "4-5", "-o", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest == json.loads(result.stdout)
    data = load_steps(run)
    found = changes(data, (1, 2), (4, 5))
    groups, ids = found.groups(data)
    assert manifest["changes"]["counts"] == found.named()
    written = {entry["file"]: entry for entry in manifest["files"]}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([*written, "manifest.json"])
    lines = data.dataset.line_columns
    for index, group in enumerate(groups):
        chosen = np.flatnonzero(ids[lines["rollout"]] == index)  # this group's lines, in input order
        name = f"{group}.{'parquet' if layout == 'trl' else 'jsonl'}"
        if not len(chosen):
            assert name not in written
            continue
        assert written[name]["lines"] == len(chosen)
        assert written[name]["rollouts"] == int((ids == index).sum())
        if layout == "verl":  # byte-exact: the group's lines cut from the inputs, in input order
            expected = b"".join(
                (run / str(data.dataset.files[f].rel)).read_bytes()[o : o + n + 1]
                for f, o, n in zip(lines["file_id"][chosen], lines["offset"][chosen], lines["length"][chosen])
            )
            assert (tmp_path / "out" / name).read_bytes() == expected
        else:  # value-exact rows, the input's schema
            table = pq.read_table(tmp_path / "out" / name)
            source = {int(step_in_name(str(f.rel))): pq.read_table(run / str(f.rel)) for f in data.dataset.files}
            assert table.schema.equals(next(iter(source.values())).schema, check_metadata=False)
            expected_rows = [
                source[int(data.step[r])].slice(int(o), 1).to_pylist()[0]
                for r, o in zip(lines["rollout"][chosen], lines["offset"][chosen])
            ]
            assert table.to_pylist() == expected_rows
    total = sum(entry["lines"] for entry in manifest["files"])
    assert total == len(lines["offset"])  # every line in exactly one file (no bad line here)


def test_a_changes_export_keeps_an_earlier_one_unless_overwrite(runs, tmp_path):
    args = ["changes", "-i", runs / "verl", "--from", "1-2", "--to", "4-5", "-o", tmp_path / "out"]
    assert run_cli(*args).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    again = run_cli(*args[:-4], "--from", "1", "--to", "7", "-o", tmp_path / "out")
    assert again.returncode == 2 and one_line(again.stderr) and "--overwrite" in again.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    replaced = run_cli(*args[:-4], "--from", "1", "--to", "7", "-o", tmp_path / "out", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["changes"]["from"] == [1, 1] and manifest["changes"]["to"] == [7, 7]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [entry["file"] for entry in manifest["files"]] + ["manifest.json"]
    )  # the earlier export's files it doesn't write again are gone


def test_two_runs_compared_find_every_prompt_planted_with_a_wrong_answer(tmp_path):
    make_run(tmp_path / "weaker", prompts=160, steps=4, seed=2)
    weaker = load_steps(tmp_path / "weaker")
    planted = np.flatnonzero(run_chances(160, 4).min(axis=1) > 0.95)[:5].tolist()  # solved at every step
    texts = {f"Question {p}: what is {p} * {p + 3}?" for p in planted}
    assert len(texts) == 5
    make_run(tmp_path / "stronger", prompts=160, steps=4, seed=5, inverted=planted)
    result = run_cli("changes", "-i", tmp_path / "stronger", "-i", tmp_path / "weaker", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    flagged = {line_input(tmp_path / "stronger", row["where"]) for row in printed["inverted"]}
    assert texts <= flagged and len(flagged - texts) <= 3, (texts, flagged)
    both = compare_runs(load_steps(tmp_path / "stronger"), weaker)
    assert printed["prompts_in_both"] == both.shared == int(both.matrix.sum())
    for row in printed["inverted"]:
        ours, theirs = row["reference"], row["other"]
        assert ours["passed"] / ours["responses"] < theirs["passed"] / theirs["responses"]
    table = run_cli("changes", "-i", tmp_path / "stronger", "-i", tmp_path / "weaker")
    assert f"{len(printed['inverted'])} prompts the first run solves clearly less often" in table.stdout


def line_input(run: Path, where: str) -> str:
    name, number = where.rsplit(":", 1)
    return json.loads((run / name).read_text().splitlines()[int(number) - 1])["input"]


def test_two_runs_compared_write_the_first_run_s_lines_by_cell_and_the_inverted_apart(tmp_path):
    make_run(tmp_path / "weaker", prompts=100, steps=3, seed=2)
    planted = np.flatnonzero(run_chances(100, 3).min(axis=1) > 0.95)[:3].tolist()
    make_run(tmp_path / "stronger", prompts=100, steps=3, seed=5, inverted=planted)
    out = tmp_path / "out"
    result = run_cli("changes", "-i", tmp_path / "stronger", "-i", tmp_path / "weaker", "-o", out, "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == json.loads(result.stdout)
    flagged = {row["where"] for row in manifest["runs_compared"]["inverted"]}
    inverted = [json.loads(line)["input"] for line in (out / "inverted.jsonl").read_text().splitlines()]
    expected = {line_input(tmp_path / "stronger", where) for where in flagged}
    assert set(inverted) == expected and {f"Question {p}: what is {p} * {p + 3}?" for p in planted} <= expected
    written = sorted(line for e in manifest["files"] for line in (out / e["file"]).read_bytes().splitlines(True))
    first_run = sorted(line for f in (tmp_path / "stronger").iterdir() for line in f.read_bytes().splitlines(True))
    assert written == first_run  # every line of the first run in exactly one file, byte for byte
    one = run_cli("changes", "-i", tmp_path / "weaker", "--from", "1")
    assert one.returncode == 2 and one_line(one.stderr) and "--from and --to are both needed" in one.stderr


def test_a_nemo_rl_run_is_followed_by_its_first_message(runs):
    """NeMo-RL numbers a dump's lines (idx); its prompts are known by content[0], across steps."""
    data = load_steps(runs / "nemo")
    assert data.dataset.layout.name == "NeMo-RL dump" and data.prompt_fields == ("content[0]",)
    seen = {
        json.loads(line)["content"][0] for path in (runs / "nemo").iterdir() for line in path.read_text().splitlines()
    }
    assert data.prompts == len(seen)
