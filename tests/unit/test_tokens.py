"""Unit tests of vdata.security.tokens: API keys, bearer tokens, SecretStr; and the repr scan."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdata.errors import AuthenticationError
from vdata.security.cursors import CursorCodec
from vdata.security.passwords import PasswordHasher
from vdata.security.tokens import (
    API_KEY_PATTERN,
    IssuedToken,
    MintedKey,
    SecretStr,
    api_key_matches,
    constant_time_equal,
    hash_secret,
    hash_token,
    mint_api_key,
    mint_token,
    parse_api_key,
)

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CURSOR_SECRET = b"0123456789abcdef0123456789abcdef"

# --- SecretStr -----------------------------------------------------------------


def test_secret_str_hides_its_value_everywhere_but_reveal() -> None:
    secret = SecretStr("hunter2-plaintext")
    assert secret.reveal() == "hunter2-plaintext"
    assert str(secret) == "**********"
    assert repr(secret) == "SecretStr('**********')"
    assert f"{secret}" == "**********" and "%s" % secret == "**********"  # noqa: UP031

    class Holder(msgspec.Struct):
        token: SecretStr

    assert "hunter2" not in repr(Holder(secret)) and "hunter2" not in repr([secret])
    with pytest.raises(TypeError):
        msgspec.json.encode(Holder(secret))  # no silent serialisation of the plaintext


def test_secret_str_equality_and_type() -> None:
    assert SecretStr("a") == SecretStr("a") and SecretStr("a") != SecretStr("b")
    assert SecretStr("a") != "a"  # a plaintext is never equal to a wrapped one
    assert len({SecretStr("a"), SecretStr("a")}) == 1
    with pytest.raises(TypeError):
        SecretStr(b"bytes")  # type: ignore[arg-type]


# --- API keys ------------------------------------------------------------------


def test_minted_key_format_and_stored_parts() -> None:
    minted = mint_api_key()
    token = minted.token.reveal()
    assert re.fullmatch(r"vdk_[0-9A-Za-z]{8}_[0-9A-Za-z]{49}", token)
    assert len(token) == 62 and API_KEY_PATTERN.fullmatch(token)
    assert minted.prefix == token[4:12]
    prefix, secret = parse_api_key(token)
    assert prefix == minted.prefix
    assert secret.reveal() == token[13:56]
    assert minted.secret_hash == hashlib.sha256(token[13:56].encode()).digest()
    assert api_key_matches(secret, minted.secret_hash)


def test_keys_are_unique_and_use_the_whole_alphabet() -> None:
    keys = [mint_api_key().token.reveal() for _ in range(500)]
    assert len(set(keys)) == 500 and len({k[4:12] for k in keys}) == 500
    # Fixed-width base62: every position of the secret varies, none is stuck at "0".
    secrets_ = [k[13:56] for k in keys]
    assert all(len({s[i] for s in secrets_}) > 20 for i in range(43))


def test_pepper_changes_the_stored_hash() -> None:
    minted = mint_api_key(pepper="server-pepper")
    _, secret = parse_api_key(minted.token)
    assert api_key_matches(secret, minted.secret_hash, pepper="server-pepper")
    assert not api_key_matches(secret, minted.secret_hash)
    assert not api_key_matches(secret, minted.secret_hash, pepper="other-pepper")
    assert hash_secret(secret, b"server-pepper") == minted.secret_hash  # str and bytes agree
    assert (
        hash_secret(secret, "")
        == hash_secret(secret)
        == hashlib.sha256(secret.reveal().encode()).digest()
    )
    assert len(minted.secret_hash) == 32


def test_checksum_detects_every_single_character_change() -> None:
    token = mint_api_key().token.reveal()
    for i in range(4, len(token)):
        if token[i] == "_":
            continue
        for other in BASE62:
            if other != token[i]:
                with pytest.raises(AuthenticationError):
                    parse_api_key(token[:i] + other + token[i + 1 :])


def test_checksum_detects_swapped_neighbours() -> None:
    token = mint_api_key().token.reveal()
    for i in range(13, len(token) - 1):
        if token[i] != token[i + 1]:
            swapped = token[:i] + token[i + 1] + token[i] + token[i + 2 :]
            with pytest.raises(AuthenticationError):
                parse_api_key(swapped)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: "",
        lambda t: "vdk_",
        lambda t: t[:-1],
        lambda t: t + "x",
        lambda t: " " + t[1:],
        lambda t: "VDK_" + t[4:],
        lambda t: "ghp_" + t[4:],
        lambda t: t[:12] + "-" + t[13:],
        lambda t: t.encode(),
        lambda t: None,
        lambda t: t[:20] + "é" + t[21:],
    ],
)
def test_parse_rejects_garbage_without_echoing_it(mangle: Any) -> None:
    token = mint_api_key().token.reveal()
    bad = mangle(token)
    with pytest.raises(AuthenticationError) as info:
        parse_api_key(bad)
    shown = str(info.value) + repr(info.value)
    assert token[13:30] not in shown
    if isinstance(bad, str) and len(bad) > 8:  # "vdk_" itself may be named in the message
        assert bad not in shown


@given(st.text(max_size=80))
def test_parse_rejects_arbitrary_text(text: str) -> None:
    with pytest.raises(AuthenticationError):
        parse_api_key(text)


def test_scanner_pattern_finds_a_leaked_key_in_text() -> None:
    token = mint_api_key().token.reveal()
    leaked = f'config = {{"api_key": "{token}"}}  # oops'
    match = API_KEY_PATTERN.search(leaked)
    assert match is not None and match.group(0) == token
    parse_api_key(match.group(0))  # and the checksum validates offline


def test_constant_time_equal() -> None:
    assert constant_time_equal(b"abc", b"abc")
    assert not constant_time_equal(b"abc", b"abd")
    assert not constant_time_equal(b"abc", b"abcd")


# --- session and verification tokens -------------------------------------------


def test_tokens_are_unique_url_safe_and_hashed() -> None:
    issued = [mint_token() for _ in range(1000)]
    plain = [t.token.reveal() for t in issued]
    assert len(set(plain)) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", p) for p in plain)
    for token, token_hash in issued[:10]:  # unpacks like the (token, hash) pair it is
        assert token_hash == hash_token(token) == hash_token(token.reveal())
        assert token_hash == hashlib.sha256(token.reveal().encode()).digest()
    assert len(mint_token(16).token.reveal()) == 22
    with pytest.raises(ValueError):
        mint_token(15)


# --- no secret in any repr or str ----------------------------------------------


def _secret_texts(*values: str | bytes) -> list[str]:
    texts: list[str] = []
    for value in values:
        if isinstance(value, bytes):
            texts += [value.hex(), repr(value)[2:-1], base64.b64encode(value).decode()]
        else:
            texts.append(value)
    return texts


def test_no_secret_in_the_repr_or_str_of_any_object() -> None:
    minted = mint_api_key(pepper="the-pepper-value")
    parsed = parse_api_key(minted.token)
    issued = mint_token()
    codec = CursorCodec(CURSOR_SECRET)
    hasher = PasswordHasher(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
    objects: list[object] = [minted, parsed, issued, issued.token, codec, hasher, minted.token]
    forbidden = _secret_texts(
        minted.token.reveal(),
        parsed.secret.reveal(),
        minted.secret_hash,
        issued.token.reveal(),
        issued.token_hash,
        CURSOR_SECRET,
        "the-pepper-value",
    )
    for obj in objects:
        for shown in (repr(obj), str(obj), f"{obj}", repr([obj])):
            for text in forbidden:
                assert text not in shown, (type(obj).__name__, shown)
    assert repr(minted) == f"MintedKey(prefix={minted.prefix!r}, token=**********, " + (
        "secret_hash=<hidden>)"
    )
    assert isinstance(minted, MintedKey) and isinstance(issued, IssuedToken)
