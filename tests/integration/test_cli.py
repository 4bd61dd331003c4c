"""The ``vdata`` executable, as a user runs it: one exit-code convention for every command.

0 done and nothing wrong, 1 ran and found problems, 2 could not run. Errors
are one line on stderr, never a traceback, never the DSN's password.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import vdata

pytestmark = pytest.mark.integration

# The console script installed next to this interpreter (pip puts it there).
VDATA = Path(sys.executable).with_name("vdata")

# Every command that takes a database, with arguments that make it do real work.
COMMANDS: dict[str, list[str]] = {
    "check": ["check"],
    "explain": ["explain", "--no-seed"],
    "migrate": ["migrate"],
    "migrate status": ["migrate", "status"],
    "migrate rollback": ["migrate", "rollback"],
    "audit verify": ["audit", "verify"],
    "audit head": ["audit", "head"],
    "audit drop-partitions": ["audit", "drop-partitions", "--keep-months", "3"],
    "cleanup": ["cleanup", "--dry-run"],
    "demo": ["demo"],
    "bench": ["bench", "--quick", "--only", "get_by_id", "--no-progress"],
}
# Port 1 on loopback: nothing listens there; the connection is refused at once.
REFUSED = "postgresql://postgres:pw-s3cret-xyz@127.0.0.1:1/postgres"


def vdata_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "VDATA_DSN"}
    environ.update(env or {})
    assert VDATA.exists(), f"the vdata console script is not installed at {VDATA}"
    return subprocess.run(
        [str(VDATA), *args], capture_output=True, text=True, timeout=120, env=environ
    )


def one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith(f"vdata {command.split()[0]}:"), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def test_version_names_the_installed_distribution() -> None:
    result = vdata_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"vdata {vdata.__version__} (vdata-pg)"
    assert vdata.__version__ != "0+unknown"  # read from the installed metadata


def test_help_is_for_users_and_lists_every_command_and_the_exit_codes() -> None:
    result = vdata_cli("--help")
    assert result.returncode == 0
    for command in ("migrate", "check", "explain", "audit", "cleanup", "demo", "bench"):
        assert command in result.stdout
    assert "exit codes" in result.stdout and "VDATA_DSN" in result.stdout
    assert "module" not in result.stdout  # no developer docstring


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["no-such-command"],
        ["check", "--no-such-option"],
        ["migrate", "rollback", "x"],
        ["migrate", "new", "add-widgets"],
        ["check", "--sql", "/no/such/folder"],
    ],
    ids=[
        "no command",
        "unknown command",
        "unknown option",
        "bad value",
        "new without a folder",
        "missing folder",
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    result = vdata_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", COMMANDS)
def test_a_dsn_that_does_not_parse_exits_2_in_one_line(name: str) -> None:
    result = vdata_cli(*COMMANDS[name], "--dsn", "not-a-dsn")
    assert result.returncode == 2, result.stderr
    assert "invalid --dsn/VDATA_DSN" in one_line_error(result, name)


@pytest.mark.parametrize("name", COMMANDS)
def test_an_unreachable_server_exits_2_without_the_password(name: str) -> None:
    result = vdata_cli(*COMMANDS[name], "--dsn", REFUSED)
    assert result.returncode == 2, result.stderr
    assert "cannot connect" in one_line_error(result, name)
    assert "s3cret" not in result.stderr + result.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_reads_vdata_dsn(name: str) -> None:
    # Without --dsn, VDATA_DSN is the database: here an unreachable one, so a
    # command that ignored it would start a throwaway server and exit 0.
    result = vdata_cli(*COMMANDS[name], env={"VDATA_DSN": REFUSED})
    assert result.returncode == 2, result.stderr
    assert "cannot connect" in one_line_error(result, name)


@pytest.mark.parametrize("name", ["migrate", "migrate status", "audit verify", "audit head"])
def test_no_database_given_exits_2(name: str) -> None:
    result = vdata_cli(*COMMANDS[name])
    assert result.returncode == 2
    assert "no database: pass --dsn or set VDATA_DSN" in one_line_error(result, name)


def test_a_secret_in_a_malformed_key_value_dsn_is_not_echoed() -> None:
    result = vdata_cli("check", "--dsn", "host=x password=hunter2 swordfish")
    assert result.returncode == 2
    assert "swordfish" not in result.stderr and "hunter2" not in result.stderr


def test_migrate_new_writes_both_files_and_exits_0(tmp_path: Path) -> None:
    result = vdata_cli("migrate", "new", "add-widgets", "--migrations", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0001.add-widgets.rollback.sql",
        "0001.add-widgets.sql",
    ]


def test_migrate_status_json(vdata_dsn: str) -> None:
    result = vdata_cli("migrate", "status", "--json", "--dsn", vdata_dsn)
    assert result.returncode == 0, result.stderr
    states: list[dict[str, Any]] = json.loads(result.stdout)
    assert states and {s["state"] for s in states} == {"applied"}
    assert {"id", "state", "path", "applied_at", "detail"} <= set(states[0])


def test_migrate_applies_nothing_new_and_exits_0(vdata_dsn: str) -> None:
    result = vdata_cli("migrate", "--dsn", vdata_dsn)
    assert result.returncode == 0, result.stderr
    assert "applied 0 migration(s)" in result.stdout


def test_check_exits_0_on_a_migrated_database(vdata_dsn: str) -> None:
    result = vdata_cli("check", "--json", "--dsn", vdata_dsn)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)


def test_audit_verify_and_head_report_json(vdata_dsn: str) -> None:
    verify = vdata_cli("audit", "verify", "--json", "--dsn", vdata_dsn)
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["ok"] is True
    head = vdata_cli("audit", "head", "--json", "--dsn", vdata_dsn)
    assert head.returncode == 0, head.stderr
    assert set(json.loads(head.stdout)) == {"last_id", "last_hash"}


def test_explain_names_an_unknown_query_and_exits_2(vdata_dsn: str) -> None:
    result = vdata_cli("explain", "--no-seed", "--dsn", vdata_dsn, "no_such.query")
    assert result.returncode == 2
    assert "no_such.query" in one_line_error(result, "explain")


def test_demo_with_a_role_that_cannot_log_in_drops_nothing(vdata_server: Any) -> None:
    dsn = vdata_server.dsn("postgres", user="no_such_role")
    result = vdata_cli("demo", "--dsn", dsn)
    assert result.returncode == 2
    assert "cannot connect" in one_line_error(result, "demo")
    assert "Dropped" not in result.stdout and "drop" not in result.stderr
