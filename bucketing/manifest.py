"""The manifest: what a run read, the plan it applied, and what each bucket holds."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np

from .dataset import Dataset
from .errors import BucketingError
from .metrics import get_metric
from .outputs import MANIFEST, SKIPPED, file_names
from .plan import Plan, SavedBucket, SavedParams, SavedPlan, bucket_stats, check_saved_plan, plan_warnings
from .sources import display
from .version import __version__

VERSION = 1
MAX_MANIFEST_BYTES = 16 << 20  # ours are a few KB (100 buckets at most); more is not a manifest, and is not read


def plan_record(plan: Plan, ordered: np.ndarray) -> dict:
    """What a manifest says of a plan applied to values ``ordered`` (ascending): enough to apply it again
    (:func:`bucketing.plan.plan_from_manifest`), and every bucket's size, range and why it is empty."""
    stats = bucket_stats(plan, ordered)
    return {
        "metric": plan.metric,
        "direction": get_metric(plan.metric).direction,
        "params": {"k": plan.params.k, "pass_threshold": plan.params.pass_threshold},
        "mode": plan.mode,
        "preset": plan.preset,
        "ties": plan.ties,
        "cuts": list(plan.cuts),
        "cut_ties": [None if tie is None else {"tied": tie.tied, "below": tie.below} for tie in plan.cut_ties],
        "warnings": plan_warnings(plan, ordered),
        "buckets": [
            {
                "name": name,
                "count": int(count),
                "share": float(share),
                "min": _number(low),
                "max": _number(high),
                "lower": bucket.lower,
                "upper": bucket.upper,
                "difficulty_rank": bucket.rank,
                "label": bucket.label,
                "range": text,
                "note": note or None,
            }
            for name, count, share, low, high, bucket, text, note in zip(
                stats["name"],
                stats["count"],
                stats["share"],
                stats["min"],
                stats["max"],
                plan.buckets,
                plan.ranges(),
                stats["note"],
            )
        ],
    }


def build_manifest(
    dataset: Dataset,
    plan: Plan,
    values: np.ndarray,
    prefix: str = "",
    order: str = "input",
    ids: np.ndarray | None = None,
) -> dict:
    """The manifest's content (also what ``--json`` prints); ``ids``: ``plan.assign(values)`` when at hand."""
    files = file_names(plan, prefix)
    record = plan_record(plan, np.sort(values))
    ids = plan.assign(values) if ids is None else ids
    lines = np.bincount(ids, weights=dataset.lines_per_rollout(), minlength=len(plan.buckets))
    for bucket, bucket_lines in zip(record["buckets"], lines):
        bucket["file"], bucket["lines"] = files[bucket["name"]], int(bucket_lines)
    record["params"].update(
        {
            "scores": dataset.score_path,
            "scores_detected": dataset.detected,
            "group_by": list(dataset.layout.group_by),
            "layout": dataset.layout.name or None,  # the known layout detected, e.g. "verl dump"
        }
    )
    reasons = dataset.skipped_summary
    return {
        "version": VERSION,
        "tool": f"bucketing {__version__}",
        **record,
        "order": order,
        "prefix": prefix,
        "skipped_file": prefix + SKIPPED if dataset.skipped_lines else None,
        "totals": dataset.totals,
        "skipped": {reason: info["count"] for reason, info in reasons.items()},
        "skipped_examples": {reason: info["examples"] for reason, info in reasons.items()},
        "k_exceeds_n": dataset.k_exceeds_n(plan.params) if plan.metric == "pass_at_k" else 0,
        "inputs": dataset.inputs(),
        "skipped_files": dataset.skipped_files,
        "excluded": dataset.excluded,
    }


def dumps(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


class _Params(SavedParams, kw_only=True):
    scores: str | None = None
    scores_detected: bool = True
    group_by: list[str] = []


class _Bucket(SavedBucket, kw_only=True):
    file: str | None = None


class _File(msgspec.Struct):
    file: str


class _Manifest(SavedPlan, kw_only=True):
    """The fields a run or an export reads back from a manifest, typed (the others are not looked at)."""

    version: Literal[1]  # VERSION
    params: _Params = msgspec.field(default_factory=_Params)
    buckets: list[_Bucket]
    skipped_file: str | None = None
    files: list[_File] = []


def read_manifest(path: str | Path) -> dict:
    """A manifest as a dict, once every field a caller reads is checked: the file is user data.

    Anything else (too large, not JSON, nested too deeply, a field of the wrong type, cuts that are not finite and
    increasing, too many buckets, bad names) raises :class:`BucketingError` naming the field, e.g. ``$.cuts[0]``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)  # a FIFO must not hang the run
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise BucketingError(f"manifest {display(path)} is not a regular file; pass a {MANIFEST}")
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise BucketingError(f"can't read manifest {display(path)}: {exc.strerror or exc}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        problem = f"it is larger than {MAX_MANIFEST_BYTES >> 20} MiB"
    else:
        try:
            check_saved_plan(msgspec.json.decode(data, type=_Manifest))
            return msgspec.json.decode(data)  # every field, for the callers; the ones they read were checked
        except msgspec.DecodeError as exc:
            message = str(exc).removeprefix("JSON is malformed: ")
            problem = f"it is not valid JSON ({message})" if "$" not in message else message
        except msgspec.ValidationError as exc:
            problem = str(exc)
        except RecursionError:
            problem = "it is nested too deeply"
        except BucketingError as exc:
            problem = str(exc)
    raise BucketingError(
        f"manifest {display(path)} can't be used: {problem}; pass a {MANIFEST} that a bucketing run wrote"
    )


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)
