"""Write the bucket files: each input line's original bytes, atomically, manifest last.

Every line is copied from the input by offset, never re-serialised (see
:mod:`bucketing.copy`: on every core, input read once, written with ``pwritev``).  Each output goes
to a temp file in the output directory, is fsynced, and is renamed into place
only when all of them are complete; the manifest is renamed last.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from .copy import Copier, copy_list, preallocate, start_writeback
from .errors import BucketingError
from .load import Dataset, Progress
from .manifest import MANIFEST, Output, build_manifest, dumps, outputs, read_manifest
from .metrics import get_metric
from .plan import Plan, check_name
from .sources import InputFile, display, open_stream
from .split import check_fraction, validation_rollouts

TEMP_PREFIX = ".bucketing-tmp-"
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
) -> dict:
    """Write ``{prefix}{name}.jsonl`` per bucket, ``{prefix}_skipped.jsonl`` and ``{prefix}manifest.json``.

    ``cumulative`` adds ``cumulative/{prefix}{name}.jsonl``: that bucket and every easier one.
    ``val_fraction`` splits each bucket once into ``train/`` and ``val/`` (see :mod:`bucketing.split`;
    ``seed`` picks another split), cumulative stages included.
    ``values`` are the plan's metric values (computed when None).  ``fsync=False``
    skips flushing each file to the disk before its rename: faster on slow disks;
    a crash of the program still leaves no partial file, a power cut could.  Returns the
    manifest.  Raises :class:`BucketingError` before writing anything when the
    output would overwrite files (without ``overwrite``) or sits in the input.
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
    out = Path(out_dir)
    files = outputs(plan, prefix, len(dataset.skipped_lines) > 0, cumulative, val_fraction is not None)
    manifest_name = prefix + MANIFEST
    check_output_dir(out, dataset.root)
    check_unchanged(dataset)
    if not out.exists():
        out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        check_targets(out, [*(f.name for f in files), manifest_name], dataset, overwrite)
        stale = earlier_outputs(out, manifest_name) - {f.name for f in files}
        remove_leftovers(out)
        with _Writer(out, dataset, progress, fsync) as writer:
            validation = None
            if val_fraction is not None:  # hashed from the writer's sources: a .gz is decompressed once
                sources = writer.open_sources(np.unique(dataset.rollout_columns["file_id"]).tolist())
                validation = validation_rollouts(dataset, ids, val_fraction, sources, seed)
            pieces = _pieces(dataset, plan, values, ids, order, files, validation)
            manifest = build_manifest(dataset, plan, values, prefix, order, ids)
            counts = [(p["rollouts"], len(p["offset"])) for p in pieces]
            describe_outputs(manifest, dataset, plan, files, counts, val_fraction, seed)
            writer.write_files([(f.name, p) for f, p in zip(files, pieces)])
            writer.commit(extra={manifest_name: dumps(manifest).encode()})
        remove_stale(out, stale, input_files(dataset))
    return manifest


def earlier_outputs(out: Path, manifest_name: str) -> set[str]:
    """The files the export whose manifest is in ``out`` wrote (none if there is none, or it can't be read)."""
    if not (out / manifest_name).is_file():
        return set()
    try:
        earlier = read_manifest(out / manifest_name)
        names = {entry["file"] for entry in earlier.get("files", [])}
        names |= {bucket["file"] for bucket in earlier.get("buckets", [])}
        names |= {earlier["skipped_file"]} if earlier.get("skipped_file") else set()
    except (BucketingError, TypeError, KeyError):  # not a manifest of ours after all: it names nothing to remove
        return set()
    return {name for name in names if isinstance(name, str) and _inside(name)}


def _inside(name: str) -> bool:
    """A name an export writes: relative, downwards, a .jsonl file (never an input, never a folder of parts)."""
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and name.endswith(".jsonl")


def remove_stale(out: Path, names: set[str], inputs: dict[tuple[int, int], InputFile]) -> None:
    """After a replacing export: delete what the earlier one wrote and this one didn't (a stage, a split, a
    bucket of another name), so the folder holds one export; then the sub-folders that became empty.
    Never a file of this run's input (``inputs``: see :func:`input_files`), which may lie in the output."""
    for name in sorted(names):
        path = out / name
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            if (info.st_dev, info.st_ino) not in inputs:
                path.unlink()
    folders = {out / parent for name in names for parent in Path(name).parents if parent != Path(".")}
    for folder in sorted(folders, key=lambda path: -len(path.parts)):  # train/cumulative before train
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()


@contextmanager
def _locked(out: Path):
    """Hold an exclusive lock on the output directory itself (no lock file): one export at a time."""
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BucketingError(
                f"another export is writing to {display(out)} right now; wait for it to finish or choose another folder"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def check_free(out: Path, names: list[str]) -> None:
    """Refuse an output folder that holds any of ``names`` (what ``--overwrite`` is for)."""
    for name in names:
        if os.path.lexists(out / name):
            raise BucketingError(f"{display(out / name)} already exists; pass --overwrite to replace it")


def input_files(dataset: Dataset) -> dict[tuple[int, int], InputFile]:
    """The local input files by (device, inode): what an export must never replace or remove."""
    inputs = {}
    for file in dataset.files:
        if file.uri is None:
            info = os.stat(file.path)
            inputs[(info.st_dev, info.st_ino)] = file
    return inputs


def check_targets(out: Path, names: list[str], dataset: Dataset, overwrite: bool) -> None:
    """Refuse to replace files without ``overwrite``, and ever to replace (a hard link to) an input file."""
    if not overwrite:
        check_free(out, names)
        return
    inputs = input_files(dataset)
    for name in names:
        target = out / name
        if not os.path.lexists(target):
            continue
        try:
            info = os.stat(target)
        except OSError:
            continue  # a dangling link: replacing it harms nothing
        same = inputs.get((info.st_dev, info.st_ino))
        if same is not None:
            raise BucketingError(f"{display(target)} is the input file {display(same.rel)} (a link to it); "
                                 "choose another output folder")


def remove_leftovers(out: Path) -> None:
    """Delete temp files an interrupted export left behind (only ours: they carry TEMP_PREFIX)."""
    for entry in os.scandir(out):
        if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)


def check_output_dir(out: Path, root: Path | str) -> None:
    """The output may not be the input directory or inside it (it would be read next time)."""
    if isinstance(root, str):  # a URI: no local folder to be inside of
        return
    source = root.resolve() if root.is_dir() else root.resolve().parent
    target = out.resolve()
    if target == source or source in target.parents:
        raise BucketingError(
            f"output directory {display(out)} is inside the input directory {display(root)}; choose another"
        )


def check_unchanged(dataset: Dataset) -> None:
    for file in dataset.files:
        if file.uri is not None:
            continue  # object stores: the spool taken at export time is what gets copied
        try:
            info = os.stat(file.path)
        except OSError as exc:
            raise BucketingError(f"{display(file.rel)} can't be read any more: {exc.strerror}") from None
        if (info.st_size, info.st_mtime_ns) != (file.size, file.mtime_ns):
            raise BucketingError(f"{display(file.rel)} changed since it was loaded; load the input again")


def every_line(dataset: Dataset, ids: np.ndarray, buckets: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every non-blank input line (good, then skipped): its file_id, offset, length, clean, and its output.

    The output of a good line is its rollout's bucket (``ids``); skipped lines go to output ``buckets``.
    """
    lines = dataset.line_columns
    dest = np.concatenate([ids.astype(np.int64)[lines["rollout"]], np.full(len(dataset.skipped_lines), buckets)])
    columns = {
        key: np.concatenate([lines[key], dataset.skipped_column(key)]).astype(np.int64)
        for key in ("file_id", "offset", "length", "clean")
    }
    return columns, dest


def _pieces(dataset: Dataset, plan: Plan, values: np.ndarray, ids: np.ndarray, order: str, files: list[Output],
            validation: np.ndarray | None) -> list[dict]:
    """Per output file, in the order to write: arrays file_id, offset, length, clean; and its rollout count.

    Every line goes where its rollout goes; a rollout's lines stay in input order.
    """
    columns, dest = every_line(dataset, ids, len(plan.buckets))
    skipped = len(dataset.skipped_lines)
    rollout = np.concatenate([dataset.line_columns["rollout"], np.full(skipped, -1)])
    if order == "difficulty":  # easiest first; equal values keep the order of the rollouts' first lines
        easier = -values if get_metric(plan.metric).higher_is_easier else values
        keys = (np.concatenate([easier[rollout[: len(rollout) - skipped]], np.zeros(skipped)]), rollout)
    else:
        keys = ()
    sort = np.lexsort((columns["offset"], columns["file_id"], *keys[::-1]))
    ids = np.asarray(ids, dtype=np.int64)
    pieces = []
    for output in files:
        if output.buckets:
            taken = ids <= output.buckets[-1] if output.cumulative else ids == output.buckets[0]
            if output.part != "all":
                taken &= validation if output.part == "val" else ~validation
            chosen = np.concatenate([taken, [False]])[rollout]  # a line goes where its rollout goes
        else:
            taken, chosen = np.zeros(0, dtype=bool), dest == len(plan.buckets)
        members = sort[chosen[sort]]
        piece = {key: column[members] for key, column in columns.items()}
        piece["rollouts"] = int(taken.sum())
        pieces.append(piece)
    return pieces


def describe_outputs(manifest: dict, dataset: Dataset, plan: Plan, files: list[Output],
                     counts: list[tuple[int, int]], val_fraction: float | None, seed: int) -> None:
    """Record what the export writes beyond the buckets: stages, the split and every file's
    ``counts`` (rollouts, lines)."""
    manifest["cumulative"] = any(f.cumulative for f in files)
    manifest["split"] = None if val_fraction is None else {
        "val_fraction": val_fraction, "seed": seed,
        "by": "group key" if dataset.layout.grouped else "line bytes (BLAKE2b)",
    }
    manifest["files"] = [
        {"file": f.name, "buckets": [plan.names[b] for b in f.buckets], "part": f.part, "cumulative": f.cumulative,
         "rollouts": rollouts, "lines": lines}
        for f, (rollouts, lines) in zip(files, counts)
    ]


class _Writer:
    """Temp files in the output directory, renamed into place together; removed on any failure."""

    def __init__(self, out: Path, dataset: Dataset, progress: Progress | None, fsync: bool = True):
        self.out, self.dataset, self.progress, self.fsync = out, dataset, progress, fsync
        self.temps: dict[str, Path] = {}  # final name -> temp path
        self.sources: dict[int, int] = {}  # file_id -> fd of its (decompressed) bytes
        self.spools: list[Path] = []
        self.targets: list[int] = []  # fds of the temp files being written
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.done = self.total = 0  # bytes copied, of all the outputs' bytes

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, kind, error, trace) -> None:
        for fd in [*self.sources.values(), *self.targets]:
            os.close(fd)
        for path in [*self.spools, *self.temps.values()]:
            path.unlink(missing_ok=True)

    def _temp(self, name: str) -> tuple[int, Path]:
        """A new file only this run uses; mode 0666 minus the umask, like any file the user creates."""
        path = self._new_temp_path(name)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), path

    def _new_temp_path(self, name: str) -> Path:
        """Next to the final files, whatever sub-folder the final name is in (``/`` becomes ``__``)."""
        return self.out / f"{TEMP_PREFIX}{secrets.token_hex(6)}-{name.replace('/', '__')}"

    def open_sources(self, file_ids: list[int]) -> dict[int, int]:
        """An fd per input file, holding its bytes at the offsets the scan saw (compressed and remote ones spooled
        once: opened files stay open); returns every source opened so far."""
        for file_id in file_ids:
            if file_id in self.sources:
                continue
            file = self.dataset.files[file_id]
            if file.local:
                self.sources[file_id] = os.open(file.path, os.O_RDONLY)
            else:
                fd, path = self._temp("spool")
                self.spools.append(path)
                self.sources[file_id] = fd
                with open_stream(file) as stream, os.fdopen(os.dup(fd), "wb") as spool:
                    shutil.copyfileobj(stream, spool, 1 << 20)
        return self.sources

    def write_files(self, jobs: list[tuple[str, dict]]) -> None:
        """Write each ``(name, pieces)`` to its temp file (see :mod:`bucketing.copy`), every core at it."""
        copies, sizes = copy_list([pieces for _, pieces in jobs])
        self.total = sum(sizes)
        self.open_sources(np.unique(copies["file_id"]).tolist())
        for (name, _), size in zip(jobs, sizes):  # in order, so that commit renames in this order
            fd, self.temps[name] = self._temp(name)
            self.targets.append(fd)
            preallocate(fd, size)
        copier = Copier(copies, self.sources, self.targets, self._advance, self.stop)
        self._run([partial(self._copy, copier, first, last) for first, last in copier.tasks()])
        if self.fsync:
            self._run([partial(os.fsync, fd) for fd in self.targets])

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

    def commit(self, extra: dict[str, bytes]) -> None:
        """Write the small files in ``extra`` last, then rename every temp file to its final name."""
        for name, data in extra.items():
            fd, path = self._temp(name)
            self.temps[name] = path
            try:
                _write_all(fd, data)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        self._swap_in()
        if self.fsync:
            _fsync_dir(self.out)

    def _swap_in(self) -> None:
        """Rename every temp file to its final name (buckets, skipped, manifest last), all or none.

        The files of an earlier export are first hard-linked to temp names: if a rename fails, the
        ones already done are undone from those links. (A leftover link, after a kill, is only a
        second name for a file that still has its final one: deleting it next time loses nothing.)
        """
        earlier: dict[str, Path] = {}
        placed: list[str] = []
        try:
            for name in self.temps:
                if os.path.lexists(self.out / name):
                    earlier[name] = self._new_temp_path("earlier-" + name)
                    os.link(self.out / name, earlier[name], follow_symlinks=False)
            for name, path in self.temps.items():
                (self.out / name).parent.mkdir(parents=True, exist_ok=True)  # cumulative/, train/, val/
                os.replace(path, self.out / name)
                placed.append(name)
        except BaseException:
            for name in placed:  # undo: the earlier file (or none) back under its name
                os.unlink(self.out / name)
                if name in earlier:
                    os.link(earlier[name], self.out / name, follow_symlinks=False)
            raise
        finally:
            for path in earlier.values():
                path.unlink(missing_ok=True)
            for name in placed:
                del self.temps[name]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

