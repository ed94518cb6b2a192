"""Where the cut points of a percentile plan go when equal values stay together (ties 'keep').

With at least as many distinct values as buckets, every bucket gets some (:func:`balanced_boundaries`), and
each cut is the shortest number between the values on its two sides (:func:`short_between`).
With fewer, each distinct value gets a bucket of its own, spread so that the easiest value is in the
easiest bucket and the hardest in the hardest; a single value sits in the middle bucket
(:func:`sparse_positions`); the buckets left empty get cut points between the values
(:func:`padded_cuts`) — readable numbers, strictly increasing, so that no range is empty as an interval.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, Decimal

import numpy as np

from .errors import BucketingError

_NEIGHBOURS = 4  # candidate cut positions looked at on each side of an ideal one


def balanced_boundaries(ordered: np.ndarray, count: int) -> list[int]:
    """Sizes of the lower parts at each cut, cutting only between distinct values, none empty.

    Needs at least ``count`` distinct values.  Minimises the sum of squared differences from
    equal sizes over the few possible cut positions nearest each ideal one (dynamic programming);
    every boundary is strictly above the one before and below the total, so no bucket is empty.
    Linear in ``count``: each layer keeps, per boundary, its cost and the boundary before it (not
    the whole path), and the rank of its path in lexicographic order, so that ties go to the
    lexicographically smallest path.
    """
    total = len(ordered)
    gaps = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1  # possible boundaries (never 0, never total)
    if len(gaps) < count - 1:
        raise ValueError(f"{len(gaps) + 1} distinct values for {count} buckets")
    ideal = total / count
    costs, order = {0: 0.0}, {0: 0}  # per boundary reached: best cost; rank of its best path among this layer's
    back: list[dict[int, int]] = []  # per layer: boundary -> the boundary before it on its best path
    for j in range(1, count):
        low, high = j - 1, len(gaps) - (count - j)  # leave a gap for each layer before and after this one
        at = int(np.searchsorted(gaps, j * ideal))
        start, stop = max(at - _NEIGHBOURS, low), min(at + _NEIGHBOURS, high + 1)
        if start >= stop:  # the ideal is far from every gap this layer may use: the nearest ones
            start, stop = (
                (low, min(low + _NEIGHBOURS, high + 1)) if at < low else (max(high + 1 - _NEIGHBOURS, low), high + 1)
            )
        candidates = gaps[start:stop].tolist()
        reached, before = _layer(candidates, costs, order, ideal)
        if not reached:  # every candidate is at or below every boundary reached: the next gap up is always free
            reached, before = _layer([int(gaps[np.searchsorted(gaps, min(costs), side="right")])], costs, order, ideal)
        order = {b: rank for rank, b in enumerate(sorted(reached, key=lambda b: (order[before[b]], b)))}
        costs = reached
        back.append(before)
    _, _, last = min((cost + (total - prev - ideal) ** 2, order[prev], prev) for prev, cost in costs.items())
    path = []
    for before in reversed(back):
        path.append(last)
        last = before[last]
    return path[::-1]


def _layer(candidates: list[int], costs: dict[int, float], order: dict[int, int], ideal: float):
    """The best way to reach each candidate boundary from one strictly below it."""
    reached, before = {}, {}
    for b in candidates:
        steps = [(cost + (b - prev - ideal) ** 2, order[prev], prev) for prev, cost in costs.items() if prev < b]
        if steps:
            reached[b], _, before[b] = min(steps)
    return reached, before


def sparse_positions(distinct: int, count: int, higher_is_easier: bool) -> list[int]:
    """The interval (0 = lowest values) of each of ``distinct`` < ``count`` values, ascending.

    The lowest value goes to the lowest interval and the highest to the highest, the others spread
    evenly between; a single value goes to the middle bucket — for an even count, the easier of the two.
    """
    if distinct == 1:
        rank = (count - 1) // 2  # difficulty rank of the middle bucket (the easier one for an even count)
        return [count - 1 - rank if higher_is_easier else rank]
    return [(2 * i * (count - 1) + distinct - 1) // (2 * (distinct - 1)) for i in range(distinct)]


def padded_cuts(values: np.ndarray, positions: list[int], count: int) -> tuple[float, ...]:
    """Strictly increasing cuts that put distinct ``values`` (ascending) in intervals ``positions``.

    The cut above a value is the value itself; the cuts of empty intervals between two values are
    short numbers evenly between them; below or above the values, whole steps of a round unit away,
    the last just below the lowest value.  Values too close together for the cuts between them
    (neighbouring floats) get the empty intervals above them instead, or else below.
    """
    for places in (positions, list(range(len(values))), list(range(count - len(values), count))):
        try:
            return _padded_cuts(values, places, count)
        except BucketingError:
            pass
    raise BucketingError(
        f"{count} buckets don't fit between these values (they are too close together or too "
        "large); use fewer buckets or --thresholds"
    )


def _padded_cuts(values: np.ndarray, positions: list[int], count: int) -> tuple[float, ...]:
    cuts: list[float] = []
    low = float(values[0])
    below = positions[0]
    if below:  # only for a single value: empty intervals under it, then one ending just below it
        unit = _unit(low)
        cuts += [low - unit * k for k in range(below - 1, 0, -1)] + [math.nextafter(low, -math.inf)]
    for i in range(len(values) - 1):
        step = positions[i + 1] - positions[i]
        cuts += [float(values[i])] + _between(float(values[i]), float(values[i + 1]), step - 1)
    above = count - 1 - positions[-1]
    if above:
        high = float(values[-1])
        cuts += [high] + [high + _unit(high) * k for k in range(1, above)]
    if not all(math.isfinite(c) for c in cuts) or any(a >= b for a, b in zip(cuts, cuts[1:])):
        raise BucketingError("no room for these cuts")
    return tuple(cuts)


def short_between(low: float, high: float) -> float:
    """The shortest decimal number ``x`` with ``low <= x < high``: a cut that reads well (0.12 between
    0.1111111111111111 and 0.125) and holds the same values as ``low`` itself on these data."""
    if low <= 0 < high or low == 0:
        return 0.0
    exact = Decimal(low)
    top = exact.adjusted()  # the exponent of its first significant digit
    for digits in range(1, 18):
        nearest = float(f"{low:.{digits}g}")  # low itself, when it is short
        ceiling = float(exact.quantize(Decimal(1).scaleb(top - digits + 1), rounding=ROUND_CEILING))
        for candidate in (nearest, ceiling):
            if low <= candidate < high:
                return candidate
    return low


def _unit(value: float) -> float:
    """A round step for cut points away from ``value``: 1 near 0, else a power of ten below |value|."""
    return 1.0 if abs(value) < 10 else 10.0 ** math.floor(math.log10(abs(value)))


def _between(low: float, high: float, count: int) -> list[float]:
    """``count`` numbers strictly between ``low`` and ``high``, evenly spaced, each as short as it can be."""
    if count == 0:
        return []
    targets = [low * (1 - k / (count + 1)) + high * (k / (count + 1)) for k in range(1, count + 1)]
    for digits in range(1, 18):
        rounded = [float(f"{t:.{digits}g}") for t in targets]
        if all(a < b for a, b in zip([low, *rounded], [*rounded, high])):
            return rounded
    return targets  # no room even at full precision: padded_cuts says so
