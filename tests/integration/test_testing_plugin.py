"""vdata.testing: the pytest plugin, run inside inner pytest sessions (pytester)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests import _docker
from tests._docker import image_or_skip
from tests._fakedocker import FakeDockerEngine
from vdata.testing import pgserver, providers, reaper

pytest_plugins = ["pytester"]

# The inner sessions build their template with this instead of the real
# migrations, so the harness is tested on its own.
INNER_CONFTEST = """
import psycopg
import pytest

@pytest.fixture(scope="session")
def vdata_migrate():
    def migrate(dsn):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
            conn.execute("GRANT SELECT, INSERT, DELETE ON t TO vdata_app")
    return migrate
"""

INNER_TESTS = """
import os
from pathlib import Path

import psycopg

def test_server_and_clone(vdata_server, vdata_dsn, vdata_app_dsn, vdata_template_dsn):
    Path(os.environ["VDATA_INNER_OUT"]).write_text(
        str(getattr(vdata_server, "base_dir", "")) + "\\n" + vdata_template_dsn
    )
    assert vdata_dsn != vdata_template_dsn
    with psycopg.connect(vdata_app_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("vdata_app",)
        conn.execute("INSERT INTO t VALUES (1)")  # committed in this clone only
    with psycopg.connect(vdata_dsn) as conn:
        tmpl = vdata_template_dsn.rsplit("/", 1)[1]
        row = conn.execute(
            "SELECT datistemplate FROM pg_database WHERE datname = %s", (tmpl,)
        ).fetchone()
        assert row == (True,)

def test_next_clone_is_fresh(vdata_dsn):
    with psycopg.connect(vdata_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)

def test_a_failing_test_does_not_stop_cleanup(vdata_dsn):
    assert False, "deliberate failure"
"""


def _env(monkeypatch: pytest.MonkeyPatch, **values: str | None) -> None:
    for key in ("VDATA_TEST_DSN", "VDATA_TEST_PROVIDER", "VDATA_TEST_APP_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)


@pytest.fixture
def inner(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An inner test project; returns the file its first test writes facts to."""
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    out = tmp_path / "inner-out.txt"
    monkeypatch.setenv("VDATA_INNER_OUT", str(out))
    return out


def _provider_here() -> str:
    """The provider this run uses for servers it starts (CI forces local or embedded)."""
    forced = os.environ.get("VDATA_TEST_PROVIDER", "")
    return forced if forced in ("local", "embedded") else "auto"


def test_forced_docker_without_an_engine_fails_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(monkeypatch, VDATA_TEST_PROVIDER="docker", DOCKER_HOST="unix:///nonexistent/docker.sock")
    pytester.makepyfile("def test_x(vdata_server):\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret != 0
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*VDATA_TEST_PROVIDER=docker but that provider is unavailable*",
            "*no Docker socket at /nonexistent/docker.sock*",
        ]
    )


def test_forced_dsn_without_a_dsn_fails_and_does_not_fall_back(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(monkeypatch, VDATA_TEST_PROVIDER="dsn")
    pytester.makepyfile("def test_x(vdata_server):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*VDATA_TEST_PROVIDER=dsn*VDATA_TEST_DSN is not set*"])
    result.stdout.no_fnmatch_line("*vdata: ran on PostgreSQL*")


def test_a_misspelt_provider_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(monkeypatch, VDATA_TEST_PROVIDER="postgres")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*VDATA_TEST_PROVIDER='postgres' is not one of*"])


@pytest.mark.parametrize("kind", ["local", "embedded"])
def test_started_server_fixtures_and_cleanup(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, inner: Path, kind: str
) -> None:
    try:
        pgserver.find_bindir(kind)  # type: ignore[arg-type]
    except pgserver.Unavailable as exc:
        pytest.skip(f"{kind} binaries unavailable: {exc}")
    _env(monkeypatch, VDATA_TEST_PROVIDER=kind)
    result = pytester.runpytest_subprocess("-rA")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"vdata: PostgreSQL provider {kind} (forced): PostgreSQL *",
            f"vdata: ran on PostgreSQL * via {kind} at 127.0.0.1:*; server ready in * s,"
            " template migrated in * s, 3 clones at * ms each",
        ]
    )
    base_dir = Path(inner.read_text().splitlines()[0])
    assert base_dir.name.startswith(f"vdata-pg-{kind}-")
    assert not base_dir.exists()  # server stopped and folder removed despite the failure


@pytest.fixture
def outer_server() -> Iterator[pgserver.PgServer]:
    """A server this test starts itself, to act as the user's ``VDATA_TEST_DSN``."""
    with pgserver.start(_provider_here()) as s:  # type: ignore[arg-type]
        yield s


def test_dsn_provider_creates_role_and_drops_its_databases(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    inner: Path,
    outer_server: pgserver.PgServer,
) -> None:
    # key=value form on purpose: the plugin must turn it into URLs asyncpg takes
    dsn = f"host=127.0.0.1 port={outer_server.port} user=postgres dbname=postgres"
    _env(monkeypatch, VDATA_TEST_DSN=dsn)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["vdata: PostgreSQL provider dsn (auto)*"])
    with psycopg.connect(outer_server.dsn()) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'vdata\\_%'"
        ).fetchall()
        assert left == []  # template and clones dropped
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'vdata_app'").fetchone()
    assert outer_server.running  # a user's server is never stopped


INNER_TX_TESTS = """
from types import SimpleNamespace

def q(sql):
    return SimpleNamespace(sql=sql, name="inner." + sql.split()[0].lower())

async def test_write_inside(vdata_tx):
    assert vdata_tx.actor == "test"
    await vdata_tx.execute(q("INSERT INTO t VALUES (7)"), [])
    assert await vdata_tx.fetchval(q("SELECT count(*) FROM t"), []) == 1

async def test_rolled_back(vdata_tx):
    assert await vdata_tx.fetchval(q("SELECT count(*) FROM t"), []) == 0

async def test_db_is_connected_as_the_app_role(vdata_db):
    assert await vdata_db.fetchval(q("SELECT current_user"), []) == "vdata_app"
"""


def test_vdata_tx_rolls_back_and_vdata_db_connects(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        from vdata.database import connect  # noqa: F401
    except ImportError as exc:  # pragma: no cover - while database.py is being written
        pytest.fail(f"vdata.database.connect is needed by vdata_db/vdata_tx: {exc}")
    _env(monkeypatch, VDATA_TEST_PROVIDER=os.environ.get("VDATA_TEST_PROVIDER"))
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_tx=INNER_TX_TESTS)
    result = pytester.runpytest_subprocess(
        "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    result.assert_outcomes(passed=3)


def _quickstart_files() -> dict[str, str]:
    """Return the files docs/testing.md tells a new project to write, by path."""
    import re

    page = (Path(__file__).resolve().parents[2] / "docs" / "testing.md").read_text()
    found = re.findall(r"^<!-- quickstart: (\S+) -->\n```\w*\n(.*?)^```", page, re.M | re.S)
    return dict(found)


def test_a_new_project_with_only_the_documented_files_runs_in_strict_mode(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, outer_server: pgserver.PgServer
) -> None:
    files = _quickstart_files()
    assert set(files) == {"pyproject.toml", "tests/test_signup.py"}
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert "asyncio_mode" not in files["pyproject.toml"]  # pytest-asyncio's default: strict
    _env(monkeypatch, VDATA_TEST_DSN=outer_server.dsn())
    result = pytester.runpytest_subprocess("-W", "error::pytest.PytestDeprecationWarning")
    result.stdout.re_match_lines([r"(?i)asyncio: mode=(mode\.)?strict"])
    result.assert_outcomes(passed=2)
    assert "not natively supported" not in result.stdout.str()


def test_the_plugin_marks_only_async_tests_that_take_a_vdata_fixture() -> None:
    from vdata.testing.plugin import mark_async_test

    async def uses_tx(vdata_tx: object) -> None: ...

    async def plain(x: object) -> None: ...

    def sync(vdata_dsn: object) -> None: ...

    @pytest.mark.asyncio(loop_scope="module")
    async def marked(vdata_db: object) -> None: ...

    assert mark_async_test(uses_tx)
    assert [m.name for m in uses_tx.pytestmark] == ["asyncio"]  # type: ignore[attr-defined]
    assert not mark_async_test(plain) and not hasattr(plain, "pytestmark")
    assert not mark_async_test(sync)
    assert not mark_async_test(marked)  # its own mark (and loop scope) are kept
    assert len(marked.pytestmark) == 1  # type: ignore[attr-defined]


# ------------------------------------------------------------------------ units


def test_dsn_server_rewrites_database_user_and_password() -> None:
    s = providers.DsnServer(
        "host=db.example port=6543 user=owner password=s3cr=t dbname=app sslmode=require",
        app_password="app pw",
    )
    assert s.host == "db.example" and s.port == 6543
    assert s.dsn() == "postgresql://owner:s3cr%3Dt@db.example:6543/postgres?sslmode=require"
    assert s.dsn("x", user="vdata_app") == (
        "postgresql://vdata_app:app%20pw@db.example:6543/x?sslmode=require"
    )
    assert s.dsn("x", user="other") == "postgresql://other@db.example:6543/x?sslmode=require"
    sock = providers.DsnServer("postgresql://u@/db?host=/run/postgresql")
    assert sock.dsn("y") == "postgresql://u@/y?host=%2Frun%2Fpostgresql"


def test_choose_provider_order(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, VDATA_TEST_DSN="postgresql://u@h/d")
    assert providers.choose_provider().name == "dsn"
    _env(monkeypatch, DOCKER_HOST="unix:///nonexistent/docker.sock")
    choice = providers.choose_provider()
    assert choice.name in ("local", "embedded")
    assert not choice.forced
    assert any(s.startswith("docker: no Docker socket") for s in choice.skipped)
    _env(monkeypatch, VDATA_TEST_PROVIDER="embedded")
    try:
        pgserver.embedded_bindir()
    except pgserver.Unavailable:
        with pytest.raises(providers.ProviderUnavailable, match="VDATA_TEST_PROVIDER=embedded"):
            providers.choose_provider()
    else:
        assert providers.choose_provider() == providers.ProviderChoice(
            "embedded", providers.choose_provider().detail, forced=True
        )


def test_docker_engine_reports_a_dead_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    path = tmp_path / "docker.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.close()  # the file exists, nobody listens
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    ok, why = providers.docker_engine()
    assert not ok
    assert "does not answer" in why


# --------------------------------------------------------------------- docker


def test_docker_provider_through_testcontainers(monkeypatch: pytest.MonkeyPatch) -> None:
    image = image_or_skip()
    choice = providers.ProviderChoice("docker", "test", forced=True)
    server = providers.start_provider(choice)
    assert isinstance(server, providers.DsnServer)
    try:
        assert (server.kind, server.image) == ("docker", image)
        with psycopg.connect(server.dsn()) as conn:
            num = conn.execute("SHOW server_version_num").fetchone()
            assert num is not None and int(num[0]) // 10000 == server.version
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
            assert conn.execute("SHOW port").fetchone() == (str(server.port),)
        with _docker.client() as engine:
            container = engine.containers.get(server.container_id)
            assert container.labels[reaper.LABEL_OWNER] == reaper.owner()
            assert container.image.tags == [image] or image in container.image.tags
            network = container.attrs["HostConfig"]["NetworkMode"]
            if server.network == "host":  # loopback only, never the host's 5432
                assert network == "host"
                assert server.host == "127.0.0.1" and server.port != 5432
            else:
                assert network != "host" and server.network == "bridge"
    finally:
        server.stop()
    with _docker.client() as engine:
        assert engine.containers.list(all=True, filters={"id": container.id}) == []


@pytest.fixture
def fake_engine() -> Iterator[FakeDockerEngine]:
    # A short path: unix socket paths are limited to ~100 bytes.
    folder = Path(tempfile.mkdtemp(prefix="vdata-fake-docker-"))
    try:
        with FakeDockerEngine(folder / "docker.sock") as engine:
            yield engine
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_an_engine_that_cannot_pull_gives_way_with_one_warning_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_engine: FakeDockerEngine
) -> None:
    if importlib.util.find_spec("testcontainers") is None:
        pytest.skip("testcontainers is not installed (the test extra)")
    _env(monkeypatch, DOCKER_HOST=fake_engine.host)
    pytester.makepyfile("def test_x(vdata_server):\n    assert vdata_server.kind != 'docker'\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    warned = [line for line in result.outlines if "provider failed to start" in line]
    assert len(warned) == 1, result.outlines
    assert "the docker provider failed to start" in warned[0]
    assert "pull access denied" in warned[0]
    assert "VDATA_TEST_PROVIDER=docker" in warned[0]
    # The engine was really asked: pinged, then a pull that failed.
    assert "GET /_ping" in fake_engine.requests
    assert "POST /images/create" in fake_engine.requests


def test_a_forced_docker_provider_that_cannot_pull_does_not_fall_back(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_engine: FakeDockerEngine
) -> None:
    if importlib.util.find_spec("testcontainers") is None:
        pytest.skip("testcontainers is not installed (the test extra)")
    _env(monkeypatch, DOCKER_HOST=fake_engine.host, VDATA_TEST_PROVIDER="docker")
    pytester.makepyfile("def test_x(vdata_server):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert not [line for line in result.outlines if "provider failed to start" in line]
    result.stdout.fnmatch_lines(["*pull access denied*"])


def test_an_engine_behind_a_docker_context_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_engine: FakeDockerEngine
) -> None:
    # What Docker Desktop and rootless Docker leave: no DOCKER_HOST, a current
    # context in config.json, its endpoint in contexts/meta/<sha256(name)>/meta.json.
    config = tmp_path / "docker-config"
    meta = config / "contexts" / "meta" / hashlib.sha256(b"desktop-linux").hexdigest()
    meta.mkdir(parents=True)
    (config / "config.json").write_text(json.dumps({"currentContext": "desktop-linux"}))
    (meta / "meta.json").write_text(
        json.dumps({"Name": "desktop-linux", "Endpoints": {"docker": {"Host": fake_engine.host}}})
    )
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    assert providers.docker_host() == (fake_engine.host, "Docker context desktop-linux")
    assert providers.docker_engine()[0] is True
    # DOCKER_CONTEXT names the context too; DOCKER_HOST wins over both.
    (config / "config.json").write_text("{}")
    monkeypatch.setenv("DOCKER_CONTEXT", "desktop-linux")
    assert providers.docker_host()[0] == fake_engine.host
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    assert providers.docker_host() == ("tcp://127.0.0.1:1", "DOCKER_HOST")


def test_the_image_comes_from_the_environment_then_the_ini_option_then_the_default(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_engine: FakeDockerEngine
) -> None:
    if importlib.util.find_spec("testcontainers") is None:
        pytest.skip("testcontainers is not installed (the test extra)")
    _env(monkeypatch, DOCKER_HOST=fake_engine.host, VDATA_TEST_IMAGE=None)
    pytester.makepyfile("def test_x():\n    pass\n")
    header = "vdata: PostgreSQL provider docker (auto): Docker engine at *, image {}"
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([header.format(f"{providers.DEFAULT_IMAGE} (default)")])
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "vdata_image = postgis/postgis:17-3.5\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([header.format("postgis/postgis:17-3.5 (vdata_image)")])
    monkeypatch.setenv("VDATA_TEST_IMAGE", "vdata-postgres:local")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([header.format("vdata-postgres:local (VDATA_TEST_IMAGE)")])
