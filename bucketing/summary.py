"""Summaries of one metric's values for charts and captions: pre-binned counts, not points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DISTINCT_BARS = 25  # up to this many distinct values, draw one bar per value


@dataclass(frozen=True)
class Histogram:
    """Bars: ``counts[i]`` values in ``[left[i], right[i])`` (the last bar closed), or at one exact value."""

    left: np.ndarray
    right: np.ndarray
    counts: np.ndarray
    exact: bool  # one bar per distinct value (left == right)


@dataclass(frozen=True)
class Description:
    count: int
    min: float
    median: float
    max: float
    distinct: int


def histogram(ordered: np.ndarray, bins: int = 40) -> Histogram:
    """Counts of the ascending ``ordered`` values: per distinct value when there are few, else in equal bins."""
    ordered = np.asarray(ordered, dtype=np.float64)
    values, counts = np.unique(ordered, return_counts=True)
    if len(values) <= MAX_DISTINCT_BARS:
        return Histogram(values, values, counts, exact=True)
    counts, edges = np.histogram(ordered, bins=bins)
    return Histogram(edges[:-1], edges[1:], counts, exact=False)


def describe(ordered: np.ndarray) -> Description:
    ordered = np.asarray(ordered, dtype=np.float64)
    if not len(ordered):
        return Description(0, np.nan, np.nan, np.nan, 0)
    distinct = int(np.count_nonzero(np.diff(ordered))) + 1
    return Description(len(ordered), float(ordered[0]), float(np.median(ordered)), float(ordered[-1]), distinct)
