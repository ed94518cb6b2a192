"""Fuzzing the line classifier: whatever the bytes, a line is a rollout or skipped for a known reason."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import bucketing
from bucketing import scorepath as sp
from bucketing.layout import Layout
from bucketing.parse import second_look

PATHS = [Layout.parse(p) for p in ("reward[].score", "rewards[]", "score")] + [Layout.parse("score", "input")]

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["reward", "score", "rewards", "input", "x"]), children, max_size=4)
    ),
    max_leaves=12,
)
near_json = st.builds(lambda v: json.dumps(v, allow_nan=True).encode(), json_values)
mutated = st.builds(
    lambda raw, cut, junk: raw[:cut] + junk + raw[cut:], near_json, st.integers(0, 60), st.binary(max_size=4)
)
raw_lines = st.one_of(st.binary(max_size=200), near_json, mutated).filter(lambda b: b"\n" not in b)


CLASSIFIER_EXAMPLES = 1500  # the README's robustness section quotes this


@settings(max_examples=CLASSIFIER_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=raw_lines, path=st.sampled_from(PATHS), at_eof=st.booleans())
@example(raw=b'{"reward": [{"score": 1e400}]}', path=PATHS[0], at_eof=False)
@example(raw=b'{"reward": [{"score": NaN}]}', path=PATHS[0], at_eof=True)
@example(raw=b"\xef\xbb\xbf{}", path=PATHS[0], at_eof=False)
def test_the_classifier_returns_scores_or_a_known_reason(raw, path, at_eof):
    scores, key, reason, detail, is_object = second_look(raw, path, at_eof)
    if scores is not None:
        assert scores and all(math.isfinite(s) for s in scores) and reason == ""
        assert (key is not None and len(key) == 16) == path.grouped
    else:
        assert reason in sp.REASONS and isinstance(detail, str)
    assert isinstance(is_object, bool)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(raw_lines, min_size=1, max_size=20))
def test_a_file_of_random_lines_is_fully_accounted_for(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("fuzz")
    good = b'{"reward": [{"score": 1}]}'
    (folder / "a.jsonl").write_bytes(b"\n".join([good, *lines]) + b"\n")
    try:
        data = bucketing.load(folder, scores="reward[].score", workers=1)
    except bucketing.BucketingError as error:  # only "not JSONL" can refuse a file that has a rollout
        assert "is not JSONL" in str(error)
        return
    totals = data.totals
    assert totals["lines"] == totals["rollouts"] + totals["skipped"] + totals["blank"] == len(lines) + 1
    assert set(data.skipped["reason"]) <= set(sp.REASONS)
