"""The nothing-lost invariant over random mixes of good and bad lines (and of files that are not JSONL at all)
and random plans."""

from __future__ import annotations

import gzip
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bucketing
from bucketing.dataset import NOT_JSONL as NOT_JSONL_REASON
from bucketing.metrics import METRICS
from bucketing.outputs import TEMP_PREFIX

RECORD = st.builds(
    lambda scores, text: {"prompt": text, "reward": [{"score": s} for s in scores]},
    st.lists(st.sampled_from([0, 1, 0.5, 1.25, -0.5, 0.75]), min_size=1, max_size=6),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=12),
)
GOOD = RECORD.map(lambda record: json.dumps(record, ensure_ascii=False).encode())
BOM = b"\xef\xbb\xbf"
BAD = st.sampled_from(
    [
        b'{"reward": [{"score": "1"}]}',
        b'{"reward": []}',
        b'{"reward": 3}',
        b'{"prompt": "no scores"}',
        b'{"reward": [{"score": NaN}]}',
        b'{"reward": [{"score": 1e400}]}',
        b'{"reward": [{"score": true}]}',
        b"[1, 2, 3]",
        b"not json at all",
        b'{"reward": [{"score": 1}]} {"reward": []}',
        b'{"x": "\xff\xfe", "reward": [{"score": 1}]}',
        b'{"reward": [{"score": 1}], "text": "form\x0cfeed"}',
        b'{"reward": [{"score": 1}',
        b'\xef\xbb\xbf{"reward": [{"score": 1}]}',  # a BOM that is not at the file start
    ]
)
BLANK = st.sampled_from([b"", b"   ", b"\t", b" \r"])
LINE = st.one_of(GOOD, GOOD, GOOD, BAD, BLANK)
# Files that are not JSONL at all (skipped whole): placeholder text, binary junk, a pretty-printed document.
# Junk lines hold no "{" (no JSON object), no "\n" or "\r" (a reader drops a final "\r"; the check below splits
# the outputs on both), and no BOM at the start (a reader drops it there).
JUNK = st.binary(min_size=1, max_size=30).filter(
    lambda line: not any(byte in line for byte in (b"\n", b"\r", b"{")) and not line.startswith(BOM)
)
PLACEHOLDER = st.sampled_from([b"<PLACEHOLDER ROW>", b"not json at all", b"[1, 2, 3]", b"null", b'"text"'])
NOT_JSONL = st.one_of(
    st.lists(st.one_of(PLACEHOLDER, JUNK, BLANK), min_size=1, max_size=12),
    st.lists(RECORD, min_size=1, max_size=3).map(
        lambda records: json.dumps(records, indent=2, ensure_ascii=False).encode().split(b"\n")
    ),
).filter(lambda lines: any(line.strip(b" \t\r") for line in lines))


@st.composite
def input_files(draw):
    files = []
    for index in range(draw(st.integers(1, 4))):
        lines = draw(st.lists(LINE, min_size=0, max_size=25))
        lines = [draw(GOOD)] + lines  # each file has at least one rollout, so it is JSONL
        files.append(
            {
                "name": f"part_{index}.jsonl" + (".gz" if draw(st.booleans()) else ""),
                "lines": lines,
                "crlf": draw(st.booleans()),
                "bom": draw(st.booleans()),
                "final_newline": draw(st.booleans()),
            }
        )
    for index in range(draw(st.integers(0, 2))):  # named odd_*: read before the part_* files
        files.append(
            {
                "name": f"odd_{index}.jsonl" + (".gz" if draw(st.booleans()) else ""),
                "lines": draw(NOT_JSONL),
                "crlf": draw(st.booleans()),
                "bom": draw(st.booleans()),
                "final_newline": draw(st.booleans()),
                "not_jsonl": True,
            }
        )
    return files


@st.composite
def plans(draw):
    metric = draw(st.sampled_from(sorted(METRICS)))
    params = bucketing.Params(k=draw(st.integers(1, 8)), pass_threshold=draw(st.sampled_from([0.5, 1.0])))
    if draw(st.booleans()):
        return "percentile", dict(
            metric=metric,
            num_buckets=draw(st.integers(1, 6)),
            ties=draw(st.sampled_from(["keep", "split"])),
            params=params,
        )
    thresholds = draw(st.lists(st.floats(-1, 2), min_size=1, max_size=4, unique=True))
    return "thresholds", dict(metric=metric, thresholds=thresholds, params=params)


def write(folder: Path, spec: dict) -> list[bytes]:
    """Write one file; return the lines a reader must find in the outputs (non-blank, \\r and first BOM dropped)."""
    newline = b"\r\n" if spec["crlf"] else b"\n"
    body = newline.join(spec["lines"]) + (newline if spec["final_newline"] else b"")
    if spec["bom"]:
        body = b"\xef\xbb\xbf" + body
    path = folder / spec["name"]
    path.write_bytes(gzip.compress(body) if spec["name"].endswith(".gz") else body)
    expected = []
    for line in spec["lines"]:  # a BOM written before the first line is dropped, the line kept
        if spec["crlf"]:
            line = line.removesuffix(b"\r")  # a line ending in " \r" loses that \r too, before the \r\n
        if line.strip(b" \t\r"):
            expected.append(line)
    return expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=input_files(), plan_spec=plans(), order=st.sampled_from(["input", "difficulty"]))
def test_every_line_lands_exactly_once_byte_identical(files, plan_spec, order):
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "in", Path(tmp) / "out"
        source.mkdir()
        written_lines = {spec["name"]: write(source, spec) for spec in files}
        expected = Counter(line for lines in written_lines.values() for line in lines)
        data = bucketing.load(source)
        kind, spec = plan_spec
        values = data.table(spec["params"])[spec["metric"]].to_numpy()
        plan = bucketing.percentile_plan(values, **spec) if kind == "percentile" else bucketing.threshold_plan(**spec)
        manifest = bucketing.export(data, plan, out, values=values, order=order)

        written = Counter()
        for path in out.glob("*.jsonl"):
            body = path.read_bytes()
            assert body == b"" or body.endswith(b"\n")
            written.update(body.splitlines())  # splits on \n (and \r, which no output line contains)
        assert written == expected

        totals = manifest["totals"]
        assert totals["rollouts"] + totals["skipped"] == sum(expected.values())
        assert totals["rollouts"] == sum(b["count"] for b in manifest["buckets"])
        assert totals["skipped"] == sum(manifest["skipped"].values())
        assert totals["lines"] == totals["rollouts"] + totals["skipped"] + totals["blank"]
        odd = [spec["name"] for spec in files if spec.get("not_jsonl")]  # each named, each line skipped
        assert [(f["file"], f["lines"]) for f in manifest["skipped_files"]] == [
            (name, len(written_lines[name])) for name in odd
        ]
        assert manifest["skipped"].get(NOT_JSONL_REASON, 0) == sum(len(written_lines[name]) for name in odd)
        for bucket in manifest["buckets"]:
            assert len((out / bucket["file"]).read_bytes().splitlines()) == bucket["count"]
        assert not [p for p in out.iterdir() if p.name.startswith(TEMP_PREFIX)]
        if order == "difficulty":
            check_easiest_first(out, manifest, spec, data)


def check_easiest_first(out: Path, manifest: dict, spec: dict, data) -> None:
    """Within each bucket file, metric values run from easiest to hardest."""
    sign = 1 if bucketing.get_metric(spec["metric"]).higher_is_easier else -1
    for bucket in manifest["buckets"]:
        lines = (out / bucket["file"]).read_bytes().splitlines()
        rows = [[r["score"] for r in json.loads(line.removeprefix(b"\xef\xbb\xbf"))["reward"]] for line in lines]
        if not rows:
            continue
        scores = bucketing.Scores(np.array([s for r in rows for s in r], float), np.array([len(r) for r in rows]))
        values = np.asarray(METRICS[spec["metric"]].compute(scores, spec["params"]))
        assert np.all(np.diff(sign * values) <= 1e-12)
