"""The training-set source (``--train-set``): the prompt dataset the rollouts were sampled from, parquet or JSONL.

Its files are found as the rollouts' are (recursively, natural order, links out of the allowed folders
refused); each row's join key is read streaming — JSONL in blocks of lines, parquet one row group at a
time, only the join column (an integer column's keys made at once) — and kept as a 16-byte join key of its
canonical value (:mod:`bucketing.joinkey`), never as the value itself.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from .errors import BucketingError
from .joinkey import KINDS, int_keys, kind_code, raw_join_key, value_join_key
from .layout import KEY_BYTES, field_reader
from .scorepath import BadScores, parse_field
from .sources import BOM, InputFile, display, find_inputs, open_input, read_blocks

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

FORMATS = {".parquet": "parquet", ".jsonl": "jsonl"}
BROKEN_PARQUET = "broken parquet file"


@dataclass
class Source:
    """A training-set source: its files (all of one format) and, for parquet, their common schema."""

    path: str  # as given
    format: str  # "parquet" or "jsonl"
    files: list[InputFile]
    warnings: list[str] = field(default_factory=list)
    skipped_files: list[dict] = field(default_factory=list)  # parquet files that can't be read: file, reason, detail
    schema: pa.Schema | None = None


@dataclass
class SourceRows:
    """Every row of a source, in source order: where it is, and its join key."""

    file_id: np.ndarray  # int64, index into Source.files
    row: np.ndarray  # int64: the line number (JSONL, 1-based) or the row number in its file (parquet, 0-based)
    offset: np.ndarray  # JSONL: the line's byte range (without "\n"), and whether exactly "\n" follows it
    length: np.ndarray
    clean: np.ndarray
    keys: np.ndarray  # (rows, 2) uint64: the join key of each row
    kinds: set[str]  # the JSON types of the keys seen ("number", "string", ...): to explain a join that matches nothing

    def where(self, source: Source, row: int) -> str:
        """``file:line`` (JSONL) or ``file row N`` (parquet, 0-based) of row ``row``."""
        name = display(source.files[int(self.file_id[row])].rel)
        return f"{name}:{self.row[row]}" if source.format == "jsonl" else f"{name} row {self.row[row]}"


def find_source(path: str | os.PathLike, roots: list[Path] | None = None) -> Source:
    """The source's files: one parquet or JSONL file, or every ``*.parquet`` / ``*.jsonl`` under a folder (one kind).

    A parquet file whose footer can't be read is skipped and named (an error when none is left).
    """
    name = display(path)
    if Path(path).is_file() and Path(path).suffix not in FORMATS:
        raise BucketingError(f"--train-set {name} is neither a parquet nor a JSONL file (*.parquet, *.jsonl)")
    found, warnings = find_inputs(path, roots, tuple(FORMATS))
    kinds = {FORMATS[Path(file.rel).suffix] for file in found}
    if not kinds:
        raise BucketingError(f"--train-set {name} holds no *.parquet or *.jsonl file")
    if len(kinds) > 1:
        raise BucketingError(f"--train-set {name} holds both parquet and JSONL files; point it at one kind")
    source = Source(str(path), kinds.pop(), found, warnings)
    if source.format == "parquet":
        _check_parquet(source)
    return source


def _check_parquet(source: Source) -> None:
    """Skip files whose footer can't be read (naming them); refuse files whose schemas differ."""
    readable: list[InputFile] = []
    for file in source.files:
        try:
            with open_parquet(file) as parquet:
                schema = parquet.schema_arrow
        except BucketingError as error:
            source.skipped_files.append({"file": display(file.rel), "reason": BROKEN_PARQUET, "detail": str(error)})
            source.warnings.append(f"skipped {error}")
            continue
        twice = sorted({name for name in schema.names if schema.names.count(name) > 1})
        if twice:  # which one holds the key, which one would the rows keep? refused, not guessed
            raise BucketingError(
                f"--train-set: {display(file.rel)} has two columns named {twice[0]}; rename one of them"
            )
        if source.schema is None:
            source.schema = schema
        elif not schema.equals(source.schema):
            raise BucketingError(
                f"--train-set: {display(file.rel)} has another schema than {display(readable[0].rel)}; "
                "a training set's parquet files must share one schema"
            )
        readable.append(file)
    if not readable:
        raise BucketingError(f"--train-set {display(source.path)}: {source.warnings[0].removeprefix('skipped ')}")
    source.files = readable


def open_parquet(file: InputFile) -> pq.ParquetFile:
    """The parquet file, its footer read (the very file that was found); BucketingError naming it if it is broken."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(_native_file(open_input(file)))
    except (pa.ArrowException, OSError, ValueError) as error:
        raise BucketingError(f"{display(file.rel)}: {BROKEN_PARQUET} ({_first_line(error)})") from None


def _native_file(fd: int) -> Any:
    """The open file as Arrow's own file (its reads land in Arrow's memory pool, not in fresh Python bytes: a
    million-row row group read with a fifth of the page faults), reopened through Linux's /proc (the very file
    ``fd`` is); a Python file object where there is no /proc. Either way the ParquetFile owns and closes it."""
    import pyarrow as pa

    try:
        native = pa.OSFile(f"/proc/self/fd/{fd}")
    except OSError:
        return open(fd, "rb")  # noqa: SIM115
    os.close(fd)
    return native


def read_group(file: InputFile, parquet: pq.ParquetFile, group: int, columns: list[str] | None = None) -> pa.Table:
    """Row group ``group`` of a source file (only ``columns``, when given); a damaged one is a one-line error
    naming the file and the row group, not pyarrow's own (several lines, no file name)."""
    import pyarrow as pa

    try:
        return parquet.read_row_group(group, columns=columns)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise BucketingError(
            f"--train-set: {display(file.rel)}: row group {group} can't be read ({_first_line(error)}); "
            "repair or replace the file"
        ) from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def read_rows(source: Source, source_field: str) -> SourceRows:
    """Every row's place and join key (the value at ``source_field``, a dotted path)."""
    steps = parse_field(source_field)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ("file_id", "row", "offset", "length", "clean")}
    keys: list[np.ndarray] = []
    kinds: set[str] = set()
    read = _jsonl_rows if source.format == "jsonl" else _parquet_rows
    for file_id, file in enumerate(source.files):
        for batch in read(file, steps, source_field):
            parts["file_id"].append(np.full(len(batch.row), file_id, dtype=np.int64))
            for name in ("row", "offset", "length", "clean"):
                parts[name].append(np.asarray(getattr(batch, name), dtype=np.int64))
            keys.append(batch.keys)
            kinds |= batch.kinds
    columns = {name: _joined(arrays, (0,), np.int64) for name, arrays in parts.items()}
    return SourceRows(**columns, keys=_joined(keys, (0, KEY_BYTES // 8), np.dtype("<u8")), kinds=kinds)


def _joined(arrays: list[np.ndarray], empty: tuple[int, ...], dtype) -> np.ndarray:
    """The arrays end to end (one alone as it is: a million rows' copy is 8 MB of fresh memory per column)."""
    if len(arrays) == 1:
        return arrays[0]
    return np.concatenate(arrays) if arrays else np.zeros(empty, dtype)


@dataclass
class _Batch:
    """Some rows of one file, in order (a block of lines, a row group)."""

    row: Any
    offset: Any
    length: Any
    clean: Any
    keys: np.ndarray  # (rows, 2) uint64
    kinds: set[str]


def _jsonl_rows(file: InputFile, steps: tuple[str, ...], name: str) -> Iterator[_Batch]:
    """Each block's lines that are not blank: line numbers, byte ranges, keys; a line that is not JSON, or lacks
    the field, stops the run."""
    read = field_reader((name,))
    number = 0
    for block in read_blocks(file):
        if block.long_line:
            raise BucketingError(f"{display(file.rel)}:{number + 1}: line too long for a training-set row")
        batch = _Batch(array("q"), array("q"), array("q"), array("q"), np.zeros((0, 2), "<u8"), set())
        keys = bytearray()
        buf, pos = block.buf, block.lo
        while pos < block.hi:
            newline = buf.find(b"\n", pos, block.hi)
            end = newline if newline >= 0 else block.hi
            start, stop, pos = pos, end, end + 1
            number += 1
            if stop > start and buf[stop - 1] == 13:
                stop -= 1
            if block.offset + start == 0 and buf[start : start + 3] == BOM:
                start += 3
            line = buf[start:stop]
            if not line.strip():
                continue
            key, kind = _read_key(read, line, f"{display(file.rel)}:{number}", name)
            keys += key
            batch.kinds.add(kind)
            batch.row.append(number)
            batch.offset.append(block.offset + start)
            batch.length.append(stop - start)
            batch.clean.append(newline >= 0 and stop == end)
        batch.keys = np.frombuffer(bytes(keys), dtype="<u8").reshape(-1, KEY_BYTES // 8)
        yield batch


def _read_key(read: Callable[[Any], list[Any]], line: bytearray, where: str, name: str) -> tuple[bytes, str]:
    """The join key of a source line and its value's JSON type; a line that is not a JSON object, or lacks
    the field, stops the run."""
    try:
        (raw,) = read(line)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        raise BucketingError(
            f"{where}: not a JSON object with a readable {name}; a training-set source must be JSONL "
            "(one JSON object per line)"
        ) from None
    if raw is not msgspec.UNSET and bytes(raw) == b"null":
        raise BucketingError(f"--join-on: {where}: the join field {name} is null")
    if raw is msgspec.UNSET:
        raise BucketingError(
            f"--join-on: {where} has no field {name} (fields: {_fields_seen(line)}); "
            "name the source's field with --join-on ROLLOUT_FIELD=SOURCE_FIELD"
        )
    try:
        return raw_join_key(raw, name), KINDS[kind_code(memoryview(raw)[0])]
    except BadScores as bad:  # nested too deeply to compare
        raise BucketingError(f"--join-on: {where}: {bad.detail}") from None


def _fields_seen(line: bytes | bytearray) -> str:
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return "not JSON"
    return ", ".join(map(str, value)) if isinstance(value, dict) else "not an object"


def _parquet_rows(file: InputFile, steps: tuple[str, ...], name: str) -> Iterator[_Batch]:
    """Each row group's row numbers and keys, reading only the join column."""
    parquet = open_parquet(file)
    if steps[0] not in parquet.schema_arrow.names:
        raise BucketingError(
            f"--join-on: {display(file.rel)} has no column {steps[0]} "
            f"(columns: {', '.join(parquet.schema_arrow.names)}); "
            "name the source's field with --join-on ROLLOUT_FIELD=SOURCE_FIELD"
        )
    first = 0
    with parquet:
        for group in range(parquet.num_row_groups):
            column = read_group(file, parquet, group, [steps[0]]).column(0).combine_chunks()
            column = _descend(column, steps, file)
            if column.null_count:
                row = first + column.is_null().to_numpy(zero_copy_only=False).argmax()
                raise BucketingError(f"--join-on: {display(file.rel)} row {row}: the join field {name} is null")
            count = len(column)
            rows = np.arange(first, first + count)
            zeros = np.zeros(count, dtype=np.int64)
            keys = _column_keys(column, name)
            yield _Batch(rows, zeros, zeros, zeros, keys, {arrow_kind(column.type)})
            first += count


def _column_keys(column: pa.Array, name: str) -> np.ndarray:
    """The join keys of a column without nulls: an integer column's at once (the usual index), others per value."""
    import pyarrow as pa

    if pa.types.is_integer(column.type):
        values = integer_values(column)
        if not (values.dtype == np.uint64 and len(values) and values.max() >= 1 << 63):  # beyond int64: per value
            return int_keys(values)
    keys = b"".join([value_join_key(value, name) for value in column.to_pylist()])
    return np.frombuffer(keys, dtype="<u8").reshape(-1, KEY_BYTES // 8)


def integer_values(column: pa.Array) -> np.ndarray:
    """An integer column without nulls as numpy, a view of its buffer (``Array.to_numpy`` would import pandas:
    0.25 s)."""
    import pyarrow as pa

    kind = column.type
    dtype = np.dtype(f"<{'i' if pa.types.is_signed_integer(kind) else 'u'}{kind.bit_width // 8}")
    return np.frombuffer(column.buffers()[1], dtype=dtype, count=column.offset + len(column))[column.offset :]


def _descend(column: pa.Array, steps: tuple[str, ...], file: InputFile) -> pa.Array:
    """The struct field at ``steps[1:]`` of a top-level column; rows where a struct on the way is null stay null."""
    import pyarrow as pa

    for depth, step in enumerate(steps[1:], 1):
        if not pa.types.is_struct(column.type) or column.type.get_field_index(step) < 0:
            inside = ", ".join(f.name for f in column.type) if pa.types.is_struct(column.type) else str(column.type)
            raise BucketingError(
                f"--join-on: {display(file.rel)}: {'.'.join(steps[:depth])} has no field {step} ({inside})"
            )
        column = column.field(step) if column.null_count == 0 else _masked_field(column, step)
    return column


def _masked_field(column: pa.StructArray, step: str) -> pa.Array:
    import pyarrow.compute as pc

    return pc.struct_field(column, step)  # honours the struct's own nulls


def arrow_kind(kind: pa.DataType) -> str:
    """The JSON type an arrow type's values take."""
    import pyarrow as pa

    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return "list"
    if pa.types.is_struct(kind) or pa.types.is_map(kind):
        return "object"
    return "number"
