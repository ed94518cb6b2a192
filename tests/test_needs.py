"""The rule for tests whose requirement is missing (tests/needs.py): skipped with the reason on a contributor's
machine, failed under CI. Checked on the rule itself, then end to end: pytest in a fresh process where
``import ray`` and ``import playwright`` fail."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from . import needs
from .conftest import ROOT

RAY_TEST = "tests/test_ray.py::test_strict_stops_at_the_same_first_bad_line"
BROWSER_TEST = "tests/test_browser_attack.py::test_a_folder_named_with_markdown_shows_as_typed_in_the_sidebar"


@pytest.mark.parametrize(
    "value, ci",
    [(None, False), ("", False), ("0", False), ("false", False), ("true", True), ("1", True), ("yes", True)],
)
def test_ci_is_any_value_but_empty_0_or_false(monkeypatch, value, ci):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert needs.in_ci() is ci
    with pytest.raises(pytest.fail.Exception if ci else pytest.skip.Exception, match="Ray is not installed"):
        needs.missing("Ray is not installed: pip install -r requirements-cluster.txt")


def test_a_missing_module_is_named_with_the_command_that_installs_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray: ImportError
    assert "pip install -r requirements-cluster.txt" in needs.ray_problem()
    monkeypatch.setitem(sys.modules, "playwright", None)
    monkeypatch.setattr(needs, "CHROMIUM", "/nonexistent/chromium")
    problem = needs.browser_problem()
    assert "/nonexistent/chromium is missing: apt-get install chromium" in problem
    assert "playwright pip package is missing: pip install -r requirements-dev.txt" in problem


def pytest_without_ray_and_playwright(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    for name in ("ray", "playwright"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('{name} is hidden by test_needs.py')\n")
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["PYTHONPATH"] = str(tmp_path)  # first on sys.path: `import ray` finds the stub
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "-q", "-ra", RAY_TEST, BROWSER_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_plain_pytest_skips_ray_and_browser_tests_saying_why(tmp_path):
    result = pytest_without_ray_and_playwright(tmp_path, ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 skipped" in result.stdout
    assert (
        "Ray is not installed (ray is hidden by test_needs.py): pip install -r requirements-cluster.txt"
        in result.stdout
    )
    assert "the playwright pip package is missing: pip install -r requirements-dev.txt" in result.stdout


def test_under_ci_a_missing_ray_or_browser_fails(tmp_path):
    result = pytest_without_ray_and_playwright(tmp_path, ci=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SKIPPED" not in result.stdout and result.stdout.rstrip().splitlines()[-1].startswith("2 errors in ")
    assert "Failed: Ray is not installed" in result.stdout and "Failed: browser tests can't run" in result.stdout
