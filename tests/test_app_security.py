"""What a user types into the app never reaches outside the allowed roots (AppTest, no browser).

The Data page's folder and the Export page's output folder are refused, with a message, when they lead
outside the allowed roots in any way: absolute paths, ``..``, a link, ``~``, network (UNC) paths, a NUL
byte.  The loaded data stays what it was, nothing outside is read (the engine's folder walk and loader
are watched) and nothing is written.  The Export prefix and bucket names (typed in the names table)
must be plain file names: ``^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`` (bucketing/plan.py).

(That .streamlit/config.toml limits uploads is tested in tests/test_docs.py.)
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import bucketing
from bucketing.outputs import MANIFEST, TEMP_PREFIX
from bucketing.plan import NAME_PATTERN
from bucketing.roots import ENV
from pages.common import shared

from .app_support import APP, bucket_rows, go, load_folder, metric
from .conftest import ROOT, SAMPLE, rollout_line, write_lines

SAMPLE_ROLLOUTS = "240"
OUTSIDE_ROLLOUTS = 7  # what a refused folder would show if it were read
OUTSIDE = "is outside the folders this app may use"
NETWORK = "network paths like"
NUL = "can't contain a NUL character"
NAMES = ["easy", "medium", "hard"]  # the sample's default plan: mean_reward, 3 buckets by count
UNIQUE = f"bucketing-security-{uuid.uuid4().hex[:12]}"  # a name nothing on this machine has


@dataclass
class Places:
    allowed: Path  # in BUCKETING_ALLOWED_ROOTS
    outside: Path  # not allowed; holds rollouts the app must never read; also $HOME
    link: Path  # allowed/link -> outside

    def fill(self, text: str) -> str:
        return text.format(allowed=self.allowed, outside=self.outside, link=self.link, unique=UNIQUE)


@dataclass
class Spy:
    walked: list  # folders find_inputs was asked to list
    loaded: list  # folders bucketing.load read
    exported: list  # output folders bucketing.export wrote

    def assert_nothing_outside_read(self) -> None:
        strays = [p for p in self.walked + self.loaded if Path(p).resolve() != SAMPLE]
        assert not strays, f"the app read folders it refused (or others): {strays}"


@pytest.fixture
def places(tmp_path) -> Places:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    write_lines(outside / "data" / "a.jsonl", [rollout_line([i % 2, 1]) for i in range(OUTSIDE_ROLLOUTS)])
    link = allowed / "link"
    link.symlink_to(outside, target_is_directory=True)
    return Places(allowed.resolve(), outside.resolve(), link)


@pytest.fixture
def app(places, monkeypatch) -> AppTest:
    """The app on the bundled sample; only places.allowed is an extra root; ``~`` is places.outside."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(ENV, str(places.allowed))
    monkeypatch.setenv("HOME", str(places.outside))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    assert metric(at, "Rollouts") == SAMPLE_ROLLOUTS
    return at


@pytest.fixture
def spy(app, monkeypatch) -> Spy:
    """Record every folder walked, loaded or exported to from now on (after the app loaded the sample)."""
    record = Spy([], [], [])
    find_inputs, load, export = shared.find_inputs, bucketing.load, bucketing.export

    def walking(path, *args, **kwargs):
        record.walked.append(path)
        return find_inputs(path, *args, **kwargs)

    def loading(path, *args, **kwargs):
        record.loaded.append(path)
        return load(path, *args, **kwargs)

    def exporting(dataset, plan, out_dir, *args, **kwargs):
        record.exported.append(out_dir)
        return export(dataset, plan, out_dir, *args, **kwargs)

    monkeypatch.setattr(shared, "find_inputs", walking)
    monkeypatch.setattr(bucketing, "load", loading)
    monkeypatch.setattr(bucketing, "export", exporting)
    return record


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def assert_still_the_sample(at: AppTest) -> None:
    assert at.session_state["source"].path == SAMPLE
    go(at, "data")
    assert metric(at, "Rollouts") == SAMPLE_ROLLOUTS


def export_button(at: AppTest):
    return next((b for b in at.button if b.label == "Export"), None)


def state(path: Path):
    """What is at ``path``: None, "file", or a directory's entries an export could have made (links followed).

    Only export-like names are compared, so that other programs writing to /, /etc or /root can't fail the test.
    """
    if path.is_dir():
        return sorted(
            n for n in os.listdir(path) if n.endswith((".jsonl", MANIFEST)) or n.startswith(TEMP_PREFIX) or n == UNIQUE
        )
    return "file" if path.exists() else None


def tree(folder: Path) -> list[str]:
    """Every path under ``folder`` (links not followed), relative."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- the Data page: folder --------------------------------------------------------------------

FOLDERS = [
    ("/etc", OUTSIDE),
    ("/", OUTSIDE),
    ("../..", OUTSIDE),  # from the repo: /
    ("examples/../../..", OUTSIDE),
    ("{allowed}/../outside", OUTSIDE),  # starts in an allowed root, climbs out
    ("{allowed}/../outside/data", OUTSIDE),
    ("{link}", OUTSIDE),  # a link inside an allowed root to a folder that is not
    ("{link}/data", OUTSIDE),
    ("~", OUTSIDE),  # $HOME = the outside folder
    ("~/data", OUTSIDE),
    ("~root", OUTSIDE),
    ("\\\\host\\share", NETWORK),
    ("\\\\host\\share\\data", NETWORK),
    ("//host/share", NETWORK),
    ("//host/share/data", NETWORK),
    ("{allowed}\0/../outside", NUL),
    ("examples/rollouts\0", NUL),
]


@pytest.mark.parametrize("typed, message", FOLDERS, ids=[repr(f) for f, _ in FOLDERS])
def test_data_page_refuses_folders_outside_the_allowed_roots(app, spy, places, typed, message):
    load_folder(app, places.fill(typed))
    assert any(message in e for e in errors(app)), errors(app)
    assert metric(app, "Rollouts") == SAMPLE_ROLLOUTS
    spy.assert_nothing_outside_read()
    assert_still_the_sample(app)
    assert tree(places.outside) == ["data", "data/a.jsonl"]


def test_data_page_loads_an_allowed_folder(app, spy, places):
    """The control: the same kind of folder, inside an allowed root, is loaded."""
    write_lines(places.allowed / "in" / "a.jsonl", [rollout_line([1, 0])] * 3)
    load_folder(app, places.allowed / "in")
    assert not errors(app)
    assert metric(app, "Rollouts") == "3"
    assert [Path(p) for p in spy.loaded] == [places.allowed / "in"]


# --- the Export page: output folder ---------------------------------------------------------

# (typed, message, where the files would land: checked unchanged)
OUTPUTS = [
    ("/etc", OUTSIDE, "/etc"),
    ("/etc/{unique}", OUTSIDE, "/etc/{unique}"),
    ("/", OUTSIDE, "/"),
    ("/{unique}", OUTSIDE, "/{unique}"),
    ("../..", OUTSIDE, "/"),
    ("../../{unique}", OUTSIDE, "/{unique}"),
    ("examples/../../..", OUTSIDE, "/"),
    ("{allowed}/../outside", OUTSIDE, "{outside}"),
    ("{allowed}/../outside/out", OUTSIDE, "{outside}/out"),
    ("{link}", OUTSIDE, "{outside}"),
    ("{link}/out", OUTSIDE, "{outside}/out"),
    ("~", OUTSIDE, "{outside}"),
    ("~/out", OUTSIDE, "{outside}/out"),
    ("~root", OUTSIDE, "~root"),
    ("~root/{unique}", OUTSIDE, "~root/{unique}"),
    ("\\\\host\\share", NETWORK, "\\\\host\\share"),  # on POSIX a plain name in the working directory
    ("//host/share", NETWORK, "//host/share"),
    ("{allowed}/out\0x", NUL, "{allowed}/out"),
    ("{allowed}/out\0/../../outside", NUL, "{allowed}/out"),
]


@pytest.mark.parametrize("typed, message, target", OUTPUTS, ids=[repr(o) for o, _, _ in OUTPUTS])
def test_export_refuses_output_folders_outside_the_allowed_roots(app, spy, places, typed, message, target):
    where = Path(os.path.expanduser(places.fill(target)))
    where = where if where.is_absolute() else ROOT / where
    before = state(where)
    go(app, "export")
    assert export_button(app) is not None  # the default output folder is fine
    app.text_input(key="w_out_dir").set_value(places.fill(typed)).run()
    assert not app.exception, app.exception
    assert any(message in e for e in errors(app)), errors(app)
    assert export_button(app) is None, "the Export button is offered for a refused folder"
    assert spy.exported == []
    assert state(where) == before, f"{where} changed"
    assert tree(places.allowed) == ["link"]
    assert tree(places.outside) == ["data", "data/a.jsonl"]
    spy.assert_nothing_outside_read()
    assert_still_the_sample(app)


# --- the Export page: file prefix ------------------------------------------------------------

BAD_NAMES = [
    "../x",
    "..",
    "a/b",
    "/abs",
    "a\\b",
    ".hidden",
    "_skipped",
    "-x",
    "a b",
    "x\0y",
    "ünï",
    "x" * 65,
]


@pytest.mark.parametrize("prefix", BAD_NAMES, ids=repr)
def test_export_refuses_a_prefix_that_is_not_a_plain_name(app, spy, places, prefix):
    assert NAME_PATTERN.match(prefix) is None  # the engine's rule refuses it too
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(places.allowed / "out")).run()
    app.text_input(key="w_prefix").set_value(prefix).run()
    assert not app.exception, app.exception
    assert any("prefix" in e and "is not allowed" in e for e in errors(app)), errors(app)
    assert export_button(app) is None, "the Export button is offered for a refused prefix"
    assert spy.exported == []
    assert tree(places.allowed) == ["link"]
    assert tree(places.outside) == ["data", "data/a.jsonl"]
    spy.assert_nothing_outside_read()
    assert_still_the_sample(app)


def test_export_with_a_good_prefix_of_64_characters_writes_inside_the_folder(app, spy, places):
    """The control: the longest allowed prefix works, and every file lands in the output folder."""
    prefix = "p" * 63 + "."
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(places.allowed / "out")).run()
    app.text_input(key="w_prefix").set_value(prefix).run()
    assert not errors(app)
    export_button(app).click().run()
    assert not app.exception and not errors(app), errors(app)
    written = tree(places.allowed)
    assert written and all(p == "link" or p == "out" or p.startswith("out/" + prefix) for p in written), written
    assert "out/" + prefix + "manifest.json" in written
    assert [Path(p) for p in spy.exported] == [places.allowed / "out"]


# --- the Buckets page: names typed in the table ------------------------------------------------

NAMES_KEY = "names_mean_reward_count_3"


def edit_name(at: AppTest, row: int, name: str) -> AppTest:
    """What the names table sends when the user types ``name`` into row ``row``."""
    at.session_state[NAMES_KEY] = {"edited_rows": {row: {"name": name}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize(
    "name, message",
    [(n, "is not allowed") for n in BAD_NAMES]
    + [("", "is not allowed"), ("   ", "is not allowed"), ("MEDIUM", "the same file name ignoring case")],
    ids=repr,
)
def test_bucket_names_that_are_not_plain_names_are_refused_and_nothing_is_written(app, spy, places, name, message):
    go(app, "buckets")
    assert [r["name"] for r in bucket_rows(app)] == NAMES
    edit_name(app, 0, name)
    assert any(message in e and "the old names are kept" in e for e in errors(app)), errors(app)
    assert [r["name"] for r in bucket_rows(app)] == NAMES
    assert app.session_state["names"].get(("mean_reward", "count", 3)) in (None, NAMES)

    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(places.allowed / "out")).run()
    assert not errors(app), errors(app)
    export_button(app).click().run()
    assert not app.exception and not errors(app), errors(app)
    manifest = bucketing.read_manifest(places.allowed / "out" / "manifest.json")
    assert [b["name"] for b in manifest["buckets"]] == NAMES
    files = {"out/" + b["file"] for b in manifest["buckets"]} | {"out/manifest.json", "out/difficulty.parquet"}
    files |= {"out/" + manifest["skipped_file"]} if manifest["skipped_file"] else set()
    assert tree(places.allowed) == sorted(files | {"link", "out"})
    assert tree(places.outside) == ["data", "data/a.jsonl"]
    assert not (ROOT / "x.jsonl").exists() and not (ROOT.parent / "x.jsonl").exists()


def test_a_bucket_name_of_64_characters_is_accepted(app, places):
    """The control: the longest allowed name gets through the same table, into the file name."""
    go(app, "buckets")
    edit_name(app, 0, "n" * 64)
    assert not errors(app), errors(app)
    assert [r["name"] for r in bucket_rows(app)] == ["n" * 64, "medium", "hard"]
    go(app, "export")
    app.text_input(key="w_out_dir").set_value(str(places.allowed / "out")).run()
    export_button(app).click().run()
    assert not errors(app), errors(app)
    assert (places.allowed / "out" / ("n" * 64 + ".jsonl")).is_file()


@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """Python's temp folder for this test (asked for before ``app``, it is the app's too)."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def test_a_session_that_uploads_nothing_leaves_no_folder_behind(temp_dir, app):
    """Every visit used to make an empty upload folder in /tmp that nothing removed."""
    for page in ("distributions", "buckets", "compare", "export", "data"):
        go(app, page)
    assert not app.exception
    assert not list(temp_dir.glob("bucketing-upload-*"))
    assert shared.upload_dir().parent == temp_dir  # ... until it uploads
