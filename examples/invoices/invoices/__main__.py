"""``python -m invoices NUMBER``: create an invoice, then change it in a transaction.

Connects to ``$VDATA_DSN`` (the service role, on a migrated database).
"""

from __future__ import annotations

import asyncio
import sys

import vdata

from invoices.models import NewInvoice
from invoices.repositories import AREAS, Invoices


async def main(number: str) -> None:
    async with await vdata.connect(areas=AREAS, bundled=False) as db:
        invoices = db.area(Invoices)  # typed: Invoices
        made = await invoices.create(
            NewInvoice(number=number, customer="acme", total_cents=1250), actor="ops"
        )
        print("created", made.number, made.total_cents, "version", made.version)

        async with db.transaction(actor="ops") as tx:  # one connection, all or nothing
            changed = await tx.area(Invoices).set_total(
                made.id, 1500, expected_version=made.version
            )
            count = await tx.invoices.count_by_customer("acme")  # untyped attribute: Any
        print("changed", changed.number, changed.total_cents, "version", changed.version)
        print("acme has", count, "invoice(s)")

        try:
            await invoices.set_total(made.id, 9, expected_version=made.version, actor="ops")
        except vdata.StaleVersionError as exc:
            print("stale:", exc)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "INV-1"))
