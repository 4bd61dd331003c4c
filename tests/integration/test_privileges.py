"""Least privilege: what the service role may and may not do in a migrated database."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from vdata import migrations

pytestmark = pytest.mark.integration

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


@pytest.fixture
def app(vdata_app_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection as the service role ``vdata_app``."""
    with psycopg.connect(vdata_app_dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def owner(vdata_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection as the owner of the same database."""
    with psycopg.connect(vdata_dsn, autocommit=True) as connection:
        yield connection


def test_the_service_role_is_not_the_owner(app: psycopg.Connection[Any]) -> None:
    row = app.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == (False, False, False)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE app.audit_log SET actor = 'mallory'",
        "DELETE FROM app.audit_log",
        "TRUNCATE app.audit_log",
        "SELECT * FROM app.audit_log_head",
        "UPDATE app.audit_log_head SET last_hash = NULL",
        "UPDATE app.audit_log_head SET last_seal_hash = NULL",
        "UPDATE app.audit_log_seal SET seal_hash = NULL",
        "DELETE FROM app.audit_log_seal",
        "TRUNCATE app.audit_log_seal",
        "INSERT INTO app.audit_log_seal"
        " (taken_under, first_id, last_id, ids, row_hashes, seal_hash)"
        " VALUES (pg_current_snapshot(), 1, 1, ARRAY[1::bigint], ARRAY[sha256('x')], sha256('x'))",
    ],
)
def test_service_role_cannot_rewrite_the_audit_trail(
    app: psycopg.Connection[Any], statement: str
) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute(statement)


def test_service_role_cannot_reach_audit_partitions_directly(
    app: psycopg.Connection[Any], owner: psycopg.Connection[Any]
) -> None:
    partitions = owner.execute(
        "SELECT c.oid::regclass::text FROM pg_inherits AS i JOIN pg_class AS c"
        " ON c.oid = i.inhrelid WHERE i.inhparent = 'app.audit_log'::regclass"
    ).fetchall()
    assert len(partitions) >= 2  # the default one and this month's, at least
    for (name,) in partitions:
        with pytest.raises(errors.InsufficientPrivilege):
            app.execute(sql.SQL("DELETE FROM {}").format(sql.SQL(name)))


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE app.mine (id int)",
        "CREATE TABLE public.mine (id int)",
        "CREATE SCHEMA mine",
        "ALTER TABLE app.users ADD COLUMN nickname text",
        "DROP TABLE app.tasks",
        "CREATE INDEX index_users_on_full_name ON app.users (full_name)",
        "TRUNCATE app.users",
        "CREATE TRIGGER t BEFORE INSERT ON app.users FOR EACH ROW EXECUTE FUNCTION app.stamp_row()",
        "SELECT app.grant_service_role('vdata_app')",
        "SELECT * FROM app.create_audit_log_partitions(24)",
        "SELECT * FROM app.drop_audit_log_partitions(1)",
    ],
)
def test_service_role_has_no_ddl_and_no_owner_functions(
    app: psycopg.Connection[Any], statement: str
) -> None:
    with pytest.raises((errors.InsufficientPrivilege, errors.WrongObjectType)):
        app.execute(statement)


def test_service_role_can_do_the_dml_the_repositories_need(app: psycopg.Connection[Any]) -> None:
    with app.transaction():
        user = app.execute(
            "INSERT INTO app.users (username, email, password_hash, created_by)"
            " VALUES ('ada', 'ada@example.org', %s, 'admin') RETURNING id",
            (HASH,),
        ).fetchone()
        assert user is not None
        user_id = user[0]
        # Optimistic-lock update and soft delete.
        assert app.execute(
            "UPDATE app.users SET full_name = 'Ada', updated_by = 'ada'"
            " WHERE id = %s AND version = 1 RETURNING version",
            (user_id,),
        ).fetchone() == (2,)
        role = app.execute(
            "INSERT INTO app.roles (name, created_by) VALUES ('editor', 'admin') RETURNING id"
        ).fetchone()
        permission = app.execute(
            "INSERT INTO app.permissions (name, created_by)"
            " VALUES ('projects:write', 'admin') RETURNING id"
        ).fetchone()
        assert role is not None and permission is not None
        app.execute(
            "INSERT INTO app.role_permissions (role_id, permission_id, created_by)"
            " VALUES (%s, %s, 'admin')",
            (role[0], permission[0]),
        )
        app.execute(
            "INSERT INTO app.user_roles (user_id, role_id, created_by) VALUES (%s, %s, 'admin')",
            (user_id, role[0]),
        )
        key = app.execute(
            "INSERT INTO app.api_keys (user_id, name, prefix, secret_hash, scopes, created_by)"
            " VALUES (%s, 'ci', 'vd_0123456789', %s, '{read}', 'ada') RETURNING id",
            (user_id, b"\x00" * 32),
        ).fetchone()
        assert key is not None
        app.execute(
            "UPDATE app.api_keys SET use_count = use_count + 1, last_used_at = now(),"
            " updated_by = 'ada' WHERE prefix = 'vd_0123456789'"
        )
        app.execute(
            "INSERT INTO app.sessions (user_id, token_hash, ip, user_agent, expires_at, created_by)"
            " VALUES (%s, %s, '192.0.2.7', 'test', now() + interval '1 hour', 'ada')",
            (user_id, b"\x01" * 32),
        )
        # Projects and tasks have row-level security: act for their owner.
        app.execute("SELECT app.act_as(%s)", (user_id,))
        project = app.execute(
            "INSERT INTO app.projects (owner_id, name, created_by)"
            " VALUES (%s, 'Apollo', 'ada') RETURNING id",
            (user_id,),
        ).fetchone()
        assert project is not None
        app.execute(
            "INSERT INTO app.tasks (project_id, title, assignee_id, due_at, created_by)"
            " VALUES (%s, 'land', %s, now() + interval '1 day', 'ada')",
            (project[0], user_id),
        )
        app.execute(
            "UPDATE app.tasks SET status = 'done', completed_at = now(), updated_by = 'ada'"
            " WHERE project_id = %s",
            (project[0],),
        )
        # A write and its audit row in one statement, as the repositories do it.
        audit = app.execute(
            "WITH changed AS ("
            "  UPDATE app.projects SET deleted_at = now(), deleted_by = 'ada', updated_by = 'ada'"
            "  WHERE id = %s RETURNING id)"
            " INSERT INTO app.audit_log (actor, action, entity_type, entity_id, ip, request_id)"
            " SELECT 'ada', 'project.delete', 'project', id::text, '192.0.2.7', 'req-1'"
            " FROM changed RETURNING id, row_hash",
            (project[0],),
        ).fetchone()
        assert audit is not None and len(audit[1]) == 32
        assert app.execute("SELECT count(*) FROM app.audit_log").fetchone() == (1,)
        # Hard deletes: revoking a role, purging a session, removing a task.
        app.execute("DELETE FROM app.user_roles WHERE user_id = %s", (user_id,))
        app.execute("DELETE FROM app.sessions WHERE user_id = %s", (user_id,))
        # Tasks are never hard-deleted: with no DELETE policy it reaches no row.
        assert (
            app.execute("DELETE FROM app.tasks WHERE project_id = %s", (project[0],)).rowcount == 0
        )


def test_owner_functions_are_not_executable_by_public(owner: psycopg.Connection[Any]) -> None:
    owner_only = [
        "app.audit_log_chain()",
        "app.create_audit_log_partitions(integer)",
        "app.drop_audit_log_partitions(integer)",
        "app.grant_service_role(name)",
    ]
    rows = owner.execute(
        "SELECT f, has_function_privilege('public', f::regprocedure, 'EXECUTE'),"
        " has_function_privilege('vdata_app', f::regprocedure, 'EXECUTE')"
        " FROM unnest(%s::text[]) AS f",
        (owner_only,),
    ).fetchall()
    assert rows == [(f, False, False) for f in owner_only]


def test_apply_grants_a_custom_service_role(
    vdata_dsn: str, owner: psycopg.Connection[Any], vdata_server: Any
) -> None:
    role = f"svc-{uuid.uuid4().hex[:8]}"  # needs quoting: proves %I is used
    owner.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        assert migrations.apply(vdata_dsn, app_role=role) == []
        rows = owner.execute(
            "SELECT has_table_privilege(%s, 'app.users', 'UPDATE'),"
            " has_table_privilege(%s, 'app.audit_log', 'INSERT'),"
            " has_table_privilege(%s, 'app.audit_log', 'UPDATE'),"
            " has_table_privilege(%s, 'app.audit_log', 'TRUNCATE'),"
            " has_schema_privilege(%s, 'app', 'CREATE')",
            (role,) * 5,
        ).fetchone()
        assert rows == (True, True, False, False, False)
    finally:
        owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_apply_without_the_role_warns_and_grants_nothing(
    vdata_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="vdata.migrations"):
        assert migrations.apply(vdata_dsn, app_role="no_such_role_here") == []
    assert "no_such_role_here does not exist" in caplog.text


def test_grants_are_idempotent_and_repair_excess(owner: psycopg.Connection[Any]) -> None:
    owner.execute("GRANT UPDATE, DELETE, TRUNCATE ON app.audit_log TO vdata_app")
    owner.execute("GRANT TRUNCATE ON app.users TO vdata_app")
    assert owner.execute("SELECT app.grant_service_role('vdata_app')").fetchone() == (True,)
    assert owner.execute("SELECT app.grant_service_role('vdata_app')").fetchone() == (True,)
    rows = owner.execute(
        "SELECT has_table_privilege('vdata_app', 'app.audit_log', 'UPDATE'),"
        " has_table_privilege('vdata_app', 'app.audit_log', 'TRUNCATE'),"
        " has_table_privilege('vdata_app', 'app.users', 'TRUNCATE'),"
        " has_table_privilege('vdata_app', 'app.users', 'DELETE')"
    ).fetchone()
    assert rows == (False, False, False, True)


def test_the_user_rows_view_grants_nothing_the_users_table_does_not(
    app: psycopg.Connection[Any], owner: psycopg.Connection[Any]
) -> None:
    # The service role reads and locks through the view (its writes do) ...
    with app.transaction():
        app.execute(
            "INSERT INTO app.users (username, email, password_hash, created_by)"
            " VALUES ('ada', 'ada@example.org', %s, 'admin')",
            (HASH,),
        )
        row = app.execute(
            "SELECT u.* FROM app.user_rows AS u WHERE u.username = 'ada' FOR UPDATE"
        ).fetchone()
        assert row is not None and HASH not in [str(v) for v in row]
        description = app.execute("SELECT * FROM app.user_rows LIMIT 0").description
        assert description is not None
        columns = [c.name for c in description]
        assert "password_hash" not in columns
        assert "email_verification_token_hash" not in columns
    # ... but never inserts or deletes through it.
    for statement in (
        "INSERT INTO app.user_rows (username, email) VALUES ('eve', 'eve@example.org')",
        "DELETE FROM app.user_rows",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            app.execute(statement)
    # A role with no privilege on app.users gets nothing through the view
    # (security_invoker: the view checks the reader's privileges, not its owner's).
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    owner.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    try:
        owner.execute(sql.SQL("GRANT USAGE ON SCHEMA app TO {}").format(sql.Identifier(role)))
        with owner.transaction():
            owner.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            with pytest.raises(errors.InsufficientPrivilege):
                owner.execute("SELECT count(*) FROM app.user_rows")
    finally:
        owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
