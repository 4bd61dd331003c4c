"""The user Structs: positional rows, keyword inputs, and reprs that hide secrets."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest

from vdata.models.users import Credentials, EmailVerification, NewUser, User, UserPatch
from vdata.security.tokens import SecretStr

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
PASSWORD = "correct horse battery staple"
HASH = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def _user() -> User:
    return User(
        uuid.uuid4(), "ada", "ada@example.org", "Ada", True, None, 0, None, None,
        NOW, NOW, "admin", NOW, "admin", 1, None, None, None,
    )  # fmt: skip


def test_user_is_positional_frozen_and_has_no_secret_fields() -> None:
    user = _user()
    assert user.username == "ada" and not user.is_verified
    assert not {"password", "password_hash", "email_verification_token_hash"} & set(
        User.__struct_fields__
    )
    with pytest.raises(AttributeError):
        user.username = "bob"  # type: ignore[misc]


def test_new_user_is_keyword_only_and_hides_the_password() -> None:
    with pytest.raises(TypeError):
        NewUser("ada", "ada@example.org", PASSWORD)  # type: ignore[call-arg]
    new = NewUser(username="ada", email="ada@example.org", password=PASSWORD)
    assert new.full_name == ""
    for text in (repr(new), str(new), repr(new.__rich_repr__()), f"{new!r}"):
        assert PASSWORD not in text and "**********" in text


def test_user_patch_defaults_to_no_change() -> None:
    patch = UserPatch(full_name="Ada")
    assert (patch.username, patch.email, patch.full_name) == (None, None, "Ada")
    assert msgspec.structs.asdict(UserPatch()) == {
        "username": None,
        "email": None,
        "full_name": None,
    }


def test_credentials_and_email_verification_hide_hash_and_token() -> None:
    creds = Credentials(uuid.uuid4(), "ada", HASH, True, None, False)
    for text in (repr(creds), str(creds), repr(creds.__rich_repr__())):
        assert HASH not in text and "<hidden>" in text
    token = "tok_" + "x" * 40
    issued = EmailVerification(_user(), SecretStr(token), NOW)
    assert issued.token == token
    for text in (repr(issued), str(issued)):
        assert token not in text and "**********" in text
