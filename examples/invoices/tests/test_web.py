"""The HTTP front end: requests go through vdata; its errors become 404/409/422/503."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import vdata

from invoices.repositories import AREAS
from invoices.web import create_app


@pytest_asyncio.fixture
async def client(vdata_db: vdata.Database) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(vdata_db))
    async with httpx.AsyncClient(transport=transport, base_url="http://invoices") as client:
        yield client


async def test_post_then_get(client: httpx.AsyncClient) -> None:
    made = await client.post(
        "/invoices", json={"number": "W-1", "customer": "acme", "total_cents": 990}
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["number"], body["total_cents"], body["created_by"]) == ("W-1", 990, "web")
    got = await client.get(made.headers["location"])
    assert got.status_code == 200
    assert got.json() == body


async def test_missing_is_404(client: httpx.AsyncClient) -> None:
    got = await client.get("/invoices/123456789")
    assert got.status_code == 404
    assert got.json()["error"] == "NotFoundError"


async def test_taken_number_is_409_naming_the_constraint(client: httpx.AsyncClient) -> None:
    invoice = {"number": "W-2", "customer": "acme", "total_cents": 1}
    assert (await client.post("/invoices", json=invoice)).status_code == 201
    again = await client.post("/invoices", json=invoice)
    assert again.status_code == 409
    assert again.json()["constraint"] == "unique_invoices_number"


async def test_stale_version_is_409(client: httpx.AsyncClient) -> None:
    made = (
        await client.post("/invoices", json={"number": "W-3", "customer": "a", "total_cents": 1})
    ).json()
    path = f"/invoices/{made['id']}/total"
    ok = await client.patch(path, json={"total_cents": 5, "expected_version": 1})
    assert (ok.status_code, ok.json()["version"]) == (200, 2)
    stale = await client.patch(path, json={"total_cents": 6, "expected_version": 1})
    assert (stale.status_code, stale.json()["error"]) == (409, "StaleVersionError")


@pytest.mark.parametrize(
    "body",
    [
        b"{",  # not JSON
        b'{"number": "W-4", "customer": "a"}',  # no total
        b'{"number": "W-4", "customer": "a", "total_cents": -5}',  # negative
        b'{"number": "", "customer": "a", "total_cents": 5}',  # empty number
        b'{"number": "W-4", "customer": "a", "total_cents": 5, "paid": true}',  # unknown field
    ],
)
async def test_bad_body_is_422_and_writes_nothing(
    client: httpx.AsyncClient, vdata_db: vdata.Database, body: bytes
) -> None:
    got = await client.post("/invoices", content=body)
    assert got.status_code == 422, got.text
    assert await vdata_db.invoices.count_by_customer("a") == 0


async def test_an_id_beyond_bigint_is_422_not_500(client: httpx.AsyncClient) -> None:
    got = await client.get(f"/invoices/{2**70}")
    assert got.status_code == 422, got.text


async def test_unavailable_database_is_503_with_retry_after(vdata_db: vdata.Database) -> None:
    transport = httpx.ASGITransport(app=create_app(vdata_db))
    await vdata_db.close()  # every later call: UnavailableError
    async with httpx.AsyncClient(transport=transport, base_url="http://invoices") as client:
        got = await client.get("/invoices/1")
    assert got.status_code == 503
    assert got.json()["error"] == "UnavailableError"
    assert int(got.headers["retry-after"]) >= 1


async def test_pages_follow_signed_cursors_and_a_tampered_one_is_422(
    client: httpx.AsyncClient,
) -> None:
    for i in range(3):
        invoice = {"number": f"C-{i}", "customer": "paged", "total_cents": i}
        assert (await client.post("/invoices", json=invoice)).status_code == 201
    first = (await client.get("/customers/paged/invoices?limit=2")).json()
    assert [i["number"] for i in first["items"]] == ["C-0", "C-1"]
    cursor = first["next_cursor"]
    rest = (await client.get("/customers/paged/invoices", params={"cursor": cursor})).json()
    assert ([i["number"] for i in rest["items"]], rest["next_cursor"]) == (["C-2"], None)
    forged = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    got = await client.get("/customers/paged/invoices", params={"cursor": forged})
    assert (got.status_code, got.json()["error"]) == (422, "ValidationError")
    got = await client.get("/customers/paged/invoices?limit=x")
    assert got.status_code == 422


async def test_no_cursor_key_is_the_service_s_fault_500(vdata_app_dsn: str) -> None:
    # No secret_key and no bundled signing key in the database.
    db = await vdata.connect(
        vdata_app_dsn, settings=vdata.Settings.build(), areas=AREAS, bundled=False
    )
    try:
        transport = httpx.ASGITransport(app=create_app(db))
        async with httpx.AsyncClient(transport=transport, base_url="http://i") as client:
            got = await client.get("/customers/anyone/invoices")
    finally:
        await db.close()
    assert (got.status_code, got.json()["error"]) == (500, "ConfigurationError")
    assert "VDATA_SECRET_KEY" in got.json()["message"]
