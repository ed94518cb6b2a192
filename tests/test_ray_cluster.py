"""A two-node Ray cluster on this machine (``ray start --head`` + ``ray start --address``) running the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .browser_support import free_port
from .conftest import ROOT, run_cli
from .test_ray import assert_same_buckets, mixed_input

pytestmark = pytest.mark.ray  # one xdist worker runs every Ray test: RAY_UNIT in conftest.py

# Ray's own default since 2.5x: token authentication, with the token in ~/.ray/auth_token
ENV = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}


def ray_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ray.scripts.scripts", *args], env=ENV, capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def cluster() -> str:
    """The address of a head node and a second node, one CPU each; stopped after the tests."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    node = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--object-store-memory", str(300 * 10**6)]
    try:
        head = ray_cli("start", "--head", "--port", str(port), "--include-dashboard", "false", *node)
        assert head.returncode == 0, head.stderr
        second = ray_cli("start", "--address", address, *node)
        assert second.returncode == 0, second.stderr
        alive = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import ray; ray.init(address={address!r}, log_to_driver=False); "
                "print(sum(n['Alive'] for n in ray.nodes()))",
            ],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert alive.stdout.strip().splitlines()[-1] == "2", alive.stderr
        yield address
    finally:
        ray_cli("stop", "--force")


def test_the_cli_on_a_two_node_cluster_writes_what_the_local_engine_writes(cluster, tmp_path):
    data = mixed_input(tmp_path / "in")
    flags = ["-i", data, "-n", "3", "-m", "success_rate", "--json"]
    local = run_cli(*flags, "-o", tmp_path / "local")
    remote = subprocess.run(
        [
            sys.executable,
            "-m",
            "bucketing",
            *map(str, flags),
            "-o",
            str(tmp_path / "ray"),
            "--engine",
            "ray",
            "--ray-address",
            cluster,
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    assert_same_buckets(tmp_path / "ray", tmp_path / "local", json.loads(remote.stdout), json.loads(local.stdout))
