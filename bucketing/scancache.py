"""What a scan found in a file, kept on disk: reopening a folder reads only the files that are new or changed.

A growing run adds a file per step; every reload would scan them all again. Each chunk's result (its line
index, scores, group and join keys, skipped lines) is stored under the cache folder (``BUCKETING_CACHE_DIR``,
else ``$XDG_CACHE_HOME/rollout-bucketer``, else ``~/.cache/rollout-bucketer``). An entry is named by what the
result is of: the scanner's code and libraries, the file's real path, the chunk's byte range, the layout, the
line limit, strict and the join field. It records the file's state when it was scanned -- size, modification
and change times, device and inode -- and is used only while the file is in that state: a file that changed
is read again whole, and its entry replaced. Nothing in the folder is trusted: the folder must be the user's
own and not writable by others, no link is followed, an entry is bounded by its chunk's size, checksummed, and
checked against the chunk it claims to be; any entry that fails (damaged, cut short, another version's) is a
miss. A result is stored only when its file did not change during the scan and had not changed in the two
seconds before it (a change within one tick of the clock would leave the times as they were). Writes go to a
temp name and are renamed: a reader sees a whole entry or none. Any failure of the cache costs only a scan.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import secrets
import stat
import struct
import zlib
from array import array
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import msgspec
import numpy as np

from .joinkey import KINDS
from .parquet_read import is_parquet
from .parse import ROW_FIELDS, SCORE_LIMIT, Chunk, ChunkResult
from .version import __version__

ENV = "BUCKETING_CACHE_DIR"
MAGIC = b"RBSCAN3\n"
SETTLED_NS = 2_000_000_000  # a file changed less than this before its scan is not stored (the clock's tick)
ENTRY_FLOOR = 64 << 20  # an entry may always be this large; beyond, at most ENTRY_PER_BYTE x its chunk's bytes
ENTRY_PER_BYTE = 96  # a line of n scores costs 40 + 8n bytes (+ 33 for keys) and takes at least 2n bytes
SCANNER = ("parse", "layout", "scorepath", "joinkey", "parquet_scan", "parquet_read", "sources", "scancache")
OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC


class _Header(msgspec.Struct, array_like=True):
    name: str  # the entry's name: what the result is of
    state: list[int]  # the file's size, mtime_ns, ctime_ns, device, inode when it was scanned
    lines: int
    blank: int
    objects: int
    join_read: bool
    opens_document: bool
    closes_document: bool
    unreadable: str
    skipped: list[tuple[int, int, int, bool, str, str]]
    sizes: list[int]  # bytes of rows, scores, keys, join_keys, join_kinds, in that order
    crc: int  # CRC-32 of those bytes: a body damaged on the disk (the folder's trust is its owner's, above)


def cache_dir() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rollout-bucketer"


@lru_cache(maxsize=1)
def scanner_version() -> str:
    """The scanner's own code and the libraries it reads with: any change makes every entry another's."""
    digest = hashlib.blake2b(__version__.encode(), digest_size=16)
    here = Path(__file__).parent
    for module in SCANNER:
        digest.update((here / f"{module}.py").read_bytes())
    for library in ("msgspec", "pysimdjson", "pyarrow", "numpy"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            digest.update(f"{library}={importlib.metadata.version(library)}".encode())
    return digest.hexdigest()


def file_state(chunk: Chunk) -> list[int] | None:
    """The chunk's file as it is now, if it is the file the load found (a local one); else None."""
    file = chunk.file
    if file.uri is not None or file.ident is None:
        return None
    try:
        now = os.stat(file.path)
    except OSError:
        return None
    if (now.st_size, now.st_mtime_ns, (now.st_dev, now.st_ino)) != (file.size, file.mtime_ns, file.ident):
        return None
    return [now.st_size, now.st_mtime_ns, now.st_ctime_ns, now.st_dev, now.st_ino]


def entry_name(chunk: Chunk) -> str:
    layout, file = chunk.layout, chunk.file
    parts = [
        scanner_version(),
        os.fsencode(os.path.realpath(file.path)).hex(),
        chunk.start,
        chunk.stop,
        layout.scores,
        list(layout.group_by),
        layout.booleans,
        chunk.max_line_bytes,
        chunk.strict,
        chunk.join_on,
        file.rel.encode("utf-8", "surrogatepass").hex() if "@file" in layout.group_by else "",  # @file keys hash it
    ]
    return hashlib.blake2b(msgspec.json.encode(parts), digest_size=20).hexdigest()


def cached_results(chunks: list[Chunk]) -> tuple[dict[int, ChunkResult], dict[int, list[int]]]:
    """The chunks whose entries hold for their files as they are now (by index), and the state of each other
    chunk's file (to store its result under, after the scan)."""
    found: dict[int, ChunkResult] = {}
    states: dict[int, list[int]] = {}
    try:
        with _folder(create=False) as root:
            for i, chunk in enumerate(chunks):
                state = file_state(chunk)
                if state is None:
                    continue
                result = _read(root, chunk, state) if root is not None else None
                if result is None:
                    states[i] = state
                else:
                    found[i] = result
    except Exception:  # the cache can only save a scan, never stop a load
        return found, {i: s for i, c in enumerate(chunks) if i not in found and (s := file_state(c)) is not None}
    return found, states


def store_results(results: list[tuple[ChunkResult, list[int]]], started_ns: int) -> None:
    """Keep each ``(result, state before its scan)`` whose file stayed as it was and had settled before the scan."""
    try:
        with _folder(create=True) as root:
            if root is None:
                return
            for result, before in results:
                now = file_state(result.chunk)
                settled = max(before[1], before[2]) < started_ns - SETTLED_NS
                if now == before and settled and not result.stopped and not result.unreadable:
                    _write(root, result, before)
    except Exception:
        return


@contextlib.contextmanager
def _folder(create: bool) -> Iterator[int | None]:
    """An fd of the cache folder if it is the user's own, no link, and writable by no one else; else None."""
    path = cache_dir()
    if create:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | OPEN_FLAGS)
    except OSError:
        yield None
        return
    try:
        yield fd if _private(fd) else None
    finally:
        os.close(fd)


def _private(fd: int) -> bool:
    info = os.fstat(fd)
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _subfolder(root: int, name: str, create: bool) -> int | None:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name[:2], 0o700, dir_fd=root)
    try:
        fd = os.open(name[:2], os.O_RDONLY | os.O_DIRECTORY | OPEN_FLAGS, dir_fd=root)
    except OSError:
        return None
    if _private(fd):
        return fd
    os.close(fd)
    return None


def _read(root: int, chunk: Chunk, state: list[int]) -> ChunkResult | None:
    name = entry_name(chunk)
    folder = _subfolder(root, name, create=False)
    if folder is None:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | OPEN_FLAGS, dir_fd=folder)  # a FIFO planted: no wait
    except OSError:
        return None
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_size > _entry_limit(chunk):
            return None
        data = f.read(info.st_size)
    if len(data) < len(MAGIC) + 8 or not data.startswith(MAGIC):
        return None
    (length,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    header = msgspec.msgpack.decode(data[start : start + length], type=_Header)
    body = memoryview(data)[start + length :]
    if header.name != name or header.state != state or len(header.sizes) != 5 or min(header.sizes) < 0:
        return None
    if sum(header.sizes) != len(body) or zlib.crc32(body) != header.crc:
        return None
    blobs, at = [], 0
    for size in header.sizes:
        blobs.append(body[at : at + size])  # views, not copies: an entry of a million lines is 100 MB
        at += size
    return _result(chunk, header, blobs)


def _result(chunk: Chunk, header: _Header, blobs: list[memoryview]) -> ChunkResult | None:
    """The result an entry holds, if it could be a scan of ``chunk``: every count and column in its bounds."""
    rows, scores, keys, join_keys, join_kinds = blobs
    width = 8 * len(ROW_FIELDS)
    if len(rows) % width or len(scores) % 8:
        return None
    good = len(rows) // width
    table = np.frombuffer(rows, dtype=np.int64).reshape(good, len(ROW_FIELDS)).T
    line, offset, length, clean, counts = (table[ROW_FIELDS.index(name)] for name in ROW_FIELDS)
    flat = np.frombuffer(scores, dtype=np.float64)
    lines = header.lines
    checks = [
        0 <= header.blank <= lines and 0 <= header.objects <= lines and good + len(header.skipped) <= lines,
        len(keys) == (good * 16 if chunk.layout.grouped else 0),
        (len(join_keys), len(join_kinds)) == ((good * 16, good) if header.join_read else (0, 0)),
        not header.unreadable or is_parquet(chunk.file),
        bool(((line >= 1) & (line <= lines)).all()) and bool((np.diff(line) > 0).all()),
        bool(((clean == 0) | (clean == 1)).all()) and bool((counts >= 1).all()) and int(counts.sum()) == len(flat),
        bool(np.isfinite(flat).all()) and bool((np.abs(flat) <= SCORE_LIMIT).all()),
        all(1 <= bad[0] <= lines for bad in header.skipped),
    ]
    if is_parquet(chunk.file):  # offsets are row numbers
        checks.append(bool(((offset >= 0) & (length == 1)).all()))
    else:
        stop = chunk.file.size if chunk.stop is None else chunk.stop
        inside = (offset >= chunk.start) & (offset < stop) & (offset + length <= chunk.file.size)
        checks.append(bool(inside.all()) and bool(((length >= 0) & (length <= chunk.max_line_bytes)).all()))
    if header.join_read:
        checks.append(bool((np.frombuffer(join_kinds, dtype=np.uint8) < len(KINDS)).all()))
    if not all(checks):
        return None
    result = ChunkResult(
        chunk,
        lines=lines,
        blank=header.blank,
        objects=header.objects,
        rows=_array("q", rows),
        scores=_array("d", scores),
        keys=bytearray(keys),
        join_read=header.join_read,
        skipped=[tuple(bad) for bad in header.skipped],  # type: ignore[misc]
        opens_document=header.opens_document,
        closes_document=header.closes_document,
        unreadable=header.unreadable,
    )
    if header.join_read:
        result.join_keys = np.frombuffer(join_keys, dtype="<u8").reshape(-1, 2).copy()
        result.join_kinds = np.frombuffer(join_kinds, dtype=np.uint8).copy()
    return result


def _entry_limit(chunk: Chunk) -> int:
    return max(ENTRY_FLOOR, ENTRY_PER_BYTE * (chunk.size + 1))


def _array(typecode: str, data: memoryview) -> array:
    values = array(typecode)
    values.frombytes(data)
    return values


def _write(root: int, result: ChunkResult, state: list[int]) -> None:
    name = entry_name(result.chunk)
    join = result.join_read
    blobs = [
        bytes(result.rows),
        bytes(result.scores),
        bytes(result.keys),
        np.ascontiguousarray(result.join_keys, dtype="<u8").tobytes() if join else b"",
        np.ascontiguousarray(result.join_kinds, dtype=np.uint8).tobytes() if join else b"",
    ]
    body = b"".join(blobs)
    header = _Header(
        name,
        state,
        result.lines,
        result.blank,
        result.objects,
        join,
        result.opens_document,
        result.closes_document,
        result.unreadable,
        [tuple(bad) for bad in result.skipped],  # type: ignore[misc]
        [len(blob) for blob in blobs],
        zlib.crc32(body),
    )
    encoded = msgspec.msgpack.encode(header)
    if len(MAGIC) + 8 + len(encoded) + len(body) > _entry_limit(result.chunk):
        return  # a reader would refuse it
    folder = _subfolder(root, name, create=True)
    if folder is None:
        return
    temp = f".{name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | OPEN_FLAGS, 0o600, dir_fd=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(encoded)) + encoded)
            f.write(body)
        os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=folder)
    finally:
        os.close(folder)
