"""Trainer recipes: the settings that train verl, OpenRLHF, TRL, NeMo-RL or SkyRL on what an export wrote.

A recipe is rendered from a manifest (what was written) and the output folder: right after an export
(``--recipe``, written beside the manifest) or later from an existing one (``bucketing recipe``).  It
names the training-set files (``manifest["train_set"]``, the prompt rows trainers read) when the export
joined them, else the bucket files with a warning that those are rollouts.  Training files come easiest
first: the cumulative stages when there are any, else the buckets; with a split, the ``train/`` parts,
and the ``val/`` ones where the trainer takes validation data.

Every setting a recipe prints is in :data:`SETTINGS` with the file of the trainer's own source that
defines or reads it (``tests/test_recipes.py`` checks that no name is printed uncited).  Read at:
verl-project/verl 1dda039b (2026-08-22; volcengine/verl b178a3cd for the removed sampler),
OpenRLHF/OpenRLHF 3c3be623 (2026-08-13; the old flag names at tag v0.10.1.post2),
huggingface/trl f2cd5771 (2026-07-24), NVIDIA-NeMo/RL 7ea279ab (2026-08-22), NovaSky-AI/SkyRL a9564572 (2026-08-21).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import msgspec

from .errors import BucketingError, OneLineParser, display
from .manifest import read_manifest
from .outputs import MANIFEST, recipe_name

TRAINERS = ("verl", "openrlhf", "trl", "nemo-rl", "skyrl")

# trainer -> setting name -> where the trainer defines or reads it: repository, path (line at the commit above).
SETTINGS: dict[str, dict[str, str]] = {
    "verl": {
        "data.train_files": "verl-project/verl verl/trainer/config/data/legacy_data.yaml L11; files read in list "
        "order and concatenated: verl/utils/dataset/rl_dataset.py L169-180",
        "data.val_files": "verl-project/verl verl/trainer/config/data/legacy_data.yaml L14",
        "data.shuffle": "verl-project/verl verl/trainer/config/data/legacy_data.yaml L68; False -> SequentialSampler: "
        "verl/trainer/ppo/utils.py L158-166",
        "data.train_batch_size": "verl-project/verl verl/trainer/config/data/legacy_data.yaml L42",
        "data.sampler.class_path": "volcengine/verl verl/trainer/config/data/legacy_data.yaml L114 (b178a3cd; "
        "removed in v0.8.0)",
        "trainer.total_epochs": "verl-project/verl verl/trainer/config/ppo_trainer.yaml L140 (default 30)",
    },
    "openrlhf": {
        "--data.prompt_dataset": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L527; split on ',' (and '@') by "
        "openrlhf/datasets/utils.py blending_datasets",
        "--data.prompt_probs": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L529; interleave_datasets in "
        "openrlhf/datasets/utils.py",
        "--eval.dataset": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L535",
        "--data.input_key": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L542",
        "--data.label_key": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L543",
        "--data.apply_chat_template": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L546",
        "--actor.model_name_or_path": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L517",
        "--ckpt.output_dir": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L371; the final model: "
        "openrlhf/trainer/ray/ppo_actor.py save_model",
        "--train.num_episodes": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L372",
        # the same flags before the dotted names: tag v0.10.1.post2, openrlhf/cli/train_ppo_ray.py
        "--pretrain": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L471 (v0.10.1.post2)",
        "--prompt_data": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L480 (v0.10.1.post2)",
        "--prompt_data_probs": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L482 (v0.10.1.post2)",
        "--eval_dataset": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L488 (v0.10.1.post2)",
        "--input_key": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L495 (v0.10.1.post2)",
        "--label_key": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L496 (v0.10.1.post2)",
        "--apply_chat_template": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L499 (v0.10.1.post2)",
        "--save_path": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L363 (v0.10.1.post2)",
        "--num_episodes": "OpenRLHF/OpenRLHF openrlhf/cli/train_ppo_ray.py L364 (v0.10.1.post2)",
    },
    "trl": {
        "datasets": "huggingface/trl trl/scripts/utils.py DatasetMixtureConfig; concatenated in list order: "
        "get_dataset L477",
        "path": "huggingface/trl trl/scripts/utils.py DatasetConfig",
        "data_files": "huggingface/trl trl/scripts/utils.py DatasetConfig",
        "split": "huggingface/trl trl/scripts/utils.py DatasetConfig",
        "shuffle_dataset": "huggingface/trl trl/trainer/grpo_config.py L501",
        "num_train_epochs": "huggingface/trl trl/trainer/base_config.py (_BaseConfig extends transformers' "
        "TrainingArguments, which defines it)",
        "train_dataset": "huggingface/trl trl/trainer/grpo_trainer.py L308 (GRPOTrainer)",
        "eval_dataset": "huggingface/trl trl/trainer/grpo_trainer.py L309 (GRPOTrainer)",
        "args": "huggingface/trl trl/trainer/grpo_trainer.py (GRPOTrainer)",
        "model": "huggingface/trl trl/trainer/grpo_trainer.py (GRPOTrainer)",
        "reward_funcs": "huggingface/trl trl/trainer/grpo_trainer.py (GRPOTrainer)",
    },
    "nemo-rl": {
        "defaults": "NVIDIA-NeMo/RL nemo_rl/utils/config.py load_config_with_inheritance; as in "
        "examples/configs/grpo_multiple_datasets.yaml L2",
        "grpo": "NVIDIA-NeMo/RL examples/configs/grpo_math_1B.yaml L2",
        "max_num_epochs": "NVIDIA-NeMo/RL examples/configs/grpo_math_1B.yaml L6",
        "val_period": "NVIDIA-NeMo/RL examples/configs/grpo_math_1B.yaml L10",
        "data": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py DataConfig",
        "_override_": "NVIDIA-NeMo/RL nemo_rl/utils/config.py merge_with_override",
        "max_input_seq_length": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py DataConfig",
        "shuffle": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py DataConfig; read by nemo_rl/algorithms/grpo.py L596",
        "num_workers": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py DataConfig",
        "use_multiple_dataloader": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py DataConfig",
        "train": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py DataConfig (one dataset or a list, concatenated in order)",
        "validation": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py DataConfig",
        "default": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py DataConfig",
        "data_path": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py ResponseDatasetConfig",
        "dataset_name": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py ResponseDatasetConfig; ResponseDataset: "
        "nemo_rl/data/datasets/response_datasets/__init__.py L94",
        "input_key": "NVIDIA-NeMo/RL nemo_rl/data/datasets/response_datasets/response_dataset.py",
        "output_key": "NVIDIA-NeMo/RL nemo_rl/data/datasets/response_datasets/response_dataset.py",
        "prompt_file": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py ResponseDatasetConfig",
        "system_prompt_file": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py ResponseDatasetConfig",
        "processor": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py ResponseDatasetConfig",
        "env_name": "NVIDIA-NeMo/RL nemo_rl/data/__init__.py ResponseDatasetConfig",
    },
    "skyrl": {
        "data.train_data": "NovaSky-AI/SkyRL skyrl/train/config/config.py L76; concatenated in order: "
        "skyrl/train/dataset/dataset.py L38-61",
        "data.val_data": "NovaSky-AI/SkyRL skyrl/train/config/config.py L79",
        "trainer.epochs": "NovaSky-AI/SkyRL skyrl/train/config/config.py L1382",
        "trainer.policy.model.path": "NovaSky-AI/SkyRL skyrl/train/config/config.py L167, L608",
        "trainer.export_path": "NovaSky-AI/SkyRL skyrl/train/config/config.py L1377",
        "trainer.hf_save_interval": "NovaSky-AI/SkyRL skyrl/train/config/config.py L1375",
        "sampler": "NovaSky-AI/SkyRL skyrl/train/config/sft_config.py L260 (SFT only)",
    },
}

_SUFFIXES = (".jsonl", ".json", ".parquet")  # what every one of these trainers reads by extension


class _Entry(msgspec.Struct):
    """One file of ``manifest["files"]`` or ``manifest["train_set"]["files"]``: the fields a recipe reads."""

    file: str
    buckets: list[str]
    part: Literal["all", "train", "val"] = "all"
    cumulative: bool = False
    rows: int | None = None  # train_set files
    rollouts: int | None = None  # bucket files


class _TrainSet(msgspec.Struct):
    files: list[_Entry]


class _Bucket(msgspec.Struct):
    name: str


class _Manifest(msgspec.Struct):
    buckets: list[_Bucket]
    files: list[_Entry] = []
    train_set: _TrainSet | None = None


@dataclass(frozen=True)
class File:
    """A file a trainer reads: its absolute path, the buckets it holds (easiest first) and its rows."""

    path: str
    buckets: tuple[str, ...]
    rows: int | None

    @property
    def loader(self) -> str:
        """The ``datasets`` builder that reads it: ``parquet`` or ``json`` (JSON Lines too)."""
        return "parquet" if self.path.endswith(".parquet") else "json"


@dataclass(frozen=True)
class Inputs:
    """What a recipe trains on, taken from a manifest."""

    folder: str  # the output folder, absolute
    train: list[File]  # easiest first: the stages, or the buckets
    stages: bool  # ``train`` are cumulative stages (stage i = buckets 0..i)
    buckets: list[File]  # the single-bucket training files (for a mixture), easiest first
    val: list[File]  # validation files ([] without a split)
    rollouts: bool  # no training set was joined: these are the rollout files
    empty: list[str]  # empty files left out (a trainer can't load an empty one)


def check_trainers(names: list[str]) -> list[str]:
    """``--recipe`` values (each may be a comma list) as trainer names, in order, once each."""
    trainers: list[str] = []
    for value in names:
        for name in value.split(","):
            name = name.strip().lower()
            if name not in TRAINERS:
                raise BucketingError(
                    f"unknown trainer {display(name)!r} for a recipe; choose from {', '.join(TRAINERS)}"
                )
            if name not in trainers:
                trainers.append(name)
    return trainers


def inputs(manifest: dict, out_dir: str | os.PathLike, check_exists: bool = False) -> Inputs:
    """The files a recipe names, from ``manifest`` (user data: checked field by field) and the output folder.

    ``check_exists``: every file named must be there (a recipe rendered later from an existing export).
    """
    try:
        shape = msgspec.convert(manifest, _Manifest)
    except msgspec.ValidationError as error:
        raise BucketingError(f"the manifest can't give a recipe: {error}") from None
    folder = Path(out_dir).absolute()
    rank = {bucket.name: i for i, bucket in enumerate(shape.buckets)}
    entries = shape.train_set.files if shape.train_set else shape.files
    entries = [e for e in entries if e.buckets]  # the skipped lines or unmatched rows: in no bucket, never trained on
    for entry in entries:
        _check_entry(entry, rank, folder, check_exists)

    def files(part: str, cumulative: bool) -> list[_Entry]:
        chosen = [e for e in entries if e.part == part and e.cumulative == cumulative]
        return sorted(chosen, key=lambda e: max(rank[b] for b in e.buckets))  # easiest first

    part = "train" if any(e.part == "train" for e in entries) else "all"
    stages, singles = files(part, True), files(part, False)
    val_stages = files("val", True)
    val = val_stages[-1:] or files("val", False)  # the last stage holds every validation row: one file
    chosen = stages or singles
    if not chosen:
        raise BucketingError("the manifest lists no training file; was it written by --engine ray? (it writes folders)")
    empty = [e.file for e in [*chosen, *singles, *val] if _rows(e) == 0]

    def kept(group: list[_Entry]) -> list[File]:
        return [
            File(str(folder / e.file), tuple(sorted(e.buckets, key=rank.__getitem__)), _rows(e))
            for e in group
            if _rows(e) != 0
        ]

    train = kept(chosen)
    if not train:
        raise BucketingError("every training file of this export is empty; there is nothing to train on")
    return Inputs(
        str(folder), train, bool(stages), kept(singles), kept(val), shape.train_set is None, sorted(set(empty))
    )


def _rows(entry: _Entry) -> int | None:
    return entry.rows if entry.rows is not None else entry.rollouts


def _check_entry(entry: _Entry, rank: dict[str, int], folder: Path, check_exists: bool) -> None:
    """A file name from the manifest must be one inside the output folder that trainers read."""
    path = PurePosixPath(entry.file)
    if path.is_absolute() or ".." in path.parts or not entry.file or not entry.file.endswith(_SUFFIXES):
        raise BucketingError(
            f"the manifest lists {display(entry.file)!r}, not a .jsonl or .parquet file inside the output folder"
        )
    unknown = [b for b in entry.buckets if b not in rank]
    if unknown:
        raise BucketingError(
            f"the manifest's file {display(entry.file)} names an unknown bucket {display(unknown[0])!r}"
        )
    if check_exists and not (folder / entry.file).is_file():
        raise BucketingError(
            f"{display(folder / entry.file)} is listed in the manifest but missing; export again to write it"
        )


def render(trainer: str, manifest: dict, out_dir: str | os.PathLike, check_exists: bool = False) -> str:
    """The recipe for ``trainer`` (one of :data:`TRAINERS`) as Markdown text."""
    (trainer,) = check_trainers([trainer])
    found = inputs(manifest, out_dir, check_exists)
    return "\n".join([*_header(trainer, found), *_RENDER[trainer](found)]) + "\n"


def write_names(trainers: list[str], prefix: str) -> list[str]:
    """The recipe files an export writes for ``trainers``, in order."""
    return [recipe_name(prefix, trainer) for trainer in trainers]


_TITLES = {"verl": "verl", "openrlhf": "OpenRLHF", "trl": "TRL (GRPO)", "nemo-rl": "NeMo-RL (GRPO)", "skyrl": "SkyRL"}


def _header(trainer: str, found: Inputs) -> list[str]:
    lines = []
    if found.rollouts:  # first line: what these files are, and how to get the files a trainer reads
        lines.append(
            "WARNING: these files are rollouts (prompts with their sampled responses and scores), not the prompt "
            "dataset a trainer reads. Rerun the export with --train-set SOURCE --join-on FIELD to write each "
            "bucket's training-set rows (train_set/); the recipe then names those."
        )
        lines.append("")
    what = "stages (stage i: bucket i and every easier one)" if found.stages else "buckets"
    # paths and names as text, each on its line (a newline in a folder name must not start a line of its own)
    lines.append(f"# {_TITLES[trainer]}: train on {display(found.folder)}, easiest first")
    lines.append("")
    lines.append(f"Training files, {what}, in order:")
    unit = "rollout" if found.rollouts else "row"
    lines += [f"- {display(_names(f))}: {display(f.path)}{_count(f, unit)}" for f in found.train]
    if found.val:
        lines.append("Validation files:")
        lines += [f"- {display(f.path)}{_count(f, unit)}" for f in found.val]
    if found.empty:
        lines.append(f"Left out, empty: {', '.join(map(display, found.empty))}")
    if found.stages:
        lines.append(
            "Each stage repeats the easier prompts of the stages before it; for each prompt once, export without "
            "--cumulative."
        )
    lines.append("")
    return lines


def _names(file: File) -> str:
    return "+".join(file.buckets) if len(file.buckets) < 3 else f"{file.buckets[0]}..{file.buckets[-1]}"


def _count(file: File, unit: str) -> str:
    return "" if file.rows is None else f" ({file.rows} {unit}{'' if file.rows == 1 else 's'})"


def _command(words: list[str]) -> list[str]:
    """A shell command, one argument pair a line (already quoted)."""
    return [" \\\n  ".join(words)]


def _list(paths: list[str]) -> str:
    """A list of paths as Hydra / OmegaConf read it on a command line: ``["/a","/b"]`` (JSON strings)."""
    return "[" + ",".join(json.dumps(p, ensure_ascii=False) for p in paths) + "]"


def _paths(files: list[File]) -> list[str]:
    return [f.path for f in files]


def _verl(found: Inputs) -> list[str]:
    words = ["python3 -m verl.trainer.main_ppo", shlex.quote(f"data.train_files={_list(_paths(found.train))}")]
    if found.val:
        words.append(shlex.quote(f"data.val_files={_list(_paths(found.val))}"))
    words += ["data.shuffle=False", "trainer.total_epochs=1"]
    lines = ["```sh", *_command(words), "```", ""]
    lines.append(
        "Add your model, reward and batch settings. data.shuffle=False reads the files in list order, one after "
        "another (a sequential sampler); trainer.total_epochs=1 makes it one pass (the default is 30)."
    )
    lines.append(
        "A batch is data.train_batch_size prompts and the last incomplete one is dropped, so a stage boundary falls "
        "inside a batch unless the stage's rows are a multiple of it."
    )
    if any(f.path.endswith(".jsonl") for f in found.train + found.val):
        lines.append("verl reads .jsonl since v0.7.1; older versions read .parquet and .json only.")
    lines.append(
        "verl v0.8.0 removed its curriculum sampler (data.sampler.class_path): ordered files with shuffling off "
        "work in every version."
    )
    return lines


def _runs(found: Inputs, why: str, command: Callable[[File, str, int], list[str]], saved: str) -> list[str]:
    """One run per training file, easiest first, each from the model the run before saved: the curriculum of a
    trainer that always shuffles. ``command(file, model, number)``: its words; ``saved``: run N's model, {number}."""
    lines = [f"{why}, so an ordered curriculum is one run per file, each from the model the one before saved:", ""]
    lines.append("```sh")
    model = "YOUR_MODEL"
    for number, file in enumerate(found.train, 1):
        lines += [f"# {number} of {len(found.train)}: {_names(file)}", *_command(command(file, model, number))]
        model = saved.format(number=number)
    return [*lines, "```", ""]


def _openrlhf(found: Inputs) -> list[str]:
    def command(file: File, model: str, number: int) -> list[str]:
        words = [
            "python3 -m openrlhf.cli.train_ppo_ray",
            f"--actor.model_name_or_path {shlex.quote(model)}",
            f"--data.prompt_dataset {shlex.quote(file.path)}",
        ]
        if found.val:
            words.append(f"--eval.dataset {shlex.quote(','.join(_paths(found.val)))}")
        return [*words, f"--ckpt.output_dir ckpt/stage_{number}", "--train.num_episodes 1"]

    why = "OpenRLHF always shuffles the prompt data (its prompt dataloader is built with shuffle on; no flag turns it off)"
    lines = _runs(found, why, command, "ckpt/stage_{number}")
    if len(found.buckets) > 1:
        lines += [
            "Or one run over every bucket, mixed (shuffled) by per-file probabilities; these are each file's share "
            "of the rows: raise the easier files' to lean easy. Sampling with probabilities repeats the smaller "
            "files until every file is used up.",
            "",
            "```sh",
            *_command(
                [
                    "python3 -m openrlhf.cli.train_ppo_ray",
                    f"--data.prompt_dataset {shlex.quote(','.join(_paths(found.buckets)))}",
                    f"--data.prompt_probs {_shares(found.buckets)}",
                ]
            ),
            "```",
            "",
        ]
    lines.append(
        "Add --data.input_key and --data.label_key (your rows' prompt and answer fields), "
        "--data.apply_chat_template for chat messages, and your model and reward settings."
    )
    lines.append(
        "Before the dotted flags (v0.10.1.post2 and earlier) these were --pretrain, --prompt_data, "
        "--prompt_data_probs, --eval_dataset, --save_path, --num_episodes, --input_key, --label_key, "
        "--apply_chat_template."
    )
    odd = [f.path for f in found.train + found.buckets + found.val if "," in f.path or "@" in f.path]
    if odd:
        lines.append(
            f"OpenRLHF splits its dataset flags at ',' and '@': {display(odd[0])} can't be named; "
            "export to a folder without them."
        )
    return lines


def _shares(files: list[File]) -> str:
    """Each file's share of the rows, to 4 decimals, adding up to exactly 1 (the last takes the rest)."""
    rows = [f.rows or 0 for f in files]
    total = sum(rows)
    units = [round(10_000 * r / total) if total else 10_000 // len(rows) for r in rows[:-1]]
    units.append(10_000 - sum(units))
    return ",".join(f"{u / 10_000:g}" for u in units)


def _trl(found: Inputs) -> list[str]:
    lines = [
        "With the `trl grpo` command: save this as grpo.yaml, add your model and reward functions, run "
        "`trl grpo --config grpo.yaml`.",
        "",
        "```yaml",
        "datasets:",
    ]
    for file in found.train:
        lines += [
            f"  - path: {file.loader}",
            f"    data_files: {json.dumps(file.path, ensure_ascii=False)}",
            "    split: train",
        ]
    lines += ["shuffle_dataset: false", "num_train_epochs: 1", "```", ""]
    lines += [
        "Or in Python" + (" (the command line takes no separate validation files):" if found.val else ":"),
        "",
        "```python",
        "from datasets import concatenate_datasets, load_dataset",
        "from trl import GRPOConfig, GRPOTrainer",
        "",
        *_loads("train", found.train),
    ]
    evaluation = ""
    if found.val:
        lines += _loads("val", found.val)
        evaluation = " eval_dataset=val,"
    lines += [
        f"trainer = GRPOTrainer(model=MODEL, reward_funcs=REWARDS, train_dataset=train,{evaluation}",
        "                      args=GRPOConfig(shuffle_dataset=False, num_train_epochs=1))",
        "```",
        "",
        "shuffle_dataset false reads the files concatenated in list order; the last incomplete generation batch is "
        "dropped. TRL reads the prompt column and passes every other column to the reward functions.",
    ]
    return lines


def _loads(name: str, files: list[File]) -> list[str]:
    """Python that reads ``files`` into one dataset called ``name``, in list order."""
    return [
        f"{name} = concatenate_datasets([",
        *[f"    load_dataset({f.loader!r}, data_files={f.path!r}, split='train')," for f in files],
        "])",
    ]


def _nemo_rl(found: Inputs) -> list[str]:
    lines = [
        "Save this as examples/configs/curriculum.yaml in your NeMo-RL checkout and run "
        "`uv run examples/run_grpo.py --config examples/configs/curriculum.yaml`:",
        "",
        "```yaml",
        "defaults: grpo_math_1B.yaml",
        "grpo:",
        "  max_num_epochs: 1",
    ]
    if not found.val:
        lines.append("  val_period: 0  # no validation files")
    lines += [
        "data:",
        "  _override_: true  # replace the data block of the defaults",
        "  max_input_seq_length: ${policy.max_total_sequence_length}",
        "  shuffle: false",
        "  num_workers: 1",
        "  use_multiple_dataloader: false",
        "  train:",
        *[f"    - data_path: {json.dumps(f.path, ensure_ascii=False)}" for f in found.train],
    ]
    if found.val:
        lines += ["  validation:", *[f"    - data_path: {json.dumps(f.path, ensure_ascii=False)}" for f in found.val]]
    else:
        lines.append("  validation: null")
    lines += [
        "  default:",
        "    dataset_name: ResponseDataset",
        "    input_key: input  # your rows' problem field",
        "    output_key: output  # and its answer",
        "    prompt_file: null",
        "    system_prompt_file: null",
        "    processor: math_hf_data_processor",
        "    env_name: math",
        "```",
        "",
        "shuffle false reads the train datasets concatenated in list order; the last incomplete batch is dropped.",
    ]
    return lines


def _skyrl(found: Inputs) -> list[str]:
    def command(file: File, model: str, number: int) -> list[str]:
        words = [
            "uv run --isolated --extra fsdp -m skyrl.train.entrypoints.main_base",
            shlex.quote(f"data.train_data={_list([file.path])}"),
        ]
        if found.val:
            words.append(shlex.quote(f"data.val_data={_list(_paths(found.val))}"))
        return [*words, "trainer.epochs=1", f"trainer.policy.model.path={shlex.quote(model)}"]

    why = (
        "SkyRL's RL trainer always shuffles the training data (its dataloader is built with shuffle on for "
        "training; no setting turns it off)"
    )
    lines = _runs(found, why, command, "MODEL_SAVED_BY_RUN_{number}")
    lines += [
        "Add your other settings. Each run's model: the Hugging Face model the run before saved "
        "(trainer.hf_save_interval, under trainer.export_path).",
        "One run in order needs code: a trainer subclass whose training dataloader does not shuffle. SkyRL's "
        "curriculum sampler (subset lengths) is for SFT only (sampler custom).",
    ]
    return lines


_RENDER: dict[str, Callable[[Inputs], list[str]]] = {
    "verl": _verl,
    "openrlhf": _openrlhf,
    "trl": _trl,
    "nemo-rl": _nemo_rl,
    "skyrl": _skyrl,
}


def main(argv: list[str], prog: str = "bucketing recipe") -> int:
    """``bucketing recipe TRAINER[,TRAINER] OUTDIR``: print the recipes for an existing export (nothing written)."""
    parser = OneLineParser(
        prog=prog,
        description="Print the settings that train a trainer on an export's files, easiest first.",
        epilog=f"trainers: {', '.join(TRAINERS)}. example: {prog} verl,trl ./bucketed",
    )
    parser.add_argument("trainers", metavar="TRAINER[,TRAINER]", help=f"one or more of {', '.join(TRAINERS)}")
    parser.add_argument("output", metavar="OUTDIR", help=f"the export's folder, or its {MANIFEST} (a prefixed one)")
    args = parser.parse_args(argv)
    trainers = check_trainers([args.trainers])
    path = Path(args.output)
    manifest_path = path / MANIFEST if path.is_dir() else path
    manifest = read_manifest(manifest_path)
    for number, trainer in enumerate(trainers):
        print(("\n" if number else "") + render(trainer, manifest, manifest_path.parent, check_exists=True), end="")
    return 0
