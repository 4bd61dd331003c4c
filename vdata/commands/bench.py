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

_APP_ROLE = "vdata_app"


def register(subparsers: Any) -> None:
    """Add the ``bench`` subcommand to *subparsers*."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="benchmark vdata against raw asyncpg and SQLAlchemy",
        description=(
            "Run every operation with every contender (vdata pool, vdata tx, asyncpg pool, "
            "asyncpg tuned, SQLAlchemy async ORM) in latency and throughput mode, interleaved "
            "and repeated; print a table and write bench.json, bench.md and bench.png. "
            "Without --dsn a throwaway embedded PostgreSQL is started, migrated and seeded. "
            "Exit 0 whether or not targets are met; 1 if the run failed, 2 if no database."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="about a minute (CI); fewer rows")
    parser.add_argument(
        "--dsn",
        help="owner DSN of a scratch database (it is migrated and written to; "
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
        except Exception as exc:  # unreachable, refused, not migratable: not usable
            raise _NoDatabase(f"cannot use --dsn: {exc}") from exc
        yield dsn, dsn
        return
    try:
        server = pgserver.start("embedded")
    except (pgserver.PgServerError, pgserver.Unavailable) as first:
        try:
            server = pgserver.start("auto")
        except (pgserver.PgServerError, pgserver.Unavailable) as exc:
            raise _NoDatabase(f"no --dsn, and no throwaway PostgreSQL ({first}; {exc})") from exc
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


class _NoDatabase(RuntimeError):
    pass


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; print the table; return the exit code."""
    from vdata.bench import report, suite

    only = tuple(x.strip() for x in (args.only or "").split(",") if x.strip())
    try:
        config = suite.Config.build(quick=args.quick, only=only)
    except ValueError as exc:
        print(f"vdata bench: {exc}", file=sys.stderr)
        return 2
    try:
        with _database(args.dsn) as (owner, app):
            results = asyncio.run(
                suite.run(config, owner, app, progress_enabled=not args.no_progress)
            )
    except _NoDatabase as exc:
        print(f"vdata bench: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"vdata bench: the run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    text, paths = report.write_all(results, args.out)
    print(text)
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    if results.errors:
        # Missed targets never fail the command; a measurement that crashed does.
        print(f"vdata bench: {len(results.errors)} measurement(s) failed", file=sys.stderr)
        return 1
    return 0
