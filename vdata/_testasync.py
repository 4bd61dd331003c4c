"""The ``vdata.testing`` plugin's async fixtures: vdata itself on the test databases.

``vdata_settings``, ``vdata_db`` (a ``Database`` on a fresh clone) and
``vdata_tx`` (a transaction on the session's shared clone, rolled back after
the test). They are registered through ``vdata.testing``, which re-exports
them; the databases they connect to come from its fixtures, by name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import pytest

from vdata._testadmin import dbname
from vdata._testproviders import APP_ROLE, Server

__all__ = ["vdata_db", "vdata_settings", "vdata_tx"]

_F = TypeVar("_F", bound=Callable[..., Any])

try:
    import pytest_asyncio

    _async_fixture_impl: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - vdata-pg[test] brings pytest-asyncio
    _async_fixture_impl = pytest.fixture


def _async_fixture(fn: _F) -> _F:
    """``pytest_asyncio.fixture`` (works in strict and auto mode), typed for mypy."""
    return cast("_F", _async_fixture_impl(fn))


@pytest.fixture
def vdata_settings() -> Any:
    """``Settings`` for ``vdata_db``/``vdata_tx`` (defaults, none read from the environment)."""
    from vdata.settings import Settings

    return Settings.from_env(env={})


def _connect_fn() -> Callable[..., Any]:
    try:
        from vdata.database import connect
    except ImportError as exc:
        pytest.fail(f"vdata.testing: cannot import vdata.database.connect ({exc})", pytrace=False)
    return connect


@_async_fixture
async def vdata_db(vdata_app_dsn: str, vdata_settings: Any) -> AsyncIterator[Any]:
    """A ``vdata.Database`` connected as ``vdata_app`` to a fresh clone; closed after."""
    db = await _connect_fn()(vdata_app_dsn, settings=vdata_settings)
    try:
        yield db
    finally:
        await db.close()


class _RollbackTestTransaction(Exception):
    """Raised inside ``vdata_tx``'s transaction at teardown so that it rolls back."""


@_async_fixture
async def vdata_tx(
    vdata_server: Server, vdata_shared_dsn: str, vdata_settings: Any
) -> AsyncIterator[Any]:
    """A transaction (actor ``"test"``) on the shared clone, rolled back after the test."""
    dsn = vdata_server.dsn(dbname(vdata_shared_dsn), user=APP_ROLE)
    db = await _connect_fn()(dsn, settings=vdata_settings)
    try:
        try:
            async with db.transaction(actor="test") as tx:
                yield tx
                raise _RollbackTestTransaction
        except _RollbackTestTransaction:
            pass
    finally:
        await db.close()
