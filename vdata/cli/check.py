"""``vdata check``: every named query of ``sql/`` checked against the migrated schema."""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from vdata.cli._common import OK, PROBLEMS, CannotRun, add_dsn, optional_dsn


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand to *subparsers*."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="check every named query against the migrated schema",
        description=(
            "Prepare every named query on a database migrated to head and compare it with "
            "its declaration and its row Struct. Exit 0 if clean, 1 if any error, 2 if it "
            "could not run. Without --dsn or VDATA_DSN, a throwaway embedded PostgreSQL is "
            "started and migrated."
        ),
    )
    add_dsn(parser, "owner DSN of a database migrated to head")
    parser.add_argument(
        "--sql-dir", type=Path, help="check this folder instead of vdata's sql/ (no Structs)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also list parameter and column types"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the check; print the report; return the exit code."""
    from vdata._scratchdb import ScratchUnavailable, database
    from vdata.check import check

    try:
        with database(optional_dsn(args.dsn), quiet=args.json) as dsn:
            report = asyncio.run(check(dsn, root=args.sql_dir))
    except ScratchUnavailable as exc:
        raise CannotRun(str(exc)) from None
    if args.json:
        sys.stdout.write(report.to_json().decode() + "\n")
    else:
        print(report.to_text(verbose=args.verbose))
    return PROBLEMS if report.errors else OK
