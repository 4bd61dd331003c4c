"""A throwaway primary and streaming standbys (``pg_basebackup``) on loopback.

``Cluster.start(sync=...)`` starts a primary with WAL senders and a
replication line in pg_hba.conf; ``cluster.add_standby(name, ...)`` copies
it with ``pg_basebackup -X stream``, gives the copy its own port,
``standby.signal`` and ``primary_conninfo`` (``application_name`` = *name*),
and starts it as a hot standby. ``promote()``, ``kill_primary()`` (SIGKILL of
the postmaster, then its children) and ``stop()`` (everything, folders
removed; also at interpreter exit through PgServer's tracking) drive a
failover. Both servers use the same binaries, picked as the test harness
picks them (``vdata.testing.pgserver``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from vdata.testing import pgserver, runas
from vdata.testing.pgcluster import PgServer, track
from vdata.testing.pgserver import Unavailable

__all__ = ["Cluster", "Unavailable", "binaries_missing"]

APP_ROLE = "vdata_app"
_HBA = [
    "local all all trust",
    "host all all 127.0.0.1/32 trust",
    "local replication all trust",
    "host replication all 127.0.0.1/32 trust",
]


def binaries_missing() -> str | None:
    """Return why no primary + standby can be started here, or None."""
    try:
        _, bindir = pgserver.find_bindir("auto")
    except Unavailable as exc:
        return f"no PostgreSQL binaries: {exc}"
    if not (bindir / "pg_basebackup").exists():
        return f"{bindir} has no pg_basebackup: a standby cannot be made"
    return None


def _primary_conf(sync_names: str) -> dict[str, str]:
    return {
        "wal_level": "replica",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "hot_standby": "on",
        "wal_keep_size": "64MB",
        "wal_receiver_status_interval": "1s",
        "hot_standby_feedback": "on",
        # With synchronous replication a commit is acknowledged only once the
        # standby has it: durability is the point, so fsync is on as well.
        "synchronous_commit": "on" if sync_names else "off",
        "synchronous_standby_names": sync_names,
        "fsync": "on" if sync_names else "off",
    }


@dataclass
class Cluster:
    """A primary and its standbys; ``servers[0]`` is the primary at the start."""

    primary: PgServer
    sync: bool
    standbys: dict[str, PgServer] = field(default_factory=dict)

    @classmethod
    def start(cls, *, sync: bool = False, sync_standby: str = "standby1") -> Cluster:
        primary = pgserver.start(conf=_primary_conf(sync_standby if sync else ""), hba=_HBA)
        return cls(primary=primary, sync=sync)

    def add_standby(self, name: str, *, apply_delay_ms: int = 0) -> PgServer:
        """Copy the primary with pg_basebackup and start the copy as a streaming standby."""
        p = self.primary
        run_as = p.run_as
        base = Path(tempfile.mkdtemp(prefix="vdata-pg-standby-", dir=runas.tempdir_root(run_as)))
        standby = PgServer(
            kind=p.kind,
            bindir=p.bindir,
            base_dir=base,
            run_as=run_as,
            version=p.version,
            version_text=p.version_text,
            supports_ssl=p.supports_ssl,
        )
        try:
            runas.chown(base, run_as)
            base.chmod(0o700)
            standby.socket_dir.mkdir(mode=0o700)
            runas.chown(standby.socket_dir, run_as)
            proc = runas.run(
                [
                    p.bindir / "pg_basebackup",
                    "-D",
                    standby.data_dir,
                    "-h",
                    p.host,
                    "-p",
                    str(p.port),
                    "-U",
                    "postgres",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "--no-sync",
                ],
                run_as,
                cwd=base,
                timeout=120,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"pg_basebackup failed: {proc.stdout}")
            (standby.data_dir / "standby.signal").touch()
            runas.chown(standby.data_dir / "standby.signal", run_as)
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise
        track(standby)
        conf = {
            "listen_addresses": p.host,
            "unix_socket_directories": str(standby.socket_dir),
            **pgserver.DEFAULT_CONF,
            **_primary_conf(""),
            "fsync": "on" if self.sync else "off",
            "primary_conninfo": (
                f"host={p.host} port={p.port} user=postgres application_name={name}"
            ),
            "recovery_min_apply_delay": f"{apply_delay_ms}ms",
        }
        try:
            for _ in range(5):
                standby.port = pgserver._free_port()
                standby._write_conf({**conf, "port": str(standby.port)})
                try:
                    standby.start_server()
                    break
                except Exception:
                    if not standby._bind_failed():
                        raise
        except BaseException:
            standby.stop()
            raise
        self.standbys[name] = standby
        return standby

    async def wait_streaming(self, names: list[str], timeout: float = 30.0) -> None:
        """Wait until every standby in *names* streams from the primary (and is sync if asked)."""
        deadline = time.monotonic() + timeout
        conn = await asyncpg.connect(self.primary.dsn())
        try:
            while True:
                rows = await conn.fetch(
                    "SELECT application_name, state, sync_state FROM pg_stat_replication"
                )
                streaming = {r["application_name"] for r in rows if r["state"] == "streaming"}
                if set(names) <= streaming:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"standbys not streaming: {[dict(r) for r in rows]}")
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def dsn(self, server: PgServer, user: str = APP_ROLE) -> str:
        return server.dsn("postgres", user=user)

    def failover_dsn(self, standby: str, user: str = APP_ROLE) -> str:
        """The multi-host DSN a service uses: primary first, then the standby, read-write only."""
        s = self.standbys[standby]
        p = self.primary
        return (
            f"postgresql://{user}@{p.host}:{p.port},{s.host}:{s.port}/postgres"
            "?target_session_attrs=read-write"
        )

    def promote(self, name: str) -> None:
        """``pg_ctl promote`` the standby *name* (returns once it is a primary)."""
        s = self.standbys[name]
        proc = s._pg_ctl("promote", "-w", "-t", "30")
        if proc.returncode != 0:
            raise RuntimeError(f"pg_ctl promote failed: {proc.stdout}\n{s.log_tail()}")

    def kill_primary(self) -> float:
        """SIGKILL the primary's postmaster; return the monotonic time of the kill.

        Its children notice within a second or two and exit; ``wait_gone``
        waits for them.
        """
        pid = self.primary._pid()
        assert pid is not None
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        return killed_at

    def primary_children(self) -> list[int]:
        """PIDs of processes still serving the killed primary's data directory."""
        found = []
        target = str(self.primary.data_dir)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                environ_cmd = (entry / "cmdline").read_bytes()
                if b"postgres" in environ_cmd and _cwd_is(entry, target):
                    found.append(int(entry.name))
        return found

    def stop(self) -> None:
        for server in [*self.standbys.values(), self.primary]:
            with contextlib.suppress(Exception):
                server.stop()


def _cwd_is(proc: Path, target: str) -> bool:
    try:
        return os.readlink(proc / "cwd") == target
    except OSError:
        return False


async def install_app(owner_dsn: str, schema_sql: str) -> None:
    """Create the service role and run *schema_sql* as the owner."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute("CREATE ROLE vdata_app LOGIN")
        await conn.execute(schema_sql)
    finally:
        await conn.close()
