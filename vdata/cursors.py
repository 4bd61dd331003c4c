"""Signed, opaque keyset-pagination cursors that callers can read back but not forge."""

from __future__ import annotations

__all__ = ["CursorCodec", "CursorValue"]

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec

from vdata.errors import ValidationError
from vdata.tokens import _MASK, _plain, _subkey, constant_time_equal

if TYPE_CHECKING:
    from vdata.settings import Settings

CursorValue: TypeAlias = "bool | int | float | str | uuid.UUID | dt.datetime | dt.date | None"

_CURSOR_VERSION = b"\x01"
_CURSOR_LABEL = b"vdata/cursor/v1"
_TAG_BYTES = 16  # a 128-bit tag: forging one is 2**-128 per try
_MAX_CURSOR_CHARS = 4096
_INVALID_CURSOR = "invalid or tampered cursor"
# msgpack ext codes for what msgpack has no exact type for.
_EXT_UUID, _EXT_NAIVE, _EXT_AWARE, _EXT_DATE, _EXT_BIGINT = 1, 2, 3, 4, 5
_EPOCH = dt.datetime(1970, 1, 1)
_MICRO = dt.timedelta(microseconds=1)
# Settings.secret_key empty: one random key per process, the same for every
# codec, so cursors made by one repository are accepted by another.
_PROCESS_KEY = secrets.token_bytes(32)


def _to_wire(value: object) -> object:
    # Exact types first: bool is an int, datetime is a date.
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        if -(2**63) <= value < 2**64:
            return value
        return msgspec.msgpack.Ext(_EXT_BIGINT, str(value).encode())
    if isinstance(value, uuid.UUID):
        return msgspec.msgpack.Ext(_EXT_UUID, value.bytes)
    if isinstance(value, dt.datetime):
        # Wall-clock microseconds (not UTC) so that no value near the ends of
        # the datetime range overflows when converted; the offset is kept to
        # the microsecond, so the value comes back equal, with its offset.
        wall = (value.replace(tzinfo=None) - _EPOCH) // _MICRO
        offset = value.utcoffset()
        if offset is None:
            return msgspec.msgpack.Ext(_EXT_NAIVE, msgspec.msgpack.encode([wall, value.fold]))
        data = [wall, offset // _MICRO, value.fold]
        return msgspec.msgpack.Ext(_EXT_AWARE, msgspec.msgpack.encode(data))
    if isinstance(value, dt.date):
        return msgspec.msgpack.Ext(_EXT_DATE, msgspec.msgpack.encode(value.toordinal()))
    raise TypeError(f"a cursor cannot hold a {type(value).__name__}")


def _from_ext(code: int, data: memoryview) -> Any:
    if code == _EXT_UUID:
        return uuid.UUID(bytes=bytes(data))
    if code == _EXT_NAIVE:
        wall, fold = msgspec.msgpack.decode(data, type=tuple[int, int])
        return (_EPOCH + wall * _MICRO).replace(fold=fold)
    if code == _EXT_AWARE:
        wall, offset, fold = msgspec.msgpack.decode(data, type=tuple[int, int, int])
        zone = dt.UTC if offset == 0 else dt.timezone(offset * _MICRO)
        return (_EPOCH + wall * _MICRO).replace(tzinfo=zone, fold=fold)
    if code == _EXT_DATE:
        return dt.date.fromordinal(msgspec.msgpack.decode(data, type=int))
    if code == _EXT_BIGINT:
        return int(bytes(data).decode("ascii"))
    raise ValueError("unknown cursor extension")


_decoder = msgspec.msgpack.Decoder(list[Any], ext_hook=_from_ext)


class CursorCodec:
    """Encode keyset-pagination positions as opaque, signed, URL-safe strings.

    ``scope`` (e.g. ``"users.list:created_at"``) is signed too, so a cursor
    from one listing or sort order is refused by another.
    """

    __slots__ = ("_key",)

    def __init__(self, secret: str | bytes) -> None:
        if len(_plain(secret)) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")
        self._key = _subkey(secret, _CURSOR_LABEL)

    @classmethod
    def from_settings(cls, settings: Settings) -> CursorCodec:
        """Use ``settings.secret_key``, or, when empty, a random key for this process."""
        return cls(settings.secret_key or _PROCESS_KEY)

    def __repr__(self) -> str:
        return f"CursorCodec(secret={_MASK})"

    def _tag(self, scope: str, payload: bytes) -> bytes:
        framed_scope = b"%d:%s" % (len(scope.encode()), scope.encode())
        message = _CURSOR_VERSION + framed_scope + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_TAG_BYTES]

    def encode(self, values: tuple[CursorValue, ...], *, scope: str = "") -> str:
        """Return a cursor for the key *values* of the last row of a page."""
        payload = msgspec.msgpack.encode([_to_wire(v) for v in values])
        blob = _CURSOR_VERSION + payload + self._tag(scope, payload)
        return base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str, *, scope: str = "") -> tuple[CursorValue, ...]:
        """Return the key values in *cursor*; raise ValidationError if it was not made here."""
        if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR_CHARS:
            raise ValidationError(_INVALID_CURSOR, field="cursor")
        try:
            raw = cursor.encode("ascii")
            blob = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise ValidationError(_INVALID_CURSOR, field="cursor") from None
        # The decoder skips stray characters and ignores unused low bits, so
        # only the canonical spelling is accepted: one cursor, one string.
        if base64.urlsafe_b64encode(blob).rstrip(b"=") != raw:
            raise ValidationError(_INVALID_CURSOR, field="cursor")
        if len(blob) < 1 + _TAG_BYTES or blob[:1] != _CURSOR_VERSION:
            raise ValidationError(_INVALID_CURSOR, field="cursor")
        payload, tag = blob[1:-_TAG_BYTES], blob[-_TAG_BYTES:]
        if not constant_time_equal(self._tag(scope, payload), tag):
            raise ValidationError(_INVALID_CURSOR, field="cursor")
        try:
            return tuple(_decoder.decode(payload))
        except (msgspec.DecodeError, ValueError, OverflowError):
            # Signed by us yet undecodable: only a key shared with a different
            # encoder could do this; still the caller's cursor is unusable.
            raise ValidationError(_INVALID_CURSOR, field="cursor") from None
