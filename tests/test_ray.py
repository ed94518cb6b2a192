"""The Ray engine (``--engine ray``) against the local one: same lines in the same buckets, same manifest.

One Ray cluster for the whole module, started as users start one: ``ray start --head`` and a second node with
``ray start --address`` on this machine, one CPU each, token authentication (Ray's default). This process
joins it as a driver (the command line too runs in this process, on it, with test hooks that make workers
fail on cue); a command line in another process and the scaling benchmark join it by its address. Without
Ray these tests are skipped (under CI: failed).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bucketing
from bucketing import dataset, ray_engine
from examples.make_rollouts import make_rollouts

from .browser_support import free_port
from .conftest import ROOT, modules_imported_by_cli, rollout_line, run_cli, write_lines

pytestmark = pytest.mark.ray  # one xdist worker runs every Ray test: all are in this module (conftest.py)


def ray_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    """Ray's command line in ``home``, a folder without ~/.ray: the nodes take the session's token
    (tests/conftest.py), never one this machine happens to keep."""
    return subprocess.run(
        [sys.executable, "-m", "ray.scripts.scripts", *args],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> str:
    """The address of a head node and a second node, one CPU each; stopped after the module's tests."""
    port, home = free_port(), tmp_path_factory.mktemp("ray-home")
    address = f"127.0.0.1:{port}"
    node = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--object-store-memory", str(300 * 10**6)]
    try:
        head = ray_cli("start", "--head", "--port", str(port), "--include-dashboard", "false", *node, home=home)
        assert head.returncode == 0, head.stderr
        second = ray_cli("start", "--address", address, *node, home=home)
        assert second.returncode == 0, second.stderr
        yield address
    finally:
        ray_cli("stop", "--force", home=home)


@pytest.fixture(scope="module")
def faults(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module", autouse=True)
def driver(cluster, faults):
    """This process, joined to the cluster with the fault hooks of tests/ray_faults.py in every worker."""
    import ray

    ray.init(
        address=cluster,
        log_to_driver=False,
        runtime_env={
            "py_modules": [str(ROOT / "bucketing"), str(ROOT / "tests" / "ray_faults.py")],
            "env_vars": {"BUCKETING_TEST_FAULTS": str(faults)},
            "worker_process_setup_hook": "ray_faults.install",
        },
    )
    assert sum(node["Alive"] for node in ray.nodes()) == 2
    yield
    ray.shutdown()


def mixed_input(folder: Path) -> Path:
    """Generated rollouts in two files, a gzipped file, and a file of good and bad lines."""
    make_rollouts(folder / "gen", rollouts=400, files=2, seed=11)
    with gzip.open(folder / "z.jsonl.gz", "wb") as f:
        f.write(b"".join(rollout_line([i % 2, 1, 0.5]) + b"\n" for i in range(30)))
    write_lines(
        folder / "bad.jsonl",
        [rollout_line([1, 1]), b"{oops", b"", rollout_line([0]), b'{"reward": []}', rollout_line([0.25, 1]) + b"\r"],
    )
    return folder


def part_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.glob("part-*.jsonl")))


def assert_same_buckets(ray_out: Path, local_out: Path, ray_manifest: dict, local_manifest: dict) -> None:
    """Every bucket (and the skipped lines) byte-identical in input order; counts, cuts and ranges equal."""
    assert ray_manifest["cuts"] == local_manifest["cuts"] and ray_manifest["totals"] == local_manifest["totals"]
    assert ray_manifest["skipped"] == local_manifest["skipped"]
    for ours, theirs in zip(ray_manifest["buckets"], local_manifest["buckets"], strict=True):
        for key in ("name", "count", "lines", "min", "max", "lower", "upper", "difficulty_rank"):
            assert ours[key] == theirs[key], key
        assert ours["file"] == ours["name"] + "/" and ours["parts"] == sorted(
            p.name for p in (ray_out / ours["name"]).iterdir()
        )
        assert part_bytes(ray_out / ours["name"]) == (local_out / theirs["file"]).read_bytes()
    if local_manifest["skipped_file"]:
        assert part_bytes(ray_out / "_skipped") == (local_out / local_manifest["skipped_file"]).read_bytes()
    folder = lambda name: name and name.removesuffix(".jsonl") + "/"  # noqa: E731  (a file there, a folder here)
    assert ray_manifest["files"] == [{**f, "file": folder(f["file"])} for f in local_manifest["files"]]
    assert ray_manifest["skipped_file"] == folder(local_manifest["skipped_file"])
    assert (ray_manifest["cumulative"], ray_manifest["split"]) == (False, None)
    assert not [p for p in ray_out.rglob("*") if p.name.startswith(".")]  # no temp part, no staging folder


@pytest.mark.parametrize("chunk_bytes", [64 << 20, 64 << 10])  # whole files; and files cut into ranges
def test_the_ray_engine_writes_what_the_local_engine_writes(tmp_path, monkeypatch, chunk_bytes):
    data = mixed_input(tmp_path / "in")
    monkeypatch.setattr(dataset, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(ray_engine, "WRITE_SLICE", chunk_bytes)
    local = bucketing.load(data)
    remote = ray_engine.load(str(data))
    assert remote.totals == local.totals and remote.skipped_reasons() == local.skipped_reasons()
    table, values = local.table(), remote.table()["mean_reward"].to_numpy()
    assert (table["mean_reward"].to_numpy() == values).all()
    plan = bucketing.percentile_plan(values, "mean_reward", 4)
    local_manifest = bucketing.export(local, plan, tmp_path / "local", values=values)
    ray_manifest = ray_engine.export(remote, plan, str(tmp_path / "ray"), values=values)
    assert ray_manifest["engine"] == "ray"
    assert len(list((tmp_path / "ray").glob("*/part-*.jsonl"))) > len(plan.buckets)  # several tasks wrote
    assert_same_buckets(tmp_path / "ray", tmp_path / "local", ray_manifest, local_manifest)


def test_a_grouped_dump_on_ray_keeps_groups_together(tmp_path):
    make_rollouts(tmp_path / "in", rollouts=120, files=3, seed=5, layout="verl")
    local, remote = bucketing.load(tmp_path / "in"), ray_engine.load(str(tmp_path / "in"))
    assert remote.layout == local.layout and remote.totals == local.totals
    values = remote.table()["success_rate"].to_numpy()
    plan = bucketing.percentile_plan(values, "success_rate", 3)
    local_manifest = bucketing.export(local, plan, tmp_path / "local", values=values)
    ray_manifest = ray_engine.export(remote, plan, str(tmp_path / "ray"), values=values)
    assert_same_buckets(tmp_path / "ray", tmp_path / "local", ray_manifest, local_manifest)


def test_single_file_output_equals_the_local_files(tmp_path):
    data = mixed_input(tmp_path / "in")
    local = run_cli("-i", data, "-o", tmp_path / "local", "-n", "3", "--json")
    remote = run_cli("-i", data, "-o", tmp_path / "ray", "-n", "3", "--json", "--engine", "ray", "--single-file")
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    local_files = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert local_files == sorted(p.name for p in (tmp_path / "ray").iterdir())
    for name in local_files:
        if name != "manifest.json":
            assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    ray_manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    local_manifest = json.loads((tmp_path / "local" / "manifest.json").read_text())
    assert ray_manifest.pop("engine") == "ray" and ray_manifest == local_manifest


def odd_input(folder: Path) -> Path:
    """The mixed input with two files that are not JSONL (skipped whole) and a drafts folder to leave out."""
    mixed_input(folder)
    (folder / "placeholder.jsonl").write_bytes(b"<PLACEHOLDER ROW>\n<PLACEHOLDER ROW>\n")
    (folder / "pretty.jsonl").write_bytes(json.dumps([{"reward": [{"score": 1}]}], indent=2).encode() + b"\n")
    write_lines(folder / "drafts" / "old.jsonl", [rollout_line([1])])
    return folder


def test_files_that_are_not_jsonl_and_exclude_work_on_ray_as_locally(tmp_path):
    data = odd_input(tmp_path / "in")
    local = bucketing.load(data, exclude=["drafts"])
    remote = ray_engine.load(str(data), exclude=["drafts"])
    assert [f["file"] for f in remote.skipped_files] == ["placeholder.jsonl", "pretty.jsonl"]
    assert remote.skipped_files == local.skipped_files and remote.excluded == local.excluded == ["drafts/old.jsonl"]
    assert remote.totals == local.totals and remote.skipped_reasons() == local.skipped_reasons()
    values = remote.table()["mean_reward"].to_numpy()
    plan = bucketing.percentile_plan(values, "mean_reward", 3)
    local_manifest = bucketing.export(local, plan, tmp_path / "local", values=values)
    ray_manifest = ray_engine.export(remote, plan, str(tmp_path / "ray"), values=values)
    assert_same_buckets(tmp_path / "ray", tmp_path / "local", ray_manifest, local_manifest)
    for key in ("skipped_files", "excluded", "skipped_examples"):
        assert ray_manifest[key] == local_manifest[key], key


def test_exclude_on_the_command_line_with_ray(tmp_path):
    data = odd_input(tmp_path / "in")
    args = ("-i", data, "-n", "3", "--json", "--exclude", "drafts/*", "--exclude", "pretty.jsonl")
    local = run_cli(*args, "-o", tmp_path / "local")
    remote = run_cli(*args, "-o", tmp_path / "ray", "--engine", "ray", "--single-file")
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    ray_manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    local_manifest = json.loads((tmp_path / "local" / "manifest.json").read_text())
    assert ray_manifest.pop("engine") == "ray" and ray_manifest == local_manifest
    assert local_manifest["excluded"] == ["drafts/old.jsonl", "pretty.jsonl"]
    assert [f["file"] for f in local_manifest["skipped_files"]] == ["placeholder.jsonl"]


def test_a_uri_input_reads_like_a_path(tmp_path):
    data = mixed_input(tmp_path / "in")
    by_uri = ray_engine.load(f"file://{data}")
    by_path = bucketing.load(data)
    assert by_uri.totals == by_path.totals
    assert (by_uri.table()["variance"].to_numpy() == by_path.table()["variance"].to_numpy()).all()


def test_a_worker_that_dies_half_way_is_retried_without_duplicate_lines(tmp_path, faults, monkeypatch):
    data = mixed_input(tmp_path / "in")
    monkeypatch.setattr(ray_engine, "WRITE_SLICE", 64 << 10)
    local = bucketing.load(data)
    values = local.table()["mean_reward"].to_numpy()
    plan = bucketing.percentile_plan(values, "mean_reward", 3)
    local_manifest = bucketing.export(local, plan, tmp_path / "local", values=values)
    for number in (0, 2):
        (faults / f"crash-{number}").touch()
    ray_manifest = ray_engine.export(ray_engine.load(str(data)), plan, str(tmp_path / "ray"), values=values)
    assert not list(faults.iterdir())  # both crashes happened (the first attempts removed their files)
    assert_same_buckets(tmp_path / "ray", tmp_path / "local", ray_manifest, local_manifest)


def test_a_failed_run_leaves_no_part_under_a_final_name(tmp_path, faults, monkeypatch):
    data = mixed_input(tmp_path / "in")
    monkeypatch.setattr(ray_engine, "WRITE_SLICE", 64 << 10)
    remote = ray_engine.load(str(data))
    values = remote.table()["mean_reward"].to_numpy()
    plan = bucketing.percentile_plan(values, "mean_reward", 3)
    (faults / "fail-1").touch()
    try:
        with pytest.raises(bucketing.BucketingError, match="injected failure in write task 1"):
            ray_engine.export(remote, plan, str(tmp_path / "ray"), values=values)
    finally:
        (faults / "fail-1").unlink()
    assert list((tmp_path / "ray").iterdir()) == []  # no bucket folder, no manifest, no staging left


def test_an_earlier_export_is_kept_unless_overwrite(tmp_path):
    data = mixed_input(tmp_path / "in")
    first = run_cli("-i", data, "-o", tmp_path / "ray", "-n", "2", "--engine", "ray")
    assert first.returncode == 0, first.stderr
    before = {p: p.read_bytes() for p in (tmp_path / "ray").rglob("*") if p.is_file()}
    again = run_cli("-i", data, "-o", tmp_path / "ray", "-n", "3", "--engine", "ray")
    assert again.returncode == 2 and "already exists; pass --overwrite" in again.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "ray").rglob("*") if p.is_file()} == before
    replaced = run_cli(
        "-i", data, "-o", tmp_path / "ray", "-n", "2", "-m", "max_reward", "--engine", "ray", "--overwrite"
    )
    assert replaced.returncode == 0, replaced.stderr
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["metric"] == "max_reward"
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == [
        "_skipped",
        "bucket_0",
        "bucket_1",
        "difficulty.parquet",
        "manifest.json",
    ]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--engine", "ray", "--order", "difficulty"], "writes lines in input order"),
        (["--ray-address", "auto"], "applies to --engine ray"),
        (["--single-file"], "applies to --engine ray"),
    ],
)
def test_flags_that_do_not_fit_the_engine_are_refused(tmp_path, flags, message):
    result = run_cli("-i", mixed_input(tmp_path / "in"), "-o", tmp_path / "out", *flags)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_local_engine_never_imports_ray(tmp_path):
    imported = modules_imported_by_cli("-i", mixed_input(tmp_path / "in"), "-o", tmp_path / "out")
    assert "bucketing" in imported and "ray" not in imported


def test_strict_stops_at_the_same_first_bad_line(tmp_path):
    data = mixed_input(tmp_path / "in")
    with pytest.raises(bucketing.BadLineError) as local:
        bucketing.load(data, strict=True)
    with pytest.raises(bucketing.BadLineError) as remote:
        ray_engine.load(str(data), strict=True)
    assert str(remote.value) == str(local.value) and remote.value.where == "bad.jsonl:2"


def test_uri_input_and_output_through_both_engines(tmp_path):
    """file:// stands in for s3:// and gs:// here: the same pyarrow file system calls."""
    data = mixed_input(tmp_path / "in")
    flags = ["-i", f"file://{data}", "-n", "3", "--json"]
    local = run_cli(*flags, "-o", tmp_path / "local")  # the local engine reads the URI (and spools it to export)
    remote = run_cli(*flags, "-o", f"file://{tmp_path / 'ray'}", "--engine", "ray")
    assert local.returncode == 0 and remote.returncode == 0, (local.stderr, remote.stderr)
    by_path = run_cli("-i", data, "-n", "3", "-o", tmp_path / "by_path")
    assert by_path.returncode == 0
    for name in sorted(p.name for p in (tmp_path / "by_path").glob("*.jsonl")):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "by_path" / name).read_bytes()
    assert_same_buckets(tmp_path / "ray", tmp_path / "local", json.loads(remote.stdout), json.loads(local.stdout))
    assert "Found 4 JSONL files" in remote.stdout or "Found 4 JSONL files" in remote.stderr


def test_the_cli_in_another_process_on_the_cluster_writes_what_the_local_engine_writes(cluster, tmp_path):
    data = mixed_input(tmp_path / "in")
    flags = ["-i", data, "-n", "3", "-m", "success_rate", "--json"]
    local = run_cli(*flags, "-o", tmp_path / "local")
    remote = subprocess.run(
        [sys.executable, "-m", "bucketing", *map(str, flags), "-o", str(tmp_path / "ray")]
        + ["--engine", "ray", "--ray-address", cluster],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    assert_same_buckets(tmp_path / "ray", tmp_path / "local", json.loads(remote.stdout), json.loads(local.stdout))


def test_the_ray_scaling_benchmark_runs(cluster, tmp_path):
    """At a tiny size, on the module's cluster (a smoke test: no time is asserted)."""
    result = subprocess.run(
        [sys.executable, "benchmarks/ray_scaling.py", "--size", "3MB", "--rounds", "1"]
        + ["--ray-address", cluster, "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    for row in ["| local engine |", f"| ray, the cluster at {cluster} |"]:
        assert row in result.stdout
    assert (
        subprocess.run(
            [sys.executable, "-m", "ray.scripts.scripts", "status", "--address", cluster],
            capture_output=True,
        ).returncode
        == 0
    )  # left running
