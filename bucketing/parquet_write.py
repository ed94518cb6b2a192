"""Parquet outputs for parquet inputs: each output's rows, value for value, with the inputs' schema.

Rows of parquet inputs go to ``.parquet`` files (``{prefix}{name}.parquet``, ``_skipped.parquet``, the same
stages and train/val parts as the JSONL files); lines of JSONL inputs go to the ``.jsonl`` files as always.
Mixed input gets both kinds of file for every bucket. Every parquet input must have the same schema (the
outputs have it). Rows are gathered a window at a time, reading only the row groups the window needs (the
last one read is kept, so rows in input order read each row group once per output): memory stays bounded
by a window and a row group. The files are temp files of the export's writer, renamed with the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING

import numpy as np

from .dataset import Dataset
from .errors import BucketingError
from .outputs import Output, outputs
from .parquet_read import Unreadable, is_parquet, open_parquet, read_row_group, row_starts
from .plan import Plan
from .sources import display

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

WINDOW_ROWS = 4096  # rows gathered, reordered and written at a time (one row group of the output each)
OPEN_FILES = 16  # parquet inputs kept open at once while writing (a TRL run may have thousands of files)


def parquet_files(dataset: Dataset) -> np.ndarray:
    """Per input file: whether it is parquet."""
    return np.array([is_parquet(file) for file in dataset.files], dtype=bool)


def outputs_by_kind(dataset: Dataset, plan: Plan, prefix: str, cumulative: bool, split: bool) -> list[Output]:
    """Every file an export writes but the manifest: the ``.jsonl`` files when a JSONL input has a good line, then
    the same names in ``.parquet`` when a parquet input has a good row; each kind with its own skipped file when
    it has bad lines (only that file, when it has no good one)."""
    in_parquet = parquet_files(dataset)
    good = in_parquet[dataset.line_columns["file_id"]]
    bad = in_parquet[dataset.skipped_column("file_id")] if dataset.skipped_lines else np.zeros(0, dtype=bool)
    files: list[Output] = []
    for kind, good_ones, bad_ones in (("jsonl", ~good, ~bad), ("parquet", good, bad)):
        of_kind = outputs(plan, prefix, bool(bad_ones.any()), cumulative, split)
        if not good_ones.any():
            of_kind = [o for o in of_kind if not o.buckets]  # the skipped file, if any
        files += [dataclasses.replace(o, name=o.name.removesuffix(".jsonl") + "." + kind, kind=kind) for o in of_kind]
    return files


def input_schema(dataset: Dataset) -> pa.Schema:
    """The schema of the parquet inputs: all must have the same (metadata aside), or a one-line error names
    two files and the first difference."""
    first: tuple[str, pa.Schema] | None = None
    for file in dataset.files:
        if not is_parquet(file) or any(bad["file"] == display(file.rel) for bad in dataset.skipped_files):
            continue
        try:
            with open_parquet(file) as parquet:
                schema = parquet.schema_arrow
        except Unreadable as why:
            raise BucketingError(f"{display(file.rel)} can't be read any more ({why}); load the input again") from None
        if first is None:
            first = (display(file.rel), schema)
        elif not schema.equals(first[1], check_metadata=False):
            raise BucketingError(
                f"{first[0]} and {display(file.rel)} have different schemas ({schema_difference(first[1], schema)}); "
                "parquet outputs need one schema: convert them, or leave one out with --exclude"
            )
    if first is None:
        raise BucketingError("no parquet input left to take a schema from; load the input again")
    return first[1]


def schema_difference(one: pa.Schema, other: pa.Schema) -> str:
    """The first difference between two schemas, in words: a column only in one, or of another type."""
    for field in one:
        if field.name not in other.names:
            return f"column {field.name} only in the first"
        if not other.field(field.name).equals(field):
            return f"column {field.name} is {field.type} in the first, {other.field(field.name).type} in the second"
    for field in other:
        if field.name not in one.names:
            return f"column {field.name} only in the second"
    return "the same columns in another order"


# final name -> a new temp file the export renames into place (flushed, and synced if asked, when closed)
NewFile = Callable[[str], AbstractContextManager[IO[bytes]]]


def write_parquet_files(dataset: Dataset, schema: pa.Schema, jobs: list[tuple[str, dict]], new_file: NewFile) -> None:
    """Write each ``(name, piece)`` (arrays ``file_id`` and ``offset`` = row numbers, in output order)."""
    rows = _RowSource(dataset)
    try:
        for name, piece in jobs:
            with new_file(name) as sink:
                write_rows(sink, schema, rows, piece["file_id"], piece["offset"])
    finally:
        rows.close()


def write_rows(sink, schema: pa.Schema, rows: _RowSource, file_ids: np.ndarray, numbers: np.ndarray) -> None:
    """The rows ``(file_ids[i], numbers[i])`` in this order, a window at a time, as one parquet file."""
    import pyarrow.parquet as pq

    with pq.ParquetWriter(sink, schema) as writer:
        for start in range(0, len(file_ids), WINDOW_ROWS):
            writer.write_table(rows.gather(file_ids[start : start + WINDOW_ROWS], numbers[start : start + WINDOW_ROWS]))
        if not len(file_ids):
            writer.write_table(schema.empty_table())


class _RowSource:
    """Rows of the parquet inputs by (file, row number); a few files open, the last row group read kept."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.open: dict[int, tuple[pq.ParquetFile, list[int]]] = {}  # file_id -> file, row group starts
        self.last: tuple[int, int, pa.Table] | None = None  # file_id, row group, its rows

    def gather(self, file_ids: np.ndarray, numbers: np.ndarray) -> pa.Table:
        """The rows in the order given."""
        import pyarrow as pa

        parts, places = [], []
        for file_id in np.unique(file_ids).tolist():
            in_file = np.flatnonzero(file_ids == file_id)
            _, starts = self._file(file_id)
            groups = np.searchsorted(starts, numbers[in_file], side="right") - 1
            for group in np.unique(groups).tolist():
                members = in_file[groups == group]
                table = self._row_group(file_id, group)
                parts.append(table.take(numbers[members] - starts[group]))
                places.append(members)
        gathered = pa.concat_tables([part.replace_schema_metadata(None) for part in parts])
        order = np.empty(len(file_ids), dtype=np.int64)
        order[np.concatenate(places)] = np.arange(len(file_ids))
        return gathered.take(order)

    def _file(self, file_id: int) -> tuple[pq.ParquetFile, list[int]]:
        if file_id not in self.open:
            if len(self.open) >= OPEN_FILES:
                oldest = next(iter(self.open))
                self.open.pop(oldest)[0].close()
            file = self.dataset.files[file_id]
            try:
                parquet = open_parquet(file)
            except Unreadable as why:
                raise BucketingError(f"{display(file.rel)} can't be read any more ({why}); load it again") from None
            self.open[file_id] = (parquet, row_starts(parquet))
        return self.open[file_id]

    def _row_group(self, file_id: int, group: int) -> pa.Table:
        if self.last is None or self.last[:2] != (file_id, group):
            parquet, _ = self._file(file_id)
            try:
                table = read_row_group(parquet, group)
            except Unreadable as why:
                rel = display(self.dataset.files[file_id].rel)
                raise BucketingError(f"{rel} can't be read any more ({why}); load it again") from None
            self.last = (file_id, group, table)
        return self.last[2]

    def close(self) -> None:
        for parquet, _ in self.open.values():
            parquet.close()
        self.open.clear()
        self.last = None


def describe_parquet(manifest: dict, files: list[Output]) -> None:
    """Say in the manifest which files hold parquet rows: each file's ``format``; a bucket's ``file`` is its
    ``.parquet`` file when no ``.jsonl`` one was written, its ``parquet_file`` beside the ``.jsonl`` one when both were;
    ``skipped_file`` the first file of skipped lines or rows. A parquet file's ``lines`` are its rows."""
    kinds = {f.name: f.kind for f in files}
    for entry in manifest["files"]:
        entry["format"] = kinds[entry["file"]]
    if not any(f.kind == "parquet" for f in files):
        return
    jsonl = {f.name for f in files if f.kind == "jsonl"}
    for bucket in manifest["buckets"]:
        name = bucket["file"].removesuffix(".jsonl") + ".parquet"
        bucket["file" if bucket["file"] not in jsonl else "parquet_file"] = name
    skipped = [f.name for f in files if not f.buckets]
    manifest["skipped_file"] = skipped[0] if skipped else None
    if manifest.get("split") and manifest["split"]["by"].startswith("line bytes"):
        manifest["split"]["by"] += "; a parquet row: its whole row as JSON (BLAKE2b)"
