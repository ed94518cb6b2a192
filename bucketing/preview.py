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
# Where a rollout's ground truth is, first found (verl's dumps: gts; verl's data: reward_model.ground_truth).
TRUTH_FIELDS = ("gts", "reward_model.ground_truth", "answer", "label", "ground_truth", "target")


MAX_LINES = 32  # of a grouped rollout's lines, the first this many are shown


@dataclass(frozen=True)
class Rollout:
    where: str  # file:line of its first line, and how many more lines it has
    scores: list[float]  # of the lines shown
    prompt: str | None  # None when no known prompt field was found
    responses: list[str] | None
    raw: str  # the lines shown, as text
    group: dict[str, Any] | None = None  # grouped rollouts: the value of each field grouped by ("@file": the file)
    messages: list[tuple[str, str]] | None = None  # the prompt as chat messages, (role, text) each, when it is a list
    truth: tuple[str, str] | None = None  # (field, value as text) of the ground truth, when the first line has it


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


def preview(
    dataset: Dataset, rows: Sequence[int], max_lines: int = MAX_LINES, truth_field: str | None = None
) -> list[Rollout]:
    """Rollouts ``rows`` as people read them: the prompt, then each response with its score.

    A grouped rollout's responses come from its lines (the first ``max_lines``), in input order. Its ground
    truth is ``truth_field`` (a dotted path) of its first line, or the first of TRUTH_FIELDS it has.
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
        first_value = values[0] if isinstance(values[0], dict) else {}
        result.append(
            Rollout(
                where,
                scores,
                prompt,
                responses or None,
                "\n".join(texts),
                group,
                messages=chat_messages(first_value),
                truth=ground_truth(first_value, truth_field),
            )
        )
    return result


def chat_messages(value: dict) -> list[tuple[str, str]] | None:
    """The prompt as (role, text) messages when it is a list of ``{role, content}`` (the assistant's turns of a
    conversation are responses, left out as in the prompt's text); None for any other prompt."""
    found = _prompt_value(value)
    if not isinstance(found, list) or not found:
        return None
    if not all(isinstance(m, dict) and "role" in m and "content" in m for m in found):
        return None
    return [(_text(m["role"]), _text(m["content"])) for m in found]


def ground_truth(value: dict, field: str | None = None) -> tuple[str, str] | None:
    """``(field, text)`` of a rollout's ground truth: the dotted path ``field`` when given, else the first of
    TRUTH_FIELDS that ``value`` has; a list or dict as compact JSON, a string as it is. None when absent."""
    for path in [field] if field else TRUTH_FIELDS:
        found = lookup(value, path)
        if found is not _MISSING:
            return path, found if isinstance(found, str) else _compact(found)
    return None


_MISSING = object()


def lookup(value: Any, path: str) -> Any:
    """The value at a dotted path (``reward_model.ground_truth``; a number picks a list's item); a key that has a
    dot itself (``mean/reward.x``) is found too. ``_MISSING`` when there is none."""
    if isinstance(value, dict) and path in value:
        return value[path]
    head, dot, rest = path.partition(".")
    while dot:
        if isinstance(value, dict) and head in value:
            found = lookup(value[head], rest)
            if found is not _MISSING:
                return found
        elif isinstance(value, list) and head.isdigit() and int(head) < len(value):
            found = lookup(value[int(head)], rest)
            if found is not _MISSING:
                return found
        more, dot, rest = rest.partition(".")  # try the key with a dot in it: "a.b" then ".c"
        head = f"{head}.{more}"
    if isinstance(value, dict) and head in value:
        return value[head]
    if isinstance(value, list) and head.isdigit() and int(head) < len(value):
        return value[int(head)]
    return _MISSING


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)


def search_texts(value: Any) -> list[str]:
    """The texts a search looks in, of one parsed line: its prompt's and its responses' strings as the preview
    shows them (a chat message's content, not its role); a line with no known prompt field: every string value
    in it (not the keys). Every text is one JSON string of the line, whole (see bucketing.search)."""
    if not isinstance(value, dict):
        return _strings(value)
    prompt = _prompt_value(value)
    if prompt is _MISSING:
        return _strings(value)
    return [*_pieces(prompt), *(piece for item in _response_values(value) or [] for piece in _pieces(item))]


def _strings(value: Any) -> list[str]:
    """Every string in a JSON value, keys left out."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _pieces(value: Any) -> list[str]:
    """The strings :func:`_text` shows of a prompt or a response (not a message's role; only strings)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        for key in ("message", "content", "text"):
            if key in value:
                return _pieces(value[key])
        return _strings(value)
    if isinstance(value, list):
        return [piece for item in value for piece in _pieces(item)]
    return []


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
    found = _prompt_value(value)
    return None if found is _MISSING else _text(found)


def _prompt_value(value: dict) -> Any:
    """The prompt field's value (a conversation's assistant turns left out); ``_MISSING`` when there is none."""
    for field in PROMPT_FIELDS:
        if field in value:
            return [m for m in value[field] if not _is_reply(m)] if _has_replies(value[field]) else value[field]
    return _MISSING


def _responses(value: dict) -> list[str] | None:
    found = _response_values(value)
    return None if found is None else [_text(item) for item in found]


def _response_values(value: dict) -> list | None:
    for field in PROMPT_FIELDS:  # a conversation (NeMo-RL's content): the assistant's turns are the responses
        if field in value and _has_replies(value[field]) and not any(f in value for f in RESPONSE_FIELDS):
            return [m["content"] for m in value[field] if _is_reply(m)]
    for field in RESPONSE_FIELDS:
        if field not in value:
            continue
        found = value[field]
        if isinstance(found, dict) and isinstance(found.get("choices"), list):  # OpenAI-style
            found = found["choices"]
        if not isinstance(found, list):
            found = [found]
        return found
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


def truth_of(rollout: Rollout, field: str | None) -> tuple[str, str] | None:
    """A previewed rollout's ground truth at ``field`` (a dotted path) of its first line; the detected one
    (``rollout.truth``) when ``field`` is empty."""
    if not field:
        return rollout.truth
    first = _parse(rollout.raw.split("\n", 1)[0])
    return ground_truth(first, field) if isinstance(first, dict) else None


def ordered(
    rows: np.ndarray, order: str, values: np.ndarray | None = None, higher_is_easier: bool = True, seed: int = 0
) -> np.ndarray:
    """``rows`` in the order a preview pages through them: "random" (a permutation by ``seed``), "hardest" or
    "easiest" first by ``values`` (a metric's value per rollout, read the metric's way; ties in input order,
    a NaN last either way)."""
    rows = np.asarray(rows, dtype=np.int64)
    if order == "random" or values is None:
        return rows[np.random.default_rng(seed).permutation(len(rows))]
    keys = np.asarray(values, dtype=np.float64)[rows]
    ascending = (order == "hardest") == higher_is_easier
    keys = np.where(np.isnan(keys), np.inf, keys if ascending else -keys)
    return rows[np.argsort(keys, kind="stable")]
