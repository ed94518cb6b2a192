"""A one-line progress bar on a terminal, shown only for work that takes more than a moment."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .wording import human_bytes


class ProgressBar:
    """Callable ``(done, total)`` that redraws ``label [#####.....] 45%  1.2/2.7 GB`` in place.

    Draws nothing unless ``stream`` is a terminal and ``delay`` seconds have passed,
    so short runs and pipes stay clean.
    """

    def __init__(self, label: str, stream: TextIO | None = None, delay: float = 1.0, width: int = 30):
        self.label, self.stream, self.delay, self.width = label, stream or sys.stderr, delay, width
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.shown = False
        self.enabled = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.started < self.delay or (now - self.drawn_at < 0.1 and done < total):
            return
        self.drawn_at, self.shown = now, True
        share = done / total if total else 1.0
        filled = int(share * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {share:4.0%}  {human_bytes(done)}/{human_bytes(total)}")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
