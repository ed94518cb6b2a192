"""The same bucketing on a Ray cluster (``--engine ray``), in two passes through Ray Data.

1. Scan: one task per chunk (a file, or a byte range of a large plain file) runs the local
   engine's :func:`parse.scan` where the file lies; only the line index and the scores come
   back to the driver, which joins them (:meth:`dataset.Reading.finish`) exactly as locally.
2. Write: the driver makes the plan as locally; then one task per slice of a file copies
   its lines' original bytes into part files, one per bucket it has lines for:
   ``{prefix}{name}/part-00000.jsonl`` ... (part numbers follow the input order).

A task writes each part under a temp name and renames it once it is complete, inside a
staging folder of this run: a task Ray retries rewrites the same part, never a second copy.
Only when every task has succeeded are the bucket folders moved to their final names, the
manifest last; a failed run removes the staging folder and leaves no part under a final name.

Ray is imported here and nowhere else: the local engine never needs it.
"""

from __future__ import annotations

import logging
import os
import pickle
import secrets
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs

from .annotate import difficulty_table, write_table
from .dataset import Dataset, Progress, prepare_load
from .errors import BucketingError
from .manifest import build_manifest, dumps
from .outputs import DIFFICULTY, MANIFEST, TEMP_PREFIX, Output, check_output_dir, describe_outputs, every_line, outputs
from .parquet_read import is_parquet
from .parse import scan
from .plan import Plan
from .sources import DEFAULT_MAX_LINE_BYTES, InputFile, display, is_uri, read_ranges

WRITE_SLICE = 256 << 20  # bytes of a plain file one write task copies
COPY_PIECE = 1 << 20


def connect(address: str | None = None) -> None:
    """Join the cluster at ``address`` ("auto", "ray://host:port"), or start a local Ray; quietly."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            runtime_env={"py_modules": [str(Path(__file__).resolve().parent)]},
        )  # workers get this package
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    # one operator per run: reserving CPUs for operators that don't exist would leave them idle
    context.op_resource_reservation_enabled = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # our own one-line messages say what failed


def load(
    input_path: str,
    *,
    scores: str | None = None,
    group_by=None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    strict: bool = False,
    address: str | None = None,
    progress: Progress | None = None,
    exclude: list[str] | tuple[str, ...] = (),
) -> Dataset:
    """:func:`bucketing.load`, with the chunks scanned by Ray tasks where the files lie.

    A local path must be one every node sees at the same place (a shared file system).
    """
    if not is_uri(input_path):
        input_path = os.path.abspath(input_path)  # the workers' current folders are not ours
    reading = prepare_load(
        input_path, scores=scores, group_by=group_by, max_line_bytes=max_line_bytes, strict=strict, exclude=exclude
    )
    parquet = [file for file in reading.files if is_parquet(file)]
    if parquet:
        raise BucketingError(
            f"--engine ray reads JSONL only, and {display(parquet[0].rel)} is parquet; "
            "use --engine local (the default) for parquet input"
        )
    connect(address)
    results = _run(scan, [pickle.dumps(chunk) for chunk in reading.chunks], [c.size for c in reading.chunks], progress)
    return reading.finish(results)


def _run(work, payloads: list[bytes], sizes: list[int], progress: Progress | None) -> list:
    """``work(payload)`` for every payload, as Ray Data map tasks; results in payload order.

    A task's own error (a bad file, a full disk) comes back as its result and is raised here,
    in one line, once every task has ended; Ray retries tasks whose worker died.
    """
    import ray.data

    items = [{"index": i, "payload": payload} for i, payload in enumerate(payloads)]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, len(items))).map(partial(_task, work), num_cpus=1)
    results: list = [None] * len(items)
    errors: list[str] = []
    done, total = 0, sum(sizes)
    if progress:
        progress(0, total)
    for row in dataset.iter_rows():
        index = int(row["index"])
        if row["error"]:
            errors.append(row["error"])
        else:
            results[index] = pickle.loads(row["result"])
        done += sizes[index]
        if progress:
            progress(done, total)
    if errors:
        raise BucketingError(errors[0])
    return results


def _task(work, row: dict) -> dict:
    try:
        return {"index": row["index"], "result": pickle.dumps(work(pickle.loads(row["payload"]))), "error": ""}
    except BucketingError as error:
        return {"index": row["index"], "result": b"", "error": str(error)}
    except OSError as error:  # on the worker's machine: say which file and why
        where = f" ({display(error.filename)})" if error.filename else ""
        return {"index": row["index"], "result": b"", "error": f"{error.strerror or error}{where}"}


# --- pass 2: the bucket files ---------------------------------------------------------------


@dataclass
class _WriteTask:
    """Copy these lines of one file (sorted by offset) into part ``number`` of their outputs."""

    number: int
    file: InputFile
    offset: np.ndarray
    length: np.ndarray
    dest: np.ndarray  # index into ``folders``
    folders: list[str]
    staging: str  # URI or local path of this run's staging folder


def export(
    dataset: Dataset,
    plan: Plan,
    out_dir: str,
    *,
    values: np.ndarray,
    prefix: str = "",
    order: str = "input",
    overwrite: bool = False,
    single_file: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Write the buckets as folders of part files (or single files), and the manifest; returns it."""
    if order != "input":
        raise BucketingError(
            "--engine ray writes lines in input order; drop --order difficulty (or use --engine local)"
        )
    if not is_uri(out_dir):
        check_output_dir(Path(out_dir), dataset.root)
    fs, base = _output(out_dir)
    ids = plan.assign(values)
    files = outputs(plan, prefix, bool(dataset.skipped_lines))
    names = [f.name.removesuffix(".jsonl") for f in files]  # one folder of parts each (or one file)
    # the outputs, and the table of one row per rollout the local engine writes too
    finals = [*([f.name for f in files] if single_file else names), prefix + DIFFICULTY]
    _check_targets(fs, base, finals + [prefix + MANIFEST], overwrite)
    manifest = build_manifest(dataset, plan, values, prefix, order, ids)
    staging = f"{base}/{TEMP_PREFIX}{secrets.token_hex(6)}"
    fs.create_dir(staging)
    try:
        for name in names:
            fs.create_dir(f"{staging}/{name}")
        tasks = _write_tasks(dataset, ids, len(plan.buckets), names, staging)
        connect()
        written = _run(_copy_lines, [pickle.dumps(t) for t in tasks], [int(t.length.sum()) for t in tasks], progress)
        parts: dict[str, list[str]] = {name: [] for name in names}
        for task_parts in written:
            for folder, part in task_parts:
                parts[folder].append(part)
        _remove_strays(fs, staging, parts)
        if single_file:
            for name in names:
                _concatenate(fs, [f"{staging}/{name}/{p}" for p in sorted(parts[name])], f"{staging}/{name}.jsonl")
                fs.delete_dir(f"{staging}/{name}")
        _describe(manifest, dataset, plan, files, parts, single_file)
        manifest["difficulty_table"], manifest["train_set"] = prefix + DIFFICULTY, None  # (--train-set: local only)
        with fs.open_output_stream(f"{staging}/{prefix}{DIFFICULTY}") as out:
            write_table(difficulty_table(dataset, plan, ids), out)
        with fs.open_output_stream(f"{staging}/{prefix}{MANIFEST}") as out:
            out.write(dumps(manifest).encode())
        _commit(fs, staging, base, finals + [prefix + MANIFEST])
    finally:
        if fs.get_file_info(staging).type != pafs.FileType.NotFound:
            fs.delete_dir(staging)
    return manifest


def _output(out_dir: str):
    """The output's pyarrow file system and base path (a local folder is created)."""
    if is_uri(out_dir):
        fs, base = pafs.FileSystem.from_uri(out_dir)
    else:
        fs, base = pafs.LocalFileSystem(), os.path.abspath(out_dir)
    fs.create_dir(base)
    return fs, base.rstrip("/")


def _check_targets(fs, base: str, names: list[str], overwrite: bool) -> None:
    for name in names:
        if fs.get_file_info(f"{base}/{name}").type != pafs.FileType.NotFound and not overwrite:
            raise BucketingError(f"{display(base + '/' + name)} already exists; pass --overwrite to replace it")


def _write_tasks(dataset: Dataset, ids: np.ndarray, buckets: int, names: list[str], staging: str) -> list[_WriteTask]:
    """One task per compressed file, and per WRITE_SLICE of a plain one; numbered in input order."""
    columns, dest = every_line(dataset, ids, buckets)
    order = np.lexsort((columns["offset"], columns["file_id"]))
    columns = {key: column[order] for key, column in columns.items()}
    dest = dest[order]
    slice_of = np.where([dataset.files[f].compression is None for f in range(len(dataset.files))], 1, 0)[
        columns["file_id"]
    ] * (columns["offset"] // WRITE_SLICE)
    tasks: list[_WriteTask] = []
    keys = np.stack([columns["file_id"], slice_of], axis=1)
    starts = np.flatnonzero(np.concatenate([[True], (keys[1:] != keys[:-1]).any(axis=1)]))
    for number, (a, b) in enumerate(zip(starts, [*starts[1:], len(dest)])):
        file = dataset.files[int(columns["file_id"][a])]
        tasks.append(
            _WriteTask(number, file, columns["offset"][a:b], columns["length"][a:b], dest[a:b], names, staging)
        )
    return tasks


def _copy_lines(task: _WriteTask) -> list[tuple[str, str]]:
    """Copy the task's lines into its parts; each part is renamed into place when complete."""
    fs, staging = _output(task.staging)
    part = f"part-{task.number:05d}.jsonl"
    attempt = secrets.token_hex(4)
    outs: dict = {}
    dests = task.dest.tolist()
    try:
        last = -1
        for i, data in read_ranges(task.file, task.offset, task.length, COPY_PIECE):
            dest = dests[i]
            out = outs.get(dest)
            if out is None:
                out = outs[dest] = fs.open_output_stream(f"{staging}/{task.folders[dest]}/.{part}.{attempt}")
            if i != last:
                if last >= 0:
                    outs[dests[last]].write(b"\n")
                last = i
            out.write(data)
        if last >= 0:
            outs[dests[last]].write(b"\n")
        for out in outs.values():
            out.close()
        for dest in outs:  # commit: once complete, under the part's name (a retry rewrites the same name)
            fs.move(f"{staging}/{task.folders[dest]}/.{part}.{attempt}", f"{staging}/{task.folders[dest]}/{part}")
    except BaseException:
        for dest, out in outs.items():
            out.close()
            fs.delete_file(f"{staging}/{task.folders[dest]}/.{part}.{attempt}")
        raise
    return [(task.folders[dest], part) for dest in outs]


def _remove_strays(fs, staging: str, parts: dict[str, list[str]]) -> None:
    """Delete what attempts that died half-way left (their temp parts): only committed parts stay."""
    for folder, names in parts.items():
        keep = set(names)
        for info in fs.get_file_info(pafs.FileSelector(f"{staging}/{folder}")):
            if info.base_name not in keep:
                fs.delete_file(info.path)


def _concatenate(fs, parts: list[str], target: str) -> None:
    with fs.open_output_stream(target) as out:
        for part in parts:
            with fs.open_input_stream(part) as source:
                while data := source.read(COPY_PIECE):
                    out.write(data)


def _describe(
    manifest: dict, dataset: Dataset, plan: Plan, files: list[Output], parts: dict[str, list[str]], single_file: bool
) -> None:
    """Every output's counts, as locally; without ``single_file`` each output is a folder with its list of parts."""
    manifest["engine"] = "ray"
    counts = [(b["count"], b["lines"]) for b in manifest["buckets"]]
    counts += [(0, len(dataset.skipped_lines))] if dataset.skipped_lines else []
    describe_outputs(manifest, dataset, plan, files, counts, None, 0)
    for entry in manifest["files"]:
        entry["format"] = "jsonl"  # (parquet input is refused: the local engine writes it)
    if single_file:
        return
    names = list(parts)  # each output's folder, in the order of manifest["files"]: the buckets, then the skipped
    for entry, name in zip(manifest["files"], names):
        entry["file"] = name + "/"
    for bucket, name in zip(manifest["buckets"], names):
        bucket["file"], bucket["parts"] = name + "/", sorted(parts[name])
    if manifest["skipped_file"]:
        manifest["skipped_file"] = names[-1] + "/"


def _commit(fs, staging: str, base: str, names: list[str]) -> None:
    """Move the finished outputs to their final names (earlier ones replaced), the manifest last."""
    for name in names:
        target = f"{base}/{name}"
        info = fs.get_file_info(target)
        if info.type == pafs.FileType.Directory:  # an earlier export's folder: out of the way first
            fs.move(target, f"{staging}/earlier-{name}")
        elif info.type != pafs.FileType.NotFound:
            fs.delete_file(target)
        fs.move(f"{staging}/{name}", target)
