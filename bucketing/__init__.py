"""Bucket RL rollouts by difficulty: load a directory, compute metrics, plan buckets, export byte-exact files.

import bucketing
data = bucketing.load("rollouts/")                    # files -> line index + scores
table = data.table()                                   # one row per rollout, every metric
plan = bucketing.percentile_plan(table["mean_reward"], "mean_reward", 3)
table["bucket"] = plan.assign(table["mean_reward"])    # 0 = easiest
bucketing.export(data, plan, "bucketed/")              # bucket files + manifest.json
"""

from .dataset import Dataset, load
from .errors import BadLineError, BucketingError
from .manifest import read_manifest
from .metrics import METRICS, Metric, Params, Scores, get_metric, register_metric
from .plan import (
    Bucket,
    Plan,
    bucket_table,
    default_names,
    learnability_plan,
    percentile_plan,
    plan_from_manifest,
    threshold_plan,
)
from .version import __version__
from .writer import export

__all__ = [
    "BadLineError",
    "Bucket",
    "BucketingError",
    "Dataset",
    "METRICS",
    "Metric",
    "Params",
    "Plan",
    "Scores",
    "bucket_table",
    "default_names",
    "export",
    "get_metric",
    "learnability_plan",
    "load",
    "percentile_plan",
    "plan_from_manifest",
    "read_manifest",
    "register_metric",
    "threshold_plan",
    "__version__",
]
