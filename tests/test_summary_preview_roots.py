"""Engine helpers the app relies on: binned summaries, previews, allowed roots, the equivalent command."""

from __future__ import annotations

import gzip
import os
import shlex

import numpy as np
import pandas as pd
import pytest

import bucketing
from bucketing.command_line import command_line
from bucketing.preview import preview, read_line, sample_rows
from bucketing.roots import ENV, allowed_roots, resolve_allowed
from bucketing.summary import MAX_DISTINCT_BARS, compare, describe, histogram

from .conftest import output_lines, rollout_line, run_cli


def test_histogram_counts_every_value_once():
    few = np.sort(np.array([0, 0, 0.5, 1, 1, 1.0]))
    bars = histogram(few)
    assert bars.exact and bars.left.tolist() == [0, 0.5, 1] and bars.counts.tolist() == [2, 1, 3]
    many = np.sort(np.random.default_rng(0).random(1000))
    binned = histogram(many, bins=25)
    assert not binned.exact and len(binned.counts) == 25 and binned.counts.sum() == 1000
    assert len(np.unique(many)) > MAX_DISTINCT_BARS


def test_describe():
    d = describe(np.sort(np.array([3.0, 1, 2, 2])))
    assert (d.count, d.min, d.median, d.max, d.distinct) == (4, 1, 2, 3, 3)


def test_preview_reads_prompt_responses_and_scores(sample_dir):
    data = bucketing.load(sample_dir)
    shown = preview(data, [0, 5])
    first = shown[0]
    assert first.where.endswith(":1") and first.prompt and len(first.responses) == len(first.scores)
    assert read_line(data, 5).decode() == shown[1].raw


def test_preview_reads_compressed_lines(tmp_path):
    body = b"\n".join(rollout_line([i / 10], prompt=f"q{i}") for i in range(50)) + b"\n"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl.gz").write_bytes(gzip.compress(body))
    data = bucketing.load(tmp_path / "in")
    assert read_line(data, 37) == body.splitlines()[37]
    assert preview(data, [37])[0].prompt == "q37"


def test_sample_rows_stay_in_their_bucket():
    ids = np.array([0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0])
    rows = sample_rows(ids, 1, count=3)
    assert len(rows) == 3 and set(ids[rows]) == {1}
    assert sample_rows(ids, 0, count=5).tolist() == [0, 3, 10]


def test_only_paths_under_allowed_roots_resolve(tmp_path, monkeypatch):
    inside, outside = tmp_path / "root", tmp_path / "elsewhere"
    (inside / "data").mkdir(parents=True)
    outside.mkdir()
    (inside / "escape").symlink_to(outside)
    roots = [inside.resolve()]
    assert resolve_allowed("data", roots, base=inside) == (inside / "data").resolve()
    assert resolve_allowed(str(inside / "data" / "new"), roots) == (inside / "data" / "new").resolve()
    for bad in [
        str(outside),
        "../elsewhere",
        "data/../../elsewhere",
        "escape",
        "escape/x",
        "~",
        "\\\\host\\share",
        "//host/share",
        "data\0x",
        "",
    ]:
        with pytest.raises(bucketing.BucketingError):
            resolve_allowed(bad, roots, base=inside)


def test_allowed_roots_come_from_cwd_sample_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV, os.pathsep.join(["/opt/data", "/srv/runs"]))
    roots = allowed_roots()
    assert tmp_path.resolve() in roots and bucketing.roots.SAMPLE in roots
    assert {str(r) for r in roots} >= {"/opt/data", "/srv/runs"}


@pytest.mark.parametrize(
    "make_plan",
    [
        lambda v: bucketing.percentile_plan(
            v, "variance", 4, ["w", "x", "y", "z"], ties="split", params=bucketing.Params(k=3, pass_threshold=1.0)
        ),
        lambda v: bucketing.threshold_plan(
            "pass_at_k", [0.123456789, 0.7], ["lo", "mid", "hi"], params=bucketing.Params(k=2)
        ),
        lambda v: bucketing.percentile_plan(v, "mean_reward", 3),
    ],
)
def test_the_equivalent_command_reproduces_the_export(sample_dir, tmp_path, make_plan):
    data = bucketing.load(sample_dir)
    probe = make_plan(data.table()["mean_reward"].to_numpy())
    values = data.table(probe.params)[probe.metric].to_numpy()
    plan = make_plan(values)
    bucketing.export(data, plan, tmp_path / "app", values=values, prefix="s1_", order="difficulty")
    command = command_line(str(sample_dir), str(tmp_path / "cli"), plan, prefix="s1_", order="difficulty")
    args = shlex.split(command)
    assert args[:3] == ["python", "-m", "bucketing"]
    result = run_cli(*args[3:])
    assert result.returncode == 0, result.stderr
    assert output_lines(tmp_path / "app") == output_lines(tmp_path / "cli")


def test_compare_crosses_two_plans():
    rng = np.random.default_rng(3)
    a, b = rng.random(500), rng.random(500)
    plan_a = bucketing.percentile_plan(a, "mean_reward", 3)
    plan_b = bucketing.percentile_plan(b, "variance", 3)
    crossed = compare(a, b, plan_a, plan_b, bins=10)
    ids_a, ids_b = plan_a.assign(a), plan_b.assign(b)
    for i in range(3):
        for j in range(3):
            assert crossed.cells[i, j] == np.sum((ids_a == i) & (ids_b == j))
    assert crossed.agreement == np.mean(ids_a == ids_b)
    ranks = [np.argsort(np.argsort(v)) for v in (a, b)]
    assert crossed.rank_correlation == pytest.approx(np.corrcoef(*ranks)[0, 1])
    assert crossed.density.sum() == 500 and crossed.density.shape == (10, 10)
    skewed = b**3  # a and b differ in shape: swapped axes would show
    density, edges_a, edges_b = np.histogram2d(a, skewed, bins=10)
    crossed = compare(a, skewed, plan_a, bucketing.percentile_plan(skewed, "variance", 3), bins=10)
    assert np.array_equal(crossed.density, density)
    assert np.array_equal(crossed.edges_a, edges_a) and np.array_equal(crossed.edges_b, edges_b)


def test_rank_correlation_gives_ties_their_average_rank():
    """Success rates tie a lot: the correlation must not depend on the order of the rows."""
    a = np.array([0, 0, 0, 1, 1, 0.5, 0.5, 0, 1, 0.5])
    b = np.array([0, 1, 0, 1, 1, 0.5, 0, 0, 1, 1.0])
    plan_a, plan_b = (bucketing.percentile_plan(v, "success_rate", 2) for v in (a, b))
    expected = np.corrcoef(pd.Series(a).rank(), pd.Series(b).rank())[0, 1]  # pandas: average ranks
    for order in (np.arange(10), np.arange(10)[::-1], np.random.default_rng(1).permutation(10)):
        assert compare(a[order], b[order], plan_a, plan_b).rank_correlation == pytest.approx(expected)
