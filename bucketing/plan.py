"""A plan: cut points on one metric and a name for each bucket; which bucket each rollout is in.

Cut points ``c1 < c2 < ...`` split the metric's values into intervals
``v <= c1``, ``c1 < v <= c2``, ..., ``v > c_last``.  Buckets are kept easiest
first, so a rollout's bucket index is also its bucket's difficulty rank
(0 = easiest).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import BucketingError
from .metrics import Params, get_metric
from .progress import counted

if TYPE_CHECKING:
    import pandas as pd

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TIES = ("keep", "split")
_NEIGHBOURS = 4  # candidate cut positions looked at on each side of an ideal one


@dataclass(frozen=True)
class Bucket:
    name: str
    rank: int  # 0 = easiest
    interval: int  # 0 = lowest metric values
    lower: float | None  # values > lower (None: no lower bound)
    upper: float | None  # values <= upper (None: no upper bound)
    label: str | None = None  # what the range means, in words (a preset's buckets)

    def describe_range(self, metric: str) -> str:
        if self.label:
            return self.label
        if self.lower is None and self.upper is None:
            return f"any {metric}"
        if self.lower is None:
            return f"{metric} <= {self.upper:g}"
        if self.upper is None:
            return f"{metric} > {self.lower:g}"
        return f"{self.lower:g} < {metric} <= {self.upper:g}"


@dataclass(frozen=True)
class Plan:
    metric: str
    mode: str  # "percentile" or "thresholds"
    cuts: tuple[float, ...]  # ascending
    buckets: tuple[Bucket, ...]  # easiest first
    ties: str = "keep"
    params: Params = Params()
    split_ranks: tuple[int, ...] | None = None  # ties="split": rollouts below each cut, by rank
    preset: str | None = None  # made by a preset (see PRESETS), e.g. "learnability"

    @property
    def names(self) -> list[str]:
        return [bucket.name for bucket in self.buckets]

    def assign(self, values: np.ndarray) -> np.ndarray:
        """Bucket index (= difficulty rank) of each value."""
        values = np.asarray(values, dtype=np.float64)
        if self.split_ranks is not None:
            if len(values) != self.split_ranks[-1]:
                raise BucketingError("a ties='split' plan applies only to the values it was made from")
            ranks = np.empty(len(values), dtype=np.int64)
            ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
            intervals = np.searchsorted(np.asarray(self.split_ranks[:-1]), ranks, side="right")
        else:
            intervals = np.searchsorted(np.asarray(self.cuts, dtype=np.float64), values, side="left")
        to_rank = np.empty(len(self.buckets), dtype=np.int16)
        for bucket in self.buckets:
            to_rank[bucket.interval] = bucket.rank
        return to_rank[intervals]

    def describe(self) -> str:
        """The plan in a few words, e.g. "mean_reward, 3 equal-size buckets" or "mean_reward, thresholds 0.3, 0.7"."""
        if self.preset:
            return f"the {self.preset} preset ({self.metric} at pass threshold {self.params.pass_threshold:g})"
        if self.mode == "percentile":
            return f"{self.metric}, {counted(len(self.buckets), 'equal-size bucket')}"
        return f"{self.metric}, thresholds {', '.join(f'{cut:.4g}' for cut in self.cuts)}"

    def renamed(self, names: Sequence[str]) -> "Plan":
        """The same plan with new names, given easiest first."""
        if len(names) != len(self.buckets):
            raise BucketingError(f"{len(names)} names given for {len(self.buckets)} buckets")
        check_names(names)
        return replace(self, buckets=tuple(replace(b, name=name) for b, name in zip(self.buckets, names)))

    def edges(self, ordered: np.ndarray) -> np.ndarray:
        """Where each interval starts in the ascending ``ordered`` values, plus the total at the end."""
        if self.split_ranks is not None:
            inner = np.asarray(self.split_ranks[:-1], dtype=np.int64)
        else:
            inner = np.searchsorted(ordered, np.asarray(self.cuts, dtype=np.float64), side="right")
        return np.concatenate([[0], inner, [len(ordered)]]).astype(np.int64)


def default_names(count: int) -> list[str]:
    """easy/medium/hard for 3, very_easy..very_hard for 5, bucket_0.. otherwise; easiest first."""
    if count == 3:
        return ["easy", "medium", "hard"]
    if count == 5:
        return ["very_easy", "easy", "medium", "hard", "very_hard"]
    return [f"bucket_{i}" for i in range(count)]


def check_name(name: str, what: str = "bucket name") -> None:
    if not NAME_PATTERN.match(name):
        raise BucketingError(
            f"{what} {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )


def check_names(names: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for name in names:
        check_name(name)
        if name.lower() in seen:
            raise BucketingError(f"bucket names {seen[name.lower()]!r} and {name!r} are the same file name ignoring case")
        seen[name.lower()] = name


def percentile_names(num_buckets: int, names: Sequence[str] | None = None, ties: str = "keep") -> list[str]:
    """The names of a percentile plan, easiest first; raises for a bad count, names or ties (before any data)."""
    if num_buckets < 1:
        raise BucketingError(f"-n/--num-buckets must be at least 1, not {num_buckets}")
    if ties not in TIES:
        raise BucketingError(f"--ties must be one of {', '.join(TIES)}, not {ties!r}")
    names = list(names) if names else default_names(num_buckets)
    if len(names) != num_buckets:
        raise BucketingError(f"{len(names)} bucket names given for {num_buckets} buckets")
    check_names(names)
    return names


def percentile_plan(
    values: np.ndarray,
    metric: str,
    num_buckets: int = 3,
    names: Sequence[str] | None = None,
    ties: str = "keep",
    params: Params = Params(),
) -> Plan:
    """Buckets of sizes as equal as the data allows; names run easiest -> hardest.

    ``ties="keep"``: equal values share a bucket; cut points are chosen among the
    gaps between distinct values to balance the sizes (least squares).
    ``ties="split"``: exactly equal sizes; equal values are ordered by input order.
    """
    names = percentile_names(num_buckets, names, ties)
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    total = len(ordered)
    if total == 0:
        raise BucketingError("no rollouts to bucket")
    if ties == "split":
        boundaries = [j * total // num_buckets for j in range(1, num_buckets)]
    else:
        boundaries = balanced_boundaries(ordered, num_buckets)
    cuts = tuple(float(ordered[max(b, 1) - 1]) for b in boundaries)
    higher_is_easier = get_metric(metric).higher_is_easier
    ranks = [num_buckets - 1 - i if higher_is_easier else i for i in range(num_buckets)]
    buckets = _buckets(cuts, [names[rank] for rank in ranks], ranks)
    split_ranks = tuple(boundaries) + (total,) if ties == "split" else None
    return Plan(metric, "percentile", cuts, buckets, ties, params, split_ranks)


def threshold_plan(
    metric: str,
    thresholds: Sequence[float],
    names: Sequence[str] | None = None,
    params: Params = Params(),
) -> Plan:
    """Buckets ``<= a``, ``(a, b]``, ``> b``...; names are given in that (ascending value) order."""
    cuts = tuple(sorted(float(t) for t in thresholds))
    if not cuts:
        raise BucketingError("--thresholds needs at least one value")
    if not all(np.isfinite(cuts)):
        raise BucketingError("--thresholds must be finite numbers")
    if len(set(cuts)) != len(cuts):
        raise BucketingError(f"--thresholds must be distinct: {', '.join(f'{c:g}' for c in cuts)}")
    count = len(cuts) + 1
    names = list(names) if names else [f"bucket_{i}" for i in range(count)]
    if len(names) != count:
        raise BucketingError(f"{len(names)} bucket names given for {count} buckets ({len(cuts)} thresholds + 1)")
    check_names(names)
    higher_is_easier = get_metric(metric).higher_is_easier
    ranks = [count - 1 - i if higher_is_easier else i for i in range(count)]
    return Plan(metric, "thresholds", cuts, _buckets(cuts, names, ranks), "keep", params)


LEARNABILITY = (  # by interval of success_rate: none pass, some pass, all pass
    ("unsolved", "no response passes"),
    ("learnable", "some responses pass"),
    ("solved", "every response passes"),
)


def learnability_plan(params: Params = Params()) -> Plan:
    """Three buckets by success rate at the pass threshold: solved, learnable, unsolved (easiest first).

    The filter trainers apply (DAPO, POLARIS, Skywork-OR1): prompts never or always solved teach
    nothing under group-relative advantages; the learnable ones do.
    """
    cuts = (0.0, math.nextafter(1.0, 0.0))  # success_rate <= 0; 0 < rate < 1; rate == 1
    names = [name for name, _ in LEARNABILITY]
    plan = threshold_plan("success_rate", cuts, names, params)
    labels = dict(LEARNABILITY)
    return replace(plan, buckets=tuple(replace(b, label=labels[b.name]) for b in plan.buckets), preset="learnability")


PRESETS = {"learnability": learnability_plan}


def plan_from_manifest(manifest: dict) -> Plan:
    """The plan a manifest recorded, to apply to other data (by value: cuts and names)."""
    try:
        metric = manifest["metric"]
        get_metric(metric)
        raw = manifest.get("params", {})
        params = Params(k=int(raw.get("k", 1)), pass_threshold=float(raw.get("pass_threshold", 0.5)))
        cuts = tuple(float(c) for c in manifest["cuts"])
        by_interval = sorted(manifest["buckets"], key=_interval_key)
        names = [bucket["name"] for bucket in by_interval]
        ranks = [int(bucket["difficulty_rank"]) for bucket in by_interval]
        labels = {bucket["name"]: bucket.get("label") for bucket in by_interval}
    except BucketingError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise BucketingError(f"the manifest is missing or has a bad field: {exc}") from None
    if list(cuts) != sorted(cuts) or len(names) != len(cuts) + 1 or sorted(ranks) != list(range(len(names))):
        raise BucketingError("the manifest's cuts and buckets don't fit together")
    check_names(names)
    buckets = tuple(replace(b, label=labels[b.name]) for b in _buckets(cuts, names, ranks))
    preset = manifest.get("preset")
    return Plan(metric, "thresholds", cuts, buckets, "keep", params, preset=preset if preset in PRESETS else None)


def _interval_key(bucket: dict) -> tuple[float, float]:
    lower, upper = bucket.get("lower"), bucket.get("upper")
    return (-np.inf if lower is None else float(lower), np.inf if upper is None else float(upper))


def balanced_boundaries(ordered: np.ndarray, count: int) -> list[int]:
    """Sizes of the lower parts at each cut, cutting only between distinct values.

    Minimises the sum of squared differences from equal sizes over the few
    possible cut positions nearest each ideal one (dynamic programming).
    """
    total = len(ordered)
    gaps = np.append(np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, total)  # possible boundaries, ascending
    ideal = total / count
    options = []
    for j in range(1, count):
        at = int(np.searchsorted(gaps, j * ideal))
        options.append(gaps[max(at - _NEIGHBOURS, 0) : at + _NEIGHBOURS].tolist())
    # best[b] = (cost, path) of the best way to reach boundary b at this layer
    best = {0: (0.0, [])}
    for layer in options:
        best = {
            b: min((cost + (b - prev - ideal) ** 2, path + [b]) for prev, (cost, path) in best.items() if prev <= b)
            for b in layer
            if any(prev <= b for prev in best)
        }
    _, path = min((cost + (total - prev - ideal) ** 2, path) for prev, (cost, path) in best.items())
    return path


def bucket_stats(plan: Plan, ordered: np.ndarray) -> dict[str, np.ndarray | list]:
    """Per bucket, easiest first: name, count, share, min, max, lower, upper, difficulty_rank (columns).

    ``ordered`` is the metric's values sorted ascending: every bucket is a
    slice of it, so this costs O(buckets * log n), fast enough to redo on
    every drag of a threshold.
    """
    ordered = np.asarray(ordered, dtype=np.float64)
    edges = plan.edges(ordered)
    starts, stops = edges[:-1], edges[1:]
    count = stops - starts
    empty = count == 0
    low = np.where(empty, np.nan, ordered[np.minimum(starts, len(ordered) - 1)])
    high = np.where(empty, np.nan, ordered[np.maximum(stops - 1, 0)])
    order = [b.interval for b in plan.buckets]  # easiest first
    return {
        "name": plan.names,
        "count": count[order],
        "share": count[order] / max(len(ordered), 1),
        "min": low[order],
        "max": high[order],
        "lower": [b.lower for b in plan.buckets],
        "upper": [b.upper for b in plan.buckets],
        "difficulty_rank": [b.rank for b in plan.buckets],
    }


def bucket_table(plan: Plan, ordered: np.ndarray) -> pd.DataFrame:
    """:func:`bucket_stats` as a DataFrame, one row per bucket (for the app and the library)."""
    import pandas as pd  # here, not at the top: the command line never needs pandas

    return pd.DataFrame(bucket_stats(plan, ordered))


def _buckets(cuts: tuple[float, ...], names_by_interval: list[str], ranks_by_interval: list[int]) -> tuple[Bucket, ...]:
    buckets = [
        Bucket(
            name,
            rank,
            interval,
            lower=cuts[interval - 1] if interval > 0 else None,
            upper=cuts[interval] if interval < len(cuts) else None,
        )
        for interval, (name, rank) in enumerate(zip(names_by_interval, ranks_by_interval))
    ]
    return tuple(sorted(buckets, key=lambda b: b.rank))
