"""API keys: the row Struct (positional, no digest), usage totals, and the issued key."""

from __future__ import annotations

__all__ = ["ApiKey", "ApiKeyUsage", "ApiKeyUsageDay", "IssuedApiKey"]

from datetime import date, datetime
from uuid import UUID

import msgspec

from vdata.security.tokens import SecretStr


class ApiKey(msgspec.Struct, frozen=True):
    """One API key as callers see it: never the key, never its digest.

    Built positionally from a row (``ApiKey(*record)``): the field order is
    the column order of every query in ``sql/api_keys/`` that returns it.
    """

    id: UUID
    user_id: UUID
    name: str
    prefix: str  # public: the part after ``vdk_`` that finds the row
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    use_count: int
    rotated_from_id: UUID | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    version: int

    def has_scopes(self, required: list[str] | tuple[str, ...] | frozenset[str]) -> bool:
        """Return whether this key carries every scope in *required*."""
        return set(required).issubset(self.scopes)


class ApiKeyUsage(msgspec.Struct, frozen=True):
    """Usage totals over one user's keys (deleted keys excluded)."""

    user_id: UUID
    key_count: int
    usable_key_count: int  # neither revoked nor expired
    total_uses: int
    last_used_at: datetime | None


class ApiKeyUsageDay(msgspec.Struct, frozen=True):
    """How often one key was used on one UTC day, and when last that day."""

    api_key_id: UUID
    used_on: date
    uses: int
    last_used_at: datetime


class IssuedApiKey:
    """A key just issued: ``key`` (the row) and ``token``, the plaintext, shown once.

    Not a Struct on purpose: it cannot be passed to ``msgspec.json.encode`` by
    accident, and repr/str show the key's id and prefix, never the token.
    """

    __slots__ = ("_token", "key")

    def __init__(self, key: ApiKey, token: SecretStr) -> None:
        self.key = key
        self._token = token

    @property
    def token(self) -> str:
        """The plaintext key, to hand to its owner once; vdata stores only a digest."""
        return self._token.reveal()

    def __repr__(self) -> str:
        return f"IssuedApiKey(id={self.key.id!s}, prefix={self.key.prefix!r}, token=**********)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IssuedApiKey):
            return NotImplemented
        return self.key == other.key and self._token == other._token

    __hash__ = None  # type: ignore[assignment]
