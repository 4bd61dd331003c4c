"""``PgServer``: one throwaway PostgreSQL cluster in a temporary folder.

The object ``vdata.testing.pgserver.start()`` returns: it writes the cluster's
configuration (``initdb``, ``vdata.conf``, ``pg_hba.conf``, TLS files), starts
and stops the server with ``pg_ctl`` (as the unprivileged OS user when this
process is root, see ``vdata.testing.runas``) and removes its folder.

Every server still alive is stopped and its folder removed at interpreter
exit, so a crashing test run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Self
from urllib.parse import quote

from vdata.testing.live import forget, track
from vdata.testing.pgbin import PgServerError
from vdata.testing.runas import RunAs, chown, run
from vdata.testing.tls import SslFiles

__all__ = ["HOST", "SUPERUSER", "PgServer", "track"]


SUPERUSER = "postgres"
HOST = "127.0.0.1"
_START_TIMEOUT = 60
_LOG_TAIL = 40


def _quote_conf(value: str) -> str:
    """Quote a postgresql.conf value (every value may be quoted) unless it already is."""
    if len(value) >= 2 and value.startswith("'") and value.endswith("'"):
        return value
    return "'" + value.replace("'", "''") + "'"


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
        run_as: RunAs | None,
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
            forget(self)

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
        return run(
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
        chown(path, self.run_as)

    def _initdb(self) -> None:
        proc = run(
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
