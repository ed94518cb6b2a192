"""Install what the tests need and run every test: ``python tests/run.py [pytest args]``.

Installs the requirements (base, cluster, dev) with pip and, where it can (as root, or with
password-less sudo), Debian's chromium for the browser tests.  Uses only the
standard library, so it runs before anything is installed.

Then checks the code's hygiene (``ruff check``, ``ruff format --check``, ``mypy``: seconds; a finding stops the
run) and runs pytest on pytest-xdist workers (``-n auto``: one more than the cores, each taking whole test
modules; tests/conftest.py), unless the arguments choose (``-n 0`` runs in one process), and with compiled
bytecode cached even where ``PYTHONDONTWRITEBYTECODE`` is set: the run starts some hundred Python
processes (workers, servers, the command line, Ray's), each would otherwise compile the project's
modules anew.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
HYGIENE = [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]]


def main() -> int:
    requirements = ["requirements.txt", "requirements-cluster.txt", "requirements-dev.txt"]
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + [arg for name in requirements for arg in ("-r", str(ROOT / name))], check=True)
    if not os.path.exists(CHROMIUM):
        install_chromium()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    for check in HYGIENE:
        if subprocess.call([sys.executable, "-m", *check], cwd=ROOT, env=env) != 0:
            print(f"{' '.join(check)} found something to fix (above); the tests did not run", file=sys.stderr)
            return 1
    args = sys.argv[1:]
    chosen = any(arg.startswith(("-n", "--numprocesses")) or arg.endswith("no:xdist") for arg in args)
    parallel = [] if chosen else ["-n", "auto"]
    return subprocess.call([sys.executable, "-m", "pytest", *parallel, *args], cwd=ROOT, env=env)


def install_chromium() -> None:
    """apt-get install chromium, as root or through sudo; say how otherwise (the browser tests then fail)."""
    if not shutil.which("apt-get"):
        print(f"note: no apt-get here; install chromium at {CHROMIUM} for the browser tests", file=sys.stderr)
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.call(sudo + command, env=env) != 0:
            print("note: could not install chromium; run: sudo apt-get install -y chromium", file=sys.stderr)
            return


if __name__ == "__main__":
    sys.exit(main())
