"""translate() on errors from a real PostgreSQL: every mapped SQLSTATE, no leaked values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from vdata.engine.failures import _BY_CLASS, _BY_CODE, translate
from vdata.errors import (
    ConflictError,
    QueryTimeoutError,
    ValidationError,
    VdataError,
)

pytestmark = pytest.mark.integration

SECRET = "hunter2-s3cr3t"


@pytest.fixture
async def conn(vdata_server: Any) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(vdata_server.dsn())
    try:
        yield connection
    finally:
        await connection.close()


async def raised_by(conn: asyncpg.Connection, sql: str, *args: object) -> asyncpg.PostgresError:
    with pytest.raises(asyncpg.PostgresError) as info:
        await conn.execute(sql, *args)
    return info.value


def raise_sql(code: str) -> str:
    # The code comes from our own tables, never from input.
    return f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{code}'; END $$"


@pytest.mark.parametrize(("code", "cls"), sorted(_BY_CODE.items()))
async def test_each_mapped_code_from_the_server(
    conn: asyncpg.Connection, code: str, cls: type[VdataError]
) -> None:
    exc = await raised_by(conn, raise_sql(code))
    assert exc.sqlstate == code
    error = translate(exc, query="raise")
    assert type(error) is cls
    assert error.sqlstate == code


@pytest.mark.parametrize(
    ("code", "cls"),
    sorted((prefix + "999", cls) for prefix, cls in _BY_CLASS.items()),
)
async def test_unlisted_codes_fall_back_to_their_class(
    conn: asyncpg.Connection, code: str, cls: type[VdataError]
) -> None:
    assert type(translate(await raised_by(conn, raise_sql(code)))) is cls


async def test_unique_violation_names_the_constraint_but_not_the_value(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute("CREATE TEMP TABLE t (email text CONSTRAINT unique_t_email UNIQUE)")
    await conn.execute("INSERT INTO t VALUES ($1)", SECRET)
    exc = await raised_by(conn, "INSERT INTO t VALUES ($1)", SECRET)
    assert SECRET in (exc.detail or "")  # the server repeats the value...
    error = translate(exc, query="t.insert")
    assert isinstance(error, ConflictError)
    assert error.constraint == "unique_t_email"
    assert SECRET not in str(error)  # ...vdata does not
    assert SECRET not in repr(error)


async def test_invalid_input_syntax_does_not_repeat_the_input(conn: asyncpg.Connection) -> None:
    exc = await raised_by(conn, f"SELECT '{SECRET}'::uuid")
    assert SECRET in str(exc)
    error = translate(exc)
    assert isinstance(error, ValidationError)
    assert SECRET not in str(error)


async def test_statement_timeout_is_a_query_timeout(conn: asyncpg.Connection) -> None:
    await conn.execute("SET statement_timeout = '10ms'")
    error = translate(await raised_by(conn, "SELECT pg_sleep(1)"))
    assert isinstance(error, QueryTimeoutError)
    assert error.sqlstate == "57014"
