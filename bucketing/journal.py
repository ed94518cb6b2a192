"""Replace an earlier export as a whole: a journal turns the renames of one export into one step.

The new files are complete, under temp names, before anything is renamed.  Then a journal
(``.bucketing-journal.json``) lists every rename to do and every file of the earlier export
to remove; once it is on disk the new export has won.  The renames follow (the manifest
last), then the removals, then the journal goes.  A run killed on the way leaves the
journal, and the next export into the folder finishes that work before anything else
(:func:`recover`, rolling forward): the folder then holds the whole new export.

A rename that fails inside the run rolls back instead: each file it replaces was first
hard-linked to a temp name, and the journal is switched to "back" before the undo starts, so
that a kill during the undo is finished the same way next time.

The journal is data like any other file in the folder, and may be planted: it is used only when
it is a regular file of the user running the export, every name in it is one an export writes,
and every file it would rename or remove is a regular file of that user and not an input —
checked for the whole journal before anything is touched.  Every step goes through the output
:class:`~bucketing.safedir.Folder` (no link followed, nothing outside the folder touched).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass

from .errors import BucketingError, display
from .outputs import SUBFOLDERS, TEMP_PREFIX, is_data_name, is_output_name, is_temp_name
from .safedir import Folder

JOURNAL = ".bucketing-journal.json"
JOURNAL_LIMIT = 4 << 20  # bytes: a journal of 601 files is about 100 KB


@dataclass(frozen=True)
class Move:
    """One rename of a replacing export: ``temp`` becomes ``final``; ``backup`` is the earlier ``final``."""

    temp: str
    final: str
    inode: int  # of the new file: an undo removes ``final`` only while it is this file
    backup: str | None = None


def replace_all(
    folder: Folder, moves: list[Move], stale: list[str], keep: set[tuple[int, int]], fsync: bool = True
) -> None:
    """Rename every move into place and remove ``stale`` files, as one step (see the module's doc).

    ``keep``: (device, inode) of files never to remove (the run's inputs).
    """
    _write_journal(folder, "forward", moves, stale, fsync)
    try:
        _forward(folder, moves)
    except BaseException:
        try:
            _write_journal(folder, "back", moves, stale, fsync)
        except (OSError, BucketingError):
            folder.unlink(JOURNAL)  # better no journal than one saying "forward" during the undo
        _backward(folder, moves)
        folder.unlink(JOURNAL)
        raise
    _remove(folder, stale, keep)
    _finish(folder, moves, fsync)


def recover(folder: Folder, keep: set[tuple[int, int]]) -> bool:
    """Finish the replacement a killed export left (its journal), forward or back; whether there was one."""
    info = folder.lstat(JOURNAL)
    if info is None:
        return False
    state, moves, stale = _read_journal(folder)
    _check_journal(folder, state, moves, keep)
    if state == "forward":
        _forward(folder, moves)
        _remove(folder, stale, keep)
    else:
        _backward(folder, moves)
    _finish(folder, moves, fsync=True)
    return True


def _check_journal(folder: Folder, state: str, moves: list[Move], keep: set[tuple[int, int]]) -> None:
    """Refuse, touching nothing, a journal this user's export could not have left: one owned by someone
    else, or one whose steps would rename another's file or replace or remove an input or another's file."""
    me = os.geteuid()

    def ours(name: str | None) -> bool:  # absent, or a regular file of this user that is not an input
        info = folder.lstat(name) if name else None
        return info is None or (
            stat.S_ISREG(info.st_mode) and info.st_uid == me and (info.st_dev, info.st_ino) not in keep
        )

    journal = folder.lstat(JOURNAL)
    touched = [name for m in moves for name in (m.temp, m.backup)]  # renamed or removed either way
    touched += (
        [m.final for m in moves]
        if state == "forward"
        else [m.final for m in moves if (info := folder.lstat(m.final)) is not None and info.st_ino == m.inode]
    )
    if journal is None or journal.st_uid != me or not all(ours(name) for name in touched):
        raise BucketingError(
            f"{display(folder.path / JOURNAL)} was not left by an export of yours (its owner, or "
            "a file it names, is another's, or an input); nothing was changed: look at the folder, "
            "then remove the file"
        )


def _forward(folder: Folder, moves: list[Move]) -> None:
    """Every temp file still there renamed to its final name (one already renamed is done)."""
    for move in moves:
        if folder.is_regular_file(move.temp):
            folder.replace(move.temp, move.final)


def _backward(folder: Folder, moves: list[Move]) -> None:
    """Every final name that holds a new file given back its earlier file (or none); temps removed."""
    for move in reversed(moves):
        info = folder.lstat(move.final)
        if info is not None and info.st_ino == move.inode:
            if move.backup is not None and folder.is_regular_file(move.backup):
                folder.rename(move.backup, move.final)
            else:
                folder.unlink(move.final)
        folder.unlink(move.temp)


def _remove(folder: Folder, stale: list[str], keep: set[tuple[int, int]]) -> None:
    """Remove what the earlier export wrote and this one didn't: only regular files, never an input,
    never through a link; then the export's own sub-folders that became empty."""
    for name in stale:
        try:
            info = folder.lstat(name)
            if info is not None and stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in keep:
                folder.unlink(name)
        except (BucketingError, OSError):
            continue  # a link on the way, or a file that can't be removed: left as it is
    touched = {name.rpartition("/")[0] for name in stale}
    for rel in sorted(SUBFOLDERS, key=lambda rel: -rel.count("/")):  # train/cumulative before train
        if rel in touched or any(other.startswith(rel + "/") for other in touched):
            try:
                folder.remove_empty_folder(rel)
            except BucketingError:
                continue


def _finish(folder: Folder, moves: list[Move], fsync: bool) -> None:
    for move in moves:
        if move.backup is not None:
            folder.unlink(move.backup)
    if fsync:
        _sync_folders(folder, moves)
    folder.unlink(JOURNAL)  # not flushed: a journal that comes back after a power cut names only work already done


def _sync_folders(folder: Folder, moves: list[Move]) -> None:
    for rel in sorted({move.final.rpartition("/")[0] for move in moves}):
        try:
            folder.sync(rel)
        except (BucketingError, OSError):
            continue  # removed meanwhile, or not ours to flush


def _write_journal(folder: Folder, state: str, moves: list[Move], stale: list[str], fsync: bool) -> None:
    """Write the journal under a temp name, then rename it into place: it is whole or absent."""
    data = json.dumps({"version": 1, "state": state, "moves": [asdict(m) for m in moves], "stale": stale}).encode()
    temp = f"{TEMP_PREFIX}{os.urandom(6).hex()}-journal"
    fd = folder.open_file(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        folder.rename(temp, JOURNAL)
    except BaseException:
        folder.unlink(temp)  # a disk full mid-journal leaves nothing behind
        raise
    if fsync:
        folder.sync()


def _read_journal(folder: Folder) -> tuple[str, list[Move], list[str]]:
    """The journal's state, moves and stale files, every name checked; BucketingError if it is not ours."""
    where = display(folder.path / JOURNAL)
    try:
        journal = json.loads(folder.read_bytes(JOURNAL, JOURNAL_LIMIT + 1))
        if (
            not isinstance(journal, dict)
            or journal.get("version") != 1
            or journal.get("state") not in ("forward", "back")
        ):
            raise ValueError("not a journal")
        moves = [Move(**entry) for entry in journal["moves"]]
        stale = list(journal["stale"])
        good = all(
            is_temp_name(m.temp)
            and is_output_name(m.final)
            and isinstance(m.inode, int)
            and (m.backup is None or is_temp_name(m.backup))
            for m in moves
        )
        if not good or not all(is_data_name(name) for name in stale):
            raise ValueError("names an export does not write")
    except (OSError, ValueError, TypeError, KeyError, RecursionError, BucketingError) as error:
        raise BucketingError(
            f"{where} was left by an interrupted export but can't be used ({error}); "
            "look at the folder, then remove the file"
        ) from None
    return journal["state"], moves, stale
