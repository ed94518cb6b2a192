"""A plan: cut points on one metric and a name for each bucket; which bucket each rollout is in.

Cut points ``c1 < c2 < ...`` split the metric's values into intervals
``v <= c1``, ``c1 < v <= c2``, ..., ``v > c_last``.  Buckets are kept easiest
first, so a rollout's bucket index is also its bucket's difficulty rank
(0 = easiest).  A percentile plan with ties 'split' may cut through equal values:
such a cut records how many of the tied rollouts fall below it, in input order
(a :class:`~bucketing.ranges.Tie`), and several cuts may then share one value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated

import msgspec
import numpy as np

from .cuts import balanced_boundaries, padded_cuts, short_between, sparse_positions
from .errors import BucketingError
from .metrics import MAX_K, Params, get_metric
from .ranges import Tie, cut_text, interval_text, number, split_text
from .wording import counted

if TYPE_CHECKING:
    import pandas as pd

# \Z, not $: "$" also matches before a final "\n", and "x\n" would become a file name (anchored for .match users too)
NAME_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
TIES = ("keep", "split")
# An export with --cumulative and --val-fraction writes 6n + 1 files and keeps them open at once (n buckets, n stages,
# each again under train/ and val/, and the skipped lines): 100 buckets stay well inside the usual 1024 open files.
MAX_BUCKETS = 100
TOO_MANY = f"at most {MAX_BUCKETS} buckets are allowed (an export keeps up to 6 files per bucket open at once)"
WAYS_OUT = "fewer buckets, --thresholds or --preset learnability"


@dataclass(frozen=True)
class Bucket:
    name: str
    rank: int  # 0 = easiest
    interval: int  # 0 = lowest metric values
    lower: float | None  # values > lower (None: no lower bound)
    upper: float | None  # values <= upper (None: no upper bound)
    label: str | None = None  # what the range means, in words (a preset's buckets)

    def describe_range(self, metric: str) -> str:
        """The range in words, as if no cut split a tie (:meth:`Plan.ranges` knows the ties)."""
        return self.label or interval_text(metric, self.lower, self.upper)


@dataclass(frozen=True)
class Plan:
    metric: str
    mode: str  # "percentile" or "thresholds"
    cuts: tuple[float, ...]  # ascending
    buckets: tuple[Bucket, ...]  # easiest first
    ties: str = "keep"
    params: Params = Params()
    preset: str | None = None  # made by a preset (see PRESETS), e.g. "learnability"
    cut_ties: tuple[Tie | None, ...] = ()  # per cut (when any): how a cut through tied values splits them
    notes: tuple[str, ...] = ()  # what applying a saved plan to other values changed (see fitted)

    @property
    def names(self) -> list[str]:
        return [bucket.name for bucket in self.buckets]

    def tie(self, cut: int) -> Tie | None:
        return self.cut_ties[cut] if self.cut_ties else None

    def assign(self, values: np.ndarray) -> np.ndarray:
        """Bucket index (= difficulty rank) of each value (in input order: it breaks split ties)."""
        values = np.asarray(values, dtype=np.float64)
        intervals = np.searchsorted(np.asarray(self.cuts, dtype=np.float64), values, side="left")
        for value in sorted({self.cuts[j] for j in range(len(self.cuts)) if self.tie(j)}):
            tied = np.flatnonzero(values == value)  # in input order
            order = np.arange(len(tied))
            for j, cut in enumerate(self.cuts):
                tie = self.tie(j)
                if cut == value and tie is not None:
                    intervals[tied] += order >= fitted(tie, len(tied)).below
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

    def renamed(self, names: Sequence[str]) -> Plan:
        """The same plan with new names, given easiest first."""
        if len(names) != len(self.buckets):
            raise BucketingError(f"{len(names)} names given for {len(self.buckets)} buckets")
        check_names(names)
        return replace(self, buckets=tuple(replace(b, name=name) for b, name in zip(self.buckets, names)))

    def edges(self, ordered: np.ndarray) -> np.ndarray:
        """Where each interval starts in the ascending ``ordered`` values, plus the total at the end."""
        cuts = np.asarray(self.cuts, dtype=np.float64)
        inner = np.searchsorted(ordered, cuts, side="right")
        if self.cut_ties:
            first = np.searchsorted(ordered, cuts, side="left")
            for j, tie in enumerate(self.cut_ties):
                if tie is not None:
                    inner[j] = first[j] + fitted(tie, int(inner[j] - first[j])).below
        return np.concatenate([[0], inner, [len(ordered)]]).astype(np.int64)

    def fitted(self, ordered: np.ndarray) -> Plan:
        """This plan with each split tie counted on ``ordered``; where the count differs from the one recorded
        (other data than the plan was made from) the same share goes below the cut, and a note says so."""
        if not self.cut_ties:
            return self
        cuts = np.asarray(self.cuts, dtype=np.float64)
        counts = np.searchsorted(ordered, cuts, side="right") - np.searchsorted(ordered, cuts, side="left")
        ties = tuple(None if t is None else fitted(t, int(n)) for t, n in zip(self.cut_ties, counts.tolist()))
        notes = [
            f"the plan splits the {old.tied} rollouts at {self.metric} = {number(cut)} in input order, "
            f"{old.below} below cut {j + 1}; these data have {new.tied} there: {new.below} go below it, and "
            "equal sizes are not guaranteed"
            for j, (cut, old, new) in enumerate(zip(self.cuts, self.cut_ties, ties))
            if old is not None and new is not None and old != new
        ]
        return replace(self, cut_ties=ties, notes=self.notes + tuple(notes))

    def ranges(self) -> list[str]:
        """Each bucket's range in words, easiest first: true of every member, ties included."""
        texts = []
        for b in self.buckets:
            low = self.tie(b.interval - 1) if b.interval > 0 else None
            high = self.tie(b.interval) if b.interval < len(self.cuts) else None
            texts.append(b.label or split_text(self.metric, b.lower, b.upper, low, high))
        return texts


def fitted(tie: Tie, tied: int) -> Tie:
    """``tie`` for data with ``tied`` rollouts at its value: the same share below the cut (exact when it was made
    from these values: then ``tied`` is what it recorded)."""
    if tied == tie.tied:
        return tie
    return Tie(tied, round(tie.below * tied / tie.tied) if tie.tied else 0)


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
            raise BucketingError(
                f"bucket names {seen[name.lower()]!r} and {name!r} are the same file name ignoring case"
            )
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
    gaps between distinct values to balance the sizes (least squares), every bucket
    non-empty.  With fewer distinct values than buckets each value gets its own bucket,
    the lowest and the highest at the two ends, a single value in the middle
    (:mod:`bucketing.cuts`).  ``ties="split"``: exactly equal sizes; equal values are
    ordered by input order, and a cut through them records the split (``cut_ties``).
    """
    names = percentile_names(num_buckets, names, ties)
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    total = len(ordered)
    if total == 0:
        raise BucketingError("no rollouts to bucket")
    if not (np.isfinite(ordered[0]) and np.isfinite(ordered[-1])):  # sorted: NaN last, -inf first, inf before NaN
        bad = int(np.count_nonzero(~np.isfinite(ordered)))
        raise BucketingError(
            f"{metric} is not a finite number for {counted(bad, 'rollout')}; "
            "a metric must give a finite number for every rollout"
        )
    higher_is_easier = get_metric(metric).higher_is_easier
    cut_ties: tuple[Tie | None, ...] = ()
    distinct = np.append(ordered[:1], ordered[1:][ordered[1:] != ordered[:-1]])
    if ties == "split":
        boundaries = [j * total // num_buckets for j in range(1, num_buckets)]
        cuts = tuple(float(ordered[max(b, 1) - 1]) for b in boundaries)
        cut_ties = _split_ties(ordered, cuts, boundaries)
    elif len(distinct) >= num_buckets:
        cuts = tuple(
            short_between(float(ordered[b - 1]), float(ordered[b])) for b in balanced_boundaries(ordered, num_buckets)
        )
    else:
        cuts = padded_cuts(distinct, sparse_positions(len(distinct), num_buckets, higher_is_easier), num_buckets)
    ranks = [num_buckets - 1 - i if higher_is_easier else i for i in range(num_buckets)]
    buckets = _buckets(cuts, [names[rank] for rank in ranks], ranks)
    return Plan(metric, "percentile", cuts, buckets, ties, params, cut_ties=cut_ties if any(cut_ties) else ())


def _split_ties(ordered: np.ndarray, cuts: tuple[float, ...], boundaries: list[int]) -> tuple[Tie | None, ...]:
    """The tie each split cut makes (rollouts below it at its value); None for a cut that splits none and
    shares its value with no other cut."""
    first = np.searchsorted(ordered, cuts, side="left").tolist()
    stop = np.searchsorted(ordered, cuts, side="right").tolist()
    ties = []
    for j, (cut, boundary) in enumerate(zip(cuts, boundaries)):
        shared = cut in cuts[:j] + cuts[j + 1 :]
        below = boundary - first[j]
        ties.append(Tie(stop[j] - first[j], below) if shared or below < stop[j] - first[j] else None)
    return tuple(ties)


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


class SavedTie(msgspec.Struct, kw_only=True):
    tied: Annotated[int, msgspec.Meta(ge=0)]
    below: Annotated[int, msgspec.Meta(ge=0)]


class SavedPlan(msgspec.Struct, kw_only=True):
    """The fields of a manifest that make a plan, typed: decoding checks each one and names it (``$.cuts[0]``)."""

    metric: str
    cuts: list[float]
    cut_ties: list[SavedTie | None] = []
    buckets: Sequence[SavedBucket]  # (not list: the manifest's reader narrows it to its buckets, which name a file)
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
    ties = saved.cut_ties or [None] * len(cuts)
    if len(ties) != len(cuts):
        raise BucketingError(f"$.cut_ties: {len(ties)} entries for {counted(len(cuts), 'cut point')} (one per cut)")
    for i, tie in enumerate(ties):
        if tie is not None and tie.below > tie.tied:
            raise BucketingError(f"$.cut_ties[{i}]: below ({tie.below}) is more than tied ({tie.tied})")
    for i, (cut, next_cut) in enumerate(zip(cuts, cuts[1:])):
        if cut > next_cut:
            raise BucketingError(f"$.cuts must be ascending: $.cuts[{i}] is {cut}, $.cuts[{i + 1}] {next_cut}")
        tie, next_tie = ties[i], ties[i + 1]
        if cut == next_cut and not (tie and next_tie and tie.tied == next_tie.tied and tie.below <= next_tie.below):
            raise BucketingError(
                f"$.cuts[{i}] and $.cuts[{i + 1}] are both {cut}, and $.cut_ties doesn't say how the "
                "values there are split (a plan from an earlier version?); make the plan again"
            )
    if len(buckets) != len(cuts) + 1:
        raise BucketingError(
            f"$.cuts: {counted(len(cuts), 'cut point')} for {len(buckets)} buckets (there must be one fewer)"
        )
    if sorted(b.difficulty_rank for b in buckets) != list(range(len(buckets))):
        raise BucketingError(f"$.buckets: the difficulty ranks must be 0 to {len(buckets) - 1}, each once")
    check_names([b.name for b in buckets])
    bounds = [None, *cuts, None]
    free: dict[tuple, list[int]] = {}  # (lower, upper) -> the intervals with those bounds, ascending
    for interval in range(len(buckets)):
        free.setdefault((bounds[interval], bounds[interval + 1]), []).append(interval)
    claims: dict[tuple, list[int]] = {}  # (lower, upper) -> the buckets that name them
    for i, b in enumerate(buckets):  # (lower, upper] must be the interval between two neighbouring cuts
        if (b.lower, b.upper) not in free:
            raise BucketingError(f"$.buckets[{i}]: lower {b.lower} and upper {b.upper} don't match the cut points")
        claims.setdefault((b.lower, b.upper), []).append(i)
    ends = [claims.get((None, cuts[0] if cuts else None)), claims.get((cuts[-1] if cuts else None, None))]
    rising = len(buckets) == 1 or (
        ends[0] and ends[1] and buckets[ends[0][0]].difficulty_rank < buckets[ends[1][0]].difficulty_rank
    )
    intervals = [0] * len(buckets)
    for key, members in claims.items():  # buckets sharing bounds (split ties): in interval order by their ranks
        if len(members) != len(free[key]):
            raise BucketingError(
                f"$.buckets[{members[-1]}]: lower {key[0]} and upper {key[1]} don't match the cut "
                "points (or another bucket has them)"
            )
        members.sort(key=lambda i: buckets[i].difficulty_rank, reverse=not rising)
        for i, interval in zip(members, free[key]):
            intervals[i] = interval
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
    ties = tuple(None if t is None else Tie(t.tied, t.below) for t in saved.cut_ties)
    return Plan(
        saved.metric,
        "thresholds",
        cuts,
        buckets,
        "split" if any(ties) else "keep",
        params,
        preset=preset,
        cut_ties=ties if any(ties) else (),
    )


def bucket_stats(plan: Plan, ordered: np.ndarray) -> dict[str, np.ndarray | list]:
    """Per bucket, easiest first: name, count, share, min, max, lower, upper, difficulty_rank, note (columns).

    ``note`` says why a bucket is empty ("" for the others).

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
        "note": [empty_reason(plan, ordered, text) if n == 0 else "" for n, text in zip(count[order], plan.ranges())],
    }


def distinct_count(ordered: np.ndarray) -> int:
    return int(len(ordered) > 0) + int(np.count_nonzero(ordered[1:] != ordered[:-1]))


def empty_reason(plan: Plan, ordered: np.ndarray, text: str) -> str:
    """Why a bucket of ``plan`` (with range ``text``) holds no rollout of ``ordered``."""
    count, distinct = len(plan.buckets), distinct_count(ordered)
    if plan.ties == "split" and plan.mode == "percentile" and len(ordered) < count:
        return f"empty: {counted(len(ordered), 'rollout')} for {count} buckets"
    if plan.mode == "percentile" and distinct < count:
        return f"empty: only {counted(distinct, 'distinct value')} for {count} buckets"
    return f"empty: no rollout has {text}"


def plan_warnings(plan: Plan, ordered: np.ndarray) -> list[str]:
    """What a user must look at before using these buckets, one line each, with the way out.

    Fewer distinct values than buckets; one value holding more than a bucket's share (percentile
    plans, which promise equal sizes); any empty bucket.
    """
    ordered = np.asarray(ordered, dtype=np.float64)
    total, count, metric = len(ordered), len(plan.buckets), plan.metric
    stats = bucket_stats(plan, ordered)
    empty = [name for name, n in zip(stats["name"], stats["count"]) if n == 0]
    warnings = list(plan.notes)
    distinct = distinct_count(ordered)
    explained = plan.mode == "percentile" and (total < count if plan.ties == "split" else distinct < count)
    if explained:
        why = stats["note"][plan.names.index(empty[0])].removeprefix("empty: ") if empty else ""
        warnings.append(f"{why}: {_listed(empty)} {'is' if len(empty) == 1 else 'are'} empty; use {WAYS_OUT}")
    if plan.mode == "percentile" and total:
        values, sizes = np.unique(ordered, return_counts=True)
        big = (sizes > total / count) & (sizes > 1)  # a single rollout can't be split: nothing to say
        for at in np.flatnonzero(big)[np.argsort(-sizes[big], kind="stable")][:3]:
            value, size = float(values[at]), int(sizes[at])
            held = sorted({int(i) for i in plan.assign(np.full(1, value))}) if plan.ties == "keep" else []
            where = (
                (
                    f"they all stay in {plan.names[held[0]]}, so the sizes can't be equal; --ties split makes them "
                    f"equal (splitting the tie in input order), or use {WAYS_OUT}"
                )
                if held
                else "they are split across buckets in input order (--ties split)"
            )
            warnings.append(
                f"{size} of {total} rollouts ({size / total:.0%}) have {metric} = {number(value)}, more "
                f"than one bucket's share ({total / count:.4g}): {where}"
            )
    if empty and not explained:
        for name, note in zip(stats["name"], stats["note"]):
            if note:
                hint = (
                    ""
                    if plan.preset
                    else "; move or remove a threshold"
                    if plan.mode == "thresholds"
                    else f"; use {WAYS_OUT}"
                )
                warnings.append(f"bucket {name} is {note}{hint}")
    return warnings


def cut_lines(plan: Plan, ordered: np.ndarray) -> list[str]:
    """Each cut point used and why it is there: printed beside the percentiles, which it need not equal."""
    total, count = len(ordered), len(plan.buckets)
    edges = plan.edges(ordered)
    lines = []
    for j, cut in enumerate(plan.cuts):
        below, tie = int(edges[j + 1]), plan.tie(j)
        head = f"cut {j + 1}: {cut_text(cut)} — {counted(below, 'rollout')} on its lower side"
        split = f", {tie.below} of the {tie.tied} at {number(cut)} (input order)" if tie else ""
        if plan.mode != "percentile" or not total:
            lines.append(head + split)
            continue
        point = 100 * (j + 1) / count
        if plan.ties == "split":
            lines.append(f"{head}, exactly {point:.4g}%{split}")
        elif edges[j] < below < edges[j + 2]:  # neither bucket beside it is empty
            lines.append(
                f"{head}: between {number(ordered[below - 1])} and {number(ordered[below])}, the nearest "
                f"place to the {point:.4g}% percentile ({np.percentile(ordered, point):.4g}) that keeps "
                "ties together"
            )
        else:
            lines.append(
                f"{head}: the bound of an empty bucket "
                f"(only {counted(distinct_count(ordered), 'distinct value')} for {count} buckets)"
            )
    return lines


def _listed(names: list[str]) -> str:
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1] if names else ""


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
