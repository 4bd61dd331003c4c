"""The invoices repository: the named queries of sql/invoices/, typed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import vdata

from invoices.models import Invoice, NewInvoice

# Loaded once, at import; a malformed .sql file fails here, not at a call.
Q = vdata.load_queries(Path(__file__).parent / "sql")

# Each query bound to what its rows become: the helpers return that type.
GET: vdata.Query[Invoice] = Q.bind("invoices.get_invoice", Invoice)
VERSION: vdata.Query[int] = Q.bind("invoices.get_invoice_version", int)
LIST: vdata.Query[Invoice] = Q.bind("invoices.list_invoices_by_customer", Invoice)
COUNT: vdata.Query[int] = Q.bind("invoices.count_invoices_by_customer", int)
INSERT: vdata.Query[Invoice] = Q.bind("invoices.insert_invoice", Invoice)
SET_TOTAL: vdata.Query[Invoice] = Q.bind("invoices.update_invoice_total", Invoice)

_COPY_COLUMNS = ("number", "customer", "total_cents", "created_by")


class Invoices(vdata.Repository):
    """Read and write the ``invoices`` table; each method runs named queries."""

    async def get(self, invoice_id: int) -> Invoice:
        """Return invoice *invoice_id*; raise NotFoundError if there is none."""
        return await self.one(GET, id=invoice_id)

    async def create(self, new: NewInvoice, *, actor: str | None = None) -> Invoice:
        """Create *new*; ConflictError if its number is taken, ValidationError if bad."""
        return await self.one(
            INSERT,
            number=new.number,
            customer=new.customer,
            total_cents=new.total_cents,
            actor=self.actor(actor),
        )

    async def set_total(
        self,
        invoice_id: int,
        total_cents: int,
        *,
        expected_version: int,
        actor: str | None = None,
    ) -> Invoice:
        """Change the total if the invoice is still at *expected_version*.

        Raise NotFoundError if it is gone, StaleVersionError if someone
        changed it first.
        """
        return await self.update_versioned(
            SET_TOTAL,
            VERSION,
            expected_version,
            id=invoice_id,
            total_cents=total_cents,
            actor=self.actor(actor),
        )

    async def list_by_customer(
        self, customer: str, *, cursor: str | None = None, limit: int = 50
    ) -> vdata.Slice[Invoice]:
        """Return one page of *customer*'s invoices by id; pass ``next_cursor`` on."""
        return await self.keyset_page(LIST, cursor, limit, _key, _after, customer=customer)

    async def count_by_customer(self, customer: str) -> int:
        """Return how many invoices *customer* has."""
        return await self.value(COUNT, customer=customer) or 0

    async def import_many(self, new: Sequence[NewInvoice], *, actor: str | None = None) -> int:
        """Insert *new* with COPY, all or nothing; return how many rows were written."""
        who = self.actor(actor)
        records = [(n.number, n.customer, n.total_cents, who) for n in new]
        async with self.executor.transaction() as tx:
            return await tx.copy_records(
                "invoices", schema="public", columns=_COPY_COLUMNS, records=records
            )


def _key(invoice: Invoice) -> tuple[Any, ...]:
    return (invoice.id,)


def _after(cursor: tuple[Any, ...] | None) -> dict[str, object]:
    return {"after_id": 0 if cursor is None else cursor[0]}


# What vdata.connect(areas=...) and the pytest plugin (vdata_areas) register.
AREAS: dict[str, type[vdata.Repository]] = {"invoices": Invoices}
