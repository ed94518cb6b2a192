"""A few fields of each rollout's first line, read back by offset after the load: the group values of the
difficulty table, the join key of a training set when the load's scan couldn't read it (see
:mod:`bucketing.joinkey`).

The load keeps no field but the scores (a hash of the group fields, and of the join field when asked); what else
is needed is read in one streaming pass over the files, decoding only the rollouts' first lines and only the
fields asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np

from .dataset import Dataset
from .errors import BucketingError
from .joinkey import field_values
from .layout import field_reader
from .parquet_read import is_parquet, rows_at
from .scorepath import group_path
from .sources import display, read_blocks


def rollout_fields(dataset: Dataset, fields: tuple[str, ...]) -> Iterator[tuple[int, list[Any]]]:
    """``(rollout, [raw JSON of each field, or MISSING])`` for every rollout, in rollout order (input order).

    The raw values point into a buffer that the next block reuses: use them before asking for the next rollout.
    """
    read = field_reader(fields)
    rows = dataset.rollout_columns
    file_ids, offsets, lengths = rows["file_id"], rows["offset"], rows["length"]
    longest = int(lengths.max()) + 8 if len(lengths) else 1
    tops = {str(group_path(field)[0]) for field in fields}
    for file_id in np.unique(file_ids).tolist():
        first, stop = np.searchsorted(file_ids, [file_id, file_id + 1]).tolist()  # rows are in input order
        file = dataset.files[file_id]
        starts, sizes = offsets[first:stop].tolist(), lengths[first:stop].tolist()  # Python ints: fast to index
        if is_parquet(file):  # its "offsets" are row numbers
            for at, line in enumerate(rows_at(file, starts, tops)):
                yield first + at, _read(read, fields, memoryview(line), dataset, first + at)
            continue
        at, count = 0, stop - first
        for block in read_blocks(file, max_line_bytes=longest):
            end, base = block.offset + block.hi, block.offset
            with memoryview(block.buf) as view:
                while at < count and starts[at] < end:
                    start = starts[at] - base
                    yield first + at, _read(read, fields, view[start : start + sizes[at]], dataset, first + at)
                    at += 1
            if at == count:
                break
        if at < count:
            raise BucketingError(f"{display(file.rel)} got shorter since it was read; load it again")


def _read(read, fields: tuple[str, ...], line: memoryview, dataset: Dataset, rollout: int) -> list[Any]:
    try:
        return read(line)
    except msgspec.ValidationError:  # an object on the way is something else (a string): that field is missing
        return field_values(msgspec.json.decode(line), fields)
    except (msgspec.DecodeError, RecursionError):  # the load read this line: it changed since
        where = dataset.where(
            int(dataset.rollout_columns["file_id"][rollout]), int(dataset.rollout_columns["line"][rollout])
        )
        raise BucketingError(
            f"{where}: the line can't be read again (changed since it was loaded?); load it again"
        ) from None
