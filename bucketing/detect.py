"""Guess the layout when ``--scores`` is not given: where the scores are and which lines make a rollout.

Known shapes are tried on the first lines of the input; the one that fits the most
lines wins (the earlier one on a tie).  When no shape fits, or the lines hold one
score each but nothing says which prompt they belong to, we refuse and list the
fields we saw rather than guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import islice

from .errors import BucketingError
from .layout import FILE, Layout
from .parquet_read import is_parquet
from .parquet_read import sample_objects as sample_rows
from .scorepath import BadScores, ScorePath, path_text
from .sources import BOM, InputFile, display, read_blocks

SAMPLE_LINES = 50


@dataclass(frozen=True)
class Shape:
    name: str
    scores: str
    group_by: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # other fields a line of this shape has

    def fits(self, obj: dict) -> bool:
        if not all(field in obj for field in self.needs):
            return False
        try:
            Layout(self.scores, self.group_by).key_of_value(obj) if self.group_by else None
            ScorePath(self.scores).scores_of(obj)
        except BadScores:
            return False
        return True


# One line per response, grouped into prompts (a prompt's difficulty pools all its samples, across steps):
DUMPS = (
    Shape("verl dump", "score", ("input",), needs=("output",)),
    Shape("SkyRL dump", "score", ("input_prompt",), needs=("output_response",)),
    # NeMo-RL numbers a dump's lines (idx: the line's place in its file, not a prompt): the prompt is the first
    # message (a chat-templated string in training dumps, a {role, content} in validation ones)
    Shape("NeMo-RL dump", "rewards", ("content[0]",), needs=("content", "idx")),
    # NeMo-Gym rollouts: the task's index when the rollouts carry it, else the prompt itself
    Shape("NeMo-Gym rollouts", "reward", ("_ng_task_index",), needs=("responses_create_params",)),
    Shape(
        "NeMo-Gym rollouts without a task index",
        "reward",
        ("responses_create_params.input",),
        needs=("responses_create_params",),
    ),
    # verifiers eval results: example_id numbers the questions of one run's file, and restarts in the next
    Shape("verifiers results", "reward", (FILE, "example_id"), needs=("prompt", "completion")),
)
# One line per prompt, its responses' scores in a list:
PER_PROMPT = tuple(
    Shape("one line per prompt", path)
    for path in ("reward[].score", "rewards[]", "scores[]", "reward[]", "rewards[].score", "scores[].score")
)
SHAPES = PER_PROMPT[:1] + DUMPS + PER_PROMPT[1:]
CANDIDATES = tuple(shape.scores for shape in PER_PROMPT)  # score paths tried when --group-by is given
ONE_SCORE = ("score", "reward", "rewards", "acc")  # a single number per line: one response each


def detect_layout(files: list[InputFile], group_by: tuple[str, ...] = ()) -> Layout:
    """The layout of the input: the shape that fits the most sampled lines (``group_by`` given: only the scores)."""
    objects = sample_objects(files)
    if not objects:
        return Layout(CANDIDATES[0], group_by)  # nothing parses: the scan will say why, line by line
    trl = trl_shape(objects)
    shapes = [Shape("", path, group_by) for path in (*CANDIDATES, *ONE_SCORE)] if group_by else list(SHAPES)
    if trl is not None:  # first: a TRL log also fits the one-score shapes, less well
        shapes.insert(0, Shape(trl.name, trl.scores, group_by) if group_by else trl)
    hits = [sum(shape.fits(obj) for _, obj in objects) for shape in shapes]
    best = max(range(len(shapes)), key=lambda i: (hits[i], -i))
    if hits[best]:
        shape = shapes[best]
        return Layout(shape.scores, shape.group_by, name=shape.name)
    seen = fields_seen(objects)
    single = [path for path in ONE_SCORE if any(Shape("", path).fits(obj) for _, obj in objects)]
    if single and not group_by:
        raise BucketingError(
            f"the lines have one score each at {single[0]}, but nothing says which lines are the same prompt "
            f"({seen}); pass --group-by FIELD (e.g. the prompt's field), or --scores {single[0]} to make "
            "each line its own rollout"
        )
    tried = ", ".join(dict.fromkeys(shape.scores for shape in shapes))
    raise BucketingError(
        f"can't tell where the scores are: none of {tried} holds numbers ({seen}); "
        "pass --scores PATH, e.g. --scores reward[].score"
    )


# TRL's GRPOTrainer logs completions/completions_{step:05d}.parquet: step, prompt, completion, one column per
# reward function (named after it) and advantage. The rewards are the scores; step and advantage never are.
TRL_FIELDS = ("step", "prompt", "completion", "advantage")


def trl_shape(objects: list[tuple[InputFile, dict]]) -> Shape | None:
    """The TRL completions layout of the sampled rows, if they are one: scores = the reward columns, added up
    when there are several (as TRL adds them, with weights 1; pass --score-weights for others), one rollout =
    the rows of one prompt."""
    for _, obj in objects:
        if all(field in obj for field in TRL_FIELDS):
            rewards = [key for key, value in obj.items() if key not in TRL_FIELDS and _is_number(value)]
            if rewards:
                scores = ScorePath.parse(" + ".join(path_text(((key, None),)) for key in rewards)).text
                name = "TRL completions" + (
                    f" (scores: the sum of {len(rewards)} reward columns)" if len(rewards) > 1 else ""
                )
                return Shape(name, scores, ("prompt",), needs=TRL_FIELDS)
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fields_seen(objects: list[tuple[InputFile, dict]], shown: int = 3) -> str:
    """The top-level fields of the sampled lines, file by file: ``fields seen in a.jsonl: x, y; in b.jsonl: z``."""
    by_file: dict[str, set[str]] = {}
    for file, obj in objects:
        by_file.setdefault(file.rel, set()).update(obj)
    parts = [
        f"in {display(rel)}: {', '.join(display(key) for key in sorted(keys)[:20])}"
        for rel, keys in list(by_file.items())[:shown]
    ]
    more = f"; and {len(by_file) - shown} more files" if len(by_file) > shown else ""
    return "fields seen " + "; ".join(parts) + more


def sample_objects(files: list[InputFile]) -> list[tuple[InputFile, dict]]:
    """JSON objects from the first lines of the first files, each with its file."""
    objects: list[tuple[InputFile, dict]] = []
    for file in files[:5]:
        if is_parquet(file):
            objects += [(file, row) for row in sample_rows(file, SAMPLE_LINES)]
            if len(objects) >= SAMPLE_LINES:
                break
            continue
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
                objects.append((file, value))
        if len(objects) >= SAMPLE_LINES:
            break
    return objects
