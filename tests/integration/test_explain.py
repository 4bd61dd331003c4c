"""``vdata explain``: plans for every query, seq scans on growing tables flagged."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from vdata import cli
from vdata.check.explain import explain, format_plans, seed
from vdata.check.sources import Sources

QUERIES = """
-- name: get_user_by_id(user_id)^
-- Return one user by primary key.
SELECT
    u.id,
    u.username
FROM app.users AS u
WHERE u.id = :user_id;

-- name: list_users_by_full_name(full_name)
-- Return users by full name: no index, so a seq scan on a growing table.
SELECT
    u.id,
    u.username
FROM app.users AS u
WHERE u.full_name = :full_name;

-- name: count_users_for_report()$
-- Return how many users there are, for a nightly report.
-- seqscan-ok: the nightly report reads every row once a day
SELECT count(*) FROM app.users;
"""


def _sql_dir(tmp_path: Path) -> Path:
    root = tmp_path / "sql"
    (root / "users").mkdir(parents=True)
    (root / "users" / "users.sql").write_text(textwrap.dedent(QUERIES).lstrip())
    return root


def test_every_vdata_query_gets_a_generic_plan(vdata_dsn: str) -> None:
    plans = explain(vdata_dsn)
    print(format_plans(plans))  # a DBA reads this with pytest -s
    assert all(p.error is None for p in plans), [(p.name, p.error) for p in plans if p.error]
    assert all(p.generic and p.plan for p in plans)


def test_a_seq_scan_on_a_growing_table_is_flagged(tmp_path: Path, vdata_dsn: str) -> None:
    plans = {p.name: p for p in explain(vdata_dsn, sources=Sources.of([_sql_dir(tmp_path)]))}
    assert plans["users.get_user_by_id"].seq_scans == []
    bad = plans["users.list_users_by_full_name"]
    assert bad.seq_scans == ["users"] and bad.flagged
    noted = plans["users.count_users_for_report"]
    assert noted.seq_scans == ["users"] and not noted.flagged
    assert noted.allowed == "the nightly report reads every row once a day"
    text = format_plans(list(plans.values()))
    assert "Index Scan using pk_users on users" in text
    assert "!! Seq Scan on growing table app.users" in text
    assert "allowed: the nightly report" in text
    assert "users.sql:9: users.list_users_by_full_name seq-scans app.users\n" in text
    assert "3 queries; 1 seq-scan a growing table without a seqscan-ok note" in text


def test_names_select_queries_and_unknown_names_fail(tmp_path: Path, vdata_dsn: str) -> None:
    sources = Sources.of([_sql_dir(tmp_path)])
    plans = explain(vdata_dsn, ["get_user_by_id", "users.count_users_for_report"], sources=sources)
    assert [p.name for p in plans] == ["users.count_users_for_report", "users.get_user_by_id"]
    with pytest.raises(KeyError, match="no query named nope"):
        explain(vdata_dsn, ["nope"], sources=sources)


def test_cli_fails_on_seqscan_only_when_asked(
    tmp_path: Path, vdata_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(_sql_dir(tmp_path))
    assert cli.main(["explain", "--dsn", vdata_dsn, "--sql", root]) == 0
    assert "list_users_by_full_name" in capsys.readouterr().out
    args = ["explain", "--dsn", vdata_dsn, "--sql", root, "--fail-on-seqscan"]
    assert cli.main(args) == 1
    assert cli.main([*args, "get_user_by_id", "count_users_for_report"]) == 0
    capsys.readouterr()
    assert cli.main([*args, "--json", "list_users_by_full_name"]) == 1
    (plan,) = json.loads(capsys.readouterr().out)
    assert plan["seq_scans"] == ["users"] and plan["plan"]["Plan"]


def test_analyze_runs_on_seeded_data_with_sampled_values(tmp_path: Path, vdata_dsn: str) -> None:
    import psycopg

    counts = seed(vdata_dsn, scale=0.01)
    assert counts["users"] == 1000 and counts["audit_log"] == 10000
    with psycopg.connect(vdata_dsn) as conn:
        disabled = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'app.audit_log'::regclass "
            "AND tgenabled = 'D'"
        ).fetchone()
    assert disabled == (0,)  # the audit triggers are back on after seeding
    root = _sql_dir(tmp_path)
    plans = {p.name: p for p in explain(vdata_dsn, analyze=True, sources=Sources.of([root]))}
    one = plans["users.get_user_by_id"]
    assert not one.generic and one.plan is not None
    assert one.plan["Plan"]["Actual Rows"] == 1  # the sampled id exists
    assert one.params["user_id"] is not None
    assert "Execution Time" in one.plan
    assert plans["users.list_users_by_full_name"].flagged
    text = format_plans(list(plans.values()))
    assert "ANALYZE" in text and "actual" in text


_STATE = """
SELECT
    (SELECT count(*) FROM app.users),
    (SELECT sum(version) FROM app.users),
    (SELECT count(*) FROM app.api_keys),
    (SELECT sum(version) FROM app.sessions),
    (SELECT count(*) FROM app.audit_log),
    (SELECT count(*) FROM app.tasks)
"""


def test_analyze_of_every_vdata_query_leaves_the_data_unchanged(vdata_dsn: str) -> None:
    import psycopg

    seed(vdata_dsn, scale=0.01)
    with psycopg.connect(vdata_dsn, autocommit=True) as conn:
        before = conn.execute(_STATE).fetchone()
        plans = explain(vdata_dsn, analyze=True)
        after = conn.execute(_STATE).fetchone()
    print(format_plans(plans))
    assert all(p.error is None for p in plans), [(p.name, p.error) for p in plans if p.error]
    assert before == after  # writes under EXPLAIN ANALYZE were rolled back


def test_cli_exits_2_when_the_database_cannot_be_reached(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["explain", "--dsn", "postgresql://postgres@127.0.0.1:1/none"]) == 2
    assert "cannot connect" in capsys.readouterr().err


def test_a_query_that_does_not_plan_is_reported_and_the_rest_planned(
    tmp_path: Path, vdata_dsn: str
) -> None:
    root = _sql_dir(tmp_path)
    broken = (
        "\n-- name: get_nothing(x)^\n-- Broken on purpose.\n"
        "SELECT nope FROM app.users WHERE id = :x;\n"
    )
    with (root / "users" / "users.sql").open("a") as f:
        f.write(broken)
    for analyze in (False, True):
        plans = {p.name: p for p in explain(vdata_dsn, analyze=analyze, sources=Sources.of([root]))}
        assert plans["users.get_nothing"].error is not None
        assert "nope" in str(plans["users.get_nothing"].error)
        assert plans["users.get_user_by_id"].plan is not None  # the connection survived
        assert plans["users.list_users_by_full_name"].plan is not None
