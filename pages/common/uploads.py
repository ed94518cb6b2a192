"""Uploaded files onto the disk, bounded: every file kept, in pieces, its uncompressed size counted.

Streamlit holds an upload in the server's memory and limits its size per file only
(``server.maxUploadSize``); a .gz of a few MB can hold GBs.  So each file is copied to the
session's upload folder a piece at a time, a .gz is decompressed as it is copied only to count
its bytes, and a file or a batch past the limits below is refused before the loader reads it.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from bucketing.errors import BucketingError

from .shared import SessionGone

FILE_LIMIT = 1 << 30  # uncompressed bytes of one uploaded file (a .gz counts what it holds)
BATCH_LIMIT = 2 << 30  # uncompressed bytes of all the files loaded by one click
PIECE = 1 << 20  # bytes read (and decompressed) at a time
READ = (".jsonl", ".jsonl.gz")  # what the loader reads of an upload (the uploader offers .jsonl and .gz)
CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def size_text(count: int) -> str:
    """A limit as people read it: 2 GiB, 1.5 MiB."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} bytes"


class _Counter:
    """Counts the uncompressed bytes of a file fed to it piece by piece (a .gz: of every gzip member)."""

    def __init__(self, gz: bool):
        self.gz, self.size, self.broken = gz, 0, False
        self.inflater = zlib.decompressobj(31) if gz else None

    def feed(self, data: bytes, limit: int) -> None:
        """Count ``data``; stops counting once past ``limit`` (a bomb is not decompressed to its end)."""
        if not self.gz:
            self.size += len(data)
            return
        if self.broken:
            return
        try:
            while data and self.size <= limit:
                self.size += len(self.inflater.decompress(data, PIECE))
                if self.inflater.eof:  # the next gzip member, if any, starts in unused_data
                    data = self.inflater.unused_data
                    self.inflater = zlib.decompressobj(31)
                else:
                    data = self.inflater.unconsumed_tail
        except zlib.error:
            self.broken = True  # not gzip, or damaged: the loader names it when it reads the file


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem (2).jsonl``, ``stem (3).jsonl``… when an earlier upload has it (case ignored)."""
    suffix = next(s for s in (".jsonl.gz", ".jsonl") if name.endswith(s))
    stem, candidate, number = name[: -len(suffix)], name, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{stem} ({number}){suffix}"
    taken.add(candidate.lower())
    return candidate


def clear(folder: Path) -> None:
    for old in folder.iterdir():
        old.unlink()


def save_uploads(uploads: Iterable, folder: Path, alive: Callable[[], bool]) -> list[str]:
    """Write the uploads the loader reads into ``folder`` (emptied first); return the names of the others.

    Raises :class:`BucketingError` for a file or a batch past the limits, :class:`SessionGone` when the
    session's browser went away; either way nothing is left in ``folder``.
    """
    clear(folder)
    ignored: list[str] = []
    taken: set[str] = set()
    total = 0
    try:
        for upload in uploads:
            name = Path(upload.name).name  # never a path from the browser
            if not name.endswith(READ):
                ignored.append(name)
                continue
            total += _copy(upload, folder / unique_name(name, taken), name, total, alive)
    except BaseException:
        clear(folder)
        raise
    return ignored


def _copy(upload, target: Path, name: str, before: int, alive: Callable[[], bool]) -> int:
    """Copy one upload to ``target`` a piece at a time; its uncompressed size (within the limits)."""
    counter = _Counter(name.endswith(".gz"))
    limit = min(FILE_LIMIT, BATCH_LIMIT - before)
    upload.seek(0)
    fd = os.open(target, CREATE, 0o600)
    with open(fd, "wb") as out:
        while piece := upload.read(PIECE):
            if not alive():
                raise SessionGone()
            counter.feed(piece, limit)
            if counter.size > limit:
                raise BucketingError(_too_big(name, counter.size))
            out.write(piece)
    return counter.size


def _too_big(name: str, size: int) -> str:
    if size > FILE_LIMIT:
        return (
            f"{name} holds more than {size_text(FILE_LIMIT)} uncompressed, the most an uploaded file may; "
            "nothing was loaded. Put the files in a folder the app may read and load that folder instead"
        )
    return (
        f"the uploaded files hold more than {size_text(BATCH_LIMIT)} uncompressed, the most one upload may; "
        "nothing was loaded. Upload fewer files, or load a folder the app may read instead"
    )
