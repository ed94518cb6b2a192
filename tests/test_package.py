"""The package as a user installs it: a wheel (and an editable install) in a fresh venv, used from another folder.

The venvs see this machine's site-packages (``--system-site-packages``) for the dependencies, so nothing is
downloaded; the package itself is built from a copy of this tree and installed into the venv, and every
command runs outside the tree, with no PYTHONPATH, so only the installed copy can answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bucketing.version import __version__

from .conftest import ROOT, rollout_line, write_lines

JUNK = shutil.ignore_patterns(
    ".git",
    "build",
    "*.egg-info",
    "__pycache__",
    ".hypothesis",
    ".pytest_cache",
    ".benchmarks",
    "screenshots",
    "data",
    "results",
    ".venv",
)


def clean_env() -> dict[str, str]:
    """This environment without PYTHONPATH or STREAMLIT_* overrides: nothing points back into the tree."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("STREAMLIT_")}


def install(tmp: Path, *, editable: bool) -> Path:
    """A venv with the package installed from a copy of this tree; returns the venv's bin folder."""
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=JUNK)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    command = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    result = subprocess.run(
        [*command, *(["-e"] if editable else []), str(source)],
        cwd=tmp,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return venv / "bin"


@pytest.fixture(scope="module")
def wheel_bin(tmp_path_factory) -> Path:
    return install(tmp_path_factory.mktemp("wheel"), editable=False)


def run(command: list, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(map(str, command)), cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A working folder outside the tree, with two files of rollouts in ``in/``."""
    write_lines(tmp_path / "in" / "a.jsonl", [rollout_line([1, 1]), rollout_line([0, 1])])
    write_lines(tmp_path / "in" / "b.jsonl", [rollout_line([0, 0]), rollout_line([1, 0, 0])])
    return tmp_path


def test_the_installed_package_is_what_runs(wheel_bin, elsewhere):
    where = run(
        [
            wheel_bin / "python",
            "-c",
            "import bucketing, bucketing.roots as r; "
            "print(bucketing.__file__); print(r.APP_HOME); print(r.SAMPLE.is_dir())",
        ],
        elsewhere,
    )
    module, app_home, sample_found = where.stdout.split()
    site = wheel_bin.parent / "lib"
    assert Path(module).is_relative_to(site) and Path(app_home).is_relative_to(site), where.stdout
    assert Path(app_home).name == "bucketing_app" and sample_found == "True"
    for page in ("app.py", "pages/data.py", "pages/common/shared.py", ".streamlit/config.toml"):
        assert (Path(app_home) / page).is_file(), page


def test_bucketing_command_help_version_and_an_export_from_another_folder(wheel_bin, elsewhere):
    version = run([wheel_bin / "bucketing", "--version"], elsewhere)
    assert version.returncode == 0 and version.stdout.strip() == f"rollout-bucketer {__version__}"
    usage = run([wheel_bin / "bucketing", "--help"], elsewhere)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: bucketing ") and "bucketing app" in usage.stdout

    result = run(
        [wheel_bin / "bucketing", "-i", "in", "-o", "out", "-n", "2", "--bucket-names", "easy", "hard"], elsewhere
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((elsewhere / "out" / "manifest.json").read_text())
    assert manifest["tool"] == f"bucketing {__version__}"
    written = b"".join((elsewhere / "out" / name).read_bytes() for name in ("easy.jsonl", "hard.jsonl"))
    inputs = (elsewhere / "in" / "a.jsonl").read_bytes() + (elsewhere / "in" / "b.jsonl").read_bytes()
    assert sorted(written.splitlines()) == sorted(inputs.splitlines())

    module = run([wheel_bin / "python", "-m", "bucketing", "--version"], elsewhere)
    assert module.returncode == 0 and module.stdout.strip() == f"rollout-bucketer {__version__}"


def test_an_editable_install_runs_from_another_folder(tmp_path, elsewhere):
    bin_dir = install(tmp_path, editable=True)
    result = run([bin_dir / "bucketing", "-i", "in", "--dry-run", "-m", "variance"], elsewhere)
    assert result.returncode == 0, result.stderr
    assert "variance" in result.stdout
    where = run([bin_dir / "python", "-c", "import bucketing.roots as r; print(r.APP_HOME)"], elsewhere)
    assert Path(where.stdout.strip()) == (tmp_path / "source").resolve()  # the app and sample of that clone


def test_bucketing_app_refuses_a_missing_folder_in_one_line(wheel_bin, elsewhere):
    result = run([wheel_bin / "bucketing", "app", "no-such-folder"], elsewhere)
    assert result.returncode == 2 and result.stderr == (
        "error: no-such-folder is not a folder; give the folder that holds your rollouts\n"
    )
    result = run([wheel_bin / "bucketing", "app", "--port", "0"], elsewhere)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--port 0 is not a port" in result.stderr


@pytest.mark.browser
def test_bucketing_app_serves_the_folder_on_localhost_only(wheel_bin, elsewhere, browser):
    from .browser_support import (
        Server,
        assert_no_error_shown,
        free_port,
        listening_addresses,
        new_tab,
        open_page,
        wait_healthy,
    )

    port = free_port()
    log = elsewhere / "server.log"
    cwd = elsewhere / "cwd"  # the folder is not under the working directory: `app DIR` must allow it
    cwd.mkdir()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [wheel_bin / "bucketing", "app", elsewhere / "in", "--port", str(port), "--no-browser"],
            cwd=cwd,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(port, process, log)
    try:
        wait_healthy(server)
        assert {str(a) for a in listening_addresses(port)} == {"127.0.0.1"}
        with new_tab(browser) as page:
            open_page(page, server, "Data")
            assert_no_error_shown(page, "bucketing app")
            assert page.get_by_role("textbox", name="Folder").input_value() == str((elsewhere / "in").resolve())
            files = page.locator('[data-testid="stMetric"]', has_text="Files")
            assert files.locator('[data-testid="stMetricValue"]').inner_text() == "2"
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode is not None
