"""Benchmark: our CLI against the original script's algorithm and against plain ``cat``, as whole processes.

    python benchmarks/run.py                      # 0.5, 1, 2 and 4 GB, 3 rounds each (about 20 minutes)
    python benchmarks/run.py --sizes 2GB --rounds 5
    python benchmarks/run.py --sizes 20MB --rounds 1 --rollouts 20000   # a smoke test (CI)
    python benchmarks/run.py --sizes 2GB --layout verl   # a trainer's dump: lines of ~4 KB, grouped by prompt

For each size it generates rollouts with ``examples/make_rollouts.py`` (lines of about
20 KB, 4-16 responses, ties, some unicode), compiles the package's bytecode, then runs
every command once per round, in turn (A B C ... A B C ...), each after a ``sync`` and with
the input in the page cache, and reports the median wall time,
the ratios that the targets are about, and the peak RSS of the largest process. Then it
times the app's interactive work on a table of ``--rollouts`` rollouts. Results go to
stdout (a markdown table for the README) and ``benchmarks/results/<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.make_rollouts import make_rollouts, parse_size  # noqa: E402

PY = sys.executable
TIME = "/usr/bin/time"  # GNU time (Debian package "time")


def commands(data: Path, out: Path, layout: str = "prompt") -> dict[str, list[str]]:
    """What is timed, by name. ``{out}`` folders are emptied before each run.

    A dump layout (one line per response) has no original to compare with: the script can't group lines.
    """
    files = " ".join(f"'{p}'" for p in sorted(data.glob("*.jsonl")))
    runs = {
        "original: load + 7 metrics": [PY, "benchmarks/original.py", "-i", str(data), "--all-metrics"],
        "ours: load + 7 metrics (--dry-run)": [PY, "-m", "bucketing", "-i", str(data), "--dry-run"],
        "original: full run": [PY, "benchmarks/original.py", "-i", str(data), "-o", str(out / "original")],
        "ours: full run": [PY, "-m", "bucketing", "-i", str(data), "-o", str(out / "ours")],
        "ours: full run --no-fsync": [PY, "-m", "bucketing", "-i", str(data), "-o", str(out / "ours"), "--no-fsync"],
        "cat > /dev/null": ["sh", "-c", f"cat {files} > /dev/null"],
        "cat > file": ["sh", "-c", f"mkdir -p '{out}/cat' && cat {files} > '{out}/cat/all.jsonl'"],
        "cat > file + sync": [
            "sh",
            "-c",
            f"mkdir -p '{out}/cat' && cat {files} > '{out}/cat/all.jsonl' && sync '{out}/cat/all.jsonl'",
        ],
    }
    return {name: argv for name, argv in runs.items() if layout == "prompt" or not name.startswith("original")}


def settle(warm: list[str]) -> None:
    """Before each timed run: the writes of the runs before it flushed (not to be paid by this one), and the
    input in the page cache (the targets are for a warm cache; the original's 5 GB of RSS can push it out)."""
    os.sync()
    subprocess.run(warm, check=True)


def compile_bytecode() -> None:
    """Compile the package as an install would: a run must not pay for compiling it (no .pyc is written where
    PYTHONDONTWRITEBYTECODE is set, as in CI, which costs every run ~50 ms)."""
    subprocess.run(
        [PY, "-m", "compileall", "-q", str(ROOT / "bucketing"), str(ROOT / "benchmarks")],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def timed(argv: list[str], scratch: Path) -> tuple[float, int]:
    """Wall seconds, and the peak RSS in bytes of the largest process of the run.

    GNU time measures the RSS: a child forked from this (large) Python process would count
    this process's pages as its own until it execs.
    """
    if not os.path.exists(TIME):  # fall back to the kernel's figure (see above)
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(argv)} failed")
        return time.perf_counter() - started, usage.ru_maxrss * 1024
    report = scratch / "time.txt"
    started = time.perf_counter()
    result = subprocess.run(
        [TIME, "-f", "%M", "-o", str(report), *argv], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stderr.decode(errors='replace')}")
    return wall, int(report.read_text().split()[-1]) * 1024  # KiB


def benchmark_size(size: int, rounds: int, work: Path, layout: str = "prompt") -> dict:
    data = work / (f"data-{size}" if layout == "prompt" else f"data-{layout}-{size}")
    if not (data / "done").exists():
        shutil.rmtree(data, ignore_errors=True)
        line_bytes = 20_000 if layout == "prompt" else 4_000
        make_rollouts(data, files=16, seed=1, line_bytes=line_bytes, size_bytes=size, layout=layout)
        (data / "done").write_text("")
    out = work / "out"
    runs = commands(data, out, layout)
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, argv in runs.items():
            shutil.rmtree(out, ignore_errors=True)
            settle(runs["cat > /dev/null"])
            samples[name].append(timed(argv, work))
    shutil.rmtree(out, ignore_errors=True)
    summary = json.loads(
        subprocess.run(
            [PY, "-m", "bucketing", "-i", str(data), "--dry-run", "--json"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    )
    result = {
        "bytes": sum(p.stat().st_size for p in data.glob("*.jsonl")),
        "rollouts": summary["totals"]["rollouts"],
        "lines": summary["totals"]["rollout_lines"],
        "median_seconds": {name: statistics.median(w for w, _ in s) for name, s in samples.items()},
        "peak_rss_bytes": {name: max(r for _, r in s) for name, s in samples.items()},
        "all_seconds": {name: [w for w, _ in s] for name, s in samples.items()},
    }
    result["ratios"] = ratios(result["median_seconds"])
    return result


RATIOS = {  # name: (numerator, denominator)
    "load: original / ours (target >= 30)": ("original: load + 7 metrics", "ours: load + 7 metrics (--dry-run)"),
    "load: ours / cat > /dev/null (target <= 4)": ("ours: load + 7 metrics (--dry-run)", "cat > /dev/null"),
    "full: original / ours (target >= 16)": ("original: full run", "ours: full run"),
    "full: original / ours --no-fsync": ("original: full run", "ours: full run --no-fsync"),
    "full: ours / (cat > file + sync)": ("ours: full run", "cat > file + sync"),
    "full: ours --no-fsync / cat > file (target <= 1.4)": ("ours: full run --no-fsync", "cat > file"),
}


def ratios(t: dict[str, float]) -> dict[str, float]:
    return {name: t[a] / t[b] for name, (a, b) in RATIOS.items() if a in t and b in t}


def interactive(rollouts: int, rounds: int = 20) -> dict:
    """The engine work behind the app's interactions, on ``rollouts`` rollouts (median ms).

    The scores are made in memory (4-16 responses, 0/1 and graded, many ties): what is timed
    starts from a loaded table, as it does in the app.
    """
    import numpy as np

    import bucketing
    from bucketing.metrics import compute_all
    from bucketing.plan import bucket_table
    from bucketing.summary import histogram

    rng = np.random.default_rng(0)
    counts = rng.integers(4, 17, rollouts)
    solve = np.repeat(rng.choice([0.0, 1.0, 0.5], rollouts, p=[0.3, 0.2, 0.5]) * rng.random(rollouts), counts)
    flat = np.where(rng.random(len(solve)) < solve, 1.0, 0.0) * rng.choice([1.0, 1.25, 0.6], len(solve))
    scores = bucketing.Scores(flat, counts)
    table = compute_all(scores, bucketing.Params())
    values = table["mean_reward"]
    ordered = np.sort(values)

    def drag():  # a threshold moved: a new plan and the counts, ranges and regions of its buckets
        plan = bucketing.threshold_plan("mean_reward", [0.2 + rng.random() / 2, 0.8])
        return bucket_table(plan, ordered)

    def change_metric():  # a new metric: its sorted values, equal-size cuts, the table, the histogram
        column = np.sort(table["variance"])
        plan = bucketing.percentile_plan(table["variance"], "variance", 5)
        return bucket_table(plan, column), histogram(column)

    def change_count():  # a new bucket count on the same metric
        return bucket_table(bucketing.percentile_plan(values, "mean_reward", int(rng.integers(2, 11))), ordered)

    def change_k():  # k or the pass threshold: every metric again
        return compute_all(scores, bucketing.Params(k=int(rng.integers(1, 5))))

    timings = {}
    for name, work in [
        ("drag a threshold", drag),
        ("change the metric", change_metric),
        ("change the bucket count", change_count),
        ("change k (all seven metrics)", change_k),
    ]:
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            work()
            samples.append((time.perf_counter() - started) * 1000)
        timings[name] = statistics.median(samples)
    return {"rollouts": rollouts, "median_ms": timings}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def report(results: dict) -> str:
    lines = [f"Machine: {results['machine']}; layout: {results['layout']}", ""]
    names = list(next(iter(results["sizes"].values()))["median_seconds"])
    header = "| | " + " | ".join(f"{size}" for size in results["sizes"]) + " |"
    lines += [header, "|---" * (len(results["sizes"]) + 1) + "|"]
    lines.append("| rollouts | " + " | ".join(f"{r['rollouts']:,}" for r in results["sizes"].values()) + " |")
    lines.append("| lines | " + " | ".join(f"{r['lines']:,}" for r in results["sizes"].values()) + " |")
    for name in names:
        cells = [
            f"{r['median_seconds'][name]:.2f} s ({r['peak_rss_bytes'][name] / 2**20:,.0f} MiB)"
            for r in results["sizes"].values()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in next(iter(results["sizes"].values()))["ratios"]:
        cells = [f"{r['ratios'][name]:.1f}" for r in results["sizes"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Interactive work on {results['interactive']['rollouts']:,} rollouts (median):", ""]
    lines += [f"- {name}: {ms:.1f} ms" for name, ms in results["interactive"]["median_ms"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.5GB,1GB,2GB,4GB", help="comma-separated data sizes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rollouts", type=int, default=1_000_000, help="table size for the interactive timings")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bucketing-benchmark"), help="data and scratch space")
    parser.add_argument(
        "--layout",
        default="prompt",
        choices=("prompt", "verl", "skyrl", "nemo"),
        help="the data's layout (examples/make_rollouts.py --layout)",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine(), "layout": args.layout, "sizes": {}}
    compile_bytecode()
    for text in args.sizes.split(","):
        print(f"{text}: generating and timing ...", file=sys.stderr, flush=True)
        results["sizes"][text] = benchmark_size(parse_size(text), args.rounds, args.work, args.layout)
    print(f"interactive work on {args.rollouts:,} rollouts ...", file=sys.stderr, flush=True)
    results["interactive"] = interactive(args.rollouts)
    folder = ROOT / "benchmarks" / "results"
    folder.mkdir(exist_ok=True)
    (folder / time.strftime("%Y%m%d-%H%M%S.json")).write_text(json.dumps(results, indent=2))
    print(report(results))


if __name__ == "__main__":
    main()
