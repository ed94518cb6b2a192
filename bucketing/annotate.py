"""Difficulty as data: ``{prefix}difficulty.parquet`` (one row per rollout: where it is, its group values, n,
every metric, its bucket and rank) and the field ``--annotate`` adds to training-set rows.

pyarrow is imported here only, when an export writes (the command line's load never needs it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from .dataset import Dataset, file_labels
from .errors import BucketingError
from .joinkey import MISSING
from .metrics import compute_all
from .plan import Plan
from .rolloutfields import rollout_fields

if TYPE_CHECKING:
    import pyarrow as pa

PASS_RATE = "success_rate"  # what the annotation calls pass_rate: the share of responses at or above the threshold


def difficulty_table(dataset: Dataset, plan: Plan, ids: np.ndarray) -> pa.Table:
    """One row per rollout, in input order: file, line, the group fields' values (grouped data), n, lines,
    every metric (as :meth:`Dataset.table` gives them), bucket, difficulty_rank."""
    import pyarrow as pa

    rows = dataset.rollout_columns
    columns: dict[str, pa.Array] = {
        "file": _categories(rows["file_id"], file_labels(dataset.files)),
        "line": _numbers(rows["line"]),
    }
    fields = dataset.layout.fields
    if fields:
        values: list[list[Any]] = [[] for _ in fields]
        for _, raws in rollout_fields(dataset, fields):
            for column, raw in zip(values, raws):
                column.append(None if raw is MISSING else _decoded(raw))
        for field, column in zip(fields, values):
            columns[field if field not in columns else f"group {field}"] = _arrow_values(column)
    columns["n"] = _numbers(dataset.scores.counts)
    columns["lines"] = _numbers(dataset.lines_per_rollout())
    columns.update({name: _numbers(metric) for name, metric in compute_all(dataset.scores, plan.params).items()})
    columns["bucket"] = _categories(ids, plan.names)
    columns["difficulty_rank"] = _numbers(ids.astype(np.int64))
    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def _decoded(raw: Any) -> Any:
    """A group field's value; a number beyond a double's range (1e400, which msgspec refuses) as its JSON text."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.ValidationError:
        return bytes(raw).decode("utf-8", "replace")


# Arrays made from their buffers: pa.array() imports pandas (a quarter of a second) to look for its types, and
# the command line never needs pandas.


def _numbers(values: np.ndarray) -> pa.Array:
    """An int64 or float64 column, from a numpy array's buffer."""
    import pyarrow as pa

    values = np.ascontiguousarray(values, dtype=np.float64 if values.dtype.kind == "f" else np.int64)
    kind = pa.float64() if values.dtype.kind == "f" else pa.int64()
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def arrow_mask(values: np.ndarray) -> pa.Array:
    """A boolean column (what ``Table.filter`` takes), from a numpy array packed to bits."""
    import pyarrow as pa

    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def _categories(codes: np.ndarray, names: list[str]) -> pa.Array:
    """A dictionary column: ``names[codes[i]]`` per row."""
    import pyarrow as pa

    data = [name.encode("utf-8", "surrogatepass") for name in names]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(item) for item in data])
    dictionary = pa.Array.from_buffers(
        pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    )
    indices = np.ascontiguousarray(codes, dtype=np.int32)
    kind = pa.dictionary(pa.int32(), pa.string())
    return pa.DictionaryArray.from_buffers(kind, len(indices), [None, pa.py_buffer(indices)], dictionary)


def write_table(table: pa.Table, file) -> None:
    """Write ``table`` as parquet into an open binary file."""
    import pyarrow.parquet as pq

    pq.write_table(table, file)


def _arrow_values(values: list[Any]) -> pa.Array:
    """Group values as arrow infers them; values of mixed types as their JSON text."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowException, OverflowError):
        return pa.array([None if v is None else msgspec.json.encode(v).decode() for v in values], pa.string())


def annotation_type() -> pa.DataType:
    import pyarrow as pa

    return pa.struct(
        [
            ("pass_rate", pa.float64()),
            ("mean_reward", pa.float64()),
            ("n", pa.int64()),
            ("bucket", pa.string()),
            ("metric", pa.string()),
            ("value", pa.float64()),
        ]
    )


def annotation_columns(dataset: Dataset, plan: Plan, ids: np.ndarray, values: np.ndarray, rollouts: np.ndarray) -> dict:
    """The annotation of each of ``rollouts`` (-1: none) as columns: pass_rate, mean_reward, n, bucket, metric
    (the plan's), value (its value), and ``valid``."""
    metrics = compute_all(dataset.scores, plan.params)
    valid = rollouts >= 0
    at = np.where(valid, rollouts, 0)
    names = np.array(plan.names, dtype=object)
    return {
        "pass_rate": metrics[PASS_RATE][at],
        "mean_reward": metrics["mean_reward"][at],
        "n": dataset.scores.counts[at].astype(np.int64),
        "bucket": names[ids[at]],
        "metric": np.full(len(at), plan.metric, dtype=object),
        "value": values[at],
        "valid": valid,
    }


def annotation_array(columns: dict) -> pa.StructArray:
    """The annotations as a struct column (null where a row has none)."""
    import pyarrow as pa

    kind = annotation_type()
    arrays = [pa.array(columns[field.name], field.type) for field in kind]
    return pa.StructArray.from_arrays(arrays, fields=list(kind), mask=pa.array(~columns["valid"]))


def annotation_dict(columns: dict, row: int) -> dict | None:
    """One row's annotation as a dict (for a JSONL line), None when it has none."""
    if not columns["valid"][row]:
        return None
    return {
        name: (int(value) if name == "n" else value if isinstance(value, str) else float(value))
        for name, value in (
            (name, columns[name][row]) for name in ("pass_rate", "mean_reward", "n", "bucket", "metric", "value")
        )
    }


def with_field(table: pa.Table | pa.StructArray, steps: tuple[str, ...], values: pa.Array, where: str):
    """``table`` (or a struct column) with the field at ``steps`` set to ``values``: replaced if it is there,
    added last if not; structs on the way are kept (their nulls too), created when missing."""
    import pyarrow as pa

    names = [f.name for f in (table.schema if isinstance(table, pa.Table) else table.type)]
    if len(steps) > 1:
        if steps[0] in names:
            inner = _column(table, steps[0])
            if not pa.types.is_struct(inner.type):
                raise BucketingError(
                    f"--annotate: {where} {steps[0]} is {inner.type}, not a struct; choose a field outside it"
                )
            values = with_field(inner, steps[1:], values, where)
        else:
            values = with_field(_empty_struct(len(values)), steps[1:], values, where)
    return _set(table, names, steps[0], values)


def _column(table, name: str) -> pa.Array:
    import pyarrow as pa

    column = table.column(name) if isinstance(table, pa.Table) else table.field(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _empty_struct(length: int) -> pa.StructArray:
    import pyarrow as pa

    return pa.array([{}] * length, pa.struct([]))


def _set(table, names: list[str], name: str, values: pa.Array):
    import pyarrow as pa

    if isinstance(table, pa.Table):
        if name in names:
            index = names.index(name)
            return table.set_column(index, pa.field(name, values.type), values)
        return table.append_column(pa.field(name, values.type), values)
    children = [table.field(i) for i in range(table.type.num_fields)]
    fields = list(table.type)
    if name in names:
        index = names.index(name)
        children[index], fields[index] = values, pa.field(name, values.type)
    else:
        children.append(values)
        fields.append(pa.field(name, values.type))
    mask = table.is_null() if table.null_count else None
    return pa.StructArray.from_arrays(children, fields=fields, mask=mask)


def annotated_schema(schema: pa.Schema, steps: tuple[str, ...], where: str) -> pa.Schema:
    """The source's schema with the annotation field (what every training-set parquet file is written with)."""
    import pyarrow as pa

    empty = with_field(schema.empty_table(), steps, pa.array([], annotation_type()), where)
    return empty.schema.with_metadata(schema.metadata)


def annotate_line(line: bytes, steps: tuple[str, ...], value: dict, where: str) -> bytes:
    """A JSONL row with the field at ``steps`` set to ``value``: the one place a line is re-serialised."""
    try:
        row = msgspec.json.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:  # 1e400: valid JSON, no value to write back
        raise BucketingError(
            f"--annotate: {where}: the line can't be re-serialised ({error}); drop --annotate to copy it as it is"
        ) from None
    item = row
    for depth, step in enumerate(steps[:-1]):
        inner = item.setdefault(step, {})
        if not isinstance(inner, dict):
            raise BucketingError(
                f"--annotate: {where}: {'.'.join(steps[: depth + 1])} is not an object; choose a field outside it"
            )
        item = inner
    item[steps[-1]] = value
    return msgspec.json.encode(row)
