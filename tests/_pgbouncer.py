"""A throwaway PgBouncer in transaction pooling mode, in front of a test server.

``start(host, port, users)`` writes a config, an auth file and a log into a
temporary folder, runs ``pgbouncer`` in the foreground on a free 127.0.0.1
port and returns once it accepts connections; ``PgBouncer.stop()`` (also
run at interpreter exit) ends it with SIGTERM, then SIGKILL, and removes the
folder. PgBouncer refuses to run as root, so when this process is root it
runs as the unprivileged OS user the throwaway clusters use
(``vdata.testing.runas.pick_user``), and the folder belongs to that user.

Clients authenticate with ``auth_type = trust`` (as the test clusters do on
loopback); the auth file lists the roles, with their server passwords when
the server needs them (a Docker or ``VDATA_TEST_DSN`` server).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vdata.testing import runas

__all__ = ["PgBouncer", "PgBouncerError", "find_pgbouncer", "start"]

HOST = "127.0.0.1"
_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_PORT_TRIES = 5
# vdata sends these as startup parameters; PgBouncer 1.18 refuses any it does
# not know unless told to ignore them (they then never reach the server).
VDATA_STARTUP_PARAMETERS = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
)


class PgBouncerError(RuntimeError):
    """PgBouncer did not start; the message carries the tail of its log."""


def find_pgbouncer() -> str | None:
    """Return the ``pgbouncer`` binary: on PATH, else Debian's /usr/sbin; None if absent."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin"):
        candidate = Path(folder, "pgbouncer")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


@dataclass
class PgBouncer:
    """A running PgBouncer: ``dsn()`` to connect through it, ``stop()`` to end it."""

    base_dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    host: str = HOST
    stopped: bool = False

    @property
    def log_path(self) -> Path:
        return self.base_dir / "pgbouncer.log"

    def dsn(self, dbname: str, user: str) -> str:
        """Return a URL for *dbname* as *user*, through PgBouncer."""
        return (
            f"postgresql://{quote(user, safe='')}@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, wait, SIGKILL; then remove the folder. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        try:
            self._end_process()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            atexit.unregister(self.stop)

    def _end_process(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(_STOP_TIMEOUT)


def _quote_auth(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _config(
    base: Path, server: tuple[str, int], port: int, pool_size: int, ignore: Sequence[str]
) -> str:
    server_host, server_port = server
    return "\n".join(
        [
            "[databases]",
            # the fallback entry: every database name goes to the same name on the server
            f"* = host={server_host} port={server_port}",
            "[pgbouncer]",
            f"listen_addr = {HOST}",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {base / 'users.txt'}",
            "pool_mode = transaction",
            f"default_pool_size = {pool_size}",
            "min_pool_size = 0",
            "reserve_pool_size = 0",
            "max_client_conn = 200",
            "max_db_connections = 0",
            f"ignore_startup_parameters = {','.join(ignore)}",
            "server_login_retry = 1",
            "log_connections = 0",
            "log_disconnections = 0",
            "",
        ]
    )


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def start(
    server_host: str,
    server_port: int,
    users: Mapping[str, str | None],
    *,
    pool_size: int = 2,
    ignore_startup_parameters: Sequence[str] = VDATA_STARTUP_PARAMETERS,
) -> PgBouncer:
    """Start PgBouncer for *users* (role -> server password or None) in front of the server.

    Raise PgBouncerError (with its log) if it does not accept connections
    within a few seconds. The caller must ``stop()`` it (interpreter exit does too).
    """
    binary = find_pgbouncer()
    if binary is None:
        raise PgBouncerError("pgbouncer is not installed")
    run_as = runas.pick_user()
    base = Path(tempfile.mkdtemp(prefix="vdata-pgbouncer-", dir=runas.tempdir_root(run_as)))
    bouncer = PgBouncer(base_dir=base)
    atexit.register(bouncer.stop)
    try:
        runas.chown(base, run_as)
        base.chmod(0o700)
        auth = base / "users.txt"
        auth.write_text(
            "".join(f"{_quote_auth(u)} {_quote_auth(p or '')}\n" for u, p in users.items()),
            encoding="utf-8",
        )
        runas.chown(auth, run_as)
        for _ in range(_PORT_TRIES):
            bouncer.port = _free_port()
            conf = base / "pgbouncer.ini"
            conf.write_text(
                _config(
                    base,
                    (server_host, server_port),
                    bouncer.port,
                    pool_size,
                    ignore_startup_parameters,
                ),
                encoding="utf-8",
            )
            runas.chown(conf, run_as)
            bouncer.proc = _spawn(binary, conf, run_as, bouncer.log_path)
            if _wait_ready(bouncer):
                return bouncer
            if "Address already in use" not in bouncer.log_tail():
                break  # not a port taken meanwhile: another try would fail alike
        raise PgBouncerError(f"pgbouncer did not start; its log:\n{bouncer.log_tail()}")
    except BaseException:
        bouncer.stop()
        raise


def _spawn(
    binary: str, conf: Path, run_as: runas.RunAs | None, log: Path
) -> subprocess.Popen[bytes]:
    """Run PgBouncer in the foreground, its output (the log) appended to *log*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    as_user: dict[str, Any] = {}
    if run_as is not None:
        env.update(HOME=str(log.parent), USER=run_as.name, LOGNAME=run_as.name)
        as_user = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
    with log.open("ab") as out:
        return subprocess.Popen(
            [binary, str(conf)],
            cwd=log.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_user,
        )


def _wait_ready(bouncer: PgBouncer) -> bool:
    """Return True once PgBouncer accepts connections, False if it exited or timed out."""
    assert bouncer.proc is not None
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if bouncer.proc.poll() is not None:
            return False
        if _accepts(bouncer.port) and bouncer.proc.poll() is None:
            return True
        time.sleep(0.02)
    return False
