"""The benchmark runs (at a tiny size: a smoke test, no time is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT


def test_the_benchmark_runs_and_reports_every_measurement(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/run.py",
            "--sizes",
            "5MB",
            "--rounds",
            "1",
            "--rollouts",
            "5000",
            "--work",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    for row in [
        "original: load + 7 metrics",
        "ours: full run",
        "cat > /dev/null",
        "load: original / ours",
        "drag a threshold",
        "change the metric",
    ]:
        assert row in result.stdout
    saved = sorted((ROOT / "benchmarks" / "results").glob("*.json"))[-1]
    results = json.loads(saved.read_text())
    assert results["sizes"]["5MB"]["rollouts"] > 0
    assert all(seconds > 0 for seconds in results["sizes"]["5MB"]["median_seconds"].values())


def test_the_benchmark_times_a_trainer_dump(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/run.py",
            "--sizes",
            "2MB",
            "--rounds",
            "1",
            "--rollouts",
            "1000",
            "--work",
            str(tmp_path),
            "--layout",
            "verl",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "layout: verl" in result.stdout and "ours: full run" in result.stdout
    assert "original" not in result.stdout  # the original script can't group lines into prompts
    saved = json.loads(sorted((ROOT / "benchmarks" / "results").glob("*.json"))[-1].read_text())
    point = saved["sizes"]["2MB"]
    assert point["lines"] > point["rollouts"] > 0


def test_the_reload_benchmark_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "benchmarks/reload.py", "--size", "2MB", "--new", "1MB", "--rounds", "1"]
        + ["--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    for row in ["| without the cache", "| again, unchanged (no file read) |", "| after one new file (only it read) |"]:
        assert row in result.stdout
