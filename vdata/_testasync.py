"""The ``vdata.testing`` plugin's async side: its async fixtures, and the tests that use them.

``vdata_settings``, ``vdata_db`` (a ``Database`` on a fresh clone) and
``vdata_tx`` (a transaction on the session's shared clone, rolled back after
the test). They are registered through ``vdata.testing``, which re-exports
them; the databases they connect to come from its fixtures, by name.

``mark_async_test`` lets an ``async def`` test that takes a vdata fixture run
under pytest-asyncio's default strict mode with nothing in the project's
configuration: the plugin's collection hook marks it ``asyncio``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import pytest

from vdata._testadmin import dbname
from vdata._testproviders import APP_ROLE, Server

__all__ = ["mark_async_test", "vdata_db", "vdata_settings", "vdata_tx"]

_F = TypeVar("_F", bound=Callable[..., Any])

try:
    import pytest_asyncio

    _async_fixture_impl: Any = pytest_asyncio.fixture
    _HAVE_PYTEST_ASYNCIO = True
except ImportError:  # pragma: no cover - vdata-pg[test] brings pytest-asyncio
    _async_fixture_impl = pytest.fixture
    _HAVE_PYTEST_ASYNCIO = False

# Markers of async test runners: a test that names one is left to it.
_RUNNER_MARKS = frozenset({"asyncio", "anyio", "trio"})


def mark_async_test(obj: object) -> bool:
    """Mark *obj* ``asyncio`` if it is an ``async def`` test taking a ``vdata_*`` fixture.

    In pytest-asyncio's strict mode (its default) an unmarked ``async def``
    test is not run ("async def functions are not natively supported"). A
    test that asks for vdata's fixtures is asking for asyncio, so the plugin
    says so for it; other tests are left to the project's own settings.
    Return whether a mark was added.
    """
    if not (_HAVE_PYTEST_ASYNCIO and inspect.iscoroutinefunction(obj)):
        return False
    marks = getattr(obj, "pytestmark", [])
    if any(getattr(m, "name", None) in _RUNNER_MARKS for m in marks):
        return False
    try:
        names = inspect.signature(obj).parameters
    except (TypeError, ValueError):  # pragma: no cover - a callable without a signature
        return False
    if not any(name.startswith("vdata_") for name in names):
        return False
    pytest.mark.asyncio(obj)
    return True


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
