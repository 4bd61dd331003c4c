"""Input checks made before the server: lengths, NUL and control characters, emails.

Each raises ValidationError naming the field and the rule, never the value
(it may be a password or a token pasted in the wrong field).
"""

from __future__ import annotations

__all__ = [
    "check_actor",
    "check_email",
    "check_identifier",
    "check_text",
    "check_username",
]

import re

from vdata.errors import ValidationError

# C0 and C1 control characters, DEL and the Unicode line/paragraph
# separators; identifiers must not hold any of them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Free text may hold tabs and newlines but never NUL (PostgreSQL's text
# cannot store it) nor the other C0 controls.
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Deliberately simple: one @, a dot in the domain, no spaces or controls.
# The database holds the same rule as a CHECK constraint.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

MAX_TEXT = 10_000


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
    return value


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
