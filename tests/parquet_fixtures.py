"""Parquet inputs for the tests: rollouts one row per prompt, TRL completions logs, broken files."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROLLOUT_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("reward", pa.list_(pa.struct([("score", pa.float64())]))),
        ("extra_info", pa.struct([("index", pa.int64()), ("split", pa.string())])),
    ]
)


def rollout_rows(count: int, seed: int = 0, start: int = 0) -> list[dict]:
    """Rows of the default layout (``reward[].score``), a few of them bad in known ways."""
    rng = random.Random(seed)
    rows = []
    for i in range(start, start + count):
        scores = [{"score": rng.choice([0.0, 0.25, 0.5, 1.0, 1.25])} for _ in range(rng.randint(1, 6))]
        rows.append(
            {
                "key": f"p{i}",
                "prompt": [{"role": "user", "content": f"question {i} ünïcode\nline two"}],
                "reward": scores,
                "extra_info": {"index": i, "split": "train"},
            }
        )
    return rows


BAD_ROWS = {  # reason -> a row that has it
    "scores not a list": {"key": "no-scores", "prompt": [], "reward": None, "extra_info": None},
    "empty scores": {"key": "empty", "prompt": [], "reward": [], "extra_info": None},
    "score not finite": {"key": "nan", "prompt": [], "reward": [{"score": float("nan")}], "extra_info": None},
    "score not a number": {"key": "null-score", "prompt": [], "reward": [{"score": None}], "extra_info": None},
}


def write_rows(path: Path, rows: list[dict], schema: pa.Schema = ROLLOUT_SCHEMA, row_group_size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=row_group_size)
    return path


def write_trl_log(folder: Path, steps: int = 3, prompts: int = 6, generations: int = 4, seed: int = 0) -> Path:
    """``folder/completions/completions_{step:05d}.parquet`` as TRL's GRPOTrainer writes them:
    step, prompt, completion, one float column per reward function, advantage."""
    rng = random.Random(seed)
    out = folder / "completions"
    out.mkdir(parents=True, exist_ok=True)
    for step in range(steps):
        rows = []
        for p in range(prompts):
            for g in range(generations):
                accuracy = float(rng.random() < (p + 1) / (prompts + 1))
                rows.append(
                    {
                        "step": step * 10,
                        "prompt": f"Solve problem {p}",
                        "completion": f"answer {g} at step {step}",
                        "accuracy_reward": accuracy,
                        "format_reward": rng.choice([0.0, 0.5]),
                        "advantage": rng.uniform(-1, 1),
                    }
                )
        pq.write_table(pa.Table.from_pylist(rows), out / f"completions_{step * 10:05d}.parquet", row_group_size=5)
    return out


def write_broken(path: Path) -> Path:
    """A file named .parquet whose footer is cut off."""
    good = path.with_suffix(".tmp")
    write_rows(good, rollout_rows(5))
    data = good.read_bytes()
    good.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path
