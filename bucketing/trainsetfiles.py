"""The training-set files of an export: each bucket's (stage's, part's) source rows under ``train_set/``.

A JSONL source's rows are its lines' bytes, copied as the bucket files' are (:mod:`bucketing.bytecopy`); a
parquet source's are its rows, value for value, with its schema, one row group read at a time.  With
``--annotate`` every matched row also gets its difficulty (:mod:`bucketing.annotate`): a struct column for
parquet, and for JSONL the one place lines are re-serialised (only the lines that get the field).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO, Any, Protocol

import numpy as np

from .annotate import (
    annotate_line,
    annotated_schema,
    annotation_array,
    annotation_columns,
    annotation_dict,
    arrow_mask,
    with_field,
)
from .dataset import Dataset
from .errors import BucketingError
from .join import Join
from .outputs import Output, selects, train_set_outputs
from .plan import Plan
from .scorepath import parse_field
from .sources import display, open_input, read_ranges
from .trainset import open_parquet, read_group


class Sink(Protocol):
    """Where an export's files go (the writer): temp files renamed into place with the others."""

    def write_files(
        self, jobs: list[tuple[str, dict]], open_source: Callable[[int], AbstractContextManager[int]] | None = None
    ) -> None: ...

    def new_file(self, name: str) -> AbstractContextManager[IO[bytes]]: ...


def names(join: Join, plan: Plan, prefix: str, cumulative: bool, split: bool) -> list[str]:
    """The training-set files an export with these options writes."""
    return [o.name for o in train_set_outputs(plan, prefix, join.source.format, cumulative, split)]


@dataclass
class TrainSetFiles:
    """What goes in each training-set file: the rows of each output, in source order."""

    join: Join
    files: list[Output]
    members: list[np.ndarray]  # per file: a bool per source row
    annotate: tuple[str, ...] | None  # the --annotate field's steps
    notes: dict  # per source row (annotate): the annotation columns

    def record(self, plan: Plan) -> dict:
        """``manifest["train_set"]``."""
        counts = self.join.counts()
        return {
            "source": display(self.join.source.path),
            "format": self.join.source.format,
            "join_on": {"rollout": self.join.rollout_field, "source": self.join.source_field},
            "source_files": [display(f.rel) for f in self.join.source.files],
            "skipped_files": self.join.source.skipped_files,
            "source_rows": counts["source_rows"],
            "matched_rollouts": counts["matched_rollouts"],
            "unmatched_rollouts": counts["unmatched_rollouts"],
            "unscored_rows": counts["unscored_rows"],
            "duplicate_keys": counts["duplicate_keys"],
            "annotate": ".".join(self.annotate) if self.annotate else None,
            "files": [
                {
                    "file": f.name,
                    "buckets": [plan.names[b] for b in f.buckets],
                    "part": f.part,
                    "cumulative": f.cumulative,
                    "rows": int(member.sum()),
                }
                for f, member in zip(self.files, self.members)
            ],
        }

    def write(self, sink: Sink) -> None:
        if self.join.source.format == "parquet":
            self._write_parquet(sink)
        elif self.annotate:
            self._write_annotated_lines(sink)
        else:
            self._copy_lines(sink)

    def _copy_lines(self, sink: Sink) -> None:
        rows = self.join.rows
        columns = {"file_id": rows.file_id, "offset": rows.offset, "length": rows.length, "clean": rows.clean}
        jobs = [
            (f.name, {key: column[member] for key, column in columns.items()})
            for f, member in zip(self.files, self.members)
        ]
        sink.write_files(jobs, self._open_line_source)

    @contextmanager
    def _open_line_source(self, file_id: int) -> Iterator[int]:
        fd = open_input(self.join.source.files[file_id])
        try:
            yield fd
        finally:
            os.close(fd)

    def _outputs_of_rows(self) -> Iterator[tuple[int, int, int]]:
        """Per source file: ``(file_id, first row, last row + 1)``."""
        file_ids = self.join.rows.file_id
        for file_id in range(len(self.join.source.files)):
            first, stop = np.searchsorted(file_ids, [file_id, file_id + 1]).tolist()
            yield file_id, first, stop

    def _write_annotated_lines(self, sink: Sink) -> None:
        rows, steps = self.join.rows, self.annotate
        assert steps is not None
        members = np.stack(self.members, axis=1) if self.members else np.zeros((len(rows.row), 0), bool)
        with ExitStack() as stack:
            targets = [stack.enter_context(sink.new_file(f.name)) for f in self.files]
            for file_id, first, stop in self._outputs_of_rows():
                file = self.join.source.files[file_id]
                longest = int(rows.length[first:stop].max()) + 1 if stop > first else 1
                lines = read_ranges(file, rows.offset[first:stop], rows.length[first:stop], piece=longest)
                for i, line in lines:
                    row = first + i
                    note = annotation_dict(self.notes, row)
                    where = rows.where(self.join.source, row)
                    data = line if note is None else annotate_line(line, steps, note, where)
                    for output in np.flatnonzero(members[row]).tolist():
                        targets[output].write(data)
                        targets[output].write(b"\n")

    def _write_parquet(self, sink: Sink) -> None:
        import pyarrow.parquet as pq

        schema = self.join.source.schema
        assert schema is not None
        if self.annotate:
            schema = annotated_schema(schema, self.annotate, display(self.join.source.path))
        notes = annotation_array(self.notes) if self.annotate else None
        with ExitStack() as stack:
            writers = [
                stack.enter_context(pq.ParquetWriter(stack.enter_context(sink.new_file(f.name)), schema))
                for f in self.files
            ]
            for file_id, first, stop in self._outputs_of_rows():
                file = self.join.source.files[file_id]
                with open_parquet(file) as parquet:
                    unchanged = parquet.schema_arrow.equals(self.join.source.schema)  # metadata aside
                    if parquet.metadata.num_rows != stop - first or not unchanged:  # rows can't follow their keys
                        raise BucketingError(f"--train-set: {display(file.rel)} changed since it was read; run again")
                    for group in range(parquet.num_row_groups):
                        table = read_group(file, parquet, group)
                        if not table.schema.equals(self.join.source.schema):  # e.g. other schema metadata
                            table = table.cast(self.join.source.schema)
                        chosen = slice(first, first + table.num_rows)
                        first += table.num_rows
                        if notes is not None and self.annotate:
                            table = with_field(table, self.annotate, notes[chosen], display(self.join.source.path))
                        for writer, member in zip(writers, self.members):
                            if member[chosen].any():
                                writer.write_table(table.filter(arrow_mask(member[chosen])))


def prepare(
    join: Join,
    dataset: Dataset,
    plan: Plan,
    ids: np.ndarray,
    values: np.ndarray,
    held_out: np.ndarray | None,
    prefix: str,
    cumulative: bool,
    annotate: str | None,
) -> TrainSetFiles:
    """Where every source row goes (refusing keys whose rollouts disagree, see :mod:`bucketing.join`)."""
    buckets, side = join.destinations(dataset, plan, ids, held_out)
    files = train_set_outputs(plan, prefix, join.source.format, cumulative, held_out is not None)
    members = [selects(f, buckets, side) for f in files]
    steps = parse_field(annotate) if annotate else None
    notes: dict[str, Any] = annotation_columns(dataset, plan, ids, values, join.row_rollout) if steps else {}
    return TrainSetFiles(join, files, members, steps, notes)
