"""The original script's algorithm, re-implemented faithfully, as the benchmark's baseline.

Not part of the product. Like the original ``bucket_rollouts_by_difficulty.py`` it
reads every line through ``json.loads`` into one list, computes the metric with
the ``statistics`` module, cuts at ``np.percentile`` points, and writes each
rollout back with ``json.dumps``. ``--all-metrics`` computes all seven metrics
and writes nothing (the counterpart of ``python -m bucketing --dry-run``).

    python benchmarks/original.py -i DIR -o OUT -m mean_reward -n 3
    python benchmarks/original.py -i DIR --all-metrics
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np


def scores(rollout: dict) -> list[float]:
    return [r.get("score", 0) for r in rollout.get("reward") or []]


def mean_reward(rollout):
    s = scores(rollout)
    return statistics.mean(s) if s else 0.0


def max_reward(rollout):
    s = scores(rollout)
    return max(s) if s else 0.0


def min_reward(rollout):
    s = scores(rollout)
    return min(s) if s else 0.0


def variance(rollout):
    s = scores(rollout)
    return statistics.variance(s) if len(s) > 1 else 0.0


def pass_at_k(rollout, threshold=0.5, k=None):
    s = sorted(scores(rollout), reverse=True)[:k]
    return sum(1 for x in s if x >= threshold) / len(s) if s else 0.0


def success_rate(rollout, threshold=0.5):
    s = scores(rollout)
    return sum(1 for x in s if x >= threshold) / len(s) if s else 0.0


def inverse_mean(rollout):
    return 1.0 / (mean_reward(rollout) + 1e-6)


METRICS = {
    f.__name__: f for f in (mean_reward, max_reward, min_reward, variance, pass_at_k, success_rate, inverse_mean)
}


def load_rollouts(input_dir: Path) -> list[dict]:
    rollouts = []
    for path in input_dir.glob("*.jsonl"):
        with open(path) as f:
            for line in f:
                if line.strip():
                    rollouts.append(json.loads(line))
    return rollouts


def bucket_by_percentiles(rollouts, difficulty, count, names):
    pairs = sorted(zip(rollouts, map(difficulty, rollouts)), key=lambda pair: pair[1])
    cuts = np.percentile([d for _, d in pairs], [i * 100 / count for i in range(count + 1)]).tolist()
    buckets = defaultdict(list)
    for rollout, value in pairs:
        index = next((i for i in range(count) if value <= cuts[i + 1]), count - 1)
        buckets[names[index]].append(rollout)
    return buckets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--input-dir", type=Path, required=True)
    parser.add_argument("-o", "--output-dir", type=Path)
    parser.add_argument("-m", "--metric", default="mean_reward", choices=list(METRICS))
    parser.add_argument("-n", "--num-buckets", type=int, default=3)
    parser.add_argument("--all-metrics", action="store_true")
    args = parser.parse_args()

    rollouts = load_rollouts(args.input_dir)
    if args.all_metrics:
        table = {name: [f(r) for r in rollouts] for name, f in METRICS.items()}
        print(f"{len(rollouts)} rollouts, {len(table)} metrics")
        return
    names = ["easy", "medium", "hard"] if args.num_buckets == 3 else [f"bucket_{i}" for i in range(args.num_buckets)]
    buckets = bucket_by_percentiles(rollouts, METRICS[args.metric], args.num_buckets, names)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, members in buckets.items():
        with open(args.output_dir / f"{name}.jsonl", "w") as f:
            for rollout in members:
                f.write(json.dumps(rollout) + "\n")
        print(f"Saved {len(members)} rollouts to {args.output_dir / f'{name}.jsonl'}")


if __name__ == "__main__":
    main()
