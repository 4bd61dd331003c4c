"""The plugin's connected fixtures: vdata itself, with the service's areas, on the test databases.

* ``vdata_db`` (function, async): ``vdata.connect(vdata_app_dsn,
  settings=vdata_settings, areas=vdata_areas)`` on a fresh clone; closed after.
* ``vdata_tx`` (function, async): a transaction (actor ``"test"``) on the
  session's shared clone, rolled back at the end of the test.
* ``vdata_settings`` (function): the ``Settings`` given to ``connect``;
  override it in a conftest to change them.
* ``vdata_areas`` (session): the service's repositories by area name, as
  ``vdata_db.<name>`` and ``vdata_tx.<name>``; by default what the
  ``vdata_areas`` option names (``MODULE:ATTRIBUTE``), else none. Override
  it in a conftest to return a mapping instead.

vdata's bundled areas are registered too unless the ``vdata_bundled``
option is false. The databases come from ``vdata.testing.fixtures``, by
fixture name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar, cast

import pytest

from vdata.testing.admin import dbname
from vdata.testing.options import load_areas, service_options
from vdata.testing.providers import APP_ROLE, Server

__all__ = ["vdata_areas", "vdata_db", "vdata_settings", "vdata_tx"]

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


@pytest.fixture(scope="session")
def vdata_areas(pytestconfig: pytest.Config) -> Mapping[str, Any]:
    """The service's repositories by area name (the ``vdata_areas`` option; default none)."""
    spec = service_options(pytestconfig).areas
    return {} if spec is None else load_areas(spec)


def _connect_fn(config: pytest.Config, areas: Mapping[str, Any]) -> Callable[[str, Any], Any]:
    """Return ``connect(dsn, settings)`` with the service's areas and the bundled ones if asked."""
    try:
        from vdata.database import connect
    except ImportError as exc:
        pytest.fail(f"vdata.testing: cannot import vdata.database.connect ({exc})", pytrace=False)
    bundled = service_options(config).bundled

    def open_database(dsn: str, settings: Any) -> Any:
        return connect(dsn, settings=settings, areas=areas, bundled=bundled)

    return open_database


@_async_fixture
async def vdata_db(
    request: pytest.FixtureRequest,
    vdata_app_dsn: str,
    vdata_settings: Any,
    vdata_areas: Mapping[str, Any],
) -> AsyncIterator[Any]:
    """A ``vdata.Database`` connected as ``vdata_app`` to a fresh clone; closed after."""
    db = await _connect_fn(request.config, vdata_areas)(vdata_app_dsn, vdata_settings)
    try:
        yield db
    finally:
        await db.close()


class _RollbackTestTransaction(Exception):
    """Raised inside ``vdata_tx``'s transaction at teardown so that it rolls back."""


@_async_fixture
async def vdata_tx(
    request: pytest.FixtureRequest,
    vdata_server: Server,
    vdata_shared_dsn: str,
    vdata_settings: Any,
    vdata_areas: Mapping[str, Any],
) -> AsyncIterator[Any]:
    """A transaction (actor ``"test"``) on the shared clone, rolled back after the test."""
    dsn = vdata_server.dsn(dbname(vdata_shared_dsn), user=APP_ROLE)
    db = await _connect_fn(request.config, vdata_areas)(dsn, vdata_settings)
    try:
        try:
            async with db.transaction(actor="test") as tx:
                yield tx
                raise _RollbackTestTransaction
        except _RollbackTestTransaction:
            pass
    finally:
        await db.close()
