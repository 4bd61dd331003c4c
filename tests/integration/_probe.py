"""Test-only named queries and tables that exercise the core executors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from vdata.queries import Query, load

_TESTS = Path(__file__).resolve().parent.parent
QUERIES = load(_TESTS / "sql")


def q(name: str) -> Query[Any]:
    """Return the probe query *name*."""
    return QUERIES[f"probe.{name}"]


async def install(owner_dsn: str) -> None:
    """Create the probe schema in the database at *owner_dsn*."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute((_TESTS / "fixtures" / "probe-schema.sql").read_text())
    finally:
        await conn.close()
