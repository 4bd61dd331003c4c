"""Unit tests of vdata.security.cursors: exact round trips and tamper detection."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import uuid
from typing import Any

import msgspec
import pytest
from asyncpg.pgproto.pgproto import UUID as PgUUID
from hypothesis import given
from hypothesis import strategies as st

from vdata.errors import ConfigurationError, DatabaseError, ValidationError
from vdata.security.cursors import CursorCodec, CursorKeys, _Mac
from vdata.security.tokens import _subkey
from vdata.settings import Settings

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CURSOR_SECRET = b"0123456789abcdef0123456789abcdef"

_offsets = st.timedeltas(
    min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23, minutes=59)
)
_zones = st.one_of(st.just(dt.UTC), st.builds(dt.timezone, _offsets), st.timezones())
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too
    st.floats(allow_nan=False),
    st.text(),
    st.uuids(),
    st.uuids().map(lambda u: PgUUID(u.bytes)),  # what asyncpg returns for a uuid column
    st.datetimes(),
    st.datetimes(timezones=_zones),
    st.dates(),
)


def _same(x: Any, y: Any) -> bool:
    """Whether *x*, decoded, is exactly *y*, encoded."""
    if isinstance(y, uuid.UUID):  # asyncpg's UUID (a subclass) comes back as uuid.UUID
        return type(x) is uuid.UUID and x == y
    if type(x) is not type(y):
        return False
    if isinstance(x, dt.datetime):
        # A named zone (ZoneInfo) comes back as a fixed offset: the same wall
        # time, offset and fold. Compared across zones, an ambiguous local
        # time is never equal (PEP 495), so compare those parts directly.
        return bool(
            x.replace(tzinfo=None) == y.replace(tzinfo=None)
            and x.utcoffset() == y.utcoffset()
            and x.fold == y.fold
        )
    return bool(x == y)


def _exactly_equal(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))


@given(st.lists(_values, max_size=5).map(tuple))
def test_cursor_round_trips_exactly(values: tuple[Any, ...]) -> None:
    codec = CursorCodec(CURSOR_SECRET)
    cursor = codec.encode(values)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    assert _exactly_equal(codec.decode(cursor), values)


def test_typical_cursor_is_short() -> None:
    codec = CursorCodec(CURSOR_SECRET)
    values = (dt.datetime.now(dt.UTC), uuid.uuid4())  # (created_at, id), as asyncpg gives them
    cursor = codec.encode(values, scope="users.list")
    assert len(cursor) <= 70, len(cursor)
    assert _exactly_equal(codec.decode(cursor, scope="users.list"), values)
    # asyncpg's own types, as a keyset page's last row holds them.
    values = (dt.datetime.now(dt.UTC), PgUUID(uuid.uuid4().bytes))
    assert _exactly_equal(codec.decode(codec.encode(values, scope="s"), scope="s"), values)


def _blob(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _text(blob: bytes) -> str:
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode()


@given(st.text(max_size=40), st.binary(max_size=100))
def test_tag_is_hmac_sha256_of_the_framed_scope_and_body(scope: str, body: bytes) -> None:
    # _Mac builds HMAC from two hashlib states; it must be HMAC-SHA256 exactly.
    key = _subkey(CURSOR_SECRET, b"vdata/cursor/v2")
    framed = b"%d:%s" % (len(scope.encode()), scope.encode())
    expected = hmac.new(key, framed + body, hashlib.sha256).digest()[:16]
    assert _Mac(key, scope).tag(body) == expected
    long_key = key * 3  # longer than SHA-256's block: hashed first, as RFC 2104 says
    assert (
        _Mac(long_key, scope).tag(body) == hmac.new(long_key, framed + body, "sha256").digest()[:16]
    )


def test_cursor_layout_is_version_shape_msgpack_tag() -> None:
    codec = CursorCodec(CURSOR_SECRET)
    at, uid = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC), uuid.uuid4()
    blob = _blob(codec.encode((at, uid, 7, "x", None), scope="q"))
    assert blob[0] == 2 and blob[1] == 5 and blob[2:7] == b"Tuisn"
    payload = msgspec.msgpack.decode(blob[7:-16])
    assert payload == [at, uid.bytes, 7, "x", None]
    # Not UTC, naive, a date, a big int: each keeps its exact value.
    blob = _blob(codec.encode((at.astimezone(dt.timezone(dt.timedelta(hours=2))),), scope="q"))
    assert blob[2:3] == b"A"
    blob = _blob(codec.encode((at.replace(tzinfo=None), at.date(), 2**64), scope="q"))
    assert blob[2:5] == b"NDI"


@given(st.text(max_size=30), st.text(max_size=30))
def test_cursor_of_one_scope_is_refused_by_any_other(scope: str, other: str) -> None:
    codec = CursorCodec(CURSOR_SECRET)
    cursor = codec.encode((dt.datetime.now(dt.UTC), uuid.uuid4()), scope=scope)
    if other == scope:
        codec.decode(cursor, scope=other)
    else:
        with pytest.raises(ValidationError, match="invalid or tampered cursor"):
            codec.decode(cursor, scope=other)


def test_truncated_or_extended_blob_is_refused() -> None:
    codec = CursorCodec(CURSOR_SECRET)
    blob = _blob(codec.encode((dt.datetime.now(dt.UTC), uuid.uuid4()), scope="q"))
    for cut in range(len(blob)):
        with pytest.raises(ValidationError):
            codec.decode(_text(blob[:cut]), scope="q")
        with pytest.raises(ValidationError):
            codec.decode(_text(blob[:cut] + blob[cut + 1 :]), scope="q")
    for extra in (b"\x00", b"\x00" * 16, blob[-16:]):
        with pytest.raises(ValidationError):
            codec.decode(_text(blob + extra), scope="q")


def _v1_cursor(values: list[Any], scope: str) -> str:
    """A cursor in the format before 2 (msgpack payload, v1 key and framing)."""
    payload = msgspec.msgpack.encode(values)
    framed = b"%d:%s" % (len(scope.encode()), scope.encode())
    key = _subkey(CURSOR_SECRET, b"vdata/cursor/v1")
    tag = hmac.new(key, b"\x01" + framed + payload, hashlib.sha256).digest()[:16]
    return _text(b"\x01" + payload + tag)


def test_format_1_cursors_are_refused() -> None:
    # Pre-1.0: no compatibility with the old format; a client starts over.
    with pytest.raises(ValidationError):
        CursorCodec(CURSOR_SECRET).decode(_v1_cursor([7, "x"], "q"), scope="q")


@pytest.mark.parametrize(
    "body",
    [
        b"\x02\x01Z" + msgspec.msgpack.encode([1]),  # an unknown shape code
        b"\x02\x02ii" + msgspec.msgpack.encode([1]),  # fewer values than the shape
        b"\x02\x01i" + msgspec.msgpack.encode([1, 2]),  # more values than the shape
        b"\x02\x01u" + msgspec.msgpack.encode([b"short"]),  # not 16 bytes
        b"\x02\x01T" + msgspec.msgpack.encode(["2024"]),  # not a timestamp
        b"\x02\x01D" + msgspec.msgpack.encode([0]),  # ordinal 0 is no date
        b"\x02\x01A" + msgspec.msgpack.encode([[0, 86_400_000_000, 0]]),  # offset of 24 h
        b"\x02\x01I" + msgspec.msgpack.encode(["12x"]),  # not a number
        b"\x02\x09i" + msgspec.msgpack.encode([1]),  # shape longer than the body
        b"\x02\x00",  # no payload
    ],
)
def test_signed_but_malformed_payload_is_refused(body: bytes) -> None:
    # Only a holder of the key could sign these; still a ValidationError, never a crash.
    codec = CursorCodec(CURSOR_SECRET)
    forged = _text(body + codec._mac("q").tag(body))
    with pytest.raises(ValidationError, match="invalid or tampered cursor"):
        codec.decode(forged, scope="q")


def test_encode_refuses_more_than_255_values_and_many_scopes_work() -> None:
    codec = CursorCodec(CURSOR_SECRET)
    assert codec.decode(codec.encode((1,) * 255)) == (1,) * 255
    with pytest.raises(ValueError):
        codec.encode((1,) * 256)
    for i in range(300):  # past the cache of ready MAC states
        scope = f"scope{i}"
        assert codec.decode(codec.encode((i,), scope=scope), scope=scope) == (i,)


@given(
    st.lists(_values, min_size=1, max_size=3).map(tuple),
    st.data(),
)
def test_flipping_any_bit_of_any_byte_is_detected(values: tuple[Any, ...], data: Any) -> None:
    codec = CursorCodec(CURSOR_SECRET)
    cursor = codec.encode(values)
    blob = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= 1 << data.draw(st.integers(0, 7))
    forged = base64.urlsafe_b64encode(bytes(blob)).rstrip(b"=").decode()
    with pytest.raises(ValidationError, match="invalid or tampered cursor"):
        codec.decode(forged)


def test_changing_any_character_or_truncating_is_detected() -> None:
    codec = CursorCodec(CURSOR_SECRET)
    cursor = codec.encode((dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC), 42, "ada"))
    alphabet = BASE62 + "-_=+/. \x00é"
    for i in range(len(cursor)):
        for other in alphabet:
            if other != cursor[i]:
                with pytest.raises(ValidationError):
                    codec.decode(cursor[:i] + other + cursor[i + 1 :])
    for cut in range(len(cursor)):
        with pytest.raises(ValidationError):
            codec.decode(cursor[:cut])
    for extra in ("A", "=", "==", "AAAA", " "):
        with pytest.raises(ValidationError):
            codec.decode(cursor + extra)


def test_cursor_from_another_key_or_scope_is_refused() -> None:
    cursor = CursorCodec(CURSOR_SECRET).encode((1, "x"), scope="users.list:created_at")
    assert CursorCodec(CURSOR_SECRET).decode(cursor, scope="users.list:created_at") == (1, "x")
    with pytest.raises(ValidationError):
        CursorCodec(b"another key of sixteen bytes+").decode(cursor, scope="users.list:created_at")
    with pytest.raises(ValidationError):
        CursorCodec(CURSOR_SECRET).decode(cursor, scope="users.list:username")
    with pytest.raises(ValidationError):
        CursorCodec(CURSOR_SECRET).decode(cursor)


@given(st.one_of(st.text(max_size=200), st.binary(max_size=50), st.none(), st.integers()))
def test_decode_refuses_garbage(garbage: Any) -> None:
    with pytest.raises(ValidationError):
        CursorCodec(CURSOR_SECRET).decode(garbage)


def test_decode_refuses_an_overlong_cursor() -> None:
    with pytest.raises(ValidationError):
        CursorCodec(CURSOR_SECRET).decode("A" * 100_000)


def test_codec_refuses_short_secrets_and_unsupported_values() -> None:
    with pytest.raises(ValueError):
        CursorCodec(b"short")
    with pytest.raises(ValueError):
        CursorCodec("")
    with pytest.raises(TypeError):
        CursorCodec(CURSOR_SECRET).encode((object(),))  # type: ignore[arg-type]


def test_codecs_from_settings_agree_and_need_a_secret_key() -> None:
    keyed = Settings(secret_key="a configured secret key, long enough")
    cursor = CursorCodec.from_settings(keyed).encode((7,))
    assert CursorCodec.from_settings(keyed).decode(cursor) == (7,)
    other = Settings(secret_key="another configured key, long enough")
    with pytest.raises(ValidationError):
        CursorCodec.from_settings(other).decode(cursor)
    # No per-process random key any more: without secret_key the database's key is used.
    with pytest.raises(ConfigurationError):
        CursorCodec.from_settings(Settings())


async def test_cursor_keys_read_the_database_key_once() -> None:
    reads: list[int] = []
    key = bytes(range(32))

    async def read() -> object:
        reads.append(1)
        return key

    keys = CursorKeys()
    assert keys.codec is None
    first = await keys.load(read)
    assert await keys.load(read) is first and reads == [1]
    # Another Database on the same database (another process) reads the same key.
    cursor = first.encode((7, "x"), scope="q")
    assert await CursorKeys().load(read) is not None
    assert (await CursorKeys().load(read)).decode(cursor, scope="q") == (7, "x")
    # A configured secret_key wins and is never read from the database.
    keyed = CursorKeys("a configured secret key, long enough")
    assert keyed.codec is not None
    with pytest.raises(ValidationError):
        keyed.codec.decode(cursor, scope="q")


@pytest.mark.parametrize("found", [None, b"short"])
async def test_cursor_keys_without_a_usable_key_is_a_configuration_error(found: object) -> None:
    async def read() -> object:
        return found

    with pytest.raises(ConfigurationError) as caught:
        await CursorKeys().load(read)
    assert "VDATA_SECRET_KEY" in str(caught.value)


async def test_cursor_keys_when_the_table_is_missing() -> None:
    async def read() -> object:
        raise DatabaseError("undefined table", sqlstate="42P01")

    with pytest.raises(ConfigurationError) as caught:
        await CursorKeys().load(read)
    assert caught.value.sqlstate == "42P01"
    assert "migrations" in str(caught.value)
