"""``vdata bench``: vdata against raw asyncpg and SQLAlchemy, side by side in one run."""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vdata.cli._common import OK, PROBLEMS, CannotRun, add_dsn, optional_dsn

_APP_ROLE = "vdata_app"


def register(subparsers: Any) -> None:
    """Add the ``bench`` subcommand to *subparsers*."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="benchmark vdata against raw asyncpg and SQLAlchemy",
        description=(
            "Run every operation with every contender (vdata pool, vdata tx, asyncpg pool, "
            "asyncpg tuned, SQLAlchemy async ORM) in latency and throughput mode, interleaved "
            "and repeated; print a table and write bench.json and bench.md, then draw "
            "bench.png (needs matplotlib: pip install 'vdata-pg[bench]'). Without --dsn or "
            "VDATA_DSN a throwaway embedded PostgreSQL is started, migrated and seeded. "
            "Exit 0 whether or not targets are met; 1 if a measurement failed, 2 if it "
            "could not run."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="about a minute (CI); fewer rows")
    add_dsn(
        parser,
        "owner DSN of a scratch database (it is migrated and written to; "
        "contenders connect with the same DSN)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="output folder (bench-results/)"
    )
    parser.add_argument("--only", help="comma-separated operations or extras to run (default: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)


@contextlib.contextmanager
def _database(dsn: str | None) -> Iterator[tuple[str, str]]:
    """Yield (owner DSN, service DSN): *dsn* twice, or a fresh embedded server's."""
    import psycopg

    from vdata import migrations
    from vdata.testing import pgserver

    if dsn:
        try:
            migrations.apply(dsn, app_role=_APP_ROLE)
        except migrations.MigrationError as exc:  # not migratable: not usable
            raise CannotRun(f"cannot use the database: {exc.message}") from None
        yield dsn, dsn
        return
    try:
        server = pgserver.start("embedded")
    except (pgserver.PgServerError, pgserver.Unavailable) as first:
        try:
            server = pgserver.start("auto")
        except (pgserver.PgServerError, pgserver.Unavailable) as exc:
            raise CannotRun(
                f"no --dsn or VDATA_DSN, and no throwaway PostgreSQL ({first}; {exc})"
            ) from None
    with server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {_APP_ROLE} LOGIN")
            conn.execute("CREATE DATABASE vdata_bench")
        owner = server.dsn("vdata_bench")
        migrations.apply(owner, app_role=_APP_ROLE)
        print(
            f"vdata bench: throwaway {server.kind} PostgreSQL {server.version_text}",
            file=sys.stderr,
        )
        yield owner, server.dsn("vdata_bench", user=_APP_ROLE)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; print the table; return the exit code."""
    from vdata.bench import report, suite

    only = tuple(x.strip() for x in (args.only or "").split(",") if x.strip())
    try:
        config = suite.Config.build(quick=args.quick, only=only)
    except ValueError as exc:
        raise CannotRun(str(exc)) from None
    with _database(optional_dsn(args.dsn)) as (owner, app):
        results = asyncio.run(suite.run(config, owner, app, progress_enabled=not args.no_progress))
    text, paths, chart_skipped = report.write_all(results, args.out)
    print(text)
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    if chart_skipped:
        print(f"vdata bench: no chart: {chart_skipped}", file=sys.stderr)
    if results.errors:
        # Missed targets never fail the command; a measurement that crashed does.
        print(f"vdata bench: {len(results.errors)} measurement(s) failed", file=sys.stderr)
        return PROBLEMS
    return OK
