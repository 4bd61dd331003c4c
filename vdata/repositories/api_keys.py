"""API keys: issue, verify in one round trip, change, list, revoke, rotate, purge, usage."""

from __future__ import annotations

__all__ = ["INVALID_API_KEY", "ApiKeyRepository"]

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from uuid import UUID

from vdata.engine.repository import Executor, Repository
from vdata.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    StaleVersionError,
    ValidationError,
)
from vdata.models.api_keys import ApiKey, ApiKeyUsage, ApiKeyUsageDay, IssuedApiKey
from vdata.queries import Query, load
from vdata.repositories._api_key_usage import UsageBuffer
from vdata.security.tokens import SecretStr, hash_secret, mint_api_key, parse_api_key
from vdata.security.validation import check_identifier, check_seconds, check_version

_Q = load()

_INSERT = _Q.bind("api_keys.insert_api_key", ApiKey, entity="API key")
_USE = _Q.bind("api_keys.use_api_key", ApiKey, entity="API key")
_GET_USABLE = _Q.bind("api_keys.get_usable_api_key", ApiKey, entity="API key")
_GET = _Q.bind("api_keys.get_api_key_by_id", ApiKey, entity="API key")
_LIST = _Q.bind("api_keys.list_api_keys_by_user_id", ApiKey, entity="API key")
_REVOKE = _Q.bind("api_keys.revoke_api_key", ApiKey, entity="API key")
_ROTATE = _Q.bind("api_keys.rotate_api_key", ApiKey, entity="API key")
_PURGE = _Q.bind("api_keys.delete_expired_api_keys", int)
_USAGE = _Q.bind("api_keys.get_api_key_usage_by_user_id", ApiKeyUsage)
_SOFT_DELETE = _Q.bind("api_keys.soft_delete_api_key", ApiKey, entity="API key")
_RESTORE = _Q.bind("api_keys.restore_api_key", ApiKey, entity="deleted API key")
_VERSION = _Q.bind("api_keys.get_api_key_version", int)
_UPDATE = _Q.bind("api_keys.update_api_key", ApiKey, entity="API key")
_LIVE_VERSION = _Q.bind("api_keys.get_live_api_key_version", int, entity="API key")
_USAGE_DAYS = _Q.bind("api_keys.list_api_key_usage_days", ApiKeyUsageDay)
_REFUSE = _Q.bind("api_keys.record_api_key_refusal", int)
_PURGE_REVOKED = _Q.bind("api_keys.delete_revoked_api_keys", int)

# One message for every way a key can fail (malformed, bad checksum, unknown,
# wrong secret, revoked, expired, owner inactive or deleted): a caller probing
# with keys learns nothing about which part was wrong.
INVALID_API_KEY = "invalid API key"

# A scope is a short token such as "read", "projects:write" or "admin/*".
_SCOPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._*/-]{0,99}")
_MAX_SCOPES = 64  # check_api_keys_scopes_shape allows the same
# A new key's 8-character prefix hits one of N existing prefixes with
# probability N / 62**8 (5e-9 at a million keys). The insert skips a taken
# prefix without an error (an error would abort the caller's transaction) and
# the key is minted again; a missing user costs the same few empty inserts.
_MINT_ATTEMPTS = 3


class ApiKeyRepository(Repository):
    """Read and write ``app.api_keys``; each call is one named statement.

    (Except: rotate() probes the old key when nothing came back, issue() and
    rotate() mint again after a prefix collision, usage() flushes first.)

    The key itself is never stored: the row holds its public prefix and an
    HMAC-SHA-256 of its secret, peppered with ``Settings.secret_key`` (so a
    changed secret_key invalidates every key).
    """

    __slots__ = ("_usage",)

    def __init__(self, executor: Executor) -> None:
        super().__init__(executor)
        # On the pool, verify() is a read and uses are counted here and
        # written in batches; in a transaction it is one UPDATE ... RETURNING.
        self._usage = None if executor.in_transaction else UsageBuffer(executor)

    async def issue(
        self,
        user_id: UUID,
        *,
        name: str,
        scopes: Iterable[str] = (),
        expires_at: datetime | None = None,
        actor: str | None = None,
    ) -> IssuedApiKey:
        """Issue a key for *user_id*; the plaintext is in ``.token``, returned only here.

        Raise ValidationError for a bad name, scope or expiry (nothing is
        written) and NotFoundError if the user is absent or deleted.
        """
        who = self.actor(actor)
        check_identifier("name", name, max_length=200)
        scope_list = _check_scopes(scopes)
        _check_instant("expires_at", expires_at)
        pepper = self.executor.settings.secret_key
        for _ in range(_MINT_ATTEMPTS):
            minted = mint_api_key(pepper)
            key = await self.one_or_none(
                _INSERT,
                user_id=user_id,
                name=name,
                prefix=minted.prefix,
                secret_hash=minted.secret_hash,
                scopes=scope_list,
                expires_at=expires_at,
                actor=who,
            )
            if key is not None:
                return IssuedApiKey(key, minted.token)
        raise NotFoundError("user", user_id)

    async def verify(
        self, token: str | SecretStr, *, required_scopes: Iterable[str] | None = None
    ) -> ApiKey:
        """Return the key for *token* and count its use, in one round trip.

        Raise AuthenticationError (always the same message) unless the key is
        well formed, known, unrevoked, unexpired and its owner active; raise
        PermissionDeniedError if it lacks one of *required_scopes* (the use is
        still counted: the key did authenticate).

        On ``db.api_keys`` the statement is a read (as cheap as a get by id)
        and the use is written within ``USAGE_FLUSH_INTERVAL`` by one batched
        statement (``flush_usage()`` and ``db.close()`` write it at once), so
        the returned ``use_count`` leaves out uses not yet written. On
        ``tx.api_keys`` one UPDATE ... RETURNING checks and counts, and the
        count commits or rolls back with the transaction.
        """
        try:
            parsed = parse_api_key(token)
        except AuthenticationError:
            parsed = None
        if parsed is None:
            # parse_api_key says which check failed; callers must not learn it,
            # not even through __context__, so raise outside the except block.
            raise AuthenticationError(INVALID_API_KEY, reason="invalid_api_key")
        prefix, secret = parsed
        # The digest is compared by the database: the unique index on prefix
        # finds the row, and equality on a peppered HMAC of 256 random bits
        # leaks nothing useful through timing (no secret can be guessed from
        # how many digest bytes matched), so no Python compare is needed.
        digest = hash_secret(secret, self.executor.settings.secret_key)
        usage = self._usage
        key: ApiKey | None
        if usage is None:
            key = await self.one_or_none(_USE, prefix=prefix, secret_hash=digest)
        else:
            # An UPDATE costs about twice a SELECT here (measured: write and
            # commit), too much for every request; the count is batched.
            key = await self.one_or_none(_GET_USABLE, prefix=prefix, secret_hash=digest)
            if key is not None:
                usage.add(key.id)
        if key is None:
            await self._refused(prefix, digest, None)
            raise AuthenticationError(INVALID_API_KEY, reason="invalid_api_key")
        if required_scopes is not None:
            missing = sorted(set(required_scopes).difference(key.scopes))
            if missing:
                await self._refused(prefix, digest, "missing_scope")
                raise PermissionDeniedError(
                    f"API key {key.prefix} lacks scope(s): {', '.join(missing)}"
                )
        return key

    async def _refused(self, prefix: str, digest: bytes, reason: str | None) -> None:
        """Audit a refused use (``api_key.refuse``) if *prefix* is an existing key's.

        One statement, on the failure path only. A well-formed key whose
        prefix no key has writes nothing: it names nothing to review, and
        guessing prefixes must not buy writes to the audit chain. Inside a
        transaction the event commits or rolls back with it.
        """
        await self.value(_REFUSE, prefix=prefix, secret_hash=digest, reason=reason)

    async def get(self, key_id: UUID) -> ApiKey:
        """Return the key *key_id* (revoked and expired included); raise NotFoundError."""
        return await self.one(_GET, id=key_id)

    async def list_by_owner(self, user_id: UUID, *, usable_only: bool = False) -> list[ApiKey]:
        """Return *user_id*'s keys, oldest first; *usable_only* drops revoked and expired ones."""
        return await self.many(_LIST, user_id=user_id, usable_only=usable_only)

    async def revoke(
        self, key_id: UUID, *, user_id: UUID | None = None, actor: str | None = None
    ) -> ApiKey:
        """Revoke *key_id* (only if owned by *user_id*, when given); return the key.

        Idempotent: revoking a revoked key returns it unchanged and writes no
        second audit event. Raise NotFoundError if there is no such key.
        """
        who = self.actor(actor)
        return await self.one(_REVOKE, id=key_id, user_id=user_id, actor=who)

    async def soft_delete(
        self,
        key_id: UUID,
        *,
        user_id: UUID | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> ApiKey:
        """Soft-delete *key_id* (only if owned by *user_id*, when given), revoking it too.

        Return the key. Raise NotFoundError unless it is a live key,
        StaleVersionError when *expected_version* is given and the key has
        moved on.
        """
        return await self._lifecycle(_SOFT_DELETE, key_id, user_id, expected_version, actor)

    async def restore(
        self,
        key_id: UUID,
        *,
        user_id: UUID | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> ApiKey:
        """Undo the soft delete of *key_id*: listed again, but still revoked (never usable).

        Return the key. Raise NotFoundError unless it is soft-deleted (and
        owned by *user_id*, when given), StaleVersionError as ``soft_delete``.
        """
        return await self._lifecycle(_RESTORE, key_id, user_id, expected_version, actor)

    async def _lifecycle(
        self,
        q: Query[ApiKey],
        key_id: UUID,
        user_id: UUID | None,
        expected_version: int | None,
        actor: str | None,
    ) -> ApiKey:
        who = self.actor(actor)
        version = check_version(expected_version)
        key = await self.one_or_none(
            q, id=key_id, user_id=user_id, expected_version=version, actor=who
        )
        if key is not None:
            return key
        deleted = q is _RESTORE
        if version is None or (
            await self.value(_VERSION, id=key_id, user_id=user_id, deleted=deleted) is None
        ):
            raise NotFoundError(q.entity, key_id)
        raise StaleVersionError(q.entity, key_id, expected_version=version)

    async def rotate(
        self,
        key_id: UUID,
        *,
        expires_at: datetime | None = None,
        grace: float | timedelta | None = None,
        actor: str | None = None,
    ) -> IssuedApiKey:
        """Replace *key_id* with a new key of the same owner, name and scopes.

        The old key keeps working for *grace* (default
        ``Settings.api_key_rotation_grace``), never past its own expiry; the
        new key expires at *expires_at* (None: never) and has
        ``rotated_from_id`` set. Raise NotFoundError unless *key_id* is usable.
        """
        who = self.actor(actor)
        _check_instant("expires_at", expires_at)
        settings = self.executor.settings
        grace_seconds = _seconds(
            "grace", settings.api_key_rotation_grace if grace is None else grace
        )
        for _ in range(_MINT_ATTEMPTS):
            minted = mint_api_key(settings.secret_key)
            key = await self.one_or_none(
                _ROTATE,
                id=key_id,
                prefix=minted.prefix,
                secret_hash=minted.secret_hash,
                expires_at=expires_at,
                grace_seconds=grace_seconds,
                actor=who,
            )
            if key is not None:
                return IssuedApiKey(key, minted.token)
            # Nothing came back: the key is not usable, or (rarely) the new
            # prefix was taken. Only the second is worth another try.
            old: ApiKey | None = await self.one_or_none(_GET, id=key_id)
            if old is None or old.revoked_at is not None:
                break
        raise NotFoundError("usable API key", key_id)

    async def update(
        self,
        key_id: UUID,
        *,
        expected_version: int,
        name: str | None = None,
        scopes: Iterable[str] | None = None,
        actor: str | None = None,
    ) -> ApiKey:
        """Change the *name* and/or *scopes* of *key_id* if it is still at *expected_version*.

        None keeps a field; *scopes* replaces the whole list. Audited as
        ``api_key.update`` with the old and new values. Raise ValidationError
        for a bad name or scope or nothing to change (nothing is written),
        NotFoundError if the key is absent, revoked or deleted,
        StaleVersionError if it changed since *expected_version*.
        """
        who = self.actor(actor)
        if not isinstance(expected_version, int) or isinstance(expected_version, bool):
            raise ValidationError("expected_version must be an int", field="expected_version")
        if name is None and scopes is None:
            raise ValidationError("nothing to update: pass name and/or scopes")
        if name is not None:
            check_identifier("name", name, max_length=200)
        scope_list = None if scopes is None else _check_scopes(scopes)
        return await self.update_versioned(
            _UPDATE,
            _LIVE_VERSION,
            expected_version,
            id=key_id,
            name=name,
            scopes=scope_list,
            actor=who,
        )

    async def usage_history(
        self, key_id: UUID, *, since: date | None = None, until: date | None = None
    ) -> list[ApiKeyUsageDay]:
        """Return the uses of *key_id* per UTC day in ``[since, until)``, oldest first.

        Days without a use have no entry; today's entry grows as the key is
        used. Uses still buffered by this process are written first.
        """
        for field, value in (("since", since), ("until", until)):
            if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
                raise ValidationError(f"{field} must be a date", field=field)
        await self.flush_usage()
        return await self.many(_USAGE_DAYS, id=key_id, since=since, until=until)

    async def cleanup_expired(
        self, *, older_than: float | timedelta = 0.0, actor: str | None = None
    ) -> int:
        """Delete keys expired more than *older_than* ago, auditing each; return the count."""
        who = self.actor(actor)
        seconds = _seconds("older_than", older_than)
        return int(str(await self.value(_PURGE, older_than_seconds=seconds, actor=who)))

    async def cleanup_revoked(
        self, *, older_than: float | timedelta = 30 * 86400.0, actor: str | None = None
    ) -> int:
        """Delete keys revoked more than *older_than* ago, auditing each; return the count."""
        who = self.actor(actor)
        seconds = _seconds("older_than", older_than)
        return int(str(await self.value(_PURGE_REVOKED, older_than_seconds=seconds, actor=who)))

    async def usage(self, user_id: UUID) -> ApiKeyUsage:
        """Return usage totals over *user_id*'s keys (per key: ``ApiKey.use_count``).

        Uses still buffered by this process are written first.
        """
        await self.flush_usage()
        return await self.one(_USAGE, user_id=user_id)

    async def flush_usage(self) -> int:
        """Write the uses counted by pooled verify() calls now; return how many keys."""
        return 0 if self._usage is None else await self._usage.flush()


_HUNDRED_YEARS = 100 * 365 * 86400.0


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    """Return *scopes* without duplicates, in order; raise ValidationError on a bad one."""
    if isinstance(scopes, str):
        raise ValidationError("scopes must be a list of strings, not one string", field="scopes")
    unique: list[str] = []
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
            raise ValidationError(
                "each scope must be 1-100 of A-Z a-z 0-9 : . _ * / -, starting with a "
                "letter or digit",
                field="scopes",
            )
        if scope not in unique:
            unique.append(scope)
    if len(unique) > _MAX_SCOPES:
        raise ValidationError(f"at most {_MAX_SCOPES} scopes", field="scopes")
    return unique


def _check_instant(field: str, value: datetime | None) -> None:
    if value is None:
        return
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"{field} must be a timezone-aware datetime", field=field)


def _seconds(field: str, value: float | timedelta) -> float:
    return check_seconds(field, value, maximum=_HUNDRED_YEARS)
