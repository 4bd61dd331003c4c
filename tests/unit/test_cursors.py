"""Unit tests of vdata.cursors: exact round trips and tamper detection."""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdata.cursors import CursorCodec
from vdata.errors import ValidationError
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
    st.datetimes(),
    st.datetimes(timezones=_zones),
    st.dates(),
)


def _same(x: Any, y: Any) -> bool:
    if type(x) is not type(y):
        return False
    if isinstance(x, dt.datetime):
        # A named zone (ZoneInfo) comes back as a fixed offset: the same wall
        # time, offset and fold. Compared across zones, an ambiguous local
        # time is never equal (PEP 495), so compare those parts directly.
        return (
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
    assert len(cursor) <= 80, len(cursor)
    assert _exactly_equal(codec.decode(cursor, scope="users.list"), values)


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


def test_codecs_from_settings_agree() -> None:
    # An empty secret_key means one random key per process, shared by all codecs.
    unset = Settings()
    cursor = CursorCodec.from_settings(unset).encode((7,))
    assert CursorCodec.from_settings(unset).decode(cursor) == (7,)
    keyed = Settings(secret_key="a configured secret key, long enough")
    with pytest.raises(ValidationError):
        CursorCodec.from_settings(keyed).decode(cursor)
    assert CursorCodec.from_settings(keyed).decode(CursorCodec.from_settings(keyed).encode((7,)))
