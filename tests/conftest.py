"""Shared test configuration.

The PostgreSQL fixtures (``vdata_server``, ``vdata_template_dsn``, ``vdata_dsn``,
``vdata_app_dsn``, ``vdata_db``, ``vdata_tx``) come from the ``vdata.testing``
plugin, loaded through its ``pytest11`` entry point; see docs/testing.md.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from psycopg import sql

_INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration with ``integration``."""
    for item in items:
        if _INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def app_dsn(vdata_dsn: str, vdata_app_dsn: str) -> str:
    """The service role's DSN on a fresh database that also holds the probe schema.

    The probe queries (tests/sql/probe) exercise the executors directly.
    """
    from tests.integration._probe import install

    await install(vdata_dsn)
    return vdata_app_dsn


@pytest.fixture
async def owner(vdata_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """An owner (superuser) connection to the test's database, beside ``vdata_db``."""
    conn = await asyncpg.connect(vdata_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def empty_dsn(vdata_server: Any) -> Iterator[str]:
    """Owner DSN of a new, empty database (not cloned from the migrated template)."""
    admin_dsn = vdata_server.dsn()
    name = f"vdata_mig_{time.monotonic_ns()}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield vdata_server.dsn(name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
