"""The Data page on a real rollout folder: files left out by globs, files that are not JSONL named."""

from __future__ import annotations

import json
import shlex

from .app_support import go, metric, plain
from .conftest import jsonl_files, rollout_line, run_cli, write_lines

ODD_NAME = "![p](img.png) *x* `c`.jsonl"  # markdown in a name: shown as it is, never as a link


def rollout_folder(root):
    write_lines(root / "a.jsonl", [rollout_line([1, 0]), rollout_line([1, 1]), rollout_line([0, 0])])
    write_lines(root / ODD_NAME, [b"<PLACEHOLDER ROW>", b"<PLACEHOLDER ROW>"])
    write_lines(root / "drafts" / "old.jsonl", [rollout_line([1])])
    write_lines(root / "b" / "c.tmp.jsonl", [rollout_line([0.5])])
    return root


def frame_with(at, column: str):
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def load_with_exclude(at, folder, exclude: str):
    go(at, "data")
    at.text_input(key="w_folder").set_value(str(folder))
    at.text_area(key="w_exclude").set_value(exclude)
    at.button[0].click().run()  # the form's Load button
    assert not at.exception, at.exception
    return at


def test_the_data_page_leaves_out_files_by_glob_and_lists_them(app, tmp_path):
    load_with_exclude(app, rollout_folder(tmp_path / "in"), "drafts\n\n *.tmp.jsonl ")
    assert metric(app, "Files") == "2" and metric(app, "Rollouts") == "3"
    assert frame_with(app, "left out")["left out"].tolist() == ["b/c.tmp.jsonl", "drafts/old.jsonl"]
    assert any(plain(c.value).startswith("2 files left out by the globs") for c in app.caption)
    go(app, "distributions")
    go(app, "data")
    assert app.text_area(key="w_exclude").value == "drafts\n\n *.tmp.jsonl "  # kept across pages

    load_with_exclude(app, tmp_path / "in", "")  # nothing left out: every file read again
    assert metric(app, "Files") == "4" and metric(app, "Rollouts") == "5"
    assert not [frame for frame in app.dataframe if "left out" in frame.value.columns]


def test_the_data_page_names_files_that_are_not_jsonl(app, tmp_path):
    load_with_exclude(app, rollout_folder(tmp_path / "in"), "")
    odd = frame_with(app, "detail")
    assert odd["file"].tolist() == [ODD_NAME] and odd["lines"].tolist() == [2]  # a table cell: literal text
    assert any(w.value.startswith("1 file not JSONL: every line of them goes to `_skipped.jsonl`") for w in app.warning)
    reasons = frame_with(app, "reason")
    assert "file is not JSONL" in reasons["reason"].tolist()
    shown = [*app.markdown, *app.warning, *app.caption, *app.error]
    assert not any("![p](img.png)" in element.value for element in shown)  # never raw markdown: no image fetched


def test_the_export_page_command_leaves_out_the_same_files(app, tmp_path):
    load_with_exclude(app, rollout_folder(tmp_path / "in"), "drafts/*\n*.tmp.jsonl")
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    next(b for b in app.button if b.label == "Export").click().run()
    assert not app.exception and app.success
    command = app.code[0].value
    assert "--exclude 'drafts/*' --exclude '*.tmp.jsonl'" in command
    args = shlex.split(command)[3:]
    args[args.index("-o") + 1] = str(tmp_path / "cli")
    assert run_cli(*args).returncode == 0
    assert jsonl_files(tmp_path / "cli") == jsonl_files(tmp_path / "out")
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["excluded"] == ["b/c.tmp.jsonl", "drafts/old.jsonl"]
    assert [f["file"] for f in manifest["skipped_files"]] == [ODD_NAME]
