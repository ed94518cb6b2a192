"""How the Ray engine scales with workers on this machine: a Ray cluster of 1, then 2 CPUs, the CLI timed.

    python benchmarks/ray_scaling.py                 # 1 GB, 3 rounds
    python benchmarks/ray_scaling.py --size 200MB --rounds 1 --cpus 2
    python benchmarks/ray_scaling.py --ray-address HOST:PORT   # a cluster that is already running

For each size N of ``--cpus``, starts ``ray start --head --num-cpus N`` (token auth, as Ray's default), runs
``python -m bucketing --engine ray --ray-address ...`` with ``--dry-run`` (pass 1) and with an
export (both passes), median wall time and throughput; then pass 1 again from one driver that
stays connected (workers already started), then stops the cluster. With ``--ray-address``, the same
runs on that cluster, which is left running. The local engine is timed on the same data for reference.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.make_rollouts import make_rollouts, parse_size  # noqa: E402

ENV = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
if not (ENV.get("RAY_AUTH_TOKEN") or ENV.get("RAY_AUTH_TOKEN_PATH") or (Path.home() / ".ray" / "auth_token").exists()):
    ENV["RAY_AUTH_TOKEN"] = secrets.token_hex(32)  # no token of the user's: one for this run's cluster
WARM = """
import statistics, sys, time
sys.path.insert(0, {root!r})
from bucketing import ray_engine
ray_engine.connect({address!r})
times = []
for _ in range({rounds} + 1):
    started = time.perf_counter()
    ray_engine.load({data!r})
    times.append(time.perf_counter() - started)
print(statistics.median(times[1:]))  # the first run starts the workers
"""


def ray_cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", *args], env=ENV, check=True, capture_output=True)


def timed(argv: list[str], rounds: int, out: Path) -> float:
    times = []
    for _ in range(rounds):
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=ENV, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    shutil.rmtree(out, ignore_errors=True)
    return statistics.median(times)


@contextlib.contextmanager
def running_cluster(address: str | None, cpus: int | None) -> Iterator[str]:
    """The cluster at ``address``, as it is; or a one-node cluster of ``cpus`` started here and stopped after."""
    if address:
        yield address
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        ray_cli(
            *("start", "--head", "--port", str(port), "--num-cpus", str(cpus)),
            *("--include-dashboard", "false", "--node-ip-address", "127.0.0.1"),
        )
        yield f"127.0.0.1:{port}"
    finally:
        ray_cli("stop", "--force")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GB"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bucketing-ray-benchmark"))
    parser.add_argument(
        "--cpus", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2], help="cluster sizes (1,2)"
    )
    parser.add_argument("--ray-address", help="measure on this running cluster (host:port) instead of --cpus")
    args = parser.parse_args()
    data, out = args.work / f"data-{args.size}", args.work / "out"
    if not (data / "done").exists():
        shutil.rmtree(data, ignore_errors=True)
        make_rollouts(data, files=16, seed=1, line_bytes=20_000, size_bytes=args.size)
        (data / "done").write_text("")
    gb = sum(p.stat().st_size for p in data.glob("*.jsonl")) / 1e9
    cli = [sys.executable, "-m", "bucketing", "-i", str(data)]
    rows = [
        (
            "local engine",
            timed([*cli, "--dry-run"], args.rounds, out),
            timed([*cli, "-o", str(out)], args.rounds, out),
            None,
        )
    ]
    for cpus in [None] if args.ray_address else args.cpus:
        with running_cluster(args.ray_address, cpus) as address:
            ray = [*cli, "--engine", "ray", "--ray-address", address]
            warm = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    WARM.format(root=str(ROOT), address=address, rounds=args.rounds, data=str(data)),
                ],
                env=ENV,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
            name = f"ray, {cpus} worker{'s' if cpus > 1 else ''}" if cpus else f"ray, the cluster at {address}"
            rows.append(
                (
                    name,
                    timed([*ray, "--dry-run"], args.rounds, out),
                    timed([*ray, "-o", str(out)], args.rounds, out),
                    float(warm),
                )
            )
    print(f"{gb:.2f} GB, median of {args.rounds}\n")
    print("| engine | CLI, pass 1 (`--dry-run`) | CLI, both passes | pass 1 on warm workers |\n|---|---|---|---|")
    for name, scan, full, warm in rows:
        warm_cell = f"{warm:.2f} s ({gb / warm:.2f} GB/s)" if warm else "-"
        print(f"| {name} | {scan:.2f} s ({gb / scan:.2f} GB/s) | {full:.2f} s ({gb / full:.2f} GB/s) | {warm_cell} |")


if __name__ == "__main__":
    main()
