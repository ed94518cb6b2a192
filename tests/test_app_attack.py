"""Hostile names, uploads and paths through the app (AppTest, no browser).

Names that come from the data or the file system (fields, files, folders) are shown as literal text, never
as markdown; uploads are kept whole, bounded and never named by their temporary folder; a load stops when
its session has gone; paths that are too long and inputs that change under a preview get a message; links
inside an allowed folder that point outside it are neither read nor written through.
"""

from __future__ import annotations

import gzip
import importlib
import io
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import bucketing
from bucketing.roots import ENV

from .app_support import APP, go, load_folder, metric
from .app_support import plain as shown
from .conftest import ROOT, rollout_line, write_lines

IMAGE = "![p](https://example.invalid/f.png)"
NASTY_DIR = "we`ird ![p](f.png) :smile: :red[x] $x$ <b>"  # a folder name: no slash


@pytest.fixture
def app(tmp_path, monkeypatch) -> AppTest:
    """The app on the bundled sample; tmp_path/allowed is an extra allowed root, tmp_path/outside is not."""
    (tmp_path / "allowed").mkdir()
    (tmp_path / "outside").mkdir()
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(ENV, str(tmp_path / "allowed"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def allowed(tmp_path) -> Path:
    return (tmp_path / "allowed").resolve()


@pytest.fixture
def outside(tmp_path) -> Path:
    return (tmp_path / "outside").resolve()


def shows_literally(markdown: str, text: str) -> bool:
    """``markdown`` shows ``text`` as is, and holds none of its markdown unescaped."""
    return text in shown(markdown) and text not in markdown


def markdown_left(markdown: str) -> list[str]:
    """What in ``markdown`` would still start markdown: a bracket, backtick, ``$`` or ``<`` not escaped by a
    backslash, an emoji shortcode (Streamlit expands those even after a backslash)."""
    return re.findall(r"(?<!\\)[\[\]`$<]|:smile:", markdown)


def messages(at: AppTest) -> list[str]:
    """The markdown of every message, caption, markdown block and widget label the page drew."""
    bodies = [
        e.value
        for kind in ("error", "warning", "success", "info", "caption", "markdown", "toast")
        for e in getattr(at, kind)
    ]
    bodies += [e.label for e in at.checkbox] + [e.label for e in at.expander]
    return bodies


def every_text(at: AppTest) -> str:
    """All the page's messages plus its tables, as one string."""
    tables = [d.value.to_csv() for d in at.dataframe]
    return "\n".join(messages(at) + tables)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# --- 1. names are shown as text, never as markdown ------------------------------------------


def test_a_field_name_in_an_engine_error_is_shown_as_text(app, allowed):
    write_lines(
        allowed / "in" / "a.jsonl", [('{{"{}": 1, "other": "x"}}'.format(IMAGE.replace('"', '\\"'))).encode()] * 3
    )
    load_folder(app, allowed / "in")
    error = next(e for e in errors(app) if "fields seen" in e)
    assert shows_literally(error, IMAGE), error
    assert not markdown_left(error), error


def test_a_folder_name_with_markdown_is_shown_as_text_in_the_data_pages_messages(app, allowed):
    """(The sidebar's "Data: name" is checked in the browser: AppTest drops the sidebar after a page switch.)"""
    folder = allowed / NASTY_DIR
    folder.mkdir()
    load_folder(app, folder)
    error = next(e for e in errors(app) if "no *" in shown(e))
    assert shows_literally(error, NASTY_DIR), error
    assert not markdown_left(error), error


def test_an_export_folder_with_a_backtick_is_shown_as_text_when_replacing_and_after_writing(app, allowed):
    out = allowed / NASTY_DIR
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(out)).run()
    next(b for b in app.button if b.label == "Export").click().run()
    assert not app.exception and not errors(app), errors(app)
    success = app.success[0].value
    assert shows_literally(success, str(out)), success
    app.run()
    replace = next(c for c in app.checkbox if c.label.startswith("Replace"))
    assert shows_literally(replace.label, str(out)), replace.label
    assert not markdown_left(replace.label), replace.label


def test_a_file_name_with_markdown_is_shown_as_text_in_warnings_and_the_preview(app, allowed):
    name = "x ![p](f.png) :smile: `t`.jsonl"
    folder = allowed / "in"
    write_lines(folder / name, [rollout_line([1, 0]), rollout_line([0, 0]), rollout_line([1, 1])])
    (folder / f"dangling {name}").symlink_to(folder / "missing.jsonl")
    load_folder(app, folder)
    warning = next(w.value for w in app.warning if "dangling" in w.value)
    assert shows_literally(warning, name), warning
    go(app, "buckets")
    labels = [e.label for e in app.expander]
    assert labels and all(shows_literally(label, name) for label in labels), labels


def test_a_bucket_name_typed_with_markdown_is_refused_as_text(app):
    go(app, "buckets")
    app.session_state["names_mean_reward_count_3"] = {
        "edited_rows": {0: {"name": IMAGE}},
        "added_rows": [],
        "deleted_rows": [],
    }
    app.run()
    assert not app.exception
    error = next(e for e in errors(app) if "the old names are kept" in e)
    assert shows_literally(error, IMAGE), error


# --- 2. uploads -------------------------------------------------------------------------------


def upload(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    """Upload ``files`` (name, bytes) on the Data page and press "Load the uploaded files"."""
    go(at, "data")
    at.file_uploader[0].set_value([(name, body, "application/octet-stream") for name, body in files]).run()
    next(b for b in at.button if b.label == "Load the uploaded files").click().run()
    assert not at.exception, at.exception
    return at


def uploaded(at: AppTest) -> Path:
    """The session's folder of uploaded files."""
    return Path(at.session_state["upload_dir"])


def lines(count: int) -> bytes:
    return b"".join(rollout_line([i % 2, 1]) + b"\n" for i in range(count))


def test_uploads_with_the_same_name_are_all_kept(app):
    upload(app, [("s1/rollouts.jsonl", lines(10)), ("s2/rollouts.jsonl", lines(7)), ("rollouts.jsonl", lines(5))])
    assert metric(app, "Files") == "3"
    assert metric(app, "Rollouts") == "22"
    names = sorted(p.name for p in uploaded(app).iterdir())
    assert names == ["rollouts (2).jsonl", "rollouts (3).jsonl", "rollouts.jsonl"]


def test_uploads_the_loader_does_not_read_are_named(app):
    upload(app, [("a.jsonl", lines(3)), ("notes.json.gz", gzip.compress(b"{}")), ("x.gz", gzip.compress(b"x"))])
    assert metric(app, "Rollouts") == "3"
    warning = next(w.value for w in app.warning if "notes" in w.value)
    assert "notes.json.gz" in shown(warning) and "x.gz" in shown(warning), warning


@pytest.mark.parametrize(
    "files",
    [
        [("empty.jsonl", b"")],
        [("a.jsonl", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)],
        [("a.jsonl.gz", b"not gzip at all")],
        [("a.jsonl", b'{"x": 1}\n' * 3)],
        [("notes.json.gz", gzip.compress(b"{}"))],
    ],
    ids=["empty", "binary", "bad-gzip", "no-scores", "nothing-readable"],
)
def test_messages_about_uploads_never_show_the_temporary_folder(app, files):
    upload(app, files)
    assert errors(app), "a bad upload gets a message"
    folder = str(uploaded(app))
    text = every_text(app)
    assert folder not in text and "bucketing-upload-" not in text, text
    assert metric(app, "Rollouts") == "240"  # still the sample


def upload_limits(monkeypatch, per_file: int, per_batch: int) -> None:
    """Smaller upload limits, for a test (there is nothing to set before the limits existed)."""
    try:
        module = importlib.import_module("pages.common.uploads")
    except ImportError:
        return
    monkeypatch.setattr(module, "FILE_LIMIT", per_file)
    monkeypatch.setattr(module, "BATCH_LIMIT", per_batch)


def test_a_gz_upload_that_decompresses_past_the_per_file_limit_is_refused(app, monkeypatch):
    upload_limits(monkeypatch, per_file=1 << 20, per_batch=4 << 20)
    bomb = gzip.compress(lines(1) * 20_000, 9)  # ~1.2 MB decompressed
    assert len(bomb) < 100_000
    upload(app, [("bomb.jsonl.gz", bomb)])
    error = next(e for e in errors(app) if "bomb.jsonl.gz" in shown(e))
    assert "1 MiB" in shown(error), error
    assert metric(app, "Rollouts") == "240"
    assert not any(uploaded(app).iterdir()), "the refused upload is left on disk"


def test_uploads_past_the_per_batch_limit_are_refused(app, monkeypatch):
    upload_limits(monkeypatch, per_file=1 << 20, per_batch=(3 << 20) // 2)
    part = lines(1) * 15_000  # 0.84 MB each: every file fits, the two together do not
    upload(app, [("a.jsonl", part), ("b.jsonl.gz", gzip.compress(part))])
    error = next(e for e in errors(app) if "1.5 MiB" in shown(e))
    assert "upload" in error
    assert metric(app, "Rollouts") == "240"


def test_uploads_are_copied_to_disk_in_pieces_not_whole(app, monkeypatch):
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    reads = []

    def no_whole_buffer(self):
        raise AssertionError("getbuffer() holds the whole upload at once")

    def read(self, size=-1):
        reads.append(size)
        return io.BytesIO.read(self, size)

    monkeypatch.setattr(UploadedFile, "getbuffer", no_whole_buffer)
    monkeypatch.setattr(UploadedFile, "read", read)
    upload(app, [("a.jsonl", lines(30_000))])  # ~1.6 MB
    assert metric(app, "Rollouts") == "30,000"
    assert reads and all(0 < size <= 1 << 20 for size in reads), reads


def test_a_load_stops_when_its_session_has_gone(app, allowed, monkeypatch):
    """The browser closed while a load ran: the next progress report stops it; nothing is kept."""
    from streamlit.runtime import Runtime

    for i in range(3):
        write_lines(allowed / "in" / f"part_{i}.jsonl", [rollout_line([1, 0])] * 5)
    load = bucketing.load
    reports = []

    def load_then_leave(path, *args, progress=None, **kwargs):
        Runtime._instance.is_active_session.return_value = False  # the browser went away

        def counting(done, total):
            reports.append(done)
            if progress:
                progress(done, total)

        return load(path, *args, progress=counting, **kwargs)

    monkeypatch.setattr(bucketing, "load", load_then_leave)
    load_folder(app, allowed / "in")
    assert len(reports) == 1, "the load went on after its session had gone"
    assert app.session_state["source"].path != allowed / "in"
    assert not errors(app), errors(app)


# --- 3. paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", ["x" * 300, "a/" * 2100 + "b"], ids=["300-char-name", "4200-char-path"])
def test_an_export_folder_too_long_gets_a_one_line_message(app, allowed, tail):
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(allowed / tail)).run()
    assert not app.exception, app.exception
    assert len(errors(app)) == 1 and "\n" not in errors(app)[0], errors(app)
    assert "long" in errors(app)[0]
    assert not any(b.label == "Export" for b in app.button)


@pytest.mark.parametrize("tail", ["x" * 300, "a/" * 2100 + "b"], ids=["300-char-name", "4200-char-path"])
def test_a_data_folder_too_long_gets_a_one_line_message(app, allowed, tail):
    load_folder(app, allowed / tail)
    assert not app.exception, app.exception
    assert len(errors(app)) == 1 and "\n" not in errors(app)[0], errors(app)
    assert metric(app, "Rollouts") == "240"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.write_bytes(f.read_bytes()[:40]), "got shorter since it was read"),
        (lambda f: f.unlink(), "can't be read"),
    ],
    ids=["truncated", "deleted"],
)
def test_a_preview_of_a_changed_input_says_so(app, allowed, change, message):
    folder = allowed / "in"
    write_lines(folder / "a.jsonl", [rollout_line([i % 3, 1], prompt=f"prompt {i}") for i in range(30)])
    load_folder(app, folder)
    assert metric(app, "Rollouts") == "30"
    change(folder / "a.jsonl")
    go(app, "buckets")
    assert not app.exception, app.exception
    assert any(message in shown(e) for e in errors(app)), errors(app)
    go(app, "compare")
    assert not app.exception, app.exception


# --- 5. links inside an allowed folder that point outside it --------------------------------

SECRET = "the outside file's secret prompt"


@pytest.fixture
def leak(allowed, outside) -> Path:
    """allowed/in: one file of its own and leak.jsonl, a link to a rollout file outside the allowed folders."""
    write_lines(allowed / "in" / "own.jsonl", [rollout_line([i % 2, 1], prompt=f"own {i}") for i in range(4)])
    write_lines(outside / "secret.jsonl", [rollout_line([1, 1], prompt=SECRET)] * 6)
    (allowed / "in" / "leak.jsonl").symlink_to(outside / "secret.jsonl")
    return allowed / "in"


def test_a_link_to_a_file_outside_is_passed_over_with_a_warning(app, leak):
    load_folder(app, leak)
    assert not errors(app), errors(app)
    assert metric(app, "Files") == "1"
    assert metric(app, "Rollouts") == "4"
    assert any("leak.jsonl" in shown(w.value) for w in app.warning), [w.value for w in app.warning]
    for page in ("buckets", "compare"):
        go(app, page)
        for bucket in app.selectbox(key="preview_bucket").options if page == "buckets" else []:
            app.selectbox(key="preview_bucket").set_value(bucket).run()
            app.toggle(key="preview_full").set_value(True).run()
            assert SECRET not in every_text(app) + " ".join(t.value for t in app.text)
        assert SECRET not in every_text(app) + " ".join(t.value for t in app.text)


def test_an_export_through_a_linked_cumulative_folder_is_refused_and_writes_nothing_outside(app, allowed, outside):
    (outside / "cum").mkdir()
    (allowed / "out").mkdir()
    (allowed / "out" / "cumulative").symlink_to(outside / "cum", target_is_directory=True)
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(allowed / "out")).run()
    app.checkbox(key="w_cumulative").check().run()
    button = next((b for b in app.button if b.label == "Export"), None)
    if button is not None:
        if any(c.label.startswith("Replace") for c in app.checkbox):
            next(c for c in app.checkbox if c.label.startswith("Replace")).check().run()
            button = next(b for b in app.button if b.label == "Export")
        button.click().run()
    assert not app.exception, app.exception
    assert errors(app), "the export through a link gets a message"
    assert list((outside / "cum").iterdir()) == []
    assert not app.success


def test_the_zip_of_an_export_never_follows_a_link_put_in_its_place(app, allowed, outside):
    from pages.common.archive import written_sizes, zipped

    write_lines(outside / "secret.jsonl", [rollout_line([1, 1], prompt=SECRET)])
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(allowed / "out")).run()
    next(b for b in app.button if b.label == "Export").click().run()
    manifest = app.session_state["last_export"]["manifest"]
    names = [f["file"] for f in manifest["files"]] + ["manifest.json"]
    victim = allowed / "out" / names[0]
    victim.unlink()
    victim.symlink_to(outside / "secret.jsonl")  # put there after the export, before the click
    roots = [allowed]
    assert names[0] not in written_sizes(allowed / "out", names, roots)
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(zipped(allowed / "out", names, roots, 1 << 20)))
    assert names[0] not in archive.namelist() and "manifest.json" in archive.namelist()
    assert all(SECRET.encode() not in archive.read(n) for n in archive.namelist())
