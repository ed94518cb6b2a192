"""Every page of the app through Streamlit's AppTest: load, explore, bucket, drag (as the component sends), export."""

from __future__ import annotations

import json
import re
import shlex

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import bucketing
from bucketing.plan import bucket_table
from bucketing.wording import counted

from .app_support import bucket_rows, drag, go, load_folder, metric, plain
from .conftest import ROOT, SAMPLE, jsonl_files, output_lines, rollout_line, run_cli, sample_scores, write_lines


def cut_inputs(app: AppTest) -> list:
    """The threshold number inputs (the preview has a number input too: its seed)."""
    return [n for n in app.number_input if n.key.startswith("w_cut_")]


def test_opens_on_the_bundled_sample(app):
    totals = bucketing.load(SAMPLE).totals
    assert metric(app, "Rollouts") == f"{totals['rollouts']:,}"
    assert metric(app, "Files") == str(totals["files"])
    assert any("reward[].score" in plain(m.value) for m in app.markdown)
    assert app.get("plotly_chart")  # responses per rollout


def test_a_folder_with_bad_lines_shows_them(app, tmp_path):
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1]), b"{oops", rollout_line([0, 1]), b'{"reward": []}'])
    load_folder(app, tmp_path / "in")
    assert metric(app, "Rollouts") == "2" and metric(app, "Skipped") == "2"
    reasons = app.dataframe[-1].value
    assert set(reasons["reason"]) == {"invalid JSON", "empty scores"}
    assert "a.jsonl:2" in " ".join(reasons["example"])


@pytest.mark.parametrize(
    "where, message",
    [
        ("/", "outside the folders this app may use"),
        ("../..", "outside the folders this app may use"),
        ("{tmp}/missing", "can't be read"),
        ("{tmp}/empty", "no *.jsonl"),
        ("{tmp}/notes.txt", "is not a .jsonl"),
    ],
)
def test_bad_folders_get_a_message_and_keep_the_loaded_data(app, tmp_path, where, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    load_folder(app, where.format(tmp=tmp_path))
    assert any(message in plain(e.value) for e in app.error), [e.value for e in app.error]
    assert metric(app, "Rollouts") == "240"  # still the sample


def test_distributions_show_all_seven_metrics_and_k_applies_everywhere(app):
    go(app, "distributions")
    charts = app.get("plotly_chart")
    assert len(charts) == len(bucketing.METRICS)
    captions = " ".join(c.value for c in app.caption)
    assert "distinct values" in captions
    app.number_input(key="w_k").set_value(4).run()
    app.number_input(key="w_pass_threshold").set_value(1.0).run()
    assert app.session_state["k"] == 4 and app.session_state["pass_threshold"] == 1.0
    go(app, "buckets")
    app.selectbox(key="w_metric").set_value("pass_at_k").run()
    data = bucketing.load(SAMPLE)
    values = np.sort(data.table(bucketing.Params(k=4, pass_threshold=1.0))["pass_at_k"].to_numpy())
    plan = bucketing.percentile_plan(values, "pass_at_k", 3, params=bucketing.Params(k=4, pass_threshold=1.0))
    assert [r["count"] for r in bucket_rows(app)] == bucket_table(plan, values)["count"].tolist()


def test_bucket_count_sets_the_table(app):
    go(app, "buckets")
    app.slider(key="w_num_buckets").set_value(5).run()
    rows = bucket_rows(app)
    assert [r["name"] for r in rows] == ["very_easy", "easy", "medium", "hard", "very_hard"]
    assert sum(r["count"] for r in rows) == 240
    app.radio(key="w_ties").set_value("split").run()
    counts = [r["count"] for r in bucket_rows(app)]
    assert max(counts) - min(counts) <= 1


def test_a_drag_sets_thresholds_and_the_counts_follow(app):
    go(app, "buckets")
    drag(app, [0.25, 0.8])
    assert app.session_state["mode"] == "thresholds"
    values = np.sort(bucketing.load(SAMPLE).table()["mean_reward"].to_numpy())
    rows = bucket_rows(app)
    expected = bucket_table(bucketing.threshold_plan("mean_reward", [0.25, 0.8]), values)
    assert [r["count"] for r in rows] == expected["count"].tolist()
    assert [r["range"] for r in rows] == ["mean_reward > 0.8", "0.25 < mean_reward <= 0.8", "mean_reward <= 0.25"]
    assert [n.value for n in cut_inputs(app)] == [0.25, 0.8]
    drag(app, [0.25, 0.5, 0.8], seq=2)  # a line added by double-click
    assert len(bucket_rows(app)) == 4


def test_threshold_inputs_add_and_remove(app):
    go(app, "buckets")
    app.radio(key="w_mode").set_value("thresholds").run()
    start = list(app.session_state["thresholds"]["mean_reward"])
    assert start  # seeded from the count mode's cut points
    next(b for b in app.button if "Add threshold" in b.label).click().run()
    assert len(app.session_state["thresholds"]["mean_reward"]) == len(start) + 1
    next(b for b in app.button if b.label == "Remove").click().run()
    assert len(app.session_state["thresholds"]["mean_reward"]) == len(start)
    cut_inputs(app)[0].set_value(1.5).run()  # above every value: the easiest bucket empties
    assert any("outside the data" in w.value for w in app.warning)
    assert any(
        re.search(r"bucket \S+ is empty: no rollout has mean_reward > 1.5; move or remove a threshold", plain(w.value))
        for w in app.warning
    ), [w.value for w in app.warning]


def test_names_are_edited_in_the_table_and_checked(app):
    go(app, "buckets")
    key = "names_mean_reward_count_3"
    app.session_state[key] = {"edited_rows": {0: {"name": "warmup"}}, "added_rows": [], "deleted_rows": []}
    app.run()
    assert [r["name"] for r in bucket_rows(app)] == ["warmup", "medium", "hard"]
    app.session_state[key] = {"edited_rows": {0: {"name": "../evil"}}, "added_rows": [], "deleted_rows": []}
    app.run()
    assert any("not allowed" in e.value for e in app.error)
    assert [r["name"] for r in bucket_rows(app)] == ["warmup", "medium", "hard"]


def test_all_equal_values_are_explained(app, tmp_path):
    write_lines(tmp_path / "same" / "a.jsonl", [rollout_line([1, 1]) for _ in range(5)])
    load_folder(app, tmp_path / "same")
    go(app, "buckets")
    assert any("one bucket takes everything" in i.value for i in app.info)


def test_state_survives_page_switches(app):
    go(app, "buckets")
    drag(app, [0.3, 0.6])
    app.selectbox(key="w_metric").set_value("min_reward").run()
    go(app, "export")
    go(app, "data")
    go(app, "buckets")
    assert app.selectbox(key="w_metric").value == "min_reward"
    app.selectbox(key="w_metric").set_value("mean_reward").run()
    assert app.session_state["thresholds"]["mean_reward"] == [0.3, 0.6]
    assert app.radio(key="w_mode").value == "thresholds"


def test_export_writes_what_the_engine_writes(app, tmp_path):
    go(app, "buckets")
    drag(app, [0.3, 0.7])
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    app.radio(key="w_order").set_value("difficulty").run()
    next(b for b in app.button if b.label == "Export").click().run()
    assert not app.exception and any("Wrote 240 rollouts" in s.value for s in app.success)

    data = bucketing.load(SAMPLE)
    plan = bucketing.threshold_plan("mean_reward", [0.3, 0.7]).renamed(["easy", "medium", "hard"])
    bucketing.export(data, plan, tmp_path / "engine", order="difficulty")
    assert output_lines(tmp_path / "out") == output_lines(tmp_path / "engine")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["cuts"] == [0.3, 0.7] and manifest["order"] == "difficulty"
    assert "python -m bucketing" in app.code[0].value and "--thresholds 0.3 0.7" in app.code[0].value


def test_export_asks_before_replacing_files(app, tmp_path):
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    next(b for b in app.button if b.label == "Export").click().run()
    before = (tmp_path / "out" / "easy.jsonl").read_bytes()
    go(app, "buckets")
    app.slider(key="w_num_buckets").set_value(3).run()
    app.selectbox(key="w_metric").set_value("variance").run()
    go(app, "export")
    export_button = next(b for b in app.button if b.label == "Export")
    assert export_button.disabled
    assert (tmp_path / "out" / "easy.jsonl").read_bytes() == before
    app.checkbox(key="confirm_overwrite").check().run()
    next(b for b in app.button if b.label == "Export").click().run()
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["metric"] == "variance"


@pytest.mark.parametrize(
    "out, message",
    [
        ("/etc/buckets", "outside the folders"),
        ("examples/rollouts/out", "inside the input"),
    ],
)
def test_export_refuses_bad_output_folders(app, out, message):
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(out).run()
    assert any(message in e.value for e in app.error), [e.value for e in app.error]
    assert not any(b.label == "Export" for b in app.button)
    assert not (ROOT / out).exists()


def test_export_refuses_a_bad_prefix(app, tmp_path):
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    app.text_input(key="w_prefix").set_value("../x").run()
    assert any("prefix" in e.value for e in app.error)
    assert not (tmp_path / "out").exists()


def test_reopening_an_unchanged_folder_does_not_read_it_again(app, tmp_path, monkeypatch):
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1, 0]), rollout_line([0, 0])])
    calls = []
    real_load = bucketing.load
    monkeypatch.setattr(bucketing, "load", lambda *a, **k: calls.append(a) or real_load(*a, **k))
    load_folder(app, tmp_path / "in")
    load_folder(app, SAMPLE)
    load_folder(app, tmp_path / "in")
    assert len(calls) == 1  # the sample was loaded before the patch; the folder once
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1, 0]), rollout_line([0, 0]), rollout_line([1])])
    load_folder(app, tmp_path / "in")
    assert len(calls) == 2 and metric(app, "Rollouts") == "3"  # changed on disk: read again


def test_the_skipped_lines_are_counted_once_per_data(app, tmp_path, monkeypatch):
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1, 0]), b"{bad", b"[]"])
    calls = []
    real = bucketing.Dataset.skipped_reasons
    monkeypatch.setattr(bucketing.Dataset, "skipped_reasons", lambda self, *a: calls.append(1) or real(self, *a))
    load_folder(app, tmp_path / "in")
    app.run()
    go(app, "buckets")
    go(app, "data")
    assert len(calls) == 1 and "invalid JSON" in app.dataframe[-1].value["reason"].tolist()


def test_histograms_are_pre_binned_bars(app):
    go(app, "distributions")
    for chart in app.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        assert [trace["type"] for trace in spec["data"]] == ["bar"]
        assert len(spec["data"][0]["y"]) <= 60  # bins, not one point per rollout


def test_preview_shows_prompt_and_scored_responses(app):
    go(app, "buckets")
    app.selectbox(key="preview_bucket").set_value("easy").run()
    texts = [m.value for m in app.markdown]
    assert "**Prompt**" in texts
    assert any(t.startswith("**Response 1** · score") for t in texts)
    assert len(app.expander) == 5


def test_preview_truncates_long_texts_with_a_way_to_see_them_whole(app, tmp_path):
    long_prompt = "why " * 500
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1, 0], prompt=long_prompt)] * 3)
    load_folder(app, tmp_path / "in")
    go(app, "buckets")
    held = next(row["name"] for row in bucket_rows(app) if row["count"])  # three equal values: one bucket
    app.selectbox(key="preview_bucket").set_value(held).run()
    prompt_texts = [t.value for t in app.text if t.value.startswith("why")]
    assert prompt_texts and all(t.endswith("(+1,400 characters)") for t in prompt_texts)
    app.toggle(key="preview_full").set_value(True).run()
    assert long_prompt.strip() in [t.value.strip() for t in app.text]


def test_typing_a_duplicate_threshold_merges_it(app):
    go(app, "buckets")
    drag(app, [0.3, 0.6])
    cut_inputs(app)[1].set_value(0.3).run()
    assert app.session_state["thresholds"]["mean_reward"] == [0.3]
    assert len(bucket_rows(app)) == 2


def test_export_offers_a_zip_of_small_outputs(app, tmp_path):
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    next(b for b in app.button if b.label == "Export").click().run()
    assert any("zip" in str(e.proto).lower() for e in app.get("download_button"))


def verl_dump(folder) -> list[dict]:
    """Two steps of a verl dump: prompt "a" answered in both files, "b" only in the second."""
    lines = [
        {"input": "a", "output": "a1", "score": 1, "step": 1, "acc": True},
        {"input": "b", "output": "b1", "score": 0.0, "step": 2, "acc": False},
        {"input": "a", "output": "a2", "score": 0.5, "step": 2, "acc": True},
        {"input": "b", "output": "b2", "score": 0, "step": 2, "acc": False},
    ]
    write_lines(folder / "1.jsonl", [json.dumps(lines[0]).encode()])
    write_lines(folder / "2.jsonl", [json.dumps(line).encode() for line in lines[1:]])
    return lines


def test_a_trainer_dump_is_detected_grouped_and_its_layout_can_be_changed(app, tmp_path):
    verl_dump(tmp_path / "in")
    load_folder(app, tmp_path / "in")
    assert metric(app, "Rollouts") == "2" and metric(app, "Lines") == "4"
    layout = next(m.value for m in app.markdown if m.value.startswith("**Layout**"))
    assert "detected" in layout and "verl dump" in layout and "--scores score --group-by input" in layout

    load_folder(app, tmp_path / "in", scores="acc", group_by="step,input")  # booleans, per step
    assert metric(app, "Rollouts") == "3"
    layout = next(m.value for m in app.markdown if m.value.startswith("**Layout**"))
    assert "as you set it" in layout and "--scores acc --group-by step,input" in layout
    go(app, "distributions")
    go(app, "buckets")
    assert sum(row["count"] for row in bucket_rows(app)) == 3

    load_folder(app, tmp_path / "in", scores="score", group_by="input,input")  # the same checks as the CLI
    assert any("names a field twice" in e.value for e in app.error)
    assert metric(app, "Rollouts") == "3"  # the loaded data stays


def test_the_preview_of_a_grouped_rollout_shows_every_line_s_response(app, tmp_path):
    verl_dump(tmp_path / "in")
    load_folder(app, tmp_path / "in")
    go(app, "buckets")
    easiest = app.selectbox(key="preview_bucket").options[0]
    app.selectbox(key="preview_bucket").set_value(easiest).run()
    labels = [plain(e.label) for e in app.expander]
    assert labels and "1.jsonl:1 + 1 more lines" in labels[0] and "2 responses" in labels[0]
    texts = [t.value for t in app.text]
    assert "a1" in texts and "a2" in texts
    responses = [m.value for m in app.markdown if m.value.startswith("**Response")]
    assert responses == ["**Response 1** · score `1`", "**Response 2** · score `0.5`"]


def test_export_of_a_grouped_dump_keeps_groups_together_and_gives_the_command(app, tmp_path):
    lines = verl_dump(tmp_path / "in")
    load_folder(app, tmp_path / "in", scores="score", group_by="input")
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    next(b for b in app.button if b.label == "Export").click().run()
    assert not app.exception
    written = output_lines(tmp_path / "out")
    for name, file_lines in written.items():
        inputs = {json.loads(line)["input"] for line in file_lines}
        assert len(inputs) <= 1, (name, inputs)  # a prompt's lines never split between buckets
    assert sorted(sum(written.values(), [])) == sorted(json.dumps(line).encode() + b"\n" for line in lines)
    command = app.code[0].value
    assert "--scores score --group-by input" in command


def test_the_learnability_preset_is_one_click_with_its_counts(app):
    go(app, "buckets")
    app.radio(key="w_mode").set_value("learnability").run()
    assert not app.exception
    counts = {row["name"]: row["count"] for row in bucket_rows(app)}
    scores = sample_scores()
    expected = {
        "solved": sum(all(s >= 0.5 for s in r) for r in scores),
        "unsolved": sum(not any(s >= 0.5 for s in r) for r in scores),
    }
    expected["learnable"] = len(scores) - expected["solved"] - expected["unsolved"]
    assert counts == expected and [row["name"] for row in bucket_rows(app)] == ["solved", "learnable", "unsolved"]
    assert app.selectbox(key="w_metric").value == "success_rate"

    go(app, "distributions")
    app.number_input(key="w_pass_threshold").set_value(1.0).run()
    go(app, "buckets")
    counts = {row["name"]: row["count"] for row in bucket_rows(app)}
    assert counts["solved"] == sum(all(s >= 1.0 for s in r) for r in scores)


def plan_text(at: AppTest) -> str:
    return next(plain(m.value) for m in at.markdown if m.value.startswith("**Plan:**"))


def test_the_preset_borrows_the_metric_and_gives_it_back(app):
    go(app, "buckets")
    app.selectbox(key="w_metric").set_value("variance").run()
    app.radio(key="w_mode").set_value("learnability").run()
    assert app.selectbox(key="w_metric").value == "success_rate"
    go(app, "export")
    assert plan_text(app).startswith("**Plan:** the learnability preset (success_rate at pass threshold 0.5)")
    go(app, "buckets")
    app.radio(key="w_mode").set_value("count").run()
    assert app.selectbox(key="w_metric").value == "variance"
    go(app, "export")
    assert plan_text(app).startswith("**Plan:** variance, 3 equal-size buckets")
    go(app, "buckets")
    app.radio(key="w_mode").set_value("thresholds").run()
    drag(app, [0.1, 0.25])
    go(app, "export")
    assert plan_text(app).startswith("**Plan:** variance, thresholds 0.1, 0.25")


def test_export_writes_stages_and_a_split_as_the_engine_and_the_command_do(app, tmp_path):
    go(app, "buckets")
    app.radio(key="w_mode").set_value("learnability").run()
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    app.checkbox(key="w_cumulative").check().run()
    app.checkbox(key="w_split").check().run()
    app.number_input(key="w_val_fraction").set_value(0.25).run()
    app.number_input(key="w_seed").set_value(7).run()
    next(b for b in app.button if b.label == "Export").click().run()
    assert not app.exception and app.success

    data = bucketing.load(SAMPLE)
    bucketing.export(
        data, bucketing.learnability_plan(), tmp_path / "engine", cumulative=True, val_fraction=0.25, seed=7
    )
    app_files, engine_files = jsonl_files(tmp_path / "out"), jsonl_files(tmp_path / "engine")
    assert app_files == engine_files and len(app_files) == 3 * 2 * 3  # buckets, stages; all, train, val

    command = app.code[0].value
    for flag in ("--preset learnability", "--cumulative", "--val-fraction 0.25", "--seed 7"):
        assert flag in command
    args = shlex.split(command)[3:]
    args[args.index("-o") + 1] = str(tmp_path / "cli")
    assert run_cli(*args).returncode == 0
    assert jsonl_files(tmp_path / "cli") == engine_files
    views = next(d.value for d in app.dataframe if "rollouts" in d.value.columns)  # the stages and splits
    assert set(views["part"]) == {"all", "train", "val"}


def test_compare_counts_each_pair_of_buckets_and_previews_a_cell(app):
    go(app, "compare")
    app.selectbox(key="w_compare_a").set_value("mean_reward").run()
    app.selectbox(key="w_compare_b").set_value("variance").run()
    app.slider(key="w_compare_count").set_value(3).run()
    data = bucketing.load(SAMPLE)
    table = data.table()
    plans = {m: bucketing.percentile_plan(table[m], m, 3) for m in ("mean_reward", "variance")}
    ids = {m: plans[m].assign(table[m]) for m in plans}
    rollout_at = {f"{file}:{line}": i for i, (file, line) in enumerate(zip(table["file"], table["line"]))}
    for row in range(3):
        for col in range(3):
            app.selectbox(key="w_compare_row").set_value(plans["mean_reward"].names[row]).run()
            app.selectbox(key="w_compare_col").set_value(plans["variance"].names[col]).run()
            expected = int(((ids["mean_reward"] == row) & (ids["variance"] == col)).sum())
            caption = f"{counted(expected, 'rollout', ',', ('is', 'are'))} `"
            assert any(c.value.startswith(caption) for c in app.caption), caption
            assert len(app.expander) == min(5, expected)
            for shown in app.expander:  # titled "file:line · metric = value · ..."
                rollout = rollout_at[plain(shown.label).split(" · ")[0]]
                assert (ids["mean_reward"][rollout], ids["variance"][rollout]) == (row, col)
    agree = float((ids["mean_reward"] == ids["variance"]).mean())
    assert f"**{agree:.0%}** of the rollouts" in app.markdown[0].value


def test_a_drag_does_not_read_the_previewed_lines_again(app, monkeypatch):
    import bucketing.preview as preview_module

    go(app, "buckets")
    drag(app, [0.3, 0.7], seq=7)
    app.selectbox(key="preview_bucket").set_value("hard").run()
    shown = [e.label for e in app.expander]
    reads = []
    original = preview_module.read_ranges
    monkeypatch.setattr(preview_module, "read_ranges", lambda *a: reads.append(a) or original(*a))
    drag(app, [0.3, 0.72], seq=8)  # the upper line moved: the hard bucket (mean <= 0.3) is the same
    assert [e.label for e in app.expander] == shown and len(shown) == 5 and reads == []
    drag(app, [0.2, 0.72], seq=9)  # now it changes, and its new rollouts are read
    assert reads


def test_compare_and_export_settings_survive_a_visit_to_another_page(app):
    """Streamlit drops a widget's state on pages that don't draw it: an export without the stages and split
    the user ticked would be the result."""
    go(app, "compare")
    app.selectbox(key="w_compare_a").set_value("max_reward").run()
    app.slider(key="w_compare_count").set_value(5).run()
    go(app, "export")
    app.checkbox(key="w_cumulative").check().run()
    app.checkbox(key="w_split").check().run()
    app.number_input(key="w_val_fraction").set_value(0.25).run()
    app.number_input(key="w_seed").set_value(7).run()
    go(app, "buckets")
    go(app, "compare")
    assert app.selectbox(key="w_compare_a").value == "max_reward" and app.slider(key="w_compare_count").value == 5
    go(app, "distributions")
    go(app, "export")
    assert app.checkbox(key="w_cumulative").value and app.checkbox(key="w_split").value
    assert app.number_input(key="w_val_fraction").value == 0.25 and app.number_input(key="w_seed").value == 7
