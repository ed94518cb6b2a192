"""Running the command line in this process, as a fresh ``python -m bucketing`` would run it.

A subprocess costs ~0.7 s of interpreter start and imports per run; ``bucketing.cli.main`` in-process costs
what the work costs. What a fresh process would give the run, and what a run could leave behind for the next
test, is handled here:

* stdout and stderr are captured at the file-descriptor level (what C code and worker processes write
  included), through streams with the encoding and error handlers a process started from this one would
  have, and which are not terminals (no progress bar): the bytes a user piping the command would get;
* the working directory is ``cwd`` for the run, and on ``sys.path`` first (``python -m`` puts it there);
* warnings use Python's default filters and are printed to stderr, as a user sees them (pytest would
  otherwise collect them);
* ``SystemExit`` (argparse's exit 2, ``--help``'s 0) becomes the return code, and an uncaught exception a
  traceback on stderr and code 1, as the interpreter does;
* modules imported by ``--plugin NAME`` are forgotten afterwards, so the next run imports (and registers)
  them again; the metric registry itself is reset by the autouse fixture in conftest.py.
"""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

PROG = "python -m bucketing"  # what bucketing/__main__.py passes


def as_argument(value) -> str:
    """An argument as ``sys.argv`` would hold it (bytes and paths decoded as the interpreter decodes argv)."""
    return os.fsdecode(value) if isinstance(value, (str, bytes, os.PathLike)) else str(value)


def run_in_process(args, *, cwd: Path, script: str | None = None, text: bool = True) -> subprocess.CompletedProcess:
    argv = [as_argument(a) for a in args]
    before = set(sys.modules)
    with ExitStack() as stack:
        stack.enter_context(working_directory(Path(cwd)))
        streams = stack.enter_context(captured_output())
        stack.enter_context(default_warnings())
        code = _call(argv, script)
    _forget_plugins(argv, before)
    out, err = streams.out, streams.err
    if text:  # as subprocess.run(text=True) gives them: decoded, with universal newlines
        out, err = (io.TextIOWrapper(io.BytesIO(data)).read() for data in (out, err))
    return subprocess.CompletedProcess([PROG, *argv], code, out, err)


def _call(argv: list[str], script: str | None) -> int:
    from bucketing import cli

    try:
        if script is None:
            return cli.main(argv, prog=PROG)
        saved = sys.argv
        sys.argv = [script, *argv]
        try:
            runpy.run_path(script, run_name="__main__")
        finally:
            sys.argv = saved
        return 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)  # sys.exit("text"): printed, exit status 1
        return 1
    except Exception:  # noqa: BLE001  (what the interpreter does with an uncaught exception)
        traceback.print_exc(file=sys.stderr)
        return 1


@contextmanager
def working_directory(cwd: Path) -> Iterator[None]:
    saved, path = os.getcwd(), str(cwd.resolve())
    os.chdir(cwd)
    sys.path.insert(0, path)
    try:
        yield
    finally:
        os.chdir(saved)
        if path in sys.path:
            sys.path.remove(path)


class Captured:
    """What the run wrote to its stdout and its stderr (bytes), once the block is over."""

    out = err = b""


@contextmanager
def captured_output() -> Iterator[Captured]:
    """fds 1 and 2, and sys.stdout/sys.stderr over them, to temp files for the block: a process's two pipes."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    captured, files = Captured(), [tempfile.TemporaryFile(), tempfile.TemporaryFile()]  # noqa: SIM115  (closed below)
    saved_fds, saved_streams, streams = [os.dup(1), os.dup(2)], (sys.stdout, sys.stderr), []
    try:
        for fd, file in zip((1, 2), files):
            os.dup2(file.fileno(), fd)
        # a process's own streams: the same encoding and error handlers (the locale, PYTHONIOENCODING) as one
        # started from here would have; not a terminal; stderr line-buffered
        streams = [
            io.TextIOWrapper(
                open(1, "wb", closefd=False),  # noqa: SIM115  (closed in finally)
                encoding=sys.__stdout__.encoding,
                errors=sys.__stdout__.errors,
            ),
            io.TextIOWrapper(
                open(2, "wb", closefd=False),  # noqa: SIM115  (closed in finally)
                encoding=sys.__stderr__.encoding,
                errors=sys.__stderr__.errors,
                line_buffering=True,
            ),
        ]
        sys.stdout, sys.stderr = streams
        yield captured
    finally:
        for stream in streams:
            with contextlib.suppress(OSError, ValueError):
                stream.close()  # flushes; fds 1 and 2 stay open
        sys.stdout, sys.stderr = saved_streams
        for fd, saved in zip((1, 2), saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        for file in files:
            file.seek(0)
        captured.out, captured.err = (file.read() for file in files)
        for file in files:
            file.close()


@contextmanager
def default_warnings() -> Iterator[None]:
    """Python's default warning filters (not pytest's), and warnings printed on stderr (not collected by pytest)."""

    def show(message, category, filename, lineno, file=None, line=None):
        with suppress(OSError):
            (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.resetwarnings()  # then the interpreter's defaults, in its order (the first match applies)
        warnings.filterwarnings("default", category=DeprecationWarning, module="__main__", append=True)
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category, append=True)
        warnings.showwarning = show
        yield


def _forget_plugins(argv: list[str], before: set[str]) -> None:
    """Drop the modules ``--plugin NAME`` imported, so that the next run imports them (and registers) afresh."""
    names = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--plugin"]
    names += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--plugin=")]
    for name in names:
        if name.endswith(".py"):
            continue  # loaded from its file without sys.modules
        for module in set(sys.modules) - before:
            if module == name or module.startswith(name + "."):
                del sys.modules[module]
