"""Users, credential side: authenticate, change_password, email verification.

A base class of ``UserRepository`` (one repository, two short modules).
Passwords are hashed and checked with argon2id in worker threads
(``vdata.passwords``); an unknown login costs one dummy verification, so it
takes as long as a wrong password and both get the same error message.
"""

from __future__ import annotations

__all__ = ["INVALID_LOGIN", "INVALID_VERIFICATION", "UserLoginMixin"]

from datetime import timedelta
from ipaddress import IPv4Address, IPv6Address, ip_address
from uuid import UUID

from vdata.engine.repository import Repository
from vdata.errors import (
    AccountLockedError,
    AuthenticationError,
    StaleVersionError,
    ValidationError,
)
from vdata.models.users import Credentials, EmailVerification, User
from vdata.passwords import MAX_PASSWORD_BYTES, PasswordHasher, check_password_policy, hasher_for
from vdata.queries import load
from vdata.tokens import SecretStr, hash_token, mint_token
from vdata.validation import check_actor, utf8

_Q = load()

_GET = _Q.bind("users.get_user_by_id", User)
_CREDENTIALS_BY_LOGIN = _Q.bind("users.get_user_credentials_by_login", Credentials)
_CREDENTIALS_BY_ID = _Q.bind("users.get_user_credentials_by_id", Credentials)
_RECORD_FAILURE = _Q.bind("users.record_failed_login", User)
_RECORD_LOGIN = _Q.bind("users.record_login", User)
_CHANGE_PASSWORD = _Q.bind("users.change_user_password", User)
_SET_VERIFICATION = _Q.bind("users.set_email_verification", User)
_VERIFY_EMAIL = _Q.bind("users.verify_user_email", User)

# One message for an unknown login, a wrong password and an inactive
# account: telling them apart would let a guesser enumerate accounts.
INVALID_LOGIN = "invalid username, email or password"
INVALID_VERIFICATION = "invalid, used or expired email verification token"
_MAX_LOGIN = 254  # the longest email; longer input cannot name anyone
_MAX_TOKEN = 512


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


class UserLoginMixin(Repository):
    """The credential methods of UserRepository."""

    __slots__ = ()

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
