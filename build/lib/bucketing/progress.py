"""A one-line progress bar on a terminal, shown only for work that takes more than a moment."""

from __future__ import annotations

import sys
import time
from typing import TextIO


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


def human_bytes(count: float) -> str:
    """``1234567`` -> ``1.2 MB``."""
    if count < 1000:
        return f"{count:.0f} B"
    for unit in ("KB", "MB", "GB", "TB"):
        count /= 1000
        if count < 1000 or unit == "TB":
            break
    return f"{count:.1f} {unit}"


def counted(count: int, noun: str, thousands: str = "", verb: tuple[str, str] | None = None) -> str:
    """``(1, "rollout")`` -> ``1 rollout``; ``(3, "rollout")`` -> ``3 rollouts``; ``thousands=","``: ``1,200 rollouts``;
    ``verb=("is", "are")``: ``1 rollout is``, ``3 rollouts are``."""
    text = f"{count:{thousands}} {noun}{'' if count == 1 else 's'}"
    return f"{text} {verb[count != 1]}" if verb else text
