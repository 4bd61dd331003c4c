"""vdata.security.validation: what is refused before the server; messages never quote values."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdata import ValidationError
from vdata.security.validation import (
    MAX_TEXT,
    check_actor,
    check_email,
    check_identifier,
    check_ids,
    check_text,
    check_username,
    check_version,
)

SECRET = "s3cr3t-Value"


def _refused(fn: Any, *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        fn(*args, **kwargs)
    return caught.value


class TestCheckText:
    def test_returns_storable_text_unchanged(self) -> None:
        for value in (
            "",
            "plain",
            "tab\tand\nnewline\r\n",
            "<b>markup</b>",
            "émoji 🎉",
            "x" * MAX_TEXT,
        ):
            assert check_text("note", value) is value

    @pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\x7f"])
    def test_refuses_nul_and_c0_controls(self, char: str) -> None:
        error = _refused(check_text, "note", f"a{char}b")
        assert error.field == "note"
        assert "NUL or control" in str(error)

    def test_length_bounds(self) -> None:
        assert check_text("note", "abc", max_length=3) == "abc"
        error = _refused(check_text, "note", "abcd", max_length=3)
        assert "longer than 3" in str(error)
        error = _refused(check_text, "note", "", min_length=1)
        assert "at least 1" in str(error)
        _refused(check_text, "note", "x" * (MAX_TEXT + 1))

    def test_refuses_non_strings(self) -> None:
        for value in (None, 1, b"bytes", ["list"]):
            error = _refused(check_text, "note", value)
            assert "must be a string" in str(error)

    @given(st.text(), st.text())
    def test_any_text_with_a_nul_is_refused(self, head: str, tail: str) -> None:
        with pytest.raises(ValidationError):
            check_text("note", head + "\x00" + tail)


class TestCheckIdentifier:
    def test_accepts_a_single_line_name(self) -> None:
        assert check_identifier("name", "ci key #1") == "ci key #1"

    @pytest.mark.parametrize(
        "value", ["", "a\nb", "a\tb", "a\u2028b", "a\u2029b", "a\x85b", " lead", "trail ", "a\x00"]
    )
    def test_refuses_empty_multiline_control_and_padded(self, value: str) -> None:
        assert _refused(check_identifier, "name", value).field == "name"

    def test_max_length(self) -> None:
        assert check_identifier("name", "x" * 200) == "x" * 200
        _refused(check_identifier, "name", "x" * 201)
        _refused(check_identifier, "name", "x" * 11, max_length=10)


class TestCheckUsername:
    @pytest.mark.parametrize("value", ["ada", "Ada_L.ovelace-1", "0xff", "a" * 64])
    def test_accepts(self, value: str) -> None:
        assert check_username(value) == value

    @pytest.mark.parametrize(
        "value",
        [
            "ab",
            "",
            "_ada",
            ".ada",
            "-ada",
            "ada lovelace",
            "ada@example.org",
            "ädä",
            "a" * 65,
            "ada\x00",
            "ada;--",
            "ada'",
        ],
    )
    def test_refuses(self, value: str) -> None:
        assert _refused(check_username, value).field == "username"


class TestCheckEmail:
    @pytest.mark.parametrize(
        "value", ["ada@example.org", "Ada.L+tag@Sub.Example.CO.uk", "o'brien@example.ie"]
    )
    def test_accepts(self, value: str) -> None:
        assert check_email(value) == value

    @pytest.mark.parametrize(
        "value",
        [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a@b@c.org",
            "ada @example.org",
            "ada@exa mple.org",
            "ada\n@example.org",
            "ada\x00@example.org",
            " ada@example.org",
        ],
    )
    def test_refuses(self, value: str) -> None:
        assert _refused(check_email, value).field == "email"

    def test_length_limit_is_254(self) -> None:
        local = "a" * (254 - len("@example.org"))
        assert check_email(local + "@example.org")
        _refused(check_email, "a" + local + "@example.org")


class TestCheckActor:
    def test_accepts_names_with_markup_or_quotes(self) -> None:
        for value in ("admin", "key:vdk_abc", "O'Brien <ops>", "x" * 200):
            assert check_actor(value) == value

    @pytest.mark.parametrize("value", ["", " admin", "ad\nmin", "x" * 201, "a\x00"])
    def test_refuses(self, value: str) -> None:
        assert _refused(check_actor, value).field == "actor"


@pytest.mark.parametrize(
    ("fn", "value"),
    [
        (lambda v: check_text("password", v, max_length=5), SECRET),
        (lambda v: check_text("password", v), SECRET + "\x00"),
        (lambda v: check_identifier("token", v), SECRET + "\n"),
        (check_username, SECRET + " !"),
        (check_email, SECRET),
        (check_actor, " " + SECRET),
    ],
)
def test_messages_never_quote_the_value(fn: Any, value: str) -> None:
    error = _refused(fn, value)
    for text in (str(error), repr(error), str(error.args)):
        assert SECRET not in text


def test_text_with_a_lone_surrogate_is_refused_by_every_encoding_path() -> None:
    from vdata.errors import ValidationError
    from vdata.security.validation import check_text, json_text, utf8

    for check in (
        lambda: check_text("name", "a\ud800"),
        lambda: utf8("token", "\udfff"),
        lambda: json_text("after", {"k": ["\ud800"]}),
    ):
        with pytest.raises(ValidationError) as caught:
            check()
        assert "lone surrogate" in str(caught.value)
        assert "\ud800" not in str(caught.value)
    assert utf8("token", "é") == "é".encode()
    assert json_text("after", {"k": "é"}) == '{"k":"é"}'
    with pytest.raises(ValidationError):
        json_text("after", object())


def test_durations_of_the_wrong_type_or_range_are_validation_errors() -> None:
    import datetime as dt

    from vdata.errors import ValidationError
    from vdata.security.validation import check_seconds

    assert check_seconds("ttl", dt.timedelta(minutes=1), maximum=100) == 60.0
    assert check_seconds("ttl", 0, maximum=1) == 0.0
    for bad in (None, "10", b"1", [1], True, float("nan"), -1, 101):
        with pytest.raises(ValidationError):
            check_seconds("ttl", bad, maximum=100)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        check_seconds("ttl", 0, maximum=100, allow_zero=False)


@pytest.mark.parametrize("value", [None, 1, 7, 2**31 - 1])
def test_check_version_accepts_none_and_positive_ints(value: int | None) -> None:
    assert check_version(value) == value


@pytest.mark.parametrize("value", [0, -1, 2**31, True, "1", 1.0])
def test_check_version_refuses_what_no_row_can_have(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        check_version(value)  # type: ignore[arg-type]
    assert caught.value.field == "expected_version"


def test_check_ids_drops_duplicates_in_order() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert check_ids("ids", [b, a, b, a], max_count=2) == [b, a]
    assert check_ids("ids", iter([a]), max_count=1) == [a]
    assert check_ids("ids", [], max_count=1) == []


@pytest.mark.parametrize(
    "values", ["abc", b"abc", [uuid.uuid4(), "x"], [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()], 7]
)
def test_check_ids_refuses_strings_non_uuids_and_too_many(values: object) -> None:
    with pytest.raises(ValidationError) as caught:
        check_ids("task_ids", values, max_count=2)  # type: ignore[arg-type]
    assert caught.value.field == "task_ids"
