"""Copy lines' original bytes from the input files into the output files, on every core.

Each output is the concatenation of its lines, each ending in ``\\n``, so where every line
goes is known before anything is written, and the copying can run in any order, in
parallel.  The line copies, sorted by where they are in the input, are cut into slices;
a thread takes a slice, reads each 4 MiB window of input once and writes the window's
lines to every output they go to, with one ``pwritev`` per run of adjacent positions in
an output.  Lines longer than a quarter window are copied kernel-side (``copy_file_range``).

Why not one ``copy_file_range`` per line: lines of different buckets interleave, so
that is one system call per line, and at ~20 KB a line it costs about twice the kernel
time of reading a window and scattering it (2 GB to three buckets: 0.4 s against
1.0 s on two cores).
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import numpy as np

from .errors import BucketingError

WINDOW = 4 << 20  # input bytes read at a time (larger windows fall out of the CPU's cache before they are written)
LONG_LINE = WINDOW // 4  # a line at least this long is copied on its own, kernel-side
SLICE = 32 << 20  # bytes written per task: tasks balance the threads and let progress and Ctrl-C through
NEWLINE = b"\n"
COPY_FIELDS = ("file_id", "offset", "length", "clean", "output", "position")


def copy_list(pieces: list[dict]) -> tuple[dict[str, np.ndarray], list[int]]:
    """Every line copy, in input order: from ``(file_id, offset, length, clean)`` to ``(output, position)``.

    ``pieces[i]`` holds output i's lines in the order they are written (arrays file_id,
    offset, length, clean); a line is ``length`` bytes plus its ``\\n`` (copied when
    ``clean``, else written).  Also returns each output's size in bytes.
    """
    columns: dict[str, list[np.ndarray]] = {key: [] for key in COPY_FIELDS}
    sizes = []
    for index, piece in enumerate(pieces):
        written = piece["length"].astype(np.int64) + 1
        ends = np.cumsum(written)
        sizes.append(int(ends[-1]) if len(ends) else 0)
        for key in ("file_id", "offset", "length", "clean"):
            columns[key].append(piece[key].astype(np.int64))
        columns["output"].append(np.full(len(written), index, dtype=np.int64))
        columns["position"].append(ends - written)
    copies = {key: np.concatenate(parts) if parts else np.zeros(0, np.int64) for key, parts in columns.items()}
    order = np.lexsort((copies["output"], copies["offset"], copies["file_id"]))
    return {key: column[order] for key, column in copies.items()}, sizes


def windows(copies: dict[str, np.ndarray]) -> np.ndarray:
    """Start of each group of copies read together: same file and 4 MiB window, or one long line alone."""
    count = len(copies["offset"])
    long = copies["length"] >= LONG_LINE
    window = copies["offset"] // WINDOW
    starts = np.ones(count, dtype=bool)
    starts[1:] = (copies["file_id"][1:] != copies["file_id"][:-1]) | (window[1:] != window[:-1]) | long[1:] | long[:-1]
    return np.flatnonzero(starts)


class Copier:
    """Copies the lines of a task's windows (``copier(first, last)``, from any number of threads at once).

    ``open_source(file_id)``: a context giving an fd of that input's bytes, open only while a window is copied
    (so any number of inputs works under the open-file limit); ``targets``: an fd per output, preallocated or not.
    ``advance(bytes)`` is called as lines are written; once ``stop`` is set, tasks end at their next window.
    """

    def __init__(
        self,
        copies: dict[str, np.ndarray],
        open_source: Callable[[int], AbstractContextManager[int]],
        targets: list[int],
        advance: Callable[[int], None],
        stop: threading.Event,
    ):
        self.copies, self.open_source, self.targets = copies, open_source, targets
        self.starts = windows(copies)
        self.ends = np.append(self.starts[1:], len(copies["offset"]))  # each window's copies: [start, end)
        self.advance, self.stop = advance, stop
        self.buffers = threading.local()  # one read buffer per thread

    def tasks(self) -> list[tuple[int, int]]:
        """The windows (:func:`windows`) cut into ranges ``[first, last)`` that write about SLICE bytes each."""
        written = self.copies["length"] + 1
        before = (np.cumsum(written) - written)[self.starts]  # bytes written before each window
        cuts = np.flatnonzero(np.diff(before // SLICE, prepend=-1))
        bounds = [*cuts.tolist(), len(self.starts)]
        return list(zip(bounds[:-1], bounds[1:]))

    def __call__(self, first: int, last: int) -> None:
        """Copy the lines of windows ``[first, last)``."""
        c = self.copies
        for a, b in zip(self.starts[first:last].tolist(), self.ends[first:last].tolist()):
            if self.stop.is_set():
                return
            with self.open_source(int(c["file_id"][a])) as source:
                if c["length"][a] >= LONG_LINE:
                    self._copy_long(source, a)
                else:
                    self._scatter(source, a, b)

    def _copy_long(self, source: int, row: int) -> None:
        c = self.copies
        offset, length, clean = int(c["offset"][row]), int(c["length"][row]), bool(c["clean"][row])
        target, position = self.targets[int(c["output"][row])], int(c["position"][row])
        kernel_copy(source, target, offset, length + clean, position)
        if not clean:
            pwrite_all(target, [NEWLINE], position + length)
        self.advance(length + 1)

    def _scatter(self, source: int, a: int, b: int) -> None:
        """Read the window of copies ``[a, b)`` once; write each run of adjacent output positions with one pwritev."""
        c = self.copies
        order = a + np.argsort(c["output"][a:b], kind="stable")  # by output, in input order within one
        offset, length, clean = c["offset"][order], c["length"][order], c["clean"][order]
        output, position = c["output"][order], c["position"][order]
        end = offset + length + clean  # a clean line's "\n" is copied with it
        low = int(offset.min())
        view = self._read(source, low, int(end.max()) - low)
        # a new pwritev where the output or the position jumps; a new piece of input also where the input jumps
        new_run = np.ones(len(order), dtype=bool)
        new_run[1:] = (output[1:] != output[:-1]) | (position[1:] != position[:-1] + length[:-1] + 1)
        new_piece = new_run.copy()
        new_piece[1:] |= (clean[:-1] == 0) | (offset[1:] != end[:-1])
        firsts = np.flatnonzero(new_piece)
        lasts = np.append(firsts[1:], len(order)) - 1
        pieces = zip((offset[firsts] - low).tolist(), (end[lasts] - low).tolist(), (clean[lasts] == 0).tolist())
        buffers = [[view[start:stop], NEWLINE] if newline else [view[start:stop]] for start, stop, newline in pieces]
        runs = np.flatnonzero(new_run[firsts])  # the first piece of each run
        targets, positions = output[firsts[runs]].tolist(), position[firsts[runs]].tolist()
        for target, at, first, last in zip(targets, positions, runs.tolist(), [*runs[1:].tolist(), len(firsts)]):
            pwrite_all(self.targets[target], [buffer for piece in buffers[first:last] for buffer in piece], at)
        self.advance(int(length.sum()) + len(order))

    def _read(self, source: int, offset: int, count: int) -> memoryview:
        buffer = getattr(self.buffers, "view", None)
        if buffer is None or len(buffer) < count:
            buffer = self.buffers.view = memoryview(bytearray(max(count, WINDOW + LONG_LINE)))
        done = 0
        while done < count:
            got = os.preadv(source, [buffer[done:count]], offset + done)
            if got == 0:
                raise _shrunk()
            done += got
        return buffer[:count]


def pread_pieces(fd: int, offset: int, count: int, piece: int = 1 << 20) -> Iterator[bytes]:
    """``count`` bytes of ``fd`` from ``offset``, in pieces of at most ``piece`` bytes."""
    while count > 0:
        data = os.pread(fd, min(count, piece), offset)
        if not data:
            raise _shrunk()
        yield data
        offset, count = offset + len(data), count - len(data)


class Shrunk(BucketingError):
    """An input file ended before a line that was read from it."""


def _shrunk() -> Shrunk:
    return Shrunk("an input file got shorter while it was copied; load the input again")


_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024


def pwrite_all(fd: int, buffers: list, position: int) -> None:
    """Write ``buffers`` one after another at ``position``, whatever the kernel takes per call."""
    index = 0
    while index < len(buffers):
        batch = buffers[index : index + _IOV_MAX]
        written = os.pwritev(fd, batch, position)
        position += written
        for buffer in batch:  # skip what was written; a partly written buffer keeps its rest
            if written < len(buffer):
                buffers[index] = memoryview(buffer)[written:]
                break
            written -= len(buffer)
            index += 1


# copy_file_range can't do this copy (across file systems on old kernels, unsupported file systems): copy through memory
_CANNOT_COPY_IN_KERNEL = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF, errno.ETXTBSY}


def kernel_copy(source: int, target: int, offset: int, count: int, position: int) -> None:
    """Copy ``count`` bytes of ``source`` at ``offset`` to ``target`` at ``position``."""
    while count > 0:
        try:
            copied = os.copy_file_range(source, target, count, offset, position)
        except OSError as error:
            if error.errno not in _CANNOT_COPY_IN_KERNEL:
                raise  # a full disk or an I/O error: nothing else will do better
            data = os.pread(source, min(count, 1 << 20), offset)
            pwrite_all(target, [data], position)
            copied = len(data)
        if copied == 0:
            raise _shrunk()
        offset, position, count = offset + copied, position + copied, count - copied


def _libc(name: str, argtypes: list):
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):  # not Linux
        return None
    function.argtypes = argtypes
    return function


_fallocate = _libc("fallocate", [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64])
_sync_file_range = _libc("sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint])
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's dirty pages to the disk now, without waiting for them:
    the fsync at the end then finds most of them written."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # an error only means no head start


def preallocate(fd: int, size: int) -> None:
    """Reserve a new file's blocks up front: ext4 then takes scattered writes about twice as fast.

    Not ``os.posix_fallocate``: where the file system can't, glibc writes zeros instead.
    A full disk raises ENOSPC now, before any copying.
    """
    if not size or _fallocate is None:
        return
    if _fallocate(fd, 0, 0, size) != 0:
        code = ctypes.get_errno()
        if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise OSError(code, os.strerror(code))
        # anything else (EOPNOTSUPP, EINVAL ...): the writes allocate as they go
