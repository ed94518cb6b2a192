"""The Export page's training set: the match rate before anything is written, the files and recipes after, and the
command that writes the same."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import bucketing
from bucketing.join import join
from bucketing.recipes import render

from .app_support import drag, go, load_folder, metric, plain
from .conftest import rollout_line, run_cli, write_lines
from .parquet_fixtures import rollout_rows, write_rows

ROLLOUTS = 12  # rollout i has extra_info.index i, but the last has none
SOURCE_ROWS = 15  # indexes 0..14 (12..14 unscored), and index 3 twice
NAMES = ["easy", "medium", "hard"]


def make_data(root: Path) -> tuple[Path, Path]:
    """Rollouts (mean rewards 1, 0.5, 0 in turn) and a parquet source of their prompts keyed by extra_info.index."""
    lines = []
    for i in range(ROLLOUTS):
        scores = [[1, 1], [1, 0], [0, 0]][i % 3]
        extra = {} if i == ROLLOUTS - 1 else {"extra_info": {"index": i}}
        lines.append(rollout_line(scores, prompt=f"question {i}", **extra))
    write_lines(root / "rollouts" / "a.jsonl", lines)
    rows = [{"prompt": f"question {i}", "extra_info": {"index": i, "split": "train"}} for i in range(SOURCE_ROWS)]
    rows.append({"prompt": "question 3 again", "extra_info": {"index": 3, "split": "train"}})
    source = root / "source" / "train.parquet"
    source.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), source, row_group_size=4)
    return root / "rollouts", source


def open_export(app, tmp_path) -> tuple[Path, Path]:
    rollouts, source = make_data(tmp_path)
    load_folder(app, rollouts)
    go(app, "buckets")
    drag(app, [0.3, 0.7])
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    return rollouts, source


def set_training_set(app, source, rollout_field: str = "extra_info.index", source_field: str = "", annotate: str = ""):
    app.text_input(key="w_train_set").set_value(str(source)).run()
    app.text_input(key="w_join_rollout").set_value(rollout_field).run()
    app.text_input(key="w_join_source").set_value(source_field).run()
    app.text_input(key="w_annotate").set_value(annotate).run()
    assert not app.exception, app.exception


def export_button(app):
    return next(b for b in app.button if b.label == "Export")


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_match_rate_shown_is_the_engine_s_before_anything_is_written(app, tmp_path):
    rollouts, source = open_export(app, tmp_path)
    set_training_set(app, source)
    assert not app.error, [e.value for e in app.error]
    counts = join(bucketing.load(rollouts), str(source), "extra_info.index").counts()
    assert counts["matched_rollouts"] == ROLLOUTS - 1 and counts["duplicate_keys"] == 1  # what the data were made for
    assert metric(app, "Matched rollouts") == f"{counts['matched_rollouts']} of {counts['rollouts']}"
    assert metric(app, "Matched source rows") == f"{counts['matched_rows']} of {counts['source_rows']}"
    assert metric(app, "Unscored source rows") == str(counts["unscored_rows"])
    assert metric(app, "Duplicate keys") == str(counts["duplicate_keys"])
    shown = plain(" ".join(m.value for m in app.markdown))
    assert "a.jsonl:12 (no field extra_info.index)" in shown  # the unmatched rollout, by its place
    assert "train.parquet row 3, train.parquet row 15" in shown  # the duplicate key's rows
    assert "extra_info.index" in plain(" ".join(c.value for c in app.caption))  # offered among the fields seen
    assert not (tmp_path / "out").exists()


def test_the_match_is_kept_across_reruns(app, tmp_path, monkeypatch):
    _, source = open_export(app, tmp_path)
    set_training_set(app, source)
    calls = []
    import pages.common.trainset as trainset

    monkeypatch.setattr(trainset, "join", lambda *a, **k: calls.append(a) or join(*a, **k))
    go(app, "buckets")
    drag(app, [0.2, 0.7], seq=2)
    go(app, "export")
    app.checkbox(key="w_cumulative").check().run()
    assert metric(app, "Matched rollouts") == f"{ROLLOUTS - 1} of {ROLLOUTS}" and not calls


@pytest.mark.parametrize("where", ["/usr/share", "../../.."])
def test_a_source_outside_the_allowed_roots_is_refused(app, tmp_path, where):
    open_export(app, tmp_path)
    set_training_set(app, where)
    assert any("outside the folders this app may use" in e.value for e in app.error), [e.value for e in app.error]
    assert not any(m.label == "Matched rollouts" for m in app.metric)
    assert export_button(app).disabled


def test_a_join_field_missing_from_the_source_is_one_line(app, tmp_path):
    _, source = open_export(app, tmp_path)
    set_training_set(app, source, source_field="extra_info.number")
    errors = [plain(e.value) for e in app.error]
    assert len(errors) == 1 and "has no field number" in errors[0] and "\n" not in errors[0], errors
    assert export_button(app).disabled
    app.text_input(key="w_join_source").set_value("").run()  # fixed: the match rate, and Export again
    assert not app.error and not export_button(app).disabled


def test_a_bad_annotate_field_is_one_line(app, tmp_path):
    _, source = open_export(app, tmp_path)
    set_training_set(app, source, annotate="extra_info")  # would overwrite the join field
    assert len(app.error) == 1 and "overwrite the join field" in app.error[0].value
    assert export_button(app).disabled


def test_export_writes_the_engine_s_training_set_and_recipes_and_the_command_the_same(app, tmp_path):
    rollouts, source = open_export(app, tmp_path)
    set_training_set(app, source, annotate="extra_info.difficulty")
    app.multiselect(key="w_recipes").set_value(["verl", "trl"]).run()
    format_text = plain(" ".join(m.value for m in app.markdown))
    assert "3 .jsonl files" in format_text and "train_set/" in format_text and "recipe-verl.md" in format_text
    export_button(app).click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    out = tmp_path / "out"

    data = bucketing.load(rollouts)
    plan = bucketing.threshold_plan("mean_reward", [0.3, 0.7]).renamed(NAMES)
    engine = tmp_path / "engine"
    bucketing.export(
        data,
        plan,
        engine,
        join=join(data, str(source), "extra_info.index"),
        annotate="extra_info.difficulty",
        recipes=["verl", "trl"],
    )
    app_files, engine_files = files_under(out), files_under(engine)
    assert set(app_files) == set(engine_files)
    train_files = sorted(name for name in app_files if name.startswith("train_set/"))
    assert train_files == sorted(f"train_set/{n}.parquet" for n in [*NAMES, "_unscored"])
    for name in app_files:
        if not name.startswith("recipe-"):  # a recipe names its folder's absolute path
            assert app_files[name] == engine_files[name], name
    manifest = json.loads(app_files["manifest.json"])
    assert manifest["train_set"]["annotate"] == "extra_info.difficulty" and manifest["recipes"]

    # Each recipe is shown as written, and every file written is listed.
    shown = [c.value for c in app.code]
    for trainer in ("verl", "trl"):
        text = (out / f"recipe-{trainer}.md").read_text()
        assert text == render(trainer, manifest, out) and text.rstrip("\n") in shown, trainer
    listed = set(next(d.value for d in app.dataframe if "holds" in d.value.columns)["file"])
    assert listed == set(app_files)

    # The command shown writes the same files.
    command = next(c for c in shown if c.startswith("python -m bucketing"))
    for flag in (f"--train-set {source}", "--join-on extra_info.index", "--annotate extra_info.difficulty"):
        assert flag in command
    assert "--recipe verl,trl" in command
    args = shlex.split(command)[3:]
    args[args.index("-o") + 1] = str(tmp_path / "cli")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    cli_files = files_under(tmp_path / "cli")
    assert set(cli_files) == set(app_files)
    assert all(cli_files[name] == app_files[name] for name in app_files if not name.startswith("recipe-"))


def test_a_source_field_named_otherwise_goes_into_the_command(app, tmp_path):
    rollouts, _ = make_data(tmp_path)
    rows = [{"prompt": f"q{i}", "num": i} for i in range(SOURCE_ROWS)]
    source = tmp_path / "source" / "renamed.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    load_folder(app, rollouts)
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    set_training_set(app, source, source_field="num")
    assert metric(app, "Matched rollouts") == f"{ROLLOUTS - 1} of {ROLLOUTS}"
    export_button(app).click().run()
    assert not app.exception and not app.error
    command = next(c.value for c in app.code if c.value.startswith("python -m bucketing"))
    assert "--join-on extra_info.index=num" in command
    assert (tmp_path / "out" / "train_set" / "_unscored.jsonl").read_text().count("\n") == SOURCE_ROWS - ROLLOUTS + 1


def test_the_output_format_says_which_kind_of_bucket_file_each_input_kind_gets(app, tmp_path):
    write_rows(tmp_path / "in" / "rows.parquet", rollout_rows(30))
    write_lines(tmp_path / "in" / "lines.jsonl", [rollout_line([1, 0]), rollout_line([0, 0])])
    load_folder(app, tmp_path / "in")
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    said = plain(" ".join(m.value for m in app.markdown)).replace("**", "")
    assert "3 .jsonl files of rollouts" in said and "3 .parquet files of rollouts" in said
    assert "difficulty.parquet" in said and "no train_set/" in said
