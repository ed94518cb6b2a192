"""The seven metrics against straightforward per-rollout definitions, and the metric registry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bucketing
from bucketing.metrics import METRICS, Params, Scores, compute_all, k_exceeds_n

from .conftest import metric_definitions

score = st.one_of(st.sampled_from([0.0, 1.0, 1.25, 0.5, -0.5]), st.floats(-10, 10, allow_nan=False))
rollouts = st.lists(st.lists(score, min_size=1, max_size=12), min_size=1, max_size=30)


def pack(rows: list[list[float]]) -> Scores:
    return Scores(np.array([s for row in rows for s in row], dtype=float), np.array([len(r) for r in rows]))


@settings(max_examples=200, deadline=None)
@given(rows=rollouts, k=st.integers(1, 16), threshold=st.sampled_from([0.5, 1.0, 0.0, -1.0]))
def test_metrics_match_their_definitions(rows, k, threshold):
    params = Params(k=k, pass_threshold=threshold)
    computed = compute_all(pack(rows), params)
    for i, row in enumerate(rows):
        if computed["mean_reward"][i] + 1e-6 == 0:  # inverse_mean's pole: the definition divides by 0 there
            assert computed["inverse_mean"][i] == 2.0**72, row  # the documented value: that of the next float up
            continue
        for name, expected in metric_definitions(row, params).items():
            assert computed[name][i] == pytest.approx(expected, rel=1e-9, abs=1e-9), (name, row)


def test_pass_at_k_is_the_unbiased_estimator_not_a_top_k_share():
    # 4 responses, 1 correct: pass@1 = 1/4; pass@2 = 1 - C(3,2)/C(4,2) = 1/2; pass@4 = 1
    rows = [[1, 0, 0, 0]]
    assert compute_all(pack(rows), Params(k=1))["pass_at_k"][0] == pytest.approx(0.25)
    assert compute_all(pack(rows), Params(k=2))["pass_at_k"][0] == pytest.approx(0.5)
    assert compute_all(pack(rows), Params(k=4))["pass_at_k"][0] == pytest.approx(1.0)


def test_pass_at_1_equals_success_rate():
    scores = pack([[1, 0, 0.7], [0, 0], [1.25, 1.25]])
    values = compute_all(scores, Params(k=1, pass_threshold=0.6))
    assert np.allclose(values["pass_at_k"], values["success_rate"])


def test_k_larger_than_n_uses_n_and_is_counted():
    scores = pack([[1, 0], [0, 0, 0, 0, 1], [0]])
    values = compute_all(scores, Params(k=4))
    assert values["pass_at_k"].tolist() == pytest.approx([1.0, 1 - 1 / 5, 0.0])
    assert k_exceeds_n(scores, Params(k=4)) == 2


def test_pass_threshold_is_inclusive():
    values = compute_all(pack([[0.5, 0.49]]), Params(pass_threshold=0.5))
    assert values["success_rate"][0] == 0.5


def test_directions():
    easier = {name for name, metric in METRICS.items() if metric.higher_is_easier}
    assert {"mean_reward", "max_reward", "min_reward", "pass_at_k", "success_rate"} <= easier
    assert not METRICS["variance"].higher_is_easier
    assert not METRICS["inverse_mean"].higher_is_easier


@pytest.mark.parametrize("bad", [{"k": 0}, {"k": 1.5}, {"pass_threshold": float("nan")}])
def test_bad_params_are_refused(bad):
    with pytest.raises(bucketing.BucketingError):
        Params(**bad)


@pytest.fixture
def custom_metric():
    yield bucketing.register_metric("spread", lambda s: float(s.max() - s.min()), higher_is_easier=False)
    METRICS.pop("spread")


def test_a_custom_metric_is_one_call_and_lands_in_the_table(custom_metric, sample_dir):
    table = bucketing.load(sample_dir).table()
    assert "spread" in table
    assert np.allclose(table["spread"], table["max_reward"] - table["min_reward"])


def test_a_custom_metric_can_read_params(sample_dir):
    bucketing.register_metric("passes", lambda s, p: float((s >= p.pass_threshold).sum()), higher_is_easier=True)
    try:
        table = bucketing.load(sample_dir).table(Params(pass_threshold=1.0))
        assert np.allclose(table["passes"], table["success_rate"] * table["n"])
    finally:
        METRICS.pop("passes")


def test_metric_names_may_not_shadow_table_columns():
    with pytest.raises(ValueError):
        bucketing.register_metric("line", lambda s: 0.0, higher_is_easier=True)
