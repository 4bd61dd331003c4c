"""Settings: every knob of vdata, from keyword arguments or ``VDATA_*`` variables."""

from __future__ import annotations

__all__ = ["Settings"]

import os
import re
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from vdata.dsn import parse_dsn
from vdata.errors import ConfigurationError

Pooler = Literal["detect", "none", "session", "transaction"]
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

_Seconds = Annotated[float, msgspec.Meta(ge=0)]
_PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
_Count = Annotated[int, msgspec.Meta(ge=1)]

_PREFIX = "VDATA_"
# The shortest secret_key accepted: 16 bytes (128 bits) keys the cursor MAC
# and the API-key pepper as strongly as their 128-bit tags need.
MIN_SECRET_KEY_BYTES = 16


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
    # Prepared-statement cache per connection. None: 100 on a direct
    # connection, 0 behind a pooler in transaction mode (where a cached
    # statement may run on another backend); see ``pooler``.
    statement_cache_size: Annotated[int, msgspec.Meta(ge=0)] | None = None
    # What stands between vdata and PostgreSQL. "detect": one probe at open
    # compares the backend pid the login reported with pg_backend_pid(); a
    # mismatch means a pooler, taken as transaction pooling. "transaction":
    # PgBouncer in transaction mode (statement cache 0; a cache > 0 is
    # refused). "session" / "none": each client connection keeps its backend.
    pooler: Pooler = "detect"

    # Read replicas: DSNs of streaming standbys that lag-tolerant reads
    # outside a transaction may use (VDATA_REPLICA_DSNS: URIs separated by
    # spaces, or a JSON list). A replica further behind the primary than
    # replica_max_lag seconds, or down, is skipped.
    replica_dsns: tuple[str, ...] = ()
    replica_max_lag: _PositiveSeconds = 5.0
    # How often each replica's replay position is compared with the primary's.
    replica_check_interval: _PositiveSeconds = 0.5

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
    # The longest cooldown. The first opening waits breaker_min_cooldown and
    # each failed trial doubles the wait up to breaker_cooldown, so a failover
    # that is over in a second costs a fraction of a second, while a real
    # outage is probed at most every breaker_cooldown.
    breaker_cooldown: _PositiveSeconds = 10.0
    breaker_min_cooldown: _PositiveSeconds = 0.25
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
    password_reset_ttl: _PositiveSeconds = 3600.0
    api_key_rotation_grace: _Seconds = 24 * 3600.0

    # HMAC key for pagination cursors and API-key hashing (a pepper), at
    # least MIN_SECRET_KEY_BYTES long. Empty means: cursors are signed with
    # the key migration 0305 created in the database (app.signing_key), the
    # same for every instance of a service, and API keys are hashed unpeppered.
    secret_key: str = ""

    def __post_init__(self) -> None:
        # Checked when the settings are made, so a bad DSN or a short key is
        # reported at start-up, naming the setting, not at the first call.
        if self.dsn is not None:
            parse_dsn(self.dsn, setting="dsn").asyncpg_dsn(setting="dsn")
        for replica in self.replica_dsns:
            parse_dsn(replica, setting="replica_dsns").asyncpg_dsn(setting="replica_dsns")
        if self.secret_key and len(self.secret_key.encode()) < MIN_SECRET_KEY_BYTES:
            raise ConfigurationError(
                f"invalid setting secret_key: must be empty or at least "
                f"{MIN_SECRET_KEY_BYTES} bytes long (got {len(self.secret_key.encode())})",
                field="secret_key",
            )

    def __repr__(self) -> str:
        # The DSN may carry a password and secret_key is a secret: show neither.
        return f"Settings(dsn={_redact_dsn(self.dsn)!r}, pool_max_size={self.pool_max_size})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``VDATA_*`` variables, then keyword *overrides*.

        Raise ConfigurationError (a ValidationError) naming the variable and what it expected.
        """
        env = os.environ if env is None else env
        names = set(cls.__struct_fields__)
        raw: dict[str, Any] = {}
        for key, value in env.items():
            if key.startswith(_PREFIX):
                name = key[len(_PREFIX) :].lower()
                if name in names:
                    raw[name] = value
        if "replica_dsns" in raw:
            raw["replica_dsns"] = _dsn_list(raw["replica_dsns"])
        try:
            base = msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise _explain(exc, env_prefix=_PREFIX) from None
        except ConfigurationError as exc:
            # Raised by __post_init__ with the field's own name: name the
            # variable the value came from instead.
            if exc.field is None or exc.field not in raw:
                raise
            variable = f"{_PREFIX}{exc.field.upper()}"
            message = exc.message.replace(f"setting {exc.field}:", f"setting {variable}:", 1)
            message = message.replace(f"invalid {exc.field}:", f"invalid setting {variable}:", 1)
            raise ConfigurationError(message, field=variable) from None
        return base.replace(**overrides) if overrides else base

    @classmethod
    def build(cls, **values: Any) -> Settings:
        """Build settings from keyword arguments; raise ConfigurationError if any is bad."""
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise _explain(exc, env_prefix="") from None

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with *changes* applied and validated."""
        values = msgspec.structs.asdict(self)
        values.update(changes)
        return Settings.build(**values)


def _explain(exc: msgspec.ValidationError, *, env_prefix: str) -> ConfigurationError:
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
        return ConfigurationError(f"invalid setting {name}: {expected}", field=name)
    if message.startswith("Object contains unknown field"):
        return ConfigurationError(f"unknown setting: {message.split('`')[1]}")
    return ConfigurationError(f"invalid settings: {expected}")


def _dsn_list(value: str) -> Any:
    """``VDATA_REPLICA_DSNS``: a JSON list, or URIs separated by white space."""
    text = value.strip()
    if text.startswith("["):
        try:
            return msgspec.json.decode(text)
        except msgspec.DecodeError:
            raise ConfigurationError(
                "invalid setting VDATA_REPLICA_DSNS: not a valid JSON list of DSNs",
                field="VDATA_REPLICA_DSNS",
            ) from None
    return text.split()


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


# password=... in a key=value DSN (quoted or not) or in a URI's query string.
_PASSWORD_PARAM = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", re.IGNORECASE)


def _redact_dsn(dsn: str | None) -> str | None:
    if dsn is None:
        return dsn
    dsn = _PASSWORD_PARAM.sub(r"\1***", dsn)
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, _, rest = dsn.partition("://")
    userinfo, _, hostpart = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}" if ":" in userinfo else dsn
