"""Read a few rollouts back from disk for a human to look at: prompt, responses, scores."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .load import Dataset
from .sources import read_range

PROMPT_FIELDS = ("prompt", "input", "input_prompt", "question", "problem", "query", "content")
RESPONSE_FIELDS = ("responses", "completions", "outputs", "output", "output_response", "response", "completion")


@dataclass(frozen=True)
class Rollout:
    where: str  # file:line
    scores: list[float]
    prompt: str | None  # None when no known prompt field was found
    responses: list[str] | None
    raw: str  # the whole line as text


def read_line(dataset: Dataset, row: int) -> bytes:
    """The original bytes of rollout ``row`` (an index into ``dataset.rows``)."""
    file_id, offset, length = (int(dataset.rows[c].iat[row]) for c in ("file_id", "offset", "length"))
    return read_range(dataset.files[file_id], offset, length)


def preview(dataset: Dataset, rows: Sequence[int]) -> list[Rollout]:
    starts = dataset.scores.starts
    result = []
    for row in rows:
        row = int(row)
        text = read_line(dataset, row).decode("utf-8", errors="replace")
        count = int(dataset.scores.counts[row])
        scores = dataset.scores.flat[starts[row] : starts[row] + count].tolist()
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        prompt, responses = (_prompt(value), _responses(value)) if isinstance(value, dict) else (None, None)
        where = f"{dataset.files[int(dataset.rows['file_id'].iat[row])].rel}:{int(dataset.rows['line'].iat[row])}"
        result.append(Rollout(where, scores, prompt, responses, text))
    return result


def sample_rows(ids: np.ndarray, bucket: int, count: int = 5, seed: int = 0) -> np.ndarray:
    """Up to ``count`` row indices of one bucket, spread over it, the same every time."""
    members = np.flatnonzero(ids == bucket)
    if len(members) <= count:
        return members
    return np.sort(np.random.default_rng(seed).choice(members, count, replace=False))


def _prompt(value: dict) -> str | None:
    for field in PROMPT_FIELDS:
        if field in value:
            return _text(value[field])
    return None


def _responses(value: dict) -> list[str] | None:
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
