"""Difficulty over training: each rollout's step, prompts followed from step to step, per-step trends and the
prompts that changed class between two step ranges.

Trainers dump rollouts step after step (``{step}.jsonl`` with a ``step`` field for verl,
``train_data_step{N}.jsonl`` for NeMo-RL, ``completions_{N:05d}.parquet`` for TRL). A rollout's step comes from
a field of its line (``step_field``) or from its file's name (:func:`step_in_name`). With steps, a rollout is a
prompt at one step: a grouping layout also groups by the step (the step field, or ``@file``), and a prompt is
the rest of the group fields (or ``prompt_fields``), compared canonically as grouping compares them.

Per step (or per window of ``window`` steps, a prompt's rollouts in the window pooled) the metric's quantiles
and the learnability shares at the pass threshold: solved (every response passes), learnable (some do),
unsolved (none does) -- the classes of :func:`bucketing.plan.learnability_plan`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

import numpy as np

from .dataset import Dataset, load, prepare_load, scores_by_rollout
from .errors import BucketingError
from .joinkey import MISSING, key_of_raw
from .layout import FILE, parse_group_by
from .metrics import Params, Scores, get_metric
from .plan import LEARNABILITY
from .rolloutfields import rollout_fields
from .sources import display

# A step in a file's path (relative to the input folder), as trainers name their dumps: the last match wins.
STEP_NAMES = (
    ("verl", re.compile(r"(?:^|/)(\d+)\.(?:jsonl|parquet)")),
    ("NeMo-RL", re.compile(r"(?:^|/)(?:train|val)_data_step(\d+)\.jsonl")),
    ("TRL", re.compile(r"(?:^|/)completions_(\d+)\.parquet")),
    ("a step folder", re.compile(r"(?:^|/)(?:global_)?step_?(\d+)(?:_[^/]*)?/")),
)
CLASSES = tuple(name for name, _ in LEARNABILITY)  # unsolved, learnable, solved
# The files of a changes export: a prompt's rollouts by (class before, class after), then the rest
GROUPS = (*(f"{a}_to_{b}" for a in CLASSES for b in CLASSES), "unpaired", "outside")
UNPAIRED, OUTSIDE = len(GROUPS) - 2, len(GROUPS) - 1
# ... of a runs compared export (the first run's rollouts): a flagged prompt's go to "inverted", not to its cell
RUN_GROUPS = (*GROUPS[:-2], "inverted", "unpaired", "outside")
QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
MISSING_STEP = "missing step field"  # the skip reason of a line of one prompt without its step
MAX_STEP = 1 << 53  # steps beyond this are not steps (a float's exact integers, what JSON readers agree on)


def step_in_name(rel: str) -> int | None:
    """The step a trainer wrote into this file's path (``12.jsonl``, ``train_data_step12.jsonl``,
    ``completions_00012.parquet``, ``global_step_12/…``): the match nearest the path's end; or None."""
    found = [(m.start(1), int(m.group(1))) for _, pattern in STEP_NAMES for m in pattern.finditer(rel)]
    return max(found)[1] if found else None


@dataclass
class StepData:
    """A load with a step and a prompt per rollout."""

    dataset: Dataset
    step: np.ndarray  # per rollout: its step (int64)
    prompt: np.ndarray  # per rollout: its prompt, numbered 0.. in the order prompts first appear
    step_source: str  # how steps were found, in words: "the field step", "file names"
    prompt_fields: tuple[str, ...]  # the fields that say which prompt a rollout is
    prompt_keys: list[bytes]  # per prompt number: its canonical key (the same prompt in another run has the same)

    @property
    def prompts(self) -> int:
        return int(self.prompt.max()) + 1 if len(self.prompt) else 0

    def steps(self) -> np.ndarray:
        return np.unique(self.step)


def load_steps(
    input_path: str | os.PathLike,
    *,
    step_field: str | None = None,
    prompt_fields: str | list[str] | None = None,
    scores: str | None = None,
    group_by: str | list[str] | None = None,
    **options,
) -> StepData:
    """Load ``input_path`` (as :func:`bucketing.load`, ``options`` passed on) with one rollout per prompt and step.

    Steps come from ``step_field`` when given, else from the files' names (every file must name one).
    ``prompt_fields`` say which prompt a rollout is; by default the layout's group fields (less the step), or
    ``prompt`` for one line per prompt.
    """
    reading = prepare_load(
        input_path, scores=scores, group_by=group_by, roots=options.get("roots"), exclude=options.get("exclude", ())
    )
    layout = reading.layout
    fields = parse_group_by(step_field)
    if len(fields) > 1 or fields == (FILE,):
        raise BucketingError(f"--step-field names one field (e.g. step), not {step_field!r}")
    by_field = fields[0] if fields else None
    if by_field is None:
        unnamed = [display(f.rel) for f in reading.files if step_in_name(str(f.rel)) is None]
        if unnamed:
            raise BucketingError(
                f"{unnamed[0]}: no step in the file's name ({len(unnamed)} such files); "
                "name the field that holds it with --step-field, e.g. --step-field step"
            )
    if layout.grouped:  # a rollout is a prompt at one step: group by the step too
        extra = by_field or FILE
        if extra not in layout.group_by:
            layout = replace(layout, group_by=(*layout.group_by, extra))
    data = load(input_path, layout=layout, **options)  # the layout as settled: detected scores stay detected
    data.detected = reading.detected
    named = parse_group_by(prompt_fields) if prompt_fields else ()
    keys = named or tuple(f for f in layout.fields if f != by_field) or ("prompt",)
    steps, prompts = _first_line_fields(data, by_field, keys)  # one pass over the rollouts' first lines
    if by_field and not layout.grouped:  # one line per prompt: a line without its step is skipped, as a group's
        missing = np.array([text is None or text == b"null" for text in steps], dtype=bool)
        data = _skip_rollouts(data, missing, MISSING_STEP)
        kept = np.flatnonzero(~missing).tolist()
        steps, prompts = [steps[i] for i in kept], [prompts[i] for i in kept]
    step = _steps_from_field(data, steps, by_field) if by_field else _steps_from_names(data)
    if by_field:  # a file named with a step must agree with the field
        _check_names_agree(data, step, by_field)
    source = f"the field {by_field}" if by_field else "file names"
    prompt, prompt_keys = _prompts(data, prompts, keys)
    return StepData(data, step, prompt, source, keys, prompt_keys)


def _first_line_fields(
    data: Dataset, step_field: str | None, keys: tuple[str, ...]
) -> tuple[list[bytes | None], list[bytes | None]]:
    """Per rollout, from its first line: the step field's raw JSON (None: missing) and the prompt's key, the
    canonical keys of ``keys`` (None: it has none of them)."""
    fields = ((step_field,) if step_field else ()) + keys
    steps: list[bytes | None] = []
    prompts: list[bytes | None] = []
    for _, raws in rollout_fields(data, fields):  # the raw values live until the next rollout: taken now
        if step_field:
            steps.append(None if raws[0] is MISSING else bytes(raws[0]).strip())
            raws = raws[1:]
        if all(raw is MISSING for raw in raws):
            prompts.append(None)
        else:
            prompts.append(b"".join(key_of_raw(raw, f)[0] + bytes([raw is MISSING]) for raw, f in zip(raws, keys)))
    return steps, prompts


def _steps_from_names(data: Dataset) -> np.ndarray:
    named = [step_in_name(str(f.rel)) for f in data.files]
    for file, step in zip(data.files, named):
        if step is not None and step > MAX_STEP:
            raise BucketingError(f"{display(file.rel)}: the step in the file's name is beyond {MAX_STEP:,}; rename it")
    per_file = np.array([-1 if step is None else step for step in named], dtype=np.int64)
    return per_file[data.rollout_columns["file_id"]]


def _skip_rollouts(data: Dataset, drop: np.ndarray, reason: str) -> Dataset:
    """The dataset (one line per rollout) with the lines of ``drop`` among its skipped lines, for ``reason``."""
    if not drop.any():
        return data
    if drop.all():
        raise BucketingError(f"no line has the step field ({reason} in all {len(drop):,}): check --step-field")
    lines, keep = data.line_columns, ~drop
    gone = [
        (int(lines["file_id"][i]), int(lines["line"][i]), int(lines["offset"][i]), int(lines["length"][i]))
        + (bool(lines["clean"][i]), reason, "")
        for i in np.flatnonzero(drop).tolist()
    ]
    columns = {key: column[keep] for key, column in lines.items()}
    columns["rollout"] = np.arange(int(keep.sum()))
    kept_scores = data.scores.flat[np.repeat(keep, data.scores.counts)]
    skipped = sorted([*data.skipped_lines, *gone], key=lambda bad: (bad[0], bad[1]))
    return replace(
        data,
        line_columns=columns,
        rollout_columns=columns,
        scores=Scores(kept_scores, data.scores.counts[keep]),
        skipped_lines=skipped,
        join_keys=None if data.join_keys is None else data.join_keys[keep],
        join_kinds=None if data.join_kinds is None else data.join_kinds[keep],
    )


def _steps_from_field(data: Dataset, texts: list[bytes | None], field: str) -> np.ndarray:
    """Each rollout's step from its step field's raw JSON; one that is not an integer within MAX_STEP stops it."""
    step = np.empty(len(texts), dtype=np.int64)
    for rollout, text in enumerate(texts):
        digits = (text or b"").lstrip(b"-")
        if (
            text is None
            or not digits.isdigit()
            or text.count(b"-") > 1
            or len(digits) > 16
            or abs(int(text)) > MAX_STEP
        ):
            if text is None:
                what = "missing"
            elif digits.isdigit() and text.count(b"-") <= 1:
                what = f"{text[:40].decode()}{'…' if len(text) > 40 else ''}, beyond {MAX_STEP:,}"
            else:
                what = f"{text[:40].decode(errors='replace')}, not an integer"
            raise BucketingError(
                f"{_where(data, rollout)}: the step field {field} is {what}; name the step's field with --step-field"
            )
        step[rollout] = int(text)
    return step


def _where(data: Dataset, rollout: int) -> str:
    """``file:line`` of a rollout's first line."""
    return data.where(int(data.rollout_columns["file_id"][rollout]), int(data.rollout_columns["line"][rollout]))


def _check_names_agree(data: Dataset, step: np.ndarray, field: str) -> None:
    """A trainer's step file (verl's, NeMo-RL's, TRL's; a folder's number may be a checkpoint's) must hold the
    step its name says."""
    named = [
        step_in_name(str(f.rel))
        if any(p.search(str(f.rel)) for name, p in STEP_NAMES if name != "a step folder")
        else None
        for f in data.files
    ]
    by_file = np.array([-1 if n is None else n for n in named], dtype=np.int64)[data.rollout_columns["file_id"]]
    wrong = np.flatnonzero((by_file >= 0) & (by_file != step))
    if len(wrong):
        r = int(wrong[0])
        raise BucketingError(
            f"{_where(data, r)}: the step field {field} says {int(step[r])} but the file's name says {int(by_file[r])}; "
            "check the files, or leave the ones of other runs out with --exclude"
        )


def _prompts(data: Dataset, keys: list[bytes | None], fields: tuple[str, ...]) -> tuple[np.ndarray, list[bytes]]:
    """Each rollout's prompt number by its key (numbered as prompts first appear), and each prompt's key."""
    numbers: dict[bytes, int] = {}
    prompt = np.empty(len(keys), dtype=np.int64)
    for rollout, key in enumerate(keys):
        if key is None:
            raise BucketingError(
                f"{_where(data, rollout)}: no {' or '.join(fields)} field says which prompt this is; name it with --prompt-field"
            )
        prompt[rollout] = numbers.setdefault(key, len(numbers))
    return prompt, list(numbers)


def windows(step: np.ndarray, width: int) -> np.ndarray:
    """The first step of each step's window of ``width`` steps (windows start at multiples of ``width``)."""
    if not 1 <= width <= MAX_STEP:
        raise BucketingError(f"--step-window must be a whole number from 1 to {MAX_STEP:,}, not {width}")
    return (step // width) * width


def pooled(scores: Scores, groups: np.ndarray) -> tuple[np.ndarray, Scores]:
    """The rollouts of each group (numbered by np.unique of ``groups``: values, or rows of a 2-D array) as one:
    its scores together."""
    labels, unit = np.unique(groups, return_inverse=True, axis=0 if groups.ndim == 2 else None)
    return labels, scores_by_rollout(scores, unit.ravel())


def units(data: StepData, window: int) -> tuple[np.ndarray, np.ndarray, Scores]:
    """One unit per (prompt, window): its window, its prompt, and the scores of its rollouts pooled."""
    pairs = np.stack([windows(data.step, window), data.prompt], axis=1)  # rows sort window-major
    keys, scores = pooled(data.dataset.scores, pairs)
    return keys[:, 0], keys[:, 1], scores


def learnability(scores: Scores, params: Params) -> np.ndarray:
    """0 unsolved, 1 learnable, 2 solved (:data:`CLASSES`), by the responses that pass at the pass threshold."""
    return classes_of(scores.passed(params.pass_threshold), scores.counts)


def classes_of(passed: np.ndarray, total: np.ndarray) -> np.ndarray:
    """0 when none of ``total`` responses passes, 2 when all do, 1 otherwise."""
    return np.where(passed == 0, 0, np.where(passed == total, 2, 1))


def trends(data: StepData, metric: str, params: Params = Params(), window: int = 1) -> list[dict]:
    """Per step (or window): prompts, the metric's quantiles over them, and the learnability shares."""
    return _rows(data, *_unit_values(data, metric, params, window), params, window)


def per_step(
    data: StepData, metric: str, params: Params = Params(), window: int = 1, bins: int = 30
) -> tuple[list[dict], StepBins]:
    """:func:`trends` and the metric's distribution per step (or window) as counts in ``bins`` equal bins over all
    its values, the rollouts pooled into units once."""
    start, values, scores = _unit_values(data, metric, params, window)
    return _rows(data, start, values, scores, params, window), _bins(start, values, bins)


def _unit_values(data: StepData, metric: str, params: Params, window: int) -> tuple[np.ndarray, np.ndarray, Scores]:
    """Per unit (a prompt in a step or window, in step order): its first step, the metric's value, its scores."""
    start, _, scores = units(data, window)
    return start, np.asarray(get_metric(metric).compute(scores, params), dtype=np.float64), scores


def _rows(
    data: StepData, start: np.ndarray, values: np.ndarray, scores: Scores, params: Params, window: int
) -> list[dict]:
    classes = learnability(scores, params)
    rows = []
    # rollouts: prompts at one step (two files of one step hold one rollout of a prompt, as a step field says)
    at_steps = np.unique(np.stack([data.step, data.prompt], axis=1), axis=0)[:, 0]
    starts, rollouts = np.unique(windows(at_steps, window), return_counts=True)
    rollouts_in = dict(zip(starts.tolist(), rollouts.tolist()))
    bounds = np.flatnonzero(np.r_[True, start[1:] != start[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        first = int(start[a])
        part = values[a:b]
        counts = np.bincount(classes[a:b], minlength=3)
        row: dict = {"step": first} if window == 1 else {"steps": [first, first + window - 1]}
        row["prompts"] = int(b - a)
        row["rollouts"] = rollouts_in[first]
        finite = part[np.isfinite(part)]
        row["quantiles"] = dict(zip(_quantile_names(), _quantiles(finite)))
        row["mean"] = float(finite.mean()) if len(finite) else None
        row["shares"] = {name: float(c / (b - a)) for name, c in zip(CLASSES, counts)}
        rows.append(row)
    return rows


@dataclass(frozen=True)
class StepBins:
    """A metric's values per step, binned: ``counts[i, j]`` prompts of step ``steps[i]`` in bin ``j``."""

    steps: np.ndarray
    edges: np.ndarray  # bins+1 ascending edges, shared by every step
    counts: np.ndarray  # (steps, bins) int64


def _bins(start: np.ndarray, values: np.ndarray, bins: int) -> StepBins:
    finite = np.isfinite(values)
    low, high = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 1.0)
    edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    steps, row = np.unique(start, return_inverse=True)
    column = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
    counts = np.zeros((len(steps), bins), dtype=np.int64)
    np.add.at(counts, (row.ravel()[finite], column[finite]), 1)
    return StepBins(steps, edges, counts)


def _quantile_names() -> list[str]:
    return ["min" if q == 0 else "max" if q == 1 else f"p{round(q * 100)}" for q in QUANTILES]


def _quantiles(values: np.ndarray) -> list[float | None]:
    if not len(values):
        return [None] * len(QUANTILES)
    return [float(v) for v in np.quantile(values, QUANTILES)]


def parse_range(text: str, what: str) -> tuple[int, int]:
    """``"100"`` -> (100, 100); ``"100-200"`` or ``"100:200"`` -> (100, 200), both ends included."""
    match = re.fullmatch(r"\s*(-?\d+)\s*(?:[-:]\s*(-?\d+)\s*)?", text)
    if not match:
        raise BucketingError(f"{what} takes a step or a range of steps (100, 100-200), not {text!r}")
    low, high = int(match.group(1)), int(match.group(2) or match.group(1))
    if high < low:
        raise BucketingError(f"{what} {text}: the range ends before it starts")
    return low, high


@dataclass
class Changes:
    """How each prompt's learnability moved from one step range to another."""

    before: tuple[int, int]
    after: tuple[int, int]
    matrix: np.ndarray  # (3, 3) prompts: from class (row) -> to class (column), CLASSES order
    prompt_from: np.ndarray  # per prompt: its class in ``before``, -1 when it has no rollout there
    prompt_to: np.ndarray  # per prompt: its class in ``after``, -1 likewise

    def named(self) -> dict[str, int]:
        """The counts people ask for: learned, forgotten, still unsolved, always solved."""
        m = self.matrix
        return {
            "learned": int(m[0, 2] + m[1, 2]),
            "forgotten": int(m[2, 0] + m[2, 1]),
            "still_unsolved": int(m[0, 0]),
            "always_solved": int(m[2, 2]),
            "still_learnable": int(m[1, 1]),
            "improved": int(m[0, 1]),
            "regressed": int(m[1, 0]),
        }

    def groups(self, data: StepData) -> tuple[list[str], np.ndarray]:
        """The files of an export of these changes and each rollout's: :data:`GROUPS`, by its prompt's cell
        (``unsolved_to_solved`` ...) when the rollout is in either range and its prompt in both; ``unpaired`` when
        its prompt is in one range only; ``outside`` when its step is in neither."""
        inside = _in(data.step, self.before) | _in(data.step, self.after)
        a, b = self.prompt_from[data.prompt], self.prompt_to[data.prompt]
        paired = (a >= 0) & (b >= 0)
        cell = np.where(paired, a * 3 + b, UNPAIRED)
        return list(GROUPS), np.where(inside, cell, OUTSIDE)


def check_range(data: StepData, bounds: tuple[int, int], flag: str) -> None:
    """A step range with no rollout in it is a mistake (a typo, another run's steps): say which steps there are."""
    if not _in(data.step, bounds).any():
        steps = data.steps()
        raise BucketingError(
            f"{flag} {bounds[0]}-{bounds[1]}: no rollout at these steps (the steps are {steps[0]} to {steps[-1]})"
        )


def _in(step: np.ndarray, bounds: tuple[int, int]) -> np.ndarray:
    return (step >= bounds[0]) & (step <= bounds[1])


def changes(data: StepData, before: tuple[int, int], after: tuple[int, int], params: Params = Params()) -> Changes:
    """Each prompt's class in ``before`` and in ``after`` (its rollouts in the range pooled), and the matrix of
    prompts in both."""
    if before[1] >= after[0] and after[1] >= before[0]:
        raise BucketingError(
            f"--from {before[0]}-{before[1]} and --to {after[0]}-{after[1]} overlap: give apart ranges"
        )
    for flag, bounds in (("--from", before), ("--to", after)):
        check_range(data, bounds, flag)
    classes = []
    for bounds in (before, after):
        chosen = _in(data.step, bounds)
        per_prompt = np.full(data.prompts, -1, dtype=np.int64)
        prompts, scores = pooled(data.dataset.scores, np.where(chosen, data.prompt, -1))  # -1: outside the range
        found = learnability(scores, params)
        per_prompt[prompts[prompts >= 0]] = found[prompts >= 0]
        classes.append(per_prompt)
    both = (classes[0] >= 0) & (classes[1] >= 0)
    matrix = np.zeros((3, 3), dtype=np.int64)
    np.add.at(matrix, (classes[0][both], classes[1][both]), 1)
    return Changes(before, after, matrix, classes[0], classes[1])


@dataclass
class RunComparison:
    """The same prompts in two runs (joined by their key): the learnability matrix (reference run's class by row)
    and the prompts the reference run solves clearly less often than the other."""

    matrix: np.ndarray  # (3, 3)
    shared: int  # prompts in both runs (in their step ranges)
    inverted: list[dict]  # per flagged prompt: where (its first rollout in the reference run), rates, counts
    cell: np.ndarray  # per prompt of the reference run: from * 3 + to, INVERTED when flagged, UNPAIRED when alone
    steps: tuple[int, int] | None  # the reference run's steps compared (None: all)

    def groups(self, reference: StepData) -> tuple[list[str], np.ndarray]:
        """The files of an export of the reference run's rollouts: :data:`RUN_GROUPS`, by its prompt's cell
        (``inverted`` for a flagged prompt), ``unpaired`` when the other run lacks the prompt, ``outside`` for a
        step outside the range compared."""
        inside = np.ones(len(reference.step), dtype=bool) if self.steps is None else _in(reference.step, self.steps)
        return list(RUN_GROUPS), np.where(inside, self.cell[reference.prompt], RUN_GROUPS.index("outside"))


def pass_counts(data: StepData, bounds: tuple[int, int] | None, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt: responses that pass and responses in all, over its rollouts in ``bounds`` (None: every step)."""
    chosen = np.ones(len(data.step), dtype=bool) if bounds is None else _in(data.step, bounds)
    scores = data.dataset.scores
    passed = scores.passed(params.pass_threshold)
    prompts = data.prompt[chosen]
    return (
        np.bincount(prompts, weights=passed[chosen], minlength=data.prompts).astype(np.int64),
        np.bincount(prompts, weights=scores.counts[chosen], minlength=data.prompts).astype(np.int64),
    )


def wilson(passed: np.ndarray, total: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """The 95 % Wilson score interval of each success rate (``passed`` of ``total`` >= 1)."""
    rate = passed / total
    centre = (rate + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(rate * (1 - rate) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def compare_runs(
    reference: StepData,
    other: StepData,
    reference_steps: tuple[int, int] | None = None,
    other_steps: tuple[int, int] | None = None,
    params: Params = Params(),
) -> RunComparison:
    """Each prompt of both runs: its class in each (its rollouts in the steps given pooled), and whether the
    reference run succeeds clearly less often: the upper end of its 95 % Wilson interval below the lower end of
    the other run's (a stronger model failing what a weaker one solves: often a wrong reference answer)."""
    if reference.prompt_fields != other.prompt_fields:
        raise BucketingError(
            f"the runs name their prompts by different fields ({', '.join(reference.prompt_fields)} and "
            f"{', '.join(other.prompt_fields)}): give the same with --prompt-field"
        )
    for flag, run, bounds in (("--from", reference, reference_steps), ("--to", other, other_steps)):
        if bounds is not None:
            check_range(run, bounds, flag)
    ours, theirs = pass_counts(reference, reference_steps, params), pass_counts(other, other_steps, params)
    index = {key: number for number, key in enumerate(other.prompt_keys)}
    pairs = [(a, index[key]) for a, key in enumerate(reference.prompt_keys) if key in index]
    a = np.array([pair[0] for pair in pairs], dtype=np.int64)
    b = np.array([pair[1] for pair in pairs], dtype=np.int64)
    seen = (ours[1][a] > 0) & (theirs[1][b] > 0)
    a, b = a[seen], b[seen]
    matrix = np.zeros((3, 3), dtype=np.int64)
    classes = [classes_of(passed[i], total[i]) for (passed, total), i in ((ours, a), (theirs, b))]
    np.add.at(matrix, (classes[0], classes[1]), 1)
    _, high = wilson(ours[0][a], ours[1][a])
    low, _ = wilson(theirs[0][b], theirs[1][b])
    first = _first_rollouts(reference)
    inverted: list[dict] = []
    for i in np.flatnonzero(high < low).tolist():
        rollout = int(first[a[i]])
        inverted.append(
            {
                "where": _where(reference.dataset, rollout),
                "reference": {"passed": int(ours[0][a[i]]), "responses": int(ours[1][a[i]])},
                "other": {"passed": int(theirs[0][b[i]]), "responses": int(theirs[1][b[i]])},
            }
        )
    inverted.sort(key=lambda row: (row["reference"]["passed"] / row["reference"]["responses"], row["where"]))
    cell = np.full(reference.prompts, RUN_GROUPS.index("unpaired"), dtype=np.int64)
    cell[a] = classes[0] * 3 + classes[1]
    cell[a[high < low]] = RUN_GROUPS.index("inverted")
    return RunComparison(matrix, len(a), inverted, cell, reference_steps)


def _first_rollouts(data: StepData) -> np.ndarray:
    """Per prompt: its first rollout (in input order)."""
    first = np.full(data.prompts, len(data.prompt), dtype=np.int64)
    np.minimum.at(first, data.prompt, np.arange(len(data.prompt)))
    return first
