"""Distributions: every metric's histogram side by side; k and the pass threshold apply everywhere."""

import math

import streamlit as st

from bucketing.metrics import METRICS
from bucketing.summary import describe
from bucketing.wording import counted
from pages.common import shared
from pages.common.charts import download, histogram_figure

data = shared.open_page(
    "Distributions",
    "How hard are the prompts? One histogram per difficulty metric, one value per rollout.",
)

left, right, _ = st.columns([1, 1, 2])
left.number_input("k (for pass_at_k)", min_value=1, max_value=1024, step=1, **shared.bound("k"))
right.number_input("Pass threshold (score >= passes)", step=0.05, format="%.3g", **shared.bound("pass_threshold"))
exceeding = data.k_exceeds_n(shared.params())
if exceeding:
    st.info(
        f"{counted(exceeding, 'rollout', ',', ('has', 'have'))} fewer than k = "
        f"{st.session_state['k']} responses; pass_at_k uses k = n for them."
    )


def orders_of_magnitude(smallest: float, largest: float) -> str:
    return f"{math.log10(largest / smallest):.0f}"


columns = st.columns(3)
for index, (name, metric) in enumerate(METRICS.items()):
    _, ordered = shared.column(data, name)
    d = describe(ordered)
    bars = shared.bars(data, name)
    with columns[index % 3]:
        st.markdown(f"**{name}** · {metric.direction}")
        st.plotly_chart(histogram_figure(bars), key=f"hist_{name}", config=download(f"{name}-histogram"))
        log = (
            f" · log scale: the values span {orders_of_magnitude(d.min, d.max)} orders of magnitude" if bars.log else ""
        )
        st.caption(
            f"min {shared.number(d.min)} · median {shared.number(d.median)} · max {shared.number(d.max)} · "
            f"{d.distinct:,} distinct values{log} — {metric.description}"
        )
