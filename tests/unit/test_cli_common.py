"""The CLI's shared convention: DSN parsing and password redaction, without a server."""

from __future__ import annotations

import argparse

import pytest

from vdata.cli._common import CANNOT_RUN, CannotRun, parse, redact, require_dsn, run_command


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("postgresql://ada:s3cr3t-pw@db:5432/app", "s3cr3t-pw"),
        ("postgresql://ada@db/app?password=s3cr3t-pw&sslmode=require", "s3cr3t-pw"),
        ("host=db dbname=app password=s3cr3t-pw", "s3cr3t-pw"),
        ("host=db dbname=app password='two words here'", "two words here"),
    ],
)
def test_redact_removes_the_password_in_every_dsn_form(dsn: str, secret: str) -> None:
    assert secret not in redact(f"could not use {dsn}: {secret}", dsn)
    assert "***" in redact(secret, dsn)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://ada@db/app",
        "postgres://ada@db/app",
        "postgresql+psycopg://ada@db/app",
        "host=db port=5433 dbname=app user=ada",
    ],
)
def test_parse_accepts_what_libpq_accepts(dsn: str) -> None:
    params = parse(dsn)
    assert params["dbname"] == "app" and params["user"] == "ada"


def test_parse_refuses_garbage_and_names_no_password_piece() -> None:
    with pytest.raises(CannotRun, match="invalid --dsn/VDATA_DSN") as caught:
        parse("host=db password=abc def")
    assert "def" not in str(caught.value) and "abc" not in str(caught.value)


def test_require_dsn_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VDATA_DSN", raising=False)
    with pytest.raises(CannotRun, match="no database: pass --dsn or set VDATA_DSN"):
        require_dsn(None)


def test_an_unexpected_error_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VDATA_TRACEBACK", raising=False)

    def boom(args: argparse.Namespace) -> int:
        raise RuntimeError("first line\nsecond line")

    args = argparse.Namespace(dsn="postgresql://a:hunter22@h/db")
    assert run_command("check", boom, args) == CANNOT_RUN
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vdata check: RuntimeError: first line")
