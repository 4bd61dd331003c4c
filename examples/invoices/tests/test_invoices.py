"""The invoices repository on a real PostgreSQL, from the vdata pytest plugin."""

from __future__ import annotations

import pytest
import vdata

from invoices.models import NewInvoice
from invoices.repositories import Invoices


def new(number: str, customer: str = "acme", total_cents: int = 1000) -> NewInvoice:
    return NewInvoice(number=number, customer=customer, total_cents=total_cents)


async def test_create_then_get(vdata_tx: vdata.Transaction) -> None:
    invoices = vdata_tx.area(Invoices)  # typed; vdata_tx.invoices is the same, untyped
    made = await invoices.create(new("T-1"))
    assert made.created_by == "test"  # vdata_tx's actor
    assert await invoices.get(made.id) == made


async def test_a_taken_number_is_a_conflict(vdata_tx: vdata.Transaction) -> None:
    await vdata_tx.invoices.create(new("T-2"))
    with pytest.raises(vdata.ConflictError) as caught:
        async with vdata_tx.transaction():  # a savepoint: the test's transaction lives on
            await vdata_tx.invoices.create(new("T-2", customer="other"))
    assert caught.value.constraint == "unique_invoices_number"


async def test_a_negative_total_is_refused_by_the_database(vdata_tx: vdata.Transaction) -> None:
    with pytest.raises(vdata.ValidationError):
        async with vdata_tx.transaction():
            await vdata_tx.invoices.create(new("T-3", total_cents=-1))


async def test_a_missing_invoice_is_not_found(vdata_tx: vdata.Transaction) -> None:
    with pytest.raises(vdata.NotFoundError):
        await vdata_tx.area(Invoices).get(10**12)


async def test_set_total_tells_stale_from_missing(vdata_db: vdata.Database) -> None:
    invoices = vdata_db.area(Invoices)
    made = await invoices.create(new("T-4"), actor="ops")
    changed = await invoices.set_total(made.id, 2000, expected_version=1, actor="ops")
    assert (changed.total_cents, changed.version, changed.updated_by) == (2000, 2, "ops")
    with pytest.raises(vdata.StaleVersionError):
        await invoices.set_total(made.id, 3000, expected_version=1, actor="ops")
    with pytest.raises(vdata.NotFoundError):
        await invoices.set_total(10**12, 3000, expected_version=1, actor="ops")


async def test_pages_follow_the_cursor(vdata_db: vdata.Database) -> None:
    invoices = vdata_db.area(Invoices)
    written = await invoices.import_many([new(f"P-{i}", "paged") for i in range(5)], actor="ops")
    assert written == 5
    first = await invoices.list_by_customer("paged", limit=3)
    assert first.next_cursor is not None
    rest = await invoices.list_by_customer("paged", cursor=first.next_cursor, limit=3)
    assert [i.number for i in first.items + rest.items] == [f"P-{i}" for i in range(5)]
    assert rest.next_cursor is None
    assert await invoices.count_by_customer("paged") == 5


async def test_a_write_needs_an_actor(vdata_db: vdata.Database) -> None:
    with pytest.raises(vdata.ValidationError):
        await vdata_db.area(Invoices).create(new("T-5"))
    assert await vdata_db.area(Invoices).count_by_customer("acme") == 0
