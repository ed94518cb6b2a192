"""Bad, odd and borderline input lines: each is accepted with the right scores, skipped with the
right reason, or refused by the command line with a one-line error; never lost, never duplicated.

Every case is generated here (no blobs).  The byte-exact promise is checked against an oracle
written from the specification, not from the implementation:

* lines are split on ``\\n`` only;
* a trailing ``\\r`` of a line and a UTF-8 BOM at the very start of a file are dropped;
* lines made only of JSON whitespace (space, tab, CR) are blank: not a rollout, not skipped;
* every other line appears exactly once across the bucket files and ``_skipped.jsonl``,
  byte-identical, ending with ``\\n``.
"""

from __future__ import annotations

import gzip
import json
import math
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bucketing
from bucketing import scorepath as sp
from bucketing.dataset import NOT_JSONL as FILE_NOT_JSONL
from bucketing.errors import BadLineError

from .conftest import line_totals
from .conftest import run_cli as run_in_process

# ----------------------------------------------------------------------------------------------
# helpers (kept in this file on purpose: no conftest.py)
# ----------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
BOM = b"\xef\xbb\xbf"
WHITESPACE = b" \t\r"  # JSON whitespace that can appear inside a line (\n ends it)


def rollout(scores, prompt="p", **extra) -> bytes:
    """One default-layout line, without its newline."""
    record = {"prompt": prompt, **extra, "reward": [{"score": s} for s in scores]}
    return json.dumps(record, ensure_ascii=False).encode()


GOOD = rollout([0, 1])  # mean 0.5
GOOD_B = rollout([1, 1, 0, 1.25], prompt="second")  # mean 0.8125


def write_input(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """Write ``{relative name: raw bytes}`` under ``tmp_path/in`` and return that directory."""
    root = tmp_path / "in"
    root.mkdir(exist_ok=True)
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def run_cli(*args) -> subprocess.CompletedProcess:
    """``python -m bucketing ARGS`` from the repository root, run in this process (bytes output, as from a
    subprocess: see tests/cli_support.py)."""
    return run_in_process(*args, text=False)


def split_lines(data: bytes) -> list[bytes]:
    """``data`` cut after each ``\\n`` (and only there); each piece keeps its ``\\n``."""
    pieces = data.split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def is_blank(content: bytes) -> bool:
    return content.strip(WHITESPACE) == b""


def input_lines(data: bytes) -> list[tuple[int, bytes]]:
    """(1-based line number, content as promised in the output without its newline) of the
    non-blank lines of one input file, by the specification."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    result = []
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()  # the file ends with "\n": no further line
    for number, content in enumerate(pieces, 1):
        if content.endswith(b"\r"):
            content = content[:-1]
        if not is_blank(content):
            result.append((number, content))
    return result


def count_lines(data: bytes) -> int:
    """Physical lines: pieces between "\n"s, not counting the empty one after a final "\n"."""
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def is_json_object(content: bytes) -> bool:
    try:
        return isinstance(json.loads(content.decode("utf-8")), dict)
    except (ValueError, RecursionError):
        return False


def expected_output(files: dict[str, bytes]) -> Counter:
    """What the output files must hold together: every non-blank input line once, with "\\n"."""
    return Counter(content + b"\n" for data in files.values() for _, content in input_lines(data))


def read_outputs(out: Path) -> dict[str, list[bytes]]:
    """Every ``*.jsonl`` the run wrote -> its lines; checks each line ends with "\\n"."""
    outputs = {}
    for path in sorted(out.glob("*.jsonl")):
        data = path.read_bytes()
        assert data == b"" or data.endswith(b"\n"), f"{path.name} does not end with a newline"
        outputs[path.name] = split_lines(data)
    return outputs


def assert_promise(files: dict[str, bytes], out: Path) -> dict[str, list[bytes]]:
    """Every non-blank input line exactly once across the outputs, byte-identical (modulo CR/BOM)."""
    outputs = read_outputs(out)
    got = Counter(line for lines in outputs.values() for line in lines)
    want = expected_output(files)
    missing, extra = want - got, got - want
    assert not missing and not extra, f"missing from the output: {list(missing)[:3]}; unexpected: {list(extra)[:3]}"
    return outputs


def load_file(tmp_path: Path, data: bytes, name: str = "a.jsonl", **kwargs) -> bucketing.Dataset:
    kwargs.setdefault("workers", 1)
    return bucketing.load(write_input(tmp_path, {name: data}), **kwargs)


def export_all(data: bucketing.Dataset, out: Path) -> dict:
    """Export into one bucket (every rollout in it) with the library API."""
    values = data.table()["mean_reward"].to_numpy()
    plan = bucketing.percentile_plan(values, "mean_reward", 1)
    return bucketing.export(data, plan, out)


def row_of(data: bucketing.Dataset, line: int, file_id: int = 0) -> int:
    """Index of the rollout at ``line`` of file ``file_id``; fails when the line is not a rollout."""
    hits = np.flatnonzero((data.rows["file_id"].to_numpy() == file_id) & (data.rows["line"].to_numpy() == line))
    assert len(hits) == 1, f"line {line} is not a rollout; skipped: {data.skipped.to_dict('records')}"
    return int(hits[0])


def scores_of_row(data: bucketing.Dataset, index: int) -> list[float]:
    start = int(np.sum(data.scores.counts[:index]))
    return data.scores.flat[start : start + int(data.scores.counts[index])].tolist()


def skipped_at(data: bucketing.Dataset, line: int, file_id: int = 0) -> dict:
    frame = data.skipped
    hit = frame[(frame["file_id"] == file_id) & (frame["line"] == line)]
    assert len(hit) == 1, f"line {line} was not skipped; rollouts at lines {data.rows['line'].tolist()}"
    return hit.iloc[0].to_dict()


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == code, (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert lines[0].startswith("error:"), lines[0]
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())


def not_above(a: float, b: float) -> bool:
    """a <= b, allowing for rounding."""
    return a <= b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def mean(values) -> float:
    return math.fsum(values) / len(values)


# ----------------------------------------------------------------------------------------------
# the table of single-line cases: (id, line bytes, expected)
#   expected = ("ok", [scores]) | ("skip", reason) | ("skip", None)  (None: any member of REASONS)
# ----------------------------------------------------------------------------------------------

R1 = b'"reward":[{"score":1},{"score":0}]'  # scores [1, 0]


def obj(*members: bytes) -> bytes:
    return b"{" + b",".join(members) + b"}"


def score_line(raw_score: bytes) -> bytes:
    return b'{"prompt":"q","reward":[{"score":1},{"score":' + raw_score + b"}]}"


DEEP = 100_000

ACCEPTED = [
    ("plain", rollout([0, 1.25, 1]), [0, 1.25, 1]),
    (
        "ints floats exponents negatives",
        b'{"reward":[{"score":1},{"score":-0.5},{"score":2e0},{"score":1E-1}]}',
        [1, -0.5, 2.0, 0.1],
    ),
    ("single score", b'{"reward":[{"score":0.75}]}', [0.75]),
    ("u2028 u2029 u0085 raw in a string", b'{"prompt":"a\xe2\x80\xa8b\xe2\x80\xa9c\xc2\x85d",' + R1 + b"}", [1, 0]),
    ("u2028 raw in a key", b'{"k\xe2\x80\xa8ey":1,' + R1 + b"}", [1, 0]),
    ("raw DEL is allowed in JSON strings", b'{"prompt":"a\x7fb",' + R1 + b"}", [1, 0]),
    ("escaped NUL", b'{"prompt":"a\\u0000b",' + R1 + b"}", [1, 0]),
    ("escaped newline and CR", b'{"prompt":"a\\nb\\r\\n",' + R1 + b"}", [1, 0]),
    ("valid surrogate pair escape", b'{"prompt":"\\ud83d\\ude00",' + R1 + b"}", [1, 0]),
    ("raw 4-byte UTF-8", '{"prompt":"😀 日本 é",'.encode() + R1 + b"}", [1, 0]),
    ("duplicate keys: last wins", b'{"reward":[{"score":0}],"reward":[{"score":1,"score":3},{"score":2}]}', [3, 2]),
    ("duplicate reward, first not a list", b'{"reward":"nope","reward":[{"score":0.25}]}', [0.25]),
    ("duplicate score, first a string", b'{"reward":[{"score":"x","score":0.25}]}', [0.25]),
    ("duplicate reward, first empty", b'{"reward":[],"reward":[{"score":0.25}]}', [0.25]),
    ("leading and trailing spaces/tabs", b' \t {"reward":[{"score":2}]} \t ', [2]),
    ("extra fields in score objects", b'{"reward":[{"score":1,"why":[1,{"a":null}]},{"x":"y","score":0}]}', [1, 0]),
    ("5000-digit integer in another field", b'{"id":' + b"7" * 5000 + b"," + R1 + b"}", [1, 0]),
    ("25-digit integer score", score_line(b"9" * 25), [1, float(int("9" * 25))]),
    ("huge float in another field", b'{"x":1e400,' + R1 + b"}", [1, 0]),
    ("underflowing score is 0", score_line(b"1e-400"), [1, 0.0]),
    ("500 levels of nesting in another field", b'{"x":' + b"[" * 500 + b"]" * 500 + b"," + R1 + b"}", [1, 0]),
    ("-0 score", score_line(b"-0"), [1, 0.0]),
]

SKIPPED = [
    # invalid UTF-8 (anywhere in the line)
    ("0xff in a string", b'{"prompt":"a\xffb",' + R1 + b"}", sp.INVALID_UTF8),
    ("overlong encoding", b'{"prompt":"\xc0\xaf",' + R1 + b"}", sp.INVALID_UTF8),
    ("UTF-8 encoded surrogate", b'{"prompt":"\xed\xa0\x80",' + R1 + b"}", sp.INVALID_UTF8),
    ("code point above U+10FFFF", b'{"prompt":"\xf4\x90\x80\x80",' + R1 + b"}", sp.INVALID_UTF8),
    ("lone continuation byte", b'{"prompt":"\x80",' + R1 + b"}", sp.INVALID_UTF8),
    ("cut multi-byte sequence mid-line", b'{"prompt":"\xe6\x97",' + R1 + b"}", sp.INVALID_UTF8),
    ("latin-1 text", '{"prompt":"café",'.encode("latin-1") + R1 + b"}", sp.INVALID_UTF8),
    ("invalid UTF-8 outside strings", obj(R1) + b" \xfe", sp.INVALID_UTF8),
    # lone surrogate escapes: not valid Unicode text; any documented reason
    ("lone high surrogate escape", b'{"prompt":"\\ud800",' + R1 + b"}", None),
    ("lone low surrogate escape", b'{"prompt":"\\udc00",' + R1 + b"}", None),
    ("high surrogate then letter", b'{"prompt":"\\ud800x",' + R1 + b"}", None),
    # control characters raw inside a string: one bad line, not two
    ("raw form feed in a string", b'{"prompt":"a\x0cb",' + R1 + b"}", sp.INVALID_JSON),
    ("raw tab in a string", b'{"prompt":"a\tb",' + R1 + b"}", sp.INVALID_JSON),
    ("raw NUL in a string", b'{"prompt":"a\x00b",' + R1 + b"}", sp.INVALID_JSON),
    ("raw CR in a string", b'{"prompt":"a\rb",' + R1 + b"}", sp.INVALID_JSON),
    ("raw 0x1f in a string", b'{"prompt":"a\x1fb",' + R1 + b"}", sp.INVALID_JSON),
    ("raw vertical tab in a string", b'{"prompt":"a\x0bb",' + R1 + b"}", sp.INVALID_JSON),
    # not JSON
    ("two objects on one line", GOOD + GOOD, sp.INVALID_JSON),
    ("two objects with a space", GOOD + b" " + GOOD, sp.INVALID_JSON),
    ("lone CR between two objects", GOOD + b"\r" + GOOD, sp.INVALID_JSON),
    ("BOM at the start of a later line", BOM + GOOD, sp.INVALID_JSON),
    ("trailing comma", b'{"reward":[{"score":1}],}', sp.INVALID_JSON),
    ("single quotes", b"{'reward':[{'score':1}]}", sp.INVALID_JSON),
    ("comment", b'{"reward":[{"score":1}]} // ok', sp.INVALID_JSON),
    ("unquoted key", b'{reward:[{"score":1}]}', sp.INVALID_JSON),
    ("truncated line that is not the last", GOOD[:-7], sp.INVALID_JSON),
    ("form feed alone", b"\x0c", sp.INVALID_JSON),
    # nesting
    ("100000 levels of [ in another field", b'{"x":' + b"[" * DEEP + b"]" * DEEP + b"," + R1 + b"}", sp.TOO_DEEP),
    (
        "100000 levels of { in another field",
        b'{"x":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"," + R1 + b"}",
        sp.TOO_DEEP,
    ),
    ("100000 levels of [ as the line", b"[" * DEEP + b"]" * DEEP, sp.TOO_DEEP),
    # not an object
    ("array line", b"[1, 2, 3]", sp.NOT_OBJECT),
    ("array of rollouts", b"[" + GOOD + b"]", sp.NOT_OBJECT),
    ("number line", b"42", sp.NOT_OBJECT),
    ("string line", b'"{\\"reward\\": []}"', sp.NOT_OBJECT),
    ("null line", b"null", sp.NOT_OBJECT),
    ("boolean line", b"true", sp.NOT_OBJECT),
    # the scores
    ("no reward field", b'{"prompt":"p"}', sp.MISSING),
    ("empty object", b"{}", sp.MISSING),
    ("score field missing in an element", b'{"reward":[{"score":1},{"points":1}]}', sp.MISSING),
    ("reward list empty", b'{"reward":[]}', sp.EMPTY),
    ("reward is an object", b'{"reward":{"score":1}}', sp.NOT_LIST),
    ("reward is a number", b'{"reward":1}', sp.NOT_LIST),
    ("reward is a string", b'{"reward":"1"}', sp.NOT_LIST),
    ("reward is null", b'{"reward":null}', sp.NOT_LIST),
    ("score is a string", score_line(b'"1"'), sp.NOT_NUMBER),
    ("score is true", score_line(b"true"), sp.NOT_NUMBER),
    ("score is false", score_line(b"false"), sp.NOT_NUMBER),
    ("score is null", score_line(b"null"), sp.NOT_NUMBER),
    ("score is a list", score_line(b"[1]"), sp.NOT_NUMBER),
    ("score is an object", score_line(b'{"v":1}'), sp.NOT_NUMBER),
    ("score NaN", score_line(b"NaN"), sp.NOT_FINITE),
    ("score Infinity", score_line(b"Infinity"), sp.NOT_FINITE),
    ("score -Infinity", score_line(b"-Infinity"), sp.NOT_FINITE),
    ("score 1e400", score_line(b"1e400"), sp.NOT_FINITE),
    ("score -1e400", score_line(b"-1e400"), sp.NOT_FINITE),
    ("score 5000-digit integer", score_line(b"9" * 5000), sp.NOT_FINITE),
    ("score negative 5000-digit integer", score_line(b"-" + b"1" * 5000), sp.NOT_FINITE),
]


def test_the_case_table_is_sound():
    """The oracle's own assumptions: accepted lines are valid JSON whose scores Python's json reads."""
    for name, line, scores in ACCEPTED:
        assert b"\n" not in line, name
        value = json.loads(line.decode("utf-8"), parse_int=float)
        assert [float(item["score"]) for item in value["reward"]] == [float(s) for s in scores], name
    for name, line, reason in SKIPPED:
        assert b"\n" not in line and not is_blank(line), name
        assert reason is None or reason in sp.REASONS, name


def cases_with_ids(cases):
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


@pytest.mark.parametrize("line, scores", cases_with_ids(ACCEPTED))
def test_accepted_line(tmp_path, line, scores):
    files = {"a.jsonl": GOOD + b"\n" + line + b"\n" + GOOD_B + b"\n"}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score")
    assert line_totals(data) == {"files": 1, "lines": 3, "rollouts": 3, "blank": 0, "skipped": 0}
    assert data.skipped.empty
    index = row_of(data, 2)
    assert scores_of_row(data, index) == [float(s) for s in scores]
    table = data.table()
    assert table["mean_reward"].iloc[index] == pytest.approx(mean(scores))
    assert table["mean_reward"].tolist()[0] == 0.5 and table["mean_reward"].tolist()[2] == 0.8125
    assert table["n"].tolist() == [2, len(scores), 4]
    # its bytes are where the index says, and the export copies them unchanged
    raw = files["a.jsonl"]
    offset, length = int(data.rows["offset"].iloc[index]), int(data.rows["length"].iloc[index])
    assert raw[offset : offset + length] == line
    export_all(data, tmp_path / "out")
    outputs = assert_promise(files, tmp_path / "out")
    assert outputs["bucket_0.jsonl"] == [GOOD + b"\n", line + b"\n", GOOD_B + b"\n"]
    assert "_skipped.jsonl" not in outputs


@pytest.mark.parametrize("line, reason", [c[1:] for c in SKIPPED], ids=[c[0] for c in SKIPPED])
def test_skipped_line(tmp_path, line, reason):
    files = {"a.jsonl": GOOD + b"\n" + line + b"\n" + GOOD_B + b"\n"}
    data = load_file(tmp_path, files["a.jsonl"])  # detected (a named path would take true/false as 1/0)
    assert data.layout.scores == "reward[].score" and data.detected
    assert line_totals(data) == {"files": 1, "lines": 3, "rollouts": 2, "blank": 0, "skipped": 1}
    bad = skipped_at(data, 2)
    if reason is None:
        assert bad["reason"] in sp.REASONS
    else:
        assert bad["reason"] == reason, bad
    assert bad["offset"] == len(GOOD) + 1 and bad["length"] == len(line)
    # the good neighbours are untouched
    assert data.rows["line"].tolist() == [1, 3]
    assert data.table()["mean_reward"].tolist() == [0.5, 0.8125]
    export_all(data, tmp_path / "out")
    outputs = assert_promise(files, tmp_path / "out")
    assert outputs["_skipped.jsonl"] == [line + b"\n"]
    assert outputs["bucket_0.jsonl"] == [GOOD + b"\n", GOOD_B + b"\n"]


@pytest.mark.parametrize("line, reason", [c[1:] for c in SKIPPED], ids=[c[0] for c in SKIPPED])
def test_skipped_line_under_strict(tmp_path, line, reason):
    data = GOOD + b"\n" + GOOD + b"\n" + line + b"\n" + GOOD_B + b"\n"
    with pytest.raises(BadLineError) as caught:
        load_file(tmp_path, data, strict=True)
    assert caught.value.where == "a.jsonl:3"
    assert caught.value.reason in sp.REASONS
    if reason is not None:
        assert caught.value.reason == reason
    assert "\n" not in str(caught.value)


# ----------------------------------------------------------------------------------------------
# other score paths
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, line, expected",
    [
        ("rewards[]", b'{"rewards":[1,0,0.5]}', [1, 0, 0.5]),
        ("rewards[]", b'{"rewards":[]}', sp.EMPTY),
        ("rewards[]", b'{"rewards":1}', sp.NOT_LIST),
        ("rewards[]", b'{"rewards":[1,"0"]}', sp.NOT_NUMBER),
        ("rewards[]", b'{"rewards":[1,NaN]}', sp.NOT_FINITE),
        ("rewards[]", b'{"reward":[1]}', sp.MISSING),
        ("score", b'{"score":0.25}', [0.25]),
        ("score", b'{"score":[1]}', sp.NOT_NUMBER),
        ("score", b'{"score":true}', [1]),  # a named path: booleans are 1/0
        ("score", b'{"score":false}', [0]),
        ("score", b'{"score":-Infinity}', sp.NOT_FINITE),
        ("score", b'{"score":1,"score":2}', [2]),
        ("score", b'{"points":1}', sp.MISSING),
    ],
)
def test_other_score_paths(tmp_path, path, line, expected):
    anchor = {"rewards[]": b'{"rewards":[1,1]}', "score": b'{"score":1}'}[path]
    data = load_file(tmp_path, anchor + b"\n" + line + b"\n", scores=path)
    if isinstance(expected, list):
        assert data.skipped.empty
        assert scores_of_row(data, row_of(data, 2)) == [float(s) for s in expected]
        assert data.table()["mean_reward"].iloc[row_of(data, 2)] == pytest.approx(mean(expected))
    else:
        assert skipped_at(data, 2)["reason"] == expected
        assert data.totals["rollouts"] == 1


# ----------------------------------------------------------------------------------------------
# line structure: the last line, blank lines, CRLF, BOM
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", range(1, len(GOOD)))
def test_truncated_last_line_at_every_position(tmp_path, cut):
    partial = GOOD[:cut]
    files = {"a.jsonl": GOOD_B + b"\n" + partial}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score")
    assert line_totals(data) == {"files": 1, "lines": 2, "rollouts": 1, "blank": 0, "skipped": 1}
    bad = skipped_at(data, 2)
    assert bad["reason"] == sp.TRUNCATED
    assert bad["length"] == len(partial)
    if cut % 10 == 1:  # the export is slower; a sample of positions is enough for it
        export_all(data, tmp_path / "out")
        assert assert_promise(files, tmp_path / "out")["_skipped.jsonl"] == [partial + b"\n"]


def test_truncated_last_line_through_the_cli(tmp_path):
    partial = GOOD[: len(GOOD) // 2]
    files = {"a.jsonl": GOOD + b"\n" + GOOD_B + b"\n" + partial}
    proc = run_cli("-i", write_input(tmp_path, files), "-o", tmp_path / "out", "-n", "2")
    assert proc.returncode == 0, proc.stderr
    outputs = assert_promise(files, tmp_path / "out")
    assert outputs["_skipped.jsonl"] == [partial + b"\n"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["skipped"] == {sp.TRUNCATED: 1}
    assert manifest["skipped_examples"][sp.TRUNCATED][0].startswith(f"a.jsonl:3: {sp.TRUNCATED}")
    strict = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out2", "--strict")
    assert f"a.jsonl:3: {sp.TRUNCATED}" in assert_one_line_error(strict, code=1)
    assert_nothing_written(tmp_path / "out2")


def test_truncated_last_line_in_a_crlf_file(tmp_path):
    data = load_file(tmp_path, GOOD + b"\r\n" + GOOD[:20], scores="reward[].score")
    assert skipped_at(data, 2)["reason"] == sp.TRUNCATED


def test_truncated_last_line_cut_inside_a_utf8_character(tmp_path):
    line = rollout([1], prompt="日本語のテキスト")
    cut = line.index("本".encode()) + 1  # inside the 3-byte character
    data = load_file(tmp_path, GOOD + b"\n" + line[:cut], scores="reward[].score")
    assert skipped_at(data, 2)["reason"] == sp.TRUNCATED


@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz"])
def test_valid_last_line_without_newline_is_accepted_and_gets_one(tmp_path, name):
    raw = GOOD + b"\n" + GOOD_B
    files = {name: gzip.compress(raw) if name.endswith(".gz") else raw, "b.jsonl": rollout([0.25]) + b"\n"}
    data = bucketing.load(write_input(tmp_path, files), workers=1)
    assert line_totals(data) == {"files": 2, "lines": 3, "rollouts": 3, "blank": 0, "skipped": 0}
    assert scores_of_row(data, row_of(data, 2, file_id=0)) == [1, 1, 0, 1.25]
    assert data.table()["mean_reward"].tolist() == [0.5, 0.8125, 0.25]
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1", "--order", "input")
    assert proc.returncode == 0, proc.stderr
    out = (tmp_path / "out" / "bucket_0.jsonl").read_bytes()
    # the last line of a.jsonl is not glued to the first line of b.jsonl
    assert out == GOOD + b"\n" + GOOD_B + b"\n" + rollout([0.25]) + b"\n"


def test_valid_last_line_without_newline_alone(tmp_path):
    files = {"a.jsonl": GOOD_B}
    proc = run_cli("-i", write_input(tmp_path, files), "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "bucket_0.jsonl").read_bytes() == GOOD_B + b"\n"


def test_blank_and_whitespace_only_lines(tmp_path):
    lines = [b"", GOOD, b"", b"   ", b"\t", b" \t \t", b"\r", b" \r", GOOD_B, b"", b"  "]
    files = {"a.jsonl": b"\n".join(lines)}  # ends with a whitespace-only line without "\n"
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score")
    assert line_totals(data) == {"files": 1, "lines": len(lines), "rollouts": 2, "blank": len(lines) - 2, "skipped": 0}
    assert data.rows["line"].tolist() == [2, 9]
    assert data.table()["mean_reward"].tolist() == [0.5, 0.8125]
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    outputs = assert_promise(files, tmp_path / "out")
    assert outputs == {"bucket_0.jsonl": [GOOD + b"\n", GOOD_B + b"\n"]}
    manifest = json.loads(proc.stdout)
    assert manifest["totals"]["blank"] == len(lines) - 2
    assert manifest["totals"]["skipped"] == 0 and manifest["skipped"] == {}


def test_only_blank_lines_is_an_error(tmp_path):
    write_input(tmp_path, {"a.jsonl": b"\n \n\t\r\n"})
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out")
    assert_one_line_error(proc)
    assert_nothing_written(tmp_path / "out")


def test_crlf_file(tmp_path):
    lines = [GOOD, rollout([0.25, 0.75]), b"", GOOD_B]
    files = {"a.jsonl": b"\r\n".join(lines) + b"\r\n"}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score")
    assert line_totals(data) == {"files": 1, "lines": 4, "rollouts": 3, "blank": 1, "skipped": 0}
    assert data.table()["mean_reward"].tolist() == [0.5, 0.5, 0.8125]
    assert data.rows["length"].tolist() == [len(GOOD), len(lines[1]), len(GOOD_B)]  # the \r is not counted
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    out = (tmp_path / "out" / "bucket_0.jsonl").read_bytes()
    assert out == GOOD + b"\n" + lines[1] + b"\n" + GOOD_B + b"\n"
    assert b"\r" not in out


def test_crlf_bad_line_is_skipped_without_its_cr(tmp_path):
    files = {"a.jsonl": GOOD + b"\r\n[1]\r\n" + GOOD_B + b"\r\n"}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score")
    assert skipped_at(data, 2)["reason"] == sp.NOT_OBJECT
    export_all(data, tmp_path / "out")
    assert assert_promise(files, tmp_path / "out")["_skipped.jsonl"] == [b"[1]\n"]


def test_only_one_trailing_cr_is_dropped(tmp_path):
    line = b'{"reward":[{"score":2}]}\r'  # JSON whitespace: still a good line
    files = {"a.jsonl": GOOD + b"\n" + line + b"\r\n"}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score")
    assert scores_of_row(data, row_of(data, 2)) == [2.0]
    export_all(data, tmp_path / "out")
    assert assert_promise(files, tmp_path / "out")["bucket_0.jsonl"][1] == line + b"\n"


def test_lone_cr_does_not_split_a_line(tmp_path):
    files = {"a.jsonl": GOOD + b"\r" + GOOD_B + b"\n" + rollout([0.5]) + b"\n"}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score")
    assert line_totals(data) == {"files": 1, "lines": 2, "rollouts": 1, "blank": 0, "skipped": 1}
    assert skipped_at(data, 1)["reason"] == sp.INVALID_JSON
    assert data.rows["line"].tolist() == [2]
    export_all(data, tmp_path / "out")
    assert assert_promise(files, tmp_path / "out")["_skipped.jsonl"] == [GOOD + b"\r" + GOOD_B + b"\n"]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e"])
def test_unicode_and_ascii_line_separators_never_split_a_line(tmp_path, separator):
    raw_sep = separator.encode()
    good = b'{"prompt":"a' + raw_sep + b'b",' + R1 + b"}"
    files = {"a.jsonl": good + b"\n" + GOOD + raw_sep + GOOD_B + b"\n" + GOOD + b"\n"}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score")
    assert data.totals["lines"] == 3
    if ord(separator) < 0x20:  # a raw control character: invalid in JSON strings, one bad line
        assert skipped_at(data, 1)["reason"] == sp.INVALID_JSON
        assert data.rows["line"].tolist() == [3]
    else:
        assert scores_of_row(data, row_of(data, 1)) == [1, 0]
        assert data.rows["line"].tolist() == [1, 3]
    assert skipped_at(data, 2)["reason"] == sp.INVALID_JSON  # two objects with a separator between
    export_all(data, tmp_path / "out")
    assert_promise(files, tmp_path / "out")


def test_bom_at_file_start_is_dropped_and_later_bom_is_skipped(tmp_path):
    files = {"a.jsonl": BOM + GOOD + b"\n" + BOM + GOOD_B + b"\n" + rollout([0.25]) + b"\n"}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score")
    assert line_totals(data) == {"files": 1, "lines": 3, "rollouts": 2, "blank": 0, "skipped": 1}
    first = row_of(data, 1)
    assert int(data.rows["offset"].iloc[first]) == 3 and int(data.rows["length"].iloc[first]) == len(GOOD)
    assert data.table()["mean_reward"].tolist() == [0.5, 0.25]
    assert skipped_at(data, 2)["reason"] == sp.INVALID_JSON
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    outputs = assert_promise(files, tmp_path / "out")
    assert outputs["bucket_0.jsonl"] == [GOOD + b"\n", rollout([0.25]) + b"\n"]
    assert outputs["_skipped.jsonl"] == [BOM + GOOD_B + b"\n"]  # the later BOM is kept: byte-identical


@pytest.mark.parametrize("rest", [b"\n", b"\r\n", b""])
def test_bom_then_good_line_in_each_line_ending(tmp_path, rest):
    files = {"a.jsonl": BOM + GOOD_B + rest}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score")
    assert data.totals["rollouts"] == 1 and data.table()["mean_reward"].tolist() == [0.8125]
    export_all(data, tmp_path / "out")
    assert (tmp_path / "out" / "bucket_0.jsonl").read_bytes() == GOOD_B + b"\n"


def test_bom_before_a_blank_first_line(tmp_path):
    data = load_file(tmp_path, BOM + b"  \n" + GOOD + b"\n", scores="reward[].score")
    assert line_totals(data) == {"files": 1, "lines": 2, "rollouts": 1, "blank": 1, "skipped": 0}


def test_bom_at_the_start_of_every_file(tmp_path):
    files = {"a.jsonl": BOM + GOOD + b"\n", "b.jsonl": BOM + GOOD_B + b"\n"}
    data = bucketing.load(write_input(tmp_path, files), workers=1)
    assert data.totals["rollouts"] == 2 and data.skipped.empty
    export_all(data, tmp_path / "out")
    assert_promise(files, tmp_path / "out")


# ----------------------------------------------------------------------------------------------
# long lines
# ----------------------------------------------------------------------------------------------


def padded(size: int, scores=(1, 0)) -> bytes:
    """A good line of exactly ``size`` bytes."""
    base = rollout(list(scores), prompt="")
    line = rollout(list(scores), prompt="x" * (size - len(base)))
    assert len(line) == size
    return line


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_line_length_limit_boundary(tmp_path, ending):
    limit = 300
    files = {"a.jsonl": ending.join([padded(limit - 1), padded(limit), padded(limit + 1), GOOD]) + ending}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score", max_line_bytes=limit)
    assert data.rows["line"].tolist() == [1, 2, 4]  # the \r of CRLF is not part of the line's length
    bad = skipped_at(data, 3)
    assert bad["reason"] == sp.TOO_LONG and bad["length"] == limit + 1
    export_all(data, tmp_path / "out")
    assert assert_promise(files, tmp_path / "out")["_skipped.jsonl"] == [padded(limit + 1) + b"\n"]


def test_too_long_line_through_the_cli(tmp_path):
    long = padded(5000)
    files = {"a.jsonl": GOOD + b"\n" + long + b"\n" + GOOD_B + b"\n" + long}  # the last one without "\n"
    proc = run_cli(
        "-i", write_input(tmp_path, files), "-o", tmp_path / "out", "--max-line-bytes", "1000", "-n", "1", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    outputs = assert_promise(files, tmp_path / "out")
    assert outputs["_skipped.jsonl"] == [long + b"\n", long + b"\n"]
    manifest = json.loads(proc.stdout)
    assert manifest["skipped"] == {sp.TOO_LONG: 2}
    assert [e.split(": ")[0] for e in manifest["skipped_examples"][sp.TOO_LONG]] == ["a.jsonl:2", "a.jsonl:4"]
    assert manifest == json.loads((tmp_path / "out" / "manifest.json").read_text())


LINE_SHAPES = [
    pytest.param(b"", b"\n", id="LF"),
    pytest.param(b"", b"", id="no newline at EOF"),
    pytest.param(b"", b"\r\n", id="CRLF"),
    pytest.param(BOM, b"\n", id="BOM"),
]


def window() -> int:
    from bucketing import sources

    return sources.WINDOW


@pytest.mark.parametrize("prefix, ending", LINE_SHAPES)
def test_huge_line_is_skipped_and_copied_byte_identical(tmp_path, prefix, ending):
    huge = padded(window() + 12_345)
    files = {"a.jsonl": prefix + huge + (ending or b"\n") + GOOD + b"\n" + GOOD_B + b"\n" + huge + ending}
    data = load_file(tmp_path, files["a.jsonl"], scores="reward[].score", max_line_bytes=1000)
    assert line_totals(data) == {"files": 1, "lines": 4, "rollouts": 2, "blank": 0, "skipped": 2}
    assert data.skipped["reason"].tolist() == [sp.TOO_LONG, sp.TOO_LONG]
    assert data.rows["line"].tolist() == [2, 3]
    assert data.table()["mean_reward"].tolist() == [0.5, 0.8125]
    export_all(data, tmp_path / "out")
    outputs = assert_promise(files, tmp_path / "out")
    assert outputs["_skipped.jsonl"] == [huge + b"\n", huge + b"\n"]


@pytest.mark.parametrize("prefix, ending", LINE_SHAPES)
def test_line_of_exactly_max_line_bytes_is_accepted_at_large_limits(tmp_path, prefix, ending):
    limit = window()
    line = padded(limit)
    raw = prefix + line + ending + GOOD + b"\n" if prefix else GOOD + b"\n" + line + ending
    data = load_file(tmp_path, raw, scores="reward[].score", max_line_bytes=limit)
    assert data.skipped.empty, data.skipped[["line", "reason", "detail"]].to_dict("records")
    assert sorted(data.rows["length"].tolist()) == [len(GOOD), limit]


# ----------------------------------------------------------------------------------------------
# the whole table through the command line: promise, manifest counts and examples
# ----------------------------------------------------------------------------------------------


def test_every_case_through_the_cli_and_the_manifest(tmp_path):
    cases = [(line, ("ok", s)) for name, line, s in ACCEPTED] + [
        (line, ("skip", r)) for _, line, r in SKIPPED if r is not None
    ]
    lines, expected_reasons, expected_ok = [], [], []
    for line, (kind, what) in cases:
        lines += [GOOD, line]  # a good line before each case keeps the score path detectable
        if kind == "ok":
            expected_ok.append(len(lines))
        else:
            expected_reasons.append((len(lines), what))
    lines += [b"", b"  ", GOOD_B]
    files = {"cases.jsonl": b"\n".join(lines) + b"\n"}
    proc = run_cli("-i", write_input(tmp_path, files), "-o", tmp_path / "out", "-n", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    outputs = assert_promise(files, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert json.loads(proc.stdout) == manifest

    good_count = len(cases) + 1
    assert manifest["totals"] == {
        "files": 1,
        "lines": len(lines),
        "rollouts": good_count + len(expected_ok),
        "rollout_lines": good_count + len(expected_ok),
        "blank": 2,
        "skipped": len(expected_reasons),
    }
    assert manifest["params"]["scores"] == "reward[].score"
    assert manifest["skipped"] == dict(Counter(reason for _, reason in expected_reasons))
    assert list(manifest["skipped"].values()) == sorted(manifest["skipped"].values(), reverse=True)
    for reason, count in manifest["skipped"].items():
        numbers = [n for n, r in expected_reasons if r == reason]
        examples = manifest["skipped_examples"][reason]
        assert len(examples) == min(5, count)
        for example, number in zip(examples, numbers):
            assert example.startswith(f"cases.jsonl:{number}: {reason}"), example
            assert "\n" not in example
    assert manifest["skipped_file"] == "_skipped.jsonl"
    # _skipped.jsonl holds exactly the bad lines, in input order
    assert outputs["_skipped.jsonl"] == [lines[n - 1] + b"\n" for n, _ in expected_reasons]
    assert sum(b["count"] for b in manifest["buckets"]) == manifest["totals"]["rollouts"]
    for bucket in manifest["buckets"]:
        assert len(outputs.get(bucket["file"], [])) == bucket["count"]
    assert manifest["inputs"] == [{"path": "cases.jsonl", "bytes": len(files["cases.jsonl"]), "lines": len(lines)}]
    # the bucket files hold the accepted lines with mean rewards inside each bucket's range
    for bucket in manifest["buckets"]:
        for line in outputs.get(bucket["file"], []):
            value = json.loads(line, parse_int=float)
            m = mean([item["score"] for item in value["reward"]])
            assert not_above(bucket["min"], m) and not_above(m, bucket["max"])


def test_strict_reports_file_and_line(tmp_path):
    write_input(
        tmp_path, {"a.jsonl": GOOD + b"\n" + GOOD + b"\n", "b.jsonl": GOOD + b"\n\n" + score_line(b"NaN") + b"\n"}
    )
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "--strict")
    message = assert_one_line_error(proc, code=1)
    assert f"b.jsonl:3: {sp.NOT_FINITE}" in message
    assert_nothing_written(tmp_path / "out")
    # without --strict the same input is bucketed
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr


def test_strict_with_only_good_lines_succeeds(tmp_path):
    files = {"a.jsonl": GOOD + b"\r\n\n" + GOOD_B}
    proc = run_cli("-i", write_input(tmp_path, files), "-o", tmp_path / "out", "--strict", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    assert_promise(files, tmp_path / "out")
    assert not (tmp_path / "out" / "_skipped.jsonl").exists()


# ----------------------------------------------------------------------------------------------
# files that are not JSONL at all: in a folder, skipped whole (every line to _skipped.jsonl, the file
# named); alone, refused with a one-line error naming the file, nothing written
# ----------------------------------------------------------------------------------------------

ROWS = [{"prompt": "a", "reward": [{"score": 1}]}, {"prompt": "b", "reward": [{"score": 0}, {"score": 1}]}]


def _binary_junk() -> bytes:
    import random

    rng = random.Random(1234)
    return bytes(rng.randrange(256) for _ in range(20_000))


NOT_JSONL = [
    pytest.param(json.dumps(ROWS[0], indent=2).encode() + b"\n", id="pretty-printed object"),
    pytest.param(json.dumps(ROWS[0], indent=4).encode(), id="pretty-printed object, no final newline"),
    pytest.param(json.dumps({"data": ROWS}, indent=1).encode() + b"\n", id="pretty-printed document"),
    pytest.param(json.dumps(ROWS).encode() + b"\n", id="array on one line"),
    pytest.param(json.dumps(ROWS, indent=2).encode() + b"\n", id="pretty-printed array"),
    pytest.param(
        b"[\n" + b",\n".join(json.dumps(r).encode() for r in ROWS) + b"\n]\n", id="array with one element per line"
    ),
    pytest.param(_binary_junk(), id="binary junk"),
    pytest.param(bytes(range(256)) * 40, id="all byte values"),
    pytest.param(("\n".join(json.dumps(r) for r in ROWS) + "\n").encode("utf-16"), id="UTF-16 with BOM"),
    pytest.param(("\n".join(json.dumps(r) for r in ROWS) + "\n").encode("utf-16-le"), id="UTF-16-LE"),
    pytest.param(("\n".join(json.dumps(r) for r in ROWS) + "\n").encode("utf-16-be"), id="UTF-16-BE"),
    pytest.param(("\n".join(json.dumps(r) for r in ROWS) + "\n").encode("utf-32"), id="UTF-32"),
]


@pytest.mark.parametrize("content", NOT_JSONL)
def test_file_that_is_not_jsonl_is_skipped_whole_in_a_folder(tmp_path, content):
    files = {"good.jsonl": GOOD + b"\n" + GOOD_B + b"\n", "weird doc.jsonl": content}
    write_input(tmp_path, files)
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "2")
    assert proc.returncode == 0, proc.stderr
    assert b"weird doc.jsonl: " in proc.stdout  # named in the summary, with why
    outputs = assert_promise(files, tmp_path / "out")
    assert outputs["_skipped.jsonl"] == [content + b"\n" for _, content in input_lines(content)]  # every line, in order
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert [(f["file"], f["reason"], f["lines"]) for f in manifest["skipped_files"]] == [
        ("weird doc.jsonl", FILE_NOT_JSONL, len(input_lines(content)))
    ]
    assert manifest["skipped"] == {FILE_NOT_JSONL: len(input_lines(content))}
    assert manifest["totals"]["rollouts"] == 2


@pytest.mark.parametrize("content", NOT_JSONL[:1] + NOT_JSONL[-6:-4])
def test_file_that_is_not_jsonl_stops_a_strict_run(tmp_path, content):
    write_input(tmp_path, {"good.jsonl": GOOD + b"\n", "weird doc.jsonl": content})
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "--strict")
    assert "weird doc.jsonl:1: " in assert_one_line_error(proc, code=1)
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("content", NOT_JSONL)
def test_file_that_is_not_jsonl_alone(tmp_path, content):
    """A folder of only such a file has no rollouts: refused, naming it."""
    write_input(tmp_path, {"doc.jsonl": content})
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "--dry-run")
    assert assert_one_line_error(proc).startswith("error: doc.jsonl is not JSONL")
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("content", NOT_JSONL)
def test_a_single_input_file_that_is_not_jsonl_is_refused(tmp_path, content):
    write_input(tmp_path, {"good.jsonl": GOOD + b"\n", "doc.jsonl": content})
    proc = run_cli("-i", tmp_path / "in" / "doc.jsonl", "-o", tmp_path / "out")
    message = assert_one_line_error(proc)
    assert message.startswith("error: doc.jsonl is not JSONL") and message.rstrip().endswith(
        ("Convert or remove it", "(e.g. jq -c '.[]')")
    )
    assert_nothing_written(tmp_path / "out")


# ----------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------

_SAFE = st.binary(max_size=40).filter(lambda b: not any(c < 0x20 or c in b'"\\' for c in b))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=_SAFE)
def test_utf8_validity_decides_acceptance(tmp_path_factory, payload):
    """Any bytes inside a string: accepted iff they are valid UTF-8 (Python's strict decoder)."""
    tmp = tmp_path_factory.mktemp("utf8")
    line = b'{"prompt":"' + payload + b'","reward":[{"score":0.5}]}'
    # first and last line of a file: both positions of the block-wide fast UTF-8 check
    files = {"a.jsonl": line + b"\n" + GOOD + b"\n", "b.jsonl": GOOD + b"\n" + line + b"\n"}
    data = bucketing.load(write_input(tmp, files), scores="reward[].score", workers=1)
    try:
        payload.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    if valid:
        assert data.skipped.empty, data.skipped.to_dict("records")
        assert data.table()["mean_reward"].tolist() == [0.5, 0.5, 0.5, 0.5]
    else:
        assert data.skipped["reason"].tolist() == [sp.INVALID_UTF8, sp.INVALID_UTF8]
        assert data.totals["rollouts"] == 2


_LINE_KINDS = st.one_of(
    st.lists(st.sampled_from([0, 1, 0.5, -2, 1.25]), min_size=1, max_size=5).map(rollout),
    st.sampled_from(
        [
            b"",
            b"  ",
            b"\t",
            b"[1]",
            b"null",
            b'{"reward":[]}',
            b"{",
            score_line(b"NaN"),
            b'{"prompt":"\xff",' + R1 + b"}",
            GOOD + GOOD,
            BOM + GOOD,
            b'{"reward":[{"score":"x"}]}',
            b'{"prompt":"\xe2\x80\xa8\xc2\x85",' + R1 + b"}",
        ]
    ),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.tuples(_LINE_KINDS, st.sampled_from([b"\n", b"\r\n"])), min_size=1, max_size=25),
    bom=st.booleans(),
    final_newline=st.booleans(),
)
def test_every_line_accounted_for(tmp_path_factory, lines, bom, final_newline):
    """Random mixes: rollouts + skipped + blank == lines, and the export keeps the promise."""
    tmp = tmp_path_factory.mktemp("mix")
    body = (BOM if bom else b"") + b"".join(content + end for content, end in lines)
    if not final_newline:
        body = body[: -len(lines[-1][1])]
    files = {"a.jsonl": GOOD + b"\n", "b.jsonl": body}  # a.jsonl keeps the run from failing for lack of rollouts
    spec = input_lines(body)
    # a file whose last line, cut off before its "\n", opens an object (blank lines after it don't count as cut)
    unfinished_last_object = (
        not body.endswith(b"\n") and spec and spec[-1][0] == body.count(b"\n") + 1 and spec[-1][1].startswith(b"{")
    )
    # not one JSON object (nor an unfinished last one) in the file: skipped whole as "not JSONL", the file named
    not_jsonl = spec and not any(is_json_object(content) for _, content in spec) and not unfinished_last_object
    data = bucketing.load(write_input(tmp, files), scores="reward[].score", workers=1)
    totals = data.totals
    assert totals["lines"] == 1 + count_lines(body)
    assert totals["rollouts"] + totals["skipped"] == 1 + len(spec)
    assert totals["blank"] == count_lines(body) - len(spec)
    if not_jsonl:
        assert set(data.skipped["reason"]) == {FILE_NOT_JSONL} and totals["rollouts"] == 1
        assert [(f["file"], f["lines"]) for f in data.skipped_files] == [("b.jsonl", len(spec))]
    else:
        assert set(data.skipped["reason"]) <= set(sp.REASONS) and not data.skipped_files
    # line numbers in the index are the spec's physical line numbers
    b_lines = data.rows[data.rows["file_id"] == 1]["line"].tolist() + data.skipped["line"].tolist()
    assert sorted(b_lines) == [n for n, _ in spec]
    for index in np.flatnonzero(data.rows["file_id"].to_numpy() == 1):
        content = dict(spec)[int(data.rows["line"].iloc[index])]
        value = json.loads(content)
        assert scores_of_row(data, int(index)) == [float(r["score"]) for r in value["reward"]]
    out = tmp / "out"
    export_all(data, out)
    assert_promise(files, out)
