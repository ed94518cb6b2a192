"""Shared fixtures: writing small rollout files, running the CLI, reading bucket outputs."""

from __future__ import annotations

import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "rollouts"


# In parallel: pytest-xdist (-n auto, as tests/run.py runs it) with the scheduler below. A unit of work is a
# test module, run whole by one worker in file order (module-scoped fixtures, a browser tab shared by a module's
# tests, are set up once); every Ray test is in tests/test_ray.py, on one cluster (its `ray stop --force` stops
# every Ray process on the machine: no other module may start one). The units that take
# longest (measured with --durations) start first, so that the workers finish together.
RAY_MODULE = "tests/test_ray.py"
# Ray as its clusters run now: token authentication, with the session's own token (a machine need not have
# ~/.ray/auth_token: `ray start` then refuses to start), no usage reports. Ray reads these when it is first imported
# (tests/needs.py imports it while collecting), so they are set for the session; xdist's workers inherit them.
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
for _name, _value in RAY_ENV.items():
    os.environ.setdefault(_name, _value)
if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):  # else the token the user named
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
# The app keeps scan results in a cache folder (bucketing.scancache): the tests' own, not the user's
os.environ.setdefault("BUCKETING_CACHE_DIR", tempfile.mkdtemp(prefix="bucketing-test-cache-"))
LONGEST_FIRST = [
    RAY_MODULE,
    "tests/test_browser.py",
    "tests/test_browser_sessions.py",
    "tests/test_browser_attack.py",
    "tests/test_browser_buckets.py",
    "tests/test_faults.py",
    "tests/test_app_security.py",
    "tests/test_app.py",
    "tests/test_fuzz.py",
    "tests/test_inputs.py",
]


def module_of(item) -> str:
    return item.nodeid.split("::")[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """-n auto: one worker more than the cores. The units wait part of their time (Ray starting and stopping, a
    page's script running in the app's server): with a worker per core the cores idled 48 of 284 s (pytest 4:14 and
    4:31 in two runs), with a third 4 of 267 s (4:17 to 4:26)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own: that number
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + 1


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "load":  # another --dist asked for on the command line
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False  # the collection order: longest first
    return LoadFileScheduling(config, log)


def pytest_collection_modifyitems(items):
    """Ray and browser tests whose requirement is missing: skipped with the reason, or under CI failed (the rule, in
    tests/needs.py). Then the longest units first."""
    from .needs import skip_what_cannot_run

    skip_what_cannot_run(items)
    stray = [item.nodeid for item in items if item.get_closest_marker("ray") and module_of(item) != RAY_MODULE]
    if stray:
        raise pytest.UsageError(f"Ray tests outside {RAY_MODULE}: {stray}")
    first = {name: rank for rank, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: first.get(module_of(item), len(first)))  # stable: file order within a unit


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    from .needs import fail_what_cannot_run

    fail_what_cannot_run(item)  # before any fixture starts a server or a cluster


@pytest.fixture(autouse=True)
def metric_registry():
    """Every test starts and ends with the built-in metrics only: a plugin a test registers in-process
    (``--plugin`` through ``cli.main``) must not show up in the next test's app, docs or properties."""
    from bucketing.metrics import METRICS

    saved = dict(METRICS)
    yield
    METRICS.clear()
    METRICS.update(saved)


def rollout_line(scores, **extra) -> bytes:
    """One default-layout line (no newline) with these scores."""
    record = {"prompt": extra.pop("prompt", "p"), "reward": [{"score": s} for s in scores], **extra}
    return json.dumps(record, ensure_ascii=False).encode()


def one_line(stderr: str) -> bool:
    """The CLI said one thing on one line, and no traceback (besides ``warning:`` lines about the buckets)."""
    said = "".join(line for line in stderr.splitlines(keepends=True) if not line.startswith("warning: "))
    return said.count("\n") == 1 and said.endswith("\n") and "Traceback" not in stderr


def line_totals(data) -> dict:
    """``data.totals`` of an ungrouped load, where every good line is one rollout (checked here)."""
    totals = dict(data.totals)
    assert totals.pop("rollout_lines") == totals["rollouts"]
    return totals


def write_lines(path: Path, lines, newline: bytes = b"\n", final_newline: bool = True) -> Path:
    """Write raw byte lines to ``path`` (creating folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = newline.join(lines) + (newline if final_newline and lines else b"")
    path.write_bytes(body)
    return path


def run_process(
    *args, cwd: Path = ROOT, entry=("-m", "bucketing"), timeout: float = 120, text: bool = True
) -> subprocess.CompletedProcess:
    """Run the command line as a user would, in a fresh process: for what needs one (the real entry points, exit
    codes of the process, kills, plugins that patch ``os``, anything that could hang, a fresh interpreter)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [os.fsencode(a) if isinstance(a, (str, bytes, os.PathLike)) else str(a) for a in args]
    return subprocess.run(
        [sys.executable, *entry, *argv], cwd=cwd, env=env, capture_output=True, text=text, timeout=timeout
    )


def run_cli(*args, cwd: Path = ROOT, script: str | None = None, text: bool = True) -> subprocess.CompletedProcess:
    """``python -m bucketing ARGS`` in this process: ``bucketing.cli.main`` (or, with ``script``, that file run as
    ``__main__``) with what a fresh process would give it; the result is shaped as ``run_process``'s.

    See ``tests/cli_support.py`` for what is isolated (output streams at the file-descriptor level, cwd,
    ``sys.path``, warnings, ``--plugin`` modules) and how exits and crashes are turned into a return code.
    """
    from .cli_support import run_in_process

    return run_in_process(args, cwd=cwd, script=script, text=text)


def output_lines(out_dir: Path) -> dict[str, list[bytes]]:
    """Every .jsonl file in ``out_dir`` -> its lines (with their "\\n")."""
    return {p.name: p.read_bytes().splitlines(keepends=True) for p in sorted(out_dir.glob("*.jsonl"))}


def modules_imported_by_cli(*args) -> set[str]:
    """The top-level modules a successful command-line run (in a fresh interpreter) imported."""
    script = (
        "import json, sys, bucketing.cli\n"
        "assert bucketing.cli.main(sys.argv[1:]) == 0\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})), file=sys.stderr)\n"
    )
    result = run_process(*args, entry=("-c", script))
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def metric_definitions(row: list[float], params) -> dict[str, float]:
    """The seven metrics as DESIGN.md defines them, for one rollout's scores (the tests' oracle)."""
    n = len(row)
    c = sum(s >= params.pass_threshold for s in row)
    k = min(params.k, n)
    return {
        "mean_reward": statistics.fmean(row),
        "max_reward": max(row),
        "min_reward": min(row),
        "variance": statistics.variance(row) if n > 1 else 0.0,
        "success_rate": c / n,
        "pass_at_k": 1 - math.comb(n - c, k) / math.comb(n, k),
        "inverse_mean": 1 / (statistics.fmean(row) + 1e-6),
    }


def sample_scores() -> list[list[float]]:
    """Every rollout's scores in the bundled sample, read with json."""
    return [
        [r["score"] for r in json.loads(line)["reward"]]
        for path in sorted(SAMPLE.glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def jsonl_files(out: Path) -> dict[str, bytes]:
    """Every .jsonl file under ``out``, recursively: its path relative to ``out`` -> its bytes."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(Path(out).rglob("*.jsonl"))}


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture
def app(tmp_path, monkeypatch):
    """The app (Streamlit's AppTest) on the bundled sample, with tmp_path as an extra allowed root."""
    from .app_support import open_app

    return open_app(monkeypatch, tmp_path)


# --- browser tests: one server per worker, one chromium per test module ---


@pytest.fixture(scope="session")
def browser_roots(tmp_path_factory) -> Path:
    """The folder the browser tests' server may read and write: each module's ``allowed_root`` is in it."""
    return tmp_path_factory.mktemp("browser").resolve()


@pytest.fixture(scope="module")
def allowed_root(browser_roots, request) -> Path:
    """A folder outside the repo the app may read and write (under BUCKETING_ALLOWED_ROOTS), this module's own."""
    folder = browser_roots / request.module.__name__.rsplit(".", 1)[-1]
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def server(browser_roots):
    """`streamlit run app.py` on a free port, shared by the worker's browser modules (a start costs about 2.5 CPU
    s); tests that need a fresh server start their own."""
    from .browser_support import streamlit_server

    with streamlit_server(browser_roots / "server.log", [browser_roots]) as running:
        yield running


@pytest.fixture(scope="module")  # not longer: Playwright's thread would make later process pools spawn, not fork
def browser():
    from .browser_support import CHROMIUM, LAUNCH_ARGS, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, server):
    """One browser tab (one Streamlit session) shared by a module's tests, in file order."""
    from .browser_support import new_tab, open_page

    with new_tab(browser) as tab:
        open_page(tab, server, "Data")
        yield tab
