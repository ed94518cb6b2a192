"""Trainer recipes (issue #18, part 4): each recipe's text checked against the files an export wrote.

What is checked, from the files on disk and the manifest (never from what a recipe printed alone):

* every training file a recipe's training setting names exists and they come easiest first;
* the setting that turns shuffling off is there for the trainers that have one (verl, TRL, NeMo-RL), and
  OpenRLHF and SkyRL say that they always shuffle;
* with a split, the training files are the ``train/`` ones and the validation setting names the ``val/`` ones;
* a manifest with ``train_set`` (the joined prompt rows) makes the recipes name those files; without it, the
  first line says the files are rollouts and names ``--train-set`` and ``--join-on``;
* the recipe file is written with the export (listed in the manifest, no temp file left), refused without
  ``--overwrite``, replaced or removed by it;
* an unknown trainer is one line on stderr, exit 2;
* every setting name a recipe prints is in ``recipes.SETTINGS`` with a citation of the trainer's source.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest

from bucketing import recipes
from bucketing.outputs import is_output_name, is_recipe_name

from .conftest import SAMPLE, run_cli

TRAIN_SETTING = {  # trainer -> what pulls the training paths out of its recipe, in the order given
    "verl": lambda text: [p for v in _values(text, "data.train_files") for p in json.loads(v)],
    "skyrl": lambda text: [p for v in _values(text, "data.train_data") for p in json.loads(v)],
    "openrlhf": lambda text: _values(text, "--data.prompt_dataset"),  # the first block: one run per file
    "trl": lambda text: [json.loads(p) for p in re.findall(r"^    data_files: (.*)$", _block(text, "yaml"), re.M)],
    "nemo-rl": lambda text: [json.loads(p) for p in re.findall(r"^    - data_path: (.*)$", _train_block(text), re.M)],
}
VAL_SETTING = {
    "verl": lambda text: [p for v in _values(text, "data.val_files") for p in json.loads(v)],
    "skyrl": lambda text: sorted({p for v in _values(text, "data.val_data") for p in json.loads(v)}),
    "openrlhf": lambda text: sorted({p for v in _values(text, "--eval.dataset") for p in v.split(",")}),
    "trl": lambda text: [
        ast.literal_eval(p) for p in re.findall(r"data_files=(.*?), split=", text.partition("\nval = ")[2])
    ],
    "nemo-rl": lambda text: [
        json.loads(p) for p in re.findall(r"^    - data_path: (.*)$", text.partition("  validation:")[2], re.M)
    ],
}
SHUFFLE_OFF = {"verl": "data.shuffle=False", "trl": "shuffle_dataset: false", "nemo-rl": "  shuffle: false"}
ALWAYS_SHUFFLES = {"openrlhf": "OpenRLHF always shuffles", "skyrl": "SkyRL's RL trainer always shuffles"}
NAMES = {  # trainer -> the setting names in a recipe's body, as that trainer spells them
    "verl": r"(?<![\w./])((?:data|trainer)\.[a-z_]+(?:\.[a-z_]+)*)",
    "skyrl": r"(?<![\w./])((?:data|trainer)\.[a-z_]+(?:\.[a-z_]+)*)",
    "openrlhf": r"(?<![\w-])(--[a-z_][a-z_.]*[a-z_])(?![\w-])",
    "trl": r"^\s*(?:- )?([a-z_]+):|\b([a-z_]+)=",
    "nemo-rl": r"^\s*(?:- )?([a-z_]+):",
}


def _values(text: str, setting: str) -> list[str]:
    """The values of ``setting`` (``--flag VALUE`` or ``name=VALUE``) in the first shell block, as the shell reads it."""
    block = _block(text, "sh").replace("\\\n", " ")
    found = []
    for line in block.splitlines():
        if line.startswith("#"):
            continue
        words = shlex.split(line)
        for word, following in zip(words, words[1:] + [""]):
            if word == setting:
                found.append(following)
            elif word.startswith(setting + "="):
                found.append(word[len(setting) + 1 :])
    return found


def _block(text: str, language: str) -> str:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)[0]


def _train_block(text: str) -> str:
    return _block(text, "yaml").split("  train:", 1)[1].split("  validation", 1)[0]


def export(tmp_path: Path, *flags: str) -> tuple[Path, dict]:
    out = tmp_path / "out"
    result = run_cli("-i", str(SAMPLE), "-o", str(out), "-n", "3", *flags)
    assert result.returncode == 0, result.stderr
    return out, json.loads((out / "manifest.json").read_text())


def rank_of(manifest: dict) -> dict[str, int]:
    return {bucket["name"]: i for i, bucket in enumerate(manifest["buckets"])}


def check_training_files(text: str, trainer: str, manifest: dict, out: Path, part: str) -> None:
    """The paths of the training setting: files of ``part`` on disk, listed in the manifest, easiest first."""
    paths = TRAIN_SETTING[trainer](text)
    assert paths, (trainer, text)
    entries = {str(out.absolute() / e["file"]): e for e in manifest["files"]}
    rank = rank_of(manifest)
    order = []
    for path in paths:
        assert Path(path).is_file() and path in entries, (trainer, path)
        entry = entries[path]
        assert entry["part"] == part and entry["buckets"], (trainer, entry)
        order.append(max(rank[b] for b in entry["buckets"]))
    assert order == sorted(order) and len(set(order)) == len(order), (trainer, paths)


@pytest.mark.parametrize("trainer", recipes.TRAINERS)
def test_a_recipe_names_the_buckets_easiest_first_and_turns_shuffling_off(tmp_path, trainer):
    out, manifest = export(tmp_path, "--recipe", trainer)
    text = (out / f"recipe-{trainer}.md").read_text()
    assert manifest["recipes"] == [f"recipe-{trainer}.md"]
    check_training_files(text, trainer, manifest, out, "all")
    assert len(TRAIN_SETTING[trainer](text)) == 3  # each bucket, none empty here
    assert VAL_SETTING[trainer](text) == []
    if trainer in SHUFFLE_OFF:
        assert SHUFFLE_OFF[trainer] in text
    else:
        assert ALWAYS_SHUFFLES[trainer] in text
    first = text.splitlines()[0]
    assert first.startswith("WARNING: these files are rollouts") and "--train-set" in first and "--join-on" in first


@pytest.mark.parametrize("trainer", recipes.TRAINERS)
def test_with_stages_and_a_split_the_train_stages_are_trained_on_and_val_validates(tmp_path, trainer):
    out, manifest = export(
        tmp_path, "--cumulative", "--val-fraction", "0.2", "--order", "difficulty", "--recipe", trainer
    )
    text = (out / f"recipe-{trainer}.md").read_text()
    check_training_files(text, trainer, manifest, out, "train")
    stages = [e["file"] for e in manifest["files"] if e["part"] == "train" and e["cumulative"]]
    assert TRAIN_SETTING[trainer](text) == [str(out.absolute() / f) for f in stages]
    every_val = [e for e in manifest["files"] if e["part"] == "val" and e["cumulative"]][-1]
    assert set(every_val["buckets"]) == set(rank_of(manifest))  # the last val stage holds every validation rollout
    assert VAL_SETTING[trainer](text) == [str(out.absolute() / every_val["file"])]


def test_the_command_line_prints_the_recipes_it_wrote_and_takes_a_comma_list(tmp_path):
    out = tmp_path / "out"
    result = run_cli("-i", str(SAMPLE), "-o", str(out), "--recipe", "verl,TRL", "--recipe", "verl")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipes"] == ["recipe-verl.md", "recipe-trl.md"]
    for name in manifest["recipes"]:
        assert (out / name).read_text() in result.stdout
        assert is_output_name(name) and is_recipe_name(name)
    assert not [p for p in out.iterdir() if p.name.startswith(".bucketing")]  # no temp file, no journal left


def test_a_recipe_file_is_refused_without_overwrite_and_replaced_or_removed_with_it(tmp_path):
    out, _ = export(tmp_path, "--recipe", "verl,skyrl")
    (out / "recipe-verl.md").write_text("old")
    result = run_cli("-i", str(SAMPLE), "-o", str(out), "-n", "3", "--recipe", "verl")
    assert result.returncode == 2 and "already exists" in result.stderr
    assert (out / "recipe-verl.md").read_text() == "old"
    out, manifest = export(tmp_path, "--overwrite", "--cumulative", "--recipe", "verl")
    assert manifest["recipes"] == ["recipe-verl.md"]
    assert "cumulative/easy.jsonl" in (out / "recipe-verl.md").read_text()
    assert not (out / "recipe-skyrl.md").exists()  # the earlier export's, not written this time: removed
    out, manifest = export(tmp_path, "--overwrite")
    assert "recipes" not in manifest and not list(out.glob("recipe-*"))


def test_a_file_named_like_a_recipe_but_not_listed_is_left_alone(tmp_path):
    out, _ = export(tmp_path)
    (out / "recipe-verl.md").write_text("mine")
    export(tmp_path, "--overwrite")
    assert (out / "recipe-verl.md").read_text() == "mine"


@pytest.mark.parametrize("flags", [["--recipe", "nemo"], ["--recipe", "verl,"], ["--recipe", "verl", "--dry-run"]])
def test_an_unknown_trainer_or_no_export_is_one_line_exit_2(tmp_path, flags):
    result = run_cli("-i", str(SAMPLE), "-o", str(tmp_path / "out"), *flags)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_the_recipe_subcommand_renders_an_existing_export(tmp_path):
    out = tmp_path / "out"
    result = run_cli("-i", str(SAMPLE), "-o", str(out), "--val-fraction", "0.1", "--prefix", "p_", "--recipe", "trl")
    assert result.returncode == 0, result.stderr
    result = run_cli("recipe", "verl,trl", str(out / "p_manifest.json"))
    assert result.returncode == 0, result.stderr
    assert (out / "p_recipe-trl.md").read_text() in result.stdout
    check_training_files(
        result.stdout.split("# TRL")[0], "verl", json.loads((out / "p_manifest.json").read_text()), out, "train"
    )
    for args in (["recipe", "foo", str(out)], ["recipe", "verl", str(tmp_path / "nowhere")], ["recipe", "verl"]):
        result = run_cli(*args)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
    (out / "train" / "p_easy.jsonl").unlink()
    result = run_cli("recipe", "verl", str(out / "p_manifest.json"))
    assert result.returncode == 2 and "missing" in result.stderr


def synthetic(tmp_path: Path, fmt: str = "parquet") -> tuple[Path, dict]:
    """An export's manifest with a joined training set (the contract of ``--train-set``), its files on disk."""
    out = tmp_path / "it's joined"  # a quote and a space: the paths must be quoted for the shell
    buckets = ["easy", "medium", "hard"]
    files = []
    for part in ("train", "val"):
        for i, name in enumerate(buckets):
            for cumulative in (False, True):
                rel = f"train_set/{part}/{'cumulative/' if cumulative else ''}{name}.{fmt}"
                files.append(
                    {
                        "file": rel,
                        "buckets": buckets[: i + 1] if cumulative else [name],
                        "part": part,
                        "cumulative": cumulative,
                        "rows": 10 * (i + 1),
                    }
                )
    files.append({"file": f"train_set/_unscored.{fmt}", "buckets": [], "part": "all", "cumulative": False, "rows": 4})
    for entry in files:
        (out / entry["file"]).parent.mkdir(parents=True, exist_ok=True)
        (out / entry["file"]).write_text("rows\n")
    manifest = {
        "buckets": [{"name": n} for n in buckets],
        "files": [
            {"file": f"{n}.jsonl", "buckets": [n], "part": "all", "cumulative": False, "rollouts": 5} for n in buckets
        ],
        "train_set": {
            "source": "/data/train.parquet",
            "format": fmt,
            "join_on": {"extra_info.index": "extra_info.index"},
            "files": files[::-1],
        },  # in any order: a recipe sorts easiest first
    }
    return out, manifest


@pytest.mark.parametrize("trainer", recipes.TRAINERS)
def test_with_a_training_set_the_recipe_names_its_files(tmp_path, trainer):
    out, manifest = synthetic(tmp_path)
    text = recipes.render(trainer, manifest, out, check_exists=True)
    assert not text.startswith("WARNING") and "rollouts" not in text.splitlines()[0]
    wanted = [str(out.absolute() / f"train_set/train/cumulative/{n}.parquet") for n in ("easy", "medium", "hard")]
    assert TRAIN_SETTING[trainer](text) == wanted
    assert VAL_SETTING[trainer](text) == [str(out.absolute() / "train_set/val/cumulative/hard.parquet")]
    assert "_unscored" not in text
    if trainer == "trl":
        assert "path: parquet" in text and "'parquet'" in text
    if trainer == "openrlhf":  # the mixture: the single buckets, with shares of their rows
        assert "--data.prompt_probs 0.1667,0.3333,0.5" in text


def test_a_manifest_that_is_not_one_is_a_one_line_error(tmp_path):
    out, manifest = synthetic(tmp_path)
    for bad in (
        {**manifest, "train_set": {"files": [{"file": "/etc/passwd.jsonl", "buckets": ["easy"]}]}},
        {**manifest, "train_set": {"files": [{"file": "../x.parquet", "buckets": ["easy"]}]}},
        {**manifest, "train_set": {"files": [{"file": "a.parquet", "buckets": ["nope"]}]}},
        {**manifest, "train_set": {"files": [{"file": 3, "buckets": ["easy"]}]}},
        {**manifest, "train_set": {"files": []}},
    ):
        with pytest.raises(recipes.BucketingError) as error:
            recipes.render("verl", bad, out)
        assert "\n" not in str(error.value)


def test_empty_files_are_left_out_and_said(tmp_path):
    out, manifest = synthetic(tmp_path, "jsonl")
    for entry in manifest["train_set"]["files"]:
        if entry["buckets"] == ["medium"]:
            entry["rows"] = 0
    text = recipes.render("openrlhf", manifest, out)
    assert "Left out, empty: train_set/train/medium.jsonl\n" in text  # (the val stage is used, not val/medium)
    mixture = text.split("--data.prompt_probs")[0].rsplit("--data.prompt_dataset", 1)[1]
    assert "easy.jsonl" in mixture and "medium.jsonl" not in mixture


def test_openrlhf_says_when_a_path_holds_a_comma_it_splits_at(tmp_path):
    out, manifest = synthetic(tmp_path / "a,b")
    assert "OpenRLHF splits its dataset flags at ',' and '@'" in recipes.render("openrlhf", manifest, out)


@pytest.mark.parametrize("trainer", recipes.TRAINERS)
def test_every_setting_a_recipe_prints_is_cited_from_the_trainers_source(tmp_path, trainer):
    out, manifest = synthetic(tmp_path)
    cited = recipes.SETTINGS[trainer]
    for source in cited.values():
        assert re.match(r"[\w.-]+/[\w.-]+ [\w./-]+\.(py|yaml)\b", source), source  # repository, then the file
    found = recipes.inputs(manifest, out)
    bodies = ["\n".join(recipes._RENDER[trainer](found))]
    without_val = {
        **manifest,
        "train_set": {"files": [f for f in manifest["train_set"]["files"] if f["part"] != "val"]},
    }
    bodies.append("\n".join(recipes._RENDER[trainer](recipes.inputs(without_val, out))))
    used = set()
    for body in bodies:
        for match in re.finditer(NAMES[trainer], body, re.M):
            used |= {name for name in match.groups() if name}
    assert used and used <= set(cited), sorted(used - set(cited))


def test_parquet_bucket_files_are_read_as_parquet_and_still_called_rollouts(tmp_path):
    out = tmp_path / "out"
    manifest = {
        "buckets": [{"name": "easy"}, {"name": "hard"}],
        "files": [
            {"file": f"{n}.parquet", "buckets": [n], "part": "all", "cumulative": False, "rollouts": 3}
            for n in ("hard", "easy")
        ],
    }
    wanted = [str(out.absolute() / "easy.parquet"), str(out.absolute() / "hard.parquet")]
    for trainer in recipes.TRAINERS:
        text = recipes.render(trainer, manifest, out)
        assert text.startswith("WARNING: these files are rollouts")
        assert TRAIN_SETTING[trainer](text) == wanted, trainer
    assert "path: parquet" in recipes.render("trl", manifest, out)
    assert ".jsonl since" not in recipes.render("verl", manifest, out)
