"""TLS: sslmode require and verify-full work; require_ssl refuses plain text."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

import vdata
from tests.integration._probe import q
from vdata.testing import pgbin, pgserver
from vdata.testing.tls import TestCerts, make_test_certs

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def certs() -> Iterator[TestCerts]:
    with tempfile.TemporaryDirectory(prefix="vdata-tls-") as folder:
        yield make_test_certs(folder)


@pytest.fixture(scope="module")
def tls_server(certs: TestCerts) -> Iterator[pgserver.PgServer]:
    try:
        kind, bindir = pgserver.find_bindir("local")
    except pgserver.Unavailable as exc:
        pytest.skip(f"TLS needs PostgreSQL built with OpenSSL (system binaries): {exc}")
    if not pgbin.supports_ssl(bindir):
        pytest.skip(f"the PostgreSQL at {bindir} was built without OpenSSL")
    hba = [
        "local all all trust",
        "hostssl all all 127.0.0.1/32 trust",
        "hostnossl all all 127.0.0.1/32 reject",
    ]
    with pgserver.start(kind, ssl=certs.server, hba=hba) as server:
        yield server


async def uses_tls(db: vdata.Database) -> bool:
    health = await db.health()
    assert health.ok, health.error
    pool = db._pool
    async with pool.connection() as conn:
        return bool(await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))


async def test_sslmode_require_encrypts(tls_server: pgserver.PgServer) -> None:
    settings = vdata.Settings.build(sslmode="require")
    async with await vdata.connect(tls_server.dsn(), settings=settings) as db:
        assert await uses_tls(db)
        assert await db.fetchval(q("get_one"), ()) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_verify_full_accepts_a_name_in_the_certificate(
    tls_server: pgserver.PgServer, certs: TestCerts, host: str
) -> None:
    settings = vdata.Settings.build(sslmode="verify-full", sslrootcert=str(certs.ca_cert))
    dsn = f"postgresql://postgres@{host}:{tls_server.port}/postgres"
    async with await vdata.connect(dsn, settings=settings) as db:
        assert await uses_tls(db)


async def test_verify_full_refuses_an_unknown_ca(tls_server: pgserver.PgServer) -> None:
    with tempfile.TemporaryDirectory(prefix="vdata-tls-other-") as folder:
        other = make_test_certs(folder)
        settings = vdata.Settings.build(
            sslmode="verify-full", sslrootcert=str(other.ca_cert), connect_timeout=2
        )
        with pytest.raises(vdata.UnavailableError) as caught:
            await vdata.connect(tls_server.dsn(), settings=settings)
    assert "TLS" in str(caught.value)


async def test_plain_text_is_rejected_by_a_tls_only_server(tls_server: pgserver.PgServer) -> None:
    settings = vdata.Settings.build(sslmode="disable", connect_timeout=2)
    with pytest.raises(vdata.UnavailableError) as caught:
        await vdata.connect(tls_server.dsn(), settings=settings)
    # The cause (no encryption) and the fix, not "the server rejected the role".
    message = str(caught.value)
    assert "not encrypted" in message and "sslmode=require" in message
    assert "rejected vdata's database role" not in message


@pytest.fixture(scope="module")
def hostssl_only_server(certs: TestCerts) -> Iterator[pgserver.PgServer]:
    """A server whose pg_hba.conf has hostssl lines only (no reject line)."""
    try:
        kind, bindir = pgserver.find_bindir("local")
    except pgserver.Unavailable as exc:
        pytest.skip(f"TLS needs PostgreSQL built with OpenSSL (system binaries): {exc}")
    if not pgbin.supports_ssl(bindir):
        pytest.skip(f"the PostgreSQL at {bindir} was built without OpenSSL")
    hba = ["local all all trust", "hostssl all all 127.0.0.1/32 trust"]
    with pgserver.start(kind, ssl=certs.server, hba=hba) as server:
        yield server


async def test_a_client_without_tls_is_told_to_encrypt(
    hostssl_only_server: pgserver.PgServer,
) -> None:
    settings = vdata.Settings.build(sslmode="disable", connect_timeout=2)
    with pytest.raises(vdata.UnavailableError) as caught:
        await vdata.connect(hostssl_only_server.dsn(), settings=settings)
    message = str(caught.value)
    assert "without encryption" in message and "sslmode=require" in message
    assert "rejected vdata's database role" not in message
    assert caught.value.sqlstate == "28000"
    # And the advice works.
    settings = vdata.Settings.build(sslmode="require", connect_timeout=2)
    async with await vdata.connect(hostssl_only_server.dsn(), settings=settings) as db:
        assert await uses_tls(db)


async def test_require_ssl_works_when_the_server_offers_tls(tls_server: pgserver.PgServer) -> None:
    # The DSN asks for nothing; require_ssl upgrades the connection.
    settings = vdata.Settings.build(require_ssl=True)
    async with await vdata.connect(tls_server.dsn(), settings=settings) as db:
        assert await uses_tls(db)


async def test_require_ssl_refuses_a_server_without_tls(vdata_server: object) -> None:
    plain = pgserver.start()  # a server with TLS off
    try:
        settings = vdata.Settings.build(require_ssl=True, connect_timeout=2)
        with pytest.raises(vdata.UnavailableError) as caught:
            await vdata.connect(plain.dsn() + "?sslmode=disable", settings=settings)
        assert "TLS" in str(caught.value) or "SSL" in str(caught.value)
        # And the server was never used in plain text by vdata.
        conn = await asyncpg.connect(plain.dsn())
        await conn.close()
    finally:
        plain.stop()


def test_certificate_files_exist(certs: TestCerts) -> None:
    assert Path(certs.ca_cert).read_text().startswith("-----BEGIN CERTIFICATE-----")
