"""The plugin's database fixtures: the server, the migrated template, a clone per test.

* ``vdata_server`` (session): the server (see ``vdata.testing.plugin`` for
  the provider chain); ``.dsn(dbname="postgres", user=None)`` gives the
  owner (superuser) DSN, ``.dsn(db, user="vdata_app")`` the service role's.
  For ``local``/``embedded`` it is a ``vdata.testing.pgserver.PgServer``
  (``stop_server()``/``start_server()`` work).
* ``vdata_migrate`` (session): a callable ``(owner_dsn) -> None`` that builds
  the template's schema: vdata's bundled migrations (unless
  ``vdata_bundled`` is false), then each folder of ``vdata_migrations``.
* ``vdata_template_dsn`` (session): a database built by ``vdata_migrate``,
  marked as template.
* ``vdata_dsn`` / ``vdata_app_dsn`` (function): a fresh clone of the template
  per test, as owner / as ``vdata_app``; dropped afterwards.
* ``vdata_shared_dsn`` (session): one clone for the whole session
  (``vdata_tx`` runs on it).
"""

from __future__ import annotations

__all__ = [
    "STATS",
    "Stats",
    "vdata_app_dsn",
    "vdata_dsn",
    "vdata_migrate",
    "vdata_server",
    "vdata_shared_dsn",
    "vdata_template_dsn",
]

import contextlib
import importlib
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from vdata.testing.admin import Admin, dbname, ident
from vdata.testing.options import service_options
from vdata.testing.providers import (
    APP_ROLE,
    ProviderUnavailable,
    Server,
    start_first,
)


@dataclass
class Stats:
    """What the session's server cost, for the terminal summary."""

    provider: str = ""
    version: str = ""
    address: str = ""
    start_seconds: float = 0.0
    template_seconds: float = 0.0
    clones: list[float] = field(default_factory=list)


STATS = pytest.StashKey[Stats]()
_ADMIN = pytest.StashKey[Admin]()


def _stats(config: pytest.Config) -> Stats:
    return config.stash.setdefault(STATS, Stats())


def _say(config: pytest.Config, line: str) -> None:
    """Write one line to the terminal, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        print(line, file=sys.stderr)
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.ensure_newline()
        reporter.write_line(line, yellow=True)


@pytest.fixture(scope="session")
def vdata_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The session's PostgreSQL (see the module docstring for the provider chain)."""
    t0 = time.perf_counter()
    try:
        server, choice = start_first(
            lambda line: _say(request.config, line), service_options(request.config).image
        )
    except ProviderUnavailable as exc:
        pytest.fail(f"vdata.testing: {exc}", pytrace=False)
    admin = Admin(server)
    try:
        stats = _stats(request.config)
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
def vdata_migrate(pytestconfig: pytest.Config) -> Callable[[str], object]:
    """Build the template's schema: the bundled migrations, then the service's folders.

    Each folder of ``vdata_migrations`` is applied as its own source
    (``vdata.migrations.apply(dsn, migrations=folder)``), in the order
    given, with ``vdata_app`` as the service role. Override this fixture
    to build the schema some other way.
    """
    options = service_options(pytestconfig)

    def migrate(dsn: str) -> object:
        try:
            apply = importlib.import_module("vdata.migrations").apply
        except (ImportError, AttributeError) as exc:
            pytest.fail(
                f"vdata.testing: cannot import vdata.migrations.apply ({exc}); the template "
                "database cannot be migrated",
                pytrace=False,
            )
        applied: list[str] = []
        if options.bundled:
            applied += apply(dsn, app_role=APP_ROLE)
        for folder in options.migrations:
            applied += apply(dsn, migrations=folder, app_role=APP_ROLE)
        return applied

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
        _stats(request.config).template_seconds = time.perf_counter() - t0
        yield dsn
    finally:
        admin.drop(name, template=True)


def _clone(request: pytest.FixtureRequest, template_dsn: str, prefix: str) -> str:
    t0 = time.perf_counter()
    name = _admin(request).clone(dbname(template_dsn), prefix)
    _stats(request.config).clones.append(time.perf_counter() - t0)
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
