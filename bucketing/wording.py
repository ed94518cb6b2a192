"""Numbers in plain English for messages: ``3 rollouts``, ``1 rollout is``, ``1.2 MB``."""

from __future__ import annotations


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
