"""``vdata check``: every named query of ``sql/`` checked against the migrated schema."""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any


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
    parser.add_argument("--dsn", help="owner DSN of a database migrated to head")
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
    import asyncpg
    import psycopg

    from vdata._scratchdb import ScratchUnavailable, database
    from vdata.check import check

    try:
        with database(args.dsn, quiet=args.json) as dsn:
            report = asyncio.run(check(dsn, root=args.sql_dir))
    except ScratchUnavailable as exc:
        print(f"vdata check: {exc}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError, psycopg.OperationalError) as exc:
        # cannot connect: refused, unknown host, no such database, bad password
        print(f"vdata check: cannot use the database: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(report.to_json().decode() + "\n")
    else:
        print(report.to_text(verbose=args.verbose))
    return 1 if report.errors else 0
