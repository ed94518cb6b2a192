"""What a scan found in a file, kept on disk: reopening a folder reads only the files that are new or changed.

A growing run adds a file per step; every reload would scan them all again. Each chunk's result (its line
index, scores, group and join keys, skipped lines) is stored under the cache folder (``BUCKETING_CACHE_DIR``,
else ``$XDG_CACHE_HOME/rollout-bucketer``, else ``~/.cache/rollout-bucketer``), named by a digest of
everything the result depends on: this version, the file's real path, size, modification time, device and
inode, the chunk's byte range, the layout, the line limit, strict and the join field. A file that changed in
any of these is read again whole; an entry is never trusted beyond that: it is read without following a link,
bounded in size, checked field by field against the chunk it claims to be, and any entry that fails to read
(damaged, cut short, written by another version) is a miss, then written anew. Entries are written to a
temp name and renamed, so a reader sees a whole one or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import struct
from array import array
from pathlib import Path

import msgspec
import numpy as np

from .parse import Chunk, ChunkResult
from .version import __version__

ENV = "BUCKETING_CACHE_DIR"
MAGIC = b"RBSCAN1\n"
MAX_HEADER = 64 << 20  # a header this large is not one we wrote (skipped-line records dominate it)


class _Header(msgspec.Struct, array_like=True):
    key: str
    lines: int
    blank: int
    objects: int
    join_read: bool
    stopped: bool
    opens_document: bool
    closes_document: bool
    unreadable: str
    skipped: list[tuple[int, int, int, bool, str, str]]
    sizes: list[int]  # bytes of rows, scores, keys, join_keys, join_kinds, in that order


def cache_dir() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rollout-bucketer"


def chunk_key(chunk: Chunk) -> str | None:
    """The digest naming this chunk's entry, from the file as it is now (taken before it is scanned); None for a
    file the cache doesn't keep (remote), or one that changed since it was found."""
    file = chunk.file
    if file.uri is not None or file.ident is None:
        return None
    try:
        now = os.stat(file.path)
    except OSError:
        return None
    if (now.st_size, now.st_mtime_ns, (now.st_dev, now.st_ino)) != (file.size, file.mtime_ns, file.ident):
        return None
    layout = chunk.layout
    parts = [
        __version__,
        os.path.realpath(file.path),
        file.size,
        file.mtime_ns,
        now.st_ctime_ns,  # any write, or a modification time set back, changes it: no one can set it
        *file.ident,
        chunk.start,
        chunk.stop,
        layout.scores,
        list(layout.group_by),
        layout.booleans,
        chunk.max_line_bytes,
        chunk.strict,
        chunk.join_on,
        file.rel if "@file" in layout.group_by else "",  # the group keys of @file hash the file's name
    ]
    return hashlib.blake2b(msgspec.json.encode(parts), digest_size=20).hexdigest()


def load_result(chunk: Chunk, key: str | None, folder: Path | None = None) -> ChunkResult | None:
    """The stored result of ``chunk`` under ``key`` (:func:`chunk_key`) if there is a sound one; None otherwise."""
    if key is None:
        return None
    path = (folder or cache_dir()) / key[:2] / key
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
            (length,) = struct.unpack("<Q", f.read(8))
            if length > MAX_HEADER:
                return None
            header = msgspec.msgpack.decode(f.read(length), type=_Header)
            if header.key != key or len(header.sizes) != 5 or any(size < 0 for size in header.sizes):
                return None
            blobs = [f.read(size) for size in header.sizes]
            if any(len(blob) != size for blob, size in zip(blobs, header.sizes)) or f.read(1):
                return None
    except (OSError, ValueError, struct.error, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return _result(chunk, header, blobs)


def _result(chunk: Chunk, header: _Header, blobs: list[bytes]) -> ChunkResult | None:
    rows, scores, keys, join_keys, join_kinds = blobs
    good = len(rows) // 40  # ROW_FIELDS: five int64 per good line
    if len(rows) % 40 or len(scores) % 8:
        return None
    if len(keys) not in (0, good * 16) or len(join_keys) not in (0, good * 16) or len(join_kinds) not in (0, good):
        return None
    result = ChunkResult(
        chunk,
        lines=header.lines,
        blank=header.blank,
        objects=header.objects,
        rows=array("q", rows),
        scores=array("d", scores),
        keys=bytearray(keys),
        join_read=header.join_read,
        skipped=[tuple(bad) for bad in header.skipped],  # type: ignore[misc]
        stopped=header.stopped,
        opens_document=header.opens_document,
        closes_document=header.closes_document,
        unreadable=header.unreadable,
    )
    if header.join_read:
        result.join_keys = np.frombuffer(join_keys, dtype="<u8").reshape(-1, 2).copy()
        result.join_kinds = np.frombuffer(join_kinds, dtype=np.uint8).copy()
    counts = np.frombuffer(rows, dtype=np.int64).reshape(-1, 5)[:, 4] if good else np.zeros(0, dtype=np.int64)
    if int(counts.sum()) != len(scores) // 8 or (counts < 0).any():  # every line's scores, none more
        return None
    return result


def store_result(result: ChunkResult, key: str | None, folder: Path | None = None) -> None:
    """Keep ``result`` under ``key``, the chunk's key taken before its scan (a file that changed meanwhile is
    then never found under it); a failure to write only costs the next load a scan."""
    if key is None or result.stopped:
        return
    folder = (folder or cache_dir()) / key[:2]
    join = result.join_read
    blobs = [
        bytes(result.rows),
        bytes(result.scores),
        bytes(result.keys),
        np.ascontiguousarray(result.join_keys, dtype="<u8").tobytes() if join else b"",
        np.ascontiguousarray(result.join_kinds, dtype=np.uint8).tobytes() if join else b"",
    ]
    header = _Header(
        key,
        result.lines,
        result.blank,
        result.objects,
        join,
        result.stopped,
        result.opens_document,
        result.closes_document,
        result.unreadable,
        [tuple(bad) for bad in result.skipped],  # type: ignore[misc]
        [len(blob) for blob in blobs],
    )
    encoded = msgspec.msgpack.encode(header)
    temp = folder / f".{key}.{secrets.token_hex(4)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(encoded)) + encoded)
            for blob in blobs:
                f.write(blob)
        os.replace(temp, folder / key)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
