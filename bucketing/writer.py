"""Write the bucket files: each input line's original bytes, atomically, manifest last.

Every line is copied from the input by offset, never re-serialised (see
:mod:`bucketing.bytecopy`: on every core, input read once, written with ``pwritev``).  Each output goes
to a temp file in the output directory, is fsynced, and is renamed into place only when all of
them are complete, the manifest last; an earlier export in the folder is replaced as a whole
(:mod:`bucketing.journal`).  Every create, rename and remove goes through the output folder opened
once (:class:`bucketing.safedir.Folder`): no link is followed, nothing outside it is touched.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import BinaryIO

import numpy as np

from . import trainsetfiles
from .annotate import difficulty_table, write_table
from .bytecopy import Copier, copy_list, preallocate, start_writeback
from .dataset import Dataset, Progress
from .errors import BucketingError
from .join import Join
from .journal import Move, recover, replace_all
from .manifest import MAX_MANIFEST_BYTES, build_manifest, dumps
from .metrics import get_metric
from .outputs import (
    DIFFICULTY,
    MANIFEST,
    SKIPPED,
    TEMP_PREFIX,
    Output,
    check_output_dir,
    describe_outputs,
    every_line,
    is_data_name,
    is_recipe_name,
    is_temp_name,
    selects,
)
from .parquet_write import describe_parquet, input_schema, outputs_by_kind, parquet_files, write_parquet_files
from .plan import Plan, check_name
from .recipes import check_trainers, render, write_names
from .safedir import Folder
from .sources import InputFile, display, open_input, open_stream
from .split import check_fraction, validation_rollouts

ORDERS = ("input", "difficulty")


def export(
    dataset: Dataset,
    plan: Plan,
    out_dir: str | os.PathLike,
    *,
    values: np.ndarray | None = None,
    prefix: str = "",
    order: str = "input",
    overwrite: bool = False,
    progress: Progress | None = None,
    fsync: bool = True,
    cumulative: bool = False,
    val_fraction: float | None = None,
    seed: int = 0,
    roots: list[Path] | None = None,
    recipes: tuple[str, ...] | list[str] = (),
    join: Join | None = None,
    annotate: str | None = None,
) -> dict:
    """Write ``{prefix}{name}.jsonl`` per bucket, ``{prefix}_skipped.jsonl``, ``{prefix}difficulty.parquet`` (see
    :mod:`bucketing.annotate`) and ``{prefix}manifest.json``.

    ``cumulative`` adds ``cumulative/{prefix}{name}.jsonl``: that bucket and every easier one.
    ``val_fraction`` splits each bucket once into ``train/`` and ``val/`` (see :mod:`bucketing.split`;
    ``seed`` picks another split), cumulative stages included.
    ``values`` are the plan's metric values (computed when None).  ``fsync=False``
    skips flushing each file to the disk before its rename: faster on slow disks;
    a crash of the program still leaves no partial file, a power cut could.  ``roots``: the
    output folder must lie in one of these (the app's allowed roots).  ``recipes``: trainers
    (:data:`bucketing.recipes.TRAINERS`) whose recipe is written beside the manifest, ``{prefix}recipe-{trainer}.md``,
    and listed in its ``recipes``.  Returns the
    manifest.  Raises :class:`BucketingError` before writing anything when the
    output would overwrite files (without ``overwrite``), sits in the input, or goes through a link.
    ``join``: a training set matched to the rollouts (:func:`bucketing.join.join`), whose rows are written
    under ``train_set/`` (:mod:`bucketing.trainsetfiles`), with the difficulty field ``annotate`` when given.
    """
    if order not in ORDERS:
        raise BucketingError(f"--order must be one of {', '.join(ORDERS)}, not {order!r}")
    if prefix:
        check_name(prefix, "prefix")
    if values is None:
        values = dataset.values(plan.metric, plan.params)
    if val_fraction is not None:
        check_fraction(val_fraction)
    ids = plan.assign(values)
    trainers = check_trainers(list(recipes))
    files = outputs_by_kind(dataset, plan, prefix, cumulative, val_fraction is not None)  # .jsonl and/or .parquet
    manifest_name = prefix + MANIFEST
    train_names = trainsetfiles.names(join, plan, prefix, cumulative, val_fraction is not None) if join else []
    names = [*(f.name for f in files), *train_names, prefix + DIFFICULTY, *write_names(trainers, prefix), manifest_name]
    clash = sorted({name for name in names if names.count(name) > 1})
    if clash:  # a bucket named like a file of the export's own (difficulty.parquet for parquet input)
        raise BucketingError(f"two outputs would be named {clash[0]}: give the bucket another name (--bucket-names)")
    check_output_dir(Path(out_dir), dataset.root, names)
    check_unchanged(dataset)
    if join:  # a source rewritten since its keys were read: its rows would go where other rows' keys sent them
        check_unchanged_files(join.source.files, "--train-set: ")
    schema = input_schema(dataset) if any(f.kind == "parquet" for f in files) else None  # one, or a clear error
    inputs = input_files(dataset) | ({f.ident: f for f in join.source.files if f.ident} if join else {})
    with (
        _output_folder(out_dir, roots, (dataset.root,), names, inputs, overwrite, manifest_name) as (out, stale),
        _Writer(out, dataset, progress, fsync) as writer,
    ):
        validation = None
        if val_fraction is not None:  # hashed from the writer's sources: a .gz is decompressed once
            writer.spool(np.unique(dataset.rollout_columns["file_id"]).tolist())
            validation = validation_rollouts(dataset, ids, val_fraction, writer.source, seed)
        pieces = _pieces(dataset, plan, values, ids, order, files, validation)
        manifest = build_manifest(dataset, plan, values, prefix, order, ids)
        counts = [(p["rollouts"], len(p["offset"])) for p in pieces]
        describe_outputs(manifest, dataset, plan, files, counts, val_fraction, seed)
        describe_parquet(manifest, files)
        train = join and trainsetfiles.prepare(
            join, dataset, plan, ids, values, validation, prefix, cumulative, annotate
        )
        manifest["difficulty_table"] = prefix + DIFFICULTY
        manifest["train_set"] = train.record(plan) if train else None
        extra = {}
        if trainers:  # rendered (from the whole manifest) before anything is written, renamed with the rest
            manifest["recipes"] = write_names(trainers, prefix)
            extra = {n: render(t, manifest, out_dir).encode() for n, t in zip(manifest["recipes"], trainers)}
        text = _manifest_text(manifest)  # before anything is written: a value JSON can't hold stops the run here
        writer.write_files([(f.name, p) for f, p in zip(files, pieces) if f.kind == "jsonl"])
        if schema is not None:
            jobs = [(f.name, p) for f, p in zip(files, pieces) if f.kind == "parquet"]
            write_parquet_files(dataset, schema, jobs, writer.new_file)
        if train:
            train.write(writer)
        with writer.new_file(prefix + DIFFICULTY) as table_file:
            write_table(difficulty_table(dataset, plan, ids), table_file)
        writer.commit(extra={**extra, manifest_name: text}, stale=stale, keep=set(inputs))
    return manifest


def write_groups(
    dataset: Dataset,
    groups: list[str],
    ids: np.ndarray,
    out_dir: str | os.PathLike,
    manifest: dict,
    *,
    overwrite: bool = False,
    fsync: bool = True,
    roots: list[Path] | None = None,
    progress: Progress | None = None,
    others: tuple[Dataset, ...] = (),
) -> dict:
    """Every rollout's lines into the file of its group (``ids``: per rollout, an index into ``groups``),
    ``{group}.jsonl`` (``.parquet`` for rows of parquet inputs), the bad lines into ``_skipped``, then
    ``manifest`` with each file's counts added: byte-exact, atomic and safe as :func:`export` writes.
    A group with no line gets no file. ``others``: more loads (another run compared) whose folders the output
    must stay out of and whose files it must never replace or remove. Returns the manifest."""
    for group in groups:
        check_name(group, "group name")
    columns, dest = every_line(dataset, np.asarray(ids), len(groups))
    rollout = np.concatenate([dataset.line_columns["rollout"], np.full(len(dataset.skipped_lines), -1)])
    in_parquet = parquet_files(dataset)[columns["file_id"]]
    sort = np.lexsort((columns["offset"], columns["file_id"]))
    jobs: list[tuple[str, dict, str | None]] = []
    for kind, of_kind in (("jsonl", ~in_parquet), ("parquet", in_parquet)):
        for index, group in enumerate([*groups, SKIPPED.removesuffix(".jsonl")]):
            members = sort[((dest == index) & of_kind)[sort]]
            if len(members):
                piece = {key: column[members] for key, column in columns.items()}
                piece["rollouts"] = len(np.unique(rollout[members][rollout[members] >= 0]))
                jobs.append((f"{group}.{kind}", piece, group if index < len(groups) else None))
    manifest_name = MANIFEST
    names = [name for name, _, _ in jobs] + [manifest_name]
    input_roots = (dataset.root, *(other.root for other in others))
    for root in input_roots:
        check_output_dir(Path(out_dir), root, names)
    check_unchanged(dataset)
    schema = input_schema(dataset) if any(name.endswith(".parquet") for name in names) else None
    inputs = input_files(dataset)
    for other in others:
        inputs |= input_files(other)
    with (
        _output_folder(out_dir, roots, input_roots, names, inputs, overwrite, manifest_name) as (out, stale),
        _Writer(out, dataset, progress, fsync) as writer,
    ):
        manifest = {
            **manifest,
            "files": [
                {"file": name, "group": group, "rollouts": piece["rollouts"], "lines": len(piece["offset"])}
                for name, piece, group in jobs
            ],
        }
        text = _manifest_text(manifest)
        writer.write_files([(name, piece) for name, piece, _ in jobs if name.endswith(".jsonl")])
        if schema is not None:
            parquet_jobs = [(name, piece) for name, piece, _ in jobs if name.endswith(".parquet")]
            write_parquet_files(dataset, schema, parquet_jobs, writer.new_file)
        writer.commit(extra={manifest_name: text}, stale=stale, keep=set(inputs))
    return manifest


@contextmanager
def _output_folder(
    out_dir: str | os.PathLike,
    roots: list[Path] | None,
    input_roots: tuple[Path | str, ...],
    names: list[str],
    inputs: dict[tuple[int, int], InputFile],
    overwrite: bool,
    manifest_name: str,
) -> Iterator[tuple[Folder, list[str]]]:
    """The output folder opened once and locked, checked again where it really is, an interrupted earlier export
    finished, the targets checked; with the earlier export's files that this one doesn't write (stale)."""
    with Folder.open(out_dir, roots, create=True) as out, _locked(out):
        for root in input_roots:
            check_output_dir(out.real, root, names)  # again, where the folder opened really is
        recover(out, set(inputs))  # an export killed while replacing another: finished first
        check_targets(out, names, inputs, overwrite)
        stale = sorted(earlier_outputs(out, manifest_name) - set(names))
        remove_leftovers(out)
        yield out, stale


def _manifest_text(manifest: dict) -> bytes:
    try:
        return dumps(manifest).encode()
    except ValueError as error:  # a value out of range for JSON (an infinite metric): a bug, said plainly
        raise BucketingError(f"the manifest can't be written ({error}); nothing was written") from None


def earlier_outputs(out: Folder, manifest_name: str) -> set[str]:
    """The files the export whose manifest is in ``out`` wrote, as far as they are names an export writes.

    The manifest is data, not trusted: read without following a link, bounded in size, and only
    names that fit the export's own scheme (:func:`bucketing.outputs.is_output_name`) count.
    """
    if not out.is_regular_file(manifest_name):
        return set()
    try:
        earlier = json.loads(out.read_bytes(manifest_name, MAX_MANIFEST_BYTES))
        names = {entry["file"] for entry in earlier.get("files", [])}
        names |= {bucket["file"] for bucket in earlier.get("buckets", [])}
        names |= {earlier["skipped_file"]} if earlier.get("skipped_file") else set()
        recipes = {name for name in earlier.get("recipes") or [] if is_recipe_name(name)}
        names |= {entry["file"] for entry in (earlier.get("train_set") or {}).get("files", [])}
        names |= {earlier["difficulty_table"]} if earlier.get("difficulty_table") else set()
    except (OSError, ValueError, RecursionError, BucketingError, TypeError, KeyError, AttributeError):
        return set()  # not a manifest of ours after all: it names nothing to remove
    return {name for name in names | recipes if is_data_name(name)}


@contextmanager
def _locked(out: Folder) -> Iterator[None]:
    """Hold an exclusive lock on the output directory itself (no lock file): one export at a time."""
    try:
        fcntl.flock(out.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BucketingError(
            f"another export is writing to {display(out.path)} right now; wait for it to finish or choose another folder"
        ) from None
    yield  # the lock goes when the folder's fd is closed


def input_files(dataset: Dataset) -> dict[tuple[int, int], InputFile]:
    """The local input files by (device, inode): what an export must never replace or remove."""
    inputs = {}
    for file in dataset.files:
        if file.uri is None:
            if file.ident is None:
                info = os.stat(file.path)
                inputs[(info.st_dev, info.st_ino)] = file
            else:
                inputs[file.ident] = file
    return inputs


def check_targets(out: Folder, names: list[str], inputs: dict[tuple[int, int], InputFile], overwrite: bool) -> None:
    """Refuse a sub-folder that is a link, files to replace without ``overwrite``, and ever to replace
    (a link to) an input file."""
    for folder in sorted({name.rpartition("/")[0] for name in names} - {""}):
        out.has_folder(folder)  # raises for a link (or a file) where the folder should be
    for name in names:
        if out.lstat(name) is None:
            continue
        if not overwrite:
            raise BucketingError(f"{display(out.path / name)} already exists; pass --overwrite to replace it")
        fd, base = out.where(name)
        try:
            info = os.stat(base, dir_fd=fd)  # through a link: replacing a link to an input is refused too
        except OSError:
            continue  # a dangling link: replacing it harms nothing
        same = inputs.get((info.st_dev, info.st_ino))
        if same is not None:
            raise BucketingError(
                f"{display(out.path / name)} is the input file {display(same.rel)} (a link to it); "
                "choose another output folder"
            )


def check_free(out: Path, names: list[str]) -> None:
    """Refuse an output folder that holds any of ``names`` (what ``--overwrite`` is for)."""
    for name in names:
        if os.path.lexists(out / name):
            raise BucketingError(f"{display(out / name)} already exists; pass --overwrite to replace it")


def remove_leftovers(out: Folder) -> None:
    """Delete temp files an interrupted export left behind (only ours: their names fit TEMP_PREFIX's scheme)."""
    for entry in out.entries():
        if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
            out.unlink(entry.name)


def check_unchanged(dataset: Dataset) -> None:
    check_unchanged_files(dataset.files)


def check_unchanged_files(files: list[InputFile], what: str = "") -> None:
    """Each local file still has the size and modification time it had when it was found."""
    for file in files:
        if file.uri is not None:
            continue  # object stores: the spool taken at export time is what gets copied
        try:
            info = os.stat(file.path)
        except OSError as exc:
            raise BucketingError(f"{what}{display(file.rel)} can't be read any more: {exc.strerror}") from None
        if (info.st_size, info.st_mtime_ns) != (file.size, file.mtime_ns):
            raise BucketingError(f"{what}{display(file.rel)} changed since it was loaded; load the input again")


def _pieces(
    dataset: Dataset,
    plan: Plan,
    values: np.ndarray,
    ids: np.ndarray,
    order: str,
    files: list[Output],
    validation: np.ndarray | None,
) -> list[dict]:
    """Per output file, in the order to write: arrays file_id, offset, length, clean; and its rollout count.

    Every line goes where its rollout goes; a rollout's lines stay in input order.
    """
    columns, dest = every_line(dataset, ids, len(plan.buckets))
    skipped = len(dataset.skipped_lines)
    rollout = np.concatenate([dataset.line_columns["rollout"], np.full(skipped, -1)])
    keys: tuple[np.ndarray, ...] = ()
    if order == "difficulty":  # easiest first; equal values keep the order of the rollouts' first lines
        easier = -values if get_metric(plan.metric).higher_is_easier else values
        keys = (np.concatenate([easier[rollout[: len(rollout) - skipped]], np.zeros(skipped)]), rollout)
    sort = np.lexsort((columns["offset"], columns["file_id"], *keys[::-1]))
    in_parquet = parquet_files(dataset)[columns["file_id"]]  # a parquet row goes to .parquet files only
    mixed = bool(in_parquet.any()) and not in_parquet.all()
    ids = np.asarray(ids, dtype=np.int64)
    held_out = np.zeros(len(ids), dtype=bool) if validation is None else validation  # no split: none held out
    pieces = []
    for output in files:
        if output.buckets:
            taken = selects(output, ids, held_out)
            chosen = np.concatenate([taken, [False]])[rollout]  # a line goes where its rollout goes
        else:
            taken, chosen = np.zeros(0, dtype=bool), dest == len(plan.buckets)
        chosen = chosen & (in_parquet == (output.kind == "parquet"))
        members = sort[chosen[sort]]
        piece = {key: column[members] for key, column in columns.items()}
        # mixed input: a bucket's rollouts in this kind of file (a group may have lines of both kinds)
        piece["rollouts"] = len(np.unique(rollout[members])) if mixed and output.buckets else int(taken.sum())
        pieces.append(piece)
    return pieces


class _Writer:
    """Temp files in the output folder, renamed into place together; removed on any failure."""

    def __init__(self, out: Folder, dataset: Dataset, progress: Progress | None, fsync: bool = True):
        self.out, self.dataset, self.progress, self.fsync = out, dataset, progress, fsync
        self.temps: dict[str, str] = {}  # final name -> temp name (in the output folder itself)
        self.spools: dict[int, str] = {}  # file_id -> temp name of its decompressed (or fetched) bytes
        self.targets: list[int] = []  # fds of the temp files being written
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.done = self.total = 0  # bytes copied, of all the outputs' bytes

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind, error, trace) -> None:
        for fd in self.targets:
            os.close(fd)
        for name in [*self.spools.values(), *self.temps.values()]:
            self.out.unlink(name)

    def _temp(self, name: str) -> tuple[int, str]:
        """A new file only this run uses; mode 0666 minus the umask, like any file the user creates."""
        temp = f"{TEMP_PREFIX}{secrets.token_hex(6)}-{name.replace('/', '__')}"  # beside the folder's other files
        return self.out.open_file(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), temp

    def spool(self, file_ids: list[int]) -> None:
        """Decompress (or fetch) once each compressed or remote input among ``file_ids`` into a temp file."""
        for file_id in file_ids:
            file = self.dataset.files[file_id]
            if file.local or file_id in self.spools:
                continue
            fd, self.spools[file_id] = self._temp("spool")
            with open_stream(file) as stream, os.fdopen(fd, "wb") as spool:
                shutil.copyfileobj(stream, spool, 1 << 20)

    @contextmanager
    def source(self, file_id: int) -> Iterator[int]:
        """An fd of input ``file_id``'s bytes at the offsets the scan saw, open only while it is used."""
        file = self.dataset.files[file_id]
        fd = open_input(file) if file.local else self.out.open_file(self.spools[file_id], os.O_RDONLY)
        try:
            yield fd
        finally:
            os.close(fd)

    def write_files(
        self, jobs: list[tuple[str, dict]], open_source: Callable[[int], AbstractContextManager[int]] | None = None
    ) -> None:
        """Write each ``(name, pieces)`` to its temp file (see :mod:`bucketing.bytecopy`), every core at it.

        ``open_source``: where the pieces' file_ids are read from (default: the dataset's files).
        """
        copies, sizes = copy_list([pieces for _, pieces in jobs])
        self.total += sum(sizes)
        if open_source is None:
            self.spool(np.unique(copies["file_id"]).tolist())
        targets = []
        for (name, _), size in zip(jobs, sizes):  # in order, so that commit renames in this order
            fd, self.temps[name] = self._temp(name)
            targets.append(fd)
            self.targets.append(fd)
            preallocate(fd, size)
        copier = Copier(copies, open_source or self.source, targets, self._advance, self.stop)
        self._run([partial(self._copy, copier, first, last) for first, last in copier.tasks()])
        if self.fsync:
            self._run([partial(os.fsync, fd) for fd in targets])

    @contextmanager
    def new_file(self, name: str) -> Iterator[BinaryIO]:
        """A temp file for ``name`` to write into (renamed into place with the others), flushed when done."""
        fd, self.temps[name] = self._temp(name)
        with os.fdopen(fd, "wb", buffering=1 << 20) as file:
            yield file
            file.flush()
            if self.fsync:
                os.fsync(fd)

    def _copy(self, copier: Copier, first: int, last: int) -> None:
        copier(first, last)
        if self.fsync:  # the disk writes while the copy goes on, instead of all at the end
            for fd in self.targets:
                start_writeback(fd)

    def _run(self, jobs: list[Callable[[], None]]) -> None:
        """Run ``jobs`` on every core; report progress from this thread (the app's progress bar needs that)."""
        with ThreadPoolExecutor(max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
            pending = {pool.submit(job) for job in jobs}
            try:
                while pending:
                    finished, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                    for future in finished:
                        future.result()
                    if self.progress:
                        self.progress(self.done, self.total)
            except BaseException:  # a failed copy or Ctrl-C: the other jobs stop at their next window
                self.stop.set()
                raise

    def _advance(self, count: int) -> None:
        with self.lock:
            self.done += count

    def commit(self, extra: dict[str, bytes], stale: list[str], keep: set[tuple[int, int]]) -> None:
        """Write the small files in ``extra`` last, then put every file in place and remove ``stale`` ones,
        as one step (:func:`bucketing.journal.replace_all`)."""
        for fd in self.targets:
            os.close(fd)
        self.targets = []
        for name, data in extra.items():
            fd, self.temps[name] = self._temp(name)
            try:
                _write_all(fd, data)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        moves = []
        for name, temp in self.temps.items():
            info = self.out.lstat(temp)
            if info is None:  # removed by another program meanwhile: nothing has been renamed yet
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(self.out.path / temp))
            backup = None
            if self.out.lstat(name) is not None:  # kept under a temp name until the new export is in place
                backup = f"{TEMP_PREFIX}{secrets.token_hex(6)}-earlier"
                self.out.link(name, backup)
            moves.append(Move(temp, name, info.st_ino, backup))
        try:
            replace_all(self.out, moves, stale, keep, self.fsync)
        finally:
            for move in moves:
                if move.backup is not None:
                    self.out.unlink(move.backup)
        self.temps.clear()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
