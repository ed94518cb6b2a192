"""The README says what the code does: its examples run, its tables match the code."""

from __future__ import annotations

import re
import shlex

import pytest

import bucketing
from bucketing.cli import build_parser
from bucketing.metrics import METRICS

from .conftest import ROOT, SAMPLE, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level (fences respected)."""
    lines, level, found, in_code = [], 0, False, False
    for line in README.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = re.match(r"(#+) (.*)", line) if not in_code else None
        if heading and found and len(heading.group(1)) <= level:
            break
        if found:
            lines.append(line)
        if heading and heading.group(2) == title:
            found, level = True, len(heading.group(1))
    assert found, f"README has no section {title!r}"
    return "\n".join(lines) + "\n"


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_quick_start_is_two_commands():
    commands = [block.strip() for block in code_blocks(section("Quick start"), "sh")]
    assert commands == ["pip install -r requirements.txt && streamlit run app.py", "python tests/run.py"]
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("python tests/run.py")


@pytest.mark.parametrize("block", code_blocks(README, "python"))
def test_python_examples_run(block, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    before = dict(METRICS)
    try:
        exec(compile(block, "README.md", "exec"), {})
    finally:
        METRICS.clear()
        METRICS.update(before)


def test_cli_examples_run_on_the_sample(tmp_path):
    commands = [
        line
        for block in code_blocks(section("The command line"), "sh")
        for line in block.splitlines()
        if line.startswith("python ")
    ]
    assert len(commands) >= 6
    first_output = None
    for number, command in enumerate(commands):
        args = shlex.split(command)[1:]
        script = args.pop(0) if args[0].endswith(".py") else None
        if script is None:
            args = args[2:]  # -m bucketing
        args = [str(ROOT / "examples" / "rollouts") if a in ("./rollouts", "./step_200") else a for a in args]
        args = [str(tmp_path / f"out{number}") if a.startswith("./bucketed") else a for a in args]
        if "--from-manifest" in args:
            args[args.index("--from-manifest") + 1] = str(first_output / "manifest.json")
        result = run_cli(*args, script=script)
        assert result.returncode == 0, (command, result.stderr)
        first_output = first_output or tmp_path / f"out{number}"


def test_every_flag_is_documented_and_every_documented_flag_exists():
    table = section("Flags")
    documented = set(re.findall(r"`(--[a-z-]+)", table))
    actual = {
        option
        for action in build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    assert documented == actual


def test_the_metric_table_matches_the_registry():
    rows = re.findall(r"^\| `(\w+)` \| .* \| (easier|harder) \|$", section("Metrics"), re.M)
    assert {name: direction for name, direction in rows} == {
        name: "easier" if metric.higher_is_easier else "harder" for name, metric in METRICS.items()
    }


def test_the_layout_table_lists_every_layout_detection_knows():
    import shlex

    from bucketing.detect import DUMPS, PER_PROMPT
    from bucketing.layout import Layout

    rows = re.findall(r"^\| (.+?) \| (.+?) \| `(.+?)`", section("Input layouts"), re.M)
    flags = {name: flag for name, _, flag in rows}
    recognised = {name: how for name, how, _ in rows}
    for shape in DUMPS:
        name = next(n for n in flags if n.startswith(shape.name))
        assert flags[name] == shlex.join(Layout(shape.scores, shape.group_by).flags())
        assert all(f"`{field}`" in recognised[name] for field in (*shape.needs, *shape.group_by))
    per_prompt = recognised["one line per prompt"]
    assert all(f"`{shape.scores}`" in per_prompt for shape in PER_PROMPT)


def test_every_skip_reason_is_documented():
    from bucketing.dataset import NOT_JSONL
    from bucketing.scorepath import REASONS

    for reason in (*REASONS, NOT_JSONL):
        assert f"`{reason}`" in section("Bad lines")


def test_every_manifest_field_is_documented():
    from bucketing.manifest import build_manifest

    data = bucketing.load(SAMPLE)
    values = data.values("mean_reward")
    manifest = build_manifest(data, bucketing.percentile_plan(values, "mean_reward", 3), values)
    written = section("What gets written")
    for key in manifest:
        assert f'"{key}":' in written or f"`{key}`" in written, key


def test_the_app_is_safe_by_default_as_the_readme_says():
    import tomllib

    from bucketing.roots import ENV

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["client"]["showErrorDetails"] in ("none", "type")
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"].get("enableXsrfProtection", True) is True
    assert config["server"]["maxUploadSize"] <= 1024
    assert ENV in section("The app") and "127.0.0.1" in section("The app")


def test_the_shipped_config_turns_the_file_watcher_off_and_bounds_uploads():
    """The watcher walks the app's folder, an allowed data root, and logs RecursionError on deep trees;
    uploads are held in the server's memory, so one file may be no larger than 256 MB."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"].get("fileWatcherType") == "none"
    assert config["server"]["maxUploadSize"] <= 256


def collected(*selections: str) -> list[int]:
    """How many tests each selection (a file, or a file::test) has: one collection of them all."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-n", "0", *selections],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    ids = [line for line in out.splitlines() if "::" in line]
    assert f"{len(ids)} tests collected" in out, out[-2000:]
    return [sum(i == s or i.startswith(s + ("[" if "::" in s else "::")) for i in ids) for s in selections]


def test_the_robustness_counts_are_the_tests_counts():
    from . import test_faults, test_fuzz

    text = section("Robustness")
    bad_lines, inputs, kills, security = collected(
        "tests/test_bad_lines.py",
        "tests/test_inputs.py",
        "tests/test_faults.py::test_a_killed_export_never_leaves_a_partial_file_and_the_next_run_cleans_up",
        "tests/test_app_security.py",
    )
    assert f"{bad_lines + inputs} cases" in text
    assert f"{len(test_faults.FAULTS)} injected I/O errors" in text
    assert f"{kills} kills" in text
    assert f"{security} attempts" in text
    assert f"{test_fuzz.CLASSIFIER_EXAMPLES:,} random or mutated lines" in text


def layout_entries() -> dict[str, list[str]]:
    """The Project layout's modules, per top folder (``pages/``, ``bucketing/``), in the order listed."""
    (block,) = re.findall(r"```\n(.*?)```", section("Project layout"), re.S)
    entries: dict[str, list[str]] = {}
    folder = None
    for line in block.splitlines():
        if not line.startswith(" "):
            folder = line.split()[0] if line.split()[0].endswith("/") else None
        elif folder:
            name, _, description = line.strip().partition(" ")
            words = description.split()
            assert name.endswith(".py") and words and not words[0].endswith(".py"), (
                f"one module a line, then what it does: {line!r}"
            )
            entries.setdefault(folder, []).append(name)
    return entries


def test_the_project_layout_lists_every_module_and_no_other():
    entries = layout_entries()
    assert set(entries) == {"pages/", "bucketing/"}
    for folder, listed in entries.items():
        modules = {
            path.relative_to(ROOT / folder).as_posix()
            for path in (ROOT / folder).rglob("*.py")
            if not (path.name == "__init__.py" and not path.read_text().strip())
        }  # an empty package marker
        assert len(listed) == len(set(listed)), f"{folder}: listed twice: {listed}"
        assert set(listed) == modules, (
            f"{folder} not in the README: {sorted(modules - set(listed))}; "
            f"in the README, not in {folder}: {sorted(set(listed) - modules)}"
        )


def engine_imports(tree) -> set[str]:
    """The modules of bucketing/ that a module imports, at its top or inside a function ("__init__": the package)."""
    import ast

    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").split(".")[0] == "bucketing"):
            below = node.module.split(".")[node.level == 0 :] if node.module else []  # the path inside the package
            found |= {below[0]} if below else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {
                (alias.name.split(".") + ["__init__"])[1]
                for alias in node.names
                if alias.name.split(".")[0] == "bucketing"
            }
    return found


def test_the_engine_imports_only_modules_listed_above_it():
    """The layout's order is the data flow: no module of bucketing/ imports one listed below it (no arrow back up)."""
    import ast

    order = [name.removesuffix(".py") for name in layout_entries()["bucketing/"]]
    for place, module in enumerate(order):
        imported = engine_imports(ast.parse((ROOT / "bucketing" / f"{module}.py").read_text(encoding="utf-8")))
        upward = sorted(imported - set(order[:place]))
        assert not upward, f"bucketing/{module}.py imports {upward}, listed below it (or not at all)"


# --- the test command: hygiene first, then the suite in parallel ---------------------------------------------------


def run_py_calls(monkeypatch, args: list[str], failing: str | None = None) -> tuple[int, list[list[str]]]:
    """What ``python tests/run.py ARGS`` starts (pip, apt faked away), and its exit code; ``failing`` fails."""
    from tests import run

    started: list[list[str]] = []

    def call(command, **_):
        started.append(command)
        return 1 if failing and failing in command else 0

    monkeypatch.setattr(run.subprocess, "run", lambda *a, **k: None)  # pip install
    monkeypatch.setattr(run.subprocess, "call", call)
    monkeypatch.setattr(run.os.path, "exists", lambda path: True)  # chromium is there
    monkeypatch.setattr(run.sys, "argv", ["tests/run.py", *args])
    return run.main(), started


def test_the_test_command_checks_lint_format_and_types_before_the_tests(monkeypatch):
    code, started = run_py_calls(monkeypatch, [])
    assert code == 0
    assert [command[2:] for command in started[:3]] == [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ]
    assert started[3][1:] == ["-m", "pytest", "-n", "auto"]  # in parallel unless asked otherwise


@pytest.mark.parametrize("tool", ["check", "--check", "mypy"])
def test_a_hygiene_finding_stops_the_run_before_the_tests(monkeypatch, tool):
    code, started = run_py_calls(monkeypatch, [], failing=tool)
    assert code == 1 and not any("pytest" in command for command in started)


def test_the_test_command_leaves_the_worker_count_to_the_caller(monkeypatch):
    _, started = run_py_calls(monkeypatch, ["-n", "0", "-k", "docs"])
    assert started[-1][1:] == ["-m", "pytest", "-n", "0", "-k", "docs"]
