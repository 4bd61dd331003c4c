"""vdata: async PostgreSQL access through named SQL files and typed msgspec results."""

from __future__ import annotations

from vdata.database import Database, connect
from vdata.errors import (
    AccountLockedError,
    AuthenticationError,
    ConflictError,
    DatabaseError,
    ForeignKeyError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    QueryTimeoutError,
    StaleVersionError,
    TransientError,
    UnavailableError,
    ValidationError,
    VdataError,
)
from vdata.health import Health
from vdata.repositories._base import Page, Slice
from vdata.settings import Settings
from vdata.transaction import Transaction

__all__ = [
    "AccountLockedError",
    "AuthenticationError",
    "ConflictError",
    "Database",
    "DatabaseError",
    "ForeignKeyError",
    "Health",
    "IntegrityError",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "QueryTimeoutError",
    "Settings",
    "Slice",
    "StaleVersionError",
    "Transaction",
    "TransientError",
    "UnavailableError",
    "ValidationError",
    "VdataError",
    "connect",
]
