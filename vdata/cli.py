"""The ``vdata`` command: one subcommand per module under ``vdata.commands``."""

from __future__ import annotations

__all__ = ["main"]

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module has ``register(subparsers) -> None``; the parser it adds sets
# ``func(args) -> int``. Modules are imported here, but each keeps its heavy
# imports inside ``func`` so that ``vdata --help`` stays fast.
_COMMANDS = (
    "vdata.commands.migrate",
    "vdata.commands.demo",
    "vdata.commands.check",
    "vdata.commands.explain",
    "vdata.commands.audit",
    "vdata.commands.bench",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every subcommand that is installed."""
    parser = argparse.ArgumentParser(prog="vdata", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside the module
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
