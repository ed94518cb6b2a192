"""Charts drawn from pre-binned counts (never one point per rollout)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

import bucketing
from bucketing.summary import Comparison, Histogram

from .shared import bucket_colors


def download(name: str) -> dict:
    """Plotly's config for a chart: its toolbar's camera button saves ``{name}.png`` (at twice the screen's
    resolution, for slides and papers); no Plotly logo."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}}


def to_axis(bars: Histogram, values):
    """Values in the units of the chart's x axis: log10 of them on a log axis (``bars.log``), else themselves."""
    return np.log10(np.maximum(values, bars.left[0])) if bars.log else np.asarray(values, dtype=np.float64)


def _bar_bounds(bars: Histogram) -> tuple[np.ndarray, np.ndarray]:
    """Left and right edge of each bar, in axis units; exact-value bars get a width from the gaps between values."""
    left, right = to_axis(bars, bars.left), to_axis(bars, bars.right)
    if not bars.exact:
        return left, right
    span = float(left[-1] - left[0]) or 1.0
    gap = float(np.diff(left).min()) if len(left) > 1 else span
    half = min(gap * 0.4, span * 0.02) or 0.02
    return left - half, left + half


def power_label(power: int) -> str:
    """10**power as an axis label: 0.01, 1, 1000, 1e4, 1e-4."""
    return f"{10.0**power:g}" if -3 <= power <= 3 else f"1e{power}"


def axis_ticks(bars: Histogram, lo: float, hi: float) -> list[dict]:
    """Ticks between lo and hi (axis units): round values, or on a log axis the powers of ten."""
    if bars.log:
        return [{"at": float(k), "label": power_label(k)} for k in range(math.ceil(lo), math.floor(hi) + 1)]
    return [{"at": t, "label": f"{t:g}"} for t in nice_ticks(lo, hi)]


def whole_numbers(span: float, from_zero: bool = True) -> dict:
    """An axis of whole numbers spanning ``span``: whole-number ticks only (with few rollouts Plotly put them
    0.5 apart)."""
    return dict(
        tickformat=",d", **({"rangemode": "tozero"} if from_zero else {}), **({"dtick": 1} if span <= 8 else {})
    )


def histogram_figure(bars: Histogram, height: int = 220) -> go.Figure:
    """Bars on a linear axis, or on a log one (the bars in log10 units, the ticks labelled 1, 10, 100...)."""
    left, right = _bar_bounds(bars)
    figure = go.Figure(
        go.Bar(
            x=(left + right) / 2,
            y=bars.counts,
            width=right - left,
            customdata=np.column_stack([bars.left, bars.right]),
            hovertemplate=(
                "%{customdata[0]:.4g}"
                + ("" if bars.exact else " to %{customdata[1]:.4g}")
                + ": %{y} rollouts<extra></extra>"
            ),
        )
    )
    if bars.log:
        ticks = axis_ticks(bars, float(left.min()), float(right.max()))
        figure.update_xaxes(
            tickvals=[t["at"] for t in ticks], ticktext=[t["label"] for t in ticks], title_text="log scale"
        )
    figure.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        bargap=0.05,
        showlegend=False,
        yaxis=dict(title="rollouts", **whole_numbers(int(bars.counts.max(initial=0)))),
    )
    return figure


def counts_figure(values: np.ndarray, label: str, height: int = 220) -> go.Figure:
    """Bars of how many rollouts have each integer value (e.g. responses per rollout)."""
    counts = np.bincount(values.astype(np.int64))
    present = np.flatnonzero(counts)
    figure = go.Figure(
        go.Bar(x=present, y=counts[present], hovertemplate=f"%{{x}} {label}: %{{y}} rollouts<extra></extra>")
    )
    figure.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(
            title=label, **whole_numbers(int(present.max(initial=0)) - int(present.min(initial=0)), from_zero=False)
        ),
        yaxis=dict(title="rollouts", **whole_numbers(int(counts.max(initial=0)))),
        bargap=0.1,
    )
    return figure


def buckets_csv(table: pd.DataFrame) -> str:
    """The bucket table as CSV, as shown (easiest first); numbers in full."""
    return table.to_csv(index=False)


def sizes_data(buckets: pd.DataFrame, metric: str) -> dict:
    """What the sizes chart draws (pages.common.sizes_chart): a bar per bucket, easiest first, coloured by rank, on
    an axis of whole numbers (with few rollouts, no tick at half a rollout)."""
    counts = [int(c) for c in buckets["count"]]
    top = max(counts, default=0) or 1
    ticks = [t for t in nice_ticks(0, top, count=5) if float(t).is_integer()]
    return {
        "bars": [
            {"name": str(name), "count": count, "label": f"{count:,}", "color": color}
            for name, count, color in zip(buckets["name"], counts, bucket_colors(len(counts)))
        ],
        "ticks": [{"at": t, "label": f"{int(t):,}"} for t in ticks],
        "top": max([top, *ticks]) * 1.08,  # room for the count above the tallest bar
        "file_name": f"{metric}-bucket-sizes",
    }


CELLS_SCALE = "Blues"
DARK_TEXT, LIGHT_TEXT = "#0e1117", "#ffffff"


def readable_text(colors: list[str]) -> list[str]:
    """For each background colour ("rgb(r, g, b)" or "#rrggbb"), the text colour of the two that contrasts more."""
    return [DARK_TEXT if contrast(color, DARK_TEXT) >= contrast(color, LIGHT_TEXT) else LIGHT_TEXT for color in colors]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 to 21; 4.5 is enough for text)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _luminance(color: str) -> float:
    rgb = plotly.colors.hex_to_rgb(color) if color.startswith("#") else plotly.colors.unlabel_rgb(color)
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def cells_figure(cells: np.ndarray, rows: list[str], columns: list[str], row_metric: str, column_metric: str):
    """The Compare page's matrix: a square per pair of buckets, coloured by its count, the count written on it in
    whichever of dark or white text reads on that square (in either theme: the squares carry their own colour).

    The squares are shapes in axis units, so they fill the plot at any width; an invisible marker on each
    carries the count, the hover text and the click (point index = row * count + column)."""
    count = len(rows)
    flat = cells.ravel()
    span = float(flat.max() - flat.min()) or 1.0
    fills = plotly.colors.sample_colorscale(CELLS_SCALE, [(float(c) - float(flat.min())) / span for c in flat])
    y, x = np.divmod(np.arange(count * count), count)
    figure = go.Figure(
        go.Scatter(
            x=x,
            y=y,
            mode="markers+text",
            text=[f"{c:,}" for c in flat],
            textfont=dict(color=readable_text(fills)),
            customdata=[[rows[r], columns[c]] for r, c in zip(y, x)],
            marker=dict(symbol="square", size=36, color="rgba(0,0,0,0)"),
            hovertemplate=(
                f"{row_metric}: %{{customdata[0]}}<br>{column_metric}: %{{customdata[1]}}<br>"
                "%{text} rollouts<extra></extra>"
            ),
        )
    )
    figure.update_layout(
        height=420,
        margin=dict(l=10, r=10, t=10, b=10),
        dragmode=False,
        shapes=[
            dict(
                type="rect",
                x0=c - 0.5,
                x1=c + 0.5,
                y0=r - 0.5,
                y1=r + 0.5,
                fillcolor=fill,
                layer="below",
                line=dict(width=1, color="white"),
            )
            for r, c, fill in zip(y, x, fills)
        ],
        xaxis=dict(
            title=f"{column_metric} (easiest → hardest)",
            tickvals=list(range(count)),
            ticktext=columns,
            range=[-0.5, count - 0.5],
            showgrid=False,
            zeroline=False,
        ),
        yaxis=dict(
            title=row_metric,
            tickvals=list(range(count)),
            ticktext=rows,
            range=[count - 0.5, -0.5],
            showgrid=False,
            zeroline=False,
        ),
    )
    return figure


def density_figure(crossed: Comparison, row_metric: str, column_metric: str) -> go.Figure:
    """Both metrics' values against each other, coloured by log(1 + count): a few crowded cells would hide the rest."""
    edges_a, edges_b = crossed.edges_a, crossed.edges_b
    heat = go.Figure(
        go.Heatmap(
            x=(edges_b[:-1] + edges_b[1:]) / 2,
            y=(edges_a[:-1] + edges_a[1:]) / 2,
            z=np.log1p(crossed.density),
            customdata=crossed.density,
            colorscale="Viridis",
            showscale=False,
            hovertemplate=(
                f"{column_metric} ≈ %{{x:.3g}}<br>{row_metric} ≈ %{{y:.3g}}<br>%{{customdata}} rollouts<extra></extra>"
            ),
        )
    )
    heat.update_layout(
        height=420, margin=dict(l=10, r=10, t=10, b=10), xaxis_title=column_metric, yaxis_title=row_metric
    )
    return heat


# The threshold chart's SVG (pages/common/threshold_drag.py) in its own units: a viewBox this wide, the plot between
# these margins. Region labels are laid out here, so that what the chart shows can be tested without a browser.
FRAME = {"width": 1000, "left": 48, "right": 16}
CHAR_WIDTH = 8.0  # a region label's character, in viewBox units (13 px semibold: most are narrower)
LABEL_GAP = 10  # between two labels above the chart, and around a label inside its region
MAX_SHIFT = 120  # how far a label above the chart may move sideways from its region before a new row starts


def nice_ticks(lo: float, hi: float, count: int = 7) -> list[float]:
    """About ``count`` round values (1, 2, 2.5 or 5 times a power of ten apart) inside [lo, hi]."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.999)
    first = math.ceil(lo / step - 1e-9)
    return [
        float(f"{i * step:.12g}") for i in range(first, math.floor(hi / step + 1e-9) + 1)
    ]  # 0.3, not 0.30000000000000004


def drag_data(bars: Histogram, plan: bucketing.Plan, buckets: pd.DataFrame) -> dict:
    """What the threshold chart draws: bars, bucket regions (coloured by rank), domain, snapping step, ticks.

    Every region has its label: inside the region where it fits (``inside``), else above the chart
    at ``at`` (the label's centre) in row ``row`` (0 = nearest the chart), with a leader down to the region.
    """
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
            "from": lo if b.lower is None else float(to_axis(bars, b.lower)),
            "to": hi if b.upper is None else float(to_axis(bars, b.upper)),
            "label": f"{b.name} ({counts[b.name]:,})",
            "color": colors[b.rank],
        }
        for b in plan.buckets
    ]
    rows = place_labels(regions, (lo, hi))
    ticks = axis_ticks(bars, lo, hi)
    return {
        "bars": [{"left": float(a), "right": float(b), "count": int(c)} for a, b, c in zip(left, right, bars.counts)],
        "regions": regions,
        "label_rows": rows,
        "frame": FRAME,
        "domain": (lo, hi),
        "step": step,
        "digits": digits,
        "ticks": ticks,
        "axis_title": f"{plan.metric} ({bucketing.get_metric(plan.metric).direction})"
        + (", log scale" if bars.log else ""),
        "log": bars.log,
        "file_name": f"{plan.metric}-thresholds",  # of the chart's SVG / PNG downloads
    }


def label_width(text: str) -> float:
    return len(text) * CHAR_WIDTH


def region_span(region: dict, domain: tuple[float, float]) -> tuple[float, float]:
    """Where a region lies on the chart, in viewBox units (the part inside the domain; zero wide outside it)."""
    lo, hi = domain
    width = FRAME["width"] - FRAME["left"] - FRAME["right"]
    x = lambda v: FRAME["left"] + (min(hi, max(lo, v)) - lo) / (hi - lo) * width  # noqa: E731
    x0, x1 = x(region["from"]), x(region["to"])
    return x0, max(x0, x1)


def place_labels(regions: list[dict], domain: tuple[float, float]) -> int:
    """Mark each region's label ``inside`` when it fits in the region, else give it a place above the chart
    (``at``, ``row``): near its region, never over another label. Returns how many rows that takes."""
    ends: list[float] = []  # per row: where its last label ends
    outside = []
    for region in regions:
        x0, x1 = region_span(region, domain)
        region["inside"] = x1 - x0 >= label_width(region["label"]) + 2 * LABEL_GAP
        if not region["inside"]:
            outside.append(((x0 + x1) / 2, region))
    for centre, region in sorted(outside, key=lambda item: item[0]):
        half = label_width(region["label"]) / 2
        wanted = min(max(centre, half), FRAME["width"] - half)
        for row, end in enumerate(ends):  # noqa: B007  (row is used after the loop)
            at = max(wanted, end + LABEL_GAP + half)
            if at + half <= FRAME["width"] and at - wanted <= MAX_SHIFT:
                break
        else:
            row, at = len(ends), wanted
            ends.append(0.0)
        ends[row] = at + half
        region.update(at=at, row=row)
    return len(ends)
