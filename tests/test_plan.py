"""Plans: names, directions, intervals, tie policies, balance, and re-applying a saved plan."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bucketing
from bucketing.plan import bucket_table, percentile_plan, plan_from_manifest, threshold_plan


def original_sizes(values: np.ndarray, count: int) -> np.ndarray:
    """Bucket sizes of the original script: np.percentile cuts, first bucket whose cut >= value."""
    cuts = np.percentile(values, [i * 100 / count for i in range(count + 1)])
    ids = [next((i for i in range(count) if v <= cuts[i + 1]), count - 1) for v in values]
    return np.bincount(ids, minlength=count)


def squared_error(sizes: np.ndarray, total: int) -> float:
    return float(((sizes - total / len(sizes)) ** 2).sum())


def sizes_of(plan, values) -> np.ndarray:
    return np.bincount(plan.assign(values), minlength=len(plan.buckets))


def test_default_names():
    assert bucketing.default_names(3) == ["easy", "medium", "hard"]
    assert bucketing.default_names(5) == ["very_easy", "easy", "medium", "hard", "very_hard"]
    assert bucketing.default_names(4) == ["bucket_0", "bucket_1", "bucket_2", "bucket_3"]


@pytest.mark.parametrize("metric", ["mean_reward", "max_reward", "min_reward", "success_rate", "pass_at_k"])
def test_easy_holds_the_highest_values_of_a_higher_is_easier_metric(metric):
    values = np.arange(30, dtype=float)
    plan = percentile_plan(values, metric, 3)
    ids = plan.assign(values)
    assert plan.names == ["easy", "medium", "hard"]
    assert set(values[ids == 0]) == set(range(20, 30))
    assert set(values[ids == 2]) == set(range(0, 10))


@pytest.mark.parametrize("metric", ["variance", "inverse_mean"])
def test_easy_holds_the_lowest_values_of_a_higher_is_harder_metric(metric):
    values = np.arange(30, dtype=float)
    plan = percentile_plan(values, metric, 3)
    ids = plan.assign(values)
    assert set(values[ids == 0]) == set(range(0, 10))
    assert set(values[ids == 2]) == set(range(20, 30))


def test_bucket_index_is_the_difficulty_rank():
    values = np.linspace(0, 1, 50)
    for metric in ("mean_reward", "variance"):
        plan = percentile_plan(values, metric, 5)
        ids = plan.assign(values)
        medians = [np.median(values[ids == rank]) for rank in range(5)]
        expected = sorted(medians, reverse=bucketing.get_metric(metric).higher_is_easier)
        assert medians == expected
        assert [b.rank for b in plan.buckets] == list(range(5))


def test_threshold_intervals_are_closed_on_the_right():
    plan = threshold_plan("mean_reward", [0.7, 0.3])  # unsorted on purpose
    values = np.array([0.0, 0.3, 0.30001, 0.7, 0.70001, 1.0])
    names = [plan.names[i] for i in plan.assign(values)]
    by_interval = {b.interval: b.name for b in plan.buckets}
    assert names == [by_interval[0], by_interval[0], by_interval[1], by_interval[1], by_interval[2], by_interval[2]]
    assert [by_interval[i] for i in range(3)] == ["bucket_0", "bucket_1", "bucket_2"]


def test_threshold_names_follow_ascending_values():
    plan = threshold_plan("mean_reward", [0.3, 0.7], ["low", "medium", "high"])
    ids = plan.assign(np.array([0.1, 0.5, 0.9]))
    assert [plan.names[i] for i in ids] == ["low", "medium", "high"]
    assert plan.names == ["high", "medium", "low"]  # listed easiest first


def test_ties_keep_puts_equal_values_together_and_balances():
    values = np.array([0.0] * 40 + [0.5] * 20 + [1.0] * 40)
    plan = percentile_plan(values, "mean_reward", 3, ties="keep")
    ids = plan.assign(values)
    for value in np.unique(values):
        assert len(set(ids[values == value])) == 1
    assert sorted(np.bincount(ids, minlength=3)) == [20, 40, 40]


def test_ties_split_gives_exactly_equal_sizes_deterministically():
    values = np.array([0.0] * 50 + [1.0] * 50)
    plan = percentile_plan(values, "mean_reward", 3, ties="split")
    ids = plan.assign(values)
    assert sorted(np.bincount(ids)) == [33, 33, 34]
    assert np.array_equal(ids, percentile_plan(values, "mean_reward", 3, ties="split").assign(values))
    # equal values are ordered by input position: earlier rows land in the lower-value bucket
    zeros = ids[values == 0.0]
    assert list(zeros) == sorted(zeros, reverse=True)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.sampled_from([0, 0.25, 0.5, 0.75, 1, 1.25]) | st.floats(0, 1), min_size=1, max_size=200),
    count=st.integers(1, 10),
)
def test_keep_is_balanced_at_least_as_well_as_the_original(values, count):
    values = np.array(values, dtype=float)
    plan = percentile_plan(values, "mean_reward", count)
    ids = plan.assign(values)
    sizes = np.bincount(ids, minlength=count)
    assert sizes.sum() == len(values)
    assert squared_error(sizes, len(values)) <= squared_error(original_sizes(values, count), len(values)) + 1e-9
    for value in np.unique(values):  # ties kept
        assert len(set(ids[values == value])) == 1


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(-5, 5), min_size=1, max_size=200), count=st.integers(1, 10))
def test_split_sizes_differ_by_at_most_one(values, count):
    sizes = sizes_of(percentile_plan(np.array(values), "variance", count, ties="split"), np.array(values))
    assert sizes.max() - sizes.min() <= 1


def test_all_equal_values_land_in_one_bucket():
    values = np.ones(10)
    sizes = sizes_of(percentile_plan(values, "mean_reward", 3), values)
    assert sorted(sizes) == [0, 0, 10]


@pytest.mark.parametrize(
    "make",
    [
        lambda v: percentile_plan(v, "mean_reward", 3, ["a", "b"]),
        lambda v: percentile_plan(v, "mean_reward", 2, ["a", "A"]),
        lambda v: percentile_plan(v, "mean_reward", 2, ["_skipped", "b"]),
        lambda v: percentile_plan(v, "mean_reward", 2, ["../x", "b"]),
        lambda v: percentile_plan(v, "mean_reward", 0),
        lambda v: threshold_plan("mean_reward", [0.5, 0.5]),
        lambda v: threshold_plan("mean_reward", [float("inf")]),
        lambda v: threshold_plan("nope", [0.5]),
    ],
)
def test_bad_plans_are_refused(make):
    with pytest.raises(bucketing.BucketingError):
        make(np.linspace(0, 1, 9))


def test_a_plan_survives_the_manifest_round_trip(sample_dir, tmp_path):
    data = bucketing.load(sample_dir)
    values = data.table()["variance"].to_numpy()
    plan = percentile_plan(values, "variance", 4, ["a", "b", "c", "d"], params=bucketing.Params(k=2))
    manifest = bucketing.export(data, plan, tmp_path / "out")
    again = plan_from_manifest(bucketing.read_manifest(tmp_path / "out" / "manifest.json"))
    assert again.cuts == plan.cuts and again.names == plan.names and again.params == plan.params
    assert np.array_equal(again.assign(values), plan.assign(values))
    assert [b["count"] for b in manifest["buckets"]] == list(np.bincount(plan.assign(values), minlength=4))


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.sampled_from([0, 0.25, 0.5, 1]) | st.floats(-2, 2), min_size=1, max_size=100),
    count=st.integers(1, 6),
    ties=st.sampled_from(["keep", "split"]),
    metric=st.sampled_from(["mean_reward", "variance"]),
)
def test_bucket_table_from_sorted_values_matches_the_assignment(values, count, ties, metric):
    values = np.array(values)
    plan = percentile_plan(values, metric, count, ties=ties)
    ids = plan.assign(values)
    table = bucket_table(plan, np.sort(values))
    for rank, row in table.iterrows():
        members = values[ids == rank]
        assert row["count"] == len(members)
        if len(members):
            assert row["min"] == members.min() and row["max"] == members.max()
        else:
            assert np.isnan(row["min"])


def test_bucket_table_reports_ranges_and_shares():
    values = np.array([0.0, 0.0, 0.5, 1.0])
    plan = threshold_plan("mean_reward", [0.25, 0.75], ["low", "mid", "high"])
    table = bucket_table(plan, np.sort(values)).set_index("name")
    assert table.loc["low", "count"] == 2 and table.loc["low", "share"] == 0.5
    assert table.loc["high", "min"] == 1.0 and table.loc["mid", "max"] == 0.5
    assert table.loc["high", "difficulty_rank"] == 0


def test_renaming_keeps_the_cuts_and_checks_the_names():
    plan = threshold_plan("mean_reward", [0.3, 0.7])
    renamed = plan.renamed(["top", "middle", "bottom"])  # easiest first
    assert renamed.cuts == plan.cuts
    values = np.array([0.9, 0.5, 0.1])
    assert [renamed.names[i] for i in renamed.assign(values)] == ["top", "middle", "bottom"]
    with pytest.raises(bucketing.BucketingError):
        plan.renamed(["a", "A", "b"])
    with pytest.raises(bucketing.BucketingError):
        plan.renamed(["a", "b"])
