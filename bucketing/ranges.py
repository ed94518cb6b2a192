"""A bucket's range in words, true to the last digit: what the CLI, the manifest and the app print.

A bucket holds ``lower < v <= upper``.  A cut just below a short number reads as that number
(``v < 1`` rather than ``v <= 0.9999999999999999``), an interval holding one float reads
``v = 1``, and a cut through tied values (ties 'split') says which of the tied rollouts fall on
each side, in input order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tie:
    """A cut through equal values (ties 'split'): of the ``tied`` rollouts equal to the cut value,
    the first ``below`` in input order fall below it, the rest above."""

    tied: int
    below: int


def number(value: float) -> str:
    """``value`` short (``0.25``, ``1e+06``) where that is exact, else every digit it needs."""
    if value == 0:
        return "0"  # -0.0 too: it compares equal to 0, and "<= -0" reads as a different statement
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def _just_above(cut: float) -> str | None:
    """The short number right above ``cut`` when ``cut`` is the float just below it (``v <= cut`` is ``v < it``)."""
    up = math.nextafter(cut, math.inf)
    return number(up) if float(f"{up:g}") == up and len(number(up)) < len(number(cut)) else None


def cut_text(cut: float) -> str:
    """A cut point as people read it: ``0.5``, or ``just below 1`` for the float right under 1."""
    above = _just_above(cut)
    return f"just below {above}" if above else number(cut)


def interval_text(
    metric: str, lower: float | None, upper: float | None, upper_open: bool = False, lower_closed: bool = False
) -> str:
    """``lower < metric <= upper`` (``< upper`` with ``upper_open``, ``lower <=`` with ``lower_closed``), in the
    clearest true words."""
    if lower is None and upper is None:
        return f"any {metric}"
    if lower is not None and upper is not None and not upper_open and math.nextafter(lower, math.inf) == upper:
        return f"{metric} = {number(upper)}"
    if upper is None:
        high = ""
    elif upper_open:
        high = f"< {number(upper)}"
    else:
        high = f"< {_just_above(upper)}" if _just_above(upper) else f"<= {number(upper)}"
    if lower is None:
        return f"{metric} {high}"
    above = number(lower) if lower_closed else _just_above(lower)
    if upper is None:
        return f"{metric} >= {above}" if above else f"{metric} > {number(lower)}"
    low = f"{above} <=" if above else f"{number(lower)} <"
    return f"{low} {metric} {high}"


def split_text(metric: str, lower: float | None, upper: float | None, low_tie: Tie | None, high_tie: Tie | None) -> str:
    """The range of a bucket bounded by cuts that may split tied values (``*_tie``: None for a plain cut)."""
    if low_tie is None and high_tie is None:
        return interval_text(metric, lower, upper)
    if lower is not None and lower == upper:  # both cuts at one value: a run of the tied rollouts
        assert low_tie is not None and high_tie is not None  # two cuts at one value always split its ties
        first, last, tied = low_tie.below + 1, high_tie.below, high_tie.tied
        if last < first:
            return f"{metric} = {number(upper)}: none of the {tied} tied there (they fall in the buckets beside it)"
        which = f"rollout {first}" if first == last else f"rollouts {first}–{last}"
        return f"{metric} = {number(upper)}: {which} of the {tied} tied there, in input order"
    parts = []
    if low_tie is not None and lower is not None and 0 < low_tie.below < low_tie.tied:
        parts.append(
            f"{metric} = {number(lower)} (the last {low_tie.tied - low_tie.below} of {low_tie.tied} tied, "
            "in input order)"
        )
    parts.append(
        interval_text(
            metric,
            lower,
            upper,
            upper_open=high_tie is not None,
            lower_closed=low_tie is not None and low_tie.below == 0,
        )
    )
    if high_tie is not None and upper is not None and high_tie.below > 0:
        parts.append(f"{metric} = {number(upper)} (the first {high_tie.below} of {high_tie.tied} tied, in input order)")
    return ", or ".join(parts)
