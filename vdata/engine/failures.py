"""The one failure classifier: what an asyncpg or OS error becomes, and what it proves.

The SQLSTATE tables say which class a server error becomes; ``translate``
also covers timeouts, client-side asyncpg errors and socket failures, and
decides ``not_sent``. Below it, the policy every other part reads: which
failures a retry may absorb (``is_transient``), which prove a statement was
never sent (``proves_not_sent``), which are evidence of an outage for the
circuit breaker (``is_availability_failure``) and which prove nothing
either way (``is_inconclusive``).
"""

from __future__ import annotations

__all__ = [
    "AVAILABILITY_REASONS",
    "AVAILABILITY_SQLSTATES",
    "DROPPED_SQLSTATES",
    "INCONCLUSIVE_REASONS",
    "is_availability_failure",
    "is_inconclusive",
    "is_transient",
    "proves_not_sent",
    "translate",
]

import re
import socket
import ssl
from typing import Any

import asyncpg

from vdata.errors import (
    ConfigurationError,
    ConflictError,
    DatabaseError,
    ForeignKeyError,
    IntegrityError,
    PermissionDeniedError,
    QueryTimeoutError,
    Stage,
    TransientError,
    UnavailableError,
    ValidationError,
    VdataError,
    _safe_ident,
)

# SQLSTATE -> class, for the codes whose class differs from their two-char
# class below or deserves a name. The transient codes here are the whole list:
# ``is_transient`` (below) is ``isinstance(e, TransientError)``.
_BY_CODE: dict[str, type[VdataError]] = {
    "23505": ConflictError,  # unique_violation
    "23P01": ConflictError,  # exclusion_violation: an overlapping row exists
    "23503": ForeignKeyError,  # foreign_key_violation
    "23001": ForeignKeyError,  # restrict_violation
    "23502": ValidationError,  # not_null_violation
    "23514": ValidationError,  # check_violation
    "40001": TransientError,  # serialization_failure: re-run the transaction
    "40P01": TransientError,  # deadlock_detected: re-run the transaction
    "53300": TransientError,  # too_many_connections: sent at connect only
    "57P01": TransientError,  # admin_shutdown
    "57P02": TransientError,  # crash_shutdown
    "57P03": TransientError,  # cannot_connect_now: starting up / recovering
    "57P05": TransientError,  # idle_session_timeout: the session was reaped
    "57014": QueryTimeoutError,  # query_canceled: statement_timeout
    "55P03": QueryTimeoutError,  # lock_not_available: lock_timeout / NOWAIT
    "25P03": QueryTimeoutError,  # idle_in_transaction_session_timeout
    "25P04": QueryTimeoutError,  # transaction_timeout (PostgreSQL 17)
    "42501": PermissionDeniedError,  # insufficient_privilege
    # A write in a read-only transaction is a bug in the caller (readonly=True)
    # or a connection to a standby; not the actor's permission, not retried.
    "25006": DatabaseError,
    # Commit outcome unknown: a retry could apply the write twice.
    "08007": DatabaseError,
    "08P01": DatabaseError,  # protocol_violation: a bug, not an outage
    # vdata's own login failed: misconfiguration. Not AuthenticationError,
    # which means an end user's credentials were wrong.
    "28000": DatabaseError,
    "28P01": DatabaseError,
}

_BY_CLASS: dict[str, type[VdataError]] = {
    "08": TransientError,  # connection_exception
    "22": ValidationError,  # data_exception: the value cannot be stored
    "23": IntegrityError,  # integrity_constraint_violation
    "53": UnavailableError,  # insufficient_resources: disk full, out of memory
    "57": UnavailableError,  # operator_intervention: e.g. database dropped
}

# Codes the server only sends while a connection is being made, so the
# statement was certainly not sent.
_CONNECT_ONLY = frozenset({"08001", "08004", "28000", "28P01", "3D000", "53300", "57P03"})

# Words a person can act on, for codes whose asyncpg class name says too little.
_HINTS: dict[str, str] = {
    "25006": "cannot write in a read-only transaction (readonly=True, or a standby)",
    "28000": "the server rejected vdata's database role",
    "28P01": "the server rejected vdata's database password",
    "40001": "serialization failure: re-run the whole transaction",
    "40P01": "deadlock detected: re-run the whole transaction",
    "55P03": "lock not available (lock_timeout or NOWAIT)",
    "57014": "statement canceled (statement_timeout or a cancel request)",
}

# asyncpg: "... target attribute requirement <SessionAttribute.standby: 'standby'>".
_SESSION_ATTR = re.compile(r"SessionAttribute\.[\w]+: '([\w-]+)'")
# What the hosts that answered were, by the target_session_attrs they failed.
_OTHER_KIND = {
    "standby": "a primary",
    "prefer-standby": "a primary",
    "read-only": "read-write",
    "read-write": "read-only (a standby, or default_transaction_read_only=on)",
    "primary": "a standby",
}


def _login_refused(exc: asyncpg.PostgresError) -> str:
    """Return what a person should know about 28000 (pg_hba.conf refused the login).

    The server's message repeats host, role and database (not secrets, but
    values), so it is read for its shape only: whether a matching
    ``hostssl`` / ``hostnossl`` line exists for an encrypted connection.
    """
    text = str(exc)
    if "pg_hba.conf" not in text:
        return "the server rejected vdata's database role"
    plain = "no encryption" in text
    if "rejects connection" in text:
        if plain:
            return (
                "the server accepts this host only over TLS (pg_hba.conf rejects unencrypted "
                "connections) and this connection is not encrypted: set sslmode=require "
                "(VDATA_SSLMODE, or sslmode=require in the DSN)"
            )
        return (
            "pg_hba.conf on the server rejects this host, role and database"
            " (a reject line): ask the DBA to allow it"
        )
    if plain:
        return (
            "pg_hba.conf on the server has no line for this host, role and database "
            "without encryption (it may allow TLS only, hostssl): set sslmode=require "
            "(VDATA_SSLMODE, or sslmode=require in the DSN), or add a host line"
        )
    if "SSL encryption" in text or "GSS encryption" in text:
        return (
            "pg_hba.conf on the server has no line for this host, role and database "
            "over an encrypted connection (it may allow plain text only, hostnossl): "
            "add a hostssl line on the server, or relax sslmode"
        )
    return (
        "pg_hba.conf on the server has no line for this host, role and database: "
        "add one, or connect as another role or to another database"
    )


_FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
_WORDS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_ARG_POSITION = re.compile(r"query argument \$(\d+)")


def _first_words(text: str) -> str:
    # asyncpg's configuration messages name the bad parameter first; what
    # follows a colon may repeat the value (a DSN with its password).
    return text.split(":", 1)[0].strip() or "invalid configuration"


def _condition(exc: BaseException, code: str) -> str:
    # "UniqueViolationError" -> "unique violation": the class name is derived
    # from errcodes.txt, never from the (value-bearing) server message.
    name = type(exc).__name__.removesuffix("Error")
    if name in ("UnknownPostgres", "Postgres", "") or not type(exc).__module__.startswith(
        "asyncpg"
    ):
        return f"SQLSTATE {code}"
    return _WORDS.sub(" ", name).lower()


def _from_postgres(exc: asyncpg.PostgresError, query: str | None, stage: Stage) -> VdataError:
    code = str(getattr(exc, "sqlstate", None) or "")
    cls = _BY_CODE.get(code) or _BY_CLASS.get(code[:2], DatabaseError)
    constraint = getattr(exc, "constraint_name", None)
    hint = _login_refused(exc) if code == "28000" else _HINTS.get(code)
    parts = [hint or _condition(exc, code)]
    if constraint:
        parts.append(f"on constraint {_safe_ident(constraint)}")
    table = getattr(exc, "table_name", None)
    column = getattr(exc, "column_name", None)
    if table:
        schema = getattr(exc, "schema_name", None)
        where = f"{schema}.{table}" if schema else table
        at_column = f", column {_safe_ident(column)}" if column else ""
        parts.append(f"(table {_safe_ident(where)}{at_column})")
    position = _ARG_POSITION.search(str(exc)) if code.startswith("22") else None
    if position:
        # Client-side encoding errors repeat the value; the position is enough.
        parts.append(f"(query argument ${position.group(1)})")
    parts.append(f"[SQLSTATE {code or 'unknown'}]")
    kwargs: dict[str, Any] = {
        "sqlstate": code or None,
        "constraint": constraint,
        "query": query,
        "not_sent": stage is not None or code in _CONNECT_ONLY,
    }
    if cls is ValidationError:
        kwargs["field"] = column
    return cls(" ".join(parts), **kwargs)


def translate(exc: BaseException, *, query: str | None = None, stage: Stage = None) -> VdataError:
    """Return the vdata error for *exc*; the caller raises it ``from exc``.

    *query* (the named query) goes into the message; *stage* says whether the
    failure happened while connecting or acquiring, which proves nothing was
    sent. Messages are built from SQLSTATE, constraint, table and column names
    only, never from the server's message or DETAIL, which repeat values.
    """
    if isinstance(exc, VdataError):
        return exc
    if isinstance(exc, asyncpg.PostgresError):
        return _from_postgres(exc, query, stage)
    before = stage is not None
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError
        if stage == "connect":
            return TransientError(
                "timed out connecting to the server (connect_timeout)",
                query=query,
                reason="connect_timeout",
                not_sent=True,
            )
        if stage == "acquire":
            # A busy pool is back-pressure, not an outage: not retried (that
            # would multiply the wait) and not counted by the breaker.
            return UnavailableError(
                "pool exhausted: no pooled connection became free within acquire_timeout",
                query=query,
                reason="acquire_timeout",
                not_sent=True,
            )
        return QueryTimeoutError(
            "no reply from the server within command_timeout",
            query=query,
            reason="command_timeout",
        )
    if isinstance(exc, asyncpg.exceptions.TargetServerAttributeNotMatched):
        # Every host answered, but none is of the kind target_session_attrs
        # asks for: a wrong DSN (or a failover that left no such host), not a
        # broken connection.
        found = _SESSION_ATTR.search(str(exc))
        attr = found.group(1) if found else "?"
        other = _OTHER_KIND.get(attr, "of another kind")
        return UnavailableError(
            f"no host in the DSN matched target_session_attrs={attr}: every host that "
            f"answered is {other}; list a host of that kind in the DSN, or relax "
            "target_session_attrs (prefer-standby, any)",
            query=query,
            reason="no_matching_host",
            not_sent=True,
        )
    if isinstance(exc, asyncpg.ClientConfigurationError):
        # A DSN or argument asyncpg cannot use: configuration, never retried.
        return ConfigurationError(
            f"asyncpg refused the connection settings ({_first_words(str(exc))})",
            query=query,
            reason="bad_configuration",
            not_sent=True,
        )
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # "cannot switch to state N; another operation is in progress": the
        # connection's protocol is out of step (seen when its backend was
        # terminated while it sat idle in the pool). asyncpg raises this
        # before writing anything, and the connection is unusable.
        return TransientError(
            "the connection is broken", query=query, reason="connection_closed", not_sent=True
        )
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        if "pool is clos" in text:
            return UnavailableError(
                "the pool is closing or closed", query=query, reason="pool_closed", not_sent=True
            )
        if "connection is closed" in text:
            # asyncpg refuses before writing anything to the socket.
            return TransientError(
                "the connection is closed", query=query, reason="connection_closed", not_sent=True
            )
        if isinstance(exc, ValueError):
            return ValidationError(
                "invalid query argument", query=query, reason="bad_argument", not_sent=True
            )
        return DatabaseError(
            f"asyncpg client error ({type(exc).__name__})",
            query=query,
            reason="client_error",
            not_sent=before,
        )
    if isinstance(exc, (ssl.SSLCertVerificationError, *_FILE_ERRORS)):
        # A certificate that does not verify, or a missing sslrootcert file,
        # is configuration: retrying cannot fix it.
        return DatabaseError(
            f"cannot connect: {type(exc).__name__} (check the TLS settings)",
            query=query,
            reason="connect_config",
            not_sent=True,
        )
    if isinstance(exc, OSError):
        # Refused and DNS failures can only happen while connecting; a reset
        # or broken pipe mid-statement may come after the server ran it.
        connecting = before or isinstance(exc, (ConnectionRefusedError, socket.gaierror))
        if connecting:
            return TransientError(
                f"cannot connect to the server ({type(exc).__name__})",
                query=query,
                reason="connect_failed",
                not_sent=True,
            )
        return TransientError(
            f"connection to the server lost ({type(exc).__name__})",
            query=query,
            reason="connection_lost",
        )
    return DatabaseError(
        f"unexpected {type(exc).__name__}", query=query, reason="unexpected", not_sent=before
    )


# The transient table is _BY_CODE / _BY_CLASS: a code is retryable
# exactly when it translates to TransientError (40001, 40P01, 08xxx except
# 08007/08P01, 53300, 57P01-57P03, 57P05), plus the connection failures
# without a SQLSTATE that translate() tags (refused, reset, connect timeout).
# Below is the second table: which of those failures mean "the server is not
# there" and so count for the circuit breaker. Contention (40001, 40P01) and
# a reaped idle session (57P05) prove the server is up, so they do not.
AVAILABILITY_SQLSTATES = frozenset(
    {
        "53000",  # insufficient_resources
        "53100",  # disk_full
        "53200",  # out_of_memory
        "53300",  # too_many_connections
        "53400",  # configuration_limit_exceeded
        "57000",  # operator_intervention
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "57P04",  # database_dropped
    }
)
_AVAILABILITY_CLASSES = frozenset({"08"})  # connection_exception, every code

# Failures without a SQLSTATE (see VdataError.reason). A client-side
# command_timeout counts: the server did not answer at all, which is what a
# black-holed network looks like. Server-side timeouts (57014, 55P03) do not:
# the server answered to say the query was slow.
AVAILABILITY_REASONS = frozenset({"command_timeout", "connect_failed", "connect_timeout"})

# An established connection that was dropped: its backend was terminated
# (pg_terminate_backend, a PgBouncer restart, a failover, a server going
# down) or its socket closed. On its own that says nothing about whether the
# server is up, because the fresh connection that replaces it decides: if
# connecting works, the server is there; if it is refused or times out,
# that attempt counts. So a sweep of every backend of a healthy server
# never opens the circuit, and a stopped server opens it on the first
# reconnect attempts. The same codes *while connecting* (``not_sent``) do
# count.
DROPPED_SQLSTATES = frozenset(
    {
        "08003",  # connection_does_not_exist
        "08006",  # connection_failure
        "57P01",  # admin_shutdown: pg_terminate_backend, or a shutdown
        "57P02",  # crash_shutdown: another backend crashed
    }
)
_DROPPED_REASONS = frozenset({"connection_closed", "connection_lost"})

# Failures that say nothing about the server either way: the pool was busy
# (back-pressure from the service's own load) or closing, the breaker
# itself refused. The breaker neither counts them nor takes them as a
# success.
INCONCLUSIVE_REASONS = frozenset({"acquire_timeout", "pool_closed", "breaker_open"})


def _as_vdata(exc: BaseException) -> VdataError:
    return exc if isinstance(exc, VdataError) else translate(exc)


def is_transient(exc: BaseException) -> bool:
    """Return True if a retry may absorb *exc* (whether a retry is *safe* is separate)."""
    if not isinstance(exc, Exception):  # cancellation is never retried
        return False
    return isinstance(_as_vdata(exc), TransientError)


def _dropped(error: VdataError) -> bool:
    # A connection that existed and was lost; not a failure to connect.
    if error.reason in _DROPPED_REASONS:
        return True
    return error.sqlstate in DROPPED_SQLSTATES and not error.not_sent


def is_inconclusive(exc: BaseException) -> bool:
    """Return True if *exc* proves neither that the server is down nor that it answered.

    A dropped connection (the next connection decides), a busy or closing
    pool, an open breaker, a cancellation. The breaker frees the call's
    trial slot and counts nothing.
    """
    if not isinstance(exc, Exception):
        return True
    error = _as_vdata(exc)
    if error.reason == "retries_exhausted":
        cause = error.__cause__
        return cause is None or is_inconclusive(cause)
    return error.reason in INCONCLUSIVE_REASONS or _dropped(error)


def is_availability_failure(exc: BaseException) -> bool:
    """Return True if *exc* means the server cannot be used: what opens the breaker.

    Evidence: a connection attempt refused, timed out or turned away
    (53300, 57P03 ...), a live connection that got no reply within
    command_timeout, the server out of resources. Not evidence: business
    errors, contention, server-side timeouts (the server answered), and
    what ``is_inconclusive`` names (a dropped connection, a busy pool).
    """
    if not isinstance(exc, Exception):
        return False
    error = _as_vdata(exc)
    if not isinstance(error, (TransientError, UnavailableError, QueryTimeoutError)):
        return False  # business errors and bugs prove the server answered
    if error.reason == "retries_exhausted":
        cause = error.__cause__
        return cause is not None and is_availability_failure(cause)
    if _dropped(error):
        return False
    if error.sqlstate is not None:
        code = error.sqlstate
        return code in AVAILABILITY_SQLSTATES or code[:2] in _AVAILABILITY_CLASSES
    if error.reason is not None:
        return error.reason in AVAILABILITY_REASONS
    # Raised by hand with no facts: trust the class, except for a timeout,
    # which is about the query unless tagged otherwise.
    return not isinstance(error, QueryTimeoutError)


def proves_not_sent(exc: BaseException) -> bool:
    """Return True if *exc* proves the statement never reached the server.

    Only then may a write be retried on its own: connecting or acquiring
    failed, the pool was closed, the breaker was open, or asyncpg refused a
    closed connection before writing to it.
    """
    if not isinstance(exc, Exception):
        return False
    return _as_vdata(exc).not_sent
