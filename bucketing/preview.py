"""Read a few rollouts back from disk for a human to look at: prompt, responses, scores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dataset import Dataset
from .parquet_read import is_parquet, read_rows
from .sources import read_ranges

PROMPT_FIELDS = ("prompt", "input", "input_prompt", "question", "problem", "query", "content")
RESPONSE_FIELDS = ("responses", "completions", "outputs", "output", "output_response", "response", "completion")


MAX_LINES = 32  # of a grouped rollout's lines, the first this many are shown


@dataclass(frozen=True)
class Rollout:
    where: str  # file:line of its first line, and how many more lines it has
    scores: list[float]  # of the lines shown
    prompt: str | None  # None when no known prompt field was found
    responses: list[str] | None
    raw: str  # the lines shown, as text
    group: dict[str, Any] | None = None  # grouped rollouts: the value of each field grouped by ("@file": the file)


def read_line(dataset: Dataset, index: int) -> bytes:
    """The original bytes of good line ``index``."""
    return read_lines(dataset, [index])[0]


def read_lines(dataset: Dataset, indices: Sequence[int] | np.ndarray) -> list[bytes]:
    """The original bytes of good lines ``indices`` (into ``dataset.line_columns``): one pass per file,
    so a compressed file is decompressed once, not once per line. A parquet row is read back by its number,
    whole, as one JSON object."""
    columns = dataset.line_columns
    found: dict[int, bytearray] = {}
    file_ids = columns["file_id"][np.asarray(indices, dtype=np.int64)]
    for file_id in np.unique(file_ids).tolist():
        members = [int(i) for i, f in zip(indices, file_ids.tolist()) if f == file_id]
        members.sort(key=lambda i: columns["offset"][i])
        if is_parquet(dataset.files[file_id]):
            rows = read_rows(dataset.files[file_id], [int(columns["offset"][i]) for i in members])
            found.update((i, bytearray(rows[int(columns["offset"][i])])) for i in members)
            continue
        for k, data in read_ranges(
            dataset.files[file_id], [columns["offset"][i] for i in members], [columns["length"][i] for i in members]
        ):
            found.setdefault(members[k], bytearray()).extend(data)
    return [bytes(found.get(int(i), b"")) for i in indices]


def preview(dataset: Dataset, rows: Sequence[int], max_lines: int = MAX_LINES) -> list[Rollout]:
    """Rollouts ``rows`` as people read them: the prompt, then each response with its score.

    A grouped rollout's responses come from its lines (the first ``max_lines``), in input order.
    """
    starts = dataset.scores.starts
    result = []
    for row in rows:
        row = int(row)
        indices = dataset.lines_of(row)
        shown = indices[:max_lines]
        texts = [line.decode("utf-8", errors="replace") for line in read_lines(dataset, shown)]
        count = int(dataset.line_columns["n"][shown].sum())
        scores = dataset.scores.flat[starts[row] : starts[row] + count].tolist()
        values = [_parse(text) for text in texts]
        prompt = _prompt(values[0]) if isinstance(values[0], dict) else None
        responses = None
        if prompt is not None:
            responses = [r for v in values if isinstance(v, dict) for r in (_responses(v) or [])]
        first = int(indices[0])
        where = dataset.where(int(dataset.line_columns["file_id"][first]), int(dataset.line_columns["line"][first]))
        if len(indices) > 1:
            where += f" + {len(indices) - 1} more lines"
        group = None
        if dataset.layout.grouped:
            rel = dataset.files[int(dataset.line_columns["file_id"][first])].rel
            group = dataset.layout.group_values(values[0], rel)
        result.append(Rollout(where, scores, prompt, responses or None, "\n".join(texts), group))
    return result


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def sample_rows(ids: np.ndarray, bucket: int, count: int = 5, seed: int = 0) -> np.ndarray:
    """Up to ``count`` row indices of one bucket, spread over it, the same every time."""
    members = np.flatnonzero(ids == bucket)
    if len(members) <= count:
        return members
    return np.sort(np.random.default_rng(seed).choice(members, count, replace=False))


def _prompt(value: dict) -> str | None:
    for field in PROMPT_FIELDS:
        if field in value:
            return _text([m for m in value[field] if not _is_reply(m)] if _has_replies(value[field]) else value[field])
    return None


def _responses(value: dict) -> list[str] | None:
    for field in PROMPT_FIELDS:  # a conversation (NeMo-RL's content): the assistant's turns are the responses
        if field in value and _has_replies(value[field]) and not any(f in value for f in RESPONSE_FIELDS):
            return [_text(m["content"]) for m in value[field] if _is_reply(m)]
    for field in RESPONSE_FIELDS:
        if field not in value:
            continue
        found = value[field]
        if isinstance(found, dict) and isinstance(found.get("choices"), list):  # OpenAI-style
            found = found["choices"]
        if not isinstance(found, list):
            found = [found]
        return [_text(item) for item in found]
    return None


def _is_reply(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "assistant" and "content" in message


def _has_replies(value: Any) -> bool:
    """A list of chat messages that holds a user turn and an assistant turn."""
    return isinstance(value, list) and any(map(_is_reply, value)) and not all(map(_is_reply, value))


def _text(value: Any) -> str:
    """Readable text of a prompt or response: plain strings, chat messages, OpenAI choices."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "message" in value:
            return _text(value["message"])
        if "content" in value:
            role = value.get("role")
            return f"{role}: {_text(value['content'])}" if role else _text(value["content"])
        if "text" in value:
            return _text(value["text"])
    if isinstance(value, list):
        return "\n\n".join(_text(item) for item in value)
    return json.dumps(value, ensure_ascii=False)
