"""Find input files and read them as blocks of whole lines, split on ``\\n`` only.

Nothing here parses JSON: this module turns a directory into a list of
:class:`InputFile` and a file (or a byte range of one) into :class:`Block`
objects that each hold complete lines, in a bounded buffer.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from .errors import BucketingError, display  # display: re-exported, callers import it from here

SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet")  # parquet: see bucketing.parquet_read
WINDOW = 4 << 20  # bytes read at a time; a longer line grows the buffer up to max_line_bytes
DEFAULT_MAX_LINE_BYTES = 64 << 20
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, dropped at the start of a file
# An open input, unbuffered or decompressing: a file, gzip.GzipFile, the zstd reader, pyarrow's stream (untyped).
Stream = io.RawIOBase | io.BufferedIOBase


@dataclass(frozen=True)
class InputFile:
    """One input file as it was when it was found."""

    path: Path  # as found under the input root (not resolved); for a URI, the path part
    rel: str  # path relative to the input root, for messages and the manifest
    size: int
    mtime_ns: int
    uri: str | None = None  # set for files read through pyarrow's file systems (s3://, gs://, file://)
    ident: tuple[int, int] | None = None  # (device, inode) when found: every later open checks it is the same file

    @property
    def compression(self) -> str | None:
        name = self.path.name
        return "gz" if name.endswith(".gz") else "zst" if name.endswith(".zst") else None

    @property
    def local(self) -> bool:
        """A plain local file: readable at any offset with ``os.pread``."""
        return self.uri is None and self.compression is None


def is_uri(path: str | os.PathLike) -> TypeGuard[str]:
    return isinstance(path, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) is not None


def natural_key(text: str) -> list:
    """Sort key that puts ``bucket_2`` before ``bucket_10``."""
    # isdecimal, not isdigit: "²" is a digit that int() refuses
    return [(0, int(part), "") if part.isdecimal() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def find_inputs(
    root: str | os.PathLike, roots: list[Path] | None = None, suffixes: tuple[str, ...] = SUFFIXES
) -> tuple[list[InputFile], list[str]]:
    """All ``*.jsonl[.gz|.zst]`` and ``*.parquet`` files (or those ending in ``suffixes``) under ``root``,
    recursively, in natural order.

    Returns the files and warnings about what was passed over (loops, FIFOs, dangling links,
    unreadable files, the same file reached twice).  With ``roots`` (the app's allowed folders,
    resolved), a file or folder whose real path lies outside all of them is passed over too,
    with a warning naming it; each file's real path is checked on the file opened, so a link
    swapped in meanwhile is caught.
    """
    if is_uri(root):
        if roots is not None:  # file:// would reach any local file, s3:// any bucket: not inside a folder
            raise BucketingError(f"input {display(root)} is a URI; only folders inside the allowed folders can be read")
        return _find_uri_inputs(root), []
    root = Path(root)
    try:
        top = root.stat()
    except OSError as exc:
        raise BucketingError(f"input {display(root)} can't be read: {exc.strerror}") from None
    warnings: list[str] = []
    if stat.S_ISREG(top.st_mode):
        if suffixes == SUFFIXES and not root.name.endswith(SUFFIXES):
            raise BucketingError(f"input {display(root)} is not a .jsonl, .jsonl.gz, .jsonl.zst or .parquet file")
        found = _checked_file(root, root.name, roots)
        if isinstance(found, str):
            raise BucketingError(f"input {found}")
        return [found], warnings
    if not stat.S_ISDIR(top.st_mode):
        raise BucketingError(f"input {display(root)} is neither a directory nor a file")
    return _walk(root, (top.st_dev, top.st_ino), roots, warnings, suffixes), warnings


def leave_out(files: list[InputFile], patterns: list[str] | tuple[str, ...]) -> tuple[list[InputFile], list[InputFile]]:
    """``files`` split into those kept and those an exclude glob matches (see :func:`excluded`)."""
    globs = check_globs(patterns)
    kept: list[InputFile] = []
    left: list[InputFile] = []
    for file in files:
        (left if excluded(file.rel, globs) else kept).append(file)
    return kept, left


def check_globs(patterns: list[str] | tuple[str, ...]) -> list[str]:
    """The exclude globs, each without a leading ``./`` or a trailing ``/``; an empty one is refused."""
    globs = []
    for pattern in patterns:
        glob = pattern.strip().removeprefix("./").rstrip("/")
        if not glob:
            raise BucketingError(
                f"exclude glob {display(repr(pattern))} matches no file; give a glob such as "
                "'drafts/*' or '*.tmp.jsonl'"
            )
        globs.append(glob)
    return globs


def excluded(rel: str, globs: list[str]) -> bool:
    """Whether a glob matches the file's path relative to the input, or one of the folders on the way.

    fnmatch rules, case-sensitive: ``*`` matches any characters, ``/`` included (``*.tmp.jsonl`` matches at any
    depth); a glob that matches a folder (``drafts``) leaves out everything below it.
    """
    parts = rel.split("/")
    candidates = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(candidate, glob) for candidate in candidates for glob in globs)


OUTSIDE = "a link to a place outside the allowed folders"


def _walk(
    root: Path, top: tuple[int, int], roots: list[Path] | None, warnings: list[str], suffixes: tuple[str, ...]
) -> list[InputFile]:
    """The input files under folder ``root``, depth first in natural order; iterative, so any depth will do."""
    found: list[InputFile] = []
    seen_files: set[tuple[int, int]] = set()
    seen_dirs = {top}
    listings = [_listing(root, "", warnings)]  # a stack: the folder being listed is the last
    while listings:
        rel, entries = listings[-1]
        entry = next(entries, None)
        if entry is None:
            listings.pop()
            continue
        path, name = Path(entry.path), rel + entry.name
        try:
            info = os.stat(path)  # follows links
        except OSError as exc:
            if entry.name.endswith(suffixes) or _is_link(entry) or _is_dir(entry):
                why = "dangling or looping link" if _is_link(entry) else exc.strerror
                warnings.append(f"skipped {display(name)}: {why}")
            continue
        ident = (info.st_dev, info.st_ino)
        if stat.S_ISDIR(info.st_mode):
            if ident in seen_dirs:
                warnings.append(f"skipped {display(name)}: directory already visited (link loop?)")
            elif roots is not None and _is_link(entry) and not inside(path.resolve(), roots):
                warnings.append(f"skipped {display(name)}: {OUTSIDE}")
            else:
                seen_dirs.add(ident)
                listings.append(_listing(path, name + "/", warnings))
        elif entry.name.endswith(suffixes):
            file = _checked_file(path, name, roots)
            if isinstance(file, str):
                warnings.append(f"skipped {file}")
            elif file.ident in seen_files:
                warnings.append(f"skipped {display(name)}: same file as one already read")
            else:
                assert file.ident is not None  # _checked_file gives every file it opened its identity
                seen_files.add(file.ident)
                found.append(file)
    return found


def _listing(directory: Path, rel: str, warnings: list[str]) -> tuple[str, Iterator[os.DirEntry]]:
    """A folder's entries in natural order (none, with a warning, when it can't be listed)."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda e: natural_key(e.name))
    except OSError as exc:
        warnings.append(f"skipped directory {display(rel.rstrip('/') or directory)}: {exc.strerror}")
        entries = []
    return rel, iter(entries)


def _is_link(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def inside(path: Path, roots: list[Path]) -> bool:
    """Whether real path ``path`` is one of ``roots`` or lies below one."""
    return any(path == root or root in path.parents for root in roots)


def _checked_file(path: Path, name: str, roots: list[Path] | None) -> InputFile | str:
    """The file at ``path`` as found, opened once to learn what it really is; or why it is passed over.

    Its identity (device, inode) is kept: every later open checks it is still the same file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        return f"{display(name)}: {exc.strerror}"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return f"{display(name)}: not a regular file (FIFO, socket or device)"
        if roots is not None:
            real = fd_path(fd)
            if real is None or not inside(real, roots):
                return f"{display(name)}: {OUTSIDE}"
    finally:
        os.close(fd)
    return InputFile(path, name, info.st_size, info.st_mtime_ns, ident=(info.st_dev, info.st_ino))


def fd_path(fd: int) -> Path | None:
    """The real path of an open file (Linux's /proc; None where there is none)."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return Path(target) if target.startswith("/") else None


def _find_uri_inputs(root: str) -> list[InputFile]:
    """The input files under a URI (a file or a folder, recursively), through pyarrow's file systems."""
    import pyarrow
    import pyarrow.fs as pafs

    try:
        fs, base = pafs.FileSystem.from_uri(root)
        top = fs.get_file_info(base)
        if top.type == pafs.FileType.File:
            infos, prefix = [top], base.rsplit("/", 1)[0] + "/"
        elif top.type == pafs.FileType.Directory:
            infos, prefix = fs.get_file_info(pafs.FileSelector(base, recursive=True)), base.rstrip("/") + "/"
        else:
            raise BucketingError(f"input {display(root)} can't be read: not found")
    except (OSError, ValueError, pyarrow.ArrowException) as exc:
        raise BucketingError(f"input {display(root)} can't be read: {exc}") from None
    scheme = root.split("://", 1)[0]
    found = [
        InputFile(
            Path(info.path),
            info.path.removeprefix(prefix),
            info.size,
            info.mtime_ns or 0,
            uri=f"{scheme}://{info.path}",
        )
        for info in infos
        if info.type == pafs.FileType.File and info.base_name.endswith(SUFFIXES)
    ]
    if top.type == pafs.FileType.File and not found:
        raise BucketingError(f"input {display(root)} is not a .jsonl, .jsonl.gz, .jsonl.zst or .parquet file")
    return sorted(found, key=lambda f: natural_key(f.rel))


def open_input(file: InputFile) -> int:
    """An fd of a local input file, checked to be the very file that was found (not a link swapped in since)."""
    fd = os.open(file.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    info = os.fstat(fd)
    if file.ident is not None and (info.st_dev, info.st_ino) != file.ident:
        os.close(fd)
        raise BucketingError(f"{display(file.rel)} is not the file that was loaded any more; load the input again")
    return fd


def _open_raw(file: InputFile) -> Stream:
    """The file's stored bytes, local or through pyarrow's file system for its URI."""
    if file.uri is None:
        return open(open_input(file), "rb", buffering=0)
    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(file.uri)
    return fs.open_input_file(path)


def open_stream(file: InputFile) -> Stream:
    """The file's decompressed bytes as an unbuffered binary stream with ``readinto``."""
    raw = _open_raw(file)
    if file.compression == "gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if file.compression == "zst":
        try:
            import zstandard
        except ImportError:
            raw.close()
            raise BucketingError(
                f"{display(file.rel)} is zstd-compressed: install the 'zstandard' package to read it"
            ) from None
        return _ZstdReader(raw, zstandard)
    return raw


class _ZstdReader(io.RawIOBase):
    """The frames of a zstd file one after another; EOFError when the file ends inside a frame.

    (zstandard's own stream reader stops after the first frame, and returns a
    cut-off frame's data as if it were complete.)
    """

    def __init__(self, raw: Stream, zstandard):
        self.raw, self.zstandard = raw, zstandard
        self.frame = zstandard.ZstdDecompressor().decompressobj()
        self.in_frame = False
        self.pending, self.used = b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while self.used == len(self.pending):
            compressed = self.raw.read(WINDOW)
            if not compressed:
                if self.in_frame:
                    raise EOFError("the file ends in the middle of a zstd frame")
                return 0
            self.pending, self.used = self._decompress(compressed), 0
        count = min(len(target), len(self.pending) - self.used)
        target[:count] = self.pending[self.used : self.used + count]
        self.used += count
        return count

    def _decompress(self, compressed: bytes) -> bytes:
        parts = []
        while compressed:
            self.in_frame = True
            parts.append(self.frame.decompress(compressed))
            compressed = b""
            if self.frame.eof:  # a frame ended: what follows is the next one
                compressed = self.frame.unused_data
                self.frame = self.zstandard.ZstdDecompressor().decompressobj()
                self.in_frame = False
        return b"".join(parts)

    def close(self) -> None:
        self.raw.close()
        super().close()


def read_ranges(file: InputFile, offsets, lengths, piece: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """``(i, data)`` pieces of at most ``piece`` bytes of each range ``i``, in order; offsets must ascend.

    One pass over the file (a plain file seeks over what lies between ranges, a compressed one
    reads through it); a range cut short by the file raises :class:`BucketingError`.
    """
    with open_stream(file) as stream:
        position = 0
        for i, (offset, length) in enumerate(zip(offsets, lengths)):
            if file.compression is None and position != offset:
                stream.seek(int(offset))
                position = int(offset)
            while position < offset:  # what lies between: other lines, blank lines, "\r", a BOM
                skipped = len(stream.read(min(int(offset) - position, piece)))
                if not skipped:
                    break
                position += skipped
            left = int(length)
            if not left:
                yield i, b""
            while left > 0:
                data = stream.read(min(left, piece))
                if not data:
                    raise BucketingError(f"{display(file.rel)} got shorter since it was read; load it again")
                yield i, data
                left -= len(data)
                position += len(data)


@dataclass
class Block:
    """Whole lines ``buf[lo:hi]`` starting at byte ``offset`` of the (decompressed) file.

    ``buf`` is reused for the next block: use it before asking for the next one.
    Only the block at the end of the file may end without ``\\n``.
    A ``long_line`` block stands for one line longer than the limit: its bytes
    were not kept, ``hi - lo`` is not its length, ``long_line`` is.
    """

    buf: bytearray
    lo: int
    hi: int
    offset: int
    at_eof: bool = False
    long_line: int = 0  # length of an over-long line (without BOM, \r, \n), else 0; offset is where it starts
    long_line_ends_with_newline: bool = False
    long_line_clean: bool = False  # followed by exactly "\n"


def line_start_at_or_after(file: InputFile, position: int) -> int:
    """Offset of the first line that starts at or after ``position`` (plain files only)."""
    if position <= 0:
        return 0
    with _open_raw(file) as f:
        f.seek(position - 1)
        offset = position - 1
        while chunk := f.read(1 << 20):
            nl = chunk.find(b"\n")
            if nl >= 0:
                return offset + nl + 1
            offset += len(chunk)
    return offset


def read_blocks(
    file: InputFile,
    start: int = 0,
    stop: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Block]:
    """Blocks of the lines that start in ``[start, stop)``; ``start`` must be a line start.

    Memory stays within about ``max(WINDOW, max_line_bytes)``: a longer line
    is measured while it is read and reported as a ``long_line`` block.
    A file that can't be read or decompressed raises :class:`BucketingError`.
    """
    try:
        yield from _read_blocks(file, start, stop, max_line_bytes)
    except (OSError, EOFError, zlib.error) as error:
        raise _damaged(file, error) from None
    except Exception as error:  # zstandard.ZstdError, without importing zstandard here
        if type(error).__name__ != "ZstdError":
            raise
        raise _damaged(file, error) from None


def _damaged(file: InputFile, error: Exception) -> BucketingError:
    what = "decompressed" if file.compression else "read"
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return BucketingError(f"{display(file.rel)} can't be {what} ({reason}); repair or remove it")


def _read_blocks(file: InputFile, start: int, stop: int | None, max_line_bytes: int) -> Iterator[Block]:
    # room for the longest allowed line plus a BOM, a \r and its \n
    largest = max_line_bytes + len(BOM) + 2
    with open_stream(file) as stream:
        if start:
            stream.seek(start)
        buf = bytearray(WINDOW)
        have, offset, eof = 0, start, False  # offset = file position of buf[0]
        while True:
            if not eof and have < len(buf):
                n = stream.readinto(memoryview(buf)[have:])
                if not n:
                    eof = True
                have += n or 0
                if not eof and have < len(buf):
                    continue  # short read: fill the window first
            end = buf.rfind(b"\n", 0, have) + 1  # end of the last whole line
            if stop is not None and offset + end > stop:
                cut = buf.find(b"\n", max(stop - offset - 1, 0), have) + 1
                if cut:
                    yield Block(buf, 0, cut, offset)
                    return
            if end == 0:
                if eof:
                    if have:
                        yield Block(buf, 0, have, offset, at_eof=True)
                    return
                if len(buf) < largest:
                    buf = buf + bytes(min(len(buf), largest - len(buf)))
                    continue
                block, offset, rest = _skip_long_line(stream, buf, have, offset)
                yield block
                buf = bytearray(WINDOW)
                buf[: len(rest)] = rest
                have, eof = len(rest), not block.long_line_ends_with_newline
                if stop is not None and offset >= stop:
                    return
                continue
            if eof and end == have:
                yield Block(buf, 0, end, offset, at_eof=True)
                return
            yield Block(buf, 0, end, offset)
            if stop is not None and offset + end >= stop:
                return
            kept = have - end
            buf[:kept] = buf[end:have]
            offset, have = offset + end, kept


def _skip_long_line(stream: Stream, buf: bytearray, have: int, offset: int) -> tuple[Block, int, bytes]:
    """Read past an over-long line that starts ``buf``; its block, the offset after it, and the bytes after it."""
    bom = len(BOM) if offset == 0 and buf.startswith(BOM) else 0
    length, last, ends_nl, rest = have, buf[have - 1], False, b""
    while chunk := stream.read(WINDOW):
        nl = chunk.find(b"\n")
        if nl >= 0:
            if nl:
                last = chunk[nl - 1]
            length, ends_nl, rest = length + nl, True, chunk[nl + 1 :]
            break
        length, last = length + len(chunk), chunk[-1]
    cr = 1 if ends_nl and last == 13 else 0  # a CRLF line's \r is not part of it
    block = Block(
        buf,
        0,
        0,
        offset + bom,
        long_line=length - bom - cr,
        long_line_ends_with_newline=ends_nl,
        long_line_clean=ends_nl and not cr,
    )
    return block, offset + length + ends_nl, rest
