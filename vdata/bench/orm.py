"""The SQLAlchemy 2 async ORM contender (asyncpg driver), over vdata's own tables.

Imported only when the ``sqlalchemy`` contender runs (``pip install
vdata-pg[bench]``). Each operation is what an ORM user writes for the same
result: a session per call, mapped classes for users, API keys, tasks and
the audit log, the audit row added in the same transaction as the change
(vdata writes it in the same statement), ``version_id_col`` with the server
bumping the version (SQLAlchemy's documented server-side optimistic lock).
"""

from __future__ import annotations

__all__ = ["SqlAlchemy"]

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from vdata.bench.contenders import Contender
from vdata.bench.operations import ACTOR, BULK, PASSWORD, Workload, cheap_settings
from vdata.bench.orm_models import ApiKey, AuditLog, Project, Task, User
from vdata.bench.runner import BatchFn
from vdata.errors import AuthenticationError
from vdata.security.passwords import hasher_for
from vdata.security.tokens import hash_secret, parse_api_key

_PUBLIC = [c.key for c in User.__table__.columns if c.key != "password_hash"]


def _snapshot(user: User) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _PUBLIC:
        value = getattr(user, key)
        out[key] = (
            value.isoformat()
            if isinstance(value, dt.datetime | dt.date)
            else (str(value) if isinstance(value, uuid.UUID) else value)
        )
    return out


def _live_user() -> Any:
    return User.deleted_at.is_(None)


def sa_op(
    op: str, w: Workload
) -> Callable[[async_sessionmaker[AsyncSession], int], Awaitable[object]]:
    """Return ``f(sessionmaker, worker)``: one ORM call of *op*, in its own session."""
    if op == "get_by_id":
        nxt = w.cycle_ids()

        async def get(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
            async with sm() as s:
                stmt = select(User).where(User.id == nxt(), _live_user())
                return (await s.execute(stmt)).scalar_one()

        return get
    if op == "get_by_email":
        nxt_email = w.cycle_emails()

        async def by_email(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
            async with sm() as s:
                email = nxt_email()
                stmt = select(User).where(func.lower(User.email) == func.lower(email), _live_user())
                return (await s.execute(stmt)).scalar_one()

        return by_email
    if op == "insert":
        hasher = hasher_for(cheap_settings())

        async def create(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
            name = w.new_username()
            password_hash = await hasher.hash(PASSWORD)
            async with sm.begin() as s:
                user = User(
                    username=name,
                    email=f"{name}@example.org",
                    full_name="",
                    password_hash=password_hash,
                    created_by=ACTOR,
                    updated_by=ACTOR,
                )
                s.add(user)
                await s.flush()
                s.add(_audit("user.create", "user", str(user.id), None, _snapshot(user)))
            return user

        return create
    if op == "keyset_page":
        assert w.after is not None
        after_time, after_id = w.after

        async def page(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
            async with sm() as s:
                stmt = (
                    select(User)
                    .where(_live_user(), tuple_(User.created_at, User.id) > (after_time, after_id))
                    .order_by(User.created_at, User.id)
                    .limit(51)
                )
                return (await s.execute(stmt)).scalars().all()

        return page
    if op == "update":
        ids = w.update_ids

        async def update(sm: async_sessionmaker[AsyncSession], worker: int) -> object:
            uid = ids[worker]
            async with sm.begin() as s:
                stmt = select(User).where(User.id == uid, _live_user())
                user = (await s.execute(stmt)).scalar_one()
                before = _snapshot(user)
                user.full_name = f"v{user.version}"
                user.updated_by = ACTOR
                await s.flush()  # UPDATE ... WHERE id = ? AND version = ? RETURNING version
                s.add(_audit("user.update", "user", str(uid), before, _snapshot(user)))
            w.versions[uid] = user.version
            return user

        return update
    if op == "api_key_verify":
        token, pepper = w.token, cheap_settings().secret_key

        async def verify(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
            prefix, secret = parse_api_key(token)
            digest = hash_secret(secret, pepper)
            owner_ok = exists().where(
                User.id == ApiKey.user_id, User.is_active, User.deleted_at.is_(None)
            )
            stmt = select(ApiKey).where(
                ApiKey.prefix == prefix,
                ApiKey.secret_hash == digest,
                ApiKey.revoked_at.is_(None),
                ApiKey.deleted_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
                owner_ok,
            )
            async with sm() as s:
                key = (await s.execute(stmt)).scalar_one_or_none()
            if key is None:
                raise AuthenticationError("invalid API key")
            return key

        return verify
    if op == BULK:
        return _bulk(w)
    raise ValueError(f"unknown operation {op!r}")


def _audit(action: str, entity_type: str, entity_id: str, before: Any, after: Any) -> AuditLog:
    return AuditLog(
        actor=ACTOR,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
    )


def _bulk(w: Workload) -> Callable[[async_sessionmaker[AsyncSession], int], Awaitable[object]]:
    """ORM bulk INSERT ... RETURNING of the tasks, then one audit row per task."""

    async def bulk(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
        rows = [
            {
                "id": r[0],
                "project_id": r[1],
                "title": r[2],
                "description": r[3],
                "priority": r[4],
                "assignee_id": r[5],
                "due_at": r[6],
                "created_by": r[7],
                "updated_by": r[8],
            }
            for r in w.task_records()
        ]
        async with sm.begin() as s:
            # Row-level security's acting user, for this transaction (the
            # tasks insert policy checks that this user owns the project).
            await s.execute(select(func.app.act_as(w.owner_id)))
            check = (
                select(Project.id)
                .where(
                    and_(
                        Project.id == w.project_id,
                        Project.owner_id == w.owner_id,
                        Project.archived_at.is_(None),
                        Project.deleted_at.is_(None),
                    )
                )
                .with_for_update(read=True)
            )
            if (await s.execute(check)).scalar_one_or_none() is None:
                raise RuntimeError("bench project not found")
            tasks = (await s.scalars(insert(Task).returning(Task), rows)).all()
            audit = [
                {
                    "actor": ACTOR,
                    "action": "task.create",
                    "entity_type": "task",
                    "entity_id": str(t.id),
                    "after": {"id": str(t.id), "title": t.title, "status": t.status},
                }
                for t in tasks
            ]
            await s.execute(insert(AuditLog), audit)
        return tasks

    return bulk


class SqlAlchemy(Contender):
    """SQLAlchemy 2 async ORM on ``postgresql+asyncpg``, a session per call."""

    name = "sqlalchemy"

    async def open(self, pool_size: int) -> None:
        url = self.w.app_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        url = url.replace("postgres://", "postgresql+asyncpg://", 1)
        self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def batch(self, op: str) -> BatchFn:
        f, sm = sa_op(op, self.w), self.sessions

        async def run(worker: int, n: int) -> None:
            for _ in range(n):
                await f(sm, worker)

        return run

    async def close(self) -> None:
        await self.engine.dispose()
