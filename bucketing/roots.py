"""Which folders a server face (the app) may read and write: allowed roots.

Default: the current working directory and the bundled sample. More with the
environment variable ``BUCKETING_ALLOWED_ROOTS`` (paths joined by ``:``).
A path is allowed when, with every link resolved, it lies inside one of them.
``bucketing app DIR`` adds DIR there, and names it in ``BUCKETING_OPEN``: the folder the app opens on.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import BucketingError
from .sources import display

ENV = "BUCKETING_ALLOWED_ROOTS"
OPEN_ENV = "BUCKETING_OPEN"


def app_home() -> Path:
    """Where ``app.py``, ``pages/`` and the bundled sample are: this clone, or the installed ``bucketing_app``."""
    clone = Path(__file__).resolve().parent.parent
    if (clone / "app.py").is_file() and (clone / "pages").is_dir():
        return clone  # a clone, or an editable install of one
    spec = importlib.util.find_spec("bucketing_app")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return clone


APP_HOME = app_home()
SAMPLE = APP_HOME / "examples" / "rollouts"


def start_folder() -> Path:
    """The folder the app opens on: ``bucketing app DIR``'s DIR, else the bundled sample."""
    chosen = os.environ.get(OPEN_ENV, "").strip()
    return Path(chosen) if chosen else SAMPLE


def allowed_roots(extra: list[Path] | None = None) -> list[Path]:
    roots = [Path.cwd(), SAMPLE]
    roots += [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]
    roots += extra or []
    return [root.resolve() for root in roots]


def resolve_allowed(text: str, roots: list[Path], base: Path | None = None) -> Path:
    """The real path of ``text`` (relative to ``base``, default cwd) if it lies under an allowed root.

    Refuses NUL bytes, UNC-style and ``~`` paths that lead outside, ``..`` tricks and links pointing out.
    """
    text = text.strip()
    if not text:
        raise BucketingError("enter a folder path")
    if "\0" in text:
        raise BucketingError("a path can't contain a NUL character")
    if text.startswith(("\\\\", "//")):
        raise BucketingError(f"network paths like {display(text)} are not allowed")
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    real = path.resolve()  # follows links and removes ".."
    if not any(real == root or root in real.parents for root in roots):
        where = ", ".join(display(r) for r in roots)
        raise BucketingError(
            f"{display(text)} is outside the folders this app may use ({where}); "
            f"start the app from a folder that contains it, or add it to {ENV}"
        )
    return real
