"""Faults during export: full disks, I/O errors, kills, two exports at once, outputs that are inputs."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bucketing
from bucketing import writer
from bucketing.outputs import TEMP_PREFIX
from examples.make_rollouts import make_rollouts

from .conftest import ROOT, one_line, output_lines, run_cli, run_process

FAULTS = [  # which os call fails, how, and from its how-manieth use on
    ("pwritev", errno.ENOSPC, 1),  # the data of a bucket file: the first write
    ("pwritev", errno.ENOSPC, 3),  # ... or later, with other files half-written
    ("pwritev", errno.EIO, 2),
    ("write", errno.ENOSPC, 1),  # the manifest (the sample's lines all end in "\n")
    ("fsync", errno.EIO, 1),  # flushing the first bucket file
    ("fsync", errno.EIO, 4),  # ... the manifest, once every bucket file is complete
    ("replace", errno.EIO, 1),  # the rename into place of the first file
    ("replace", errno.EIO, 3),  # ... of a later one
]

PLUGIN = """
import os, errno
calls = {{"n": 0}}
real = getattr(os, {name!r})
def failing(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] >= {after}:
        raise OSError({code}, os.strerror({code}))
    return real(*args, **kwargs)
setattr(os, {name!r}, failing)
"""


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else {}


@pytest.fixture
def earlier_export(sample_dir, tmp_path) -> Path:
    out = tmp_path / "out"
    assert run_cli("-i", sample_dir, "-o", out, "-m", "variance").returncode == 0
    return out


@pytest.mark.parametrize("name, code, after", FAULTS)
def test_an_injected_fault_fails_cleanly_and_keeps_the_earlier_export(
    sample_dir, tmp_path, earlier_export, name, code, after
):
    """The CLI, in its own process, with one os call failing from its n-th use on (a --plugin patches it)."""
    before = snapshot(earlier_export)
    plugin = tmp_path / "fault.py"
    plugin.write_text(PLUGIN.format(name=name, code=code, after=after))
    result = run_process("-i", sample_dir, "-o", earlier_export, "-m", "mean_reward", "--overwrite", "--plugin", plugin)
    assert result.returncode == 1, result.stderr
    assert one_line(result.stderr)
    assert os.strerror(code) in result.stderr and "no bucket file was written or changed" in result.stderr
    assert snapshot(earlier_export) == before  # no temp file, nothing replaced


def test_the_library_cleans_up_after_a_failed_fsync(sample_dir, tmp_path, monkeypatch):
    data = bucketing.load(sample_dir)
    plan = bucketing.percentile_plan(data.table()["mean_reward"], "mean_reward", 3)

    def failing_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writer.os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        bucketing.export(data, plan, tmp_path / "out")
    assert snapshot(tmp_path / "out") == {}


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> Path:
    """Enough data (about 60 MB) that an export takes a moment, to be killed in the middle of it."""
    folder = tmp_path_factory.mktemp("big")
    make_rollouts(folder, files=4, seed=5, line_bytes=20_000, size_bytes=60_000_000)
    return folder


@pytest.fixture(scope="module")
def reference(big_input, tmp_path_factory) -> dict[str, list[bytes]]:
    out = tmp_path_factory.mktemp("reference") / "out"
    assert run_cli("-i", big_input, "-o", out, "-n", "4", "--order", "difficulty").returncode == 0
    return output_lines(out)


def start_export(big_input: Path, out: Path, *extra) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bucketing",
            "-i",
            str(big_input),
            "-o",
            str(out),
            "-n",
            "4",
            "--order",
            "difficulty",
            "--overwrite",
            *map(str, extra),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


SLOW_DISK = """
import os, time
real = os.pwritev
def slow(*args):
    time.sleep(0.002)
    return real(*args)
os.pwritev = slow
"""


@pytest.mark.slow
@pytest.mark.parametrize("kill", [signal.SIGINT, signal.SIGKILL])
@pytest.mark.parametrize("seed", range(4))
def test_a_killed_export_never_leaves_a_partial_file_and_the_next_run_cleans_up(
    big_input, reference, tmp_path, kill, seed
):
    out = tmp_path / "out"
    started = tmp_path / "started"
    (tmp_path / "started.py").write_text(f"import pathlib\npathlib.Path({str(started)!r}).touch()\n")
    process = start_export(big_input, out, "--plugin", tmp_path / "started.py")
    deadline = time.monotonic() + 60
    while not started.exists():  # the CLI has started (plugins are imported first): a signal now is not one
        assert process.poll() is None and time.monotonic() < deadline  # to Python's start-up on a busy machine
        time.sleep(0.005)
    time.sleep(random.Random(seed).uniform(0, 1.4))  # the load takes ~0.3 s, the export about a second
    process.send_signal(kill)
    code = process.wait(timeout=60)
    stderr = process.stderr.read().decode()
    process.stderr.close()
    if kill == signal.SIGINT and code not in (0, -signal.SIGINT):  # -SIGINT: stopped while Python was starting
        assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    finals = {
        name: lines
        for name, lines in (output_lines(out) if out.exists() else {}).items()
        if not name.startswith(TEMP_PREFIX)
    }  # a SIGKILL leaves temp files: the next run removes them
    for name, lines in finals.items():  # whatever has its final name is complete
        assert lines == reference[name], f"{name} is partial after {kill.name}"
    if kill == signal.SIGINT:
        assert not [p for p in out.glob(TEMP_PREFIX + "*")] if out.exists() else True
    again = run_cli("-i", big_input, "-o", out, "-n", "4", "--order", "difficulty", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert output_lines(out) == reference
    assert not list(out.glob(TEMP_PREFIX + "*"))


def test_leftovers_of_other_tools_are_not_touched(sample_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{TEMP_PREFIX}dead-easy.jsonl").write_text("half")
    (out / ".other-tool-tmp").write_text("not ours")
    assert run_cli("-i", sample_dir, "-o", out).returncode == 0
    assert not (out / f"{TEMP_PREFIX}dead-easy.jsonl").exists()
    assert (out / ".other-tool-tmp").read_text() == "not ours"


def test_an_export_is_refused_while_the_folder_is_locked(sample_dir, tmp_path):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    holder = os.open(out, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # what a running export holds
    try:
        result = run_cli("-i", sample_dir, "-o", out)
        assert result.returncode == 2 and "another export is writing to" in result.stderr
        assert list(out.iterdir()) == []
    finally:
        os.close(holder)
    assert run_cli("-i", sample_dir, "-o", out).returncode == 0


def test_a_second_export_into_the_same_folder_is_refused_while_the_first_runs(
    big_input, reference, sample_dir, tmp_path
):
    out = tmp_path / "out"
    slow_disk = tmp_path / "slow_disk.py"
    slow_disk.write_text(SLOW_DISK)
    first = start_export(big_input, out, "--plugin", slow_disk)  # writing takes some seconds
    deadline = time.monotonic() + 30
    while not list(out.glob(TEMP_PREFIX + "*")):  # the first holds the lock once it writes
        assert first.poll() is None and time.monotonic() < deadline, "the first export never started writing"
        time.sleep(0.005)
    second = run_cli("-i", sample_dir, "-o", out, "--overwrite")  # small: it reaches the lock at once
    first_code = first.wait(timeout=120)
    first.stderr.close()
    assert second.returncode == 2 and "another export is writing to" in second.stderr, second.stderr
    assert first_code == 0
    assert output_lines(out) == reference


def test_an_output_file_that_is_a_hard_link_to_an_input_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    source = tmp_path / "in" / "easy.jsonl"
    source.write_bytes(b'{"reward": [{"score": 1}]}\n{"reward": [{"score": 0}]}\n{"reward": [{"score": 0.5}]}\n')
    before = source.read_bytes()
    (tmp_path / "out").mkdir()
    os.link(source, tmp_path / "out" / "easy.jsonl")
    result = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "--overwrite")
    assert result.returncode == 2 and "is the input file easy.jsonl" in result.stderr
    assert source.read_bytes() == before


@pytest.mark.parametrize("where", ["same", "inside", "link"])
def test_an_output_folder_in_the_input_is_refused(sample_dir, tmp_path, where):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(b'{"reward": [{"score": 1}]}\n')
    (tmp_path / "link").symlink_to(tmp_path / "in")
    out = {"same": tmp_path / "in", "inside": tmp_path / "in" / "sub", "link": tmp_path / "link"}[where]
    result = run_cli("-i", tmp_path / "in", "-o", out)
    assert result.returncode == 2 and "inside the input" in result.stderr
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.jsonl"]
    assert json.dumps(sorted(os.listdir(tmp_path))) == json.dumps(["in", "link"])
