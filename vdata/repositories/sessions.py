"""Log-in sessions: create, validate in one round trip, list, revoke, purge."""

from __future__ import annotations

__all__ = ["INVALID_SESSION", "SessionRepository"]

from datetime import timedelta
from ipaddress import IPv4Address, IPv6Address, ip_address
from uuid import UUID

from vdata.engine.repository import Repository
from vdata.errors import AuthenticationError, NotFoundError, ValidationError
from vdata.models.sessions import IssuedSession, Session
from vdata.queries import load
from vdata.security.tokens import SecretStr, hash_token, mint_token
from vdata.security.validation import check_seconds, check_text

_Q = load()

_INSERT = _Q.bind("sessions.insert_session", Session)
_TOUCH = _Q.bind("sessions.touch_session", Session)
_GET = _Q.bind("sessions.get_session_by_id", Session)
_LIST_ACTIVE = _Q.bind("sessions.list_active_sessions_by_user_id", Session)
_REVOKE = _Q.bind("sessions.revoke_session", Session)
_REVOKE_ALL = _Q.bind("sessions.revoke_sessions_by_user_id", int)
_PURGE = _Q.bind("sessions.delete_expired_sessions", int)

# One message whatever made the token fail: unknown, expired, revoked, or the
# user inactive or deleted.
INVALID_SESSION = "invalid or expired session"
# Tokens minted here are 43 characters; anything far longer is not one of
# ours and is refused before hashing it.
_MAX_TOKEN_LENGTH = 512
_MAX_TTL = 366 * 86400.0


class SessionRepository(Repository):
    """Read and write ``app.sessions``; every method runs one named statement.

    The token is never stored: the row holds its SHA-256, so a copy of the
    table cannot be replayed as a log-in.
    """

    __slots__ = ()

    async def create(
        self,
        user_id: UUID,
        *,
        ip: str | IPv4Address | IPv6Address | None = None,
        user_agent: str | None = None,
        ttl: float | timedelta | None = None,
        actor: str | None = None,
    ) -> IssuedSession:
        """Open a session for *user_id*; the token is in ``.token``, returned only here.

        *ttl* (seconds or a timedelta) defaults to ``Settings.session_ttl``.
        Raise ValidationError for a bad ip, user agent or ttl (nothing is
        written) and NotFoundError unless the user exists, is active and not
        deleted.
        """
        who = self.actor(actor)
        address = _check_ip(ip)
        if user_agent is not None:
            check_text("user_agent", user_agent, max_length=1000)
        seconds = _ttl_seconds(self.executor.settings.session_ttl if ttl is None else ttl)
        issued = mint_token()
        session = await self.one_or_none(
            _INSERT,
            user_id=user_id,
            token_hash=issued.token_hash,
            ip=address,
            user_agent=user_agent,
            ttl_seconds=seconds,
            actor=who,
        )
        if session is None:
            raise NotFoundError("active user", user_id)
        return IssuedSession(session, issued.token)

    async def validate(self, token: str | SecretStr) -> Session:
        """Return the session for *token* and stamp ``last_seen_at``, in one round trip.

        Raise AuthenticationError (always the same message) unless the session
        exists, is unrevoked and unexpired, and its user is active.
        """
        text = token.reveal() if isinstance(token, SecretStr) else token
        if not isinstance(text, str) or not 0 < len(text) <= _MAX_TOKEN_LENGTH:
            raise AuthenticationError(INVALID_SESSION, reason="invalid_session")
        # Looked up by its SHA-256: the token has 256 random bits, so the
        # digest is an index key, not something a timing probe could guess.
        session: Session | None = await self.one_or_none(_TOUCH, token_hash=hash_token(text))
        if session is None:
            raise AuthenticationError(INVALID_SESSION, reason="invalid_session")
        return session

    async def get(self, session_id: UUID) -> Session:
        """Return session *session_id* (revoked and expired included); raise NotFoundError."""
        return await self.one(_GET, id=session_id)

    async def list_active(self, user_id: UUID) -> list[Session]:
        """Return *user_id*'s unrevoked, unexpired sessions, most recently seen first."""
        return await self.many(_LIST_ACTIVE, user_id=user_id)

    async def revoke(
        self, session_id: UUID, *, user_id: UUID | None = None, actor: str | None = None
    ) -> Session:
        """Revoke *session_id* (only if it belongs to *user_id*, when given); return it.

        Idempotent: revoking a revoked session returns it unchanged and writes
        no second audit event. Raise NotFoundError if there is no such session.
        """
        who = self.actor(actor)
        return await self.one(_REVOKE, id=session_id, user_id=user_id, actor=who)

    async def revoke_all_for_user(
        self, user_id: UUID, *, except_id: UUID | None = None, actor: str | None = None
    ) -> int:
        """Revoke every live session of *user_id* but *except_id*; return how many."""
        who = self.actor(actor)
        revoked = await self.value(_REVOKE_ALL, user_id=user_id, except_id=except_id, actor=who)
        return int(str(revoked))

    async def cleanup_expired(
        self, *, older_than: float | timedelta = 0.0, actor: str | None = None
    ) -> int:
        """Delete sessions expired or revoked more than *older_than* ago; return how many."""
        who = self.actor(actor)
        seconds = check_seconds("older_than", older_than, maximum=100 * 365 * 86400.0)
        return int(str(await self.value(_PURGE, older_than_seconds=seconds, actor=who)))


def _check_ip(value: str | IPv4Address | IPv6Address | None) -> IPv4Address | IPv6Address | None:
    if value is None or isinstance(value, (IPv4Address, IPv6Address)):
        return value
    if isinstance(value, str) and len(value) <= 64:
        try:
            return ip_address(value)
        except ValueError:
            pass
    raise ValidationError("ip must be an IPv4 or IPv6 address", field="ip")


def _ttl_seconds(value: float | timedelta) -> float:
    return check_seconds("ttl", value, maximum=_MAX_TTL, allow_zero=False)
