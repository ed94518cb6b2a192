"""``bucketing app [DIR]``: start the Streamlit app on DIR, from any folder, in a clone or an installed package.

It runs ``python -m streamlit run app.py`` in place of this process (so Ctrl-C and signals reach the
server directly) with the bundled server settings as flags: Streamlit reads ``.streamlit/config.toml``
only from the working directory, and the app must bind 127.0.0.1 wherever it is started. This module
never imports Streamlit; the library stays free of it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from .errors import BucketingError, OneLineParser
from .roots import APP_HOME, ENV, OPEN_ENV
from .sources import display

DEFAULT_PORT = 8501


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog, description="Open the Rollout Bucketer app in your browser, serving this machine only (127.0.0.1)."
    )
    parser.add_argument(
        "folder",
        nargs="?",
        metavar="DIR",
        help="the rollouts to open (added to the folders the app may read and write for this run); "
        "default: the bundled sample",
    )
    parser.add_argument("--port", type=int, help=f"the port to serve on (default {DEFAULT_PORT}, or the next free one)")
    parser.add_argument("--no-browser", action="store_true", help="don't open a browser tab (print the address only)")
    return parser


def server_flags(config: Path) -> list[str]:
    """The bundled ``.streamlit/config.toml`` as ``--section.key value`` flags (they win over any other config)."""
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    return [
        f"--{section}.{key}={str(value).lower() if isinstance(value, bool) else value}"
        for section, values in settings.items()
        for key, value in values.items()
    ]


def streamlit_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The command that serves the app for these arguments, and its environment."""
    env = dict(os.environ)
    if args.folder is not None:
        folder = Path(args.folder).expanduser()
        if not folder.is_dir():
            raise BucketingError(f"{display(args.folder)} is not a folder; give the folder that holds your rollouts")
        folder = folder.resolve()
        env[ENV] = os.pathsep.join(filter(None, [str(folder), env.get(ENV, "")]))
        env[OPEN_ENV] = str(folder)
    flags = server_flags(APP_HOME / ".streamlit" / "config.toml")
    if args.port is not None:
        flags.append(f"--server.port={args.port}")
    if args.no_browser:
        flags.append("--server.headless=true")
    return [sys.executable, "-m", "streamlit", "run", str(APP_HOME / "app.py"), *flags], env


def main(argv: Sequence[str], prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(list(argv))
    if args.port is not None and not 0 < args.port < 65536:
        raise BucketingError(f"--port {args.port} is not a port; choose one from 1 to 65535")
    command, env = streamlit_command(args)
    sys.stdout.flush()
    os.execve(sys.executable, command, env)
    return 0  # not reached
