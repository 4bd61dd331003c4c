"""DSNs: every form libpq accepts, parsed by libpq itself, one way for every command.

``connect()``, ``Settings``, ``vdata migrate``, ``vdata check`` and ``vdata
explain`` all read a DSN through :func:`parse_dsn`:

* ``key=value`` strings (``host=db port=5432 dbname=app user=svc``, quoting
  and backslash escapes as libpq reads them);
* URIs: ``postgresql://``, ``postgres://``, and the SQLAlchemy-style
  ``postgresql+psycopg://`` (any ``+driver``), multi-host lists included.

libpq's own parser (through psycopg) does the reading, so a DSN means here
what it means to ``psql``. A DSN that cannot be read, names an unknown
parameter, or has a bad port, ``sslmode`` or ``target_session_attrs`` is a
:class:`~vdata.ConfigurationError`, whose message never repeats the password.
"""

from __future__ import annotations

__all__ = ["Dsn", "parse_dsn"]

import re
from functools import lru_cache
from urllib.parse import urlencode

from vdata.errors import ConfigurationError

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9.-]*)(?:\+(?P<driver>[A-Za-z0-9_.-]+))?://")
_QUOTED = re.compile(r'"([^"]*)"')

_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_SESSION_ATTRS = frozenset(
    {"any", "read-write", "read-only", "primary", "standby", "prefer-standby"}
)
# What asyncpg (the pool's driver) can be given. libpq knows more (keepalives,
# hostaddr, gssencmode...); those work for `vdata migrate` (psycopg) but
# connect() refuses them rather than ignore them silently.
_ASYNCPG_PARAMS = frozenset(
    {
        "host",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "service",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "sslpassword",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
        # Startup parameters asyncpg passes on to the server as they are.
        "application_name",
        "options",
    }
)
# Read here and turned into the driver's own arguments.
_CLIENT_SIDE = frozenset({"connect_timeout", "client_encoding"})


class Dsn:
    """One parsed DSN: its libpq parameters, and the forms each driver takes."""

    __slots__ = ("_params",)

    def __init__(self, params: dict[str, str]) -> None:
        self._params = params

    def __repr__(self) -> str:
        shown = {k: ("***" if k == "password" else v) for k, v in self._params.items()}
        return f"Dsn({shown!r})"

    @property
    def params(self) -> dict[str, str]:
        """Return the libpq parameters (a copy), password included."""
        return dict(self._params)

    @property
    def dbname(self) -> str | None:
        """Return the database named by the DSN, or None (libpq then uses the user's name)."""
        return self._params.get("dbname") or None

    @property
    def connect_timeout(self) -> float | None:
        """Return the DSN's ``connect_timeout`` in seconds, or None if it sets none."""
        value = self._params.get("connect_timeout")
        return float(value) if value and int(value) > 0 else None

    def scrub(self, message: str) -> str:
        """Return *message* with this DSN's password, if any, replaced by ``***``."""
        password = self._params.get("password")
        return message.replace(password, "***") if password else message

    def conninfo(self) -> str:
        """Return the DSN as a libpq ``key=value`` string (for psycopg)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo("", **self._params)

    def asyncpg_dsn(self, *, setting: str = "dsn") -> str:
        """Return the DSN as the URI asyncpg reads, every parameter in its query string.

        Raise ConfigurationError for a parameter asyncpg cannot honour.
        """
        unsupported = sorted(set(self._params) - _ASYNCPG_PARAMS - _CLIENT_SIDE)
        if unsupported:
            raise ConfigurationError(
                f"invalid {setting}: parameter {', '.join(unsupported)} is valid for libpq "
                "but vdata's pool (asyncpg) cannot honour it; remove it from the DSN",
                field=setting,
            )
        query = {k: v for k, v in self._params.items() if k in _ASYNCPG_PARAMS and v != ""}
        if "host" in query:
            # asyncpg splits host:port on ":", so an IPv6 address goes in brackets.
            query["host"] = ",".join(
                f"[{h}]" if ":" in h and not h.startswith(("/", "[")) else h
                for h in query["host"].split(",")
            )
        return "postgresql://?" + urlencode(query) if query else "postgresql://"


def parse_dsn(dsn: str, *, setting: str = "dsn") -> Dsn:
    """Parse *dsn* as libpq does; raise ConfigurationError naming *setting* if it is malformed."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise ConfigurationError(f"invalid {setting}: the DSN is empty", field=setting)
    return _parse(dsn.strip(), setting)


@lru_cache(maxsize=64)  # Settings.replace() re-validates the same DSN
def _parse(text: str, setting: str) -> Dsn:
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    found = _SCHEME.match(text)
    if found:
        if found["scheme"].lower() not in ("postgresql", "postgres"):
            raise ConfigurationError(
                f"invalid {setting}: the scheme {found['scheme']}:// is not PostgreSQL's; "
                "write postgresql://... or host=... dbname=...",
                field=setting,
            )
        text = "postgresql://" + text[found.end() :]
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(text).items()}
    except ProgrammingError as exc:
        raise ConfigurationError(
            f"invalid {setting}: {_scrub_libpq(str(exc).strip())}", field=setting
        ) from None
    _check(params, setting)
    return Dsn(params)


def _check(params: dict[str, str], setting: str) -> None:
    def bad(message: str) -> ConfigurationError:
        return ConfigurationError(f"invalid {setting}: {message}", field=setting)

    for port in params.get("port", "").split(","):
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise bad(f"port {port!r} is not a number from 1 to 65535")
    sslmode = params.get("sslmode")
    if sslmode and sslmode not in _SSLMODES:
        raise bad(f"sslmode {sslmode!r} is not one of {', '.join(sorted(_SSLMODES))}")
    attrs = params.get("target_session_attrs")
    if attrs and attrs not in _SESSION_ATTRS:
        raise bad(
            f"target_session_attrs {attrs!r} is not one of {', '.join(sorted(_SESSION_ATTRS))}"
        )
    timeout = params.get("connect_timeout")
    if timeout and not timeout.lstrip("-").isdigit():
        raise bad(f"connect_timeout {timeout!r} is not a whole number of seconds")
    encoding = params.get("client_encoding")
    if encoding and encoding.replace("-", "").lower() not in ("utf8", "unicode"):
        raise bad(f"client_encoding {encoding!r}: vdata speaks UTF8 only")


@lru_cache(maxsize=1)
def _keywords() -> frozenset[str]:
    from psycopg import pq

    return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())


def _scrub_libpq(message: str) -> str:
    # libpq quotes the fragment it could not read ('missing "=" after "x"'),
    # which may be a password written without its key: keep a quoted
    # fragment only when it is a parameter name or a bare "=".
    # "invalid connection option" and "invalid URI query parameter" quote a
    # parameter's name, never its value: those are shown.
    names_only = "option" in message or "query parameter" in message

    def keep(match: re.Match[str]) -> str:
        word = match.group(1)
        safe = names_only or word in _keywords() or word == "="
        return match.group(0) if safe else '"…"'

    return _QUOTED.sub(keep, message.splitlines()[0] if message else "cannot be parsed")
