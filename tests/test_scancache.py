"""The scan cache (bucketing.scancache): a reload reads only new or changed files, and never trusts an entry for a
file that changed, a damaged entry, another version's, or a link."""

from __future__ import annotations

import os
import zlib

import msgspec
import numpy as np
import pytest

import bucketing
from bucketing import dataset, scancache
from examples.make_rollouts import make_run

from .conftest import rollout_line, write_lines


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The cache in a folder of the test's; files written a moment ago count as settled (one test says not)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(scancache.ENV, str(folder))
    monkeypatch.setattr(scancache, "SETTLED_NS", -(10**12))
    return folder


@pytest.fixture
def scans(monkeypatch):
    """The files the loader scans, in order (a cached one is not among them)."""
    scanned: list[str] = []
    real = dataset.scan_chunk

    def counting(chunk):
        scanned.append(chunk.file.rel)
        return real(chunk)

    monkeypatch.setattr(dataset, "scan_chunk", counting)
    return scanned


def same(one: bucketing.Dataset, other: bucketing.Dataset) -> None:
    assert one.totals == other.totals and one.skipped_lines == other.skipped_lines
    for key in one.line_columns:
        assert (one.line_columns[key] == other.line_columns[key]).all(), key
    assert (one.scores.flat == other.scores.flat).all() and (one.scores.counts == other.scores.counts).all()
    assert one.table().equals(other.table())


def run_folder(tmp_path):
    run = tmp_path / "run"
    make_run(run, prompts=40, steps=4, seed=1)
    write_lines(run / "5.jsonl", [b'{"input": "q", "output": "a", "score": 1, "step": 5}', b"{oops"])
    return run


def test_a_reload_reads_no_file_again_and_gives_the_same_data(tmp_path, cache, scans):
    run = run_folder(tmp_path)
    first = bucketing.load(run, cache=True)
    assert sorted(scans) == sorted(p.name for p in run.iterdir())
    scans.clear()
    again = bucketing.load(run, cache=True)
    assert scans == []
    same(again, first)
    same(again, bucketing.load(run))  # as a load without the cache reads it


def test_a_new_step_file_is_the_only_one_read(tmp_path, cache, scans):
    run = run_folder(tmp_path)
    bucketing.load(run, cache=True)
    make_run(tmp_path / "more", prompts=40, steps=6, seed=1)
    os.replace(tmp_path / "more" / "6.jsonl", run / "6.jsonl")
    scans.clear()
    grown = bucketing.load(run, cache=True)
    assert scans == ["6.jsonl"]
    same(grown, bucketing.load(run))


@pytest.mark.parametrize("change", ["append", "same size and time"])
def test_a_changed_file_is_read_again_whole(tmp_path, cache, scans, change):
    run = tmp_path / "run"
    path = write_lines(run / "1.jsonl", [rollout_line([1, 0]), rollout_line([0, 0])])
    bucketing.load(run, cache=True)
    before = os.stat(path)
    if change == "append":
        with open(path, "ab") as f:
            f.write(rollout_line([1, 1]) + b"\n")
    else:  # other bytes, the same size, the modification time put back: only the change time tells
        path.write_bytes(path.read_bytes().replace(b'"score": 0}, {"score": 0', b'"score": 1}, {"score": 1'))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert os.stat(path).st_size == before.st_size and os.stat(path).st_mtime_ns == before.st_mtime_ns
    scans.clear()
    changed = bucketing.load(run, cache=True)
    assert scans == ["1.jsonl"]
    same(changed, bucketing.load(run))


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"garbage"),
        lambda p: p.write_bytes(p.read_bytes()[:-3]),  # cut short
        lambda p: p.write_bytes(p.read_bytes() + b"x"),  # a byte too many
        lambda p: p.write_bytes(scancache.MAGIC + (1 << 62).to_bytes(8, "little")),  # a header too large
        lambda p: p.write_bytes(p.read_bytes()[:-1] + bytes([p.read_bytes()[-1] ^ 1])),  # one bit: the checksum
        lambda p: p.write_bytes(p.read_bytes()[:-40]),  # a whole line's row missing: the sizes disagree
    ],
)
def test_a_damaged_entry_is_a_miss_and_is_written_anew(tmp_path, cache, scans, damage):
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [rollout_line([1, 0]), b"{oops", rollout_line([0, 0])])
    first = bucketing.load(run, cache=True)
    (entry,) = [p for p in cache.rglob("*") if p.is_file()]
    damage(entry)
    scans.clear()
    same(bucketing.load(run, cache=True), first)
    assert scans == ["1.jsonl"]
    scans.clear()
    bucketing.load(run, cache=True)
    assert scans == []  # the entry was written again, whole


def test_another_version_s_entries_are_not_read(tmp_path, cache, scans, monkeypatch):
    run = run_folder(tmp_path)
    bucketing.load(run, cache=True)
    monkeypatch.setattr(scancache, "__version__", "0.0.0-other")
    scancache.scanner_version.cache_clear()
    scans.clear()
    bucketing.load(run, cache=True)
    assert len(scans) == len(list(run.iterdir()))


def test_an_entry_that_is_a_link_is_not_followed(tmp_path, cache, scans):
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [rollout_line([1, 0])])
    first = bucketing.load(run, cache=True)
    (entry,) = [p for p in cache.rglob("*") if p.is_file()]
    elsewhere = tmp_path / "planted"
    os.replace(entry, elsewhere)
    entry.symlink_to(elsewhere)
    scans.clear()
    same(bucketing.load(run, cache=True), first)
    assert scans == ["1.jsonl"]


def test_other_layouts_and_join_fields_have_entries_of_their_own(tmp_path, cache, scans):
    run = run_folder(tmp_path)
    pooled = bucketing.load(run, cache=True)  # verl: grouped by input
    scans.clear()
    per_file = bucketing.load(run, cache=True, group_by="input,@file", scores="score")
    assert len(scans) == len(list(run.iterdir())) and len(per_file.scores) > len(pooled.scores)
    scans.clear()
    joined = bucketing.load(run, cache=True, join_on="step")
    assert len(scans) == len(list(run.iterdir()))
    scans.clear()
    again = bucketing.load(run, cache=True, join_on="step")
    assert scans == [] and (again.join_keys == joined.join_keys).all()
    assert (np.asarray(again.join_kinds) == np.asarray(joined.join_kinds)).all()


def test_a_file_changed_just_before_its_scan_is_not_kept(tmp_path, cache, scans, monkeypatch):
    """Within one tick of the clock a change leaves the times as they were: such a scan is not trusted later."""
    monkeypatch.setattr(scancache, "SETTLED_NS", 2_000_000_000)
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [rollout_line([1, 0])])
    bucketing.load(run, cache=True)
    assert not [p for p in cache.rglob("*") if p.is_file()]
    old = os.stat(run / "1.jsonl").st_mtime_ns - 10 * 10**9
    os.utime(run / "1.jsonl", ns=(old, old))  # the change time stays recent: still not kept
    bucketing.load(run, cache=True)
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_a_cache_folder_others_may_write_is_not_used(tmp_path, cache, scans):
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [rollout_line([1, 0])])
    cache.mkdir(mode=0o700)
    cache.chmod(0o777)
    bucketing.load(run, cache=True)
    assert not [p for p in cache.rglob("*") if p.is_file()]
    cache.chmod(0o700)
    bucketing.load(run, cache=True)
    scans.clear()
    bucketing.load(run, cache=True)
    assert scans == []
    (sub,) = [p for p in cache.iterdir() if p.is_dir()]
    sub.chmod(0o777)  # a subfolder others may write: its entries are not read
    scans.clear()
    bucketing.load(run, cache=True)
    assert scans == ["1.jsonl"]


def test_a_planted_fifo_or_forged_entry_is_a_miss(tmp_path, cache, scans):
    run = tmp_path / "run"
    write_lines(run / "1.jsonl", [rollout_line([1, 0]), rollout_line([0.5])])
    first = bucketing.load(run, cache=True)
    (entry,) = [p for p in cache.rglob("*") if p.is_file()]
    good = entry.read_bytes()
    entry.unlink()
    os.mkfifo(entry)  # opened without waiting for a writer
    scans.clear()
    same(bucketing.load(run, cache=True), first)
    assert scans == ["1.jsonl"]
    entry.unlink(missing_ok=True)
    header_length = int.from_bytes(good[len(scancache.MAGIC) : len(scancache.MAGIC) + 8], "little")
    start = len(scancache.MAGIC) + 8
    header = msgspec.msgpack.decode(good[start : start + header_length], type=scancache._Header)
    body = bytearray(good[start + header_length :])
    body[0:8] = (10**6).to_bytes(8, "little", signed=True)  # the first line's number beyond the file's lines
    header.crc = zlib.crc32(bytes(body))  # a forger recomputes the checksum
    encoded = msgspec.msgpack.encode(header)
    entry.write_bytes(scancache.MAGIC + len(encoded).to_bytes(8, "little") + encoded + bytes(body))
    scans.clear()
    same(bucketing.load(run, cache=True), first)
    assert scans == ["1.jsonl"]


def test_a_file_name_that_is_not_utf8_is_cached_like_any(tmp_path, cache, scans):
    run = tmp_path / "run"
    run.mkdir()
    (run / os.fsdecode(b"bad\xff.jsonl")).write_bytes(rollout_line([1, 0]) + b"\n")
    first = bucketing.load(run, cache=True)
    scans.clear()
    same(bucketing.load(run, cache=True), first)
    assert scans == []
