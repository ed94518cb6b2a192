"""The in-process command line the tests use (``run_cli``) gives what a fresh process gives (``run_process``):
the same exit code, the same stdout and stderr bytes; and it leaves nothing behind for the next test."""

from __future__ import annotations

import os
import sys
import warnings

import pytest

from .conftest import SAMPLE, run_cli, run_process


def both(*args, cwd=None, text=True):
    kwargs = {"cwd": cwd} if cwd else {}
    return run_cli(*args, text=text, **kwargs), run_process(*args, text=text, **kwargs)


def assert_same(ours, theirs) -> None:
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)


NOISY_PLUGIN = """\
import os, sys, warnings
print("to stdout at import")
os.write(2, b"straight to fd 2\\n")
warnings.warn("a plugin's warning", UserWarning)
warnings.warn("deprecated, hidden by default", DeprecationWarning)
"""


@pytest.mark.parametrize("case", ["help", "usage error", "dry run json", "export", "missing input", "strict"])
def test_the_same_output_and_code_as_a_process(case, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_bytes(b'{"reward": [{"score": 1}]}\n{"reward": [{"score": 0}]}\n{oops\n')
    args = {
        "help": ["--help"],
        "usage error": ["-i", SAMPLE, "-m", "hardness"],  # argparse: exit 2
        "dry run json": ["-i", SAMPLE, "--dry-run", "--json", "-n", "4"],
        "export": ["-i", tmp_path / "in", "-n", "2"],
        "missing input": ["-i", tmp_path / "nope", "-o", tmp_path / "out"],
        "strict": ["-i", tmp_path / "in", "-o", tmp_path / "out", "--strict"],
    }[case]
    if case == "export":  # each into a folder of its own (a second export into one is refused): a/out, b/out
        (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
        ours, theirs = (
            run_cli(*args, "-o", "out", cwd=tmp_path / "a"),
            run_process(*args, "-o", "out", cwd=tmp_path / "b"),
        )
        assert (tmp_path / "a" / "out" / "manifest.json").exists() and (
            tmp_path / "b" / "out" / "manifest.json"
        ).exists()
    else:
        ours, theirs = both(*args)
    assert_same(ours, theirs)


def test_warnings_fd_writes_and_prints_of_a_plugin_arrive_as_in_a_process(tmp_path):
    plugin = tmp_path / "noisy.py"
    plugin.write_text(NOISY_PLUGIN)
    ours, theirs = both("--plugin", plugin, "-i", SAMPLE, "--dry-run", "-n", "2")
    assert_same(ours, theirs)
    assert "UserWarning: a plugin's warning" in ours.stderr and "deprecated" not in ours.stderr
    assert "straight to fd 2" in ours.stderr and ours.stdout.startswith("to stdout at import\n")


@pytest.mark.parametrize(
    "ending, code", [("raise SystemExit(3)", 3), ("import sys; sys.exit('bye')", 1), ("raise KeyError('x')", 2)]
)
def test_how_a_run_ends_is_its_exit_code(tmp_path, ending, code):
    plugin = tmp_path / "ending.py"
    plugin.write_text(ending + "\n")
    ours, theirs = both("--plugin", plugin, "-i", SAMPLE, "--dry-run")
    assert ours.returncode == code
    assert_same(ours, theirs)


def test_odd_bytes_in_names_are_the_same_bytes(tmp_path):
    folder = os.path.join(os.fsencode(tmp_path), b"bad \xff name")
    os.mkdir(folder)
    ours, theirs = both("-i", folder, "-o", tmp_path / "out", text=False)
    assert ours.returncode == 2 and b"\xff" not in ours.stderr  # shown escaped, on one line
    assert_same(ours, theirs)


def test_a_plugin_module_is_found_in_cwd_and_imported_again_by_the_next_run(tmp_path):
    (tmp_path / "spread_metric.py").write_text(
        "import bucketing\n"
        "bucketing.register_metric('spread', lambda s: float(s.max() - s.min()), higher_is_easier=False)\n"
    )
    for _ in range(2):  # the second run registers the metric again (the registry is reset between tests)
        from bucketing.metrics import METRICS

        METRICS.pop("spread", None)
        result = run_cli("--plugin", "spread_metric", "-i", SAMPLE, "--dry-run", "-m", "spread", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "spread_metric" not in sys.modules
    assert_same(
        result, run_process("--plugin", "spread_metric", "-i", SAMPLE, "--dry-run", "-m", "spread", cwd=tmp_path)
    )


def test_nothing_of_a_run_is_left_behind(tmp_path):
    def state():
        return (
            os.getcwd(),
            list(sys.path),
            sys.stdout,
            sys.stderr,
            list(warnings.filters),  # noqa: E731
            warnings.showwarning,
            os.fstat(1).st_ino,
            os.fstat(2).st_ino,
        )

    before = state()
    plugin = tmp_path / "noisy.py"
    plugin.write_text(NOISY_PLUGIN)
    assert run_cli("--plugin", plugin, "-i", SAMPLE, "-o", tmp_path / "out", cwd=tmp_path).returncode == 0
    assert run_cli("-i", SAMPLE, "-m", "nope").returncode == 2
    assert state() == before
