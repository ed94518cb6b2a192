"""Read parquet input files with pyarrow, one row group at a time: rows as JSON lines, a row by its number.

A parquet row is the engine's "line": it is encoded as one JSON object (msgspec) and goes through the
same line parser as a JSONL line, so every score path and every skip reason works the same. In the
line index a parquet row's ``offset`` is its row number in the file (0-based), its ``length`` 1 and its
``line`` that number + 1 (messages say ``file.parquet:17`` for the 17th row).

Memory stays bounded by one row group (of the columns asked for): a file is never read whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from .errors import BucketingError
from .sources import InputFile, display, open_input

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

PARQUET = ".parquet"
NOT_PARQUET = "file is not parquet"
ENCODE_ROWS = 2048  # rows made Python objects at a time (a row group may hold millions)
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def is_parquet(file: InputFile) -> bool:
    return file.path.name.endswith(PARQUET)


class Unreadable(Exception):
    """A parquet file (or a row group of one) pyarrow can't read: why, in a few words."""


def open_parquet(file: InputFile) -> pq.ParquetFile:
    """The file opened for reading (checked to be the file that was found); :class:`Unreadable` for a file
    that is not parquet or has a broken footer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if file.uri is None:
        source: Any = open(open_input(file), "rb")  # noqa: SIM115  (the ParquetFile owns it, and closes it)
    else:
        import pyarrow.fs as pafs

        fs, path = pafs.FileSystem.from_uri(file.uri)
        source = fs.open_input_file(path)
    try:
        return pq.ParquetFile(source)
    except (pa.ArrowException, OSError, ValueError) as error:
        source.close()
        raise Unreadable(_reason(error)) from None


def _reason(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


def row_starts(parquet: pq.ParquetFile) -> list[int]:
    """The row number each row group starts at, and the file's row count last."""
    starts = [0]
    for index in range(parquet.num_row_groups):
        starts.append(starts[-1] + parquet.metadata.row_group(index).num_rows)
    return starts


def read_row_group(parquet: pq.ParquetFile, index: int, columns: list[str] | None = None) -> pa.Table:
    """Row group ``index`` (only ``columns``, when given); :class:`Unreadable` when it is damaged."""
    import pyarrow as pa

    try:
        return parquet.read_row_group(index, columns=columns)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise Unreadable(f"row group {index} can't be read ({_reason(error)})") from None


def json_rows(table: pa.Table) -> Iterator[bytes]:
    """Each row of ``table`` as one JSON object, bytes without a newline (a string's newlines are escaped).

    A float that is NaN or infinite is written as NaN / Infinity (not JSON: the line parser names it
    "score not finite" where a score is read, as it does for such a JSONL line); msgspec would write null.
    """
    for start in range(0, table.num_rows, ENCODE_ROWS):
        part = table.slice(start, ENCODE_ROWS)
        rows = part.to_pylist() if part.num_columns else [{}] * part.num_rows
        if _has_odd_floats(part):
            yield from (_json_with_nan(row) for row in rows)
        else:
            yield from map(_ENCODER.encode, rows)


def _has_odd_floats(table: pa.Table) -> bool:
    """Whether any float in the table (at any depth) is NaN or infinite; only then is the slow encoder needed."""
    return any(_odd_floats(column) for column in table.columns)


def _odd_floats(array: Any) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_floating(kind):
        return bool(pc.any(pc.invert(pc.is_finite(array))).as_py())
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _odd_floats(pc.list_flatten(array))
    if pa.types.is_struct(kind):
        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        return any(_odd_floats(chunk.field(i)) for chunk in chunks for i in range(kind.num_fields))
    if pa.types.is_map(kind):
        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        return any(_odd_floats(chunk.items) for chunk in chunks)
    return False


def _json_with_nan(row: dict) -> bytes:
    return json.dumps(msgspec.to_builtins(row), allow_nan=True, ensure_ascii=False, separators=(",", ":")).encode()


def read_rows(file: InputFile, rows: Sequence[int]) -> dict[int, bytes]:
    """Whole rows by number (0-based), each as one JSON object: only the row groups that hold them are read."""
    wanted = sorted(set(int(row) for row in rows))
    found: dict[int, bytes] = {}
    parquet = _opened(file)
    with parquet:
        starts = row_starts(parquet)
        for index in range(parquet.num_row_groups):
            inside = [row for row in wanted if starts[index] <= row < starts[index + 1]]
            if not inside:
                continue
            table = _readable(file, read_row_group, parquet, index)
            taken = table.take([row - starts[index] for row in inside])
            found.update(zip(inside, json_rows(taken)))
    return found


def sample_objects(file: InputFile, count: int) -> list[dict]:
    """The first ``count`` rows, whole, as JSON values (for detecting the layout); none when unreadable."""
    try:
        parquet = open_parquet(file)
    except Unreadable:
        return []
    with parquet:
        if not parquet.num_row_groups:
            return []
        try:
            table = read_row_group(parquet, 0).slice(0, count)
        except Unreadable:
            return []
        return [json.loads(line) for line in json_rows(table)]


def row_digests(file: InputFile, rows: Sequence[int], size: int) -> bytes:
    """A ``size``-byte BLAKE2b digest of each row in ``rows`` (ascending numbers): of its whole JSON encoding,
    so equal rows share a digest, in any file, at any place."""
    return b"".join(hashlib.blake2b(line, digest_size=size).digest() for line in rows_at(file, rows))


def rows_at(file: InputFile, rows: Sequence[int], top_fields: Collection[str] | None = None) -> Iterator[bytes]:
    """The rows numbered ``rows`` (ascending), each as one JSON object, a row group at a time; with
    ``top_fields``, only those of its top-level columns that the file has."""
    wanted = [int(row) for row in rows]
    parquet = _opened(file)
    with parquet:
        columns = None if top_fields is None else [name for name in parquet.schema_arrow.names if name in top_fields]
        starts = row_starts(parquet)
        position = 0
        for index in range(parquet.num_row_groups):
            end = position
            while end < len(wanted) and wanted[end] < starts[index + 1]:
                end += 1
            if end == position:
                continue
            table = _readable(file, read_row_group, parquet, index, columns)
            if table.num_columns:
                yield from json_rows(table.take([row - starts[index] for row in wanted[position:end]]))
            else:  # none of the columns asked for (pyarrow's take() of no column gives no row)
                yield from [b"{}"] * (end - position)
            position = end
    if position < len(wanted):
        raise BucketingError(f"{display(file.rel)} has fewer rows than when it was loaded; load it again")


def _opened(file: InputFile) -> pq.ParquetFile:
    """The file opened again after it was loaded: a failure now is an error, said in one line."""
    return _readable(file, open_parquet, file)


def _readable(file: InputFile, read: Any, *args: Any) -> Any:
    """``read(*args)``, an :class:`Unreadable` said as a one-line error about ``file``."""
    try:
        return read(*args)
    except Unreadable as why:
        raise BucketingError(f"{display(file.rel)} can't be read any more ({why}); load the input again") from None
