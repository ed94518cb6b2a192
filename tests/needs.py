"""What some tests need beyond the base requirements, and the one rule for when it is missing.

A test marked ``@pytest.mark.ray`` needs Ray (requirements-cluster.txt); one marked ``@pytest.mark.browser``
needs the playwright package and Debian's chromium. When that is missing:

* on a contributor's machine (plain ``pytest``), the test is **skipped, with the reason** and the command
  that installs what is missing;
* under CI (the environment variable ``CI`` set, e.g. ``CI=true``, as CI services and ``.ci/run`` do), the
  test **fails** with that reason: CI must never pass by skipping what it was meant to check.

``conftest.py`` applies the rule to the marked tests before their fixtures are set up.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NoReturn

import pytest

CHROMIUM = "/usr/bin/chromium"


def in_ci() -> bool:
    """$CI is set to something other than an empty string, 0, false or no."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Skip the test with ``reason``; under CI fail it instead."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: a missing requirement fails the run, it is never skipped)", pytrace=False)
    pytest.skip(reason)


def ray_problem() -> str | None:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as error:
        return f"Ray is not installed ({error}): pip install -r requirements-cluster.txt"
    return None


def browser_problem() -> str | None:
    problems = []
    if not os.path.exists(CHROMIUM):
        problems.append(
            f"{CHROMIUM} is missing: apt-get install chromium (Debian's package; never `playwright install`)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append(
            "the playwright pip package is missing: pip install -r requirements-dev.txt (or python tests/run.py)"
        )
    return "browser tests can't run: " + "; ".join(problems) if problems else None


# marker name -> what is missing for it (None: nothing)
NEEDS: dict[str, Callable[[], str | None]] = {"ray": ray_problem, "browser": browser_problem}
_found: dict[str, str | None] = {}


def what_is_missing(item: pytest.Item) -> str | None:
    """Why ``item`` can't run here, by its markers (each requirement is looked for once per session)."""
    for name, problem in NEEDS.items():
        if item.get_closest_marker(name) is not None:
            if name not in _found:
                _found[name] = problem()
            if _found[name]:
                return _found[name]
    return None


def skip_what_cannot_run(items: list[pytest.Item]) -> None:
    """At collection, outside CI: a skip marker with the reason on each test whose requirement is missing."""
    if not in_ci():
        for item in items:
            reason = what_is_missing(item)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def fail_what_cannot_run(item: pytest.Item) -> None:
    """At set-up, under CI: fail a test whose requirement is missing (before its fixtures start anything)."""
    if in_ci():
        reason = what_is_missing(item)
        if reason:
            missing(reason)
