"""Input checks made before the server: lengths, NUL and control characters, emails.

Each raises ValidationError naming the field and the rule, never the value
(it may be a password or a token pasted in the wrong field).

Text a caller passes reaches bytes in two places only: asyncpg encodes query
parameters (a failure there is translated by ``vdata.errors.translate`` to
ValidationError), and vdata encodes tokens, passwords and JSON itself, always
through ``utf8`` and ``json_text`` below. A Python ``str`` may hold a lone
surrogate (``"\\ud800"``), which has no UTF-8 form; both places turn it into
ValidationError, so no ``UnicodeEncodeError`` leaves vdata.
"""

from __future__ import annotations

__all__ = [
    "check_actor",
    "check_email",
    "check_filter",
    "check_identifier",
    "check_ids",
    "check_input",
    "check_instant",
    "check_seconds",
    "check_text",
    "check_username",
    "check_version",
    "json_text",
    "utf8",
]

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec

from vdata.errors import ValidationError

T = TypeVar("T")

# C0 and C1 control characters, DEL and the Unicode line/paragraph
# separators; identifiers must not hold any of them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Free text may hold tabs and newlines but never NUL (PostgreSQL's text
# cannot store it) nor the other C0 controls.
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Lone surrogates: a Python str can hold them, UTF-8 (and so PostgreSQL) cannot.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Deliberately simple: one @, a dot in the domain, no spaces or controls.
# The database holds the same rule as a CHECK constraint.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

MAX_TEXT = 10_000


def check_input(field: str, value: object, kind: type[T]) -> T:
    """Return *value* if it is a *kind* (an input Struct); raise ValidationError naming *field*."""
    if not isinstance(value, kind):
        raise ValidationError(f"{field} must be a {kind.__name__}", field=field)
    return value


def check_text(field: str, value: str, *, max_length: int = MAX_TEXT, min_length: int = 0) -> str:
    """Return *value* if it is storable free text; raise ValidationError otherwise."""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field=field)
    if len(value) > max_length:
        raise ValidationError(f"{field} is longer than {max_length} characters", field=field)
    if len(value) < min_length:
        raise ValidationError(f"{field} must have at least {min_length} characters", field=field)
    if _TEXT_FORBIDDEN.search(value):
        raise ValidationError(f"{field} contains a NUL or control character", field=field)
    if _SURROGATE.search(value):
        raise _not_unicode(field)
    return value


def check_seconds(
    field: str, value: float | dt.timedelta, *, maximum: float, allow_zero: bool = True
) -> float:
    """Return a duration (seconds, or a timedelta) as seconds; raise ValidationError if bad."""
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValidationError(f"{field} must be a number of seconds or a timedelta", field=field)
    low = seconds >= 0 if allow_zero else seconds > 0
    if not (low and seconds <= maximum):  # also refuses NaN
        lower = "0" if allow_zero else "more than 0"
        upper = f"{maximum / 86400:g} days" if maximum >= 86400 else f"{maximum:g} s"
        raise ValidationError(f"{field} must be between {lower} and {upper}", field=field)
    return seconds


def utf8(field: str, value: str) -> bytes:
    """Return *value* in UTF-8; raise ValidationError if it has no UTF-8 form."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise _not_unicode(field) from None


def json_text(field: str, value: Any) -> str:
    """Return *value* as JSON text; raise ValidationError if it cannot be JSON."""
    try:
        return msgspec.json.encode(value).decode("utf-8")
    except UnicodeEncodeError:
        raise _not_unicode(field) from None
    except (TypeError, ValueError, OverflowError):
        # msgspec names the type it could not encode, never the value.
        raise ValidationError(f"{field} cannot be stored as JSON", field=field) from None


def _not_unicode(field: str) -> ValidationError:
    return ValidationError(
        f"{field} is not valid Unicode text (it holds a lone surrogate)", field=field
    )


def check_identifier(field: str, value: str, *, max_length: int = 200) -> str:
    """Return *value* if it is a non-empty single-line name; raise ValidationError."""
    check_text(field, value, max_length=max_length, min_length=1)
    if _CONTROL.search(value):
        raise ValidationError(f"{field} contains a control character", field=field)
    if value.strip() != value:
        raise ValidationError(f"{field} has leading or trailing spaces", field=field)
    return value


def check_username(value: str) -> str:
    """Return *value* if it is a valid username (3-64 of A-Z a-z 0-9 _ . -)."""
    check_identifier("username", value, max_length=64)
    if len(value) < 3 or not _USERNAME.match(value):
        raise ValidationError(
            "username must be 3-64 characters of letters, digits, '_', '.', '-', "
            "starting with a letter or digit",
            field="username",
        )
    return value


def check_email(value: str) -> str:
    """Return *value* if it is shaped like an email address (at most 254 characters)."""
    check_identifier("email", value, max_length=254)
    if not _EMAIL.match(value):
        raise ValidationError("email is not a valid address", field="email")
    return value


def check_actor(value: str) -> str:
    """Return *value* if it can name the acting principal in the audit trail."""
    return check_identifier("actor", value, max_length=200)


def check_filter(field: str, value: str | None, *, max_length: int = 200) -> str | None:
    """Return *value* (None included) if it can be compared with stored text.

    Read-only arguments get the rules of writes: a NUL byte or control
    character, or a value longer than anything stored, is refused here,
    naming the field, instead of reaching the server.
    """
    if value is None:
        return None
    return check_text(field, value, max_length=max_length)


def check_instant(field: str, value: dt.datetime | None) -> dt.datetime | None:
    """Return *value* (None included) if it is a timezone-aware datetime.

    A naive datetime would be read in the server session's time zone, so the
    same call could mean another instant on another server: it is refused.
    """
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise ValidationError(f"{field} must be a datetime", field=field)
    if value.utcoffset() is None:
        raise ValidationError(
            f"{field} must be timezone-aware (e.g. datetime.now(UTC)), not naive", field=field
        )
    return value


def check_version(value: int | None, *, field: str = "expected_version") -> int | None:
    """Return *value* (None included) if it can be an optimistic-lock version."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 2**31 - 1:
        raise ValidationError(f"{field} must be a positive int or None", field=field)
    return value


def check_ids(field: str, values: Iterable[uuid.UUID], *, max_count: int) -> list[uuid.UUID]:
    """Return *values* as a list of UUIDs without duplicates, in the order given.

    Raise ValidationError for a single string (an easy slip for one id), an
    element that is not a UUID, or more than *max_count* distinct ids.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValidationError(f"{field} must be a sequence of UUIDs", field=field)
    unique: dict[uuid.UUID, None] = {}
    for value in values:
        if not isinstance(value, uuid.UUID):
            raise ValidationError(f"{field} must hold UUIDs only", field=field)
        unique[value] = None
        if len(unique) > max_count:
            raise ValidationError(f"{field}: at most {max_count} ids at once", field=field)
    return list(unique)
