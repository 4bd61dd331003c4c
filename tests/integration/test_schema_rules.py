"""The rules the schema enforces by itself, checked with raw SQL on a migrated database."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors

pytestmark = pytest.mark.integration

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


@pytest.fixture
def conn(vdata_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit owner connection to a fresh clone of the migrated template."""
    with psycopg.connect(vdata_dsn, autocommit=True) as connection:
        yield connection


def add_user(
    conn: psycopg.Connection[Any], username: str = "ada", email: str | None = None
) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO app.users (username, email, password_hash, created_by)"
        " VALUES (%s, %s, %s, 'test') RETURNING id",
        (username, email or f"{username}@example.org", HASH),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def add_project(conn: psycopg.Connection[Any], owner: uuid.UUID, name: str = "p") -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO app.projects (owner_id, name, created_by)"
        " VALUES (%s, %s, 'test') RETURNING id",
        (owner, name),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def violated(
    conn: psycopg.Connection[Any], exc_type: type[psycopg.Error], query: str, params: Any = None
) -> str | None:
    """Run *query*, expect *exc_type*, return the constraint it names."""
    with pytest.raises(exc_type) as info:
        conn.execute(query, params)
    return info.value.diag.constraint_name


# -- users ----------------------------------------------------------------------------------


def test_duplicate_username_is_rejected(conn: psycopg.Connection[Any]) -> None:
    add_user(conn, "ada")
    with pytest.raises(errors.UniqueViolation) as info:
        add_user(conn, "ada", "other@example.org")
    assert info.value.diag.constraint_name == "unique_users_username"


def test_username_uniqueness_is_case_sensitive(conn: psycopg.Connection[Any]) -> None:
    add_user(conn, "ada")
    add_user(conn, "Ada", "ada2@example.org")


def test_email_differing_only_in_case_is_rejected(conn: psycopg.Connection[Any]) -> None:
    add_user(conn, "ada", "Ada@Example.org")
    with pytest.raises(errors.UniqueViolation) as info:
        add_user(conn, "grace", "ada@EXAMPLE.ORG")
    assert info.value.diag.constraint_name == "unique_users_email_lower"


def test_soft_deleted_users_keep_their_username_and_email(conn: psycopg.Connection[Any]) -> None:
    user = add_user(conn, "ada")
    conn.execute(
        "UPDATE app.users SET deleted_at = now(), deleted_by = 'test' WHERE id = %s", (user,)
    )
    with pytest.raises(errors.UniqueViolation):
        add_user(conn, "ada", "new@example.org")
    with pytest.raises(errors.UniqueViolation):
        add_user(conn, "newname", "ada@example.org")


@pytest.mark.parametrize(
    ("username", "email", "constraint"),
    [
        ("ab", "x@example.org", "check_users_username_shape"),
        ("a" * 33, "x@example.org", "check_users_username_shape"),
        ("has space", "x@example.org", "check_users_username_shape"),
        ("-dash", "x@example.org", "check_users_username_shape"),
        ("ada", "no-at-sign", "check_users_email_shape"),
        ("ada", "a b@example.org", "check_users_email_shape"),
        ("ada", "a@" + "b" * 260, "check_users_email_shape"),
    ],
)
def test_malformed_usernames_and_emails_are_rejected(
    conn: psycopg.Connection[Any], username: str, email: str, constraint: str
) -> None:
    with pytest.raises(errors.CheckViolation) as info:
        add_user(conn, username, email)
    assert info.value.diag.constraint_name == constraint


def test_password_hash_must_be_argon2(conn: psycopg.Connection[Any]) -> None:
    name = violated(
        conn,
        errors.CheckViolation,
        "INSERT INTO app.users (username, email, password_hash, created_by)"
        " VALUES ('ada', 'ada@example.org', 'plaintext', 'test')",
    )
    assert name == "check_users_password_hash_argon2"


def test_version_starts_at_1_and_every_update_bumps_it(conn: psycopg.Connection[Any]) -> None:
    user = add_user(conn)
    first = conn.execute(
        "SELECT version, created_at, updated_by FROM app.users WHERE id = %s", (user,)
    ).fetchone()
    assert first is not None
    assert (first[0], first[2]) == (1, "test")

    # The optimistic lock the repositories use: the update names the version it read.
    update = (
        "UPDATE app.users SET full_name = %s, updated_by = 'ada', version = 99,"
        " created_at = now() - interval '1 year' WHERE id = %s AND version = %s"
        " RETURNING version, created_at"
    )
    assert conn.execute(update, ("Ada", user, 1)).fetchone() == (2, first[1])
    assert conn.execute(update, ("Ada L.", user, 1)).fetchone() is None  # stale
    assert conn.execute(update, ("Ada L.", user, 2)).fetchone() == (3, first[1])


def test_deleted_at_and_deleted_by_go_together(conn: psycopg.Connection[Any]) -> None:
    user = add_user(conn)
    name = violated(
        conn,
        errors.CheckViolation,
        "UPDATE app.users SET deleted_at = now() WHERE id = %s",
        (user,),
    )
    assert name == "check_users_deleted_by_with_deleted_at"


# -- projects and tasks ---------------------------------------------------------------------


def test_soft_deleted_project_frees_its_name(conn: psycopg.Connection[Any]) -> None:
    owner = add_user(conn)
    project = add_project(conn, owner, "Apollo")
    with pytest.raises(errors.UniqueViolation) as info:
        add_project(conn, owner, "Apollo")
    assert info.value.diag.constraint_name == "unique_projects_owner_id_and_name"
    conn.execute(
        "UPDATE app.projects SET deleted_at = now(), deleted_by = 'test' WHERE id = %s",
        (project,),
    )
    add_project(conn, owner, "Apollo")


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("description", "x" * 10_001, "check_tasks_description_length"),
        ("title", "x" * 501, "check_tasks_title_length"),
        ("title", "", "check_tasks_title_length"),
        ("status", "someday", "check_tasks_status"),
        ("status", "DONE", "check_tasks_status"),
        ("priority", 5, "check_tasks_priority_range"),
        ("priority", -1, "check_tasks_priority_range"),
    ],
)
def test_bad_task_values_are_rejected(
    conn: psycopg.Connection[Any], column: str, value: object, constraint: str
) -> None:
    project = add_project(conn, add_user(conn))
    row: dict[str, object] = {"title": "t", "description": "", "status": "todo", "priority": 2}
    row[column] = value
    name = violated(
        conn,
        errors.CheckViolation,
        "INSERT INTO app.tasks (project_id, title, description, status, priority, created_by)"
        " VALUES (%(project)s, %(title)s, %(description)s, %(status)s, %(priority)s, 'test')",
        {"project": project, **row},
    )
    assert name == constraint


def test_longest_allowed_free_text_is_accepted(conn: psycopg.Connection[Any]) -> None:
    project = add_project(conn, add_user(conn))
    conn.execute(
        "INSERT INTO app.tasks (project_id, title, description, created_by)"
        " VALUES (%s, %s, %s, 'test')",
        (project, "t" * 500, "d" * 10_000),
    )


def test_task_in_a_missing_project_is_rejected(conn: psycopg.Connection[Any]) -> None:
    name = violated(
        conn,
        errors.ForeignKeyViolation,
        "INSERT INTO app.tasks (project_id, title, created_by) VALUES (%s, 't', 'test')",
        (uuid.uuid4(),),
    )
    assert name == "fk_tasks_project_id_projects"


def test_completed_at_only_on_done_tasks(conn: psycopg.Connection[Any]) -> None:
    project = add_project(conn, add_user(conn))
    name = violated(
        conn,
        errors.CheckViolation,
        "INSERT INTO app.tasks (project_id, title, status, completed_at, created_by)"
        " VALUES (%s, 't', 'todo', now(), 'test')",
        (project,),
    )
    assert name == "check_tasks_completed_at_only_when_done"


# -- credentials ----------------------------------------------------------------------------


def test_api_key_prefix_and_session_token_hash_are_unique(conn: psycopg.Connection[Any]) -> None:
    user = add_user(conn)
    key = (
        "INSERT INTO app.api_keys (user_id, name, prefix, secret_hash, created_by)"
        " VALUES (%s, 'ci', 'vd_abcd1234', %s, 'test')"
    )
    conn.execute(key, (user, b"\x01" * 32))
    assert violated(conn, errors.UniqueViolation, key, (user, b"\x02" * 32)) == (
        "unique_api_keys_prefix"
    )
    session = (
        "INSERT INTO app.sessions (user_id, token_hash, expires_at, created_by)"
        " VALUES (%s, %s, now() + interval '1 day', 'test')"
    )
    conn.execute(session, (user, b"\x03" * 32))
    assert violated(conn, errors.UniqueViolation, session, (user, b"\x03" * 32)) == (
        "unique_sessions_token_hash"
    )
    assert violated(conn, errors.CheckViolation, session, (user, b"short")) == (
        "check_sessions_token_hash_sha256"
    )


# -- audit log ------------------------------------------------------------------------------


def add_audit(conn: psycopg.Connection[Any], action: str = "user.create") -> tuple[Any, ...]:
    row = conn.execute(
        "INSERT INTO app.audit_log (actor, action, entity_type, entity_id, after, ip)"
        " VALUES ('ada', %s, 'user', '42', '{\"name\": \"x\"}', '192.0.2.1')"
        " RETURNING id, prev_hash, row_hash, app.audit_log_row_hash(audit_log)",
        (action,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_audit_rows_are_hashed_and_sealed_in_order(conn: psycopg.Connection[Any]) -> None:
    rows = [add_audit(conn, f"user.step{i}") for i in range(3)]
    for previous, current in itertools.pairwise(rows):
        assert current[0] > previous[0]
    for row in rows:
        assert row[1] is None  # no link at write time: the sealer links
        assert row[2] == row[3] and len(row[2]) == 32
    # Recomputing over the stored rows finds nothing altered.
    bad = conn.execute(
        "SELECT count(*) FROM app.audit_log AS a WHERE a.row_hash != app.audit_log_row_hash(a)"
    ).fetchone()
    assert bad == (0,)
    assert conn.execute("SELECT rows_sealed FROM app.seal_audit_log()").fetchone() == (3,)
    # A seal never runs beside its own transaction's uncommitted rows.
    with pytest.raises(errors.ActiveSqlTransaction), conn.transaction():
        add_audit(conn)
        conn.execute("SELECT * FROM app.seal_audit_log()")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE app.audit_log SET actor = 'mallory'",
        "DELETE FROM app.audit_log",
        "UPDATE app.audit_log_seal SET seal_hash = sha256('x')",
        "DELETE FROM app.audit_log_seal",
    ],
)
def test_audit_log_and_its_seals_reject_changes_even_from_the_owner(
    conn: psycopg.Connection[Any], statement: str
) -> None:
    add_audit(conn)
    conn.execute("SELECT * FROM app.seal_audit_log()")
    with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement)


def test_audit_partitions_are_created_ahead_and_old_ones_dropped(
    conn: psycopg.Connection[Any],
) -> None:
    # The migration and every `vdata migrate` already created the next months.
    assert conn.execute("SELECT * FROM app.create_audit_log_partitions(3)").fetchall() == []
    created = [r[0] for r in conn.execute("SELECT * FROM app.create_audit_log_partitions(5)")]
    assert len(created) == 2
    conn.execute(
        "CREATE TABLE app.audit_log_y2000m01 PARTITION OF app.audit_log"
        " FOR VALUES FROM ('2000-01-01 00:00+00') TO ('2000-02-01 00:00+00')"
    )
    conn.execute(
        "INSERT INTO app.audit_log (occurred_at, actor, action, entity_type)"
        " VALUES ('2000-01-15', 'ada', 'user.create', 'user')"
    )
    dropped = conn.execute("SELECT * FROM app.drop_audit_log_partitions(12)").fetchall()
    assert dropped == [("audit_log_y2000m01",)]
    # This month's partition survives any retention.
    assert conn.execute("SELECT * FROM app.drop_audit_log_partitions(1)").fetchall() == []
    with pytest.raises(errors.InvalidParameterValue):
        conn.execute("SELECT * FROM app.drop_audit_log_partitions(0)")


def test_audit_rows_of_a_month_without_partition_land_in_default(
    conn: psycopg.Connection[Any],
) -> None:
    row = conn.execute(
        "INSERT INTO app.audit_log (occurred_at, actor, action, entity_type)"
        " VALUES ('1999-06-01', 'ada', 'user.create', 'user') RETURNING tableoid::regclass::text"
    ).fetchone()
    assert row == ("app.audit_log_default",)
