"""The file system as an attacker (or a careless user) sets it up: links out of the allowed roots,
a hostile earlier manifest or journal, a folder swapped for a link mid-export, kills at every rename,
outputs that land in the input, more input files than open files allowed, very deep folders.

Each test here failed on the code before these were fixed (see the issue's closing note).
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import bucketing
from bucketing import writer
from bucketing.errors import BucketingError
from bucketing.journal import JOURNAL, recover
from bucketing.outputs import TEMP_PREFIX, is_output_name
from bucketing.safedir import Folder
from bucketing.sources import find_inputs

from .conftest import ROOT, SAMPLE, jsonl_files, one_line, rollout_line, run_cli, run_process, write_lines

SECRET = b"SECRET-OUTSIDE-TEXT"


def every_file(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (links not followed): its relative path -> bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and not any(p.is_symlink() for p in path.parents):
            found[path.relative_to(folder).as_posix()] = path.read_bytes()
    return found


def small_input(folder: Path) -> Path:
    """Three files of four rollouts each, with different scores."""
    for part in range(3):
        write_lines(
            folder / f"part{part}.jsonl",
            [rollout_line([i / 12, (i % 4) / 4], prompt=f"p{i}") for i in range(part * 4, part * 4 + 4)],
        )
    return folder


@pytest.fixture
def places(tmp_path) -> tuple[Path, Path]:
    """An allowed folder and an outside one that holds a secret."""
    allowed, outside = (tmp_path / "allowed").resolve(), (tmp_path / "outside").resolve()
    outside.mkdir()
    write_lines(outside / "secret.jsonl", [rollout_line([1], prompt=SECRET.decode())])
    allowed.mkdir()
    return allowed, outside


# --- 1. a link inside an allowed folder is not followed out ----------------------------------


def test_a_file_link_pointing_out_of_the_roots_is_passed_over_with_a_message(places):
    allowed, outside = places
    small_input(allowed / "in")
    (allowed / "in" / "leak.jsonl").symlink_to(outside / "secret.jsonl")
    files, warnings = find_inputs(allowed / "in", roots=[allowed])
    assert "leak.jsonl" not in [f.rel for f in files]
    assert any("leak.jsonl" in w and "outside the allowed folders" in w for w in warnings)
    data = bucketing.load(allowed / "in", roots=[allowed], workers=1)
    assert len(data.files) == 3 and any("leak.jsonl" in w for w in data.warnings)
    # without roots (the command line), the link is an input like any other
    assert "leak.jsonl" in [f.rel for f in find_inputs(allowed / "in")[0]]


def test_a_folder_link_pointing_out_is_not_walked(places):
    allowed, outside = places
    small_input(allowed / "in")
    (allowed / "in" / "more").symlink_to(outside)
    files, warnings = find_inputs(allowed / "in", roots=[allowed])
    assert all(not f.rel.startswith("more/") for f in files)
    assert any(w.startswith("skipped more:") and "outside" in w for w in warnings)


def test_a_link_inside_the_roots_is_still_followed(places):
    allowed, _ = places
    small_input(allowed / "data")
    (allowed / "in").mkdir()
    (allowed / "in" / "alias.jsonl").symlink_to(allowed / "data" / "part0.jsonl")
    files, warnings = find_inputs(allowed / "in", roots=[allowed])
    assert [f.rel for f in files] == ["alias.jsonl"] and warnings == []


def test_a_file_swapped_for_a_link_after_loading_is_never_read(places, tmp_path):
    """Same size and time as the file that was loaded: only its identity tells it apart."""
    allowed, outside = places
    folder = small_input(allowed / "in")
    data = bucketing.load(folder, roots=[allowed], workers=1)
    victim = folder / "part0.jsonl"
    stolen = outside / "same-size.jsonl"
    stolen.write_bytes(SECRET.ljust(victim.stat().st_size, b"x"))
    os.utime(stolen, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns))
    victim.unlink()
    victim.symlink_to(stolen)
    os.utime(victim, ns=(stolen.stat().st_atime_ns, stolen.stat().st_mtime_ns), follow_symlinks=False)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 2)
    with pytest.raises(BucketingError, match="not the file that was loaded"):
        bucketing.export(data, plan, allowed / "out", roots=[allowed])
    assert not any(SECRET in body for body in every_file(allowed / "out").values())
    with pytest.raises(BucketingError, match="not the file that was loaded"):
        importlib.import_module("bucketing.preview").preview(data, [0])


def test_a_uri_is_refused_where_roots_are_given(places):
    """file:// (or s3://) would read any file, far from every allowed folder."""
    allowed, outside = places
    with pytest.raises(BucketingError, match="is a URI"):
        find_inputs(f"file://{outside}", roots=[allowed])
    with pytest.raises(BucketingError, match="is a URI"):
        bucketing.load(f"file://{outside / 'secret.jsonl'}", roots=[allowed], workers=1)


# --- 2. export never writes through a link ------------------------------------------------------


@pytest.mark.parametrize(
    "linked, flags",
    [
        ("cumulative", {"cumulative": True}),
        ("train", {"val_fraction": 0.3}),
        ("val", {"val_fraction": 0.3}),
    ],
)
def test_an_export_into_a_linked_sub_folder_is_refused_and_writes_nothing_outside(places, linked, flags):
    allowed, outside = places
    data = bucketing.load(small_input(allowed / "in"), workers=1)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 2)
    (allowed / "out").mkdir()
    (outside / "cum").mkdir()
    (allowed / "out" / linked).symlink_to(outside / "cum")
    with pytest.raises(BucketingError, match="is a link"):
        bucketing.export(data, plan, allowed / "out", **flags)
    assert list((outside / "cum").iterdir()) == []
    assert every_file(allowed / "out") == {}


def test_the_command_line_refuses_a_linked_sub_folder_in_one_line(places):
    allowed, outside = places
    (allowed / "out").mkdir()
    (allowed / "out" / "cumulative").symlink_to(outside)
    result = run_cli("-i", SAMPLE, "-o", allowed / "out", "--cumulative")
    assert result.returncode == 2 and one_line(result.stderr) and "is a link" in result.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["secret.jsonl"]


def test_an_output_folder_that_is_a_link_out_of_the_roots_is_refused(places):
    allowed, outside = places
    data = bucketing.load(small_input(allowed / "in"), workers=1)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 2)
    (allowed / "out").symlink_to(outside)
    with pytest.raises(BucketingError):
        bucketing.export(data, plan, allowed / "out", roots=[allowed])
    with pytest.raises(BucketingError, match="outside"):
        bucketing.export(data, plan, outside / "new", roots=[allowed])
    assert sorted(p.name for p in outside.iterdir()) == ["secret.jsonl"]


# --- 3. an earlier manifest never makes --overwrite delete outside the output ------------------


def hostile_manifest(out: Path, files: list[str]) -> None:
    manifest = {
        "version": 1,
        "files": [{"file": name} for name in files],
        "buckets": [{"file": name} for name in files],
        "skipped_file": files[0],
    }
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_overwrite_never_deletes_through_a_link_named_by_the_earlier_manifest(places):
    allowed, outside = places
    victim = outside / "victim" / "sub"
    victim.mkdir(parents=True)
    (victim / "model_data.jsonl").write_bytes(b"precious\n")
    out = allowed / "out"
    out.mkdir()
    (out / "lnk").symlink_to(outside / "victim")
    (out / "mine").mkdir()
    (out / "mine" / "notes.jsonl").write_bytes(b"user file\n")
    (out / "train").mkdir()
    (out / "train" / "keep.txt").write_bytes(b"user file\n")
    hostile_manifest(
        out,
        [
            "lnk/sub/model_data.jsonl",
            str(victim / "model_data.jsonl"),
            "../outside/x.jsonl",
            "mine/notes.jsonl",
            "train/keep.txt",
            "lnk/../mine/notes.jsonl",
        ],
    )
    result = run_cli("-i", SAMPLE, "-o", out, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert (victim / "model_data.jsonl").read_bytes() == b"precious\n"
    assert (out / "mine" / "notes.jsonl").read_bytes() == b"user file\n"
    assert (out / "train" / "keep.txt").read_bytes() == b"user file\n"
    assert (out / "lnk").is_symlink()


def test_overwrite_removes_only_regular_files_of_the_export_s_own_names(tmp_path):
    out = tmp_path / "out"
    assert run_cli("-i", SAMPLE, "-o", out, "-n", "5", "--cumulative").returncode == 0
    (out / "cumulative" / "mine.txt").write_bytes(b"user\n")
    assert run_cli("-i", SAMPLE, "-o", out, "-n", "3", "--overwrite").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "cumulative",
        "difficulty.parquet",
        "easy.jsonl",
        "hard.jsonl",
        "manifest.json",
        "medium.jsonl",
    ]
    assert sorted(p.name for p in (out / "cumulative").iterdir()) == ["mine.txt"]  # a folder still in use stays


def test_a_huge_or_deeply_nested_earlier_manifest_names_nothing_and_breaks_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    result = run_cli("-i", SAMPLE, "-o", out, "--overwrite")
    assert result.returncode == 0 and "Traceback" not in result.stderr


# --- 4. a folder swapped for a link between the check and the write --------------------------


@pytest.mark.parametrize("swapped", ["", "cumulative"])
def test_swapping_the_output_folder_for_a_link_mid_export_sends_nothing_outside(places, monkeypatch, swapped):
    allowed, outside = places
    data = bucketing.load(small_input(allowed / "in"), workers=1)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 2)
    out = allowed / "out"
    (out / "cumulative").mkdir(parents=True)
    (outside / "trap").mkdir()
    real_check = writer.check_targets

    def swap_then_check(*args, **kwargs):  # after the folder was opened and checked: the attacker moves
        victim = out / swapped if swapped else out
        victim.rename(allowed / "moved")
        victim.symlink_to(outside / "trap")
        return real_check(*args, **kwargs)

    monkeypatch.setattr(writer, "check_targets", swap_then_check)
    try:
        bucketing.export(data, plan, out, cumulative=True, roots=[allowed])
    except BucketingError as error:
        assert "link" in str(error)
    assert list((outside / "trap").iterdir()) == []


def test_dot_dot_after_a_link_is_where_the_export_writes_and_where_it_is_checked(tmp_path):
    """``in/lnk/..`` is lnk's parent on the disk: the check and the writes must agree on it."""
    data = bucketing.load(small_input(tmp_path / "in"), workers=1)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 2)
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "lnk").symlink_to(tmp_path / "elsewhere" / "sub")
    before = every_file(tmp_path / "in")
    bucketing.export(data, plan, tmp_path / "in" / "lnk" / "..")
    assert every_file(tmp_path / "in") == before  # not into the input, as the lexical path would say
    assert (tmp_path / "elsewhere" / "manifest.json").is_file()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "back").symlink_to(tmp_path / "in")
    (tmp_path / "in" / "deeper").mkdir()
    with pytest.raises(BucketingError, match="inside the input"):  # other/back/deeper/.. is the input itself
        bucketing.export(data, plan, tmp_path / "other" / "back" / "deeper" / "..")
    assert every_file(tmp_path / "in") == before


def test_with_roots_dot_dot_after_a_link_is_refused_where_it_lands_in_the_input(places):
    allowed, outside = places
    data = bucketing.load(small_input(allowed / "in"), roots=[allowed], workers=1)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 2)
    (allowed / "in" / "lnk").symlink_to(outside)
    before = every_file(allowed / "in")
    with pytest.raises(BucketingError, match="inside the input"):  # read below the root as in/lnk/.. = in
        bucketing.export(data, plan, allowed / "in" / "lnk" / "..", roots=[allowed])
    assert every_file(allowed / "in") == before
    assert sorted(p.name for p in outside.iterdir()) == ["secret.jsonl"]


def test_a_parent_swapped_for_a_link_into_the_input_after_the_check_is_refused(tmp_path, monkeypatch):
    data = bucketing.load(small_input(tmp_path / "in"), workers=1)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 2)
    (tmp_path / "parent" / "out").mkdir(parents=True)
    (tmp_path / "in" / "out").mkdir()
    before = every_file(tmp_path / "in")
    real_check = writer.check_unchanged

    def swap_then_check(dataset):  # after the first check, before the folder is opened
        (tmp_path / "parent").rename(tmp_path / "moved")
        (tmp_path / "parent").symlink_to(tmp_path / "in")
        return real_check(dataset)

    monkeypatch.setattr(writer, "check_unchanged", swap_then_check)
    with pytest.raises(BucketingError, match="inside the input"):
        bucketing.export(data, plan, tmp_path / "parent" / "out")
    assert every_file(tmp_path / "in") == before


# --- 7. a kill at any rename of a replacing export: the old or the new export, never a mix ----------------


KILL_AT = """
import os, signal
real, calls = os.replace, [0]
def replace(*args, **kwargs):
    calls[0] += 1
    if calls[0] == {at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
os.replace = replace
"""
OLD = ("-m", "variance", "-n", "5", "--cumulative", "--val-fraction", "0.2")
NEW = ("-m", "mean_reward", "-n", "3")


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[dict, dict]:
    """What the old and the new export write, each alone in a folder."""
    made = []
    for flags in (OLD, NEW):
        out = tmp_path_factory.mktemp("reference") / "out"
        assert run_cli("-i", SAMPLE, "-o", out, *flags).returncode == 0
        made.append(every_file(out))
    return made[0], made[1]


@pytest.mark.slow
@pytest.mark.parametrize("at", range(1, 5))  # the new export renames 3 buckets, then the manifest
def test_a_kill_at_every_rename_leaves_the_whole_old_or_the_whole_new_export(tmp_path, exports, at):
    old, new = exports
    out = tmp_path / "out"
    assert run_cli("-i", SAMPLE, "-o", out, *OLD).returncode == 0
    plugin = tmp_path / "kill.py"
    plugin.write_text(KILL_AT.format(at=at))
    killed = run_process("-i", SAMPLE, "-o", out, *NEW, "--overwrite", "--plugin", plugin)  # a process to kill
    assert killed.returncode == -signal.SIGKILL
    assert (out / JOURNAL).exists()  # the kill came after the journal: the next run rolls forward
    with Folder.open(out) as folder:
        assert recover(folder, set())
    after = {name: body for name, body in every_file(out).items() if not name.split("/")[-1].startswith(TEMP_PREFIX)}
    assert after == new, sorted(set(after) ^ set(new))
    again = run_cli("-i", SAMPLE, "-o", out, *NEW, "--overwrite")  # the next run: cleans up, writes the same
    assert again.returncode == 0 and every_file(out) == new


@pytest.mark.slow
def test_a_kill_before_the_journal_leaves_the_old_export(tmp_path, exports):
    old, _ = exports
    out = tmp_path / "out"
    assert run_cli("-i", SAMPLE, "-o", out, *OLD).returncode == 0
    plugin = tmp_path / "kill.py"
    plugin.write_text(KILL_AT.format(at=1).replace("os.replace = replace", "os.rename = replace"))
    assert run_process("-i", SAMPLE, "-o", out, *NEW, "--overwrite", "--plugin", plugin).returncode == -signal.SIGKILL
    assert not (out / JOURNAL).exists()
    assert {n: b for n, b in every_file(out).items() if not n.split("/")[-1].startswith(TEMP_PREFIX)} == old


def test_a_failed_rename_rolls_back_to_the_old_export(tmp_path, exports, monkeypatch):
    old, _ = exports
    out = tmp_path / "out"
    assert run_cli("-i", SAMPLE, "-o", out, *OLD).returncode == 0
    real, calls = os.replace, [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(5, "Input/output error")
        return real(*args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)
    data = bucketing.load(SAMPLE, workers=1)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 3)
    with pytest.raises(OSError):
        bucketing.export(data, plan, out, overwrite=True)
    assert every_file(out) == old


def test_a_planted_journal_is_refused_and_touches_nothing(places):
    allowed, outside = places
    out = allowed / "out"
    out.mkdir()
    (out / JOURNAL).write_text(
        json.dumps(
            {
                "version": 1,
                "state": "back",
                "stale": [],
                "moves": [{"temp": TEMP_PREFIX + "x", "final": "../outside/secret.jsonl", "inode": 1, "backup": None}],
            }
        )
    )
    result = run_cli("-i", SAMPLE, "-o", out, "--overwrite")
    assert result.returncode == 2 and one_line(result.stderr) and JOURNAL in result.stderr
    assert (outside / "secret.jsonl").exists()


def plant_journal(out: Path, state: str, moves: list[dict], owner: int | None = None) -> None:
    (out / JOURNAL).write_text(json.dumps({"version": 1, "state": state, "stale": [], "moves": moves}))
    if owner is not None:
        os.chown(out / JOURNAL, owner, owner)


NOBODY = 65534  # another user (the tests run as root, who may give a file away)


@pytest.mark.parametrize("owner", [NOBODY, None])
def test_a_planted_journal_never_removes_an_input_or_another_s_file(tmp_path, owner):
    """The journal names, with their inodes, an input and the user's own file: undoing it would remove both."""
    out = tmp_path / "out"
    small_input(out / "train")
    (out / "notes.jsonl").write_bytes(b"my notes\n")
    victims = ["train/part0.jsonl"] + (["notes.jsonl"] if owner else [])  # owned by us: only the input is protected
    plant_journal(
        out,
        "back",
        [
            {"temp": f"{TEMP_PREFIX}x{i}", "final": name, "inode": (out / name).stat().st_ino, "backup": None}
            for i, name in enumerate(victims)
        ],
        owner,
    )
    before = every_file(out)
    result = run_cli("-i", out / "train", "-o", out, "-n", "2")
    assert result.returncode == 2 and one_line(result.stderr) and "not left by an export of yours" in result.stderr
    assert every_file(out) == before


def test_a_planted_forward_journal_never_renames_another_s_file_over_an_input(tmp_path):
    out = tmp_path / "out"
    small_input(out / "train")
    (out / f"{TEMP_PREFIX}evil").write_bytes(b"ATTACKER\n")
    os.chown(out / f"{TEMP_PREFIX}evil", NOBODY, NOBODY)
    plant_journal(
        out, "forward", [{"temp": f"{TEMP_PREFIX}evil", "final": "train/part1.jsonl", "inode": 1, "backup": None}]
    )
    before = every_file(out)
    result = run_cli("-i", out / "train", "-o", out, "-n", "2")
    assert result.returncode == 2 and "not left by an export of yours" in result.stderr
    assert every_file(out) == before


def test_a_manifest_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "manifest.json")
    # in a process with a timeout: it hung before
    result = run_process("-i", SAMPLE, "--dry-run", "--from-manifest", tmp_path / "manifest.json", timeout=60)
    assert result.returncode == 2 and one_line(result.stderr) and "not a regular file" in result.stderr


def test_a_missing_input_is_named_before_anything_about_the_output(tmp_path):
    result = run_cli("-i", tmp_path / "missing", "-o", tmp_path / "x")
    assert result.returncode == 2 and one_line(result.stderr) and "missing can't be read" in result.stderr


def test_a_manifest_name_must_end_in_a_real_dot_json():
    assert not is_output_name("xmanifest/json") and is_output_name("p_manifest.json")


def test_a_journal_that_cannot_be_written_leaves_the_old_export_and_no_temp_file(tmp_path, monkeypatch):
    data = bucketing.load(small_input(tmp_path / "in"), workers=1)
    out = tmp_path / "out"
    bucketing.export(data, bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 2), out)
    before = every_file(out)
    real_rename = Folder.rename

    def full_disk_at_the_journal(self, source, target):
        if target == JOURNAL:
            raise OSError(28, "No space left on device")
        return real_rename(self, source, target)

    monkeypatch.setattr(Folder, "rename", full_disk_at_the_journal)
    with pytest.raises(OSError):
        bucketing.export(
            data, bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 3), out, overwrite=True
        )
    assert every_file(out) == before  # no temp file, no journal, the old export whole


def test_a_file_swapped_while_the_split_hashes_it_is_named_for_what_happened(tmp_path):
    """The split's own message is for a file that got shorter; any other is passed on as it is."""
    folder = tmp_path / "in"
    write_lines(folder / "a.jsonl", [json.dumps({"reward": [{"score": i / 9}]}).encode() for i in range(9)])
    data = bucketing.load(folder, workers=1)
    assert data.keys is None  # ungrouped: the split hashes each line's bytes
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 2)
    victim = folder / "a.jsonl"
    twin = tmp_path / "twin.jsonl"
    twin.write_bytes(victim.read_bytes())
    os.utime(twin, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns))
    twin.replace(victim)
    with pytest.raises(BucketingError, match="not the file that was loaded"):
        bucketing.export(data, plan, tmp_path / "out", val_fraction=0.3)


# --- 8. outputs inside an input folder -----------------------------------------------------------------


@pytest.mark.parametrize("flags", [("--val-fraction", "0.2"), ("--cumulative",)])
def test_an_output_file_landing_inside_the_input_folder_is_refused(tmp_path, flags):
    inputs = tmp_path / "d" / ("train" if flags[0] == "--val-fraction" else "cumulative")
    shutil.copytree(SAMPLE, inputs)
    before = every_file(tmp_path)
    result = run_cli("-i", inputs, "-o", tmp_path / "d", *flags)
    assert result.returncode == 2 and one_line(result.stderr) and "inside the input directory" in result.stderr
    assert every_file(tmp_path) == before


def test_the_command_line_refuses_an_output_inside_the_input_before_reading(tmp_path):
    inputs = tmp_path / "d" / "train"
    shutil.copytree(SAMPLE, inputs)
    result = run_cli("-i", inputs, "-o", tmp_path / "d", "--val-fraction", "0.2", "--cumulative")
    assert result.returncode == 2 and "inside the input directory" in result.stderr
    assert "Reading" not in result.stdout + result.stderr and "Found" not in result.stdout


# --- 10. more input files than open files allowed ---------------------------------------------------------


@pytest.mark.slow
def test_more_input_files_than_the_open_file_limit(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1500):
        (folder / f"f{i:04d}.jsonl").write_bytes(rollout_line([i % 7 / 7, 1]) + b"\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "bucketing", "-i", str(folder), "-o", str(tmp_path / "out"), "--val-fraction", "0.1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    written = [line for body in jsonl_files(tmp_path / "out").values() for line in body.splitlines()]
    assert len(written) == 3000  # every line in a bucket and in its train or val part


# --- 11. very deep folders ----------------------------------------------------------------------------------


def deep(root: Path, levels: int) -> Path:
    """A folder ``levels`` deep, made with relative steps (its full path may exceed PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = below
        file = os.open("deep.jsonl", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(file, rollout_line([1]) + b"\n")
        os.close(file)
    finally:
        os.close(fd)
    return root


@pytest.fixture
def deep_root(tmp_path):
    """A folder for a deep tree, removed bottom-up afterwards (pytest's own clean-up recurses, and fails)."""
    root = tmp_path / "t"
    root.mkdir()
    yield root
    fds = [os.open(root, os.O_RDONLY)]
    while True:
        try:
            fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        except FileNotFoundError:
            break
    for parent, fd in zip(fds[-2::-1], fds[:0:-1]):
        for name in os.listdir(fd):
            if name != "d":
                os.unlink(name, dir_fd=fd)
        os.close(fd)
        os.rmdir("d", dir_fd=parent)
    os.close(fds[0])


def test_a_tree_deeper_than_python_s_recursion_limit_is_walked(deep_root):
    files, warnings = find_inputs(deep(deep_root, 1200))
    assert [f.rel.count("/") for f in files] == [1200] and warnings == []


def test_a_tree_deeper_than_path_max_gets_a_warning_not_a_traceback(deep_root):
    write_lines(deep_root / "top.jsonl", [rollout_line([0, 1])])
    deep(deep_root, 2100)
    result = run_cli("-i", deep_root, "--dry-run")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "too long" in (result.stderr + result.stdout).lower()


# --- 12. a manifest value JSON can't hold stops the run before anything is written ------------------------


def test_a_manifest_that_cannot_be_written_stops_the_export_before_any_file(tmp_path, monkeypatch):
    data = bucketing.load(SAMPLE, workers=1)
    plan = bucketing.percentile_plan(data.values("mean_reward"), "mean_reward", 3)
    real = writer.build_manifest

    def broken(*args, **kwargs):
        manifest = real(*args, **kwargs)
        manifest["buckets"][0]["min"] = float("inf")
        return manifest

    monkeypatch.setattr(writer, "build_manifest", broken)
    with pytest.raises(BucketingError, match="nothing was written"):
        bucketing.export(data, plan, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
