"""DSN parsing: every form libpq reads, one parser, configuration errors without secrets."""

from __future__ import annotations

import urllib.parse

import asyncpg
import pytest

import vdata
from vdata.dsn import parse_dsn
from vdata.engine.failures import is_availability_failure, is_transient, translate

PASSWORD = "hunter2-secret"


@pytest.mark.parametrize(
    "dsn",
    [
        f"host=db.example port=6432 dbname=app user=svc password={PASSWORD}",
        f"host='db.example' port = 6432 dbname=app user=svc password='{PASSWORD}'",
        f"postgresql://svc:{PASSWORD}@db.example:6432/app",
        f"postgres://svc:{PASSWORD}@db.example:6432/app",
        f"postgresql+psycopg://svc:{PASSWORD}@db.example:6432/app",
        f"postgresql+asyncpg://svc:{PASSWORD}@db.example:6432/app",
        f"postgresql:///app?host=db.example&port=6432&user=svc&password={PASSWORD}",
    ],
)
def test_every_form_reads_to_the_same_parameters(dsn: str) -> None:
    parsed = parse_dsn(dsn)
    assert parsed.params == {
        "host": "db.example",
        "port": "6432",
        "dbname": "app",
        "user": "svc",
        "password": PASSWORD,
    }
    assert PASSWORD not in repr(parsed)
    # asyncpg reads every parameter back from the query string.
    query = urllib.parse.parse_qs(urllib.parse.urlparse(parsed.asyncpg_dsn()).query)
    assert {k: v[-1] for k, v in query.items()} == parsed.params


def test_multi_host_lists_quoting_and_ipv6_survive() -> None:
    parsed = parse_dsn(r"host=a,::1 port=1,2 dbname='my db' password='it\'s' sslmode=require")
    assert parsed.params["dbname"] == "my db"
    assert parsed.params["password"] == "it's"
    query = urllib.parse.parse_qs(urllib.parse.urlparse(parsed.asyncpg_dsn()).query)
    assert query["host"] == ["a,[::1]"]
    assert query["port"] == ["1,2"]
    assert query["sslmode"] == ["require"]


def test_conninfo_is_a_libpq_string_psycopg_reads() -> None:
    from psycopg.conninfo import conninfo_to_dict

    parsed = parse_dsn(f"postgresql+psycopg://svc:{PASSWORD}@h/app?sslmode=disable")
    assert conninfo_to_dict(parsed.conninfo()) == parsed.params


@pytest.mark.parametrize(
    ("dsn", "says"),
    [
        ("not-a-dsn", 'missing "="'),
        (f"host=db {PASSWORD}", 'missing "="'),
        (f"host=db password={PASSWORD} port=http", "port 'http'"),
        (f"postgresql://u:{PASSWORD}@h:99999/db", "port '99999'"),
        (f"postgresql://u:{PASSWORD}@h/db?sslmode=always", "sslmode 'always'"),
        (f"postgresql://u:{PASSWORD}@h/db?bogus=1", 'query parameter: "bogus"'),
        (f"host=h password={PASSWORD} bogus=1", 'option "bogus"'),
        (f"mysql://u:{PASSWORD}@h/db", "scheme mysql://"),
        (f"host=h password={PASSWORD} target_session_attrs=writable", "target_session_attrs"),
        (f"host=h password={PASSWORD} keepalives=1", "keepalives"),
        ("   ", "empty"),
    ],
)
def test_a_malformed_dsn_is_a_configuration_error_naming_the_problem(dsn: str, says: str) -> None:
    with pytest.raises(vdata.ConfigurationError) as caught:
        vdata.Settings.build(dsn=dsn)
    error = caught.value
    assert says in str(error)
    assert error.field == "dsn"
    assert PASSWORD not in str(error) and PASSWORD not in repr(error)
    assert isinstance(error, vdata.ValidationError)
    # Never retried, never counted by the breaker.
    assert not is_transient(error)
    assert not is_availability_failure(error)


def test_from_env_names_the_variable() -> None:
    with pytest.raises(vdata.ConfigurationError) as caught:
        vdata.Settings.from_env(env={"VDATA_DSN": f"host=h password={PASSWORD} port=x"})
    assert caught.value.field == "VDATA_DSN"
    assert str(caught.value).startswith("invalid setting VDATA_DSN: port 'x'")
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    "dsn",
    [
        f"host=h password={PASSWORD} dbname=x",
        f"host=h password='{PASSWORD}' dbname=x",
        f"postgresql://u:{PASSWORD}@h/x",
        f"postgresql://u@h/x?password={PASSWORD}&sslmode=require",
    ],
)
def test_settings_repr_hides_the_password_in_every_form(dsn: str) -> None:
    assert PASSWORD not in repr(vdata.Settings.build(dsn=dsn))


async def test_connect_without_any_dsn_is_a_configuration_error() -> None:
    with pytest.raises(vdata.ConfigurationError) as caught:
        await vdata.connect(settings=vdata.Settings.from_env(env={}))
    assert "VDATA_DSN" in str(caught.value)


def test_asyncpg_configuration_errors_translate_to_configuration_error() -> None:
    raw = asyncpg.ClientConfigurationError(f"invalid sslmode: {PASSWORD}")
    error = translate(raw)
    assert isinstance(error, vdata.ConfigurationError)
    assert PASSWORD not in str(error)
    assert not is_transient(error) and not is_availability_failure(error)


def test_no_matching_host_names_the_attribute_and_the_fix() -> None:
    raw = asyncpg.exceptions.TargetServerAttributeNotMatched(
        "None of the hosts match the target attribute requirement "
        "<SessionAttribute.standby: 'standby'>"
    )
    error = translate(raw, stage="connect")
    assert isinstance(error, vdata.UnavailableError)
    assert "target_session_attrs=standby" in str(error)
    assert "primary" in str(error)
    assert error.reason == "no_matching_host"
