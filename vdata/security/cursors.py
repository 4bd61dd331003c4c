"""Signed, opaque keyset-pagination cursors that callers can read back but not forge.

A cursor is the URL-safe base64 (no padding) of::

    0x02 | n | shape (n ASCII codes, one per value) | msgpack(values) | tag (16 bytes)

``tag`` is HMAC-SHA256, under a key derived from the secret, of the framed
scope followed by every byte before the tag, truncated to 128 bits. The
shape says how each value is typed (``T`` a UTC datetime, ``u`` a UUID, ...),
so that msgspec decodes the whole payload into its final types in one call
(a cached typed decoder per shape) and the hot case, ``(created_at, id)`` as
asyncpg returns them, needs no Python-level conversion at all.

Format 2 replaced format 1 (typed msgpack extensions) before 1.0: format-1
cursors are refused like any invalid cursor (a client starts its listing
over); no compatibility is kept.
"""

from __future__ import annotations

__all__ = ["CursorCodec", "CursorKeys", "CursorValue"]

import binascii
import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec

from vdata.errors import (
    ConfigurationError,
    DatabaseError,
    PermissionDeniedError,
    ValidationError,
)
from vdata.security.tokens import _MASK, _plain, _subkey

if TYPE_CHECKING:
    from vdata.settings import Settings

CursorValue: TypeAlias = "bool | int | float | str | uuid.UUID | dt.datetime | dt.date | None"

_VERSION = 2
_CURSOR_LABEL = b"vdata/cursor/v2"
_TAG_BYTES = 16  # a 128-bit tag: forging one is 2**-128 per try
_MAX_CURSOR_CHARS = 4096
_MAX_VALUES = 255  # the shape's length is one byte
_INVALID_CURSOR = "invalid or tampered cursor"
_EPOCH = dt.datetime(1970, 1, 1)
_MICRO = dt.timedelta(microseconds=1)
_MIN_SECRET_BYTES = 16
# How many scopes (query names) a codec keeps a ready MAC state for; callers
# passing ever new scopes still work, uncached.
_MAX_SCOPES = 256
# How many shapes get a cached decoder. Only shapes signed with the key reach
# the cache (the tag is checked first), so the bound is a mere safeguard.
_MAX_LAYOUTS = 1024

_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# "+", "/" and "=" become "!", which no encoder writes: see decode.
_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"===", b"==", b"=")  # by length % 4; 1 is never canonical


def _naive_from(wire: tuple[int, int]) -> dt.datetime:
    wall, fold = wire
    return (_EPOCH + wall * _MICRO).replace(fold=fold)


def _aware_from(wire: tuple[int, int, int]) -> dt.datetime:
    wall, offset, fold = wire
    zone = dt.UTC if offset == 0 else dt.timezone(offset * _MICRO)
    return (_EPOCH + wall * _MICRO).replace(tzinfo=zone, fold=fold)


# code -> (the type msgspec decodes it as, the conversion after, if any).
_CODES: dict[int, tuple[Any, Callable[[Any], Any] | None]] = {
    ord("n"): (None, None),
    ord("b"): (bool, None),
    ord("i"): (int, None),  # msgpack's range: -2**63 .. 2**64-1
    ord("I"): (str, int),  # any other int, in decimal
    ord("f"): (float, None),
    ord("s"): (str, None),
    ord("u"): (uuid.UUID, None),  # 16 bytes
    ord("T"): (dt.datetime, None),  # aware, UTC, fold 0: msgpack's timestamp
    ord("A"): (tuple[int, int, int], _aware_from),  # wall µs, offset µs, fold
    ord("N"): (tuple[int, int], _naive_from),  # wall µs, fold
    ord("D"): (int, dt.date.fromordinal),
}


# Exact types that msgpack keeps as they are (bool is not an int here); UUID
# subclasses join when first seen (asyncpg returns its own, a subclass).
_PLAIN = {type(None): "n", bool: "b", float: "f", str: "s", uuid.UUID: "u"}


def _wire(value: object) -> tuple[str, object]:
    """Return *value*'s shape code and what msgpack encodes for it.

    ``encode`` looks up exact types in _PLAIN, and UTC datetimes, itself first.
    """
    kind = type(value)
    if kind is int and -(2**63) <= value < 2**64:  # type: ignore[operator]
        return "i", value
    # Subclasses (asyncpg's UUID, enums, ...); exact types first: bool is an
    # int, datetime is a date.
    if isinstance(value, uuid.UUID):
        if len(_PLAIN) < 32:
            _PLAIN[kind] = "u"
        return "u", value
    if isinstance(value, bool):
        return "b", value
    # Subclasses of int, float and str go as their plain values.
    if isinstance(value, int):
        if -(2**63) <= value < 2**64:
            return "i", int(value)
        return "I", str(int(value))
    if isinstance(value, float):
        return "f", float(value)
    if isinstance(value, str):
        return "s", str.__str__(value)
    if isinstance(value, dt.datetime):
        # Wall-clock microseconds (not UTC) so that no value near the ends of
        # the datetime range overflows when converted; the offset is kept to
        # the microsecond, so the value comes back equal, with its offset.
        wall = (value.replace(tzinfo=None) - _EPOCH) // _MICRO
        offset = value.utcoffset()
        if offset is None:
            return "N", (wall, value.fold)
        return "A", (wall, offset // _MICRO, value.fold)
    if isinstance(value, dt.date):
        return "D", value.toordinal()
    raise TypeError(f"a cursor cannot hold a {type(value).__name__}")


class _Layout:
    """How to decode the values of one shape: a typed decoder, then conversions."""

    __slots__ = ("convert", "decoder")

    def __init__(self, shape: bytes) -> None:
        kinds = [_CODES[code] for code in shape]  # KeyError: not a shape we make
        self.decoder = msgspec.msgpack.Decoder(tuple[tuple(kind for kind, _ in kinds)])  # type: ignore[misc]
        steps = tuple(convert for _, convert in kinds)
        self.convert = steps if any(steps) else None


_LAYOUTS: dict[bytes, _Layout] = {}


def _layout(shape: bytes) -> _Layout:
    found = _LAYOUTS.get(shape)
    if found is None:
        found = _Layout(shape)
        if len(_LAYOUTS) < _MAX_LAYOUTS:
            _LAYOUTS[shape] = found
    return found


class _Mac:
    """HMAC-SHA256 (RFC 2104) keyed once, with the scope already absorbed.

    Built from two hashlib states copied per use, which costs about half of
    ``hmac.new`` or even ``HMAC.copy()`` (their Python-level wrappers); the
    output is the same (tests/unit/test_cursors.py checks it against hmac).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, scope: str) -> None:
        if len(key) > 64:  # never for the 32-byte subkey; RFC 2104 all the same
            key = hashlib.sha256(key).digest()
        block = key.ljust(64, b"\0")
        scope_bytes = scope.encode()
        # The scope is framed (length first), so no scope and body pair
        # reads as another; the version byte starts the body.
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._inner.update(b"%d:%s" % (len(scope_bytes), scope_bytes))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def tag(self, body: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:_TAG_BYTES]


class CursorCodec:
    """Encode keyset-pagination positions as opaque, signed, URL-safe strings.

    ``scope`` (e.g. ``"users.list:created_at"``) is signed too, so a cursor
    from one listing or sort order is refused by another.
    """

    __slots__ = ("_key", "_macs")

    def __init__(self, secret: str | bytes) -> None:
        if len(_plain(secret)) < _MIN_SECRET_BYTES:
            raise ValueError(f"the cursor secret must be at least {_MIN_SECRET_BYTES} bytes")
        self._key = _subkey(secret, _CURSOR_LABEL)
        self._macs: dict[str, _Mac] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> CursorCodec:
        """Use ``settings.secret_key``; raise ConfigurationError if it is empty.

        With no secret_key, cursors are signed with the database's own key:
        see :class:`CursorKeys`.
        """
        if not settings.secret_key:
            raise ConfigurationError(
                "no secret_key: cursors are signed with the database's key (CursorKeys)",
                field="secret_key",
            )
        return _shared_codec(settings.secret_key)

    def __repr__(self) -> str:
        return f"CursorCodec(secret={_MASK})"

    def _mac(self, scope: str) -> _Mac:
        mac = self._macs.get(scope)
        if mac is None:
            mac = _Mac(self._key, scope)
            if len(self._macs) < _MAX_SCOPES:
                self._macs[scope] = mac
        return mac

    def encode(self, values: tuple[CursorValue, ...], *, scope: str = "") -> str:
        """Return a cursor for the key *values* of the last row of a page."""
        if len(values) > _MAX_VALUES:
            raise ValueError(f"a cursor holds at most {_MAX_VALUES} values")
        shape = ""
        wire: list[object] = []
        for value in values:
            code: str | None
            if type(value) is dt.datetime and value.tzinfo is dt.UTC and not value.fold:
                code = "T"  # a timestamptz as asyncpg returns it: msgpack's timestamp
            else:
                code = _PLAIN.get(type(value))
            if code is None:
                code, item = _wire(value)
                wire.append(item)
            else:
                wire.append(value)
            shape += code
        body = b"%c%c%s%s" % (_VERSION, len(shape), shape.encode(), _encoder.encode(wire))
        text = binascii.b2a_base64(body + self._mac(scope).tag(body), newline=False)
        return text.translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str, *, scope: str = "") -> tuple[CursorValue, ...]:
        """Return the key values in *cursor*; raise ValidationError if it was not made here."""
        if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR_CHARS:
            raise ValidationError(_INVALID_CURSOR, field="cursor")
        try:
            # In the standard alphabet, padded: what binascii reads and writes.
            text = cursor.encode("ascii").translate(_FROM_URLSAFE) + _PADDING[len(cursor) % 4]
            blob = binascii.a2b_base64(text)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise ValidationError(_INVALID_CURSOR, field="cursor") from None
        # The decoder skips stray characters (and "!") and ignores unused low
        # bits, so only the canonical spelling is accepted, by encoding the
        # bytes again: one cursor, one string.
        if (
            len(blob) < 2 + _TAG_BYTES
            or blob[0] != _VERSION
            or binascii.b2a_base64(blob, newline=False) != text
        ):
            raise ValidationError(_INVALID_CURSOR, field="cursor")
        body = blob[:-_TAG_BYTES]
        if not hmac.compare_digest(self._mac(scope).tag(body), blob[-_TAG_BYTES:]):
            raise ValidationError(_INVALID_CURSOR, field="cursor")
        end = 2 + body[1]
        try:
            layout = _layout(body[2:end])
            values: tuple[Any, ...] = layout.decoder.decode(body[end:])
            if layout.convert is not None:
                values = tuple(
                    value if step is None else step(value)
                    for step, value in zip(layout.convert, values, strict=True)
                )
        except (msgspec.DecodeError, KeyError, ValueError, OverflowError, TypeError):
            # Signed by us yet undecodable: only a key shared with a different
            # encoder could do this; still the caller's cursor is unusable.
            raise ValidationError(_INVALID_CURSOR, field="cursor") from None
        return values


_CODECS: dict[str | bytes, CursorCodec] = {}


def _shared_codec(secret: str | bytes) -> CursorCodec:
    # One codec per key, whichever Database asks: their MAC states are shared.
    codec = _CODECS.get(secret)
    if codec is None:
        codec = CursorCodec(secret)
        if len(_CODECS) < 64:
            _CODECS[secret] = codec
    return codec


_NO_KEY = (
    "keyset cursors need a signing key: apply vdata's migrations (0306 creates "
    "app.signing_keys, readable by the service role after `vdata migrate "
    "--app-role`), or set VDATA_SECRET_KEY to the same value on every instance"
)


class CursorKeys:
    """The cursor codec of one Database: ``secret_key``, or the database's own key.

    With ``Settings.secret_key`` set, cursors are signed with it. Without, with
    the key migration 0306 drew inside the database (``app.signing_keys``,
    purpose ``cursor``), read once, on the first keyset listing: every
    instance of a service on the same database signs alike with nothing to
    configure, and a client cannot forge a cursor without reading that table.
    """

    __slots__ = ("codec",)

    def __init__(self, secret_key: str = "") -> None:
        # None until the database's key is read (never, with a secret_key).
        self.codec: CursorCodec | None = _shared_codec(secret_key) if secret_key else None

    def __repr__(self) -> str:
        return f"CursorKeys(loaded={self.codec is not None})"

    async def load(self, read_key: Callable[[], Awaitable[object]]) -> CursorCodec:
        """Return the codec, reading the database's key with *read_key* the first time.

        Raise ConfigurationError if the database has no key or it cannot be
        read (migrations not applied, the role lacks SELECT).
        """
        if self.codec is not None:
            return self.codec
        try:
            key = await read_key()
        except (DatabaseError, PermissionDeniedError) as exc:
            # 42P01 (no such table) or 42501: configuration, not an outage.
            raise ConfigurationError(_NO_KEY, field="secret_key", sqlstate=exc.sqlstate) from exc
        if not isinstance(key, bytes) or len(key) < _MIN_SECRET_BYTES:
            raise ConfigurationError(_NO_KEY, field="secret_key")
        # Concurrent first listings may both read; they read the same key.
        self.codec = _shared_codec(key)
        return self.codec
