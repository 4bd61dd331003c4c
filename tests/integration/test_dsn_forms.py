"""connect() and migrate read every DSN form libpq reads; connection errors name the cause."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from psycopg.conninfo import make_conninfo

import vdata
import vdata.migrations
from vdata.dsn import parse_dsn

pytestmark = pytest.mark.integration


def forms(uri: str) -> dict[str, str]:
    """Return *uri* (postgresql://user@host:port/db) written in each form libpq reads."""
    params = parse_dsn(uri).params
    rest = uri.split("://", 1)[1]
    query_only = "postgresql:///{}?host={}&port={}&user={}".format(
        params["dbname"], params["host"], params["port"], params["user"]
    )
    if params.get("password"):  # a server with password auth (docker, dsn)
        query_only += "&password=" + quote(params["password"], safe="")
    return {
        "key=value": make_conninfo("", **params),
        "postgresql://": uri,
        "postgres://": "postgres://" + rest,
        "postgresql+psycopg://": "postgresql+psycopg://" + rest,
        "query string only": query_only,
    }


async def test_connect_accepts_every_form(vdata_app_dsn: str) -> None:
    for name, dsn in forms(vdata_app_dsn).items():
        async with await vdata.connect(dsn, settings=vdata.Settings.build()) as db:
            health = await db.health()
            assert health.ok, (name, health.error)
            page = await db.users.list()
            assert page == [], name
            assert db._pool.get_size() >= 1, name
        # The same DSN through VDATA_DSN.
        settings = vdata.Settings.from_env(env={"VDATA_DSN": dsn})
        async with await vdata.connect(settings=settings) as db:
            assert (await db.health()).ok, name


def test_migrate_reads_the_same_forms(vdata_dsn: str) -> None:
    for name, dsn in forms(vdata_dsn).items():
        states = vdata.migrations.status(dsn)
        assert states and all(s.state == "applied" for s in states), name


async def test_standby_attribute_against_a_primary_says_so(vdata_app_dsn: str) -> None:
    settings = vdata.Settings.build(connect_timeout=5)
    with pytest.raises(vdata.UnavailableError) as caught:
        await vdata.connect(vdata_app_dsn + "?target_session_attrs=standby", settings=settings)
    message = str(caught.value)
    assert "target_session_attrs=standby" in message
    assert "primary" in message
    assert "broken" not in message
    assert caught.value.reason == "no_matching_host"
