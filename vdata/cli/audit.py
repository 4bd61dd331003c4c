"""``vdata audit``: verify the audit hash chain, seal new rows, print its head, drop old months."""

from __future__ import annotations

__all__ = ["register"]

import argparse
import asyncio
import contextlib
import datetime as dt
from typing import TYPE_CHECKING, Any

from vdata.cli._common import OK, PROBLEMS, CannotRun, add_dsn, require_dsn

if TYPE_CHECKING:
    from vdata.models.audit import ChainReport

# Exit codes: 0 the chain holds, 1 it is broken (the row is printed), 2 the
# check could not run (no DSN, server unreachable, no privilege).


def register(subparsers: Any) -> None:
    """Add ``audit verify``, ``seal``, ``head`` and ``drop-partitions`` to ``vdata``."""
    parser = subparsers.add_parser(
        "audit",
        help="verify the audit trail's hash chain, or apply retention",
        description=(
            "Verify the audit hash chain (see docs/audit-chain.md), seal new rows, print its "
            "head, or drop old months. Exit 0 if the chain holds, 1 if it is broken (the row "
            "is named), 2 if it could not run."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    verify = actions.add_parser(
        "verify", help="re-compute the hash chain; exit 1 and name the row if it is broken"
    )
    _add_dsn(verify, "database to check, any role that can read app.audit_log")
    verify.add_argument(
        "--since", type=_timestamp, help="first occurred_at (ISO 8601, UTC if naive)"
    )
    verify.add_argument("--until", type=_timestamp, help="end of range, exclusive (ISO 8601)")
    verify.add_argument(
        "--from-id", type=int, help="start at this id and trust its prev_hash (after retention)"
    )
    verify.add_argument("--anchor-id", type=int, help="id of a head kept outside the database")
    verify.add_argument("--anchor-hash", type=bytes.fromhex, help="its row_hash, in hex")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(func=_verify)

    seal = actions.add_parser(
        "seal", help="seal the audit rows committed since the last seal (run it every few seconds)"
    )
    _add_dsn(seal, "database, any role that can connect to it")
    seal.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="keep sealing, this many seconds apart, until interrupted",
    )
    seal.add_argument("--json", action="store_true", help="print each seal as JSON")
    seal.set_defaults(func=_seal)

    head = actions.add_parser(
        "head", help="print the sealing head (seal and hash) to keep as anchor"
    )
    _add_dsn(head, "database, any role that can read app.audit_log")
    head.add_argument("--json", action="store_true", help="print the head as JSON")
    head.set_defaults(func=_head)

    drop = actions.add_parser(
        "drop-partitions", help="retention: drop monthly partitions older than N months (owner)"
    )
    _add_dsn(drop, "database, as the schema owner")
    drop.add_argument("--keep-months", type=int, required=True, help="months to keep, >= 1")
    drop.add_argument("--json", action="store_true", help="print the dropped partitions as JSON")
    drop.set_defaults(func=_drop)


def _add_dsn(parser: argparse.ArgumentParser, what: str) -> None:
    add_dsn(parser, what, default=None)


def _timestamp(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 timestamp: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _verify(args: argparse.Namespace) -> int:
    dsn = require_dsn(args.dsn)

    async def run() -> ChainReport:
        import vdata.database
        from vdata.models.audit import ChainHead

        anchor = None
        if args.anchor_id is not None or args.anchor_hash is not None:
            anchor = ChainHead(args.anchor_id, args.anchor_hash)
        async with await vdata.database.connect(dsn) as db:
            return await db.audit.verify_chain(
                args.since, args.until, from_id=args.from_id, anchor=anchor
            )

    report = asyncio.run(run())
    if args.json:
        print(_json(report))
    else:
        print(_describe(report))
    return OK if report.ok else PROBLEMS


def _head(args: argparse.Namespace) -> int:
    dsn = require_dsn(args.dsn)

    async def run() -> Any:
        import vdata.database

        async with await vdata.database.connect(dsn) as db:
            return await db.audit.head()

    head = asyncio.run(run())
    digest = "-" if head.last_hash is None else head.last_hash.hex()
    if args.json:
        print(
            _json(
                {"last_id": head.last_id, "last_hash": None if head.last_hash is None else digest}
            )
        )
    else:
        print(f"--anchor-id {head.last_id} --anchor-hash {digest}")
    return OK


def _seal(args: argparse.Namespace) -> int:
    dsn = require_dsn(args.dsn)
    every = args.every
    if every is not None and not 0.01 <= every <= 86_400:
        raise CannotRun("--every must be between 0.01 and 86400 seconds")

    async def run() -> None:
        import vdata.database

        async with await vdata.database.connect(dsn) as db:
            while True:
                sealed = await db.audit.seal()
                if args.json:
                    print(_json(sealed), flush=True)
                elif sealed.seal_id is None:
                    print("nothing to seal", flush=True)
                else:
                    print(f"seal {sealed.seal_id}: {sealed.rows_sealed} row(s)", flush=True)
                if every is None:
                    return
                await asyncio.sleep(every)

    with contextlib.suppress(KeyboardInterrupt):  # the way to stop --every
        asyncio.run(run())
    return OK


def _describe(report: ChainReport) -> str:
    span = f"{report.rows_checked} row(s) checked, ids {report.first_id}..{report.last_id}"
    if report.unsealed:
        span += f", {report.unsealed} not sealed yet"
    start = "from the first entry" if report.genesis else "first row's prev_hash trusted"
    if report.ok:
        return f"audit chain OK: {span}, {start}"
    return f"audit chain BROKEN at id {report.broken_id}: {report.reason} ({span}, {start})"


def _drop(args: argparse.Namespace) -> int:
    dsn = require_dsn(args.dsn)

    async def run() -> list[str]:
        import vdata.database

        async with await vdata.database.connect(dsn) as db:
            return await db.audit.drop_partitions(keep_months=args.keep_months)

    dropped = asyncio.run(run())
    if args.json:
        print(_json({"dropped": dropped}))
    else:
        print(f"dropped {len(dropped)} partition(s)" + "".join(f"\n  {name}" for name in dropped))
    return OK


def _json(value: object) -> str:
    import msgspec

    return msgspec.json.encode(value).decode()
