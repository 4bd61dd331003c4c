"""The vdata error tree: every error vdata raises, public as ``vdata.<Name>``.

Translating asyncpg and OS errors into it is ``vdata.engine.failures``.
"""

from __future__ import annotations

__all__ = [
    "AccountLockedError",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseError",
    "ForeignKeyError",
    "IntegrityError",
    "NotFoundError",
    "PermissionDeniedError",
    "QueryTimeoutError",
    "Stage",
    "StaleVersionError",
    "TransientError",
    "UnavailableError",
    "ValidationError",
    "VdataError",
]

from datetime import datetime
from typing import Any, Literal

# Where a failure happened, as the executor knows it: "connect" (making a new
# connection), "acquire" (waiting for a pooled one), None (running a statement).
Stage = Literal["connect", "acquire"] | None


class VdataError(Exception):
    """Base of every vdata error; ``str()`` and ``repr()`` never show values.

    Attributes are facts, not policy (``vdata.retry`` holds the policy):
    ``sqlstate`` and ``constraint`` from the server; ``query`` the named query;
    ``reason`` a short tag for failures without a SQLSTATE (``"connect_failed"``,
    ``"connect_timeout"``, ``"connection_lost"``, ``"connection_closed"``,
    ``"command_timeout"``, ``"acquire_timeout"``, ``"pool_closed"``,
    ``"breaker_open"``, ``"retries_exhausted"``, ...); ``not_sent`` is True only
    when the failure proves the statement never reached the server.
    """

    __module__ = "vdata"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # psycopg style: tracebacks show vdata.ConflictError, the public name,
        # not the private module it happens to live in.
        super().__init_subclass__(**kwargs)
        cls.__module__ = "vdata"

    def __init__(
        self,
        message: str = "",
        *,
        sqlstate: str | None = None,
        constraint: str | None = None,
        query: str | None = None,
        reason: str | None = None,
        not_sent: bool = False,
    ) -> None:
        if not message:
            # The first docstring line is a sentence a person can act on.
            message = (type(self).__doc__ or "error").splitlines()[0].rstrip(".")
        if query:
            message = f"{message} [query {_safe_ident(query)}]"
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.constraint = constraint
        self.query = query
        self.reason = reason
        self.not_sent = not_sent

    def __repr__(self) -> str:
        # Only the safe message and the structured facts: repr() ends up in
        # logs and debuggers, so it follows the same rule as str().
        extra = "".join(
            f", {name}={value!r}"
            for name, value in (
                ("sqlstate", self.sqlstate),
                ("constraint", _safe_ident(self.constraint) if self.constraint else None),
                ("reason", self.reason),
            )
            if value is not None
        )
        return f"{type(self).__name__}({self.message!r}{extra})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes would be lost by Exception's default pickling
        # (it replays ``cls(*args)``); keep them for multiprocessing and xdist.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[VdataError], state: dict[str, Any]) -> VdataError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, state.get("message", ""))
    exc.__dict__.update(state)
    return exc


class NotFoundError(VdataError):
    """A required row is absent."""

    def __init__(self, what: str = "row", key: object = None, **kwargs: Any) -> None:
        # The key is shown: callers pass ids, never secrets (a token is looked
        # up by its prefix, and an unknown user is an AuthenticationError).
        shown = f"{what} {key!r}" if key is not None else what
        super().__init__(f"{shown} not found", **kwargs)
        self.what = what
        self.key = key


class StaleVersionError(VdataError):
    """The row was changed by someone else: its version moved on."""

    def __init__(
        self,
        what: str = "row",
        key: object = None,
        *,
        expected_version: int | None = None,
        **kwargs: Any,
    ) -> None:
        shown = f"{what} {key!r}" if key is not None else what
        at = f" (version {expected_version} is no longer current)" if expected_version else ""
        super().__init__(f"{shown} was changed by someone else{at}; reload and retry", **kwargs)
        self.what = what
        self.key = key
        self.expected_version = expected_version


class IntegrityError(VdataError):
    """A constraint of the schema rejected the change."""


class ConflictError(IntegrityError):
    """A row with the same unique key already exists."""


class ForeignKeyError(IntegrityError):
    """A referenced row is missing, or a row is still referenced."""


class ValidationError(VdataError):
    """The input is invalid."""

    def __init__(self, message: str = "", *, field: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field = field


class ConfigurationError(ValidationError):
    """vdata's own configuration (a setting or the DSN) is invalid; fix it, do not retry.

    Raised when the settings are made or a DSN is parsed, before anything is
    sent; never retried and never counted by the circuit breaker. ``field``
    names the setting (``VDATA_DSN``, ``secret_key``...); the message never
    repeats a password or a secret.
    """


class AuthenticationError(VdataError):
    """The credentials are wrong."""


class AccountLockedError(AuthenticationError):
    """The account is locked after too many failed attempts."""

    def __init__(
        self, message: str = "", *, locked_until: datetime | None = None, **kwargs: Any
    ) -> None:
        if not message:
            message = "account locked" + (
                f" until {locked_until.isoformat()}" if locked_until else ""
            )
        super().__init__(message, **kwargs)
        self.locked_until = locked_until


class PermissionDeniedError(VdataError):
    """The actor or the database role may not do this."""


class QueryTimeoutError(VdataError):
    """The statement ran out of time (statement_timeout, lock_timeout, command_timeout)."""


class TransientError(VdataError):
    """A failure that a retry may absorb (contention, lost connection)."""


class UnavailableError(VdataError):
    """The database cannot be used now; not retried by vdata."""

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class DatabaseError(VdataError):
    """Anything else: usually a bug or a misconfiguration, surfaced loudly."""


def _safe_ident(name: str) -> str:
    # Identifiers come from the schema, but a PL/pgSQL RAISE can set them to
    # anything: keep only what looks like an identifier.
    return name if len(name) <= 128 and name.isprintable() else "<unprintable>"
