"""Log-in sessions: the row Struct (positional, no digest) and the issued session."""

from __future__ import annotations

__all__ = ["IssuedSession", "Session"]

from datetime import datetime
from ipaddress import IPv4Address, IPv6Address
from uuid import UUID

import msgspec

from vdata.security.tokens import SecretStr


class Session(msgspec.Struct, frozen=True):
    """One session as callers see it: never the token, never its digest.

    Built positionally from a row (``Session(*record)``): the field order is
    the column order of every query in ``sql/sessions/`` that returns it.
    """

    id: UUID
    user_id: UUID
    ip: IPv4Address | IPv6Address | None
    user_agent: str | None
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    version: int


class IssuedSession:
    """A session just opened: ``session`` (the row) and ``token``, shown once.

    repr/str show the session id, never the token.
    """

    __slots__ = ("_token", "session")

    def __init__(self, session: Session, token: SecretStr) -> None:
        self.session = session
        self._token = token

    @property
    def token(self) -> str:
        """The plaintext bearer token for the client; vdata stores only its SHA-256."""
        return self._token.reveal()

    def __repr__(self) -> str:
        return f"IssuedSession(id={self.session.id!s}, token=**********)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IssuedSession):
            return NotImplemented
        return self.session == other.session and self._token == other._token

    __hash__ = None  # type: ignore[assignment]
