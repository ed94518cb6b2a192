"""A few rollouts as people read them: the prompt, then each response with its score."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

import bucketing
from pages.common.shared import number, rollouts, shown

PREVIEW_CHARS = 600


def show_rollouts(data: bucketing.Dataset, rows: np.ndarray, metrics: dict[str, np.ndarray], full: bool) -> None:
    """One expander per rollout, titled with where it is and its value of each metric in ``metrics``."""
    try:
        read = rollouts(data, rows)
    except bucketing.BucketingError as error:  # an input shortened or removed since the load
        st.error(f"The preview can't be read: {shown(error)}")
        return
    for rollout, row in zip(read, rows):
        values = " · ".join(f"{metric} = {number(column[row])}" for metric, column in metrics.items())
        with st.expander(f"{shown(rollout.where)} · {values} · {len(rollout.scores)} responses", expanded=False):
            if rollout.group:
                st.caption(
                    "Grouped by "
                    + " · ".join(
                        f"{shown(field)} = {shown(clip(_value(value), False))}"
                        for field, value in rollout.group.items()
                    )
                )
            if rollout.prompt is None:
                st.code(clip(rollout.raw, full), language="json", wrap_lines=True)
                continue
            st.markdown("**Prompt**")
            st.text(clip(rollout.prompt, full))
            responses = rollout.responses or []
            for i, score in enumerate(rollout.scores):
                st.markdown(f"**Response {i + 1}** · score `{score:g}`")
                st.text(clip(responses[i] if i < len(responses) else "", full))


def _value(value: object) -> str:
    """A group field's value as compact JSON text (a string as it is)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def clip(text: str, full: bool) -> str:
    return (
        text
        if full or len(text) <= PREVIEW_CHARS
        else text[:PREVIEW_CHARS] + f" … (+{len(text) - PREVIEW_CHARS:,} characters)"
    )
