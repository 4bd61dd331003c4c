"""What every ``vdata`` subcommand shares: exit codes, the database to use, one-line errors.

Exit codes, the same for every command:

* ``0`` it ran and found nothing wrong;
* ``1`` it ran and found problems (a query that does not check, a broken
  audit chain, an edited migration, a failed measurement);
* ``2`` it could not run: bad arguments, no database given, a DSN that does
  not parse, a server that refuses the connection.

Errors are one line on stderr, prefixed ``vdata <command>:``; never a
traceback, never the DSN's password.
"""

from __future__ import annotations

__all__ = [
    "CANNOT_RUN",
    "OK",
    "PROBLEMS",
    "CannotRun",
    "add_dsn",
    "dsn_or_env",
    "optional_dsn",
    "parse",
    "preflight",
    "redact",
    "require_dsn",
    "run_command",
]

import argparse
import os
import re
import sys
from collections.abc import Callable

OK, PROBLEMS, CANNOT_RUN = 0, 1, 2

# Set to see the traceback of an unexpected error (a bug in vdata).
TRACEBACK_ENV = "VDATA_TRACEBACK"


class CannotRun(Exception):
    """The command could not run; the message says what to change."""


def add_dsn(parser: argparse.ArgumentParser, what: str, **kwargs: object) -> None:
    """Add ``--dsn`` (default ``$VDATA_DSN``) described as *what*."""
    parser.add_argument("--dsn", help=f"{what} (default: $VDATA_DSN)", **kwargs)  # type: ignore[arg-type]


def dsn_or_env(given: str | None) -> str | None:
    """Return *given*, else ``$VDATA_DSN``, else None (an empty value counts as none)."""
    return given or os.environ.get("VDATA_DSN") or None


def require_dsn(given: str | None, *, connect: bool = True) -> str:
    """Return the DSN to use, parsed (and, if *connect*, connected to once).

    Raise CannotRun if none is given, if it does not parse or if the server
    cannot be reached, before the command does any work.
    """
    dsn = dsn_or_env(given)
    if dsn is None:
        raise CannotRun("no database: pass --dsn or set VDATA_DSN")
    if connect:
        preflight(dsn)
    else:
        parse(dsn)
    return dsn


def optional_dsn(given: str | None) -> str | None:
    """Like require_dsn, but None when no DSN is given (the command starts its own)."""
    return None if dsn_or_env(given) is None else require_dsn(given)


# Names the setting in a DSN error: "invalid --dsn/VDATA_DSN: ...".
DSN_SETTING = "--dsn/VDATA_DSN"


def parse(dsn: str) -> dict[str, str]:
    """Return the DSN's parameters as libpq reads them (``vdata.dsn``: URI or ``key=value``)."""
    from vdata.dsn import parse_dsn
    from vdata.errors import ConfigurationError

    try:
        return parse_dsn(dsn, setting=DSN_SETTING).params
    except ConfigurationError as exc:  # names no password, nor a piece of one
        raise CannotRun(redact(exc.message, dsn)) from None


def preflight(dsn: str, *, timeout: float = 10.0) -> None:
    """Connect once and disconnect; raise CannotRun saying why if that fails."""
    import psycopg

    params = parse(dsn)
    params.setdefault("connect_timeout", str(max(1, round(timeout))))
    try:
        with psycopg.connect(**params):  # type: ignore[arg-type]
            pass
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CannotRun(f"cannot connect: {redact(first, dsn)}") from None


def _secrets(dsn: str) -> list[str]:
    found = re.findall(r"://[^/@:?]*:([^@/?]*)@", dsn)
    found += re.findall(r"[?&]password=([^&]*)", dsn)
    for quoted, bare in re.findall(r"\bpassword\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))", dsn):
        found.append(quoted or bare)
    pieces = [s for s in found if s]
    # A malformed key=value string may be quoted back only in part.
    pieces += [word for s in found for word in s.split() if len(word) >= 3]
    return sorted(set(pieces), key=len, reverse=True)


def redact(text: str, dsn: str | None) -> str:
    """Return *text* with the password of *dsn*, or any piece of it, replaced by ``***``."""
    if not dsn:
        return text
    for secret in _secrets(dsn):
        text = text.replace(secret, "***")
    return text


def _one_line(exc: BaseException) -> str:
    from vdata.errors import VdataError

    text = exc.message if isinstance(exc, VdataError) else str(exc)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def run_command(
    command: str, func: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """Run *func*; turn every failure into one line on stderr and exit code 2."""
    from vdata.errors import VdataError

    dsn = getattr(args, "dsn", None) or os.environ.get("VDATA_DSN")
    prefix = f"vdata {command}:"
    try:
        return int(func(args))
    except CannotRun as exc:
        message = str(exc)
    except KeyboardInterrupt:
        print(f"{prefix} interrupted", file=sys.stderr)
        return 130
    except VdataError as exc:
        message = _one_line(exc)
    except Exception as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        message = f"{type(exc).__name__}: {_one_line(exc)} (set {TRACEBACK_ENV}=1 to see where)"
    message = redact(message, dsn)
    # vdata's own messages may already carry the prefix.
    if message.startswith(prefix):
        message = message[len(prefix) :].lstrip()
    print(f"{prefix} {message}", file=sys.stderr)
    return CANNOT_RUN
