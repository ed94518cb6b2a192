"""What a new user tripped on (issue 19), through AppTest: after an upload the Folder field stops naming the
folder loaded before, and the Export page's command says the data came from an upload."""

from __future__ import annotations

import json
import shlex

import pytest

from pages.common.charts import DARK_TEXT, LIGHT_TEXT, contrast, readable_text

from .app_support import go
from .conftest import rollout_line


def upload_and_load(at, files: list[tuple[str, bytes]]):
    go(at, "data")
    at.file_uploader[0].set_value([(name, body, "application/octet-stream") for name, body in files]).run()
    next(b for b in at.button if b.label == "Load the uploaded files").click().run()
    assert not at.exception, at.exception
    return at


def test_after_an_upload_the_folder_field_no_longer_names_the_folder_loaded_before(app):
    assert app.text_input(key="w_folder").value.endswith("examples/rollouts")
    upload_and_load(app, [("a.jsonl", b"".join(rollout_line([i % 2, 1]) + b"\n" for i in range(6)))])
    assert app.text_input(key="w_folder").value == ""
    assert next(m.value for m in app.metric if m.label == "Rollouts") == "6"


def test_an_export_of_uploaded_files_shows_a_command_for_the_user_s_own_folder(app, tmp_path):
    upload_and_load(app, [("a.jsonl", b"".join(rollout_line([i % 2, 1]) + b"\n" for i in range(6)))])
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(tmp_path / "out")).run()
    next(b for b in app.button if b.label == "Export").click().run()
    assert not app.exception and any("Wrote 6 rollouts" in s.value for s in app.success)
    command = shlex.split(app.code[0].value)
    assert command[command.index("-i") + 1] == "YOUR_FOLDER"
    assert str(app.session_state["upload_dir"]) not in app.code[0].value
    assert any("uploaded files" in c.value and "YOUR_FOLDER" in c.value for c in app.caption)


# --- charts readable in both themes -----------------------------------------------------------------------------


def plotly_specs(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


@pytest.mark.parametrize("count", [2, 5, 10])
def test_every_count_in_the_compare_matrix_contrasts_with_its_square(app, count):
    go(app, "compare")
    app.slider[0].set_value(count).run()
    cells = next(spec["data"][0] for spec in plotly_specs(app) if spec["data"][0]["type"] == "scatter")
    fills, texts = cells["marker"]["color"], cells["textfont"]["color"]
    assert len(fills) == len(texts) == count * count and len(set(fills)) > 1
    worst = min(contrast(fill, text) for fill, text in zip(fills, texts))
    assert worst >= 4.5, worst  # WCAG AA for text, on the square's own colour (the same in light and dark)


def test_contrast_is_the_wcag_ratio():
    assert contrast("#ffffff", "#000000") == pytest.approx(21)
    assert contrast("rgb(119, 119, 119)", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert readable_text(["#08306b", "rgb(247, 251, 255)"]) == [LIGHT_TEXT, DARK_TEXT]
