"""Memory stays far below the data: line offsets and scores are kept, parsed rollouts never."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from examples.make_rollouts import make_rollouts

from .conftest import ROOT

MB = 1 << 20

# VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child of a big pytest process would start high
PEAK_RSS = """
import re, sys
sys.path.insert(0, {root!r})
from bucketing.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) * 1024)
sys.exit(code)
"""


def peak_rss(*args) -> int:
    """Peak RSS in bytes of one CLI run in a fresh process (one worker, so it is all in this process)."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS.format(root=str(ROOT)), *map(str, args), "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


def tiny_run_rss(folder: Path, layout: str = "prompt") -> int:
    """The peak RSS of an export of 20 rollouts: the interpreter and the imports (pyarrow's too, which writes
    difficulty.parquet), the baseline of the tests."""
    make_rollouts(folder / "in", rollouts=20, files=1, seed=1, layout=layout)
    return peak_rss("-i", folder / "in", "-o", folder / "out")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> int:
    return tiny_run_rss(tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="module")
def grouped_baseline(tmp_path_factory) -> int:
    """The same for a dump: its reading imports more (Arrow checks its UTF-8)."""
    return tiny_run_rss(tmp_path_factory.mktemp("small-dump"), layout="verl")


@pytest.mark.slow
def test_a_large_export_uses_a_fraction_of_the_data_size(tmp_path, baseline):
    data = tmp_path / "in"
    make_rollouts(data, files=3, seed=3, line_bytes=20_000, size_bytes=300 * MB)
    peak = peak_rss("-i", data, "-o", tmp_path / "out", "-n", "5")
    assert peak - baseline < 40 * MB, f"peak {peak / MB:.0f} MiB, baseline {baseline / MB:.0f} MiB"


@pytest.mark.slow
def test_a_grouped_dump_keeps_a_hash_per_line_not_its_text(tmp_path, grouped_baseline):
    data = tmp_path / "in"
    make_rollouts(data, files=4, seed=4, line_bytes=2_000, size_bytes=300 * MB, layout="verl")
    lines = sum(path.read_bytes().count(b"\n") for path in data.iterdir())
    peak = peak_rss("-i", data, "-o", tmp_path / "out", "-n", "5")
    # per line: its offset, length, line number, scores and a 16-byte group key, plus the grouping's sort
    assert peak - grouped_baseline < 40 * MB + 200 * lines, (
        f"peak {peak / MB:.0f} MiB, baseline {grouped_baseline / MB:.0f} MiB, {lines} lines"
    )


@pytest.mark.slow
def test_a_huge_line_without_newline_is_measured_not_held(tmp_path, baseline):
    data = tmp_path / "in"
    data.mkdir()
    with open(data / "a.jsonl", "wb") as f:
        f.write(b'{"reward": [{"score": 1}]}\n{"reward": [{"score": 0}], "x": "')
        chunk = b"y" * MB
        for _ in range(100):
            f.write(chunk)
    peak = peak_rss("-i", data, "-o", tmp_path / "out", "--max-line-bytes", str(MB))
    assert peak - baseline < 40 * MB, f"peak {peak / MB:.0f} MiB, baseline {baseline / MB:.0f} MiB"
    skipped = tmp_path / "out" / "_skipped.jsonl"
    assert skipped.stat().st_size == (data / "a.jsonl").stat().st_size - 27 + 1  # copied whole, plus its "\n"
