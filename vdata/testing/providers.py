"""The PostgreSQL providers of the ``vdata.testing`` plugin, and the server they give.

The chain is ``dsn``, ``docker``, ``local``, ``embedded`` (see ``vdata.testing``).
``choose_provider()`` is cheap (it starts nothing); ``start_provider(choice)``
starts or wraps the server. Importing this module imports neither psycopg,
testcontainers nor ``vdata.testing.pgserver``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "APP_ROLE",
    "DEFAULT_IMAGE",
    "ENV_APP_PASSWORD",
    "ENV_DSN",
    "ENV_IMAGE",
    "ENV_PROVIDER",
    "PROVIDERS",
    "DsnServer",
    "ProviderChoice",
    "ProviderName",
    "ProviderUnavailable",
    "Server",
    "choose_provider",
    "connect",
    "docker_engine",
    "docker_host",
    "docker_image",
    "start_first",
    "start_provider",
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


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    """The provider picked by ``choose_provider``, why, and whether it was forced."""

    name: ProviderName
    detail: str
    forced: bool
    skipped: tuple[str, ...] = ()
    image: str | None = None  # the vdata_image option, for the docker provider


def _context_host(name: str) -> str | None:
    """Return the Docker endpoint of context *name*, as ``docker context inspect`` does.

    The CLI keeps each context in ``<config>/contexts/meta/<sha256(name)>/meta.json``;
    read that first (no process), then ask the CLI if it is installed.
    """
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        host = json.loads(meta.read_text())["Endpoints"]["docker"]["Host"]
        if isinstance(host, str) and host:
            return host
    exe = shutil.which("docker")
    if exe is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        done = subprocess.run(
            [exe, "context", "inspect", name, "--format", "{{json .Endpoints.docker.Host}}"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if done.returncode == 0:
            host = json.loads(done.stdout)
            return host if isinstance(host, str) and host else None
    return None


def docker_host() -> tuple[str, str]:
    """Return the Docker engine's address (``unix://...`` or ``tcp://...``) and where it came from.

    In order: ``DOCKER_HOST``; the current Docker context (``DOCKER_CONTEXT``,
    or ``currentContext`` in the CLI's config.json: Docker Desktop and
    rootless Docker set one up); ``/var/run/docker.sock``; the sockets
    rootless Docker and Docker Desktop create when no context names them.
    """
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"], "DOCKER_HOST"
    context = os.environ.get("DOCKER_CONTEXT")
    if not context:
        config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
        with contextlib.suppress(OSError, ValueError, AttributeError):
            context = json.loads((config / "config.json").read_text()).get("currentContext")
    if context and context != "default":
        host = _context_host(context)
        if host:
            return host, f"Docker context {context}"
    default = "/var/run/docker.sock"
    if os.path.exists(default):
        return f"unix://{default}", "default socket"
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    for path, what in (
        (Path(runtime) / "docker.sock", "rootless Docker socket"),
        (Path.home() / ".docker" / "run" / "docker.sock", "Docker Desktop socket"),
        (Path.home() / ".docker" / "desktop" / "docker.sock", "Docker Desktop socket"),
    ):
        if path.exists():
            return f"unix://{path}", what
    return f"unix://{default}", "default socket"


def docker_engine(timeout: float = 1.0) -> tuple[bool, str]:
    """Ping the Docker engine cheaply (``GET /_ping``); return (answers, why).

    The engine is the one ``docker_host()`` finds (``DOCKER_HOST``, the
    current Docker context, the usual sockets). No Docker SDK is imported.
    """
    host, _where = docker_host()
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


def _check(name: ProviderName, image: str | None = None) -> str:
    """Return a description if provider ``name`` is usable; raise ProviderUnavailable if not.

    *image* is the ``vdata_image`` option (see ``docker_image()``).
    """
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
        name_, source = docker_image(image)
        return f"{why}, image {name_} ({source})"
    from vdata.testing import pgbin, pgserver

    try:
        _kind, bindir = pgserver.find_bindir(name)
        return f"PostgreSQL {pgbin.version_text(bindir)} binaries in {bindir}"
    except pgserver.PgServerError as exc:
        raise ProviderUnavailable(str(exc)) from None
    except OSError as exc:
        raise ProviderUnavailable(f"{name} binaries do not run: {exc}") from None


def choose_provider(image: str | None = None) -> ProviderChoice:
    """Pick the provider (cheap: no server is started). Raise ProviderUnavailable.

    *image* is the ``vdata_image`` option: the docker provider's image unless
    ``VDATA_TEST_IMAGE`` names another.
    """
    forced = os.environ.get(ENV_PROVIDER, "").strip().lower()
    if forced:
        if forced not in PROVIDERS:
            raise ProviderUnavailable(
                f"{ENV_PROVIDER}={forced!r} is not one of {', '.join(PROVIDERS)}"
            )
        try:
            return ProviderChoice(forced, _check(forced, image), forced=True, image=image)  # type: ignore[arg-type]
        except ProviderUnavailable as exc:
            raise ProviderUnavailable(
                f"{ENV_PROVIDER}={forced} but that provider is unavailable: {exc}"
            ) from None
    skipped: list[str] = []
    for name in PROVIDERS:
        try:
            return ProviderChoice(
                name,  # type: ignore[arg-type]
                _check(name, image),  # type: ignore[arg-type]
                forced=False,
                skipped=tuple(skipped),
                image=image,
            )
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
    image: str = ""  # docker: the image the container runs
    network: str = ""  # docker: "bridge" (a published port) or "host"
    container_id: str = ""  # docker: the container (``docker logs <id>``)
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


def docker_image(configured: str | None = None) -> tuple[str, str]:
    """Return the image for the ``docker`` provider and where the name came from.

    ``VDATA_TEST_IMAGE`` wins over *configured* (the ``vdata_image`` option),
    which wins over ``DEFAULT_IMAGE``, the official image a user pulls.
    """
    if os.environ.get(ENV_IMAGE):
        return os.environ[ENV_IMAGE], ENV_IMAGE
    if configured:
        return configured, "vdata_image"
    return DEFAULT_IMAGE, "default"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _host_network(client: Any) -> bool:
    """True if the engine has no ``bridge`` network (``dockerd --bridge=none``)."""
    return not client.networks.list(names=["bridge"])


_PORT_TAKEN = "Address already in use"


def _start_docker(image: str) -> DsnServer:
    """Start a testcontainers PostgreSQL (fsync off) and wrap it.

    Where the engine has a bridge network the container's 5432 is published
    on a port Docker picks. Where it has none it runs with host networking,
    listening on 127.0.0.1 only, on a free port chosen here (``PGPORT``, which
    the official image and psql also read); if another process takes that
    port first, the start is retried on another. Stale containers of a dead
    pytest are swept first; a watchdog (``vdata.testing.reaper``) removes
    this one if pytest dies without stopping it. testcontainers' Ryuk is not
    used (it is an image to pull).
    """
    import docker
    import docker.errors

    from vdata.testing import reaper

    host, _where = docker_host()
    # The Docker SDK reads DOCKER_HOST only: hand it the engine found
    # through a Docker context or a rootless/Desktop socket.
    os.environ.setdefault("DOCKER_HOST", host)
    client = docker.from_env()
    try:
        reaper.sweep(client)
        host_network = _host_network(client)
        try:  # pull a missing image now: an engine that cannot fails fast
            client.images.get(image)
        except docker.errors.ImageNotFound:
            client.images.pull(image)
    finally:
        client.close()
    session = secrets.token_hex(8)
    watchdog = reaper.Watchdog(session)  # before the container: nothing escapes it
    container: Any = None
    try:
        for attempt in range(1, 4 if host_network else 2):
            container = _container(image, session, host_network)
            try:
                _start_container(container)
                break
            except _PortTaken:
                container = None
                if attempt == 3:
                    raise
        if not watchdog.armed():
            raise RuntimeError("the container watchdog (python -m vdata.testing.reaper) died")
        ip = "127.0.0.1" if host_network else container.get_container_host_ip()
        port = container.port if host_network else int(container.get_exposed_port(5432))
        return DsnServer(
            f"postgresql://postgres:{container.password}@{ip}:{port}/postgres",
            kind="docker",
            app_password=os.environ.get(ENV_APP_PASSWORD) or secrets.token_hex(12),
            stopper=lambda: _stop(container, watchdog),
            network="host" if host_network else "bridge",
            image=image,
            container_id=container.get_container_id(),
        )
    except BaseException:
        if container is not None:
            with contextlib.suppress(Exception):
                container.stop()
        watchdog.stop()
        raise


def _stop(container: Any, watchdog: Any) -> None:
    """Remove the container, then let the watchdog go (it finds nothing left)."""
    try:
        container.stop()
    finally:
        watchdog.stop()


class _PortTaken(RuntimeError):
    """The port chosen for a host-network container was taken before it listened."""


def _container(image: str, session: str, host_network: bool) -> Any:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # older testcontainers
        from testcontainers.postgres import PostgresContainer

    from vdata.testing import reaper

    port = _free_port() if host_network else 5432
    container = PostgresContainer(
        image,
        port=port,
        username="postgres",
        password=secrets.token_hex(12),
        dbname="postgres",
        driver=None,
    )
    command = (
        "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=200"
    )
    if host_network:
        container.ports = {}  # nothing to publish: the server listens on the host
        container.with_kwargs(labels=reaper.labels(session), network_mode="host")
        container.with_env("PGPORT", str(port))
        command += " -c listen_addresses=127.0.0.1"
    else:
        container.with_kwargs(labels=reaper.labels(session))
    container.with_command(command)
    return container


def _start_container(container: Any, timeout: float = 120.0) -> None:
    """Create and start *container*, then wait until its server accepts the password.

    The wait connects from here (what the tests will do) and stops at once
    if the container exits, with the tail of its log, instead of polling a
    dead container until a timeout.
    """
    import time

    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer

    container._configure()  # POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB
    ryuk = testcontainers_config.ryuk_disabled
    testcontainers_config.ryuk_disabled = True
    try:
        # Create (pulling a missing image) and start; PostgresContainer's own
        # readiness check (psql run inside the container) is replaced below.
        DockerContainer.start(container)
        ip = "127.0.0.1" if not container.ports else container.get_container_host_ip()
        port = container.port if not container.ports else int(container.get_exposed_port(5432))
        dsn = f"postgresql://postgres:{container.password}@{ip}:{port}/postgres"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with connect(dsn, timeout=2):
                    return
            except Exception as exc:
                wrapped = container.get_wrapped_container()
                wrapped.reload()
                if wrapped.status in ("exited", "dead"):
                    log = wrapped.logs(tail=15).decode(errors="replace")
                    if _PORT_TAKEN in log:
                        raise _PortTaken(log) from None
                    code = wrapped.attrs["State"].get("ExitCode")
                    raise RuntimeError(
                        f"the PostgreSQL container exited (code {code}): {log}"
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"PostgreSQL in the container did not answer: {exc}"
                    ) from None
            time.sleep(0.1)
    except BaseException:
        with contextlib.suppress(Exception):  # a failed pull or start may leave it created
            container.stop()
        raise
    finally:
        testcontainers_config.ryuk_disabled = ryuk


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def start_first(
    warn: Callable[[str], object], image: str | None = None
) -> tuple[Server, ProviderChoice]:
    """Start the first provider of the chain that starts; return the server and its choice.

    A provider that is available but fails to start (an engine that answers
    its ping but cannot pull the image, binaries that do not run...) gives
    way to the next one, after one line to *warn*. A forced provider
    (``VDATA_TEST_PROVIDER``) does not: its failure is raised. *image* is
    the ``vdata_image`` option.
    """
    choice = choose_provider(image)
    while True:
        try:
            return start_provider(choice), choice
        except Exception as exc:
            if choice.forced:
                raise
            failed, reason = choice.name, _one_line(exc)
            skipped = [*choice.skipped, f"{failed}: failed to start ({reason})"]
            following = PROVIDERS[PROVIDERS.index(failed) + 1 :]
            nxt = _first_available(following, skipped, image)
            if nxt is None:
                raise ProviderUnavailable(
                    "no PostgreSQL provider could start (" + "; ".join(skipped) + ")"
                ) from exc
            warn(
                f"vdata: the {failed} provider failed to start ({reason}); using {nxt.name} "
                f"instead (set {ENV_PROVIDER}={failed} to insist on it)"
            )
            choice = nxt


def _first_available(
    names: tuple[str, ...], skipped: list[str], image: str | None
) -> ProviderChoice | None:
    for name in names:
        try:
            detail = _check(name, image)  # type: ignore[arg-type]
        except ProviderUnavailable as exc:
            skipped.append(f"{name}: {exc}")
            continue
        return ProviderChoice(name, detail, forced=False, skipped=tuple(skipped), image=image)  # type: ignore[arg-type]
    return None


def start_provider(choice: ProviderChoice) -> Server:
    """Start (or wrap) the server of ``choice``; its version fields are filled in."""
    server: Server
    if choice.name == "dsn":
        server = DsnServer(os.environ[ENV_DSN], app_password=os.environ.get(ENV_APP_PASSWORD))
    elif choice.name == "docker":
        server = _start_docker(docker_image(choice.image)[0])
    else:
        from vdata.testing import pgserver

        return pgserver.start(choice.name)
    assert isinstance(server, DsnServer)
    with connect(server.dsn()) as conn:
        num = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        server.version = num // 10000
        server.version_text = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        ssl = conn.execute("SHOW ssl").fetchone()
        server.supports_ssl = bool(ssl and ssl[0] == "on")
    return server


def connect(dsn: str, timeout: int = 10) -> psycopg.Connection[Any]:
    """Open an autocommit psycopg connection (*timeout* seconds to connect)."""
    import psycopg

    return psycopg.connect(dsn, autocommit=True, connect_timeout=timeout)
