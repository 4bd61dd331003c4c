"""User accounts: the named queries of ``sql/users/``, typed.

Passwords are hashed and checked with argon2id in worker threads
(``vdata.security.passwords``); an unknown login costs one dummy verification, so it
takes as long as a wrong password and both get the same error message.
"""

from __future__ import annotations

__all__ = [
    "INVALID_LOGIN",
    "INVALID_RESET",
    "INVALID_VERIFICATION",
    "SORT_KEYS",
    "UserRepository",
]

import builtins
from collections.abc import Iterable, Sequence
from datetime import timedelta
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any
from uuid import UUID

import msgspec

from vdata.engine.repository import Page, Repository, Slice
from vdata.errors import (
    AccountLockedError,
    AuthenticationError,
    NotFoundError,
    StaleVersionError,
    ValidationError,
)
from vdata.models.users import (
    Credentials,
    EmailVerification,
    NewUser,
    PasswordReset,
    PasswordResetRow,
    RevokedCredentials,
    User,
    UserPatch,
)
from vdata.queries import Query, load
from vdata.security.passwords import (
    MAX_PASSWORD_BYTES,
    PasswordHasher,
    check_password_policy,
    hasher_for,
)
from vdata.security.tokens import SecretStr, hash_token, mint_token
from vdata.security.validation import (
    check_actor,
    check_email,
    check_ids,
    check_input,
    check_text,
    check_username,
    check_version,
    utf8,
)

_Q = load()

_GET = _Q.bind("users.get_user_by_id", User)
_GET_BY_USERNAME = _Q.bind("users.get_user_by_username", User)
_GET_BY_EMAIL = _Q.bind("users.get_user_by_email", User)
_VERSION = _Q.bind("users.get_user_version", int)
_COUNT = _Q.bind("users.count_users", int, lag_tolerant=True)
_LIST_AFTER = _Q.bind("users.list_users_after", User, lag_tolerant=True)
_INSERT = _Q.bind("users.insert_user", User)
_UPDATE = _Q.bind("users.update_user", User)
_SET_ACTIVE = _Q.bind("users.set_user_active", User)
_SOFT_DELETE = _Q.bind("users.soft_delete_user", User)
_RESTORE = _Q.bind("users.restore_user", User, entity="deleted user")
_PURGE = _Q.bind("users.purge_user", User, entity="deleted user")
_DELETED_VERSION = _Q.bind("users.get_deleted_user_version", int)
_SOFT_DELETE_MANY = _Q.bind("users.soft_delete_users", User)
_RESTORE_MANY = _Q.bind("users.restore_users", User, entity="deleted user")
_REVOKE_CREDENTIALS = _Q.bind("users.revoke_user_credentials", RevokedCredentials, entity="user")
_CREDENTIALS_BY_LOGIN = _Q.bind("users.get_user_credentials_by_login", Credentials)
_CREDENTIALS_BY_ID = _Q.bind("users.get_user_credentials_by_id", Credentials)
_RECORD_FAILURE = _Q.bind("users.record_failed_login", User)
_RECORD_LOGIN = _Q.bind("users.record_login", User)
_CHANGE_PASSWORD = _Q.bind("users.change_user_password", User)
_SET_VERIFICATION = _Q.bind("users.set_email_verification", User)
_VERIFY_EMAIL = _Q.bind("users.verify_user_email", User)
_SET_RESET = _Q.bind("users.set_password_reset", PasswordResetRow)
_RESET_HOLDER = _Q.bind("users.get_password_reset_user", User)
_RESET = _Q.bind("users.reset_password", User)
_UNLOCK = _Q.bind("users.unlock_user", User)

# One message for an unknown login, a wrong password and an inactive
# account: telling them apart would let a guesser enumerate accounts.
INVALID_LOGIN = "invalid username, email or password"
INVALID_VERIFICATION = "invalid, used or expired email verification token"
INVALID_RESET = "invalid, used or expired password reset token"
_MAX_LOGIN = 254  # the longest email; longer input cannot name anyone
_MAX_TOKEN = 512

# The allow-list of sort keys: each maps to its own static query, so no
# caller-supplied text ever reaches the SQL.
_LISTS = {
    "created_at": _Q.bind("users.list_users_by_created_at", User, lag_tolerant=True),
    "username": _Q.bind("users.list_users_by_username", User, lag_tolerant=True),
}
SORT_KEYS = tuple(sorted(_LISTS))

# The schema's check_users_username_shape allows 3-32 characters, tighter
# than vdata.security.validation's generic 64; say so before the server does.
USERNAME_MAX = 32
FULL_NAME_MAX = 200
_SEARCH_MAX = 254
MAX_BULK = 10_000


def _username(value: str) -> str:
    check_username(value)
    if len(value) > USERNAME_MAX:
        raise ValidationError(
            f"username must be at most {USERNAME_MAX} characters", field="username"
        )
    return value


def _sorted(sort: str) -> Query[User]:
    q = _LISTS.get(sort)
    if q is None:
        raise ValidationError("unknown sort key; use one of: " + ", ".join(SORT_KEYS), field="sort")
    return q


def _filters(
    active: bool | None, verified: bool | None, search: str | None, include_deleted: bool
) -> dict[str, object]:
    if search is not None:
        check_text("search", search, max_length=_SEARCH_MAX)
    return {
        "active": active,
        "verified": verified,
        "search": search or None,
        "with_deleted": bool(include_deleted),
    }


def _after(position: tuple[Any, ...] | None) -> dict[str, object]:
    if position is None:
        return {"after_time": None, "after_id": None}
    if len(position) != 2 or not isinstance(position[1], UUID):
        raise ValidationError("invalid or tampered cursor", field="cursor")
    return {"after_time": position[0], "after_id": position[1]}


def _key(user: User) -> tuple[Any, ...]:
    return (user.created_at, user.id)


def _check_ip(value: str | IPv4Address | IPv6Address | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, (IPv4Address, IPv6Address)):
        return str(value)
    if isinstance(value, str) and len(value) <= 64:
        try:
            return str(ip_address(value))
        except ValueError:
            pass
    raise ValidationError("ip must be an IPv4 or IPv6 address", field="ip")


def _plausible_login(login: object) -> bool:
    # Input that cannot name an account is treated like an unknown account
    # (same cost, same error) instead of a ValidationError, which would tell
    # a caller something a wrong password does not.
    if not isinstance(login, str) or not 0 < len(login) <= _MAX_LOGIN or "\x00" in login:
        return False
    try:
        utf8("login", login)  # lone surrogates cannot be sent
    except ValidationError:
        return False
    return True


class UserRepository(Repository):
    """Read and write ``app.users``; every method runs one named statement.

    Writes take ``actor=`` (or the transaction's actor) and record their
    audit event in the same statement. Reads never see soft-deleted users
    unless ``include_deleted=True`` is passed to a listing.
    """

    __slots__ = ()

    async def create(self, new: NewUser, *, actor: str | None = None) -> User:
        """Create *new* with an argon2id hash of its password; return the user.

        Raise ValidationError for a bad field (nothing is written) and
        ConflictError (``unique_users_username`` or ``unique_users_email_lower``)
        when the username or the email, in any letter case, is taken.
        """
        who = self.actor(actor)
        new = check_input("new", new, NewUser)
        _username(new.username)
        check_email(new.email)
        check_text("full_name", new.full_name, max_length=FULL_NAME_MAX)
        password_hash = await self._hasher.hash(new.password)  # checks the policy first
        return await self.one(
            _INSERT,
            username=new.username,
            email=new.email,
            full_name=new.full_name,
            password_hash=password_hash,
            actor=who,
        )

    async def get(self, id: UUID) -> User:
        """Return the live user *id*; raise NotFoundError if absent or soft-deleted."""
        return await self.one(_GET, id=id)

    async def get_by_username(self, username: str) -> User:
        """Return the live user named exactly *username* (case-sensitive); NotFoundError."""
        check_text("username", username, max_length=_SEARCH_MAX)
        return await self.one(_GET_BY_USERNAME, username=username)

    async def get_by_email(self, email: str) -> User:
        """Return the live user with *email* in any letter case; raise NotFoundError."""
        check_text("email", email, max_length=_SEARCH_MAX)
        return await self.one(_GET_BY_EMAIL, email=email)

    async def update(
        self, id: UUID, patch: UserPatch, *, expected_version: int, actor: str | None = None
    ) -> User:
        """Apply *patch* if the user is still at *expected_version*; return the new row.

        Raise StaleVersionError if someone changed it meanwhile (reload and
        retry), NotFoundError if it is gone, ValidationError for a bad or
        empty patch, ConflictError for a taken username or email.
        """
        who = self.actor(actor)
        if not isinstance(expected_version, int) or isinstance(expected_version, bool):
            raise ValidationError("expected_version must be an int", field="expected_version")
        patch = check_input("patch", patch, UserPatch)
        if patch.username is None and patch.email is None and patch.full_name is None:
            raise ValidationError("nothing to update: every field of the patch is None")
        if patch.username is not None:
            _username(patch.username)
        if patch.email is not None:
            check_email(patch.email)
        if patch.full_name is not None:
            check_text("full_name", patch.full_name, max_length=FULL_NAME_MAX)
        return await self.update_versioned(
            _UPDATE,
            _VERSION,
            expected_version,
            id=id,
            username=patch.username,
            email=patch.email,
            full_name=patch.full_name,
            actor=who,
        )

    async def activate(self, id: UUID, *, actor: str | None = None) -> User:
        """Let the live user *id* log in again; return it. Raise NotFoundError."""
        who = self.actor(actor)
        return await self.one(_SET_ACTIVE, id=id, active=True, actor=who)

    async def deactivate(self, id: UUID, *, actor: str | None = None) -> User:
        """Stop the live user *id* from logging in; return it. Raise NotFoundError."""
        who = self.actor(actor)
        return await self.one(_SET_ACTIVE, id=id, active=False, actor=who)

    async def soft_delete(
        self, id: UUID, *, expected_version: int | None = None, actor: str | None = None
    ) -> User:
        """Soft-delete the live user *id* (it keeps its username and email); return it.

        With *expected_version*, only at that version. Raise NotFoundError,
        StaleVersionError.
        """
        who = self.actor(actor)
        version = check_version(expected_version)
        return await self.update_versioned(_SOFT_DELETE, _VERSION, version, id=id, actor=who)

    async def restore(
        self, id: UUID, *, expected_version: int | None = None, actor: str | None = None
    ) -> User:
        """Undo the soft delete of user *id*; return it.

        Raise NotFoundError unless it is soft-deleted, StaleVersionError when
        *expected_version* is given and the user has moved on. Never
        ConflictError: usernames and emails stay taken after a soft delete.
        """
        who = self.actor(actor)
        version = check_version(expected_version)
        return await self.update_versioned(_RESTORE, _DELETED_VERSION, version, id=id, actor=who)

    async def soft_delete_many(
        self, ids: Sequence[UUID], *, actor: str | None = None
    ) -> builtins.list[User]:
        """Soft-delete every user in *ids* in one statement, all or nothing; return them by id.

        Raise NotFoundError for the first id that is not a live user
        (nothing is deleted then).
        """
        who = self.actor(actor)
        unique = check_ids("ids", ids, max_count=MAX_BULK)

        async def blame(user_id: UUID) -> None:
            if await self.value(_VERSION, id=user_id) is None:
                raise NotFoundError("user", user_id)

        return await self.change_all(_SOFT_DELETE_MANY, unique, blame, actor=who)

    async def restore_many(
        self, ids: Sequence[UUID], *, actor: str | None = None
    ) -> builtins.list[User]:
        """Restore every soft-deleted user in *ids* in one statement, all or nothing.

        Return them by id. Raise NotFoundError for the first id that is not
        a soft-deleted user (nothing is restored then).
        """
        who = self.actor(actor)
        unique = check_ids("ids", ids, max_count=MAX_BULK)

        async def blame(user_id: UUID) -> None:
            if await self.value(_DELETED_VERSION, id=user_id) is None:
                raise NotFoundError("deleted user", user_id)

        return await self.change_all(_RESTORE_MANY, unique, blame, actor=who)

    async def revoke_credentials(self, id: UUID, *, actor: str | None = None) -> RevokedCredentials:
        """Revoke every API key and live session of user *id* in one statement.

        One audit event per credential (``api_key.revoke``,
        ``session.revoke``); works for a soft-deleted user too. Return the
        counts. Raise NotFoundError if there is no such user.
        """
        who = self.actor(actor)
        return await self.one(_REVOKE_CREDENTIALS, user_id=id, actor=who)

    async def purge(self, id: UUID, *, actor: str | None = None) -> User:
        """Delete the soft-deleted user *id* for good, with its keys, sessions and roles.

        Return the row as it was. Raise NotFoundError unless it is
        soft-deleted, ForeignKeyError while it still owns projects.
        """
        who = self.actor(actor)
        return await self.one(_PURGE, id=id, actor=who)

    async def list(
        self,
        *,
        active: bool | None = None,
        verified: bool | None = None,
        search: str | None = None,
        include_deleted: bool = False,
        sort: str = "created_at",
        offset: int = 0,
        limit: int = 50,
    ) -> builtins.list[User]:
        """Return up to *limit* users after skipping *offset*, in *sort* order.

        *search* matches a prefix of the username or email, in any case.
        """
        q = _sorted(sort)
        offset, limit = self.page_bounds(offset, limit)
        filters = _filters(active, verified, search, include_deleted)
        return await self.many(q, offset=offset, page_size=limit, **filters)

    async def list_page(
        self,
        *,
        active: bool | None = None,
        verified: bool | None = None,
        search: str | None = None,
        include_deleted: bool = False,
        sort: str = "created_at",
        offset: int = 0,
        limit: int = 50,
    ) -> Page[User]:
        """Return one offset page of users and the total across pages (see ``list``)."""
        q = _sorted(sort)
        filters = _filters(active, verified, search, include_deleted)
        return await self.offset_page(q, _COUNT, offset, limit, **filters)

    async def list_after(
        self,
        cursor: str | None = None,
        *,
        limit: int = 50,
        active: bool | None = None,
        verified: bool | None = None,
        search: str | None = None,
        include_deleted: bool = False,
    ) -> Slice[User]:
        """Return users after *cursor* (None: from the start), oldest first.

        Pass the result's ``next_cursor`` to get the next slice, with the same
        filters; a tampered or foreign cursor raises ValidationError.
        """
        filters = _filters(active, verified, search, include_deleted)
        return await self.keyset_page(_LIST_AFTER, cursor, limit, _key, _after, **filters)

    # -- credentials: login, password, email verification ---------------------

    @property
    def _hasher(self) -> PasswordHasher:
        return hasher_for(self.executor.settings)

    async def authenticate(
        self, login: str, password: str, *, ip: str | IPv4Address | IPv6Address | None = None
    ) -> User:
        """Return the user whose username or email is *login* if *password* is right.

        Record the login (time, *ip*), reset the failure count and re-hash the
        password if the argon2 parameters changed. Raise AuthenticationError
        with one message for an unknown login, a wrong password or an
        inactive account, and AccountLockedError (``.locked_until``) while
        the account is locked or when this failure locks it.
        """
        address = _check_ip(ip)
        hasher = self._hasher
        found = None
        if _plausible_login(login):
            found = await self.one_or_none(_CREDENTIALS_BY_LOGIN, login=login)
        if found is None:
            await hasher.verify_dummy(password)
            raise AuthenticationError(INVALID_LOGIN, reason="invalid_credentials")
        credentials: Credentials = found
        if credentials.is_locked:
            raise AccountLockedError(locked_until=credentials.locked_until)
        if not await hasher.verify(credentials.password_hash, password):
            if credentials.is_active:
                await self._count_failure(credentials.id, address)
            raise AuthenticationError(INVALID_LOGIN, reason="invalid_credentials")
        if not credentials.is_active:
            raise AuthenticationError(INVALID_LOGIN, reason="invalid_credentials")
        new_hash = await self._rehash(hasher, credentials.password_hash, password)
        user = await self.one_or_none(
            _RECORD_LOGIN,
            id=credentials.id,
            password_hash=credentials.password_hash,
            new_password_hash=new_hash,
            ip=address,
        )
        if user is None:
            # Deactivated, locked, deleted or given a new password between the
            # check and the update: the login does not count.
            raise AuthenticationError(INVALID_LOGIN, reason="invalid_credentials")
        return user

    async def change_password(
        self, id: UUID, *, old_password: str, new_password: str, actor: str | None = None
    ) -> User:
        """Set a new password after checking the old one; revoke every session of the user.

        One statement changes the hash, sets ``password_changed_at``, revokes
        the sessions and writes the audit events. Raise ValidationError if
        *new_password* breaks the policy, NotFoundError for an unknown user,
        AuthenticationError if *old_password* is wrong (counted as a failed
        login), AccountLockedError while locked, StaleVersionError if the
        password was changed concurrently.
        """
        who = self.actor(actor)
        check_password_policy(new_password)
        credentials: Credentials = await self.one(_CREDENTIALS_BY_ID, id=id)
        if credentials.is_locked:
            raise AccountLockedError(locked_until=credentials.locked_until)
        hasher = self._hasher
        if not await hasher.verify(credentials.password_hash, old_password):
            await self._count_failure(credentials.id, None)
            raise AuthenticationError("the current password is wrong", reason="invalid_credentials")
        new_hash = await hasher.hash(new_password)
        user = await self.one_or_none(
            _CHANGE_PASSWORD,
            id=credentials.id,
            old_password_hash=credentials.password_hash,
            new_password_hash=new_hash,
            actor=who,
        )
        if user is None:
            await self.one(_GET, id=id)  # gone: NotFoundError
            raise StaleVersionError("user", id)
        return user

    async def issue_email_verification(
        self, id: UUID, *, actor: str | None = None
    ) -> EmailVerification:
        """Issue a new email-verification token for user *id* (replacing any earlier one).

        The result's ``token`` is the plaintext to email, shown only here; the
        database keeps its SHA-256 and an expiry ``Settings.email_token_ttl``
        seconds ahead. Raise NotFoundError for an unknown user and
        ValidationError if the email is already verified.
        """
        who = self.actor(actor)
        ttl = float(self.executor.settings.email_token_ttl)
        issued = mint_token()
        user: User | None = await self.one_or_none(
            _SET_VERIFICATION, id=id, token_hash=issued.token_hash, ttl_seconds=ttl, actor=who
        )
        if user is None:
            await self.one(_GET, id=id)  # gone: NotFoundError
            raise ValidationError("the email of this user is already verified", field="email")
        # The statement set updated_at and the expiry from the same now().
        return EmailVerification(user, issued.token, user.updated_at + timedelta(seconds=ttl))

    async def verify_email(self, token: str | SecretStr, *, actor: str | None = None) -> User:
        """Mark the email of the token's user as verified and use the token up; return the user.

        *actor* defaults to the transaction's, else to the user. Raise
        AuthenticationError for an unknown, used or expired token.
        """
        chosen = actor if actor is not None else self.executor.actor
        who = None if chosen is None else check_actor(chosen)
        text = token.reveal() if isinstance(token, SecretStr) else token
        if not isinstance(text, str) or not 0 < len(text) <= _MAX_TOKEN:
            raise AuthenticationError(INVALID_VERIFICATION, reason="invalid_token")
        user = await self.one_or_none(_VERIFY_EMAIL, token_hash=hash_token(text), actor=who)
        if user is None:
            raise AuthenticationError(INVALID_VERIFICATION, reason="invalid_token")
        return user

    # -- password reset and unlock -----------------------------------------

    async def issue_password_reset(
        self,
        login: str,
        *,
        ip: str | IPv4Address | IPv6Address | None = None,
        actor: str | None = None,
    ) -> PasswordReset | None:
        """Issue a single-use password-reset token for the account *login* names.

        *login* is a username or an email (any letter case). Return the
        token to send to ``result.user.email`` (the plaintext is only here;
        the database keeps its SHA-256, valid ``Settings.password_reset_ttl``
        seconds, replacing an earlier one), or None when no live, active
        account has that login. Either way the call does the same work, as
        ``authenticate`` does for an unknown login: one argon2 verification
        (against a fixed hash), one token minted, one statement; tell the
        person asking the same thing in both cases. *actor* defaults to the
        account.
        """
        address = _check_ip(ip)
        chosen = actor if actor is not None else self.executor.actor
        who = None if chosen is None else check_actor(chosen)
        ttl = float(self.executor.settings.password_reset_ttl)
        issued = mint_token()
        # The statement writes only for an account (token and audit rows), a
        # difference of well under a millisecond; an argon2 verification on
        # every call, as an unknown login costs in authenticate(), makes that
        # difference small beside the whole, as it is for a login.
        await self._hasher.verify_dummy(issued.token.reveal())
        # Input that cannot name an account runs the same statement with a
        # login that matches none (usernames have 3+ characters, emails an @).
        claimed = login if _plausible_login(login) else ""
        row = await self.one_or_none(
            _SET_RESET,
            login=claimed,
            token_hash=issued.token_hash,
            ttl_seconds=ttl,
            ip=address,
            actor=who,
        )
        if row is None:
            return None
        fields = msgspec.structs.astuple(row)
        return PasswordReset(User(*fields[:-1]), issued.token, row.expires_at)

    async def password_reset_user(self, token: str | SecretStr) -> User:
        """Return the account a valid reset *token* is for, without using the token up.

        For a reset form that shows the account's sessions and API keys to
        choose from. Raise AuthenticationError for an unknown, used or
        expired token.
        """
        text = token.reveal() if isinstance(token, SecretStr) else token
        if not isinstance(text, str) or not 0 < len(text) <= _MAX_TOKEN:
            raise AuthenticationError(INVALID_RESET, reason="invalid_token")
        user = await self.one_or_none(_RESET_HOLDER, token_hash=hash_token(text))
        if user is None:
            raise AuthenticationError(INVALID_RESET, reason="invalid_token")
        return user

    async def reset_password(
        self,
        token: str | SecretStr,
        new_password: str,
        *,
        revoke_sessions: bool | Iterable[UUID] = True,
        revoke_api_keys: bool | Iterable[UUID] = False,
        ip: str | IPv4Address | IPv6Address | None = None,
        actor: str | None = None,
    ) -> User:
        """Set *new_password* with a reset *token*, using the token up; return the user.

        One statement checks and deletes the token, sets the password,
        clears the lockout, revokes the chosen sessions and API keys (True:
        all, False: none, or the ids to revoke) and audits it all. Raise
        ValidationError if *new_password* breaks the policy (the token stays
        valid) and AuthenticationError for an unknown, used or expired
        token, or an account deactivated or deleted since. The new password
        is hashed before the token is looked at, so a bad token costs as
        much as a good one. *actor* defaults to the account.
        """
        address = _check_ip(ip)
        chosen = actor if actor is not None else self.executor.actor
        who = None if chosen is None else check_actor(chosen)
        all_sessions, session_ids = _revocation("revoke_sessions", revoke_sessions)
        all_keys, key_ids = _revocation("revoke_api_keys", revoke_api_keys)
        new_hash = await self._hasher.hash(new_password)  # checks the policy first
        text = token.reveal() if isinstance(token, SecretStr) else token
        if not isinstance(text, str) or not 0 < len(text) <= _MAX_TOKEN:
            raise AuthenticationError(INVALID_RESET, reason="invalid_token")
        user = await self.one_or_none(
            _RESET,
            digest=hash_token(text),
            new_hash=new_hash,
            all_sessions=all_sessions,
            session_ids=session_ids,
            all_keys=all_keys,
            key_ids=key_ids,
            ip=address,
            actor=who,
        )
        if user is None:
            raise AuthenticationError(INVALID_RESET, reason="invalid_token")
        return user

    async def unlock(self, id: UUID, *, actor: str | None = None) -> User:
        """Clear the lockout and failed-login count of the live user *id*; return it.

        Audited as ``user.unlock``. A user with nothing to clear comes back
        unchanged and nothing is written. Raise NotFoundError if the user is
        absent or soft-deleted.
        """
        who = self.actor(actor)
        user = await self.one_or_none(_UNLOCK, id=id, actor=who)
        if user is None:
            return await self.one(_GET, id=id)  # absent: NotFoundError
        return user

    # -- helpers ------------------------------------------------------------

    async def _count_failure(self, user_id: UUID, address: str | None) -> None:
        """Count one failed login; raise AccountLockedError if it locks the account."""
        settings = self.executor.settings
        threshold = int(settings.lockout_threshold)
        user: User | None = await self.one_or_none(
            _RECORD_FAILURE,
            id=user_id,
            threshold=threshold,
            lockout_seconds=float(settings.lockout_minutes) * 60.0,
            ip=address,
        )
        if user is not None and user.failed_login_count >= threshold:
            raise AccountLockedError(locked_until=user.locked_until)

    @staticmethod
    async def _rehash(hasher: PasswordHasher, stored: str, password: str) -> str | None:
        """Return a hash with the current parameters if *stored* is outdated, else None."""
        if not hasher.needs_rehash(stored):
            return None
        if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
            return None
        try:
            return await hasher.hash(password)
        except ValidationError:
            # Set under an older, looser policy: keep the old hash rather
            # than lock the user out; the policy applies at the next change.
            return None


def _revocation(field: str, choice: bool | Iterable[UUID]) -> tuple[bool, builtins.list[UUID]]:
    """Return (all, ids) for a revoke choice: True, False, or the ids to revoke."""
    if isinstance(choice, bool):
        return choice, []
    if isinstance(choice, (str, bytes)) or not isinstance(choice, Iterable):
        raise ValidationError(f"{field} must be True, False or a list of ids", field=field)
    ids = builtins.list(choice)
    if not all(isinstance(i, UUID) for i in ids):
        raise ValidationError(f"{field} must hold UUIDs", field=field)
    return False, ids
