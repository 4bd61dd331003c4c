"""The ``vdata`` command: ``main`` and its parser; one module per subcommand."""

from __future__ import annotations

__all__ = ["build_parser", "main"]

import argparse
import importlib
import sys
from collections.abc import Sequence

from vdata._version import DISTRIBUTION, __version__

# Each module has ``register(subparsers) -> None``; the parser it adds sets
# ``func(args) -> int``. Each keeps its heavy imports inside ``func`` so that
# ``vdata --help`` stays fast.
_COMMANDS = (
    "vdata.cli.migrate",
    "vdata.cli.check",
    "vdata.cli.explain",
    "vdata.cli.audit",
    "vdata.cli.cleanup",
    "vdata.cli.demo",
    "vdata.cli.bench",
)

_DESCRIPTION = """\
Async PostgreSQL data access through named SQL files: manage the schema,
check the queries against it, verify the audit trail, measure, or try it.
"""

_EPILOG = """\
Every command that needs a database takes --dsn (a postgresql:// URL or a
libpq key=value string) or reads VDATA_DSN; check, explain, bench and demo
start a throwaway PostgreSQL when neither is given.

exit codes (every command):
  0  done, nothing wrong found
  1  ran and found problems (the output says which)
  2  could not run: bad arguments, no database, a DSN that does not parse,
     a server that cannot be reached

Run 'vdata COMMAND --help' for a command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="vdata",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"vdata {__version__} ({DISTRIBUTION})"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    from vdata.cli._common import CANNOT_RUN, run_command

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else CANNOT_RUN
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return CANNOT_RUN
    return run_command(args.command, func, args)
