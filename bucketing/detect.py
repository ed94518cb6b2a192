"""Guess where the scores live when ``--scores`` is not given, from the first lines of the input."""

from __future__ import annotations

import json
from itertools import islice

from .errors import BucketingError
from .scorepath import BadScores, ScorePath
from .sources import BOM, InputFile, display, read_blocks

CANDIDATES = (
    "reward[].score",  # the default layout
    "rewards[]",
    "scores[]",
    "reward[]",
    "rewards[].score",
    "scores[].score",
    "score",
    "reward",
)
SAMPLE_LINES = 50


def detect_score_path(files: list[InputFile]) -> ScorePath:
    """The candidate path that holds numbers in the most sampled lines (the earlier one on a tie)."""
    objects = sample_objects(files)
    if not objects:
        return ScorePath.parse(CANDIDATES[0])  # nothing parses: the scan will say why, line by line
    paths = [ScorePath.parse(text) for text in CANDIDATES]
    hits = [sum(_holds_scores(path, obj) for obj in objects) for path in paths]
    best = max(range(len(paths)), key=lambda i: (hits[i], -i))
    if hits[best]:
        return paths[best]
    fields = sorted({key for obj in objects for key in obj})
    raise BucketingError(
        f"can't tell where the scores are in {display(files[0].rel)}: none of {', '.join(CANDIDATES)} holds numbers "
        f"(fields seen: {', '.join(fields[:20])}); pass --scores PATH, e.g. --scores reward[].score"
    )


def sample_objects(files: list[InputFile]) -> list[dict]:
    """JSON objects from the first lines of the first files."""
    objects: list[dict] = []
    for file in files[:5]:
        block = next(read_blocks(file), None)
        if block is None:
            continue
        lines = bytes(block.buf[block.lo : block.hi]).split(b"\n")
        for line in islice((line for line in lines if line.strip()), SAMPLE_LINES):
            try:
                value = json.loads(line.removeprefix(BOM))
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict):
                objects.append(value)
        if len(objects) >= SAMPLE_LINES:
            break
    return objects


def _holds_scores(path: ScorePath, obj: dict) -> bool:
    try:
        path.scores_of(obj)
    except BadScores:
        return False
    return True
