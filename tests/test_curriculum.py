"""Curriculum stages, train/val splits and the learnability preset (issue #8, engine + command line).

Expected values are computed here from the raw input lines with ``json.loads`` (an oracle written
from the README's "Curriculum and splits" section), never copied from what the code printed:

* a stage ``cumulative/{prefix}{name}.jsonl`` holds the lines of that bucket and of every easier one,
  in input order with ``--order input`` and easiest first (stable) with ``--order difficulty``;
* ``--val-fraction F`` splits each bucket once: ``round(F x size)`` rollouts (half up) to ``val/``,
  the rest to ``train/``; a stage's halves are the unions of its buckets' halves, so no validation
  line is in any training file; the split depends on the content only (not on line order, file
  names or compression) and changes with ``--seed``; a grouped rollout's lines stay on one side;
* ``--preset learnability``: ``solved`` (every response passes), ``learnable`` (some do),
  ``unsolved`` (none do), easiest first, at ``--pass-threshold``;
* the manifest lists every file written with its part, buckets, lines and rollouts.
"""

from __future__ import annotations

import bisect
import gzip
import itertools
import json
import math
import random
import tempfile
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bucketing
from bucketing import sources, writer
from bucketing.outputs import TEMP_PREFIX
from examples.make_rollouts import make_rollouts

from .conftest import one_line, rollout_line, run_cli, write_lines

SCORES = (0.0, 0.25, 0.5, 0.75, 1.0)  # sums of these are exact: means compare exactly with numpy's
DEFAULT_NAMES = ["easy", "medium", "hard"]  # -n 3, easiest first (README)
# --thresholds 0.3 0.7: names in ascending values; mean_reward is higher = easier, so "high" is easiest
THRESHOLDS = ("--thresholds", "0.3", "0.7", "--bucket-names", "low", "mid", "high")
THRESHOLD_EASIEST_FIRST = ["high", "mid", "low"]
BAD_LINES = [b"{not json", b'{"prompt": "bad", "reward": [{"score": "x"}]}']
LEARNABILITY = ["solved", "learnable", "unsolved"]  # easiest first


# ----------------------------------------------------------------------------------------------
# helpers: inputs, outputs and the oracle
# ----------------------------------------------------------------------------------------------


def random_rows(count: int, seed: int, most: int = 4) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.choice(SCORES) for _ in range(rng.randint(1, most))] for _ in range(count)]


def make_input(folder: Path, rows: list[list[float]], files: int = 3, bad: bool = False, tag: str = "p") -> list[bytes]:
    """Rows as default-layout lines over ``files`` files (contiguous, so input order = row order).

    With ``bad``, the two BAD_LINES go into the middle of the first and the end of the last file.
    Returns the good lines (no newline) in input order.
    """
    good = [rollout_line(r, prompt=f"{tag}{i}") for i, r in enumerate(rows)]
    for f in range(files):
        chunk = good[f * len(good) // files : (f + 1) * len(good) // files]
        if bad and f == 0:
            chunk = chunk[: len(chunk) // 2] + [BAD_LINES[0]] + chunk[len(chunk) // 2 :]
        if bad and f == files - 1:
            chunk = chunk + [BAD_LINES[1]]
        write_lines(folder / f"part_{chr(ord('a') + f)}.jsonl", chunk)
    return good


def input_lines(folder: Path) -> list[bytes]:
    """Every non-blank line of every .jsonl file under ``folder`` (sorted paths), with its newline."""
    return [line for path in sorted(folder.rglob("*.jsonl")) for line in lines_of(path) if line.strip()]


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def nl(lines) -> list[bytes]:
    return [line + b"\n" for line in lines]


def jsonl_tree(out: Path) -> dict[str, list[bytes]]:
    """Every .jsonl file under ``out``, recursively (relative posix path) -> its lines."""
    return {p.relative_to(out).as_posix(): lines_of(p) for p in sorted(out.rglob("*.jsonl"))}


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` -> its bytes."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def temp_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def ok(result) -> None:
    assert result.returncode == 0, result.stderr


def half_up(fraction: float, size: int) -> int:
    """round(F x size), .5 going up, with F as written (decimal), not Python's round-half-even."""
    return int((Decimal(repr(fraction)) * size).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def scores_of(line: bytes) -> list[float]:
    return [float(r["score"]) for r in json.loads(line)["reward"]]


def mean_reward(line: bytes) -> float:
    scores = scores_of(line)
    return sum(scores) / len(scores)


def threshold_rank(line: bytes) -> int:
    """Rank (0 = easiest) under THRESHOLDS."""
    value = mean_reward(line)
    return 0 if value > 0.7 else 1 if value > 0.3 else 2


def learnability(scores: list[float], threshold: float) -> str:
    passed = sum(score >= threshold for score in scores)
    return "solved" if passed == len(scores) else "unsolved" if passed == 0 else "learnable"


def check_split(
    out: Path, prefix: str, names: list[str], fraction: float, cumulative: bool = True, unit=lambda line: line
) -> set[bytes]:
    """The split invariants on an export's files; returns the set of validation lines.

    ``names`` easiest first; ``unit(line)`` says which rollout a line belongs to.
    """
    val_lines = set()
    for name in names:
        val_lines |= set(lines_of(out / "val" / f"{prefix}{name}.jsonl"))
    folders = ["", "cumulative/"] if cumulative else [""]
    for name in names:
        for folder in folders:
            whole = lines_of(out / f"{folder}{prefix}{name}.jsonl")
            train = lines_of(out / "train" / f"{folder}{prefix}{name}.jsonl")
            val = lines_of(out / "val" / f"{folder}{prefix}{name}.jsonl")
            where = f"{folder}{prefix}{name}.jsonl"
            assert Counter(train) + Counter(val) == Counter(whole), where  # train ∪ val = the bucket/stage
            assert not set(train) & set(val), where  # train ∩ val = ∅
            # the same split as the buckets' (a stage is not split again), order kept
            assert val == [line for line in whole if line in val_lines], where
            assert train == [line for line in whole if line not in val_lines], where
        bucket = lines_of(out / f"{prefix}{name}.jsonl")
        val = lines_of(out / "val" / f"{prefix}{name}.jsonl")
        assert len({unit(line) for line in val}) == half_up(fraction, len({unit(line) for line in bucket})), name
    every_train_line = {line for rel, lines in jsonl_tree(out / "train").items() for line in lines}
    assert not every_train_line & val_lines  # no validation line in any training file at all
    return val_lines


# ----------------------------------------------------------------------------------------------
# 1. --cumulative
# ----------------------------------------------------------------------------------------------


def test_cumulative_stages_are_the_easier_buckets_in_input_order(tmp_path):
    good = make_input(tmp_path / "in", random_rows(90, seed=1), bad=True)
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, *THRESHOLDS, "--cumulative", "--prefix", "s1_"))
    ranks = [threshold_rank(line) for line in good]
    assert set(ranks) == {0, 1, 2}  # the data fills every bucket

    stages = []
    for i, name in enumerate(THRESHOLD_EASIEST_FIRST):
        assert lines_of(out / f"s1_{name}.jsonl") == nl(line for line, r in zip(good, ranks) if r == i)
        stage = lines_of(out / "cumulative" / f"s1_{name}.jsonl")
        assert stage == nl(line for line, r in zip(good, ranks) if r <= i)  # byte-identical, input order
        stages.append(Counter(stage))
    assert (out / "cumulative" / "s1_high.jsonl").read_bytes() == (out / "s1_high.jsonl").read_bytes()
    for smaller, larger in itertools.pairwise(stages):
        assert not smaller - larger and sum(larger.values()) > sum(smaller.values())  # stage i ⊂ stage i+1
    assert stages[-1] == Counter(nl(good))  # every good rollout, not the skipped lines
    assert Counter(lines_of(out / "s1__skipped.jsonl")) == Counter(nl(BAD_LINES))
    assert sorted(jsonl_tree(out / "cumulative")) == sorted(f"s1_{n}.jsonl" for n in THRESHOLD_EASIEST_FIRST)
    assert not temp_leftovers(tmp_path)


def test_cumulative_stages_in_difficulty_order_are_easiest_first_and_stable(tmp_path):
    good = make_input(tmp_path / "in", random_rows(90, seed=2))
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, *THRESHOLDS, "--cumulative", "--order", "difficulty"))
    ranks = [threshold_rank(line) for line in good]
    for i, name in enumerate(THRESHOLD_EASIEST_FIRST):
        members = [line for line, r in zip(good, ranks) if r <= i]
        expected = sorted(members, key=lambda line: -mean_reward(line))  # stable: ties keep input order
        assert lines_of(out / "cumulative" / f"{name}.jsonl") == nl(expected)
    assert lines_of(out / "cumulative" / "high.jsonl") == lines_of(out / "high.jsonl")


def test_cumulative_stages_of_percentile_buckets_of_generated_rollouts(tmp_path):
    make_rollouts(tmp_path / "in", rollouts=150, files=3, seed=3)
    inputs = input_lines(tmp_path / "in")
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, "-n", "3", "--cumulative"))
    buckets = [lines_of(out / f"{name}.jsonl") for name in DEFAULT_NAMES]
    means = [[mean_reward(line) for line in bucket] for bucket in buckets]
    assert all(means) and min(means[0]) >= max(means[1]) and min(means[1]) >= max(means[2])  # easiest first
    union = Counter()
    for name, bucket in zip(DEFAULT_NAMES, buckets):
        union += Counter(bucket)
        stage = lines_of(out / "cumulative" / f"{name}.jsonl")
        assert Counter(stage) == union
        assert stage == [line for line in inputs if line in union]  # input order
    assert union == Counter(inputs)


# ----------------------------------------------------------------------------------------------
# 2. --val-fraction / --seed
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction, order", [(0.1, "input"), (0.25, "difficulty"), (0.5, "input")])
def test_every_bucket_and_stage_splits_into_disjoint_train_and_val(tmp_path, fraction, order):
    make_rollouts(tmp_path / "in", rollouts=240, files=4, seed=5)
    inputs = input_lines(tmp_path / "in")
    assert len(set(inputs)) == len(inputs)
    out = tmp_path / "out"
    ok(
        run_cli(
            "-i",
            tmp_path / "in",
            "-o",
            out,
            "-n",
            "3",
            "--cumulative",
            "--val-fraction",
            fraction,
            "--seed",
            "3",
            "--prefix",
            "c_",
            "--order",
            order,
        )
    )
    val_lines = check_split(out, "c_", DEFAULT_NAMES, fraction)
    assert set(lines_of(out / "val" / "cumulative" / "c_hard.jsonl")) == val_lines
    assert Counter(lines_of(out / "cumulative" / "c_hard.jsonl")) == Counter(inputs)
    for part in ("train", "val"):  # stage i ⊂ stage i+1 in each part too
        stages = [Counter(lines_of(out / part / "cumulative" / f"c_{n}.jsonl")) for n in DEFAULT_NAMES]
        assert all(not a - b for a, b in itertools.pairwise(stages))
    # the bucket files themselves are still written: every input line once
    top = [line for rel, lines in jsonl_tree(out).items() if "/" not in rel for line in lines]
    assert Counter(top) == Counter(inputs)
    assert not temp_leftovers(tmp_path)


def buckets_of_sizes(folder: Path, sizes: tuple[int, ...]) -> None:
    """Sizes easiest first under THRESHOLDS: means 1.0 (high), 0.5 (mid), 0.0 (low)."""
    rows = [[score] for score, size in zip((1.0, 0.5, 0.0), sizes) for _ in range(size)]
    make_input(folder, rows, files=1)


@pytest.mark.parametrize(
    "fraction, sizes", [(0.5, (1, 3, 5)), (0.1, (5, 15, 25)), (0.25, (2, 6, 10)), (0.3, (4, 0, 7))]
)
def test_each_bucket_sends_round_half_up_of_f_times_its_size_to_val(tmp_path, fraction, sizes):
    buckets_of_sizes(tmp_path / "in", sizes)
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, *THRESHOLDS, "--val-fraction", fraction, "--cumulative"))
    for name, size in zip(THRESHOLD_EASIEST_FIRST, sizes):
        assert len(lines_of(out / f"{name}.jsonl")) == size
        assert len(lines_of(out / "val" / f"{name}.jsonl")) == half_up(fraction, size), name
        assert len(lines_of(out / "train" / f"{name}.jsonl")) == size - half_up(fraction, size), name
    check_split(out, "", THRESHOLD_EASIEST_FIRST, fraction)


@pytest.mark.parametrize("fraction, size", [(0.58, 25), (0.7, 45)])
def test_val_count_rounds_the_fraction_as_written_half_up(tmp_path, fraction, size):
    """0.58 x 25 = 14.5 and 0.7 x 45 = 31.5: half up gives 15 and 32 (in binary floating point the
    products are 14.4999... and 31.4999..., which a plain floor(F*n + 0.5) rounds down)."""
    make_input(tmp_path / "in", [[1.0]] * size, files=1)
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, "-n", "1", "--bucket-names", "all", "--val-fraction", fraction))
    assert len(lines_of(out / "val" / "all.jsonl")) == half_up(fraction, size)


def test_the_split_depends_on_content_not_on_line_order_or_file_names(tmp_path):
    make_rollouts(tmp_path / "a", rollouts=200, files=3, seed=8)
    lines = input_lines(tmp_path / "a")
    shuffled = lines[:]
    random.Random(4).shuffle(shuffled)
    for name, part in [("zz.jsonl", shuffled[:50]), ("sub/01.jsonl", shuffled[50:140]), ("m.jsonl", shuffled[140:])]:
        (tmp_path / "b" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "b" / name).write_bytes(b"".join(part))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "all.jsonl.gz").write_bytes(gzip.compress(b"".join(reversed(lines))))
    flags = ("-n", "3", "--cumulative", "--val-fraction", "0.3", "--seed", "11")
    for source, out in [("a", "out_a"), ("a", "out_a2"), ("b", "out_b"), ("c", "out_c")]:
        ok(run_cli("-i", tmp_path / source, "-o", tmp_path / out, *flags))
    a, a2 = jsonl_tree(tmp_path / "out_a"), jsonl_tree(tmp_path / "out_a2")
    assert a == a2  # two runs: byte-identical files
    check_split(tmp_path / "out_a", "", DEFAULT_NAMES, 0.3)
    assert len(a) == 18
    for other in ("out_b", "out_c"):
        tree = jsonl_tree(tmp_path / other)
        assert sorted(tree) == sorted(a)
        for rel in a:
            assert set(tree[rel]) == set(a[rel]), (other, rel)


def test_a_compressed_input_is_decompressed_once_for_the_split_and_the_copy(tmp_path, monkeypatch):
    make_rollouts(tmp_path / "plain", rollouts=120, files=2, seed=3)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "all.jsonl.gz").write_bytes(gzip.compress(b"".join(input_lines(tmp_path / "plain"))))
    data = bucketing.load(tmp_path / "in")
    opened = []
    for module in (writer, sources):
        real = module.open_stream
        monkeypatch.setattr(module, "open_stream", lambda file, real=real: opened.append(file.rel) or real(file))
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 3)
    bucketing.export(data, plan, tmp_path / "out", cumulative=True, val_fraction=0.3, seed=11)
    assert len(opened) == 1
    monkeypatch.undo()
    ok(
        run_cli(
            "-i",
            tmp_path / "plain",
            "-o",
            tmp_path / "cli",
            "-n",
            "3",
            "--cumulative",
            "--val-fraction",
            "0.3",
            "--seed",
            "11",
        )
    )
    compressed, plain = jsonl_tree(tmp_path / "out"), jsonl_tree(tmp_path / "cli")
    assert sorted(compressed) == sorted(plain) and all(set(compressed[f]) == set(plain[f]) for f in plain)


def test_another_seed_gives_another_split_of_the_same_sizes(tmp_path):
    make_rollouts(tmp_path / "in", rollouts=300, files=2, seed=2)
    runs = {}
    for seed in (None, 0, 1, 987654321):
        out = tmp_path / f"out_{seed}"
        ok(
            run_cli(
                "-i",
                tmp_path / "in",
                "-o",
                out,
                "-n",
                "3",
                "--val-fraction",
                "0.3",
                *(["--seed", seed] if seed is not None else []),
            )
        )
        runs[seed] = jsonl_tree(out)
    assert runs[None] == runs[0]  # the default seed is 0
    for name in DEFAULT_NAMES:
        rel = f"val/{name}.jsonl"
        assert len({len(runs[s][rel]) for s in runs}) == 1  # same sizes
        splits = [frozenset(runs[s][rel]) for s in (0, 1, 987654321)]
        assert len(set(splits)) == 3, name  # every seed its own split
    for seed in runs:
        for name in DEFAULT_NAMES:
            assert runs[seed][f"{name}.jsonl"] == runs[0][f"{name}.jsonl"]  # the buckets don't move


def hand_made_dump(folder: Path) -> None:
    """60 prompts with 1-5 responses each, one line per response, shuffled over three files; two bad lines."""
    rng = random.Random(12)
    lines = [
        json.dumps({"input": f"question {g}", "output": f"answer {g}.{j}", "score": rng.choice(SCORES)}).encode()
        for g in range(60)
        for j in range(rng.randint(1, 5))
    ]
    rng.shuffle(lines)
    write_lines(folder / "s1.jsonl", lines[:40] + [b'{"output": "no input", "score": 1.0}'])
    write_lines(folder / "s2.jsonl", lines[40:100])
    write_lines(folder / "s3.jsonl", lines[100:] + [b"{not json"])


def verl_dump(folder: Path) -> None:
    make_rollouts(folder, rollouts=120, files=3, seed=9, layout="verl")
    with open(folder / "3.jsonl", "ab") as f:
        f.write(b"{not json\n")


GROUPED = {"verl": (verl_dump, []), "hand": (hand_made_dump, ["--scores", "score", "--group-by", "input"])}


def group_of(line: bytes):
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj.get("input") if isinstance(obj, dict) else None


@pytest.mark.parametrize("layout", list(GROUPED))
def test_a_grouped_rollout_goes_to_one_side_of_the_split(tmp_path, layout):
    make, flags = GROUPED[layout]
    make(tmp_path / "in")
    inputs = input_lines(tmp_path / "in")
    groups: dict[str, list[bytes]] = {}
    for line in inputs:
        if group_of(line) is not None:
            groups.setdefault(group_of(line), []).append(line)
    out = tmp_path / "out"
    fraction = 0.3
    ok(
        run_cli(
            "-i",
            tmp_path / "in",
            "-o",
            out,
            "-n",
            "3",
            "--cumulative",
            "--val-fraction",
            fraction,
            "--seed",
            "5",
            *flags,
        )
    )

    tree = jsonl_tree(out)
    top = [line for rel, lines in tree.items() if "/" not in rel for line in lines]
    assert Counter(top) == Counter(inputs)  # bucket + skipped files: every input line exactly once
    bad = [line for line in inputs if group_of(line) is None]
    assert bad and Counter(lines_of(out / "_skipped.jsonl")) == Counter(bad)

    val_lines = check_split(out, "", DEFAULT_NAMES, fraction, unit=group_of)
    train_lines = {line for rel, lines in tree.items() if rel.startswith("train/") for line in lines}
    top_sets = {rel: set(lines) for rel, lines in tree.items() if "/" not in rel}
    for key, members in groups.items():
        homes = {rel for rel, lines in top_sets.items() for line in members if line in lines}
        assert len(homes) == 1, key  # one bucket
        sides = {"val" if line in val_lines else "train" for line in members}
        assert len(sides) == 1, key  # one side of the split
        assert all((line in val_lines) != (line in train_lines) for line in members), key
    val_groups = {group_of(line) for line in val_lines}
    assert 0 < len(val_groups) < len(groups)

    # the same groups go to validation whatever the line order and the file names
    shuffled = [line for line in inputs if group_of(line) is not None]
    random.Random(1).shuffle(shuffled)
    write_lines(tmp_path / "again" / "x.jsonl", [line.rstrip(b"\n") for line in shuffled[: len(shuffled) // 2]])
    write_lines(tmp_path / "again" / "y" / "w.jsonl", [line.rstrip(b"\n") for line in shuffled[len(shuffled) // 2 :]])
    ok(
        run_cli(
            "-i",
            tmp_path / "again",
            "-o",
            tmp_path / "out2",
            "-n",
            "3",
            "--cumulative",
            "--val-fraction",
            fraction,
            "--seed",
            "5",
            *flags,
        )
    )
    again = jsonl_tree(tmp_path / "out2")
    assert {group_of(line) for rel, lines in again.items() if rel.startswith("val/") for line in lines} == val_groups


@pytest.mark.parametrize("value", ["0", "1", "-0.1", "1.5", "nan", "inf"])
def test_a_val_fraction_outside_0_and_1_is_a_one_line_error(tmp_path, value):
    make_input(tmp_path / "in", random_rows(10, seed=0), files=1)
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", f"--val-fraction={value}", "--cumulative")
    assert result.returncode == 2
    assert one_line(result.stderr) and "--val-fraction" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", [0, 1, -0.1, 1.5, math.nan])
def test_the_library_refuses_a_bad_val_fraction_before_writing(tmp_path, value):
    make_input(tmp_path / "in", random_rows(10, seed=0), files=1)
    data = bucketing.load(tmp_path / "in")
    plan = bucketing.threshold_plan("mean_reward", [0.5])
    with pytest.raises(bucketing.BucketingError, match="val-fraction"):
        bucketing.export(data, plan, tmp_path / "out", val_fraction=value, cumulative=True)
    assert not (tmp_path / "out").exists()


def test_the_library_writes_what_the_command_line_writes(tmp_path):
    make_rollouts(tmp_path / "in", rollouts=150, files=3, seed=21)
    with open(tmp_path / "in" / "rollouts_1.jsonl", "ab") as f:
        f.write(b"{not json\n")
    result = run_cli(
        "-i",
        tmp_path / "in",
        "-o",
        tmp_path / "cli",
        "-n",
        "3",
        "--cumulative",
        "--val-fraction",
        "0.2",
        "--seed",
        "5",
        "--prefix",
        "lib_",
        "--json",
    )
    ok(result)
    data = bucketing.load(tmp_path / "in")
    values = data.table()["mean_reward"].to_numpy()
    plan = bucketing.percentile_plan(values, "mean_reward", 3)
    manifest = bucketing.export(data, plan, tmp_path / "lib", cumulative=True, val_fraction=0.2, seed=5, prefix="lib_")
    assert jsonl_tree(tmp_path / "lib") == jsonl_tree(tmp_path / "cli")
    assert len(jsonl_tree(tmp_path / "lib")) == 3 + 1 + 3 + 4 * 3
    cli = json.loads(result.stdout)
    for key in ("cumulative", "split", "files", "buckets"):
        assert manifest[key] == cli[key], key
    assert json.loads((tmp_path / "lib" / "lib_manifest.json").read_text()) == manifest
    check_split(tmp_path / "lib", "lib_", DEFAULT_NAMES, 0.2)


def test_identical_lines_never_land_on_both_sides_of_the_split(tmp_path):
    """Five distinct lines, three copies each: half of the 15 rollouts is 7.5 -> 8, which falls inside
    one line's copies. A copy in val/ and another in train/ is the same training example on both sides."""
    lines = [rollout_line([1.0], prompt=f"q{i}") for i in range(5)]
    write_lines(tmp_path / "in" / "a.jsonl", [line for line in lines for _ in range(3)])
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, "-n", "1", "--bucket-names", "all", "--val-fraction", "0.5"))
    train, val = lines_of(out / "train" / "all.jsonl"), lines_of(out / "val" / "all.jsonl")
    assert Counter(train) + Counter(val) == Counter(nl(line for line in lines for _ in range(3)))
    assert not set(train) & set(val), "a validation line is also in the training file"


# ----------------------------------------------------------------------------------------------
# 3. --preset learnability
# ----------------------------------------------------------------------------------------------


def learnability_input(folder: Path, seed: int) -> list[bytes]:
    rows = random_rows(120, seed=seed, most=5) + [[1.0, 1.0], [0.0, 0.25], [1.0, 0.5, 0.0]]
    return make_input(folder, rows, tag=f"s{seed}-")


def expected_learnability(good: list[bytes], threshold: float) -> dict[str, list[bytes]]:
    return {
        name: nl(line for line in good if learnability(scores_of(line), threshold) == name) for name in LEARNABILITY
    }


@pytest.mark.parametrize("threshold", [None, 1.0, 0.25])
def test_learnability_preset_buckets_by_how_many_responses_pass(tmp_path, threshold):
    good = learnability_input(tmp_path / "in", seed=1)
    pass_at = 0.5 if threshold is None else threshold
    out = tmp_path / "out"
    flags = ["--pass-threshold", threshold] if threshold is not None else []
    result = run_cli("-i", tmp_path / "in", "-o", out, "--preset", "learnability", *flags, "--json")
    ok(result)
    manifest = json.loads(result.stdout)
    assert [b["name"] for b in manifest["buckets"]] == LEARNABILITY  # easiest first
    labels = [b["label"] for b in manifest["buckets"]]
    assert all(isinstance(label, str) and label for label in labels) and len(set(labels)) == 3
    expected = expected_learnability(good, pass_at)
    assert all(expected.values())  # the data fills every bucket
    for name in LEARNABILITY:
        assert lines_of(out / f"{name}.jsonl") == expected[name], name
    assert sorted(jsonl_tree(out)) == sorted(f"{name}.jsonl" for name in LEARNABILITY)


def test_pass_threshold_moves_rollouts_between_learnability_buckets(tmp_path):
    good = learnability_input(tmp_path / "in", seed=2)
    trees = {}
    for threshold in (0.5, 1.0):
        ok(
            run_cli(
                "-i",
                tmp_path / "in",
                "-o",
                tmp_path / f"out{threshold}",
                "--preset",
                "learnability",
                "--pass-threshold",
                threshold,
            )
        )
        trees[threshold] = jsonl_tree(tmp_path / f"out{threshold}")
        expected = expected_learnability(good, threshold)
        assert trees[threshold] == {f"{name}.jsonl": expected[name] for name in LEARNABILITY}
    assert trees[0.5]["solved.jsonl"] != trees[1.0]["solved.jsonl"]
    assert set(trees[1.0]["solved.jsonl"]) < set(trees[0.5]["solved.jsonl"])  # a higher bar solves fewer


def test_learnability_of_a_grouped_dump_counts_every_response_of_a_prompt(tmp_path):
    verl_dump(tmp_path / "in")
    groups: dict[str, list[float]] = {}
    for line in input_lines(tmp_path / "in"):
        if group_of(line) is not None:
            groups.setdefault(group_of(line), []).append(float(json.loads(line)["score"]))
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, "--preset", "learnability", "--pass-threshold", "1.0"))
    for name in LEARNABILITY:
        keys = {group_of(line) for line in lines_of(out / f"{name}.jsonl")}
        assert keys == {key for key, scores in groups.items() if learnability(scores, 1.0) == name}, name


def test_bucket_names_rename_the_learnability_buckets_easiest_first(tmp_path):
    good = learnability_input(tmp_path / "in", seed=3)
    named, plain = tmp_path / "named", tmp_path / "plain"
    result = run_cli(
        "-i", tmp_path / "in", "-o", named, "--preset", "learnability", "--bucket-names", "a", "b", "c", "--json"
    )
    ok(result)
    ok(run_cli("-i", tmp_path / "in", "-o", plain, "--preset", "learnability"))
    expected = expected_learnability(good, 0.5)
    for new, old in zip("abc", LEARNABILITY):
        assert lines_of(named / f"{new}.jsonl") == expected[old], new
    assert not (named / "solved.jsonl").exists()
    manifest = json.loads(result.stdout)
    assert [b["name"] for b in manifest["buckets"]] == ["a", "b", "c"]
    assert [b["label"] for b in manifest["buckets"]] == [
        b["label"] for b in json.loads((plain / "manifest.json").read_text())["buckets"]
    ]


@pytest.mark.parametrize(
    "flags",
    [
        ["-m", "mean_reward"],
        ["-n", "3"],
        ["-n", "0"],
        ["--thresholds", "0.5"],
        ["--ties", "keep"],
        ["--from-manifest", "MANIFEST"],
    ],
)
def test_preset_refuses_flags_that_set_the_plan(tmp_path, flags):
    make_input(tmp_path / "in", random_rows(20, seed=4), files=1)
    data = bucketing.load(tmp_path / "in")
    bucketing.export(data, bucketing.threshold_plan("mean_reward", [0.5]), tmp_path / "saved")
    flags = [str(tmp_path / "saved" / "manifest.json") if f == "MANIFEST" else f for f in flags]
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "--preset", "learnability", *flags)
    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr) and "--preset" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_learnability_manifest_replays_the_same_buckets_on_other_data(tmp_path):
    learnability_input(tmp_path / "a", seed=5)
    other = learnability_input(tmp_path / "b", seed=6)
    ok(run_cli("-i", tmp_path / "a", "-o", tmp_path / "out_a", "--preset", "learnability", "--pass-threshold", "0.75"))
    saved = json.loads((tmp_path / "out_a" / "manifest.json").read_text())
    replay = run_cli(
        "-i",
        tmp_path / "b",
        "-o",
        tmp_path / "out_b",
        "--from-manifest",
        tmp_path / "out_a" / "manifest.json",
        "--json",
    )
    ok(replay)
    ok(run_cli("-i", tmp_path / "b", "-o", tmp_path / "out_c", "--preset", "learnability", "--pass-threshold", "0.75"))
    expected = expected_learnability(other, 0.75)
    assert all(expected.values())
    for name in LEARNABILITY:
        assert lines_of(tmp_path / "out_b" / f"{name}.jsonl") == expected[name], name
        assert lines_of(tmp_path / "out_c" / f"{name}.jsonl") == expected[name], name
    manifest = json.loads(replay.stdout)
    assert [(b["name"], b["label"], b["difficulty_rank"]) for b in manifest["buckets"]] == [
        (b["name"], b["label"], b["difficulty_rank"]) for b in saved["buckets"]
    ]
    assert all(b["label"] for b in manifest["buckets"])


# ----------------------------------------------------------------------------------------------
# 4. the manifest
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["prompt", "verl"])
def test_the_manifest_lists_every_file_written_with_its_counts(tmp_path, layout):
    make_rollouts(tmp_path / "in", rollouts=120, files=3, seed=4, layout=layout)
    last = max((tmp_path / "in").glob("*.jsonl"))
    with open(last, "ab") as f:
        f.write(b"{not json\n")
    out = tmp_path / "out"
    result = run_cli(
        "-i",
        tmp_path / "in",
        "-o",
        out,
        "-n",
        "3",
        "--cumulative",
        "--val-fraction",
        "0.3",
        "--seed",
        "7",
        "--prefix",
        "m_",
        "--json",
    )
    ok(result)
    manifest = json.loads(result.stdout)
    assert manifest == json.loads((out / "m_manifest.json").read_text())  # --json prints manifest.json
    assert manifest["cumulative"] is True
    split = manifest["split"]
    assert (split["val_fraction"], split["seed"]) == (0.3, 7)
    assert isinstance(split["by"], str) and split["by"]

    unit = group_of if layout == "verl" else (lambda line: line)
    written = jsonl_tree(out)
    listed = [f["file"] for f in manifest["files"]]
    assert len(listed) == len(set(listed)) and set(listed) == set(written)  # every .jsonl written, recursively
    for entry in manifest["files"]:
        rel, lines = entry["file"], written[entry["file"]]
        assert (out / rel).is_file()
        assert entry["lines"] == len(lines), rel
        part = rel.split("/")[0] if rel.split("/")[0] in ("train", "val") else "all"
        assert entry["part"] == part, rel
        assert entry["cumulative"] == ("cumulative/" in rel), rel
        if rel == "m__skipped.jsonl":
            assert entry["rollouts"] == 0 and entry["buckets"] == [] and lines == [b"{not json\n"]
            continue
        assert entry["rollouts"] == len({unit(line) for line in lines}), rel
        index = DEFAULT_NAMES.index(rel.rsplit("/", 1)[-1][len("m_") : -len(".jsonl")])
        assert entry["buckets"] == (DEFAULT_NAMES[: index + 1] if entry["cumulative"] else [DEFAULT_NAMES[index]]), rel
    for bucket in manifest["buckets"]:
        assert bucket["lines"] == len(written[bucket["file"]])


def test_without_the_new_flags_nothing_more_is_written_and_the_manifest_says_so(tmp_path):
    make_input(tmp_path / "in", random_rows(30, seed=6), files=2, bad=True)
    out = tmp_path / "out"
    result = run_cli("-i", tmp_path / "in", "-o", out, "-n", "3", "--json")
    ok(result)
    manifest = json.loads(result.stdout)
    assert manifest["cumulative"] is False and manifest["split"] is None
    written = jsonl_tree(out)
    assert sorted(f["file"] for f in manifest["files"]) == sorted(written)
    assert all("/" not in rel for rel in written) and len(written) == 4
    assert all(
        f["part"] == "all" and not f["cumulative"] and f["lines"] == len(written[f["file"]]) for f in manifest["files"]
    )


# ----------------------------------------------------------------------------------------------
# 5. overwriting, atomically
# ----------------------------------------------------------------------------------------------

SPLIT_FLAGS = ("-n", "3", "--cumulative", "--val-fraction", "0.3")


@pytest.mark.parametrize("kept", ["cumulative/easy.jsonl", "train/hard.jsonl", "val/cumulative/medium.jsonl"])
def test_a_file_left_in_a_sub_folder_stops_the_next_export(tmp_path, kept):
    make_rollouts(tmp_path / "in", rollouts=60, files=2, seed=1)
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, *SPLIT_FLAGS))
    for path in out.rglob("*"):
        if path.is_file() and path.relative_to(out).as_posix() != kept:
            path.unlink()
    before = snapshot(out)
    assert list(before) == [kept]
    result = run_cli("-i", tmp_path / "in", "-o", out, *SPLIT_FLAGS)
    assert result.returncode == 2
    assert one_line(result.stderr) and Path(kept).name in result.stderr
    assert snapshot(out) == before  # nothing written
    assert not temp_leftovers(tmp_path)


def test_overwrite_replaces_every_file_of_the_earlier_split(tmp_path):
    make_rollouts(tmp_path / "in", rollouts=90, files=2, seed=1)
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, *SPLIT_FLAGS, "--seed", "0"))
    first = jsonl_tree(out)
    ok(run_cli("-i", tmp_path / "in", "-o", out, *SPLIT_FLAGS, "--seed", "1", "--overwrite"))
    ok(run_cli("-i", tmp_path / "in", "-o", tmp_path / "fresh", *SPLIT_FLAGS, "--seed", "1"))
    assert jsonl_tree(out) == jsonl_tree(tmp_path / "fresh")
    assert jsonl_tree(out) != first  # sanity: seed 1 splits otherwise
    assert json.loads((out / "manifest.json").read_text())["split"]["seed"] == 1
    assert not temp_leftovers(tmp_path)


@pytest.mark.parametrize("then", [("-n", "3"), ("-n", "4"), ("-n", "3", "--cumulative")])
def test_overwrite_leaves_one_export_and_the_users_own_files(tmp_path, then):
    """An earlier export's stages, splits and buckets of other names go (its manifest lists them); nothing else."""
    make_rollouts(tmp_path / "in", rollouts=90, files=2, seed=1)
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, *SPLIT_FLAGS))
    mine = {"notes.txt": b"mine\n", "train/mine.jsonl": b"{}\n", "cumulative/keep/x.jsonl": b"{}\n"}
    for name, data in mine.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    ok(run_cli("-i", tmp_path / "in", "-o", out, *then, "--overwrite"))
    ok(run_cli("-i", tmp_path / "in", "-o", tmp_path / "fresh", *then))
    assert set(snapshot(out)) == set(snapshot(tmp_path / "fresh")) | set(mine)
    assert {name: lines for name, lines in jsonl_tree(out).items() if name not in mine} == jsonl_tree(
        tmp_path / "fresh"
    )
    assert not (out / "val").exists()  # emptied folders go too
    assert not temp_leftovers(tmp_path)


def test_overwrite_never_removes_an_input_that_lies_in_the_output(tmp_path):
    """The earlier manifest lists train/*.jsonl, which this run doesn't write but reads: they stay."""
    make_rollouts(tmp_path / "in", rollouts=90, files=2, seed=1)
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, *SPLIT_FLAGS))
    inputs = snapshot(out / "train")
    ok(run_cli("-i", out / "train", "-o", out, "-n", "3", "--overwrite"))
    assert snapshot(out / "train") == inputs
    assert not (out / "val").exists()  # the earlier export's other files still go


def test_a_file_in_the_way_of_a_sub_folder_fails_without_changing_anything(tmp_path):
    make_rollouts(tmp_path / "in", rollouts=60, files=2, seed=1)
    out = tmp_path / "out"
    ok(run_cli("-i", tmp_path / "in", "-o", out, "-n", "3"))
    (out / "val").write_bytes(b"not a folder\n")
    before = snapshot(out)
    result = run_cli("-i", tmp_path / "in", "-o", out, *SPLIT_FLAGS, "--seed", "4", "--overwrite")
    assert result.returncode != 0
    assert one_line(result.stderr)
    assert snapshot(out) == before  # the earlier export as it was: buckets, manifest, no stage written
    assert not temp_leftovers(tmp_path)


# ----------------------------------------------------------------------------------------------
# 6. properties
# ----------------------------------------------------------------------------------------------


@st.composite
def curricula(draw):
    rows = draw(st.lists(st.lists(st.sampled_from(SCORES), min_size=1, max_size=4), min_size=1, max_size=30))
    return {
        "rows": rows,
        "files": draw(st.integers(1, 3)),
        "cuts": sorted(draw(st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.6, 0.9]), min_size=1, max_size=3, unique=True))),
        "fraction": draw(st.integers(1, 63)) / 64,  # exact in binary: F x n is exact, the oracle unambiguous
        "seed": draw(st.integers(0, 2**63 - 1)),
        "order": draw(st.sampled_from(["input", "difficulty"])),
        "shuffle": draw(st.randoms(use_true_random=False)),
    }


def export_lines(folder: Path, files: list[list[bytes]], case: dict, out: Path) -> None:
    for i, lines in enumerate(files):
        write_lines(folder / f"f{i}.jsonl", lines)
    data = bucketing.load(folder, workers=1)
    plan = bucketing.threshold_plan("mean_reward", case["cuts"])
    bucketing.export(
        data,
        plan,
        out,
        order=case["order"],
        cumulative=True,
        val_fraction=case["fraction"],
        seed=case["seed"],
        fsync=False,
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=curricula())
def test_stages_and_splits_hold_for_any_scores_fraction_and_seed(case):
    good = [rollout_line(r, prompt=f"p{i}") for i, r in enumerate(case["rows"])]
    count, fraction = len(case["cuts"]), case["fraction"]
    names = [f"bucket_{count - rank}" for rank in range(count + 1)]  # easiest first: highest values first
    rank = [count - bisect.bisect_left(case["cuts"], mean_reward(line)) for line in good]
    files = [good[f * len(good) // case["files"] : (f + 1) * len(good) // case["files"]] for f in range(case["files"])]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        export_lines(tmp / "in", files, case, tmp / "out")
        out = tmp / "out"

        def arranged(members):
            return nl(
                sorted(members, key=lambda line: -mean_reward(line)) if case["order"] == "difficulty" else members
            )

        for i, name in enumerate(names):
            assert lines_of(out / f"{name}.jsonl") == arranged([line for line, r in zip(good, rank) if r == i])
            assert lines_of(out / "cumulative" / f"{name}.jsonl") == arranged(
                [line for line, r in zip(good, rank) if r <= i]
            )
        assert Counter(lines_of(out / "cumulative" / f"{names[-1]}.jsonl")) == Counter(nl(good))
        val_lines = check_split(out, "", names, fraction)
        assert not temp_leftovers(tmp)

        # the same lines in another order and other files: the same validation lines
        shuffled = good[:]
        case["shuffle"].shuffle(shuffled)
        cut = case["shuffle"].randint(0, len(shuffled))
        export_lines(tmp / "in2", [shuffled[:cut], shuffled[cut:]], case, tmp / "out2")
        again = {line for rel, lines in jsonl_tree(tmp / "out2" / "val").items() if "/" not in rel for line in lines}
        assert again == val_lines
