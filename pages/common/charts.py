"""Charts drawn from pre-binned counts (never one point per rollout)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

import bucketing
from bucketing.summary import Histogram

from .shared import bucket_colors, number


def _bar_bounds(bars: Histogram) -> tuple[np.ndarray, np.ndarray]:
    """Left and right edge of each bar; exact-value bars get a width from the gaps between values."""
    if not bars.exact:
        return bars.left, bars.right
    span = float(bars.left[-1] - bars.left[0]) or 1.0
    gap = float(np.diff(bars.left).min()) if len(bars.left) > 1 else span
    half = min(gap * 0.4, span * 0.02) or 0.02
    return bars.left - half, bars.left + half


def histogram_figure(bars: Histogram, height: int = 220) -> go.Figure:
    left, right = _bar_bounds(bars)
    figure = go.Figure(go.Bar(x=(left + right) / 2, y=bars.counts, width=right - left,
                              hovertemplate="%{x:.4g}: %{y} rollouts<extra></extra>"))
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10),
                         bargap=0.05, showlegend=False, yaxis_title="rollouts")
    return figure


def counts_figure(values: np.ndarray, label: str, height: int = 220) -> go.Figure:
    """Bars of how many rollouts have each integer value (e.g. responses per rollout)."""
    counts = np.bincount(values.astype(np.int64))
    present = np.flatnonzero(counts)
    figure = go.Figure(go.Bar(x=present, y=counts[present], hovertemplate=f"%{{x}} {label}: %{{y}} rollouts<extra></extra>"))
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), xaxis_title=label,
                         yaxis_title="rollouts", bargap=0.1)
    return figure


def sizes_figure(buckets: pd.DataFrame, height: int = 240) -> go.Figure:
    colors = bucket_colors(len(buckets))
    figure = go.Figure(go.Bar(x=buckets["name"], y=buckets["count"], marker_color=colors,
                              text=[f"{c:,}" for c in buckets["count"]], textposition="auto",
                              hovertemplate="%{x}: %{y} rollouts<extra></extra>"))
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), yaxis_title="rollouts",
                         xaxis_title="easiest → hardest")
    return figure


def drag_data(bars: Histogram, ordered: np.ndarray, plan: bucketing.Plan, buckets: pd.DataFrame) -> dict:
    """What the threshold chart draws: bars, bucket regions (coloured by rank), domain, snapping step, ticks."""
    left, right = _bar_bounds(bars)
    lo, hi = float(left.min()), float(right.max())
    pad = (hi - lo) * 0.03 or 0.5
    lo, hi = lo - pad, hi + pad
    step = 10.0 ** math.floor(math.log10((hi - lo) / 500))
    digits = max(0, -int(math.floor(math.log10(step))))
    colors = bucket_colors(len(plan.buckets))
    counts = dict(zip(buckets["name"], buckets["count"]))
    regions = [
        {
            "from": lo if b.lower is None else b.lower,
            "to": hi if b.upper is None else b.upper,
            "label": f"{b.name} ({counts[b.name]:,})",
            "color": colors[b.rank],
        }
        for b in plan.buckets
    ]
    ticks = sorted({float(number(t)) for t in np.linspace(float(ordered[0]), float(ordered[-1]), 5)})
    return {
        "bars": [{"left": float(a), "right": float(b), "count": int(c)} for a, b, c in zip(left, right, bars.counts)],
        "regions": regions,
        "domain": (lo, hi),
        "step": step,
        "digits": digits,
        "ticks": ticks,
    }
