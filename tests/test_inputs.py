"""Finding and reading the input: recursive discovery in natural order, compressed files, links,
FIFOs, odd file names, empty inputs, and the chunked (parallel) scan giving the serial scan's result.

All inputs are generated here.  The command line runs in this process (``run_cli``), except where a run
could hang (links, FIFOs): those run it in a subprocess with a timeout (``run_process``).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bucketing
from bucketing import dataset, sources
from bucketing import scorepath as sp
from bucketing.errors import BadLineError, BucketingError

from .conftest import line_totals
from .conftest import run_cli as run_in_process

# ----------------------------------------------------------------------------------------------
# helpers (kept in this file on purpose: no conftest.py)
# ----------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
BOM = b"\xef\xbb\xbf"
TIMEOUT = 60


def rollout(scores, prompt="p", **extra) -> bytes:
    record = {"prompt": prompt, **extra, "reward": [{"score": s} for s in scores]}
    return json.dumps(record, ensure_ascii=False).encode()


GOOD = rollout([0, 1])


def write_tree(root: Path, files: dict, *, mkdir: bool = True) -> Path:
    """Write ``{relative name (str or bytes): raw bytes}`` under ``root``."""
    if mkdir:
        root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = os.path.join(os.fsencode(root), os.fsencode(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return root


def run_cli(*args) -> subprocess.CompletedProcess:
    """``python -m bucketing ARGS`` from the repository root, run in this process; bytes output."""
    return run_in_process(*args, text=False)


def run_process(*args, timeout: float = TIMEOUT, code: str | None = None) -> subprocess.CompletedProcess:
    """``python -m bucketing ARGS`` (or ``python -c CODE ARGS``) from the repository root in a fresh process, with a
    timeout; bytes output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    entry = ["-c", code] if code else ["-m", "bucketing"]
    return subprocess.run(
        [sys.executable, *entry, *map(os.fsencode, args)], cwd=ROOT, env=env, capture_output=True, timeout=timeout
    )


def split_lines(data: bytes) -> list[bytes]:
    pieces = data.split(b"\n")
    return [p + b"\n" for p in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


def promised_lines(data: bytes) -> list[bytes]:
    """The non-blank lines of one (decompressed) file as the outputs must hold them."""
    if data.startswith(BOM):
        data = data[3:]
    out = []
    for piece in data.split(b"\n"):
        if piece.endswith(b"\r"):
            piece = piece[:-1]
        if piece.strip(b" \t\r"):
            out.append(piece + b"\n")
    return out


def read_outputs(out: Path) -> dict[str, bytes]:
    outputs = {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))}
    for name, data in outputs.items():
        assert data == b"" or data.endswith(b"\n"), name
    return outputs


def assert_promise(contents: list[bytes], out: Path) -> None:
    """The output files together hold every promised line of ``contents`` (decompressed), once each."""
    got = Counter(line for data in read_outputs(out).values() for line in split_lines(data))
    want = Counter(line for data in contents for line in promised_lines(data))
    assert got == want, (list(want - got)[:3], list(got - want)[:3])


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.decode("utf-8", "replace").split("\n") if line]


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == code, (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = stderr_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir())


def snapshot(data: bucketing.Dataset) -> dict:
    return {
        "files": [(f.rel, f.size) for f in data.files],
        "rows": data.rows.reset_index(drop=True),
        "skipped": data.skipped.reset_index(drop=True),
        "flat": data.scores.flat.copy(),
        "counts": data.scores.counts.copy(),
        "totals": data.totals,
        "file_lines": list(data.file_lines),
        "file_blank": list(data.file_blank),
        "warnings": list(data.warnings),
    }


def assert_same_scan(a: dict, b: dict, *, offsets: bool = True) -> None:
    columns = ["file_id", "line", "offset", "length", "n", "clean"] if offsets else ["file_id", "line", "length", "n"]
    pd.testing.assert_frame_equal(a["rows"][columns], b["rows"][columns])
    skip_columns = [
        c
        for c in ["file_id", "line", "offset", "length", "clean", "reason", "detail"]
        if offsets or c not in ("offset", "clean")
    ]
    pd.testing.assert_frame_equal(a["skipped"][skip_columns], b["skipped"][skip_columns])
    assert np.array_equal(a["flat"], b["flat"])
    assert np.array_equal(a["counts"], b["counts"])
    assert a["totals"] == b["totals"]
    assert a["file_lines"] == b["file_lines"] and a["file_blank"] == b["file_blank"]


def export_all(data: bucketing.Dataset, out: Path) -> dict:
    values = data.table()["mean_reward"].to_numpy()
    return bucketing.export(data, bucketing.percentile_plan(values, "mean_reward", 1), out)


def mixed_content(rng: random.Random, count: int, *, long_every: int = 0) -> bytes:
    """Good lines of varied size with bad, blank, CRLF and unicode lines mixed in."""
    lines = []
    for i in range(count):
        scores = [rng.choice([0, 1, 0.5, 1.25, -1, 0.1]) for _ in range(rng.randint(1, 9))]
        line = rollout(scores, prompt="x" * rng.randint(0, 400) + "é日😀\u2028", i=i)
        k = rng.random()
        if long_every and i % long_every == 0:
            line = rollout([1], prompt="L" * 6000, i=i)  # longer than max_line_bytes in the tests below
        elif k < 0.04:
            line = b""
        elif k < 0.06:
            line = b" \t "
        elif k < 0.10:
            line = line + b"\r"
        elif k < 0.12:
            line = line[: len(line) // 2]
        elif k < 0.14:
            line = b"[1, 2]"
        elif k < 0.15:
            line = b'{"reward": []}'
        elif k < 0.16:
            line = line.replace(b'"x', b'"\xff', 1)
        elif k < 0.17:
            line = rollout([float("nan")])
        lines.append(line)
    return b"\n".join(lines) + b"\n"


# ----------------------------------------------------------------------------------------------
# discovery and order
# ----------------------------------------------------------------------------------------------

ORDERED = [  # natural order, depth first; each file holds one line with a distinct score
    "bucket_1.jsonl.gz",
    "bucket_2.jsonl",
    "bucket_3.jsonl.zst",
    "bucket_10.jsonl",
    "bucket_10b.jsonl",
    "bucket_100.jsonl",
    "d_2/sub/y_9.jsonl",
    "d_2/sub/y_11.jsonl",
    "d_2/x.jsonl",
    "d_10/x_1.jsonl",
    "d_10/x_2.jsonl",
]
IGNORED = [
    "notes.txt",
    "bucket_4.json",
    "bucket_5.jsonl.bak",
    "bucket_6.jsonl.gz.part",
    "README",
    "d_2/data.csv",
    "d_10/x_3.JSONL.txt",
]


def compress(name: str, raw: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.compress(raw)
    if name.endswith(".zst"):
        zstandard = pytest.importorskip("zstandard")
        return zstandard.ZstdCompressor().compress(raw)
    return raw


def make_ordered_tree(root: Path) -> dict[str, bytes]:
    names = ORDERED.copy()
    random.Random(5).shuffle(names)  # creation order must not matter
    raws = {}
    for name in names:
        index = ORDERED.index(name)
        raws[name] = rollout([index / 10], prompt=name) + b"\n"
        write_tree(root, {name: compress(name, raws[name])})
    write_tree(root, {name: rollout([9]) + b"\n" for name in IGNORED})
    return raws


def test_files_are_found_recursively_in_natural_order(tmp_path):
    make_ordered_tree(tmp_path / "in")
    data = bucketing.load(tmp_path / "in", workers=1)
    assert [f.rel for f in data.files] == ORDERED
    assert data.warnings == []
    assert data.table()["mean_reward"].tolist() == pytest.approx([i / 10 for i in range(len(ORDERED))])
    assert data.rows["file_id"].tolist() == list(range(len(ORDERED)))


@pytest.mark.parametrize("order_flag", [[], ["--order", "input"]])
def test_order_input_writes_lines_in_natural_file_order(tmp_path, order_flag):
    raws = make_ordered_tree(tmp_path / "in")
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1", "--json", *order_flag)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "bucket_0.jsonl").read_bytes() == b"".join(raws[name] for name in ORDERED)
    manifest = json.loads(proc.stdout)
    assert [entry["path"] for entry in manifest["inputs"]] == ORDERED
    assert manifest["totals"]["files"] == len(ORDERED)


def test_order_input_keeps_line_order_inside_files_across_buckets(tmp_path):
    files = {
        f"part_{i}.jsonl": b"".join(rollout([(7 * i + j) % 5 / 4], prompt=f"{i}-{j}") + b"\n" for j in range(9))
        for i in (12, 3, 1, 20)
    }
    write_tree(tmp_path / "in", files)
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "3", "--order", "input")
    assert proc.returncode == 0, proc.stderr
    rank = {(i, j): (i, j) for i in (1, 3, 12, 20) for j in range(9)}
    for data in read_outputs(tmp_path / "out").values():
        keys = [tuple(int(x) for x in json.loads(line)["prompt"].split("-")) for line in split_lines(data)]
        assert keys == sorted(keys, key=lambda k: rank[k])  # file 1 < 3 < 12 < 20, then line order
    assert_promise(list(files.values()), tmp_path / "out")


def test_single_file_as_input(tmp_path):
    path = write_tree(tmp_path / "in", {"only.jsonl": GOOD + b"\n"}) / "only.jsonl"
    data = bucketing.load(path, workers=1)
    assert [f.rel for f in data.files] == ["only.jsonl"] and data.totals["rollouts"] == 1
    proc = run_cli("-i", path, "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "bucket_0.jsonl").read_bytes() == GOOD + b"\n"


@pytest.mark.parametrize("name", ["notes.txt", "data.json", "missing.jsonl"])
def test_input_that_is_not_a_jsonl_file_is_refused(tmp_path, name):
    root = write_tree(tmp_path / "in", {"notes.txt": b"hi\n", "data.json": GOOD + b"\n"})
    proc = run_cli("-i", root / name, "-o", tmp_path / "out")
    assert name in assert_one_line_error(proc)
    assert_nothing_written(tmp_path / "out")


def test_empty_directory_is_an_error(tmp_path):
    (tmp_path / "in").mkdir()
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out")
    assert_one_line_error(proc)
    assert_nothing_written(tmp_path / "out")
    with pytest.raises(BucketingError):
        bucketing.load(tmp_path / "in")


def test_directory_without_inputs_is_an_error(tmp_path):
    write_tree(tmp_path / "in", {"a.json": GOOD + b"\n", "sub/b.txt": GOOD + b"\n", "c.jsonl.bz2": b"BZh"})
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out")
    assert_one_line_error(proc)
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("name, content", [("e.jsonl", b""), ("e.jsonl.gz", gzip.compress(b""))], ids=["plain", "gzip"])
def test_empty_file(tmp_path, name, content):
    write_tree(tmp_path / "in", {"a.jsonl": GOOD + b"\n", name: content})
    data = bucketing.load(tmp_path / "in", workers=1)
    assert [f.rel for f in data.files] == ["a.jsonl", name]
    assert line_totals(data) == {"files": 2, "lines": 1, "rollouts": 1, "blank": 0, "skipped": 0}
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["inputs"][1]["lines"] == 0
    assert (tmp_path / "out" / "bucket_0.jsonl").read_bytes() == GOOD + b"\n"


def test_only_an_empty_file_is_an_error(tmp_path):
    write_tree(tmp_path / "in", {"e.jsonl": b""})
    assert_one_line_error(run_cli("-i", tmp_path / "in", "-o", tmp_path / "out"))
    assert_nothing_written(tmp_path / "out")


def test_directory_named_like_an_input_file(tmp_path):
    root = write_tree(tmp_path / "in", {"a.jsonl": GOOD + b"\n", "x.jsonl/inner.jsonl": rollout([1]) + b"\n"})
    (root / "y.jsonl.gz").mkdir()  # empty, named like a compressed input
    (root / "z.jsonl.zst").mkdir()
    data = bucketing.load(root, workers=1)
    assert [f.rel for f in data.files] == ["a.jsonl", "x.jsonl/inner.jsonl"]
    proc = run_cli("-i", root, "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    assert_promise([GOOD + b"\n", rollout([1]) + b"\n"], tmp_path / "out")


# ----------------------------------------------------------------------------------------------
# compressed inputs
# ----------------------------------------------------------------------------------------------


def reference_content() -> bytes:
    rng = random.Random(11)
    body = mixed_content(rng, 400)
    # a BOM at the start, a CRLF line, a line longer than the limit used below, and no final newline
    return BOM + GOOD + b"\r\n" + rollout([1], prompt="L" * 3000) + b"\n" + body + rollout([0.25, 0.5])


def gzip_members(raw: bytes, cuts: list[int]) -> bytes:
    bounds = [0, *cuts, len(raw)]
    return b"".join(gzip.compress(raw[a:b]) for a, b in zip(bounds, bounds[1:]))


def member_cuts(raw: bytes) -> list[int]:
    """Cut points that split a BOM, a CRLF, a UTF-8 character and lines in the middle."""
    crlf = raw.index(b"\r\n") + 1
    char = raw.index("日".encode()) + 1
    return sorted({1, crlf, char, len(raw) // 3, len(raw) // 3 + 1, 2 * len(raw) // 3})


def compressed_variants(raw: bytes) -> dict[str, bytes]:
    variants = {
        "gzip": ("a.jsonl.gz", gzip.compress(raw)),
        "gzip level 1": ("a.jsonl.gz", gzip.compress(raw, compresslevel=1)),
        "gzip multi-member": ("a.jsonl.gz", gzip_members(raw, member_cuts(raw))),
        "gzip one member per byte at the start": ("a.jsonl.gz", gzip_members(raw, list(range(1, 40)))),
        "gzip with an empty member": ("a.jsonl.gz", gzip.compress(b"") + gzip_members(raw, [len(raw) // 2])),
    }
    try:
        import zstandard
    except ImportError:
        return variants
    frames = [0, *member_cuts(raw), len(raw)]
    compressor = zstandard.ZstdCompressor()
    streamed = compressor.compressobj()
    variants.update(
        {
            "zstd": ("a.jsonl.zst", compressor.compress(raw)),
            "zstd multi-frame": (
                "a.jsonl.zst",
                b"".join(compressor.compress(raw[a:b]) for a, b in zip(frames, frames[1:])),
            ),
            "zstd streamed (no content size)": ("a.jsonl.zst", streamed.compress(raw) + streamed.flush()),
            "zstd with checksum": (
                "a.jsonl.zst",
                zstandard.ZstdCompressor(write_checksum=True, level=19).compress(raw),
            ),
        }
    )
    return variants


VARIANTS = list(compressed_variants(reference_content()))


@pytest.mark.parametrize("variant", VARIANTS)
def test_compressed_file_reads_like_plain(tmp_path, variant):
    raw = reference_content()
    name, blob = compressed_variants(raw)[variant]
    write_tree(tmp_path / "plain", {"a.jsonl": raw})
    write_tree(tmp_path / "packed", {name: blob})
    plain = bucketing.load(tmp_path / "plain", max_line_bytes=2000, workers=1)
    packed = bucketing.load(tmp_path / "packed", max_line_bytes=2000, workers=1)
    assert [f.rel for f in packed.files] == [name]
    assert_same_scan(snapshot(plain), snapshot(packed))
    # the reference content has every kind of line, so this is not a vacuous comparison
    assert {sp.TOO_LONG, sp.NOT_OBJECT, sp.INVALID_UTF8, sp.EMPTY, sp.NOT_FINITE} <= set(plain.skipped["reason"])
    assert plain.totals["blank"] > 0 and plain.totals["rollouts"] > 300
    export_all(plain, tmp_path / "out_plain")
    export_all(packed, tmp_path / "out_packed")
    assert read_outputs(tmp_path / "out_plain") == read_outputs(tmp_path / "out_packed")
    assert_promise([raw], tmp_path / "out_packed")


def test_compressed_files_through_the_cli(tmp_path):
    raw = reference_content()
    variants = compressed_variants(raw)
    files = {f"v{i}_{name}": blob for i, (name, blob) in enumerate(variants.values())}
    write_tree(tmp_path / "in", files)
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "3", "--max-line-bytes", "2000", "--json")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    assert [entry["lines"] for entry in manifest["inputs"]] == [raw.count(b"\n") + 1] * len(files)
    assert_promise([raw] * len(files), tmp_path / "out")


def block_zstandard(monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)  # "import zstandard" now raises ImportError


def test_zst_without_zstandard_names_the_package(tmp_path, monkeypatch):
    zstandard = pytest.importorskip("zstandard")
    write_tree(
        tmp_path / "in", {"a.jsonl": GOOD + b"\n", "sub/b.jsonl.zst": zstandard.ZstdCompressor().compress(GOOD + b"\n")}
    )
    block_zstandard(monkeypatch)
    with pytest.raises(BucketingError) as caught:
        bucketing.load(tmp_path / "in", workers=1)
    message = str(caught.value)
    assert "zstandard" in message and "sub/b.jsonl.zst" in message
    assert "\n" not in message
    with pytest.raises(BucketingError, match="zstandard"):
        bucketing.load(tmp_path / "in", scores="reward[].score", workers=1)  # not only while detecting the path


def test_plain_and_gzip_need_no_zstandard(tmp_path, monkeypatch):
    write_tree(tmp_path / "in", {"a.jsonl": GOOD + b"\n", "b.jsonl.gz": gzip.compress(rollout([1]) + b"\n")})
    block_zstandard(monkeypatch)
    data = bucketing.load(tmp_path / "in", workers=1)
    assert data.table()["mean_reward"].tolist() == [0.5, 1.0]
    export_all(data, tmp_path / "out")
    assert_promise([GOOD + b"\n", rollout([1]) + b"\n"], tmp_path / "out")


def test_cli_zst_without_zstandard(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    write_tree(tmp_path / "in", {"a.jsonl.zst": zstandard.ZstdCompressor().compress(GOOD + b"\n")})
    code = "import sys; sys.modules['zstandard'] = None; from bucketing.cli import main; sys.exit(main())"
    proc = run_process("-i", tmp_path / "in", "-o", tmp_path / "out", code=code)  # a fresh interpreter
    message = assert_one_line_error(proc)
    assert "zstandard" in message and "a.jsonl.zst" in message
    assert_nothing_written(tmp_path / "out")


def _corrupt_inputs() -> list:
    raw = b"".join(rollout([i % 3], prompt=f"row {i}") + b"\n" for i in range(3000))
    gz = gzip.compress(raw)
    cases = [
        pytest.param("x.jsonl.gz", raw, id="plain text named .gz"),
        pytest.param("x.jsonl.gz", gz + b"trailing garbage", id="gzip with trailing garbage"),
        pytest.param("x.jsonl.gz", gz[: len(gz) // 2], id="truncated gzip"),
    ]
    try:
        import zstandard
    except ImportError:
        return cases
    zst = zstandard.ZstdCompressor().compress(raw)
    cases += [
        pytest.param("x.jsonl.zst", b"this is not zstd data\n" * 10, id="junk named .zst"),
        pytest.param("x.jsonl.zst", zst[:-50], id="truncated zstd"),
    ]
    return cases


@pytest.mark.parametrize("name, blob", _corrupt_inputs())
def test_corrupt_compressed_file_is_a_clear_error(tmp_path, name, blob):
    write_tree(tmp_path / "in", {"a.jsonl": GOOD + b"\n", name: blob})
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out")
    message = assert_one_line_error(proc)
    assert name in message
    assert_nothing_written(tmp_path / "out")


# ----------------------------------------------------------------------------------------------
# links, FIFOs, the same file twice
# ----------------------------------------------------------------------------------------------


def test_symlink_loop_is_warned_about_and_does_not_hang(tmp_path):
    root = write_tree(tmp_path / "in", {"a.jsonl": GOOD + b"\n", "sub/b.jsonl": rollout([1]) + b"\n"})
    os.symlink("..", root / "sub" / "up")  # sub/up -> in: a loop
    os.symlink(".", root / "here")
    proc = run_process("-i", root, "-o", tmp_path / "out", "-n", "1")  # a hang ends in TimeoutExpired
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in stderr_lines(proc) if line.startswith("warning:")]
    assert any("sub/up" in w for w in warnings) and any("here" in w for w in warnings), warnings
    assert_promise([GOOD + b"\n", rollout([1]) + b"\n"], tmp_path / "out")
    data = bucketing.load(root, workers=1)
    assert [f.rel for f in data.files] == ["a.jsonl", "sub/b.jsonl"]
    assert len(data.warnings) == 2


def test_fifo_is_warned_about_and_does_not_hang(tmp_path):
    root = write_tree(tmp_path / "in", {"a.jsonl": GOOD + b"\n"})
    os.mkfifo(root / "x.jsonl")  # nobody ever writes to it: opening it for reading would block
    proc = run_process("-i", root, "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("warning:") and "x.jsonl" in line for line in stderr_lines(proc)), proc.stderr
    assert (tmp_path / "out" / "bucket_0.jsonl").read_bytes() == GOOD + b"\n"
    data = bucketing.load(root, workers=1)
    assert [f.rel for f in data.files] == ["a.jsonl"] and len(data.warnings) == 1


def test_fifo_as_the_input_is_an_error_and_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "x.jsonl")
    assert_one_line_error(run_process("-i", tmp_path / "x.jsonl", "-o", tmp_path / "out"))
    assert_nothing_written(tmp_path / "out")


def test_dangling_and_self_referencing_links_are_warned_about(tmp_path):
    root = write_tree(tmp_path / "in", {"a.jsonl": GOOD + b"\n"})
    os.symlink("gone.jsonl", root / "dangling.jsonl")
    os.symlink("selfish.jsonl", root / "selfish.jsonl")
    os.symlink("nowhere", root / "dangling_dir")
    proc = run_process("-i", root, "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in stderr_lines(proc) if line.startswith("warning:")]
    for name in ("dangling.jsonl", "selfish.jsonl"):
        assert any(name in w for w in warnings), (name, warnings)
    data = bucketing.load(root, workers=1)
    assert [f.rel for f in data.files] == ["a.jsonl"]
    assert data.totals["rollouts"] == 1


def test_the_same_file_reached_twice_is_read_once(tmp_path):
    content = GOOD + b"\n" + rollout([1, 1]) + b"\n"
    root = write_tree(tmp_path / "in", {"a.jsonl": content, "other/c.jsonl": rollout([0.25]) + b"\n"})
    os.symlink("a.jsonl", root / "b_symlink.jsonl")
    os.link(root / "a.jsonl", root / "c_hardlink.jsonl")
    os.symlink("other", root / "other_again")  # the same directory twice
    proc = run_process("-i", root, "-o", tmp_path / "out", "-n", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)
    assert manifest["totals"]["rollouts"] == 3 and manifest["totals"]["files"] == 2
    assert_promise([content, rollout([0.25]) + b"\n"], tmp_path / "out")
    warnings = [line for line in stderr_lines(proc) if line.startswith("warning:")]
    for name in ("b_symlink.jsonl", "c_hardlink.jsonl", "other_again"):
        assert any(name in w for w in warnings), (name, warnings)


# ----------------------------------------------------------------------------------------------
# file names
# ----------------------------------------------------------------------------------------------

ODD_NAMES = [
    "with space.jsonl",
    "new\nline.jsonl",
    b"not utf8 \xff\xfe.jsonl",
    "tab\there.jsonl",
    "esc\x1b[31mred.jsonl",
    "carriage\rreturn.jsonl",
    "naïve 日本.jsonl",
]


def _raw(name) -> bytes:
    return os.fsencode(name)


def needs_escaping(raw: bytes) -> bool:
    try:
        return not raw.decode("utf-8").isprintable()
    except UnicodeDecodeError:
        return True


def assert_no_broken_lines(text: bytes, names) -> None:
    """No name is printed raw: no control characters, no newline splitting a message, no stray bytes."""
    for name in names:
        raw = _raw(name)
        if needs_escaping(raw):
            assert raw not in text, raw
            for part in raw.split(b"\n")[1:]:  # a raw newline would start a line with the rest of the name
                assert not any(line.startswith(part) for line in text.split(b"\n")), part
    assert b"\x1b" not in text and b"\r" not in text and b"\t" not in text
    text.decode("utf-8")  # a raw undecodable byte would make this fail


def test_odd_file_names_are_loaded_and_messages_stay_on_one_line(tmp_path):
    root = tmp_path / "in"
    files = {}
    for i, name in enumerate(ODD_NAMES):
        files[name] = rollout([i / 10]) + b"\n[1]\n"  # a bad line, so the name shows up in the messages
    write_tree(root, files)
    os.symlink(b"nowhere", os.path.join(os.fsencode(root), b"dangling \n\xff.jsonl"))
    data = bucketing.load(root, workers=1)
    assert len(data.files) == len(ODD_NAMES)
    assert sorted(os.fsencode(f.path.name) for f in data.files) == sorted(_raw(n) for n in ODD_NAMES)
    assert line_totals(data) == {
        "files": len(ODD_NAMES),
        "lines": 2 * len(ODD_NAMES),
        "rollouts": len(ODD_NAMES),
        "blank": 0,
        "skipped": len(ODD_NAMES),
    }
    assert len(data.warnings) == 1 and all("\n" not in w for w in data.warnings)
    for reason in data.skipped_reasons().values():
        for example in reason["examples"]:
            assert "\n" not in example and "\r" not in example
    table = data.table()
    assert len(set(table["file"])) == len(ODD_NAMES)

    proc = run_cli("-i", root, "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    assert_no_broken_lines(proc.stdout, ODD_NAMES + [b"dangling \n\xff.jsonl"])
    assert_no_broken_lines(proc.stderr, ODD_NAMES + [b"dangling \n\xff.jsonl"])
    warnings = [line for line in stderr_lines(proc) if line.startswith("warning:")]
    assert len(warnings) == 1 and "dangling" in warnings[0]
    assert_promise(list(files.values()), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    paths = [entry["path"] for entry in manifest["inputs"]]
    assert len(set(paths)) == len(ODD_NAMES)
    assert all("\n" not in p and "\r" not in p and "\x1b" not in p for p in paths)
    examples = manifest["skipped_examples"]["not a JSON object"]
    assert len(examples) == 5
    assert all(re.fullmatch(r"[^\n\r\x1b]+\.jsonl:2: not a JSON object \(the line is a list\)", e) for e in examples)

    strict = run_cli("-i", root, "-o", tmp_path / "out2", "--strict")
    assert_one_line_error(strict, code=1)
    assert_no_broken_lines(strict.stderr, ODD_NAMES)


@pytest.mark.parametrize("name", ["new\nline.jsonl", b"bad \xff.jsonl", "esc\x1b.jsonl"])
def test_odd_name_in_a_fatal_error_is_one_line(tmp_path, name):
    write_tree(tmp_path / "in", {name: b"[1]\n[2]\n"})  # not JSONL, and no other file: refused
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out")
    assert_one_line_error(proc)
    assert_no_broken_lines(proc.stderr, [name])
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("name", ["new\nline.jsonl", b"bad \xff.jsonl", "esc\x1b.jsonl"])
def test_odd_name_of_a_file_skipped_whole_stays_on_one_line(tmp_path, name):
    write_tree(tmp_path / "in", {"good.jsonl": GOOD + b"\n", name: b"[1]\n[2]\n"})  # not JSONL: skipped whole
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr
    assert_no_broken_lines(proc.stdout, [name])
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert all("\n" not in f["file"] and "\x1b" not in f["file"] for f in manifest["skipped_files"])


def test_odd_input_directory_name_in_errors(tmp_path):
    root = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"empty\n\xff dir")))
    os.mkdir(os.fsencode(root))
    proc = run_cli("-i", root, "-o", tmp_path / "out")
    assert_one_line_error(proc)
    assert_no_broken_lines(proc.stderr, [b"empty\n\xff dir"])


def test_names_that_escape_to_the_same_text(tmp_path):
    files = {"a\nb.jsonl": GOOD + b"\n", "a\\nb.jsonl": rollout([1]) + b"\n"}
    write_tree(tmp_path / "in", files)
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    assert_promise(list(files.values()), tmp_path / "out")


@pytest.mark.parametrize(
    "stray",
    [
        pytest.param("area_10\u00b2", id="superscript after digits in a non-input file"),
        pytest.param("run1\u00b22.jsonl", id="superscript between digits in an input"),
    ],
)
def test_names_with_unicode_digit_characters(tmp_path, stray):
    write_tree(tmp_path / "in", {"a_2.jsonl": GOOD + b"\n", "a_10.jsonl": rollout([1]) + b"\n", stray: GOOD + b"\n"})
    proc = run_cli("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "1")
    assert proc.returncode == 0, proc.stderr.decode()[-500:]


def test_names_with_other_unicode_digits_sort_naturally(tmp_path):
    # Arabic-Indic digits are decimal digits: they sort by value like ASCII ones
    names = ["r_\u0662.jsonl", "r_\u0661\u0660.jsonl", "r_\u0661.jsonl"]  # 2, 10, 1
    write_tree(tmp_path / "in", {n: rollout([i]) + b"\n" for i, n in enumerate(names)})
    data = bucketing.load(tmp_path / "in", workers=1)
    assert [f.rel for f in data.files] == [names[2], names[0], names[1]]


# ----------------------------------------------------------------------------------------------
# the chunked, parallel scan gives the serial scan's result
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> Path:
    """A few MB over several files: chunk boundaries fall inside lines, long lines, CRLF, BOM..."""
    root = tmp_path_factory.mktemp("big") / "in"
    rng = random.Random(2024)
    files = {
        "f_1.jsonl": BOM + mixed_content(rng, 3000, long_every=97),
        "f_2.jsonl": mixed_content(rng, 3000).replace(b"\n", b"\r\n"),
        "f_3.jsonl": mixed_content(rng, 2500) + GOOD[:30],  # ends with a truncated line
        "f_4.jsonl": mixed_content(rng, 2000) + GOOD,  # ends with a good line without "\n"
        "f_5.jsonl.gz": gzip.compress(mixed_content(rng, 800)),
        "f_6.jsonl": GOOD + b"\n",  # smaller than a chunk
    }
    write_tree(root, files)
    assert sum(p.stat().st_size for p in root.iterdir()) > 3_000_000
    return root


def _load(root: Path, **kwargs) -> bucketing.Dataset:
    return bucketing.load(root, scores="reward[].score", max_line_bytes=5000, **kwargs)


@pytest.fixture(scope="module")
def serial_scan(big_input) -> dict:
    data = _load(big_input, workers=1)
    assert len(data.skipped) > 100 and data.totals["blank"] > 100
    assert sp.TOO_LONG in set(data.skipped["reason"]) and sp.TRUNCATED in set(data.skipped["reason"])
    return snapshot(data)


def chunk_count(root: Path) -> int:
    files, _ = sources.find_inputs(root)
    return len(dataset.make_chunks(files, "reward[].score", 5000, False))


@pytest.mark.parametrize("chunk_bytes", [4096, 65_536, 777_777])
@pytest.mark.parametrize("workers", [1, 2])
def test_chunked_scan_equals_serial_scan(big_input, serial_scan, monkeypatch, chunk_bytes, workers):
    unchunked = chunk_count(big_input)
    monkeypatch.setattr(dataset, "CHUNK_BYTES", chunk_bytes)
    assert chunk_count(big_input) > unchunked  # the patch took effect: files really are cut
    chunked = snapshot(_load(big_input, workers=workers))
    assert_same_scan(serial_scan, chunked)
    assert chunked["warnings"] == serial_scan["warnings"]


def test_parallel_scan_from_a_thread(big_input, serial_scan, monkeypatch):
    """Inside a multi-threaded program (the app) the worker processes must start cleanly too."""
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 65_536)
    result = {}

    def work():
        try:
            result["scan"] = snapshot(_load(big_input, workers=2))
        except BaseException as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=work)  # while it runs, this process has two threads
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the parallel scan hung"
    assert "error" not in result, result.get("error")
    assert_same_scan(serial_scan, result["scan"])


def test_chunked_export_equals_serial_export(big_input, monkeypatch, tmp_path):
    serial = _load(big_input, workers=1)
    export_all(serial, tmp_path / "serial")
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 4096)
    chunked = _load(big_input, workers=2)
    export_all(chunked, tmp_path / "chunked")
    assert read_outputs(tmp_path / "serial") == read_outputs(tmp_path / "chunked")
    contents = []
    for path in sorted(big_input.iterdir()):
        data = path.read_bytes()
        contents.append(gzip.decompress(data) if path.name.endswith(".gz") else data)
    assert_promise(contents, tmp_path / "chunked")


@pytest.mark.parametrize("workers", [1, 2])
def test_strict_names_the_absolute_line_in_a_chunked_file(tmp_path, monkeypatch, workers):
    lines = [rollout([i % 2], prompt="y" * 50) for i in range(3000)]
    bad_at = 2345
    lines[bad_at - 1] = b'{"reward": [{"score": "x"}]}'
    write_tree(tmp_path / "in", {"a.jsonl": b"\n".join(lines) + b"\n"})
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 4096)
    with pytest.raises(BadLineError) as caught:
        bucketing.load(tmp_path / "in", scores="reward[].score", strict=True, workers=workers)
    assert caught.value.where == f"a.jsonl:{bad_at}"
    assert caught.value.reason == sp.NOT_NUMBER


_PIECES = st.sampled_from(
    [
        GOOD,
        rollout([1, 0.5, 0.25], prompt="日本語 \u2028"),
        b"",
        b"  ",
        b"[1]",
        b"{",
        b'{"reward":[]}',
        b'{"p":"\xff","reward":[{"score":1}]}',
        rollout([1], prompt="z" * 150),
        GOOD + b"\r",
    ]
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pieces=st.lists(_PIECES, min_size=1, max_size=40),
    chunk=st.integers(1, 400),
    bom=st.booleans(),
    final_newline=st.booleans(),
)
def test_any_chunk_size_gives_the_same_scan(tmp_path_factory, pieces, chunk, bom, final_newline):
    root = tmp_path_factory.mktemp("chunks")
    body = (BOM if bom else b"") + b"\n".join(pieces) + (b"\n" if final_newline else b"")
    write_tree(root, {"a.jsonl": GOOD + b"\n", "b.jsonl": body})

    def scan():
        try:
            return snapshot(bucketing.load(root, scores="reward[].score", max_line_bytes=120, workers=1))
        except BucketingError as exc:  # e.g. b.jsonl holds no JSON object: must fail the same way
            return str(exc)

    whole = scan()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dataset, "CHUNK_BYTES", chunk)
        cut = scan()
    if isinstance(whole, str) or isinstance(cut, str):
        assert whole == cut
    else:
        assert_same_scan(whole, cut)
