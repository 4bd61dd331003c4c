"""``vdata migrate``: apply (the default), rollback [N], status, new NAME.

Which migrations: vdata's bundled ones by default; ``--migrations DIR`` (may
be repeated) for a service's own folders instead, ``--bundled`` to add the
bundled ones before them. Each folder is a source with its own bookkeeping
(``--source NAME`` names it; default: after the folder).
"""

from __future__ import annotations

__all__ = ["register"]

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from vdata.cli._common import OK, PROBLEMS, CannotRun, require_dsn

_DSN_HELP = "database to migrate, as the schema owner (default: $VDATA_DSN)"


def register(subparsers: Any) -> None:
    """Add ``migrate`` and its actions to the ``vdata`` command's *subparsers*."""
    # The connection options are accepted both before and after the action
    # (`vdata migrate --dsn X status` and `vdata migrate status --dsn X`); on
    # the actions they default to SUPPRESS so they never hide the outer value.
    common = argparse.ArgumentParser(add_help=False)
    _add_options(common, default=argparse.SUPPRESS)

    parser = subparsers.add_parser(
        "migrate",
        help="apply, roll back or list the schema migrations",
        description=(
            "Apply every pending migration (the default), or run an action. Exit 0 if done, "
            "1 if a migration failed or an applied migration's file changed (status: a file "
            "changed or missing), 2 if it could not run (no database, a DSN that does not "
            "parse, a server that cannot be reached)."
        ),
    )
    _add_options(parser, default=None)
    parser.set_defaults(func=_apply)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    apply = actions.add_parser("apply", parents=[common], help="apply pending migrations")
    apply.set_defaults(func=_apply)

    rollback = actions.add_parser(
        "rollback", parents=[common], help="roll back the last N applied migrations"
    )
    rollback.add_argument("count", nargs="?", type=int, default=1, help="how many (default 1)")
    rollback.set_defaults(func=_rollback)

    status = actions.add_parser(
        "status", parents=[common], help="list applied, pending and changed migrations"
    )
    status.add_argument("--json", action="store_true", help="print the list as JSON")
    status.set_defaults(func=_status)

    new = actions.add_parser(
        "new", help="create NNNN.NAME.sql and its .rollback.sql in --migrations DIR"
    )
    new.add_argument("name", help="<verb>-<object>, e.g. add-widgets")
    new.add_argument(
        "--migrations",
        action="append",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="the folder to create them in (required)",
    )
    new.set_defaults(func=_new)


def _add_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument("--dsn", default=default, help=_DSN_HELP)
    parser.add_argument(
        "--migrations",
        action="append",
        type=Path,
        default=default,
        metavar="DIR",
        help="a folder of your own migrations (may be repeated); default: vdata's bundled ones",
    )
    parser.add_argument(
        "--bundled",
        action="store_true",
        default=default or False,
        help="vdata's bundled migrations too, before the --migrations folders",
    )
    parser.add_argument(
        "--source",
        default=default,
        metavar="NAME",
        help="the name the one --migrations folder is tracked under (default: after the folder)",
    )
    parser.add_argument(
        "--app-role",
        default=default,
        help="service role to grant DML to when it exists (default: vdata_app)",
    )
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=default,
        metavar="SECONDS",
        help="lock_timeout of migration sessions (default 10)",
    )
    parser.add_argument(
        "--statement-timeout",
        type=float,
        default=default,
        metavar="SECONDS",
        help="statement_timeout of migration sessions (default 900)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", default=default or False)


def _sources(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Return the runs' folder arguments: bundled first, then each --migrations in order."""
    folders: list[Path] = args.migrations or []
    if args.source is not None and len(folders) != 1:
        raise CannotRun("--source names the one --migrations folder: give exactly one")
    runs: list[dict[str, Any]] = []
    if args.bundled or not folders:
        runs.append({"migrations": None})
    runs += [{"migrations": folder, "source": args.source} for folder in folders]
    return runs


def _one_source(args: argparse.Namespace, action: str) -> dict[str, Any]:
    runs = _sources(args)
    if len(runs) != 1:
        raise CannotRun(f"{action} works on one source: give --bundled or one --migrations DIR")
    return runs[0]


def _settings(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    dsn = require_dsn(args.dsn)
    _logging(args)
    options: dict[str, Any] = {}
    if args.lock_timeout is not None:
        options["lock_timeout"] = args.lock_timeout
    if args.statement_timeout is not None:
        options["statement_timeout"] = args.statement_timeout
    return dsn, options


def _logging(args: argparse.Namespace) -> None:
    # Progress and warnings (a missing service role) go to stderr; yoyo's
    # per-step chatter stays below the threshold.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vdata migrate: %(message)s"))
    log = logging.getLogger("vdata.migrations")
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    log.propagate = False


def _guard(run: Any, args: argparse.Namespace) -> int:
    from vdata.migrations import MigrationError

    try:
        return int(run(args))
    except CannotRun:
        raise
    except MigrationError as exc:
        # The database was reached: a migration failed, or a file changed.
        # The message says which and what to do, never the DSN's password.
        print(exc.message, file=sys.stderr)
        return PROBLEMS
    except OSError as exc:  # `new`: the folder cannot be written
        raise CannotRun(str(exc)) from None


def _apply(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        from vdata import migrations

        runs = _sources(args)
        dsn, options = _settings(args)
        for run in runs:
            applied = migrations.apply(dsn, app_role=args.app_role or "vdata_app", **run, **options)
            if not args.quiet:
                print(
                    f"applied {len(applied)} migration(s){_of(run)}"
                    + "".join(f"\n  {m}" for m in applied)
                )
        return OK

    return _guard(run, args)


def _rollback(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        from vdata import migrations

        run = _one_source(args, "rollback")
        dsn, options = _settings(args)
        undone = migrations.rollback(
            dsn, args.count, app_role=args.app_role or "vdata_app", **run, **options
        )
        if not args.quiet:
            print(
                f"rolled back {len(undone)} migration(s){_of(run)}"
                + "".join(f"\n  {m}" for m in undone)
            )
        return OK

    return _guard(run, args)


def _status(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        from vdata import migrations

        runs = _sources(args)
        dsn, _options = _settings(args)
        states = []
        for run in runs:
            listed = migrations.status(dsn, **run)
            states += listed
            if args.json:
                continue
            if len(runs) > 1:
                print(f"# {_of(run).strip()}")
            for state in listed:
                when = f"  {state.applied_at:%Y-%m-%d %H:%M:%S}" if state.applied_at else ""
                detail = f"  ({state.detail})" if state.detail else ""
                print(f"{state.state:<8} {state.id}{when}{detail}")
        if args.json:
            import msgspec

            print(msgspec.json.encode(states, enc_hook=str).decode())  # paths as text
        # A changed or missing file is a problem a deploy must not ignore.
        return PROBLEMS if any(s.state in ("changed", "missing") for s in states) else OK

    return _guard(run, args)


def _new(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        from vdata import migrations

        folders = getattr(args, "migrations", None) or []
        if len(folders) != 1 or args.bundled:
            raise CannotRun(
                "new writes into your own folder: give it as --migrations DIR "
                "(vdata's bundled migrations are not edited in place)"
            )
        path, rollback_path = migrations.new(args.name, migrations=folders[0])
        print(f"created {path}\ncreated {rollback_path}")
        return OK

    return _guard(run, args)


def _of(run: dict[str, Any]) -> str:
    folder = run.get("migrations")
    return f" from {folder}" if folder is not None else " (vdata's bundled migrations)"
