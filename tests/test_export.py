"""Export: byte-exact copies, line order, safe output, atomic writes."""

from __future__ import annotations

import ctypes
import errno
import gzip
import json
import os
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import bucketing
from bucketing import bytecopy, writer
from bucketing.outputs import TEMP_PREFIX

from .conftest import jsonl_files, output_lines, rollout_line, write_lines


def make_input(folder: Path, rows: list[list[float]], name: str = "a.jsonl") -> Path:
    return write_lines(folder / name, [rollout_line(r, prompt=f"p{i}") for i, r in enumerate(rows)])


def files_in(out: Path) -> dict[str, bytes]:
    """The files directly in ``out`` (bucket files, manifest, any temp file left), by name."""
    return {p.name: p.read_bytes() for p in out.iterdir()}


def assert_every_sample_line_written(sample_dir: Path, out: Path) -> None:
    inputs = sorted(line for p in sample_dir.glob("*.jsonl") for line in p.read_bytes().splitlines())
    outputs = sorted(line for lines in output_lines(out).values() for line in lines)
    assert [line.rstrip(b"\n") for line in outputs] == inputs


def export_sample(sample_dir, out, **options):
    data = bucketing.load(sample_dir)
    values = data.table()["mean_reward"].to_numpy()
    plan = bucketing.percentile_plan(values, "mean_reward", 3)
    return data, plan, bucketing.export(data, plan, out, **options)


def test_every_sample_line_is_copied_once_byte_identical(sample_dir, tmp_path):
    _, _, manifest = export_sample(sample_dir, tmp_path / "out")
    inputs = Counter(line for p in sample_dir.glob("*.jsonl") for line in p.read_bytes().splitlines(keepends=True))
    outputs = Counter(line for lines in output_lines(tmp_path / "out").values() for line in lines)
    assert outputs == inputs
    assert sum(b["count"] for b in manifest["buckets"]) == sum(inputs.values())


def test_lines_keep_input_order_by_default(tmp_path):
    make_input(tmp_path / "in", [[i % 3 / 2] for i in range(30)])
    data = bucketing.load(tmp_path / "in")
    plan = bucketing.threshold_plan("mean_reward", [0.25, 0.75])
    bucketing.export(data, plan, tmp_path / "out")
    for lines in output_lines(tmp_path / "out").values():
        numbers = [int(json.loads(line)["prompt"][1:]) for line in lines]
        assert numbers == sorted(numbers)


def test_difficulty_order_is_easiest_first_and_stable(tmp_path):
    rows = [[0.0], [1.0], [0.5], [1.0], [0.0], [0.5], [1.0]]
    make_input(tmp_path / "in", rows)
    data = bucketing.load(tmp_path / "in")
    plan = bucketing.percentile_plan(data.table()["mean_reward"], "mean_reward", 1, ["all"])
    bucketing.export(data, plan, tmp_path / "out", order="difficulty")
    prompts = [json.loads(line)["prompt"] for line in output_lines(tmp_path / "out")["all.jsonl"]]
    assert prompts == ["p1", "p3", "p6", "p2", "p5", "p0", "p4"]


def test_every_bucket_gets_a_file_even_when_empty(tmp_path):
    make_input(tmp_path / "in", [[1.0], [1.0]])
    data = bucketing.load(tmp_path / "in")
    plan = bucketing.threshold_plan("mean_reward", [0.2, 0.5], ["low", "mid", "high"])
    manifest = bucketing.export(data, plan, tmp_path / "out", prefix="step1_")
    assert (tmp_path / "out" / "step1_low.jsonl").read_bytes() == b""
    assert (tmp_path / "out" / "step1_manifest.json").exists()
    assert not (tmp_path / "out" / "step1__skipped.jsonl").exists()
    assert {b["file"] for b in manifest["buckets"]} == {"step1_low.jsonl", "step1_mid.jsonl", "step1_high.jsonl"}


def test_compressed_inputs_export_in_difficulty_order(tmp_path):
    body = b"\n".join(rollout_line([s], prompt=f"p{i}") for i, s in enumerate([0.1, 0.9, 0.5])) + b"\n"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl.gz").write_bytes(gzip.compress(body))
    data = bucketing.load(tmp_path / "in")
    plan = bucketing.percentile_plan(data.table()["mean_reward"], "mean_reward", 1, ["all"])
    bucketing.export(data, plan, tmp_path / "out", order="difficulty")
    assert output_lines(tmp_path / "out")["all.jsonl"] == [body.splitlines(keepends=True)[i] for i in (1, 2, 0)]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_files_are_created_with_the_usual_permissions(tmp_path, sample_dir):
    old = os.umask(0o022)
    try:
        export_sample(sample_dir, tmp_path / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out" / "easy.jsonl").stat().st_mode) == 0o644


def test_existing_files_are_refused_without_overwrite(sample_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "medium.jsonl").write_text("precious\n")
    with pytest.raises(bucketing.BucketingError, match="medium.jsonl already exists"):
        export_sample(sample_dir, out)
    assert sorted(p.name for p in out.iterdir()) == ["medium.jsonl"]
    assert (out / "medium.jsonl").read_text() == "precious\n"
    export_sample(sample_dir, out, overwrite=True)
    assert (out / "medium.jsonl").read_text() != "precious\n"


@pytest.mark.parametrize("where", [".", "sub", "sub/deeper"])
def test_output_inside_the_input_is_refused(tmp_path, where):
    make_input(tmp_path / "in", [[1.0], [0.0]])
    data = bucketing.load(tmp_path / "in")
    plan = bucketing.threshold_plan("mean_reward", [0.5])
    with pytest.raises(bucketing.BucketingError, match="inside the input"):
        bucketing.export(data, plan, tmp_path / "in" / where)
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.jsonl"]


def test_output_through_a_symlink_into_the_input_is_refused(tmp_path):
    make_input(tmp_path / "in", [[1.0], [0.0]])
    (tmp_path / "link").symlink_to(tmp_path / "in")
    data = bucketing.load(tmp_path / "in")
    with pytest.raises(bucketing.BucketingError, match="inside the input"):
        bucketing.export(data, bucketing.threshold_plan("mean_reward", [0.5]), tmp_path / "link" / "out")


@pytest.mark.parametrize("prefix", ["../x", "a/b", "_x", ".hidden", "x" * 65])
def test_unsafe_prefixes_are_refused(sample_dir, tmp_path, prefix):
    with pytest.raises(bucketing.BucketingError, match="prefix"):
        export_sample(sample_dir, tmp_path / "out", prefix=prefix)
    assert not (tmp_path / "out").exists()


def test_an_input_changed_after_loading_is_refused(tmp_path):
    path = make_input(tmp_path / "in", [[1.0], [0.0]])
    data = bucketing.load(tmp_path / "in")
    with open(path, "ab") as f:
        f.write(rollout_line([0.5]) + b"\n")
    with pytest.raises(bucketing.BucketingError, match="changed since it was loaded"):
        bucketing.export(data, bucketing.threshold_plan("mean_reward", [0.5]), tmp_path / "out")


@pytest.mark.parametrize("fault", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_export_leaves_the_earlier_one_intact_and_no_temp_files(sample_dir, tmp_path, monkeypatch, fault):
    out = tmp_path / "out"
    export_sample(sample_dir, out)
    before = files_in(out)
    calls = {"n": 0}
    real_write = bytecopy.pwrite_all

    def failing_write(*args):
        calls["n"] += 1
        if calls["n"] == 2:  # one bucket file written, the others not yet
            raise fault
        return real_write(*args)

    monkeypatch.setattr(bytecopy, "pwrite_all", failing_write)
    with pytest.raises(type(fault)):
        data = bucketing.load(sample_dir)
        plan = bucketing.percentile_plan(data.table()["variance"], "variance", 3)
        bucketing.export(data, plan, out, overwrite=True)
    assert files_in(out) == before


def test_a_failure_while_renaming_leaves_no_temp_files(sample_dir, tmp_path, monkeypatch):
    real_replace = os.replace

    def failing_replace(src, dst, **dir_fds):
        if str(dst).endswith("manifest.json"):
            raise OSError(5, "Input/output error")
        return real_replace(src, dst, **dir_fds)

    monkeypatch.setattr(writer.os, "replace", failing_replace)
    with pytest.raises(OSError):
        export_sample(sample_dir, tmp_path / "out")
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert not (tmp_path / "out" / "manifest.json").exists()  # the manifest is the mark of a finished export


def test_copying_falls_back_when_the_kernel_cannot_copy(sample_dir, tmp_path, monkeypatch):
    def unsupported(*args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(bytecopy, "LONG_LINE", 1)  # every line is copied kernel-side
    monkeypatch.setattr(bytecopy.os, "copy_file_range", unsupported)
    export_sample(sample_dir, tmp_path / "out")
    assert_every_sample_line_written(sample_dir, tmp_path / "out")


def test_the_manifest_describes_what_was_written(sample_dir, tmp_path):
    data, plan, manifest = export_sample(sample_dir, tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == manifest
    assert on_disk["version"] == 1 and on_disk["metric"] == "mean_reward" and on_disk["mode"] == "percentile"
    assert on_disk["params"] == {
        "k": 1,
        "pass_threshold": 0.5,
        "scores": "reward[].score",
        "scores_detected": True,
        "group_by": [],
        "layout": "one line per prompt",
    }
    assert [b["difficulty_rank"] for b in on_disk["buckets"]] == [0, 1, 2]
    assert [b["name"] for b in on_disk["buckets"]] == ["easy", "medium", "hard"]
    values = data.table()["mean_reward"].to_numpy()
    ids = plan.assign(values)
    for rank, bucket in enumerate(on_disk["buckets"]):
        assert bucket["count"] == bucket["lines"] == int((ids == rank).sum())
        assert bucket["min"] == values[ids == rank].min() and bucket["max"] == values[ids == rank].max()
    assert on_disk["buckets"][0]["min"] > on_disk["buckets"][2]["max"]  # easy really holds the easiest
    assert on_disk["totals"]["files"] == len(list(sample_dir.glob("*.jsonl")))
    assert sum(i["lines"] for i in on_disk["inputs"]) == on_disk["totals"]["lines"]
    assert np.isclose(sum(b["share"] for b in on_disk["buckets"]), 1.0)


@pytest.mark.parametrize("fsync, flushes", [(True, True), (False, False)])
def test_files_are_flushed_to_disk_unless_asked_not_to(sample_dir, tmp_path, monkeypatch, fsync, flushes):
    flushed = []
    real_fsync = os.fsync
    monkeypatch.setattr(writer.os, "fsync", lambda fd: flushed.append(fd) or real_fsync(fd))
    started = []
    monkeypatch.setattr(writer, "start_writeback", started.append)
    _, _, manifest = export_sample(sample_dir, tmp_path / "out", fsync=fsync)
    # every bucket file, the difficulty table, the manifest, the journal, the directory with the journal and with
    # the renames; or nothing
    assert len(flushed) == (len(manifest["buckets"]) + 5 if flushes else 0)
    # ... and the bucket files' writing to the disk started as they are copied, or left to the kernel
    assert set(started) == (set(flushed[: len(manifest["buckets"])]) if flushes else set())


def test_progress_is_reported_from_the_calling_thread_and_reaches_the_total(sample_dir, tmp_path):
    import threading

    seen = []
    export_sample(
        sample_dir,
        tmp_path / "out",
        progress=lambda done, total: seen.append((done, total, threading.current_thread())),
    )
    assert seen and all(thread is threading.main_thread() for _, _, thread in seen)
    assert [done for done, _, _ in seen] == sorted(done for done, _, _ in seen)
    assert seen[-1][0] == seen[-1][1] > 0


def mixed_input(folder: Path) -> Path:
    """Lines of many lengths, a BOM, CRLF lines, a bad line, a .gz file and a last line without its newline."""
    lines = [rollout_line([i % 3 / 2, (i * 7) % 5 / 4], prompt="x" * (i * 37 % 300)) for i in range(60)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines[:20]) + b"\nnot json\n")
    (folder / "b.jsonl").write_bytes(b"\r\n".join(lines[20:35]) + b"\r\n" + b"\n".join(lines[35:45]))
    (folder / "c.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines[45:]) + b"\n"))
    return folder


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"order": "difficulty"},
        {"cumulative": True, "val_fraction": 0.3},
        {"order": "difficulty", "cumulative": True},
    ],
)
def test_the_files_are_the_same_whatever_the_window_slice_and_long_line_sizes(tmp_path, monkeypatch, options):
    """Tiny windows, tasks and long-line limits cut lines every which way; the bytes written must not change."""
    folder = mixed_input(tmp_path / "in")
    data = bucketing.load(folder)
    plan = bucketing.percentile_plan(data.values("mean_reward", bucketing.Params()), "mean_reward", 3)
    bucketing.export(data, plan, tmp_path / "usual", **options)
    expected = jsonl_files(tmp_path / "usual")
    assert sum(len(b.splitlines()) for name, b in expected.items() if "/" not in name) == 61
    for window, long_line, slice_bytes in [(64, 48, 100), (256, 1 << 20, 1), (1 << 20, 200, 700), (512, 1, 1)]:
        monkeypatch.setattr(bytecopy, "WINDOW", window)
        monkeypatch.setattr(bytecopy, "LONG_LINE", long_line)
        monkeypatch.setattr(bytecopy, "SLICE", slice_bytes)
        out = tmp_path / f"w{window}-{long_line}-{slice_bytes}"
        bucketing.export(data, plan, out, **options)
        assert jsonl_files(out) == expected, out.name


def test_a_disk_too_small_for_the_files_fails_before_copying(sample_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    export_sample(sample_dir, out)
    before = files_in(out)

    def full(fd, mode, offset, length):
        ctypes.set_errno(errno.ENOSPC)
        return -1

    monkeypatch.setattr(bytecopy, "_fallocate", full)
    monkeypatch.setattr(bytecopy.os, "pwritev", None)  # nothing may be written once the space is known missing
    with pytest.raises(OSError, match="No space left"):
        export_sample(sample_dir, out, overwrite=True)
    assert files_in(out) == before


def test_a_file_system_without_preallocation_still_gets_every_line(sample_dir, tmp_path, monkeypatch):
    def unsupported(fd, mode, offset, length):
        ctypes.set_errno(errno.EOPNOTSUPP)
        return -1

    monkeypatch.setattr(bytecopy, "_fallocate", unsupported)
    export_sample(sample_dir, tmp_path / "out")
    assert_every_sample_line_written(sample_dir, tmp_path / "out")


def test_short_writes_are_continued_where_they_stopped(tmp_path, monkeypatch):
    real = os.pwritev

    def at_most_five_bytes(fd, buffers, position):
        data = b"".join(bytes(b) for b in buffers)[:5]
        return real(fd, [data], position)

    monkeypatch.setattr(bytecopy.os, "pwritev", at_most_five_bytes)
    monkeypatch.setattr(bytecopy, "_IOV_MAX", 2)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        bytecopy.pwrite_all(fd, [b"abc", memoryview(b"defghij"), b"\n", b"", b"klmnopqrstu"], 3)
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"\0\0\0abcdefghij\nklmnopqrstu"


def test_overwrite_removes_only_export_files_its_earlier_manifest_lists_inside_the_folder(sample_dir, tmp_path):
    """A manifest is only a file: one that names files outside, folders or non-.jsonl files deletes none of them."""
    out, outside = tmp_path / "out", tmp_path / "outside.jsonl"
    export_sample(sample_dir, out)
    outside.write_bytes(b"{}\n")
    (out / "sub").mkdir()
    (out / "sub" / "notes.txt").write_bytes(b"mine\n")
    (out / "old.jsonl").write_bytes(b"{}\n")
    (out / "link.jsonl").symlink_to(outside)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"] += [
        {"file": name} for name in ["../outside.jsonl", str(outside), "sub", "sub/notes.txt", "link.jsonl", "old.jsonl"]
    ]
    (out / "manifest.json").write_text(json.dumps(manifest))
    export_sample(sample_dir, out, overwrite=True)
    assert (
        outside.read_bytes() == b"{}\n" and (out / "sub" / "notes.txt").exists() and (out / "link.jsonl").is_symlink()
    )
    assert not (out / "old.jsonl").exists()  # listed, ours to replace, not written this time
