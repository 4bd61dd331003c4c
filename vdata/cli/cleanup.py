"""``vdata cleanup``: delete expired sessions, keys and tokens, and old audit months."""

from __future__ import annotations

__all__ = ["register"]

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from vdata.cli._common import OK, add_dsn, require_dsn

if TYPE_CHECKING:
    from vdata.models.maintenance import CleanupReport

_DAY = 86400.0


def register(subparsers: Any) -> None:
    """Add the ``cleanup`` subcommand to *subparsers*."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cleanup",
        help="delete expired sessions, API keys and tokens, and old audit months",
        description=(
            "Delete sessions expired or revoked, API keys expired or revoked long ago, "
            "expired password-reset and email-verification tokens and, with "
            "--audit-keep-months (schema owner only), the audit months past retention; "
            "each deletion of a session or key is audited. One transaction under an "
            "advisory lock: safe to run on every instance at once (a run that finds "
            "another at work does nothing and says so) and as often as you like. Exit 0 "
            "when done or skipped, 2 if it could not run."
        ),
    )
    add_dsn(parser, "database (service role; the schema owner for --audit-keep-months)")
    parser.add_argument(
        "--sessions-older-than-days",
        type=_days,
        default=0.0,
        metavar="DAYS",
        help="delete sessions expired or revoked more than DAYS ago (default 0)",
    )
    parser.add_argument(
        "--expired-keys-older-than-days",
        type=_days,
        default=0.0,
        metavar="DAYS",
        help="delete API keys expired more than DAYS ago (default 0)",
    )
    parser.add_argument(
        "--revoked-keys-older-than-days",
        type=_days,
        default=30.0,
        metavar="DAYS",
        help="delete API keys revoked more than DAYS ago (default 30)",
    )
    parser.add_argument(
        "--audit-keep-months",
        type=int,
        default=None,
        metavar="N",
        help="also drop audit partitions older than the last N months (owner only)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would be deleted; delete nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=_run)


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not 0 <= value <= 36500:
        raise argparse.ArgumentTypeError("days must be between 0 and 36500")
    return value


def _run(args: argparse.Namespace) -> int:
    dsn = require_dsn(args.dsn)

    async def run() -> CleanupReport:
        import vdata.database
        from vdata.repositories.maintenance import CLEANUP_ACTOR

        async with await vdata.database.connect(dsn) as db:
            return await db.maintenance.cleanup(
                dry_run=args.dry_run,
                sessions_older_than=args.sessions_older_than_days * _DAY,
                expired_keys_older_than=args.expired_keys_older_than_days * _DAY,
                revoked_keys_older_than=args.revoked_keys_older_than_days * _DAY,
                audit_keep_months=args.audit_keep_months,
                actor=CLEANUP_ACTOR,
            )

    report = asyncio.run(run())
    if args.json:
        import msgspec

        print(msgspec.json.encode(report).decode())
    else:
        print(_describe(report))
    return OK


def _describe(report: CleanupReport) -> str:
    if not report.ran:
        return "cleanup skipped: another cleanup run holds the lock"
    verb = "would delete" if report.dry_run else "deleted"
    lines = [
        f"cleanup {verb}: {report.sessions} session(s), "
        f"{report.expired_api_keys} expired and {report.revoked_api_keys} revoked API key(s), "
        f"{report.password_resets} password-reset and "
        f"{report.email_verifications} email-verification token(s), "
        f"{len(report.audit_partitions)} audit partition(s)"
    ]
    lines += [f"  {name}" for name in report.audit_partitions]
    return "\n".join(lines)
