"""Summaries of one metric's values for charts and captions: pre-binned counts, not points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DISTINCT_BARS = 25  # up to this many distinct values, draw one bar per value
LOG_SPAN = 1000  # positive values whose largest is this many times the smallest get bins of equal ratio


@dataclass(frozen=True)
class Histogram:
    """Bars: ``counts[i]`` values in ``[left[i], right[i])`` (the last bar closed), or at one exact value."""

    left: np.ndarray
    right: np.ndarray
    counts: np.ndarray
    exact: bool  # one bar per distinct value (left == right)
    log: bool = False  # bins of equal ratio (right / left), for a log axis: the values span orders of magnitude


@dataclass(frozen=True)
class Description:
    count: int
    min: float
    median: float
    max: float
    distinct: int


def histogram(ordered: np.ndarray, bins: int = 40) -> Histogram:
    """Counts of the ascending ``ordered`` values: per distinct value when there are few, else in equal bins
    (of equal width, or of equal ratio when the values are positive and span orders of magnitude)."""
    ordered = np.asarray(ordered, dtype=np.float64)
    values, counts = np.unique(ordered, return_counts=True)
    log = bool(len(values) and values[0] > 0 and values[-1] >= values[0] * LOG_SPAN)  # a bool, not numpy's
    if len(values) <= MAX_DISTINCT_BARS:
        return Histogram(values, values, counts, exact=True, log=log)
    edges = np.geomspace(values[0], values[-1], bins + 1) if log else bins
    counts, edges = np.histogram(ordered, bins=edges)
    return Histogram(edges[:-1], edges[1:], counts, exact=False, log=log)


def describe(ordered: np.ndarray) -> Description:
    ordered = np.asarray(ordered, dtype=np.float64)
    if not len(ordered):
        return Description(0, np.nan, np.nan, np.nan, 0)
    distinct = int(np.count_nonzero(np.diff(ordered))) + 1
    return Description(len(ordered), float(ordered[0]), float(np.median(ordered)), float(ordered[-1]), distinct)


@dataclass(frozen=True)
class Comparison:
    """Two plans applied to the same rollouts: how many each pair of their buckets shares, and more."""

    ids_a: np.ndarray  # bucket of each rollout by plan a (0 = easiest)
    ids_b: np.ndarray
    cells: np.ndarray  # cells[i, j]: rollouts in bucket i of a and bucket j of b
    agreement: float  # share of rollouts with the same difficulty rank in both
    rank_correlation: float  # Spearman's, of the two metrics' values
    density: np.ndarray  # density[i, j]: rollouts with value a in edges_a[i:i+2] and b in edges_b[j:j+2]
    edges_a: np.ndarray
    edges_b: np.ndarray


def compare(values_a: np.ndarray, values_b: np.ndarray, plan_a, plan_b, bins: int = 40) -> Comparison:
    """Cross two plans (on two metrics) over the same rollouts."""
    count_a, count_b = len(plan_a.buckets), len(plan_b.buckets)
    ids_a, ids_b = plan_a.assign(values_a), plan_b.assign(values_b)
    cells = np.bincount(ids_a.astype(np.int64) * count_b + ids_b, minlength=count_a * count_b).reshape(count_a, count_b)
    agreement = float(np.mean(ids_a == ids_b)) if len(ids_a) and count_a == count_b else 0.0
    correlation = 0.0
    if len(values_a) > 1:
        correlation = float(np.nan_to_num(np.corrcoef(_average_ranks(values_a), _average_ranks(values_b))[0, 1]))
    density, edges_a, edges_b = np.histogram2d(values_a, values_b, bins=bins)
    return Comparison(ids_a, ids_b, cells, agreement, correlation, density, edges_a, edges_b)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties sharing their average rank (Spearman's), so row order can't change the correlation."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends - 1) / 2, ends - starts)
    return ranks
