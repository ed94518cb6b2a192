"""Tied and degenerate data: no bucket says something untrue (issue 15).

RL rewards are heavily tied (0/1 scores, all-solved and never-solved prompts).  Whatever the data,
cut points are strictly increasing (ties 'keep'), every range is true of its members and never an
empty interval, an empty bucket says why, a tie goes where the documented rule says, and a manifest
replays to the same buckets.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bucketing import cli
from bucketing.errors import BucketingError
from bucketing.manifest import plan_record
from bucketing.plan import bucket_stats, percentile_plan, plan_from_manifest, plan_warnings, threshold_plan
from bucketing.ranges import Tie, cut_text, interval_text, number, split_text

from .conftest import rollout_line, write_lines


def members_fit(plan, values: np.ndarray) -> None:
    """Every rollout lies in its bucket's interval, ties included; every interval is a real one (lower < upper)."""
    ids = plan.assign(values)
    for bucket in plan.buckets:
        inside = values[ids == bucket.rank]
        low, high = bucket.lower, bucket.upper
        if low is not None and high is not None:
            assert low < high or (low == high and plan.cut_ties), (low, high)
        low_tie = plan.tie(bucket.interval - 1) if bucket.interval else None
        high_tie = plan.tie(bucket.interval) if bucket.interval < len(plan.cuts) else None
        if low is not None:
            assert np.all((inside > low) | ((inside == low) & (low_tie is not None)))
        if high is not None:
            assert np.all((inside < high) | ((inside == high) & ((high_tie is None) or high_tie.below > 0)))


def sizes(plan, values) -> list[int]:
    """Bucket sizes, easiest first."""
    return np.bincount(plan.assign(values), minlength=len(plan.buckets)).tolist()


# --- 1. all values equal ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", range(2, 11))
@pytest.mark.parametrize("value", [1.0, 0.0, -3.5, 1e6])
def test_a_single_value_goes_to_the_middle_bucket_and_every_other_says_why_it_is_empty(count, value):
    values = np.full(5, value)
    plan = percentile_plan(values, "mean_reward", count)
    middle = (count - 1) // 2  # the middle bucket; for an even count the easier of the two
    assert sizes(plan, values) == [5 if rank == middle else 0 for rank in range(count)]
    assert all(a < b for a, b in zip(plan.cuts, plan.cuts[1:]))
    members_fit(plan, values)
    stats = bucket_stats(plan, values)
    assert [n for n in stats["note"] if n] == [f"empty: only 1 distinct value for {count} buckets"] * (count - 1)
    # one bound is the value itself: "= v" between two cuts, ">= v" or "<= v" at an end (two buckets)
    assert plan.ranges()[middle] in {f"mean_reward {op} {number(value)}" for op in ("=", ">=", "<=")}


def test_five_solved_prompts_are_medium_not_hard():
    """The issue's case: every response scored 1.0, three buckets."""
    values = np.ones(5)
    plan = percentile_plan(values, "mean_reward", 3)
    assert [plan.names[i] for i in plan.assign(values)] == ["medium"] * 5
    assert plan.ranges() == ["mean_reward > 1", "mean_reward = 1", "mean_reward < 1"]
    warnings = plan_warnings(plan, values)
    assert warnings[0].startswith("only 1 distinct value for 3 buckets: easy and hard are empty; use fewer buckets")


# --- 2. fewer distinct values than buckets; big ties -----------------------------------------------------------


@pytest.mark.parametrize("count", range(3, 11))
@pytest.mark.parametrize("metric", ["mean_reward", "variance"])
def test_two_values_go_to_the_two_end_buckets(count, metric):
    values = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    plan = percentile_plan(values, metric, count)
    ids = plan.assign(values)
    easier, harder = (1.0, 0.0) if metric == "mean_reward" else (0.0, 1.0)
    assert set(ids[values == easier]) == {0} and set(ids[values == harder]) == {count - 1}
    assert all(a < b for a, b in zip(plan.cuts, plan.cuts[1:]))
    members_fit(plan, values)
    assert plan_warnings(plan, np.sort(values))[0].startswith(f"only 2 distinct values for {count} buckets")


def test_the_values_between_spread_evenly_over_the_buckets():
    values = np.array([0.0, 0.5, 1.0])
    plan = percentile_plan(values, "mean_reward", 5)
    assert [plan.names[i] for i in plan.assign(values)] == ["very_hard", "medium", "very_easy"]
    assert plan.ranges()[1] == "0.5 < mean_reward <= 0.8"  # an empty bucket, between the values: a short cut


def test_one_value_holding_90_percent_is_named_with_its_count():
    values = np.array([0.0] * 90 + [i / 10 for i in range(1, 11)])
    plan = percentile_plan(values, "mean_reward", 3)
    warnings = plan_warnings(plan, values)
    assert any(
        w.startswith("90 of 100 rollouts (90%) have mean_reward = 0, more than one bucket's share")
        and "they all stay in hard" in w
        and "--ties split" in w
        for w in warnings
    ), warnings
    assert 0 not in sizes(plan, values)  # enough distinct values: no bucket is empty


@pytest.mark.parametrize(
    "values",
    [
        [1e308, -1e308],
        [1e308, -1e308, 0.0],
        [5e-324, 0.0],
        [0.0, 5e-324, 1e-323],
        [1.7976931348623157e308] * 3,
        [-1.7976931348623157e308, 1.7976931348623157e308],
        [1.0, math.nextafter(1.0, 2.0)],
        [1e-300, 2e-300, 3e-300],
    ],
)
@pytest.mark.parametrize("count", [2, 3, 5, 10])
def test_extreme_floats_give_finite_increasing_cuts_or_one_clear_error(values, count):
    values = np.array(values)
    try:
        plan = percentile_plan(values, "mean_reward", count)
    except BucketingError as error:
        assert "use fewer buckets" in str(error)
        return
    assert all(math.isfinite(c) for c in plan.cuts) and all(a < b for a, b in zip(plan.cuts, plan.cuts[1:]))
    members_fit(plan, values)
    assert sum(sizes(plan, values)) == len(values)


# --- 3. ties split -----------------------------------------------------------------------------------------------


def test_split_ties_record_how_many_of_the_tied_fall_on_each_side():
    values = np.array([0.0] * 150 + [0.5] * 12)
    plan = percentile_plan(values, "variance", 3, ties="split")
    assert sizes(plan, values) == [54, 54, 54]
    assert plan.cuts == (0.0, 0.0) and plan.cut_ties == (Tie(150, 54), Tie(150, 108))
    assert plan.ranges() == [
        "variance < 0, or variance = 0 (the first 54 of 150 tied, in input order)",
        "variance = 0: rollouts 55–108 of the 150 tied there, in input order",
        "variance = 0 (the last 42 of 150 tied, in input order), or variance > 0",
    ]
    ids = plan.assign(values)
    assert ids[:54].tolist() == [0] * 54 and ids[54:108].tolist() == [1] * 54  # input order breaks the tie
    members_fit(plan, values)


def _replayed(plan, values):
    return plan_from_manifest(json.loads(json.dumps(plan_record(plan, np.sort(values)))))


@pytest.mark.parametrize("ties", ["keep", "split"])
def test_a_manifest_replays_to_the_same_buckets_on_the_same_data(ties):
    values = np.array([0.0] * 150 + [0.5] * 12 + [0.25] * 30)
    np.random.default_rng(1).shuffle(values)
    plan = percentile_plan(values, "variance", 3, ties=ties)
    again = _replayed(plan, values)
    assert np.array_equal(again.assign(values), plan.assign(values))
    assert again.fitted(np.sort(values)).notes == ()


def test_a_split_manifest_on_other_data_keeps_the_share_and_says_so():
    plan = percentile_plan(np.array([0.0] * 150 + [0.5] * 12), "variance", 3, ties="split")
    other = np.array([0.0] * 97 + [0.5] * 20)
    fitted = _replayed(plan, np.array([0.0] * 150 + [0.5] * 12)).fitted(np.sort(other))
    assert fitted.cut_ties == (Tie(97, 35), Tie(97, 70))  # 54/150 and 108/150 of 97
    assert sizes(fitted, other) == [35, 35, 47]
    notes = plan_warnings(fitted, np.sort(other))
    assert notes[0].startswith(
        "the plan splits the 150 rollouts at variance = 0 in input order, 54 below cut 1; "
        "these data have 97 there: 35 go below it, and equal sizes are not guaranteed"
    )


def test_an_earlier_manifest_with_equal_cuts_and_no_ties_is_refused_in_one_line():
    saved = plan_record(percentile_plan(np.array([0.0, 1.0]), "mean_reward", 2), np.array([0.0, 1.0]))
    saved = {
        **saved,
        "cuts": [0.5, 0.5],
        "cut_ties": [],
        "buckets": [
            {"name": n, "difficulty_rank": i, "lower": lo, "upper": hi}
            for i, (n, lo, hi) in enumerate([("a", 0.5, None), ("b", 0.5, 0.5), ("c", None, 0.5)])
        ],
    }
    with pytest.raises(BucketingError, match=r"are both 0.5, and \$.cut_ties doesn't say"):
        plan_from_manifest(saved)


# --- the words ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lower, upper, text",
    [
        (None, 1.0, "v <= 1"),
        (None, math.nextafter(1.0, 0.0), "v < 1"),
        (math.nextafter(1.0, 0.0), 1.0, "v = 1"),
        (0.0, 0.5, "0 < v <= 0.5"),
        (0.5, None, "v > 0.5"),
        (math.nextafter(1.0, 0.0), None, "v >= 1"),
        (0.1 + 0.2, 0.7, "0.30000000000000004 < v <= 0.7"),
        (None, -0.0, "v <= 0"),
        (None, None, "any v"),
    ],
)
def test_an_interval_reads_as_what_it_holds(lower, upper, text):
    assert interval_text("v", lower, upper) == text


def test_a_value_is_printed_with_every_digit_it_needs():
    assert number(0.6847) == "0.6847" and number(0.68471234) == "0.68471234" and number(1e6) == "1e+06"
    assert cut_text(math.nextafter(1.0, 0.0)) == "just below 1" and cut_text(0.12) == "0.12"
    assert split_text("v", 0.0, 0.0, Tie(5, 2), Tie(5, 2)).startswith("v = 0: none of the 5 tied there")


# --- every plan, random tied data ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, -1.0]) | st.floats(-2, 2), min_size=1, max_size=80),
    count=st.integers(1, 10),
    ties=st.sampled_from(["keep", "split", "thresholds"]),
)
def test_every_bucket_s_record_is_true_of_its_members_and_replays(values, count, ties):
    values = np.array(values, dtype=np.float64)
    if ties == "thresholds":
        plan = threshold_plan("mean_reward", sorted(set(np.round(np.linspace(-1, 1, count + 1)[1:-1], 3))) or [0.0])
    else:
        plan = percentile_plan(values, "mean_reward", count, ties=ties)
    if plan.ties == "keep":
        assert all(a < b for a, b in zip(plan.cuts, plan.cuts[1:]))
    members_fit(plan, values)
    record = plan_record(plan, np.sort(values))
    ids = plan.assign(values)
    for bucket in record["buckets"]:
        inside = values[ids == plan.names.index(bucket["name"])]
        assert bucket["count"] == len(inside)
        if len(inside):
            assert (bucket["min"], bucket["max"]) == (inside.min(), inside.max()) and bucket["note"] is None
        else:
            assert bucket["min"] is None and bucket["note"].startswith("empty: ")
    again = plan_from_manifest(json.loads(json.dumps(record)))
    assert np.array_equal(again.assign(values), ids)


# --- the command line ----------------------------------------------------------------------------------------------


@pytest.fixture
def solved(tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1.0, 1.0], prompt=f"p{i}") for i in range(5)])
    return tmp_path / "in"


def test_the_command_line_warns_on_stderr_and_records_the_warnings(solved, capsys):
    assert cli.main(["-i", str(solved), "--dry-run", "--json"]) == 0
    out, err = capsys.readouterr()
    manifest = json.loads(out)
    warned = [line.removeprefix("warning: ") for line in err.splitlines() if line.startswith("warning: ")]
    assert warned == manifest["warnings"] and len(warned) == 2
    assert warned[0] == (
        "only 1 distinct value for 3 buckets: easy and hard are empty; use fewer buckets, "
        "--thresholds or --preset learnability"
    )
    assert warned[1].startswith("5 of 5 rollouts (100%) have mean_reward = 1, more than one bucket's share")
    assert [b["count"] for b in manifest["buckets"]] == [0, 5, 0]
    assert [b["note"] for b in manifest["buckets"]] == [
        "empty: only 1 distinct value for 3 buckets",
        None,
        "empty: only 1 distinct value for 3 buckets",
    ]
    assert [b["range"] for b in manifest["buckets"]] == ["mean_reward > 1", "mean_reward = 1", "mean_reward < 1"]


def test_the_command_line_prints_the_cut_points_it_used_beside_the_percentiles(sample_dir, capsys):
    assert cli.main(["-i", str(sample_dir), "-m", "pass_at_k", "-n", "5", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Cut points used:" in out
    cut = next(line for line in out.splitlines() if line.strip().startswith("cut 2:"))
    assert "rollouts on its lower side: between" in cut and "the nearest place to the 40% percentile" in cut


def test_the_command_line_warns_of_an_empty_threshold_bucket(solved, capsys):
    assert cli.main(["-i", str(solved), "--dry-run", "--thresholds", "0.2", "0.5"]) == 0
    err = capsys.readouterr().err
    assert "warning: bucket bucket_0 is empty: no rollout has mean_reward <= 0.2; move or remove a threshold" in err


def test_a_split_ties_manifest_replays_to_identical_files(sample_dir, tmp_path, capsys):
    first, again = tmp_path / "first", tmp_path / "again"
    assert cli.main(["-i", str(sample_dir), "-o", str(first), "-m", "variance", "--ties", "split"]) == 0
    saved = json.loads((first / "manifest.json").read_text())
    assert [b["count"] for b in saved["buckets"]] == [80, 80, 80] and any(saved["cut_ties"])
    assert cli.main(["-i", str(sample_dir), "-o", str(again), "--from-manifest", str(first / "manifest.json")]) == 0
    for name in ("easy.jsonl", "medium.jsonl", "hard.jsonl"):
        assert (again / name).read_bytes() == (first / name).read_bytes()
    assert "equal sizes are not guaranteed" not in capsys.readouterr().err
