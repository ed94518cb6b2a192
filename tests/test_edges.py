"""Edge cases of the hostile-input list not covered elsewhere: files that change while read, one line in all."""

from __future__ import annotations

import importlib
import json

import pytest

import bucketing

from .conftest import output_lines, rollout_line, run_cli, write_lines

sources = importlib.import_module("bucketing.sources")


def changing_while_read(monkeypatch, change) -> None:
    """Make the first read of any input call ``change(path)`` right after it."""
    real_open = sources.open_stream

    class Stream:
        def __init__(self, file):
            self.inner, self.path, self.changed = real_open(file), file.path, False

        def readinto(self, buffer):
            count = self.inner.readinto(buffer)
            if not self.changed:
                self.changed = True
                change(self.path)
            return count

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.inner.close()

    monkeypatch.setattr(sources, "open_stream", Stream)
    monkeypatch.setattr(sources, "WINDOW", 4096)  # several reads per file


@pytest.fixture
def input_file(tmp_path):
    return write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([i % 3 / 2], prompt="x" * 500) for i in range(60)])


def test_a_file_that_grows_while_it_is_read_is_not_exported_from_stale_offsets(input_file, tmp_path, monkeypatch):
    def grow(path):
        with open(path, "ab") as f:
            f.write(rollout_line([1.0]) + b"\n" + b'{"reward": [{"sco')  # a writer mid-line

    changing_while_read(monkeypatch, grow)
    data = bucketing.load(input_file.parent, workers=1)
    assert data.totals["rollouts"] >= 60
    plan = bucketing.percentile_plan(data.table()["mean_reward"], "mean_reward", 3)
    with pytest.raises(bucketing.BucketingError, match="changed since it was loaded; load the input again"):
        bucketing.export(data, plan, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_file_that_shrinks_while_it_is_read_is_not_exported(input_file, tmp_path, monkeypatch):
    size = input_file.stat().st_size

    def shrink(path):
        with open(path, "r+b") as f:
            f.truncate(size // 2)

    changing_while_read(monkeypatch, shrink)
    data = bucketing.load(input_file.parent, workers=1)  # no crash: the end is read as a truncated line
    assert data.totals["rollouts"] < 60
    assert set(data.skipped["reason"]) <= {"truncated last line"}
    plan = bucketing.percentile_plan(data.table()["mean_reward"], "mean_reward", 2)
    with pytest.raises(bucketing.BucketingError, match="changed since it was loaded"):
        bucketing.export(data, plan, tmp_path / "out")


def test_one_line_in_total(tmp_path):
    line = rollout_line([1, 0, 1])
    write_lines(tmp_path / "in" / "a.jsonl", [line], final_newline=False)
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "3", "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert sorted(b["count"] for b in manifest["buckets"]) == [0, 0, 1]
    assert sum(output_lines(tmp_path / "out").values(), []) == [line + b"\n"]


def test_scores_exactly_on_the_pass_threshold_pass(tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([0.5, 0.4999999]), rollout_line([0.5, 0.5])])
    result = run_cli("-i", tmp_path / "in", "--dry-run", "--json", "-m", "success_rate", "--thresholds", "0.5")
    buckets = {b["name"]: b["count"] for b in json.loads(result.stdout)["buckets"]}
    assert buckets == {"bucket_0": 1, "bucket_1": 1}  # 0.5 success -> <= 0.5; 1.0 -> > 0.5
