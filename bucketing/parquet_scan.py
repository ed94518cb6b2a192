"""Scan a parquet file as the line parser scans JSONL: each row one JSON line of only the columns needed.

Only the top-level columns the score path, the group fields and the join field start with are read (pyarrow's
``columns=``), one row group at a time; each row is encoded as a JSON object and handed to
:func:`bucketing.parse.scan`, so scores, group keys and skip reasons are exactly those of a JSONL line
holding the same values. The rows' places are then written as row numbers (see
:mod:`bucketing.parquet_read`): ``offset`` = row number, ``length`` = 1.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

import numpy as np

from .layout import FILE, Layout
from .parquet_read import Unreadable, is_parquet, json_rows, open_parquet, read_row_group
from .parse import ROW_FIELDS, Chunk, ChunkResult, scan
from .scorepath import group_path, parse_field
from .sources import Block

ROW_LENGTH = 1  # a parquet row's "length" in the line index: one row


def scan_chunk(chunk: Chunk) -> ChunkResult:
    """Scan one chunk of any input file (what the loader runs, in worker processes too)."""
    return scan_parquet(chunk) if is_parquet(chunk.file) else scan(chunk)


def top_fields(layout: Layout, join_on: str = "") -> list[str]:
    """The top-level fields a line's scores, group key and join key are read from."""
    firsts = [steps[0][0] for _, steps in layout.path.terms]
    firsts += [str(group_path(field)[0]) for field in layout.group_by if field != FILE]
    firsts += [parse_field(join_on)[0]] if join_on else []
    return list(dict.fromkeys(firsts))


def scan_parquet(chunk: Chunk) -> ChunkResult:
    """Scan a whole parquet file; a file pyarrow can't read gives a result with ``unreadable`` set."""
    try:
        parquet = open_parquet(chunk.file)
    except Unreadable as why:
        return ChunkResult(chunk, unreadable=str(why))
    broken: list[str] = []
    with parquet:
        names = parquet.schema_arrow.names
        present = set(names)
        wanted = top_fields(chunk.layout, chunk.join_on)
        columns = [name for name in wanted if name in present]  # a missing one: each row says so
        twice = [name for name in columns if names.count(name) > 1]
        if twice:  # which of them holds the scores? pyarrow's rows keep one silently: refused, not guessed
            return ChunkResult(chunk, unreadable=f"two columns are named {twice[0]}")
        result = scan(chunk, _row_blocks(parquet, columns, broken))
    if broken:
        result.unreadable = broken[0]
    return _as_row_numbers(result)


def _row_blocks(parquet, columns: list[str], broken: list[str]) -> Iterator[Block]:
    """The rows as blocks of JSON lines, one block per row group (bytes offsets are those of this stream)."""
    offset = 0
    for index in range(parquet.num_row_groups):
        try:
            if columns:
                lines = list(json_rows(read_row_group(parquet, index, columns)))
            else:  # no column the layout needs: every row is {} (the parser says what is missing)
                lines = [b"{}"] * parquet.metadata.row_group(index).num_rows
        except Unreadable as why:
            broken.append(str(why))
            return
        if not lines:
            continue
        buf = bytearray(b"\n".join(lines))
        buf += b"\n"
        yield Block(buf, 0, len(buf), offset)
        offset += len(buf)


def _as_row_numbers(result: ChunkResult) -> ChunkResult:
    """Every line's place given as its row number (``line`` - 1), length 1; a row is always "clean"."""
    rows = np.frombuffer(result.rows, dtype=np.int64).reshape(-1, len(ROW_FIELDS)).copy()
    fields = {name: i for i, name in enumerate(ROW_FIELDS)}
    rows[:, fields["offset"]] = rows[:, fields["line"]] - 1
    rows[:, fields["length"]] = ROW_LENGTH
    rows[:, fields["clean"]] = 1
    result.rows = array("q", rows.tobytes())
    result.skipped = [
        (line, line - 1, ROW_LENGTH, True, reason, detail) for line, _, _, _, reason, detail in result.skipped
    ]
    return result
