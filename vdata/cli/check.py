"""``vdata check``: every named query of ``sql/`` (or a service's folders) against the schema."""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from vdata.cli._common import OK, PROBLEMS, CannotRun, add_dsn, optional_dsn


def add_source_options(parser: argparse.ArgumentParser, *, modules: bool) -> None:
    """Add the options naming a service's folders (shared by ``check`` and ``explain``)."""
    parser.add_argument(
        "--sql",
        "--sql-dir",
        dest="sql",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of named queries to look at instead of vdata's own sql/ (repeatable)",
    )
    parser.add_argument(
        "--migrations",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of migrations building the throwaway database's schema, applied "
        "in the order given (repeatable; ignored with --dsn or VDATA_DSN)",
    )
    parser.add_argument(
        "--bundled",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply vdata's bundled migrations first (default: only without --sql)",
    )
    if modules:
        parser.add_argument(
            "--module",
            dest="modules",
            action="append",
            default=[],
            metavar="MOD",
            help="a Python module to import whose Queries.bind(...) calls bind the queries "
            "of --sql to Structs (repeatable; imported with the working directory on the path)",
        )


def sources_of(args: argparse.Namespace, command: str) -> Any:
    """Return the ``Sources`` the options name; raise CannotRun if a folder is missing.

    Also say on stderr what a given DSN ignores.
    """
    from vdata.check.sources import Sources

    missing = [str(p) for p in [*args.sql, *args.migrations] if not p.is_dir()]
    if missing:
        raise CannotRun(f"not a folder: {', '.join(missing)}")
    modules = getattr(args, "modules", [])
    if modules and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as ``python -m`` does: the service's package
    given = args.dsn or os.environ.get("VDATA_DSN")
    if given and (args.migrations or args.bundled is not None):
        print(
            f"vdata {command}: --migrations and --bundled build a throwaway database; "
            "the given database is used as it is (migrate it with vdata migrate)",
            file=sys.stderr,
        )
    return Sources.of(args.sql, args.migrations, modules, args.bundled)


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand to *subparsers*."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="check every named query against the migrated schema",
        description=(
            "Prepare every named query on a database migrated to head and compare it with "
            "its declaration and its row Struct. Exit 0 if clean, 1 if any error, 2 if it "
            "could not run. Without --dsn or VDATA_DSN, a throwaway embedded PostgreSQL is "
            "started and migrated (with --migrations DIR for a service's own schema)."
        ),
    )
    add_dsn(parser, "owner DSN of a database migrated to head")
    add_source_options(parser, modules=True)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also list parameter and column types"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the check; print the report; return the exit code."""
    from vdata.check.checker import check
    from vdata.check.scratch import ScratchUnavailable, database
    from vdata.migrations import MigrationError

    sources = sources_of(args, "check")
    try:
        with database(optional_dsn(args.dsn), sources, quiet=args.json) as dsn:
            report = asyncio.run(check(dsn, sources))
    except (ScratchUnavailable, MigrationError) as exc:
        raise CannotRun(str(exc)) from None
    if args.json:
        sys.stdout.write(report.to_json().decode() + "\n")
    else:
        print(report.to_text(verbose=args.verbose))
    return PROBLEMS if report.errors else OK
