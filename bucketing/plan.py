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
from typing import TYPE_CHECKING, Annotated, Sequence

import msgspec
import numpy as np

from .errors import BucketingError
from .metrics import MAX_K, Params, get_metric
from .progress import counted

if TYPE_CHECKING:
    import pandas as pd

# \Z, not $: "$" also matches before a final "\n", and "x\n" would become a file name (anchored for .match users too)
NAME_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
TIES = ("keep", "split")
# An export with --cumulative and --val-fraction writes 6n + 1 files and keeps them open at once (n buckets, n stages,
# each again under train/ and val/, and the skipped lines): 100 buckets stay well inside the usual 1024 open files.
MAX_BUCKETS = 100
TOO_MANY = f"at most {MAX_BUCKETS} buckets are allowed (an export keeps up to 6 files per bucket open at once)"
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
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise BucketingError(
            f"{what} {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )


def check_count(count: int, source: str) -> None:
    """Refuse more than :data:`MAX_BUCKETS` buckets; ``source`` says where the count came from."""
    if count > MAX_BUCKETS:
        raise BucketingError(f"{count} buckets ({source}); {TOO_MANY}")


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
    check_count(num_buckets, "-n/--num-buckets")
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
    if not (np.isfinite(ordered[0]) and np.isfinite(ordered[-1])):  # sorted: NaN last, -inf first, inf before NaN
        bad = int(np.count_nonzero(~np.isfinite(ordered)))
        raise BucketingError(f"{metric} is not a finite number for {counted(bad, 'rollout')}; "
                             "a metric must give a finite number for every rollout")
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
    check_count(len(thresholds) + 1, f"{len(thresholds)} --thresholds")
    try:
        cuts = tuple(sorted(float(t) for t in thresholds))
    except (TypeError, ValueError):
        raise BucketingError(f"--thresholds must be numbers, not {list(thresholds)!r:.80}") from None
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


class SavedParams(msgspec.Struct, kw_only=True):
    """The params a manifest records (those a plan uses)."""

    k: Annotated[int, msgspec.Meta(ge=1, le=MAX_K)] = 1
    pass_threshold: float = 0.5


class SavedBucket(msgspec.Struct, kw_only=True):
    name: str
    difficulty_rank: int
    lower: float | None = None
    upper: float | None = None
    label: str | None = None


class SavedPlan(msgspec.Struct, kw_only=True):
    """The fields of a manifest that make a plan, typed: decoding checks each one and names it (``$.cuts[0]``)."""

    metric: str
    cuts: list[float]
    buckets: list[SavedBucket]
    params: SavedParams = msgspec.field(default_factory=SavedParams)
    preset: str | None = None


def check_saved_plan(saved: SavedPlan) -> list[int]:
    """What typing can't say: finite ascending cuts, one bucket per interval, ranks 0..n-1, good names.

    Returns each bucket's interval (0 = lowest values). Raises :class:`BucketingError` naming the field.
    """
    cuts, buckets = saved.cuts, saved.buckets
    check_count(len(buckets), "$.buckets")
    if not math.isfinite(saved.params.pass_threshold):
        raise BucketingError(f"$.params.pass_threshold is {saved.params.pass_threshold}, not a finite number")
    for i, cut in enumerate(cuts):
        if not math.isfinite(cut):
            raise BucketingError(f"$.cuts[{i}] is {cut}, not a finite number")
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):  # equal cuts happen: one value can fill several buckets
        if a > b:
            raise BucketingError(f"$.cuts must be ascending: $.cuts[{i}] is {a}, $.cuts[{i + 1}] {b}")
    if len(buckets) != len(cuts) + 1:
        raise BucketingError(f"$.cuts: {counted(len(cuts), 'cut point')} for {len(buckets)} buckets "
                             "(there must be one fewer)")
    if sorted(b.difficulty_rank for b in buckets) != list(range(len(buckets))):
        raise BucketingError(f"$.buckets: the difficulty ranks must be 0 to {len(buckets) - 1}, each once")
    check_names([b.name for b in buckets])
    bounds = [None, *cuts, None]
    free: dict[tuple, list[int]] = {}  # (lower, upper) -> the intervals with those bounds not yet taken, in order
    for interval in range(len(buckets)):
        free.setdefault((bounds[interval], bounds[interval + 1]), []).append(interval)
    intervals = []
    for i, b in enumerate(buckets):  # (lower, upper] must be the interval between two neighbouring cuts
        taken = free.get((b.lower, b.upper))
        if not taken:
            raise BucketingError(f"$.buckets[{i}]: lower {b.lower} and upper {b.upper} don't match the cut points "
                                 "(or another bucket has them)")
        intervals.append(taken.pop(0))
    return intervals


def plan_from_manifest(manifest: dict) -> Plan:
    """The plan a manifest recorded, to apply to other data (by value: cuts and names).

    Any manifest, however broken, raises :class:`BucketingError` naming the bad field.
    """
    try:
        saved = msgspec.convert(manifest, SavedPlan)
        intervals = check_saved_plan(saved)
    except (msgspec.ValidationError, RecursionError, BucketingError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise BucketingError(f"the manifest has a bad field: {problem}") from None
    get_metric(saved.metric)
    params = Params(k=saved.params.k, pass_threshold=saved.params.pass_threshold)
    by_interval = sorted(zip(intervals, saved.buckets), key=lambda pair: pair[0])
    names = [bucket.name for _, bucket in by_interval]
    ranks = [bucket.difficulty_rank for _, bucket in by_interval]
    labels = {bucket.name: bucket.label for bucket in saved.buckets}
    cuts = tuple(saved.cuts)
    buckets = tuple(replace(b, label=labels[b.name]) for b in _buckets(cuts, names, ranks))
    preset = saved.preset if saved.preset in PRESETS else None
    return Plan(saved.metric, "thresholds", cuts, buckets, "keep", params, preset=preset)


def balanced_boundaries(ordered: np.ndarray, count: int) -> list[int]:
    """Sizes of the lower parts at each cut, cutting only between distinct values.

    Minimises the sum of squared differences from equal sizes over the few
    possible cut positions nearest each ideal one (dynamic programming).
    Linear in ``count``: each layer keeps, per boundary, its cost and the boundary
    before it (not the whole path), and the rank of its path in lexicographic order,
    so that ties go, as they always did, to the lexicographically smallest path.
    """
    total = len(ordered)
    gaps = np.append(np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, total)  # possible boundaries, ascending
    ideal = total / count
    costs, order = {0: 0.0}, {0: 0}  # per boundary reached: best cost; rank of its best path among this layer's
    back: list[dict[int, int]] = []  # per layer: boundary -> the boundary before it on its best path
    for j in range(1, count):
        at = int(np.searchsorted(gaps, j * ideal))
        reached, before = {}, {}
        for b in gaps[max(at - _NEIGHBOURS, 0) : at + _NEIGHBOURS].tolist():
            steps = [(cost + (b - prev - ideal) ** 2, order[prev], prev) for prev, cost in costs.items() if prev <= b]
            if steps:
                reached[b], _, before[b] = min(steps)
        order = {b: rank for rank, b in enumerate(sorted(reached, key=lambda b: (order[before[b]], b)))}
        costs = reached
        back.append(before)
    _, _, last = min((cost + (total - prev - ideal) ** 2, order[prev], prev) for prev, cost in costs.items())
    path = []
    for before in reversed(back):
        path.append(last)
        last = before[last]
    return path[::-1]


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
