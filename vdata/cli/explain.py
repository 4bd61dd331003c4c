"""``vdata explain``: the plan of every named query, flagging seq scans on growing tables."""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import sys
from typing import Any

from vdata.cli._common import OK, PROBLEMS, CannotRun, add_dsn, optional_dsn
from vdata.cli.check import add_source_options, sources_of


def register(subparsers: Any) -> None:
    """Add the ``explain`` subcommand to *subparsers*."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "explain",
        help="print the plan of each named query; flag seq scans on growing tables",
        description=(
            "Print the generic plan of every named query (or those NAMEd) and flag "
            "sequential scans on tables that grow (users, api_keys, sessions, audit_log, "
            "projects, tasks). With --analyze, run each query (rolled back) with sampled "
            "parameter values, on a database seeded with realistic volumes. Without --dsn "
            "or VDATA_DSN, a throwaway embedded PostgreSQL is started, migrated and "
            "seeded (the seed fills vdata's bundled tables; with --sql and no --bundled "
            "nothing is seeded). Exit 0 if every plan was made, 1 if one failed (or, with "
            "--fail-on-seqscan, one is flagged), 2 if it could not run."
        ),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="folder.name or name")
    add_dsn(parser, "owner DSN of a database migrated to head")
    add_source_options(parser, modules=False)
    parser.add_argument(
        "--analyze", action="store_true", help="EXPLAIN ANALYZE with sampled parameter values"
    )
    parser.add_argument(
        "--seed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="seed the database first (default: yes on a throwaway database, no with --dsn, "
        "where it writes seed rows into that database: use a scratch copy)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="seed volume: 1.0 = 100k users, 1M audit rows (default 1.0 with --analyze, "
        "else 0.1: enough for the planner to see which tables are big)",
    )
    parser.add_argument(
        "--fail-on-seqscan",
        action="store_true",
        help="exit 1 if a query seq-scans a growing table without a `seqscan-ok:` note",
    )
    parser.add_argument("--json", action="store_true", help="print the plans as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Explain the queries; print the plans; return the exit code."""
    import msgspec

    from vdata.check.explain import explain, format_plans, seed
    from vdata.check.scratch import ScratchUnavailable, database
    from vdata.migrations import MigrationError

    sources = sources_of(args, "explain")
    given = optional_dsn(args.dsn)
    throwaway = given is None
    try:
        with database(given, sources, quiet=args.json) as dsn:
            # An empty schema makes every table look tiny, and the planner
            # rightly scans tiny tables: plans are only telling with volume.
            # The seed fills vdata's bundled tables, so it needs them.
            if args.seed or (args.seed is None and throwaway and sources.apply_bundled):
                scale = args.scale if args.scale is not None else 1.0 if args.analyze else 0.1
                counts = seed(dsn, scale=scale)
                if not args.json:
                    rows = ", ".join(f"{n} {t}" for t, n in counts.items())
                    print(f"vdata explain: seeded {rows}", file=sys.stderr)
            plans = explain(dsn, args.names, analyze=args.analyze, sources=sources)
    except (ScratchUnavailable, MigrationError, ValueError) as exc:
        raise CannotRun(str(exc)) from None
    except KeyError as exc:  # a NAME that is no query
        raise CannotRun(str(exc.args[0])) from None
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(plans)).decode() + "\n")
    else:
        print(format_plans(plans))
    if any(p.error for p in plans):
        return PROBLEMS
    return PROBLEMS if args.fail_on_seqscan and any(p.flagged for p in plans) else OK
