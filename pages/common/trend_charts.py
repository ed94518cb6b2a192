"""The Trends page's charts: a metric's distribution per step (a heatmap of pre-binned counts) and the
learnability shares per step (stacked areas)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from bucketing.steps import CLASSES, StepBins

CLASS_COLORS = {"unsolved": "#d1495b", "learnable": "#edae49", "solved": "#00798c"}


def step_heatmap(bins: StepBins, metric: str, height: int = 320) -> go.Figure:
    """Steps across, the metric's value up, the number of prompts in each cell as the colour."""
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    figure = go.Figure(
        go.Heatmap(
            x=bins.steps.tolist(),
            y=centres,
            z=bins.counts.T,
            colorscale="Blues",
            colorbar={"title": "prompts"},
            hovertemplate="step %{x}<br>" + metric + " ≈ %{y:.3g}<br>%{z} prompts<extra></extra>",
        )
    )
    figure.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    figure.update_xaxes(title_text="step")
    figure.update_yaxes(title_text=metric)
    return figure


def shares_figure(rows: list[dict], height: int = 260) -> go.Figure:
    """The share of prompts solved, learnable and unsolved at each step, stacked to 100 %."""
    steps = [row["step"] if "step" in row else row["steps"][0] for row in rows]
    figure = go.Figure()
    for name in reversed(CLASSES):  # solved at the bottom: a rising band is learning
        figure.add_trace(
            go.Scatter(
                x=steps,
                y=[row["shares"][name] for row in rows],
                name=name,
                stackgroup="shares",
                line={"color": CLASS_COLORS[name], "width": 0.5},
                customdata=np.array([row["prompts"] for row in rows]),
                hovertemplate=f"step %{{x}}<br>{name}: %{{y:.0%}} of %{{customdata}} prompts<extra></extra>",
            )
        )
    figure.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"orientation": "h", "y": 1.1}
    )
    figure.update_xaxes(title_text="step")
    figure.update_yaxes(title_text="share of prompts", tickformat=".0%", range=[0, 1])
    return figure
