"""Users: the row Struct (positional, no hash), login credentials, and the inputs."""

from __future__ import annotations

__all__ = [
    "Credentials",
    "EmailVerification",
    "NewUser",
    "PasswordReset",
    "PasswordResetRow",
    "RevokedCredentials",
    "User",
    "UserPatch",
]

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from vdata.security.tokens import SecretStr

_MASK = "**********"


class User(msgspec.Struct, frozen=True):
    """One account as callers see it: never the password hash or a token hash.

    Built positionally from a row (``User(*record)``): the field order is the
    column order of every query in ``sql/users/`` that returns users.
    """

    id: UUID
    username: str
    email: str
    full_name: str
    is_active: bool
    email_verified_at: datetime | None
    failed_login_count: int
    locked_until: datetime | None
    last_login_at: datetime | None
    password_changed_at: datetime
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    version: int
    deleted_at: datetime | None
    deleted_by: str | None
    last_login_ip: str | None  # text form of the inet column (host())

    @property
    def is_verified(self) -> bool:
        """Whether the email address has been verified."""
        return self.email_verified_at is not None


class Credentials(msgspec.Struct, frozen=True):
    """What a password check needs, read only by UserRepository; repr hides the hash."""

    id: UUID
    username: str
    password_hash: str
    is_active: bool
    locked_until: datetime | None
    is_locked: bool  # locked_until is in the future, by the server's clock

    def __repr__(self) -> str:
        return (
            f"Credentials(id={self.id!s}, username={self.username!r}, password_hash=<hidden>, "
            f"is_active={self.is_active}, locked_until={self.locked_until!r})"
        )

    __str__ = __repr__

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        # msgspec's own __rich_repr__ would list every field, the hash too.
        return [("id", self.id), ("username", self.username), ("password_hash", "<hidden>")]


class RevokedCredentials(msgspec.Struct, frozen=True):
    """How many API keys and sessions of one user a bulk revocation revoked."""

    user_id: UUID
    api_keys: int
    sessions: int


class NewUser(msgspec.Struct, frozen=True, kw_only=True):
    """Input of ``users.create``; ``password`` is plaintext and never shown by repr/str."""

    username: str
    email: str
    password: str
    full_name: str = ""

    def __repr__(self) -> str:
        return (
            f"NewUser(username={self.username!r}, email={self.email!r}, "
            f"password={_MASK}, full_name={self.full_name!r})"
        )

    __str__ = __repr__

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            ("username", self.username),
            ("email", self.email),
            ("password", _MASK),
            ("full_name", self.full_name),
        ]


class UserPatch(msgspec.Struct, frozen=True, kw_only=True):
    """Input of ``users.update``: each field left as None stays unchanged.

    A new email (other than by letter case) clears ``email_verified_at``.
    Passwords change only through ``users.change_password``.
    """

    username: str | None = None
    email: str | None = None
    full_name: str | None = None


class _IssuedToken:
    """A token just issued for *user*: send ``token`` to ``user.email``, once.

    Only the token's SHA-256 is stored; repr/str never show the token.
    """

    __slots__ = ("_token", "expires_at", "user")

    def __init__(self, user: User, token: SecretStr, expires_at: datetime) -> None:
        self.user = user
        self._token = token
        self.expires_at = expires_at

    @property
    def token(self) -> str:
        """The plaintext token, for the email; vdata keeps only its hash."""
        return self._token.reveal()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(user_id={self.user.id!s}, token={_MASK}, "
            f"expires_at={self.expires_at.isoformat()})"
        )

    __str__ = __repr__


class EmailVerification(_IssuedToken):
    """A verification token just issued: send ``token`` to ``user.email``, once.

    Only the token's SHA-256 is stored; repr/str never show the token.
    """

    __slots__ = ()


class PasswordResetRow(User, frozen=True):
    """The user a reset token was just issued for, and the token's expiry (a row)."""

    expires_at: datetime


class PasswordReset(_IssuedToken):
    """A password-reset token just issued: send ``token`` to ``user.email``, once.

    Only the token's SHA-256 is stored; repr/str never show the token. It
    works once, until ``expires_at``.
    """

    __slots__ = ()
