"""What a new user tripped on (issue 19), through AppTest: after an upload the Folder field stops naming the
folder loaded before, and the Export page's command says the data came from an upload."""

from __future__ import annotations

import shlex

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
