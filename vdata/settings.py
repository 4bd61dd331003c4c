"""Settings: every knob of vdata, from keyword arguments or ``VDATA_*`` variables."""

from __future__ import annotations

__all__ = ["Settings"]

import os
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from vdata.errors import ValidationError

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

_Seconds = Annotated[float, msgspec.Meta(ge=0)]
_PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
_Count = Annotated[int, msgspec.Meta(ge=1)]

_PREFIX = "VDATA_"


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Configuration of a :class:`vdata.Database`; immutable once built.

    Durations are seconds. ``0`` for a server-side timeout means "no limit",
    as in PostgreSQL.
    """

    # Where to connect. ``None`` means ``VDATA_DSN`` must provide it.
    dsn: str | None = None
    application_name: str = "vdata"

    # The pool.
    pool_min_size: Annotated[int, msgspec.Meta(ge=0)] = 1
    pool_max_size: _Count = 10
    connect_timeout: _PositiveSeconds = 5.0
    acquire_timeout: _PositiveSeconds = 5.0
    # Client-side limit on one statement (asyncpg's command_timeout).
    command_timeout: _PositiveSeconds = 60.0
    # How long close() waits for calls in flight before terminating them.
    close_timeout: _Seconds = 10.0
    max_inactive_connection_lifetime: _Seconds = 5 * 60.0
    # Prepared-statement cache per connection; 0 behind PgBouncer in
    # transaction mode, where a cached statement may run on another backend.
    statement_cache_size: Annotated[int, msgspec.Meta(ge=0)] = 100

    # Server-side limits, sent as session settings on every connection.
    statement_timeout: _Seconds = 30.0
    lock_timeout: _Seconds = 10.0
    idle_in_transaction_session_timeout: _Seconds = 60.0

    # TLS. ``sslmode`` None leaves the DSN's own choice in force.
    sslmode: SslMode | None = None
    sslrootcert: str | None = None
    # Refuse any connection that is not encrypted, whatever the DSN says.
    require_ssl: bool = False

    # The circuit breaker.
    breaker_failure_threshold: _Count = 5
    breaker_cooldown: _PositiveSeconds = 10.0
    breaker_cooldown_jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    breaker_half_open_max_calls: _Count = 1

    # Retries of what is safe to retry (reads, whole transactions).
    retry_tries: _Count = 3
    retry_max_time: _Seconds = 10.0

    # Queries slower than this are logged (name and duration only).
    slow_query_threshold: _Seconds = 0.5

    # Authentication.
    lockout_threshold: _Count = 5
    lockout_minutes: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    argon2_time_cost: _Count = 3
    argon2_memory_cost_kib: Annotated[int, msgspec.Meta(ge=8)] = 64 * 1024
    argon2_parallelism: _Count = 4
    hash_max_concurrent: _Count = max(1, os.cpu_count() or 1)
    session_ttl: _PositiveSeconds = 24 * 3600.0
    email_token_ttl: _PositiveSeconds = 48 * 3600.0
    api_key_rotation_grace: _Seconds = 24 * 3600.0

    # HMAC key for pagination cursors and API-key hashing (a pepper). Empty
    # means: a random key per process, so cursors do not survive a restart.
    secret_key: str = ""

    def __repr__(self) -> str:
        # The DSN may carry a password and secret_key is a secret: show neither.
        return f"Settings(dsn={_redact_dsn(self.dsn)!r}, pool_max_size={self.pool_max_size})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``VDATA_*`` variables, then keyword *overrides*.

        Raise ValidationError naming the variable and what it expected.
        """
        env = os.environ if env is None else env
        names = set(cls.__struct_fields__)
        raw: dict[str, Any] = {}
        for key, value in env.items():
            if key.startswith(_PREFIX):
                name = key[len(_PREFIX) :].lower()
                if name in names:
                    raw[name] = value
        try:
            base = msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ValidationError(_explain(exc, env_prefix=_PREFIX)) from None
        return base.replace(**overrides) if overrides else base

    @classmethod
    def build(cls, **values: Any) -> Settings:
        """Build settings from keyword arguments; raise ValidationError if any is bad."""
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ValidationError(_explain(exc, env_prefix="")) from None

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with *changes* applied and validated."""
        values = msgspec.structs.asdict(self)
        values.update(changes)
        return Settings.build(**values)


def _explain(exc: msgspec.ValidationError, *, env_prefix: str) -> str:
    # msgspec says "Expected `float` >= 0, got `-1` - at `$.statement_timeout`";
    # turn the path into the name the user wrote and drop the offending
    # value, which may be a secret (a DSN with a password, the secret key).
    message = str(exc)
    expected, _, path = message.partition(" - at `$.")
    field = path.rstrip("`").split(".")[0].split("[")[0]
    expected = expected.split(", got")[0]
    if expected.startswith("Invalid enum value"):
        expected = "one of " + ", ".join(_choices(field))
    if field:
        name = f"{env_prefix}{field.upper()}" if env_prefix else field
        return f"invalid setting {name}: {expected}"
    if message.startswith("Object contains unknown field"):
        return f"unknown setting: {message.split('`')[1]}"
    return f"invalid settings: {expected}"


def _choices(field: str) -> list[str]:
    hint = typing.get_type_hints(Settings).get(field)
    found: list[str] = []
    stack = [hint]
    while stack:
        current = stack.pop()
        if typing.get_origin(current) is Literal:
            found.extend(str(arg) for arg in typing.get_args(current))
        else:
            stack.extend(typing.get_args(current))
    return found


def _redact_dsn(dsn: str | None) -> str | None:
    if dsn is None or "@" not in dsn:
        return dsn
    scheme, _, rest = dsn.partition("://")
    userinfo, _, hostpart = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}" if ":" in userinfo else dsn
