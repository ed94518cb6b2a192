"""Benchmark: reopening a folder with the scan cache (bucketing.scancache) — unchanged, and grown by one step file.

    python benchmarks/reload.py                    # 2 GB in 16 files, then one more file of 128 MB
    python benchmarks/reload.py --size 200MB --new 16MB --rounds 1

Each load runs in a fresh process, as after an app restart, and is timed inside it (the load call, not Python's
start): without the cache (every file read), the first load with it (every file read, entries written), again
(unchanged: no file read), and after one new file is added (only it read), beside a load of that file alone and
``cat`` of it.
The medians of ``--rounds``. The data and the cache live in benchmarks/data/reload/ (not in git).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.make_rollouts import make_rollouts, parse_size  # noqa: E402

LOAD = """
import sys, time
sys.path.insert(0, {root!r})
import bucketing
started = time.perf_counter()
bucketing.load({folder!r}, cache={cache})
print(time.perf_counter() - started)
"""


def load_seconds(folder: Path, cache: bool, cache_dir: Path) -> float:
    env = {**os.environ, "BUCKETING_CACHE_DIR": str(cache_dir)}
    code = LOAD.format(root=str(ROOT), folder=str(folder), cache=cache)
    result = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return float(result.stdout.split()[-1])


def cat_seconds(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cat", str(path)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("2GB"), help="the folder (16 files)")
    parser.add_argument("--new", type=parse_size, default=parse_size("128MB"), help="the file added")
    parser.add_argument("--line-bytes", type=int, default=20_000, help="about this long a line (a rollout)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "data" / "reload")
    args = parser.parse_args()
    data, extra = args.work / f"run-{args.size}-{args.line_bytes}", args.work / f"new-{args.new}-{args.line_bytes}"
    if not (data / "done").exists():
        shutil.rmtree(data, ignore_errors=True)
        make_rollouts(data, files=16, seed=1, line_bytes=args.line_bytes, size_bytes=args.size)
        (data / "done").write_text("")
    if not (extra / "done").exists():
        shutil.rmtree(extra, ignore_errors=True)
        make_rollouts(extra, files=1, seed=2, line_bytes=args.line_bytes, size_bytes=args.new)
        (extra / "done").write_text("")
    folder = args.work / "folder"  # the 16 files, linked: adding the 17th leaves the data as it was
    names = ("no cache", "first", "unchanged", "one new file", "that file alone", "cat")
    rows: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for path in sorted(data.glob("*.jsonl")):
            os.link(path, folder / path.name)
        time.sleep(2.1)  # a link changes the file's change time: the cache keeps only files settled 2 s
        cache = args.work / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        rows["no cache"].append(load_seconds(folder, False, cache))
        rows["first"].append(load_seconds(folder, True, cache))
        rows["unchanged"].append(load_seconds(folder, True, cache))
        new = folder / "rollouts_new.jsonl"
        os.link(extra / "rollouts_0.jsonl", new)
        rows["one new file"].append(load_seconds(folder, True, cache))
        rows["that file alone"].append(load_seconds(extra, False, cache))
        rows["cat"].append(cat_seconds(new))
    gb = sum(p.stat().st_size for p in data.glob("*.jsonl")) / 1e9
    mb = (extra / "rollouts_0.jsonl").stat().st_size / 1e6
    with open(extra / "rollouts_0.jsonl", "rb") as new_file:
        lines = sum(1 for _ in new_file)
    print(f"{gb:.2f} GB in 16 files, then one new file of {mb:.0f} MB ({lines:,} lines); median of {args.rounds}\n")
    print("| load | seconds |\n|---|---|")
    labels = {
        "no cache": "without the cache (every file read)",
        "first": "first with the cache (every file read, entries written)",
        "unchanged": "again, unchanged (no file read)",
        "one new file": "after one new file (only it read)",
        "that file alone": "that new file alone, without the cache",
        "cat": f"`cat` of the new file ({mb:.0f} MB)",
    }
    for name, times in rows.items():
        print(f"| {labels[name]} | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
