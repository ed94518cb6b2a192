"""The Buckets page's bar chart of bucket sizes: a small inline components-v2 SVG, not a Plotly chart.

Drawn again on every drag, so it is kept cheap for the browser: a few rectangles from the numbers Python lays out
(pages.common.charts.sizes_data), a tooltip on each bar, and the same SVG / PNG download buttons as the threshold chart.
"""

from __future__ import annotations

import streamlit as st

from .threshold_drag import DOWNLOADS_CSS, SVG_JS

CSS = (
    """
.bs-svg { width: 100%; height: auto; display: block; font-family: var(--st-font, sans-serif); }
.bs-grid { stroke: var(--st-text-color, #31333f); opacity: 0.12; }
.bs-axis { fill: var(--st-text-color, #31333f); font-size: 13px; opacity: 0.75; }
.bs-axis-title { fill: var(--st-text-color, #31333f); font-size: 13px; }
.bs-count { fill: var(--st-text-color, #31333f); font-size: 13px; font-weight: 600; }
"""
    + DOWNLOADS_CSS
)

JS = (
    SVG_JS
    + """
export default function (component) {
  const { data, parentElement } = component;
  const W = 1000, H = 260, L = 70, R = 16, T = 24, B = 52;
  const py = (c) => H - B - (c / data.top) * (H - T - B);
  parentElement.querySelector("svg.bs-svg")?.remove();
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "bs-svg", "data-testid": "bucket-sizes" }, parentElement);
  for (const t of data.ticks) {
    el("line", { x1: L, x2: W - R, y1: py(t.at), y2: py(t.at), class: "bs-grid" }, svg);
    el("text", { x: L - 8, y: py(t.at) + 4, "text-anchor": "end", class: "bs-axis" }, svg, t.label);
  }
  el("text", { x: 14, y: (T + H - B) / 2, "text-anchor": "middle", class: "bs-axis-title",
               transform: `rotate(-90 14 ${(T + H - B) / 2})` }, svg, "rollouts");
  const slot = (W - L - R) / Math.max(1, data.bars.length);
  data.bars.forEach((b, i) => {
    const g = el("g", { class: "bs-bar", "data-name": b.name, "data-count": b.count }, svg);
    const x = L + i * slot + slot * 0.1, y = py(b.count);
    el("title", {}, g, `${b.name}: ${b.label} rollouts`);
    el("rect", { x, y, width: slot * 0.8, height: H - B - y, fill: b.color }, g);
    el("text", { x: x + slot * 0.4, y: Math.max(T - 6, y - 6), "text-anchor": "middle", class: "bs-count" }, g, b.label);
    el("text", { x: x + slot * 0.4, y: H - B + 18, "text-anchor": "middle", class: "bs-axis" }, g, b.name);
  });
  el("text", { x: L + (W - L - R) / 2, y: H - 8, "text-anchor": "middle", class: "bs-axis-title" }, svg,
     "easiest → hardest");
  addDownloads(parentElement, svg, W, H, data.file_name, "sizes");
}
"""
)

_component = st.components.v2.component("rollout_bucketer.bucket_sizes", css=CSS, js=JS)


def sizes_chart(*, key: str, bars: list[dict], ticks: list[dict], top: float, file_name: str) -> None:
    """Draw the bars (easiest first: ``name``, ``count``, ``label``, ``color``) on an axis up to ``top`` with ``ticks``,
    as laid out by pages.common.charts.sizes_data."""
    _component(key=key, data={"bars": bars, "ticks": ticks, "top": top, "file_name": file_name})
