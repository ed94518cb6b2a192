"""Benchmark: what joining a training set adds to an export, against pyarrow reading and writing that source.

    python benchmarks/join.py                    # 1,000,000 rollouts, a 1,000,000-row verl-style parquet source
    python benchmarks/join.py --rows 100000 --rounds 1

Times, as whole processes, ``--rounds`` rounds of: an export (``--no-fsync``), the same export with
``--train-set SOURCE --join-on id=extra_info.index``, and ``pyarrow.parquet.read_table`` + ``write_table`` of
the source. The target: the join adds at most what pyarrow needs to read and write the source (ratio <= 1).
The command line turns transparent huge pages off for itself (``bucketing.cli.no_huge_pages``); pyarrow's run
is timed as it comes, and again with them off, for comparison.
Each run is timed three ways: wall-clock seconds; CPU seconds (user + system, of the process and every process
it started), which wander much less on a machine shared with other work; and user CPU seconds alone (in a VM
the system part is mostly the first touch of fresh memory, which now and then costs 0.3-0.6 s per 256 MB).
Each is reported as the median and as the minimum of the rounds: that noise only ever adds, so the minimum is
the steadier estimate of what a run itself costs.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def make_data(folder: Path, rows: int) -> tuple[Path, Path]:
    """Rollouts (one line per prompt, ``id`` = the source row's extra_info.index) and the verl-style source."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rollouts, source = folder / "rollouts", folder / "train.parquet"
    if source.exists():
        return rollouts, source
    rng = random.Random(0)
    rollouts.mkdir(parents=True, exist_ok=True)
    with open(rollouts / "r.jsonl", "w") as f:
        for i in range(rows):
            scores = [{"score": rng.choice((0, 1))} for _ in range(8)]
            f.write(json.dumps({"id": i, "prompt": f"Question {i}: what is {i} + {i}?", "reward": scores}) + "\n")
    table = pa.table(
        {
            "data_source": ["openai/gsm8k"] * rows,
            "prompt": [
                [{"role": "user", "content": f"Question {i}: what is {i} + {i}? Think step by step."}]
                for i in range(rows)
            ],
            "ability": ["math"] * rows,
            "reward_model": [{"style": "rule", "ground_truth": str(2 * i)} for i in range(rows)],
            "extra_info": [{"index": i, "split": "train"} for i in range(rows)],
        }
    )
    pq.write_table(table, source)
    return rollouts, source


def timed(argv: list[str]) -> tuple[float, float, float]:
    """Wall-clock, CPU (user + system) and user CPU seconds of one run."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    user = after.ru_utime - before.ru_utime
    return wall, user + (after.ru_stime - before.ru_stime), user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data" / "join")
    args = parser.parse_args()
    rollouts, source = make_data(args.data / str(args.rows), args.rows)
    out = args.data / "out"
    export = [PY, "-m", "bucketing", "-i", str(rollouts), "-o", str(out), "--no-fsync", "--overwrite"]
    runs = {
        "export": export,
        "export + join": [*export, "--train-set", str(source), "--join-on", "id=extra_info.index"],
        "pyarrow read_table + write_table": [
            PY,
            "-c",
            "import sys, pyarrow.parquet as pq; pq.write_table(pq.read_table(sys.argv[1]), sys.argv[2])",
            str(source),
            str(args.data / "copy.parquet"),
        ],
        "  the same, huge pages off": [  # as the command line runs (bucketing.cli.no_huge_pages): for comparison
            PY,
            "-c",
            "import sys, ctypes, pyarrow.parquet as pq; ctypes.CDLL(None).prctl(41, 1, 0, 0, 0); "
            "pq.write_table(pq.read_table(sys.argv[1]), sys.argv[2])",
            str(source),
            str(args.data / "copy.parquet"),
        ],
    }
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, argv in runs.items():
            shutil.rmtree(out, ignore_errors=True)
            times[name].append(timed(argv))
    for clock, unit in ((0, "s"), (1, "CPU s"), (2, "user CPU s")):
        for estimate, pick in (("median", statistics.median), ("minimum", min)):
            picked = {name: pick(t[clock] for t in values) for name, values in times.items()}
            print(f"{estimate} of {len(times['export'])} rounds, {unit}:")
            for name, value in picked.items():
                runs_text = ", ".join(f"{t[clock]:.2f}" for t in times[name])
                print(f"  {name:<34} {value:6.2f}  (runs: {runs_text})")
            added = picked["export + join"] - picked["export"]
            print(f"  {'the join adds':<34} {added:6.2f}")
            ratio = added / picked["pyarrow read_table + write_table"]
            print(f"  join / pyarrow read+write (target <= 1): {ratio:.2f}")
            ratio = added / picked["  the same, huge pages off"]
            print(f"  join / pyarrow read+write, huge pages off: {ratio:.2f}\n")


if __name__ == "__main__":
    main()
