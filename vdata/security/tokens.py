"""API keys, session and email-verification tokens, and SecretStr for plaintexts."""

from __future__ import annotations

__all__ = [
    "API_KEY_PATTERN",
    "API_KEY_PREFIX",
    "IssuedToken",
    "MintedKey",
    "ParsedApiKey",
    "SecretStr",
    "api_key_matches",
    "constant_time_equal",
    "hash_secret",
    "hash_token",
    "mint_api_key",
    "mint_token",
    "parse_api_key",
]

import hashlib
import hmac
import re
import secrets
import zlib
from functools import lru_cache
from typing import NamedTuple

import msgspec

from vdata.errors import AuthenticationError
from vdata.security.validation import utf8

_MASK = "**********"


class SecretStr:
    """A string that shows as ``**********`` in repr/str; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("SecretStr wraps a str")
        self._value = value

    def reveal(self) -> str:
        """Return the plaintext; call it only where the plaintext must leave the process."""
        return self._value

    def __repr__(self) -> str:
        return f"SecretStr('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretStr):
            return NotImplemented
        return constant_time_equal(_plain(self), _plain(other))

    def __hash__(self) -> int:
        return hash(self._value)


def _plain(value: str | bytes | SecretStr) -> bytes:
    if isinstance(value, SecretStr):
        value = value.reveal()
    return utf8("token", value) if isinstance(value, str) else bytes(value)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time that does not depend on where they differ."""
    return hmac.compare_digest(a, b)


@lru_cache(maxsize=16)  # hash_secret runs on every API request; the key rarely changes
def _subkey(key: str | bytes, label: bytes) -> bytes:
    # Settings has one secret_key for both the API-key pepper and the cursor
    # MAC; deriving a key per use keeps a tag of one kind from ever being a
    # valid tag of the other.
    return hmac.new(_plain(key), label, hashlib.sha256).digest()


# --- API keys ----------------------------------------------------------------

# vdk_<8 id chars>_<43 secret chars><6 checksum chars>, all base62, so a key is
# one "word" to double-click, grep or match in a secret scanner (GitHub's
# design). The id is stored and indexed; the checksum (CRC32 of everything
# before it) lets a scanner reject random look-alikes offline, with no lookup.
API_KEY_PREFIX = "vdk_"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_CHARS = 8  # 62**8 ~ 2**47.6: collisions are rare; the unique index catches them
_SECRET_BYTES = 32
_SECRET_CHARS = 43  # 62**43 > 2**256: fixed width, zero-padded
_CHECKSUM_CHARS = 6  # 62**6 > 2**32
API_KEY_PATTERN = re.compile(
    rf"{API_KEY_PREFIX}([0-9A-Za-z]{{{_ID_CHARS}}})_([0-9A-Za-z]{{{_SECRET_CHARS}}})"
    rf"([0-9A-Za-z]{{{_CHECKSUM_CHARS}}})"
)
_API_KEY_LENGTH = len(API_KEY_PREFIX) + _ID_CHARS + 1 + _SECRET_CHARS + _CHECKSUM_CHARS
_PEPPER_LABEL = b"vdata/api-key-secret/v1"


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), _CHECKSUM_CHARS)


class MintedKey(msgspec.Struct, frozen=True):
    """A new API key: ``token`` goes to the caller once; the rest is stored."""

    token: SecretStr
    prefix: str
    secret_hash: bytes

    def __repr__(self) -> str:
        return f"MintedKey(prefix={self.prefix!r}, token={_MASK}, secret_hash=<hidden>)"

    __str__ = __repr__


class ParsedApiKey(NamedTuple):
    """The two parts of a well-formed API key."""

    prefix: str
    secret: SecretStr


def hash_secret(secret: str | bytes | SecretStr, pepper: str | bytes | None = None) -> bytes:
    """Return the digest of an API-key secret to store: HMAC-SHA256 with *pepper*, else SHA-256.

    A fast hash is right here, unlike for passwords: the secret has 256 random
    bits, so no amount of hashing speed makes guessing it feasible, and
    verification (every API request) stays cheap. The pepper, kept outside the
    database, adds that a stolen table alone cannot even confirm a key. An
    empty pepper means none (a random per-process one would invalidate every
    key at restart).
    """
    if pepper:
        return hmac.new(_subkey(pepper, _PEPPER_LABEL), _plain(secret), hashlib.sha256).digest()
    return hashlib.sha256(_plain(secret)).digest()


def mint_api_key(pepper: str | bytes | None = None) -> MintedKey:
    """Make a new random API key and what the database stores of it."""
    key_id = "".join(secrets.choice(_BASE62) for _ in range(_ID_CHARS))
    secret = _base62(int.from_bytes(secrets.token_bytes(_SECRET_BYTES), "big"), _SECRET_CHARS)
    body = f"{API_KEY_PREFIX}{key_id}_{secret}"
    return MintedKey(
        token=SecretStr(body + _checksum(body)),
        prefix=key_id,
        secret_hash=hash_secret(secret, pepper),
    )


def parse_api_key(token: str | SecretStr) -> ParsedApiKey:
    """Split an API key into its stored prefix and its secret.

    Raise AuthenticationError, never quoting the input, if it is not shaped
    like a vdata key or its checksum does not match (mistyped or truncated).
    """
    text = token.reveal() if isinstance(token, SecretStr) else token
    if not isinstance(text, str) or len(text) != _API_KEY_LENGTH:
        raise AuthenticationError(
            "malformed API key: expected a vdk_ key of 62 characters", reason="malformed_api_key"
        )
    match = API_KEY_PATTERN.fullmatch(text)
    if match is None:
        raise AuthenticationError(
            "malformed API key: expected a vdk_ key of 62 characters", reason="malformed_api_key"
        )
    key_id, secret, checksum = match.groups()
    if not constant_time_equal(_checksum(text[:-_CHECKSUM_CHARS]).encode(), checksum.encode()):
        raise AuthenticationError(
            "malformed API key: checksum mismatch (mistyped or truncated?)",
            reason="malformed_api_key",
        )
    return ParsedApiKey(key_id, SecretStr(secret))


def api_key_matches(
    secret: str | bytes | SecretStr, stored_hash: bytes, pepper: str | bytes | None = None
) -> bool:
    """Return whether *secret* hashes to *stored_hash*, compared in constant time."""
    return constant_time_equal(hash_secret(secret, pepper), bytes(stored_hash))


# --- session and email-verification tokens ------------------------------------


class IssuedToken(NamedTuple):
    """A new bearer token (sent once) and its SHA-256 (stored)."""

    token: SecretStr
    token_hash: bytes

    def __repr__(self) -> str:
        # tuple has no __str__ of its own, so str() comes here too.
        return f"IssuedToken(token={_MASK}, token_hash=<hidden>)"


def hash_token(token: str | SecretStr) -> bytes:
    """Return the SHA-256 of a session or verification token, as stored and looked up.

    Unsalted and fast on purpose: tokens carry >= 128 random bits, so the hash
    cannot be reversed by guessing, and a lookup by hash is an index probe.
    """
    return hashlib.sha256(_plain(token)).digest()


def mint_token(nbytes: int = 32) -> IssuedToken:
    """Make a URL-safe random token of *nbytes* bytes (at least 16) and its hash."""
    if nbytes < 16:
        raise ValueError("a token needs at least 16 random bytes (128 bits)")
    token = secrets.token_urlsafe(nbytes)
    return IssuedToken(SecretStr(token), hash_token(token))
