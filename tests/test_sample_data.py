"""The bundled sample in examples/rollouts/ and the generator that makes it."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # examples/ is not installed; import it from the repo root
    sys.path.insert(0, str(ROOT))

from examples.make_rollouts import build_parser, make_rollouts  # noqa: E402

SAMPLE = ROOT / "examples" / "rollouts"
README = ROOT / "examples" / "README.md"


def documented_args():
    """The parsed arguments of the README's command that regenerates the sample."""
    commands = [
        line.strip()
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("python examples/make_rollouts.py") and "--out examples/rollouts" in line
    ]
    assert len(commands) == 1, f"expected one regenerating command in {README}, found {commands}"
    return build_parser().parse_args(shlex.split(commands[0])[2:])


def read_lines(folder: Path) -> list[bytes]:
    """All lines of the folder's files, in file-number order."""
    paths = sorted(folder.glob("rollouts_*.jsonl"), key=lambda p: int(p.stem.split("_")[1]))
    return [line for path in paths for line in path.read_bytes().splitlines(keepends=True)]


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return [json.loads(line) for line in read_lines(SAMPLE)]


def scores_of(rollout: dict) -> list[float]:
    return [item["score"] for item in rollout["reward"]]


def test_documented_command_reproduces_the_sample(tmp_path):
    args = documented_args()
    assert args.out == Path("examples/rollouts")
    assert args.size is None
    make_rollouts(tmp_path, rollouts=args.rollouts, files=args.files, seed=args.seed, line_bytes=args.line_bytes)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == sorted(p.name for p in SAMPLE.iterdir())
    for name in made:
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


def test_sample_files_are_numbered_past_ten():
    names = {p.name for p in SAMPLE.iterdir()}
    assert {"rollouts_2.jsonl", "rollouts_10.jsonl"} <= names
    assert all(p.stat().st_size > 0 for p in SAMPLE.iterdir())


def test_sample_size_is_small():
    total = sum(p.stat().st_size for p in SAMPLE.iterdir())
    assert 200_000 <= total <= 600_000


def test_every_line_is_one_prompt_with_a_score_per_response(sample):
    assert len(sample) == documented_args().rollouts
    assert len({r["key"] for r in sample}) == len(sample)
    for rollout in sample:
        n = len(rollout["response"]["choices"])
        assert 4 <= n <= 16
        assert len(rollout["reward"]) == n
        assert all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores_of(rollout))
        assert rollout["prompt"][-1]["role"] == "user"
        assert set(rollout["extra_info"]) == {"split", "source"}


def test_mean_rewards_have_ties_and_a_spread(sample):
    all_zero = sum(all(s == 0 for s in scores_of(r)) for r in sample)
    all_solved = sum(all(s >= 1 for s in scores_of(r)) for r in sample)
    between = len(sample) - all_zero - all_solved
    assert all_zero >= 0.1 * len(sample)
    assert all_solved >= 0.1 * len(sample)
    assert between >= 0.2 * len(sample)
    assert len({len(r["reward"]) for r in sample}) >= 8  # response counts vary


def test_scores_cover_every_kind(sample):
    scores = [s for r in sample for s in scores_of(r)]
    assert any(s > 1 for s in scores)
    assert any(s != int(s) and 0 < s < 1 for s in scores)
    assert any(s < 0 for s in scores)
    raw = b"".join(read_lines(SAMPLE))
    assert b'{"score": 1}' in raw and b'{"score": 1.0}' in raw  # ints and floats both appear


def test_text_has_raw_unicode_and_escapes():
    raw = b"".join(read_lines(SAMPLE))
    text = raw.decode("utf-8")
    assert any(ord(c) > 0x2E80 for c in text)  # CJK
    assert any(ord(c) > 0xFFFF for c in text)  # emoji
    assert "é" in text and "≤" in text
    assert b"\\u" not in raw  # non-ASCII is written raw, not \u-escaped
    assert b"\\n" in raw and b'\\"' in raw


@pytest.mark.parametrize("size_bytes, line_bytes, files", [(150_000, None, 3), (400_000, 20_000, 5)])
def test_size_mode_stops_within_one_line(tmp_path, size_bytes, line_bytes, files):
    paths = make_rollouts(tmp_path, files=files, seed=3, line_bytes=line_bytes, size_bytes=size_bytes)
    assert [p.name for p in paths] == [f"rollouts_{i}.jsonl" for i in range(files)]
    lines = read_lines(tmp_path)
    total = sum(p.stat().st_size for p in paths)
    assert total == sum(len(line) for line in lines)
    assert size_bytes <= total < size_bytes + len(lines[-1])
    assert paths[-1].read_bytes().endswith(lines[-1])
    for line in lines:
        json.loads(line)
    if line_bytes:
        assert all(abs(len(line) - line_bytes) < 0.05 * line_bytes for line in lines)


def test_rollouts_are_spread_over_files_in_order(tmp_path):
    paths = make_rollouts(tmp_path, rollouts=10, files=4, seed=5)
    per_file = [[json.loads(line)["num"] for line in p.read_bytes().splitlines()] for p in paths]
    assert [len(nums) for nums in per_file] == [2, 3, 2, 3]
    assert [n for nums in per_file for n in nums] == list(range(10))
