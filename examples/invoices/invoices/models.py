"""The invoices service's Structs: what its queries return and what it accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


class Invoice(msgspec.Struct, frozen=True):
    """One invoice; its fields are the columns of invoices.sql, in order."""

    id: int
    number: str
    customer: str
    total_cents: int
    version: int
    created_by: str
    created_at: datetime
    updated_by: str | None


class NewInvoice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An invoice to create (the body of ``POST /invoices``)."""

    number: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    customer: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    total_cents: Annotated[int, msgspec.Meta(ge=0)]
