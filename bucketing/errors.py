"""Errors the engine raises for the user to read: one line, no traceback."""

from __future__ import annotations

import argparse
import os
from typing import NoReturn


class BucketingError(Exception):
    """A problem with the input, the flags or the output that the user can fix.

    The CLI prints ``str(error)`` as one line and exits with ``exit_code``.
    """

    exit_code = 2


def bad_line_text(where: str, reason: str, detail: str = "") -> str:
    """``file:line: reason (detail)``, as every message about a bad line reads."""
    return f"{where}: {reason}" + (f" ({detail})" if detail else "")


class BadLineError(BucketingError):
    """A bad input line under ``--strict``."""

    exit_code = 1

    def __init__(self, where: str, reason: str, detail: str = ""):
        self.where, self.reason, self.detail = where, reason, detail
        super().__init__(
            f"{bad_line_text(where, reason, detail)}; fix or remove the line, or drop --strict to skip bad lines"
        )


def display(path: str | os.PathLike) -> str:
    """A path made safe to print on one line: control characters and undecodable bytes escaped."""
    text = os.fsdecode(path)
    if text.isprintable():
        return text
    return repr(text)[1:-1]  # repr escapes \n, \t, \x.. and surrogate-escaped bytes


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``prog: error: … (see --help)``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
