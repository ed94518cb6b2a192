"""What an export writes, for both engines: the output files and their names, where every input line goes,
and what the manifest says of each file.

Names only an export writes, temp ones included, so that names read back from an earlier manifest or a
journal (hostile data) can be checked before anything is removed or renamed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import BucketingError
from .plan import Plan
from .sources import display

MANIFEST = "manifest.json"
SKIPPED = "_skipped.jsonl"
TEMP_PREFIX = ".bucketing-tmp-"  # every temp file or folder of an export, in the output folder
TRAIN_SET = "train_set"  # the folder of the training-set rows (--train-set), beside the bucket files
UNSCORED = "_unscored"  # the training-set rows no rollout matched
DIFFICULTY = "difficulty.parquet"  # one row per rollout: its metrics and bucket (every export)


def recipe_name(prefix: str, trainer: str) -> str:
    """The file of a trainer recipe (:mod:`bucketing.recipes`) beside the manifest."""
    return f"{prefix}recipe-{trainer}.md"


def file_names(plan: Plan, prefix: str) -> dict[str, str]:
    """Bucket name -> output file name."""
    return {name: f"{prefix}{name}.jsonl" for name in plan.names}


PARTS = ("all", "train", "val")


@dataclass(frozen=True)
class Output:
    """One file an export writes: the buckets whose rollouts it holds, and which part of the split."""

    name: str  # relative to the output folder, e.g. "easy.jsonl", "cumulative/easy.jsonl", "val/hard.jsonl"
    buckets: tuple[int, ...]  # bucket indices, 0 = easiest; () = the skipped lines
    part: str = "all"  # "all", or "train" / "val" of a split
    cumulative: bool = False  # a stage: this bucket and every easier one
    kind: str = "jsonl"  # "parquet": the rows of parquet inputs (see bucketing.parquet_write)


def outputs(plan: Plan, prefix: str, with_skipped: bool, cumulative: bool = False, split: bool = False) -> list[Output]:
    """Every file an export writes but the manifest, in the order it renames them.

    The buckets (easiest first), the skipped lines, then with ``cumulative`` the stages
    ``cumulative/...``; with ``split``, the same again under ``train/`` and ``val/``.
    """
    files = file_names(plan, prefix)
    result = [Output(files[name], (i,)) for i, name in enumerate(plan.names)]
    result += [Output(prefix + SKIPPED, ())] if with_skipped else []
    for part in PARTS if split else PARTS[:1]:
        folder = "" if part == "all" else part + "/"
        if part != "all":
            result += [Output(folder + files[name], (i,), part) for i, name in enumerate(plan.names)]
        if cumulative:
            result += [
                Output(f"{folder}cumulative/{files[name]}", tuple(range(i + 1)), part, True)
                for i, name in enumerate(plan.names)
            ]
    return result


def output_names(
    plan: Plan, prefix: str, with_skipped: bool, cumulative: bool = False, split: bool = False
) -> list[str]:
    """Every file an export writes, in the order it renames them, the manifest last."""
    return [o.name for o in outputs(plan, prefix, with_skipped, cumulative, split)] + [prefix + MANIFEST]


def train_set_outputs(plan: Plan, prefix: str, ext: str, cumulative: bool = False, split: bool = False) -> list[Output]:
    """The training-set files (``ext``: "parquet" or "jsonl"): each bucket, stage and part file's twin under
    ``train_set/``, and after the buckets the rows no rollout matched (``buckets=()``)."""
    twins = [
        Output(f"{TRAIN_SET}/{o.name.removesuffix('.jsonl')}.{ext}", o.buckets, o.part, o.cumulative)
        for o in outputs(plan, prefix, False, cumulative, split)
    ]
    count = len(plan.names)
    return [*twins[:count], Output(f"{TRAIN_SET}/{prefix}{UNSCORED}.{ext}", ()), *twins[count:]]


def selects(output: Output, ids: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """Which items ``output`` holds, given each one's bucket (``ids``; negative: none, what ``buckets=()``
    holds) and whether it is held out for validation."""
    if not output.buckets:
        return ids < 0
    taken = (ids >= 0) & (ids <= output.buckets[-1]) if output.cumulative else ids == output.buckets[0]
    if output.part != "all":
        taken &= held_out if output.part == "val" else ~held_out
    return taken


# The names an export can write, for checking names read from an earlier manifest or a journal (hostile data):
# a bucket, stage, split or skipped file, or the manifest; sub-folders only those the export makes.
_ROLLOUT_FOLDERS = ("train", "val", "cumulative", "train/cumulative", "val/cumulative")
SUBFOLDERS = (*_ROLLOUT_FOLDERS, TRAIN_SET, *(f"{TRAIN_SET}/{folder}" for folder in _ROLLOUT_FOLDERS))


def output_folders(cumulative: bool, split: bool) -> list[str]:
    """The sub-folders an export with these options writes into ("train", "val/cumulative", ...)."""
    return [
        folder
        for folder in _ROLLOUT_FOLDERS
        if (cumulative or "cumulative" not in folder) and (split or folder.split("/")[0] not in PARTS)
    ]


_STEM = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,159}"
_RECIPE_NAME = r"[A-Za-z0-9._-]{0,64}recipe-[a-z-]{1,32}\.md"
_OUTPUT_NAME = re.compile(
    rf"(?:(?:train|val)/)?(?:cumulative/)?{_STEM}\.(?:jsonl|parquet)|[A-Za-z0-9._-]{{0,64}}{re.escape(MANIFEST)}"
    rf"|{TRAIN_SET}/(?:(?:train|val)/)?(?:cumulative/)?{_STEM}\.(?:jsonl|parquet)"
    rf"|[A-Za-z0-9._-]{{0,64}}{re.escape(DIFFICULTY)}|{_RECIPE_NAME}"
)
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"[A-Za-z0-9._-]{1,250}")


def is_output_name(name: object) -> bool:
    """Whether ``name`` is one an export could have written (relative to its output folder)."""
    return isinstance(name, str) and _OUTPUT_NAME.fullmatch(name) is not None


def is_recipe_name(name: object) -> bool:
    """Whether ``name`` is a recipe file an export could have written (``{prefix}recipe-verl.md``)."""
    return isinstance(name, str) and re.fullmatch(_RECIPE_NAME, name) is not None


def is_data_name(name: object) -> bool:
    """Whether ``name`` is one an export could have written, but not a manifest (what may be removed as stale)."""
    return is_output_name(name) and not str(name).endswith(MANIFEST)


def is_temp_name(name: object) -> bool:
    """Whether ``name`` is one of an export's temp files (TEMP_PREFIX, then a random token and a name)."""
    return isinstance(name, str) and _TEMP_NAME.fullmatch(name) is not None


def check_output_dir(out: Path, root: Path | str, names: list[str] | tuple[str, ...] = ()) -> None:
    """No output file may land in the input folder or below it (the next run would read it).

    ``names``: the output files, relative to ``out`` (``train/easy.jsonl`` lands in ``out/train``;
    ``train/`` stands for the folder).
    """
    if isinstance(root, str):  # a URI: no local folder to be inside of
        return
    source = root.resolve() if root.is_dir() else root.resolve().parent
    target = out.resolve()
    if target == source or source in target.parents:
        raise BucketingError(
            f"output directory {display(out)} is inside the input directory {display(root)}; choose another"
        )
    for name in names:
        folder = target / name.rpartition("/")[0]
        if folder == source or source in folder.parents:
            raise BucketingError(
                f"{display(out / name)} would be written inside the input directory {display(root)} "
                "(the next run would read it); choose another output folder"
            )


def every_line(dataset: Dataset, ids: np.ndarray, buckets: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every non-blank input line (good, then skipped): its file_id, offset, length, clean, and its output.

    The output of a good line is its rollout's bucket (``ids``); skipped lines go to output ``buckets``.
    """
    lines = dataset.line_columns
    dest = np.concatenate([ids.astype(np.int64)[lines["rollout"]], np.full(len(dataset.skipped_lines), buckets)])
    columns = {
        key: np.concatenate([lines[key], dataset.skipped_column(key)]).astype(np.int64)
        for key in ("file_id", "offset", "length", "clean")
    }
    return columns, dest


def describe_outputs(
    manifest: dict,
    dataset: Dataset,
    plan: Plan,
    files: list[Output],
    counts: list[tuple[int, int]],
    val_fraction: float | None,
    seed: int,
) -> None:
    """Record what the export writes beyond the buckets: stages, the split and every file's
    ``counts`` (rollouts, lines)."""
    manifest["cumulative"] = any(f.cumulative for f in files)
    manifest["split"] = (
        None
        if val_fraction is None
        else {
            "val_fraction": val_fraction,
            "seed": seed,
            "by": "group key" if dataset.layout.grouped else "line bytes (BLAKE2b)",
        }
    )
    manifest["files"] = [
        {
            "file": f.name,
            "buckets": [plan.names[b] for b in f.buckets],
            "part": f.part,
            "cumulative": f.cumulative,
            "rollouts": rollouts,
            "lines": lines,
        }
        for f, (rollouts, lines) in zip(files, counts)
    ]
