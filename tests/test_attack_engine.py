"""Attacks on the engine: a hostile manifest, too many buckets, names with a newline, huge scores, blank-line bombs.

Each attack once ended in a traceback, a hang, or a run that copied everything and then failed; now it
gets one line naming what is wrong (exit 2 in the CLI, BucketingError in the library) or a named skip reason.
"""

from __future__ import annotations

import importlib
import json
import math
import time

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import bucketing
from bucketing import BucketingError
from bucketing.manifest import MAX_MANIFEST_BYTES, read_manifest
from bucketing.metrics import MAX_K, Params, Scores, compute_all
from bucketing.parse import SCORE_LIMIT
from bucketing.plan import (
    MAX_BUCKETS,
    balanced_boundaries,
    check_name,
    percentile_plan,
    plan_from_manifest,
    threshold_plan,
)

from .conftest import jsonl_files, one_line, rollout_line, write_lines

cli = importlib.import_module("bucketing.cli")


@pytest.fixture
def rollouts(tmp_path):
    """A small input folder: 12 rollouts with spread-out means."""
    return write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([i / 11, i / 22]) for i in range(12)]).parent


@pytest.fixture
def saved(rollouts, tmp_path) -> dict:
    """A real manifest (3 percentile buckets), as a dict to spoil."""
    run = cli.main(["-i", str(rollouts), "-o", str(tmp_path / "first"), "-n", "3"])
    assert run == 0
    return json.loads((tmp_path / "first" / "manifest.json").read_text())


def run_without_reading(monkeypatch, capsys, *argv) -> tuple[int, str]:
    """Run the CLI in this process; reading any input fails the test (a bad plan must cost no read)."""
    monkeypatch.setattr(cli, "load", lambda *a, **k: pytest.fail("the input was read"))
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, err


# --- 1. a hostile --from-manifest -------------------------------------------------------------------------------


def _set(manifest: dict, path: str, value) -> dict:
    """``manifest`` with the field at ``a.b.0.c`` set to ``value``."""
    *parents, last = path.split(".")
    here = manifest
    for step in parents:
        here = here[int(step)] if isinstance(here, list) else here[step]
    if isinstance(here, list):
        here[int(last)] = value
    else:
        here[last] = value
    return manifest


def _deep(levels: int):
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


SPOILED = [  # (field to set, value, what the one-line error must name)
    ("buckets", "easy,medium,hard", "$.buckets"),
    ("params", "k=1", "$.params"),
    ("metric", ["mean_reward"], "$.metric"),
    ("params.scores", 5, "$.params.scores"),
    ("params.group_by", "input", "$.params.group_by"),
    ("params.k", 1e30, "$.params.k"),
    ("params.k", 10**23, "$.params.k"),
    ("params.k", True, "$.params.k"),
    ("params.pass_threshold", "NaN", "$.params.pass_threshold"),
    ("cuts.0", "NaN", "$.cuts[0]"),
    ("cuts.0", "1e400", "$.cuts[0]"),
    ("cuts.0", None, "$.cuts[0]"),
    ("cuts", [0.5, 0.25], "$.cuts must be ascending"),
    ("cuts", [0.5, 0.5], "are both 0.5"),
    ("cut_ties", [None], "one per cut"),
    ("cut_ties", [{"tied": 3, "below": 4}, None], "more than tied"),
    ("cuts", [0.5], "1 cut point for 3 buckets"),
    ("buckets.0.name", "a\nb", "not allowed"),
    ("buckets.0.name", 7, "$.buckets[0].name"),
    ("buckets.0.difficulty_rank", "0", "$.buckets[0].difficulty_rank"),
    ("buckets.0.difficulty_rank", 5, "difficulty ranks"),
    ("buckets.0.lower", 0.123, "don't match the cut points"),
    ("buckets.0.upper", "x", "$.buckets[0].upper"),
    ("version", True, "$.version"),
    ("version", 2, "$.version"),
    ("preset", ["learnability"], "$.preset"),
    ("files", {"file": "x.jsonl"}, "$.files"),
    ("skipped_file", 3, "$.skipped_file"),
]


@pytest.mark.parametrize("field, value, names", SPOILED, ids=[f"{f}={v!r}"[:40] for f, v, _ in SPOILED])
def test_a_spoiled_manifest_field_is_one_line_naming_it_before_reading(
    saved, rollouts, tmp_path, monkeypatch, capsys, field, value, names
):
    path = tmp_path / "spoiled.json"
    path.write_text(json.dumps(_set(saved, field, value)))
    code, err = run_without_reading(
        monkeypatch, capsys, "-i", rollouts, "-o", tmp_path / "out", "--from-manifest", path
    )
    assert code == 2 and one_line(err) and names in err, err
    assert not (tmp_path / "out").exists()


def _write_raw(path, text: str):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, names",
    [
        (lambda m: json.dumps(m).replace('"cuts": [', '"cuts": [NaN, '), "not valid JSON"),
        (lambda m: json.dumps(m).replace('"cuts": [', '"cuts": [1e400, '), "$.cuts[0]"),
        (lambda m: json.dumps({**m, "extra": _deep(1)}).replace("[[]]", "[" * 100_000 + "]" * 100_000), "nested"),
        (
            lambda m: json.dumps(
                {
                    **m,
                    "cuts": list(range(100_000)),
                    "buckets": [{"name": f"b{i}", "difficulty_rank": i} for i in range(100_001)],
                }
            ),
            f"at most {MAX_BUCKETS}",
        ),
        (lambda m: json.dumps(m) + " " * MAX_MANIFEST_BYTES, "larger than"),
        (lambda m: "[1, 2, 3]", "Expected `object`, got `array`"),
        (lambda m: "", "not valid JSON"),
        (lambda m: "\x00\xff", "not valid JSON"),
    ],
    ids=["NaN", "1e400", "deep", "100k-buckets", "huge-file", "a-list", "empty", "binary"],
)
def test_a_hostile_manifest_file_is_one_line_before_reading(
    saved, rollouts, tmp_path, monkeypatch, capsys, make, names
):
    path = _write_raw(tmp_path / "hostile.json", make(saved))
    code, err = run_without_reading(
        monkeypatch, capsys, "-i", rollouts, "-o", tmp_path / "out", "--from-manifest", path
    )
    assert code == 2 and one_line(err) and names in err, err
    assert not (tmp_path / "out").exists()


def test_read_manifest_and_plan_from_manifest_raise_only_bucketing_errors(saved, tmp_path):
    """Library callers (the export's cleanup of an earlier export too) catch one exception for any garbage."""
    outside_the_plan = ("params.scores", "params.group_by", "version", "files", "skipped_file")
    for field, value, _ in SPOILED:
        spoiled = _set(json.loads(json.dumps(saved)), field, value)
        path = _write_raw(tmp_path / "m.json", json.dumps(spoiled))
        with pytest.raises(BucketingError):
            read_manifest(path)
        if field not in outside_the_plan:  # plan_from_manifest reads only the plan's fields
            with pytest.raises(BucketingError):
                plan_from_manifest(spoiled)
    for garbage in (None, [], "x", {"version": 1}, {"version": 1, "metric": "mean_reward", "cuts": "0.5"}):
        with pytest.raises(BucketingError):
            plan_from_manifest(garbage)


def test_a_valid_manifest_still_reads_as_the_dict_callers_use(saved, tmp_path):
    path = _write_raw(tmp_path / "m.json", json.dumps(saved))
    again = read_manifest(path)
    assert again == saved  # every field, not only those the schema checks
    plan = plan_from_manifest(again)
    assert list(plan.cuts) == saved["cuts"] and plan.names == [b["name"] for b in saved["buckets"]]


def test_one_value_for_several_buckets_gives_distinct_cuts_that_replay(tmp_path):
    """One value for four buckets: the plan's cut points are still strictly increasing, and the manifest replays."""
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1, 0])] * 6)
    assert cli.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "first"), "-n", "4"]) == 0
    saved = read_manifest(tmp_path / "first" / "manifest.json")
    assert saved["cuts"] == sorted(set(saved["cuts"])) and len(saved["cuts"]) == 3
    plan = plan_from_manifest(saved)
    assert sorted(plan.names) == sorted(b["name"] for b in saved["buckets"])
    assert (
        cli.main(
            [
                "-i",
                str(tmp_path / "in"),
                "-o",
                str(tmp_path / "again"),
                "--from-manifest",
                str(tmp_path / "first" / "manifest.json"),
            ]
        )
        == 0
    )
    assert jsonl_files(tmp_path / "again") == jsonl_files(tmp_path / "first")


def test_a_huge_k_on_the_command_line_is_refused_before_reading(rollouts, tmp_path, monkeypatch, capsys):
    code, err = run_without_reading(
        monkeypatch, capsys, "-i", rollouts, "--dry-run", "-m", "pass_at_k", "--k", str(10**23)
    )
    assert code == 2 and one_line(err) and f"--k must be at most {MAX_K}" in err, err
    with pytest.raises(BucketingError):
        Params(k=10**23)
    with pytest.raises(BucketingError):
        Params(k="4")  # a library caller's mistake is a BucketingError too, not a TypeError
    with pytest.raises(BucketingError):
        Params(pass_threshold="0.5")


def test_pass_at_k_with_the_largest_k_costs_no_more_than_the_scores(tmp_path):
    """k is used as min(k, n), and the product runs only as long as a rollout needs it."""
    scores = Scores(np.zeros(200_000), np.full(100_000, 2, dtype=np.int64))
    scores = Scores(np.concatenate([scores.flat, np.zeros(50_000)]), np.append(scores.counts, 50_000))
    started = time.process_time()  # this process's CPU time: other tests running beside it don't count
    values = bucketing.get_metric("pass_at_k").compute(scores, Params(k=MAX_K))
    assert time.process_time() - started < 5 and np.all(values == 0.0)


# --- 2. how many buckets, and how fast their cut points are found ---------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["-n", str(MAX_BUCKETS + 1)],
        ["-n", "1000000"],
        ["-n", str(10**30)],
        ["--thresholds", *map(str, range(MAX_BUCKETS))],
        ["-n", str(MAX_BUCKETS + 1), "--bucket-names", *(f"b{i}" for i in range(MAX_BUCKETS + 1))],
        ["--thresholds", *map(str, range(MAX_BUCKETS)), "--bucket-names", *(f"b{i}" for i in range(MAX_BUCKETS + 1))],
    ],
    ids=["n-101", "n-million", "n-1e30", "100-thresholds", "101-names", "101-names-thresholds"],
)
def test_too_many_buckets_is_one_line_before_reading(rollouts, tmp_path, monkeypatch, capsys, flags):
    code, err = run_without_reading(monkeypatch, capsys, "-i", rollouts, "-o", tmp_path / "out", *flags)
    assert code == 2 and one_line(err) and f"at most {MAX_BUCKETS} buckets" in err, err


def test_the_library_caps_the_bucket_count_too():
    values = np.linspace(0, 1, 1000)
    with pytest.raises(BucketingError, match=f"at most {MAX_BUCKETS}"):
        percentile_plan(values, "mean_reward", MAX_BUCKETS + 1)
    with pytest.raises(BucketingError, match=f"at most {MAX_BUCKETS}"):
        threshold_plan("mean_reward", np.linspace(0, 1, MAX_BUCKETS))
    assert len(percentile_plan(values, "mean_reward", MAX_BUCKETS).buckets) == MAX_BUCKETS
    assert len(threshold_plan("mean_reward", np.linspace(0, 1, MAX_BUCKETS - 1)).buckets) == MAX_BUCKETS
    with pytest.raises(BucketingError):
        threshold_plan("mean_reward", ["a"])  # not a number: one line, not a ValueError


def test_the_cut_search_is_linear_in_the_bucket_count():
    """It kept every path at every layer (a copy per step): 10 000 buckets took 10 s, 20 000 about 40 s, a million
    hung; now about 0.2 ms a bucket. Bounded in this process's CPU time, which tests running beside it don't add to."""
    ordered = np.sort(np.random.default_rng(0).integers(0, 1_000_000, 300_000)).astype(np.float64)
    started = time.process_time()
    boundaries = balanced_boundaries(ordered, 20_000)
    assert time.process_time() - started < 15
    assert len(boundaries) == 19_999 and boundaries == sorted(boundaries)


def _old_balanced_boundaries(ordered: np.ndarray, count: int) -> list[int]:
    """The search as it was (whole paths kept): the reference for which boundaries win a tie."""
    total = len(ordered)
    gaps = np.append(np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, total)
    ideal = total / count
    options = []
    for j in range(1, count):
        at = int(np.searchsorted(gaps, j * ideal))
        options.append(gaps[max(at - 4, 0) : at + 4].tolist())
    best = {0: (0.0, [])}
    for layer in options:
        best = {
            b: min((cost + (b - prev - ideal) ** 2, path + [b]) for prev, (cost, path) in best.items() if prev <= b)
            for b in layer
            if any(prev <= b for prev in best)
        }
    _, path = min((cost + (total - prev - ideal) ** 2, path) for prev, (cost, path) in best.items())
    return path


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.sampled_from([0, 0.25, 0.5, 1]) | st.integers(0, 30), min_size=1, max_size=120),
    count=st.integers(1, 12),
)
def test_the_linear_cut_search_chooses_what_the_old_one_did(values, count):
    """Where the old search left no bucket empty, the same boundaries; elsewhere, none empty."""
    ordered = np.sort(np.array(values, dtype=np.float64))
    assume(len(np.unique(ordered)) >= count)
    new, old = balanced_boundaries(ordered, count), _old_balanced_boundaries(ordered, count)
    bounds, old_bounds = [0, *new, len(ordered)], [0, *old, len(ordered)]
    assert all(a < b for a, b in zip(bounds, bounds[1:]))  # every bucket holds something
    if all(a < b for a, b in zip(old_bounds, old_bounds[1:])):
        assert new == old


# --- 3. names match as a whole ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x\n", "easy\n", "a\nb", "\nx", "x\r", "x\x00"])
def test_a_name_with_a_newline_is_refused(name):
    with pytest.raises(BucketingError):
        check_name(name)


@pytest.mark.parametrize(
    "flags",
    [
        ["--prefix", "x\n"],
        ["-n", "2", "--bucket-names", "easy\n", "hard"],
        ["--thresholds", "0.5", "--bucket-names", "low", "high\n"],
    ],
)
def test_a_prefix_or_name_with_a_newline_writes_no_file(rollouts, tmp_path, monkeypatch, capsys, flags):
    code, err = run_without_reading(monkeypatch, capsys, "-i", rollouts, "-o", tmp_path / "out", *flags)
    assert code == 2 and one_line(err) and "is not allowed" in err, err
    assert not (tmp_path / "out").exists()


# --- 4. huge finite scores -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metric, huge",
    [
        ("mean_reward", [1e308, 1e308]),
        ("variance", [1e308, -1e308]),
        ("inverse_mean", [-1e308, -1e308]),
        ("mean_reward", [SCORE_LIMIT * 10, 0]),
    ],
)
def test_a_score_beyond_the_bound_is_skipped_with_a_reason(tmp_path, capsys, metric, huge):
    lines = [rollout_line([0, 1]), rollout_line(huge), rollout_line([1, 1]), rollout_line([0.5, 0])]
    write_lines(tmp_path / "in" / "a.jsonl", lines)
    assert cli.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", metric, "-n", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    manifest = json.loads(out)
    assert manifest["skipped"] == {"score not finite": 1}
    assert "a.jsonl:2: score not finite" in manifest["skipped_examples"]["score not finite"][0]
    assert (tmp_path / "out" / "_skipped.jsonl").read_bytes() == lines[1] + b"\n"
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["totals"]["rollouts"] == 3


def test_scores_at_the_bound_are_kept_and_every_metric_is_finite(tmp_path):
    lines = [rollout_line([SCORE_LIMIT, -SCORE_LIMIT]), rollout_line([SCORE_LIMIT] * 3), rollout_line([-1e-6])]
    data = bucketing.load(write_lines(tmp_path / "a.jsonl", lines))
    assert data.totals["rollouts"] == 3
    for name, values in compute_all(data.scores, Params()).items():
        assert np.all(np.isfinite(values)), name


def test_inverse_mean_is_finite_at_its_pole():
    """mean = -1e-6 exactly: the value at the next float above, 2**72, the largest inverse_mean there is."""
    scores = Scores(np.array([-1e-6, np.nextafter(-1e-6, 0.0), 0.0]), np.ones(3, dtype=np.int64))
    with np.errstate(all="raise"):
        values = compute_all(scores, Params())["inverse_mean"]
    assert values[0] == values[1] == 2.0**72 and values[2] == pytest.approx(1e6)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.floats(-SCORE_LIMIT, SCORE_LIMIT) | st.sampled_from([-1e-6, 0.0, 1.0]), min_size=1, max_size=6),
        min_size=1,
        max_size=8,
    ),
    k=st.integers(1, 8),
    threshold=st.floats(-1e300, 1e300),
)
def test_every_metric_is_finite_for_scores_within_the_bound(rows, k, threshold):
    scores = Scores(np.array([s for row in rows for s in row]), np.array([len(row) for row in rows]))
    for name, values in compute_all(scores, Params(k=k, pass_threshold=threshold)).items():
        assert np.all(np.isfinite(values)), (name, rows)


def test_a_metric_that_is_not_finite_is_one_line_not_a_traceback(rollouts, tmp_path, capsys):
    """A plugin's metric may still give NaN or inf: the CLI says so before writing, and --json never fails."""
    plugin = tmp_path / "nan_metric.py"
    plugin.write_text(
        "import numpy as np\nimport bucketing\n"
        "bucketing.register_metric('nanny', lambda s: float('nan') if s[0] == 0 else float('inf'),"
        " higher_is_easier=True)\n"
    )
    for flags in (["--dry-run", "--json"], ["-o", str(tmp_path / "out")], ["--dry-run", "--thresholds", "0.5"]):
        code = cli.main(["--plugin", str(plugin), "-i", str(rollouts), "-m", "nanny", *flags])
        out, err = capsys.readouterr()  # with --json the human summary goes to stderr too: the error is its last line
        assert code == 2 and "Traceback" not in err and err.count("error:") == 1, err
        last = err.splitlines()[-1]
        assert last.startswith("error: nanny is not a finite number for 12 rollouts (the first at a.jsonl:1"), last
        assert "{" not in out and "Saved" not in out + err
    assert not (tmp_path / "out").exists()


def test_a_dry_run_shows_a_plugin_metric_that_is_not_finite(rollouts, capsys, tmp_path):
    plugin = tmp_path / "inf_metric.py"
    plugin.write_text(
        "import bucketing\nbucketing.register_metric('infy', lambda s: float('inf'), higher_is_easier=True)\n"
    )
    assert cli.main(["--plugin", str(plugin), "-i", str(rollouts), "--dry-run", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["metric"] == "mean_reward"
    assert "infy" in err and "not finite" in err and "RuntimeWarning" not in err


# --- 5. blank-line bombs -------------------------------------------------------------------------------------------


def test_blank_lines_cost_about_what_reading_them_costs(tmp_path):
    """20 MB of newlines: 20 million blank lines took about 10 s of per-line Python work; now one regex run."""
    path = tmp_path / "a.jsonl"
    with open(path, "wb") as f:
        f.write(rollout_line([1]) + b"\n")
        f.write(b"\n" * (10 << 20) + b" \t\r\n" * (1 << 20) + b"\r\n" * (2 << 20))
        f.write(rollout_line([0]) + b"\n" + b"{bad\n" + b"\n" * 5)
    started = time.process_time()  # workers=1: read in this process, whose CPU time others' load doesn't change
    data = bucketing.load(path, workers=1)
    elapsed = time.process_time() - started
    blank = (10 << 20) + (1 << 20) + (2 << 20) + 5
    assert data.totals["blank"] == blank and data.totals["rollouts"] == 2 and data.totals["skipped"] == 1
    assert list(data.rollout_columns["line"]) == [1, blank - 3]  # line numbers still count every blank line
    assert data.where(0, blank - 2) in data.skipped_summary["invalid JSON"]["examples"][0]
    assert elapsed < 3, elapsed


@pytest.mark.parametrize(
    "body, blank, rollouts",
    [
        (b'\n\n \n{"reward": [{"score": 1}]}\n\n', 4, 1),
        (b'  {"reward": [{"score": 1}]}\n \n', 1, 1),
        (b"\n\t\n\r\n  \r\n", 4, 0),
        (b"\n\n   ", 3, 0),
        (b'\xef\xbb\xbf\n\n{"reward": [{"score": 1}]}', 2, 1),
    ],
)
def test_runs_of_blank_lines_are_counted_as_before(tmp_path, body, blank, rollouts):
    path = tmp_path / "a.jsonl"
    path.write_bytes(body)
    if not rollouts:
        with pytest.raises(BucketingError):
            bucketing.load(path)
        return
    data = bucketing.load(path)
    assert data.totals["blank"] == blank and data.totals["rollouts"] == rollouts
    assert data.totals["lines"] == body.count(b"\n") + (not body.endswith(b"\n"))


def test_the_rule_constants_are_the_documented_ones():
    assert MAX_BUCKETS == 100 and MAX_K == 1_000_000 and SCORE_LIMIT == 1e100
    assert MAX_MANIFEST_BYTES == 16 << 20
    assert math.isfinite(2.0**72)
