"""translate() and the error tree: classes by SQLSTATE, and messages that never leak values."""

from __future__ import annotations

import asyncio
import datetime
import pickle
import socket
import ssl

import asyncpg
import pytest
from asyncpg.exceptions._base import PostgresMessageMeta
from hypothesis import given
from hypothesis import strategies as st

import vdata.engine.failures as failures
import vdata.errors as errors
from vdata.engine.failures import translate
from vdata.errors import (
    AccountLockedError,
    ConflictError,
    DatabaseError,
    ForeignKeyError,
    IntegrityError,
    NotFoundError,
    QueryTimeoutError,
    StaleVersionError,
    TransientError,
    UnavailableError,
    ValidationError,
    VdataError,
)

SECRET = "hunter2-s3cr3t"


def pg_error(code: str, **fields: str) -> asyncpg.PostgresError:
    """Build the asyncpg exception the server would send for *code*, with a secret planted."""
    cls = PostgresMessageMeta.get_message_class_for_sqlstate(code)
    exc = cls(f'invalid input syntax for type uuid: "{SECRET}"')
    if exc.sqlstate != code:  # UnknownPostgresError carries no class-level code
        exc.sqlstate = code
    exc.detail = f"Key (password)=({SECRET}) already exists."
    exc.hint = SECRET
    for name, value in fields.items():
        setattr(exc, name, value)
    return exc


def assert_safe(error: VdataError) -> None:
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert SECRET not in error.message


EXPECTED_BY_CODE = {
    "23505": ConflictError,
    "23P01": ConflictError,
    "23503": ForeignKeyError,
    "23001": ForeignKeyError,
    "23502": ValidationError,
    "23514": ValidationError,
    "40001": TransientError,
    "40P01": TransientError,
    "53300": TransientError,
    "57P01": TransientError,
    "57P02": TransientError,
    "57P03": TransientError,
    "57P05": TransientError,
    "57014": QueryTimeoutError,
    "55P03": QueryTimeoutError,
    "25P03": QueryTimeoutError,
    "25P04": QueryTimeoutError,
    "42501": errors.PermissionDeniedError,
    "25006": DatabaseError,
    "08007": DatabaseError,
    "08P01": DatabaseError,
    "28000": DatabaseError,
    "28P01": DatabaseError,
}


def test_expected_table_covers_every_mapped_code() -> None:
    assert set(EXPECTED_BY_CODE) == set(failures._BY_CODE)


@pytest.mark.parametrize(("code", "cls"), sorted(EXPECTED_BY_CODE.items()))
def test_translate_maps_each_code(code: str, cls: type[VdataError]) -> None:
    error = translate(pg_error(code))
    assert type(error) is cls
    assert error.sqlstate == code
    assert code in str(error)
    assert_safe(error)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("08000", TransientError),
        ("08003", TransientError),
        ("08006", TransientError),
        ("22001", ValidationError),
        ("22P02", ValidationError),
        ("23000", IntegrityError),
        ("53100", UnavailableError),
        ("53200", UnavailableError),
        ("57P04", UnavailableError),
        ("40000", DatabaseError),
        ("42P01", DatabaseError),
        ("P0001", DatabaseError),
        ("XX000", DatabaseError),
        ("ZZ999", DatabaseError),
    ],
)
def test_translate_falls_back_to_the_sqlstate_class(code: str, cls: type[VdataError]) -> None:
    error = translate(pg_error(code))
    assert type(error) is cls
    assert error.sqlstate == code
    assert_safe(error)


def test_conflict_names_constraint_and_table_not_values() -> None:
    exc = pg_error(
        "23505", constraint_name="unique_users_email", table_name="users", schema_name="app"
    )
    error = translate(exc, query="users.insert_user")
    assert isinstance(error, ConflictError)
    assert error.constraint == "unique_users_email"
    assert error.query == "users.insert_user"
    assert str(error) == (
        "unique violation on constraint unique_users_email (table app.users)"
        " [SQLSTATE 23505] [query users.insert_user]"
    )
    assert_safe(error)


def test_not_null_violation_names_the_field() -> None:
    exc = pg_error("23502", table_name="users", column_name="email")
    error = translate(exc)
    assert isinstance(error, ValidationError)
    assert error.field == "email"
    assert "column email" in str(error)


def test_unknown_code_message_is_the_sqlstate() -> None:
    assert str(translate(pg_error("ZZ999"))) == "SQLSTATE ZZ999 [SQLSTATE ZZ999]"


def test_unprintable_identifiers_are_not_shown() -> None:
    error = translate(pg_error("23505", constraint_name=f"x\n{SECRET}"))
    assert "<unprintable>" in str(error)
    assert_safe(error)


def test_client_side_encoding_error_shows_position_not_value() -> None:
    exc = asyncpg.exceptions.DataError(
        f"invalid input for query argument $2: '{SECRET}' (an int is required)"
    )
    error = translate(exc)
    assert isinstance(error, ValidationError)
    assert "query argument $2" in str(error)
    assert_safe(error)


def test_original_error_is_kept_by_raise_from() -> None:
    original = pg_error("23503")
    with pytest.raises(ForeignKeyError) as info:
        try:
            raise original
        except asyncpg.PostgresError as exc:
            raise translate(exc) from exc
    assert info.value.__cause__ is original


def test_translate_returns_vdata_errors_unchanged() -> None:
    error = ConflictError("taken", constraint="c")
    assert translate(error) is error


@pytest.mark.parametrize(
    ("exc", "stage", "cls", "reason", "not_sent"),
    [
        (TimeoutError(), None, QueryTimeoutError, "command_timeout", False),
        (TimeoutError(), "connect", TransientError, "connect_timeout", True),
        (TimeoutError(), "acquire", UnavailableError, "acquire_timeout", True),
        (ConnectionRefusedError(111, SECRET), None, TransientError, "connect_failed", True),
        (socket.gaierror(-2, SECRET), None, TransientError, "connect_failed", True),
        (
            OSError(f"Multiple exceptions: {SECRET}"),
            "connect",
            TransientError,
            "connect_failed",
            True,
        ),
        (ConnectionResetError(104, SECRET), None, TransientError, "connection_lost", False),
        (BrokenPipeError(32, SECRET), None, TransientError, "connection_lost", False),
        (ConnectionResetError(104, SECRET), "acquire", TransientError, "connect_failed", True),
        (asyncpg.InterfaceError("pool is closing"), None, UnavailableError, "pool_closed", True),
        (asyncpg.InterfaceError("pool is closed"), None, UnavailableError, "pool_closed", True),
        (
            asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
            None,
            TransientError,
            "connection_closed",
            True,
        ),
        (
            asyncpg.exceptions.InternalClientError(f"cannot switch to state 12 {SECRET}"),
            None,
            TransientError,
            "connection_closed",
            True,
        ),
        (asyncpg.InterfaceError(SECRET), None, DatabaseError, "client_error", False),
        (asyncpg.InterfaceError(SECRET), "connect", DatabaseError, "client_error", True),
        (ssl.SSLCertVerificationError(SECRET), None, DatabaseError, "connect_config", True),
        (FileNotFoundError(2, SECRET), None, DatabaseError, "connect_config", True),
        (RuntimeError(SECRET), None, DatabaseError, "unexpected", False),
        (asyncio.CancelledError(SECRET), None, DatabaseError, "unexpected", False),
    ],
)
def test_translate_non_server_errors(
    exc: BaseException,
    stage: errors.Stage,
    cls: type[VdataError],
    reason: str,
    not_sent: bool,
) -> None:
    error = translate(exc, stage=stage)
    assert type(error) is cls
    assert error.reason == reason
    assert error.not_sent is not_sent
    assert error.sqlstate is None
    assert_safe(error)


def test_interface_value_error_is_validation() -> None:
    class ArgumentError(asyncpg.InterfaceError, ValueError):  # type: ignore[misc]
        pass

    error = translate(ArgumentError(SECRET))
    assert isinstance(error, ValidationError)
    assert error.not_sent
    assert_safe(error)


@pytest.mark.parametrize("code", ["53300", "57P03", "28P01", "3D000", "08001"])
def test_connect_only_codes_prove_not_sent(code: str) -> None:
    assert translate(pg_error(code)).not_sent


def test_statement_errors_do_not_prove_not_sent_unless_staged() -> None:
    assert not translate(pg_error("08003")).not_sent
    assert translate(pg_error("08003"), stage="acquire").not_sent


@pytest.mark.parametrize("name", errors.__all__)
def test_every_class_is_public_under_vdata(name: str) -> None:
    obj = getattr(errors, name)
    if isinstance(obj, type):
        assert obj.__module__ == "vdata"
        assert issubclass(obj, VdataError)


def test_tree_matches_style_guide() -> None:
    assert issubclass(ConflictError, IntegrityError)
    assert issubclass(ForeignKeyError, IntegrityError)
    assert issubclass(AccountLockedError, errors.AuthenticationError)
    for cls in (NotFoundError, StaleVersionError, ValidationError, QueryTimeoutError):
        assert cls.__bases__ == (VdataError,)


def test_keyword_friendly_constructors() -> None:
    assert str(NotFoundError("user", 42)) == "user 42 not found"
    assert str(NotFoundError("project")) == "project not found"
    stale = StaleVersionError("task", 7, expected_version=3)
    assert "task 7 was changed by someone else" in str(stale)
    assert "version 3" in str(stale)
    until = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    locked = AccountLockedError(locked_until=until)
    assert locked.locked_until == until
    assert "2030-01-01" in str(locked)
    assert str(AccountLockedError()) == "account locked"
    assert str(AccountLockedError("try again later")) == "try again later"
    assert UnavailableError(retry_after=2.5).retry_after == 2.5
    assert ValidationError("bad email", field="email").field == "email"
    # No message: the class docstring's first line, so str() is never empty.
    assert (
        str(TransientError()) == "A failure that a retry may absorb (contention, lost connection)"
    )


def test_repr_shows_only_safe_facts() -> None:
    error = ConflictError("taken", sqlstate="23505", constraint="pk_users", query="q")
    assert repr(error) == (
        "ConflictError('taken [query q]', sqlstate='23505', constraint='pk_users')"
    )


def test_errors_pickle_with_their_attributes() -> None:
    error = translate(pg_error("23505", constraint_name="unique_users_email"), query="q")
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(clone) is ConflictError
    assert (clone.constraint, clone.sqlstate, clone.query) == ("unique_users_email", "23505", "q")
    assert str(clone) == str(error)
    locked = pickle.loads(pickle.dumps(UnavailableError("x", retry_after=1.0)))  # noqa: S301
    assert locked.retry_after == 1.0


_CODE_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@given(
    code=st.one_of(
        st.text(alphabet=_CODE_CHARS, min_size=5, max_size=5),
        st.text(max_size=8),
    ),
    constraint=st.one_of(st.none(), st.text(max_size=200)),
)
def test_any_sqlstate_translates_without_leaking(code: str, constraint: str | None) -> None:
    exc = asyncpg.exceptions.UnknownPostgresError(SECRET)
    exc.sqlstate = code
    exc.detail = SECRET
    exc.constraint_name = constraint
    error = translate(exc, query="q")
    assert isinstance(error, VdataError)
    if constraint is None or SECRET not in constraint:
        assert_safe(error)
    if len(code) == 5 and code in failures._BY_CODE:
        assert type(error) is failures._BY_CODE[code]
