"""One call of each operation, for vdata (pool or transaction) and for raw asyncpg.

``vdata_op(op, w)`` returns ``f(db_or_tx, worker)``; ``raw_op(op, w, tuned=...)``
returns ``f(conn, worker)``, where for the tuned contender *conn* is a dict of
that connection's prepared statements. The raw calls send the SQL text of
vdata's own named queries (``SQL`` maps each to its query name).
"""

from __future__ import annotations

__all__ = ["SQL", "OpFn", "raw_op", "vdata_op"]

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from vdata.bench.operations import ACTOR, BULK, PASSWORD, Workload, cheap_settings, positions
from vdata.errors import AuthenticationError, StaleVersionError
from vdata.models.users import NewUser, UserPatch
from vdata.queries import load
from vdata.security.passwords import hasher_for
from vdata.security.tokens import hash_secret, parse_api_key

OpFn = Callable[[Any, int], Awaitable[object]]

# The named query each raw operation sends (vdata runs the same ones).
SQL = {
    "get_by_id": "users.get_user_by_id",
    "get_by_email": "users.get_user_by_email",
    "insert": "users.insert_user",
    "keyset_page": "users.list_users_after",
    "update": "users.update_user",
    "verify_read": "api_keys.get_usable_api_key",
    "verify_use": "api_keys.use_api_key",
    "lock_project": "tasks.lock_project_for_new_tasks",
    "insert_tasks": "tasks.insert_tasks",
}


def vdata_op(op: str, w: Workload) -> OpFn:
    """Return ``f(db_or_tx, worker)``: one call of *op* through vdata's repositories."""
    if op == "get_by_id":
        nxt = w.cycle_ids()
        return lambda a, _w: a.users.get(nxt())
    if op == "get_by_email":
        nxt_email = w.cycle_emails()
        return lambda a, _w: a.users.get_by_email(nxt_email())
    if op == "insert":

        def insert(a: Any, _w: int) -> Awaitable[object]:
            name = w.new_username()
            new = NewUser(username=name, email=f"{name}@example.org", password=PASSWORD)
            return a.users.create(new, actor=ACTOR)  # type: ignore[no-any-return]

        return insert
    if op == "keyset_page":
        cursor = w.cursor
        return lambda a, _w: a.users.list_after(cursor, limit=50)
    if op == "update":
        ids, versions = w.update_ids, w.versions

        async def update(a: Any, worker: int) -> object:
            uid = ids[worker]
            version = versions[uid]
            user = await a.users.update(
                uid, UserPatch(full_name=f"v{version}"), expected_version=version, actor=ACTOR
            )
            versions[uid] = user.version
            return user

        return update
    if op == "api_key_verify":
        token = w.token
        return lambda a, _w: a.api_keys.verify(token)
    if op == BULK:
        project, owner, tasks = w.project_id, w.owner_id, w.new_tasks
        return lambda a, _w: a.tasks.create_many(project, tasks, as_user=owner, actor=ACTOR)
    raise ValueError(f"unknown operation {op!r}")


def raw_op(op: str, w: Workload, *, tuned: bool) -> OpFn:
    """Return ``f(conn, worker)``: one call of *op* with raw asyncpg.

    *conn* is an asyncpg connection (``asyncpg pool``), or for *tuned* a
    dict of this connection's prepared statements by ``SQL`` key.
    """
    queries = load()
    hasher = hasher_for(cheap_settings())

    def q(key: str) -> tuple[str, dict[str, int]]:
        query = queries[SQL[key]]
        return query.sql, positions(query)

    if op in ("get_by_id", "get_by_email"):
        sql, _ = q(op)
        nxt = w.cycle_ids() if op == "get_by_id" else w.cycle_emails()
        if tuned:
            return lambda s, _w: s[op].fetchrow(nxt())
        return lambda c, _w: c.fetchrow(sql, nxt())
    if op == "insert":
        sql, pos = q("insert")

        async def insert(c: Any, _w: int) -> object:
            name = w.new_username()
            args: list[object] = [None] * len(pos)
            args[pos["username"]] = name
            args[pos["email"]] = f"{name}@example.org"
            args[pos["full_name"]] = ""
            args[pos["password_hash"]] = await hasher.hash(PASSWORD)
            args[pos["actor"]] = ACTOR
            return await (c["insert"].fetchrow(*args) if tuned else c.fetchrow(sql, *args))

        return insert
    if op == "keyset_page":
        query = queries[SQL["keyset_page"]]
        assert w.after is not None
        page = query.arguments(
            (),
            {
                "active": None,
                "verified": None,
                "search": None,
                "with_deleted": False,
                "after_time": w.after[0],
                "after_id": w.after[1],
                "page_size": 51,  # one more than the page, as vdata asks, to know if more follow
            },
        )
        if tuned:
            return lambda s, _w: s["keyset_page"].fetch(*page)
        return lambda c, _w: c.fetch(query.sql, *page)
    if op == "update":
        sql, pos = q("update")
        ids, versions = w.update_ids, w.versions

        async def update(c: Any, worker: int) -> object:
            uid = ids[worker]
            args: list[object] = [None] * len(pos)
            args[pos["id"]] = uid
            args[pos["expected_version"]] = versions[uid]
            args[pos["full_name"]] = f"v{versions[uid]}"
            args[pos["actor"]] = ACTOR
            row = await (c["update"].fetchrow(*args) if tuned else c.fetchrow(sql, *args))
            if row is None:
                raise StaleVersionError("user", uid, expected_version=versions[uid])
            versions[uid] = row["version"]
            return row

        return update
    if op == "api_key_verify":
        key = "verify_use" if tuned else "verify_read"
        sql, pos = q(key)
        token, pepper = w.token, cheap_settings().secret_key

        async def verify(c: Any, _w: int) -> object:
            prefix, secret = parse_api_key(token)
            args: list[object] = [None, None]
            args[pos["prefix"]] = prefix
            args[pos["secret_hash"]] = hash_secret(secret, pepper)
            row = await (c[key].fetchrow(*args) if tuned else c.fetchrow(sql, *args))
            if row is None:
                raise AuthenticationError("invalid API key")
            return row

        return verify
    if op == BULK:
        return _raw_bulk(w, tuned=tuned)
    raise ValueError(f"unknown operation {op!r}")


def _raw_bulk(w: Workload, *, tuned: bool) -> OpFn:
    """Lock the project, then insert the tasks with their audit rows, as ``create_many`` does.

    The same two named queries vdata sends: one INSERT from unnest (COPY FROM
    is refused on app.tasks, which has row-level security).
    """
    queries = load()
    lock = queries[SQL["lock_project"]]
    insert = queries[SQL["insert_tasks"]]
    lock_args = lock.arguments((), {"project_id": w.project_id, "as_user": w.owner_id})

    async def steps(conn: asyncpg.Connection, s: dict[str, Any] | None) -> object:
        records = sorted(w.task_records())
        columns = {
            "ids": [r[0] for r in records],
            "titles": [r[2] for r in records],
            "texts": [r[3] for r in records],
            "priorities": [r[4] for r in records],
            "assignees": [r[5] for r in records],
            "dues": [r[6] for r in records],
        }
        insert_args = insert.arguments(
            (), {"project_id": w.project_id, "as_user": w.owner_id, "actor": ACTOR, **columns}
        )
        if s is not None:
            if await s["lock_project"].fetchval(*lock_args) is None:
                raise RuntimeError("bench project not found")
            return await s["insert_tasks"].fetch(*insert_args)
        if await conn.fetchval(lock.sql, *lock_args) is None:
            raise RuntimeError("bench project not found")
        return await conn.fetch(insert.sql, *insert_args)

    async def bulk_default(c: Any, _w: int) -> object:
        async with c.transaction():
            return await steps(c, None)

    async def bulk_tuned(s: Any, _w: int) -> object:
        return await steps(s["conn"], s)  # the batch's transaction is already open

    return bulk_tuned if tuned else bulk_default
